import type { Currency } from './currency.ts';

export type AccountStatus = 'open' | 'frozen' | 'closed';

export type Account = {
  id: bigint;
  owner: string;
  currency: Currency;
  /** Minor units (cents). */
  balance: bigint;
  status: AccountStatus;
  createdAt: Date;
  closedAt: Date | null;
};

export type TransferKind = 'transfer' | 'deposit';

export type Transfer = {
  id: bigint;
  fromAccountId: bigint;
  toAccountId: bigint;
  amount: bigint;
  currency: Currency;
  kind: TransferKind;
  initiatedBy: string;
  createdAt: Date;
};

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
  at: Date;
};

export type TransferResult = {
  transfer: Transfer;
  fromEntry: Entry;
  toEntry: Entry;
  /** Balances right after this transfer (for a replay: as they were then). */
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
