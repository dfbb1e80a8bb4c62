// The application's database role, against the real PostgreSQL: the migrator makes it and grants
// it DML only, as an owner that is not a superuser (as on RDS), also when two databases of one
// cluster migrate at once (roles are cluster-wide; the migrator's advisory lock is per database).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createDatabasePool, type DatabasePool } from '@bank/shared/db/pool';
import { LedgerService } from '@bank/shared/ledger/ledger.service';
import { ledgerRepository } from '@bank/shared/ledger/ledger.repository';
import { createUser, idemKey } from '../../../test/factories.ts';
import { checkLedgerInvariants } from '../../../test/ledger-invariants.ts';
import { TEST_DATABASE_URL } from '../../../test/services.ts';
import { ensureAppRole, scramSha256Verifier } from './app-role.ts';
import { DEFAULT_MIGRATIONS_DIR, migrateUp } from './migrator.ts';

const suffix = randomBytes(4).toString('hex');
/** The schema's owner: may log in and create roles, nothing more (RDS's master user is no superuser either). */
const OWNER = `bank_owner_${suffix}`;
const databases: string[] = [];
const roles: string[] = [OWNER];

function urlFor(user: string, database: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.username = user;
  url.password = '';
  url.pathname = `/${database}`;
  return url.toString();
}

async function asAdmin<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A fresh, empty database owned by OWNER. */
async function ownedDatabase(): Promise<string> {
  const name = `bank_role_${randomBytes(5).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${name} OWNER ${OWNER}`);
  databases.push(name);
  return name;
}

async function connect(user: string, database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlFor(user, database) });
  await client.connect();
  return client;
}

const appRoleName = () => {
  const name = `bank_app_${randomBytes(4).toString('hex')}`;
  roles.push(name);
  return name;
};

beforeAll(async () => {
  await asAdmin(`CREATE ROLE ${OWNER} LOGIN CREATEROLE`);
});
afterAll(async () => {
  for (const name of databases) await asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  for (const name of roles.reverse()) await asAdmin(`DROP ROLE IF EXISTS ${name}`);
});

describe('the application role', () => {
  it('is created once when two fresh databases of one cluster migrate at the same moment', async () => {
    const role = appRoleName();
    const [a, b] = [await ownedDatabase(), await ownedDatabase()];
    const lines: string[] = [];
    const results = await Promise.all(
      [a, b].map((database) => migrateUp(urlFor(OWNER, database), { appRole: { name: role }, log: (line) => lines.push(line) })),
    );
    expect(results.map((result) => result.applied.length > 0)).toEqual([true, true]);
    expect(await asAdmin(`SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1`, [role])).toEqual([
      { rolname: role, rolcanlogin: true, rolsuper: false, rolcreaterole: false, rolcreatedb: false },
    ]);
    expect(lines.filter((line) => line === `created role ${role}`).length).toBeLessThanOrEqual(1);
    for (const database of [a, b]) {
      const app = await connect(role, database);
      try {
        await expect(app.query('SELECT count(*) FROM accounts')).resolves.toBeDefined();
      } finally {
        await app.end();
      }
    }
  });

  it('is taken as made when another session creates it while this one is about to', async () => {
    const role = appRoleName();
    const database = await ownedDatabase();
    // A transaction elsewhere holds the new role uncommitted: ours does not see it, tries to
    // create it too, waits on pg_authid's unique index, and loses when the other commits.
    const other = await connect(OWNER, database);
    await other.query('BEGIN');
    await other.query(`CREATE ROLE ${role} LOGIN`);
    const migrator = await connect(OWNER, database);
    try {
      const [{ pid: migratorPid } = { pid: 0 }] = (await migrator.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
      const ensuring = ensureAppRole(migrator, { name: role });
      for (let waited = 0; ; waited += 20) {
        const [state] = await asAdmin<{ wait_event_type: string | null }>('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [migratorPid]);
        if (state?.wait_event_type === 'Lock') break;
        if (waited > 10_000) throw new Error('the second CREATE ROLE never waited for the first');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await other.query('COMMIT');
      await expect(ensuring).resolves.toEqual({ created: false });
      await expect(ensureAppRole(migrator, { name: role })).resolves.toEqual({ created: false });
    } finally {
      await other.end();
      await migrator.end();
    }
  });

  describe('on a migrated database', () => {
    let role: string;
    let database: string;
    let app: pg.Client;
    let pool: DatabasePool;

    beforeAll(async () => {
      role = appRoleName();
      database = await ownedDatabase();
      await migrateUp(urlFor(OWNER, database), { appRole: { name: role } });
      app = await connect(role, database);
      pool = await createDatabasePool(urlFor(role, database), { maximumPoolSize: 4 });
    });
    afterAll(async () => {
      await app?.end();
      await pool?.end();
    });

    it('reads and writes rows and runs the ledger functions: accounts, deposits, transfers, holds, expiry', async () => {
      const ledger = new LedgerService({ pool });
      const [alice, bob] = [await createUser(pool), await createUser(pool)];
      const [from, to] = [await ledger.openAccount(alice, { currency: 'USD' }), await ledger.openAccount(bob, { currency: 'USD' })];
      await ledger.deposit(alice, { accountId: from.id, amount: 1_000n, idempotencyKey: idemKey() });
      const move = { fromAccountId: from.id, toAccountId: to.id, currency: 'USD' };
      await ledger.transfer(alice, { ...move, amount: 100n, idempotencyKey: idemKey() });
      const held = await ledger.transfer(alice, { ...move, amount: 200n, idempotencyKey: idemKey(), hold: { ttlSeconds: 600 } });
      await ledger.captureTransfer(alice, { transferId: held.transfer.id, amount: 150n, idempotencyKey: idemKey() });
      expect(await ledgerRepository.expireHolds(pool, 100)).toBe(0);
      expect((await ledger.getAccount(alice, from.id)).balance).toBe(750n);
      expect(await checkLedgerInvariants(pool)).toEqual([]);
    });

    it.each([
      ['CREATE TABLE', 'CREATE TABLE sneaky (id int)'],
      ['CREATE FUNCTION', `CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'`],
      ['ALTER TABLE', 'ALTER TABLE accounts ADD COLUMN sneaky int'],
      ['DROP TABLE', 'DROP TABLE outbox'],
      ['CREATE INDEX', 'CREATE INDEX sneaky ON users (email)'],
      ['TRUNCATE', 'TRUNCATE outbox'],
      ['a read of schema_migrations', 'SELECT * FROM schema_migrations'],
      ['a write to schema_migrations', `DELETE FROM schema_migrations`],
    ])('is refused %s (insufficient_privilege)', async (_what, statement) => {
      await expect(app.query(statement)).rejects.toMatchObject({ code: '42501' });
    });

    it('gets the same on tables later migrations add, and, by default privileges, on anything its owner creates later', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'bank-role-migrations-'));
      try {
        await cp(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
        await writeFile(path.join(dir, '9001_later_table.sql'), 'CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);\n');
        await migrateUp(urlFor(OWNER, database), { dir, appRole: { name: role } });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      await app.query(`INSERT INTO later_table (note) VALUES ('granted by the migration run')`);
      // Created by the owner outside any migration run: only the default privileges cover it.
      const owner = await connect(OWNER, database);
      try {
        await owner.query('CREATE TABLE owner_table (id serial PRIMARY KEY, note text)');
        await owner.query(`CREATE FUNCTION owner_function() RETURNS int LANGUAGE sql AS 'SELECT 41 + 1'`);
      } finally {
        await owner.end();
      }
      await app.query(`INSERT INTO owner_table (note) VALUES ('granted by default')`);
      expect((await app.query('UPDATE owner_table SET note = $1 RETURNING id', ['changed'])).rowCount).toBe(1);
      expect((await app.query<{ n: number }>('SELECT owner_function() AS n')).rows).toEqual([{ n: 42 }]);
      await expect(app.query('TRUNCATE owner_table')).rejects.toMatchObject({ code: '42501' });
    });
  });

  it('gets APP_DATABASE_PASSWORD as a SCRAM-SHA-256 verifier the server itself would have made', async () => {
    const role = appRoleName();
    const database = await ownedDatabase();
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    await migrateUp(urlFor(OWNER, database), { appRole: { name: role, password } });
    const [stored] = await asAdmin<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored?.rolpassword ?? '');
    expect(match).not.toBeNull();
    expect(stored?.rolpassword).toBe(scramSha256Verifier(password, Buffer.from(match?.[2] ?? '', 'base64'), Number(match?.[1])));
    // PostgreSQL's own derivation, from the plain password, with the same salt and iteration count.
    const reference = `bank_scram_${suffix}`;
    roles.push(reference);
    await asAdmin(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${reference} PASSWORD ${pg.escapeLiteral(password)}`);
    const [theirs] = await asAdmin<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [reference]);
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(theirs?.rolpassword ?? '') ?? [];
    expect(scramSha256Verifier(password, Buffer.from(salt ?? '', 'base64'), Number(iterations))).toBe(theirs?.rolpassword);
  });

  it('CLI: migrates with MIGRATION_DATABASE_URL, not DATABASE_URL, and makes the role APP_DATABASE_ROLE names', async () => {
    const role = appRoleName();
    const database = await ownedDatabase();
    const env = {
      ...process.env,
      AWS_SECRETS_MANAGER_SECRET_ID: '',
      // The application's URL, which the migrator must not use when its own is set: nothing listens there.
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nowhere',
      MIGRATION_DATABASE_URL: urlFor(OWNER, database),
      APP_DATABASE_ROLE: role,
    };
    const up = await promisify(execFile)(process.execPath, [path.resolve(import.meta.dirname, 'main.ts'), 'up'], { env });
    expect(up.stdout).toContain(`migrator: created role ${role}`);
    const app = await connect(role, database);
    try {
      await expect(app.query('SELECT count(*) FROM users')).resolves.toBeDefined();
    } finally {
      await app.end();
    }
  });

  it('is refused when it would be the migrator itself or a superuser', async () => {
    const database = await ownedDatabase();
    await expect(migrateUp(urlFor(OWNER, database), { appRole: { name: OWNER } })).rejects.toThrow(/the role the migrator connects as/);
    const superuser = `bank_super_${suffix}`;
    roles.push(superuser);
    await asAdmin(`CREATE ROLE ${superuser} SUPERUSER`);
    await expect(migrateUp(urlFor(OWNER, database), { appRole: { name: superuser } })).rejects.toThrow(/is a superuser/);
    await expect(migrateUp(urlFor(OWNER, database), { appRole: { name: 'Robert"; DROP' } })).rejects.toThrow(/must match/);
  });
});
