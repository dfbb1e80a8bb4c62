// The admin command against a real database: the role, its audit row and the user's sessions
// change together or not at all, and the command's exit codes as an operator sees them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'slonik';
import { z } from 'zod';
import { sessionRepository } from '@bank/shared/auth/session.repository';
import { RoleService } from '@bank/shared/users/role.service';
import { createTestDatabase, type TestDatabase } from '../../../test/db.ts';
import { createUser } from '../../../test/factories.ts';
import { TEST_REDIS_URL } from '../../../test/services.ts';
import { ADMIN_EXIT, runAdmin } from './admin.ts';

const ADMIN_SCRIPT = path.join(import.meta.dirname, 'admin.ts');
const run = promisify(execFile);

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 4 });
});

afterAll(async () => {
  await db?.drop();
});

const roleOf = (username: string) => db.pool.oneFirst(sql.type(z.object({ role: z.string() }))`SELECT role FROM users WHERE username = ${username}`);
const auditRowsFor = (username: string) =>
  db.pool.any(sql.type(z.object({ actor: z.string(), action: z.string(), reason: z.string().nullable() }))`
    SELECT actor, action, reason FROM audit_events WHERE target = ${username} ORDER BY id`);

async function activeSession(username: string): Promise<string> {
  const id = randomUUID();
  await sessionRepository.insertPending(db.pool, { id, username, expiresAt: new Date(Date.now() + 3_600_000) });
  await db.pool.query(sql.unsafe`UPDATE sessions SET status = 'active' WHERE id = ${id}`);
  return id;
}
const sessionStatus = (id: string) => db.pool.oneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM sessions WHERE id = ${id}`);

/** Captures what the command prints. */
function capture() {
  const lines: { log: string[]; error: string[] } = { log: [], error: [] };
  return { lines, out: { log: (line: string) => lines.log.push(line), error: (line: string) => lines.error.push(line) } };
}

const env = (extra: Record<string, string> = {}) => ({ ...process.env, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, ADMIN_ACTOR: 'ops-alice', ...extra });

describe('the role change use case', () => {
  it('grants banker: sets the role, writes one audit row and revokes the user\'s sessions, in one go', async () => {
    const user = await createUser(db.pool);
    const session = await activeSession(user.username);
    const revokedAnnounced: string[] = [];
    const roles = new RoleService({ pool: db.pool, sessionRevocations: { revoked: async (ids) => void revokedAnnounced.push(...ids) } });

    const result = await roles.grantBanker({ username: user.username, actor: 'operator:test', reason: 'new teller' });

    expect(result).toMatchObject({ outcome: 'changed', previousRole: 'depositor', user: { role: 'banker' }, revokedSessions: [session] });
    expect(await roleOf(user.username)).toBe('banker');
    expect(await auditRowsFor(user.username)).toEqual([{ actor: 'operator:test', action: 'role_granted', reason: 'new teller' }]);
    expect(await sessionStatus(session)).toBe('revoked');
    expect(revokedAnnounced).toEqual([session]);
  });

  it('granting a banker again changes nothing and writes no audit row', async () => {
    const user = await createUser(db.pool, { role: 'banker' });
    const session = await activeSession(user.username);
    const roles = new RoleService({ pool: db.pool });

    const result = await roles.grantBanker({ username: user.username, actor: 'operator:test' });

    expect(result.outcome).toBe('unchanged');
    expect(await auditRowsFor(user.username)).toEqual([]);
    expect(await sessionStatus(session)).toBe('active');
  });

  it('revokes banker back to depositor with a role_revoked row without a reason', async () => {
    const user = await createUser(db.pool, { role: 'banker' });
    const roles = new RoleService({ pool: db.pool });

    const result = await roles.revokeBanker({ username: user.username, actor: 'operator:test' });

    expect(result).toMatchObject({ outcome: 'changed', previousRole: 'banker', user: { role: 'depositor' } });
    expect(await roleOf(user.username)).toBe('depositor');
    expect(await auditRowsFor(user.username)).toEqual([{ actor: 'operator:test', action: 'role_revoked', reason: null }]);
    expect((await roles.revokeBanker({ username: user.username, actor: 'operator:test' })).outcome).toBe('unchanged');
  });

  it('when the audit row cannot be written, the role and the sessions stay as they were', async () => {
    const user = await createUser(db.pool);
    const session = await activeSession(user.username);
    await db.pool.query(sql.unsafe`
      CREATE FUNCTION refuse_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused for the test'; END; $$`);
    await db.pool.query(sql.unsafe`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_audit_insert()`);
    try {
      await expect(new RoleService({ pool: db.pool }).grantBanker({ username: user.username, actor: 'operator:test' })).rejects.toThrow(/audit refused for the test/);
    } finally {
      await db.pool.query(sql.unsafe`DROP TRIGGER refuse_audit ON audit_events`);
    }
    expect(await roleOf(user.username)).toBe('depositor');
    expect(await auditRowsFor(user.username)).toEqual([]);
    expect(await sessionStatus(session)).toBe('active');
  });

  it('refuses an unknown user and an empty or overlong reason', async () => {
    const roles = new RoleService({ pool: db.pool });
    await expect(roles.grantBanker({ username: 'nobody_here', actor: 'operator:test' })).rejects.toMatchObject({ code: 'USER_NOT_FOUND' });
    const user = await createUser(db.pool);
    await expect(roles.grantBanker({ username: user.username, actor: 'operator:test', reason: ' ' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(roles.grantBanker({ username: user.username, actor: 'operator:test', reason: 'x'.repeat(501) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await roleOf(user.username)).toBe('depositor');
  });

  it('the audit trail is append-only', async () => {
    const user = await createUser(db.pool);
    await new RoleService({ pool: db.pool }).grantBanker({ username: user.username, actor: 'operator:test' });
    await expect(db.pool.query(sql.unsafe`UPDATE audit_events SET reason = 'rewritten' WHERE target = ${user.username}`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query(sql.unsafe`DELETE FROM audit_events WHERE target = ${user.username}`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query(sql.unsafe`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
    await expect(db.pool.query(sql.unsafe`INSERT INTO audit_events (actor, action, target) VALUES ('operator:test', 'account_deleted', 'x')`)).rejects.toMatchObject({ constraint: 'audit_events_action_known' });
  });
});

describe('npm run admin', () => {
  it('prints one line and names the operator as actor (in process)', async () => {
    const user = await createUser(db.pool);
    const { lines, out } = capture();
    expect(await runAdmin(['grant-role', user.username, 'banker', '--reason', 'ticket 42'], out, env())).toBe(ADMIN_EXIT.ok);
    expect(lines.log).toEqual([expect.stringMatching(new RegExp(`^admin: granted banker to ${user.username}; audit event \\d+; 0 session\\(s\\) revoked`))]);
    expect(await auditRowsFor(user.username)).toEqual([{ actor: 'operator:ops-alice', action: 'role_granted', reason: 'ticket 42' }]);

    const again = capture();
    expect(await runAdmin(['grant-role', user.username, 'banker'], again.out, env())).toBe(ADMIN_EXIT.ok);
    expect(again.lines.log).toEqual([`admin: ${user.username} is already a banker; nothing changed, no audit event written`]);
    expect(await auditRowsFor(user.username)).toHaveLength(1);
  });

  it('as a child process: exit 0 on a change, 3 for an unknown user, 2 for bad usage, 1 when the database is unreachable', async () => {
    const user = await createUser(db.pool, { role: 'banker' });
    await activeSession(user.username);
    const node = (args: string[], extra: Record<string, string> = {}) =>
      run(process.execPath, ['--disable-warning=ExperimentalWarning', ADMIN_SCRIPT, ...args], { env: env(extra) }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );

    const revoked = await node(['revoke-role', user.username, 'banker']);
    expect(revoked).toMatchObject({ code: 0, stderr: '' });
    expect(revoked.stdout).toMatch(new RegExp(`^admin: revoked banker from ${user.username} \\(now a depositor\\); audit event \\d+; 1 session\\(s\\) revoked`));
    expect(await roleOf(user.username)).toBe('depositor');

    expect(await node(['grant-role', 'nobody_here', 'banker'])).toMatchObject({ code: 3, stderr: 'admin: user nobody_here not found\n' });
    for (const args of [[], ['promote', user.username, 'banker'], ['grant-role', user.username], ['grant-role', user.username, 'admin'], ['grant-role', user.username, 'banker', '--force']]) {
      const usage = await node(args);
      expect({ args, code: usage.code }).toEqual({ args, code: 2 });
      expect(usage.stderr).toContain('usage: npm run admin -- grant-role|revoke-role <username> banker');
    }
    const unreachable = await node(['grant-role', user.username, 'banker'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/bank' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^admin: /);
    expect(await roleOf(user.username)).toBe('depositor');
  });
});
