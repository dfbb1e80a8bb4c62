// Regenerates proto/gen from the contract (`npm run proto:generate`), or, with --check, generates
// into a temporary folder and fails when proto/gen differs (`npm run proto:check`, CI).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const protoDir = path.resolve(import.meta.dirname, '..');
const genDir = path.join(protoDir, 'gen');

/** Runs `buf generate` in proto/; `outBase` redirects the output (buf's --output). */
export function generate(outBase?: string): void {
  const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
  const args = [buf, 'generate', ...(outBase ? ['--output', outBase] : [])];
  const result = spawnSync(process.execPath, args, { cwd: protoDir, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`buf generate failed (${result.status}): ${result.stderr}${result.stdout}`);
}

function listFiles(dir: string, prefix = ''): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

/** Files of proto/gen that differ from a fresh generation (added, missing or changed). */
export function staleGeneratedFiles(): string[] {
  const base = mkdtempSync(path.join(tmpdir(), 'bank-proto-'));
  try {
    generate(base);
    const fresh = path.join(base, 'gen');
    const expected = listFiles(fresh);
    const actual = listFiles(genDir);
    const stale = new Set<string>();
    for (const file of expected) {
      if (!actual.includes(file)) stale.add(`${file} (missing)`);
      else if (!readFileSync(path.join(fresh, file)).equals(readFileSync(path.join(genDir, file)))) stale.add(`${file} (changed)`);
    }
    for (const file of actual) if (!expected.includes(file)) stale.add(`${file} (not generated any more)`);
    return [...stale].sort();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  if (process.argv.includes('--check')) {
    const stale = staleGeneratedFiles();
    if (stale.length > 0) {
      console.error(`proto/gen is stale; run \`npm run proto:generate\`:\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log('proto/gen is up to date');
  } else {
    generate();
    console.log('generated proto/gen');
  }
}
