import { z } from 'zod';
import { CURRENCIES } from './currency.ts';
import { LEDGER_REFUSALS } from './ledger.errors.ts';

/** Row shapes as PostgreSQL returns them (int8 -> bigint, timestamptz -> Date). */
export const accountRow = z.object({
  id: z.bigint(),
  owner: z.string(),
  currency: z.enum(CURRENCIES),
  balance: z.bigint(),
  available_balance: z.bigint(),
  status: z.enum(['open', 'frozen', 'closed']),
  created_at: z.date(),
  closed_at: z.date().nullable(),
});

const transferKind = z.enum(['transfer', 'deposit', 'withdrawal', 'reversal', 'refund']);
const transferStatus = z.enum(['posted', 'pending', 'voided', 'expired']);
/** jsonb NULL or an object of strings (the CHECK and the use cases keep it so). */
const metadata = z.record(z.string(), z.string()).nullable().transform((value) => value ?? {});

export const transferRow = z.object({
  id: z.bigint(),
  from_account_id: z.bigint(),
  to_account_id: z.bigint(),
  amount: z.bigint(),
  currency: z.enum(CURRENCIES),
  kind: transferKind,
  initiated_by: z.string(),
  created_at: z.date(),
  /** As read: a pending hold past its deadline reads expired (TRANSFER_COLUMNS). */
  status: transferStatus,
  captured_amount: z.bigint().nullable(),
  expires_at: z.date().nullable(),
  memo: z.string().nullable(),
  reference: z.string().nullable(),
  metadata,
  destination: z.string().nullable(),
  reverses_transfer_id: z.bigint().nullable(),
  refunds_transfer_id: z.bigint().nullable(),
});

export const entryRow = z.object({
  id: z.bigint(),
  account_id: z.bigint(),
  transfer_id: z.bigint(),
  amount: z.bigint(),
  created_at: z.date(),
  balance_after: z.bigint(),
});

/**
 * An operation ledger_apply() (migration 0009) made or replayed: the transfer it made or changed
 * (its id as transfer_id, its status as stored), with the entries it wrote and the balances after.
 */
export const moveRow = transferRow.omit({ id: true }).extend({
  idx: z.number().int(),
  transfer_id: z.bigint(),
  from_entry_id: z.bigint().nullable(),
  to_entry_id: z.bigint().nullable(),
  entries_at: z.date().nullable(),
  from_balance: z.bigint(),
  to_balance: z.bigint(),
  replayed: z.boolean(),
  error_code: z.null(),
  error_detail: z.null(),
});
export type MoveRow = z.infer<typeof moveRow>;

/** An operation ledger_apply() refused, by name: every other column is null. */
export const refusedMoveRow = z.object({
  idx: z.number().int(),
  error_code: z.enum(LEDGER_REFUSALS),
  error_detail: z.string(),
});

/** One answer of ledger_apply(): `idx` names the operation (1-based); the movement or why it was refused. */
export const moveResultRow = z.union([moveRow, refusedMoveRow.passthrough()]);

/** What the repository needs to diagnose a close that did not happen. */
export const accountStateRow = z.object({
  id: z.bigint(),
  owner: z.string().nullable(),
  status: z.enum(['open', 'frozen', 'closed']),
  balance: z.bigint(),
});

