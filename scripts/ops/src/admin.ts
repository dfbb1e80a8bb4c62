// npm run admin -- grant-role <username> banker [--reason <text>]
// npm run admin -- revoke-role <username> banker [--reason <text>]
//
// The operator's way to make a user a banker and back: not an HTTP route, so no API token can
// ever grant a role. Connects with DATABASE_URL (configured like the migrator: the environment,
// or AWS Secrets Manager), changes `users.role`, writes the `audit_events` row and revokes the
// user's sessions in one transaction, then tells every process through Redis to stop trusting
// those sessions. Prints one line. Exit codes: 0 done (or nothing to do), 2 usage, 3 user not
// found, 1 anything else (database unreachable, bad configuration...).
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { SessionLiveness, type SessionRevocations } from '@bank/shared/auth/session-liveness';
import { parseProcessConfig } from '@bank/shared/config/config';
import { loadSecretsIntoEnv } from '@bank/shared/config/secrets';
import { createDatabasePool } from '@bank/shared/db/pool';
import { isDomainError } from '@bank/shared/errors/domain-error';
import { createRedis, type Redis } from '@bank/shared/redis/redis';
import { RoleService, type RoleChangeResult } from '@bank/shared/users/role.service';

// Imports nothing of this workspace but @bank/shared: the images carry this one file (see the
// Dockerfile), so `kubectl exec` into a running pod or a Job on the migrator image can run it.
export type Output = { log: (line: string) => void; error: (line: string) => void };
const consoleOutput: Output = { log: (line) => console.log(line), error: (line) => console.error(line) };

export const ADMIN_EXIT = { ok: 0, unexpected: 1, usage: 2, userNotFound: 3 } as const;
export type AdminExitCode = (typeof ADMIN_EXIT)[keyof typeof ADMIN_EXIT];

export const ADMIN_USAGE = 'usage: npm run admin -- grant-role|revoke-role <username> banker [--reason <text>]';

export type AdminCommand = { command: 'grant-role' | 'revoke-role'; username: string; reason: string | undefined };

class UsageError extends Error {}

/** @throws UsageError (exit code 2) on anything but a known command, a username, `banker` and an optional --reason */
export function parseAdminArgs(argv: readonly string[]): AdminCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { reason: { type: 'string' } } });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const [command, username, role, ...extra] = parsed.positionals;
  if (command !== 'grant-role' && command !== 'revoke-role') throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  if (!username) throw new UsageError('no username given');
  if (role !== 'banker') throw new UsageError(role ? `unknown role "${role}" (only banker can be granted or revoked)` : 'no role given');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (parsed.values.reason !== undefined && parsed.values.reason.trim() === '') throw new UsageError('--reason must not be empty');
  return { command, username, reason: parsed.values.reason };
}

/** `operator:<ADMIN_ACTOR>` when set (a Job runs as a container user, so name the human), else `operator:<OS user>`. */
export function operatorActor(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.ADMIN_ACTOR?.trim();
  if (named) return `operator:${named}`;
  try {
    return `operator:${userInfo().username}`;
  } catch {
    // A container user without a passwd entry has a uid but no name.
    return `operator:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/** The one line printed for a result. */
export function describeResult(input: AdminCommand, result: RoleChangeResult): string {
  if (result.outcome === 'unchanged') {
    return input.command === 'grant-role'
      ? `admin: ${input.username} is already a banker; nothing changed, no audit event written`
      : `admin: ${input.username} is not a banker; nothing changed, no audit event written`;
  }
  const done = input.command === 'grant-role' ? `granted banker to ${input.username}` : `revoked banker from ${input.username} (now a depositor)`;
  return `admin: ${done}; audit event ${result.auditEvent.id}; ${result.revokedSessions.length} session(s) revoked, so the new role applies from the next login`;
}

/** Runs one admin command against the configured database; never throws. */
export async function runAdmin(argv: readonly string[], out: Output = consoleOutput, env: NodeJS.ProcessEnv = process.env): Promise<AdminExitCode> {
  let input: AdminCommand;
  try {
    input = parseAdminArgs(argv);
  } catch (error) {
    out.error(`admin: ${(error as Error).message}`);
    out.error(ADMIN_USAGE);
    return ADMIN_EXIT.usage;
  }
  let redis: Redis | undefined;
  try {
    await loadSecretsIntoEnv();
    const config = parseProcessConfig('admin', env);
    const pool = await createDatabasePool(config.DATABASE_URL, { maximumPoolSize: 1, applicationName: 'bank-admin', preparedStatements: config.DATABASE_PREPARED_STATEMENTS });
    // Redis is opened only when there are sessions to announce: a role change with none needs no Redis.
    const revocations: SessionRevocations = {
      revoked: (sessionIds) => {
        redis ??= createRedis(config.REDIS_URL);
        const channel = `${config.REDIS_KEY_PREFIX}sessions:revoked`;
        return new SessionLiveness({ ttlMs: 0, publish: { redis, channel } }).revoked(sessionIds);
      },
    };
    try {
      const roles = new RoleService({ pool, sessionRevocations: revocations });
      const change = { username: input.username, actor: operatorActor(env), reason: input.reason };
      const result = input.command === 'grant-role' ? await roles.grantBanker(change) : await roles.revokeBanker(change);
      out.log(describeResult(input, result));
      return ADMIN_EXIT.ok;
    } finally {
      await pool.end();
    }
  } catch (error) {
    if (isDomainError(error) && error.code === 'USER_NOT_FOUND') {
      out.error(`admin: user ${input.username} not found`);
      return ADMIN_EXIT.userNotFound;
    }
    if (isDomainError(error) && error.code === 'INVALID_ARGUMENT') {
      out.error(`admin: ${error.message}`);
      return ADMIN_EXIT.usage;
    }
    out.error(`admin: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`);
    return ADMIN_EXIT.unexpected;
  } finally {
    redis?.disconnect();
  }
}

if (import.meta.main) {
  process.exitCode = await runAdmin(process.argv.slice(2));
}
