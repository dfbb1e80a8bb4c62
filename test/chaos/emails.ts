import type { CapturedEmail } from '../smtp.ts';

/** The worker sends each outbox row with Message-ID <outbox id@bank.outbox>. */
const OUTBOX_MESSAGE_ID = /^<([0-9a-f-]{36})@bank\.outbox>$/i;

/** How many times each outbox row arrived, by its id. */
export function deliveredOutboxIds(messages: readonly CapturedEmail[]): Map<string, number> {
  const delivered = new Map<string, number>();
  for (const message of messages) {
    const id = OUTBOX_MESSAGE_ID.exec(message.messageId ?? '')?.[1]?.toLowerCase();
    if (id) delivered.set(id, (delivered.get(id) ?? 0) + 1);
  }
  return delivered;
}
