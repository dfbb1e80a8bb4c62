// What a machine without PostgreSQL looks like to `npm start`, on a machine that has it: a PATH
// without the folders holding the server programs, a folder that does not exist where installed
// versions are searched (BANK_POSTGRES_SEARCH_DIR), and a local port nothing listens on
// (BANK_LOCAL_POSTGRES_PORT), since this machine's own server answers on 5432.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SERVER_PROGRAMS = ['initdb', 'postgres', 'pg_ctl'];

/** PATH without every folder that holds a PostgreSQL server program. */
export function pathWithoutPostgres(pathValue = process.env.PATH ?? ''): string {
  return pathValue
    .split(path.delimiter)
    .filter((dir) => dir && !SERVER_PROGRAMS.some((program) => existsSync(path.join(dir, program))))
    .join(path.delimiter);
}

/** Environment overrides that hide this machine's PostgreSQL (DATABASE_URL must be unset too). */
export function withoutPostgres(unusedPort: number): NodeJS.ProcessEnv {
  return {
    PATH: pathWithoutPostgres(),
    BANK_POSTGRES_SEARCH_DIR: path.join(os.tmpdir(), `no-postgres-${randomUUID()}`),
    BANK_LOCAL_POSTGRES_PORT: String(unusedPort),
  };
}
