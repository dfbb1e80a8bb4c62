import type { Currency } from './currency.ts';

export type AccountStatus = 'open' | 'frozen' | 'closed';

export type Account = {
  id: bigint;
  owner: string;
  currency: Currency;
  /** Minor units (cents). */
  balance: bigint;
  /** The balance less every active hold on the account (pending, not expired): what can be spent. */
  availableBalance: bigint;
  status: AccountStatus;
  createdAt: Date;
  closedAt: Date | null;
};

export type TransferKind = 'transfer' | 'deposit' | 'withdrawal' | 'reversal' | 'refund';

/**
 * posted: the money moved (for a captured hold: its captured amount). pending: a hold, the amount
 * reserved on the sender, nothing moved yet. voided, expired: a hold released without moving money.
 * A pending hold whose expires_at passed reads as expired even before the worker's sweep marked it.
 */
export type TransferStatus = 'posted' | 'pending' | 'voided' | 'expired';

/** Client data carried by a movement and echoed in its Transfer. */
export type TransferReferences = {
  /** <= 140 characters. */
  memo: string | null;
  /** <= 64 characters, client-chosen; searchable per account. */
  reference: string | null;
  /** <= 16 keys, keys <= 40 and values <= 256 characters. */
  metadata: Record<string, string>;
};

export type Transfer = {
  id: bigint;
  fromAccountId: bigint;
  toAccountId: bigint;
  amount: bigint;
  currency: Currency;
  kind: TransferKind;
  initiatedBy: string;
  createdAt: Date;
  status: TransferStatus;
  /** Set once a hold is captured: what moved (<= amount). */
  capturedAmount: bigint | null;
  /** A hold's deadline; null for a movement posted at once. */
  expiresAt: Date | null;
  /** A withdrawal's external destination (an IBAN or similar). */
  destination: string | null;
  reversesTransferId: bigint | null;
  refundsTransferId: bigint | null;
} & TransferReferences;

export type Entry = {
  id: bigint;
  accountId: bigint;
  transferId: bigint;
  /** Negative for money leaving the account. */
  amount: bigint;
  createdAt: Date;
  /** The account's balance right after this entry. */
  balanceAfter: bigint;
};

/** An account's balance at an instant: the balanceAfter of its last entry at or before it. */
export type BalanceAt = {
  accountId: bigint;
  currency: Currency;
  balance: bigint;
  /** The balance less the holds active at that instant. */
  availableBalance: bigint;
  at: Date;
};

export type TransferResult = {
  transfer: Transfer;
  /** The entries this call wrote; null when it moved no money (a hold placed, voided or expired). */
  fromEntry: Entry | null;
  toEntry: Entry | null;
  /** Balances right after this call (for a replay: as they were then). */
  fromBalance: bigint;
  toBalance: bigint;
  /** True when this answer is the replay of an earlier request with the same idempotency key. */
  replayed: boolean;
};

export type Page<T> = {
  items: T[];
  /** Opaque cursor for the next page; empty when this is the last page. */
  nextPageToken: string;
};

export type PageRequest = {
  pageSize?: number;
  pageToken?: string;
  /** Inclusive lower bound on created_at. */
  since?: Date;
  /** Exclusive upper bound on created_at. */
  until?: Date;
};
