import type { Mailer } from '@bank/shared/mail/mailer';
import type { DatabasePool } from 'slonik';
import type { ZodType } from 'zod';

/** What a job processor gets besides its payload (`pool`: for an email rendered from the ledger, a statement). */
export type EmailJobContext = { mailer: Mailer; publicBaseUrl: string; messageId: string; pool: DatabasePool };

/** One email job: its name (= outbox kind), its payload schema and its processor. */
export type EmailJobDefinition<P = unknown> = {
  readonly name: string;
  readonly payloadSchema: ZodType<P>;
  readonly process: (payload: P, context: EmailJobContext) => Promise<void>;
};

export const defineEmailJob = <P>(definition: EmailJobDefinition<P>): EmailJobDefinition<P> => definition;

/** A job of any payload type, for the registry (each definition checks its own payload with its schema). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyEmailJobDefinition = EmailJobDefinition<any>;
