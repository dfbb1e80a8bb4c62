import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The database role the API, gRPC and worker processes log in as (their DATABASE_URL): it may
 * read and write rows, use sequences and call the ledger functions, and nothing else: no DDL, no
 * TRUNCATE, no schema_migrations. The migrator, which owns every object it creates, makes the
 * role and grants to it after each run, so the grants follow the schema.
 */

/** SQL identifiers we create: lower case, no quoting surprises, within PostgreSQL's 63 bytes. */
export const ROLE_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export class AppRoleError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppRoleError';
  }
}

export type AppRoleOptions = {
  /** APP_DATABASE_ROLE. */
  name: string;
  /** APP_DATABASE_PASSWORD: set (as a SCRAM verifier) on every run when given; left alone when not. */
  password?: string | undefined;
};

const DUPLICATE_OBJECT = '42710';
// Two sessions inserting the same role name at once: the loser waits for the winner's commit and
// then fails on pg_authid's unique index rather than with "already exists".
const UNIQUE_VIOLATION = '23505';
// ALTER ROLE updates pg_authid's row in place; a second session doing the same at that moment
// gets this internal error instead of waiting.
const TUPLE_CONCURRENTLY_UPDATED = /tuple concurrently updated/;

const codeOf = (error: unknown) => (error as { code?: string }).code;

/**
 * Creates the role when it does not exist, LOGIN and nothing more; sets its password when one is
 * given. Roles belong to the whole cluster while the migrator's advisory lock belongs to one
 * database (PostgreSQL scopes advisory locks by database), so two databases migrating at once on
 * one cluster are not serialized by it: a concurrent creation is recognised by its error codes and
 * counted as done.
 *
 * @throws AppRoleError when the name is not a plain identifier, is the migrator's own role, or
 *   names an existing superuser (whose grants would mean nothing).
 */
export async function ensureAppRole(client: pg.Client, options: AppRoleOptions): Promise<{ created: boolean }> {
  const { name, password } = options;
  if (!ROLE_NAME_PATTERN.test(name)) throw new AppRoleError(`APP_DATABASE_ROLE "${name}" must match ${ROLE_NAME_PATTERN.source}`);
  const self = await client.query<{ me: string }>('SELECT current_user AS me');
  if (self.rows[0]?.me === name) {
    throw new AppRoleError(`APP_DATABASE_ROLE "${name}" is the role the migrator connects as; the application needs a role of its own`);
  }
  const role = pg.escapeIdentifier(name);
  let created = false;
  const existing = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [name]);
  if (existing.rows[0]?.rolsuper) throw new AppRoleError(`APP_DATABASE_ROLE "${name}" is a superuser; the application role must hold only the grants given here`);
  if (existing.rows.length === 0) {
    try {
      await client.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`);
      created = true;
    } catch (error) {
      if (codeOf(error) !== DUPLICATE_OBJECT && codeOf(error) !== UNIQUE_VIOLATION) throw error;
    }
  }
  if (password !== undefined) {
    // A verifier computed here, so the password itself never reaches the server (or its logs).
    const verifier = pg.escapeLiteral(scramSha256Verifier(password));
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query(`ALTER ROLE ${role} PASSWORD ${verifier}`);
        break;
      } catch (error) {
        if (attempt >= 5 || !TUPLE_CONCURRENTLY_UPDATED.test((error as Error).message)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  }
  return { created };
}

/**
 * Grants the role what the processes use, in one transaction, on everything in schema public as
 * it is now and (default privileges) on what this migrator's role creates later, then takes back
 * schema_migrations. Run by the migrator after its migrations, under its advisory lock. Needs the
 * migrator's role to own the objects (it created them) and the schema (PostgreSQL 15's public
 * schema belongs to the database owner).
 */
export async function grantAppRole(client: pg.Client, name: string): Promise<void> {
  const role = pg.escapeIdentifier(name);
  await client.query('BEGIN');
  try {
    // The schema's own grants are touched only when needed, so a migrator role that does not own
    // schema public is not stopped by them: PostgreSQL 15 gives PUBLIC no CREATE there any more
    // (before 15 it did, which would let the role create tables) and USAGE to everyone.
    const schema = await client.query<{ public_creates: boolean; usage: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
                       WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') AS public_creates,
              has_schema_privilege($1, 'public', 'USAGE') AS usage`,
      [name],
    );
    if (schema.rows[0]?.public_creates) await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    if (!schema.rows[0]?.usage) await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await client.query(`
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
      GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${role};
      GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${role};
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO ${role};
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO ${role};
      REVOKE ALL ON schema_migrations FROM ${role};
    `);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/**
 * PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, 7677):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, which ALTER ROLE ... PASSWORD
 * stores as it is. The password is used as its UTF-8 bytes: APP_DATABASE_PASSWORD is printable
 * ASCII, where SASLprep (which the server and the clients apply) changes nothing.
 */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
