import { z } from 'zod';
import { CURRENCIES } from './currency.ts';
import { LEDGER_REFUSALS } from './ledger.errors.ts';

/** Row shapes as PostgreSQL returns them (int8 -> bigint, timestamptz -> Date). */
export const accountRow = z.object({
  id: z.bigint(),
  owner: z.string(),
  currency: z.enum(CURRENCIES),
  balance: z.bigint(),
  status: z.enum(['open', 'frozen', 'closed']),
  created_at: z.date(),
  closed_at: z.date().nullable(),
});

export const transferRow = z.object({
  id: z.bigint(),
  from_account_id: z.bigint(),
  to_account_id: z.bigint(),
  amount: z.bigint(),
  currency: z.enum(CURRENCIES),
  kind: z.enum(['transfer', 'deposit']),
  initiated_by: z.string(),
  created_at: z.date(),
});

export const entryRow = z.object({
  id: z.bigint(),
  account_id: z.bigint(),
  transfer_id: z.bigint(),
  amount: z.bigint(),
  created_at: z.date(),
  balance_after: z.bigint(),
});

/** A movement ledger_move() made (or replayed). */
export const moveRow = z.object({
  transfer_id: z.bigint(),
  from_account_id: z.bigint(),
  to_account_id: z.bigint(),
  amount: z.bigint(),
  currency: z.enum(CURRENCIES),
  kind: z.enum(['transfer', 'deposit']),
  created_at: z.date(),
  from_entry_id: z.bigint(),
  to_entry_id: z.bigint(),
  from_balance: z.bigint(),
  to_balance: z.bigint(),
  replayed: z.boolean(),
  error_code: z.null(),
  error_detail: z.null(),
});
export type MoveRow = z.infer<typeof moveRow>;

/** A movement ledger_move() refused, by name: every other column is null. */
export const refusedMoveRow = z.object({
  error_code: z.enum(LEDGER_REFUSALS),
  error_detail: z.string(),
});

/** The single row ledger_move() returns: either the movement or why it was refused. */
export const moveResultRow = z.union([moveRow, refusedMoveRow.passthrough()]);

/** What the repository needs to diagnose a close that did not happen. */
export const accountStateRow = z.object({
  id: z.bigint(),
  owner: z.string().nullable(),
  status: z.enum(['open', 'frozen', 'closed']),
  balance: z.bigint(),
});

/** One answer of ledger_move_batch(): `idx` names the movement (1-based), the rest as ledger_move(). */
export const batchMoveResultRow = z.union([moveRow.extend({ idx: z.number().int() }), refusedMoveRow.extend({ idx: z.number().int() }).passthrough()]);
