import { randomBytes } from 'node:crypto';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { Actor, Role } from '@bank/shared/auth/actor';
import type { LedgerService } from '@bank/shared/ledger/ledger.service';
import type { Account } from '@bank/shared/ledger/ledger.types';

/** A user row straight in the database, for suites that test the ledger without identity. */
export async function createUser(db: CommonQueryMethods, options: { role?: Role; verified?: boolean } = {}): Promise<Actor> {
  const username = `u_${randomBytes(6).toString('hex')}`;
  const role = options.role ?? 'depositor';
  await db.query(sql.type(z.object({}))`
    INSERT INTO users (username, email, full_name, hashed_password, role, is_email_verified)
    VALUES (${username}, ${`${username}@example.test`}, ${`User ${username}`}, 'not-a-real-hash', ${role}, ${options.verified ?? true})`);
  return { username, role };
}

/** A fresh idempotency key. */
export const idemKey = (): string => `k-${randomBytes(8).toString('hex')}`;

/** A user and the account they hold. */
export type Holder = { actor: Actor; account: Account };

/**
 * A new depositor (a user row, as createUser) with an open account in `currency`, funded by their
 * own deposit of `funds` through the ledger (none when 0).
 */
export async function fundedHolder(db: CommonQueryMethods, ledger: Pick<LedgerService, 'openAccount' | 'deposit'>, funds = 0n, currency = 'USD'): Promise<Holder> {
  const actor = await createUser(db);
  const account = await ledger.openAccount(actor, { currency });
  if (funds > 0n) await ledger.deposit(actor, { accountId: account.id, amount: funds, idempotencyKey: idemKey() });
  return { actor, account };
}

/** An account's balance as stored. */
export const balanceOf = (db: CommonQueryMethods, accountId: bigint): Promise<bigint> =>
  db.oneFirst(sql.type(z.object({ balance: z.bigint() }))`SELECT balance FROM accounts WHERE id = ${accountId}`);

/**
 * Holds the account's row lock in its own transaction until `release()`, so a money movement on it
 * stays in flight (for graceful-shutdown tests). Resolves once the lock is held.
 */
export async function holdAccountLock(pool: DatabasePool, accountId: bigint): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = pool.transaction(async (tx) => {
    await tx.query(sql.type(z.object({ id: z.bigint() }))`SELECT id FROM accounts WHERE id = ${accountId} FOR UPDATE`);
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await holder;
    },
  };
}
