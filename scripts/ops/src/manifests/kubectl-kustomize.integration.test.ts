// Rendering with the real `kubectl kustomize`, and the one line (exit 7) an operator gets when
// kubectl is missing or older than 1.27, from the function and from the deploy script as a process.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { EXIT, OperatorError } from '../k8s/errors.ts';
import { checkKubectl, renderKustomization } from './kubectl-kustomize.ts';

const root = path.resolve(import.meta.dirname, '../../../..');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A kubectl impostor that reports `version` and prints `manifest` for `kustomize`. */
async function fakeKubectl(version: { major: string; minor: string; gitVersion: string }, manifest = ''): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-kubectl-'));
  dirs.push(dir);
  const file = path.join(dir, 'kubectl');
  const script = [
    '#!/bin/sh',
    `if [ "$1" = version ]; then echo '${JSON.stringify({ clientVersion: version })}'; exit 0; fi`,
    `if [ "$1" = kustomize ]; then cat <<'EOF'\n${manifest}\nEOF\nexit 0; fi`,
    'exit 64',
  ].join('\n');
  await writeFile(file, `${script}\n`);
  await chmod(file, 0o755);
  return file;
}

async function rejection(promise: Promise<unknown>): Promise<OperatorError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OperatorError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('renderKustomization (kubectl kustomize)', () => {
  it.each(['deploy/kind', 'deploy/kind/no-aws', 'deploy/eks'])('renders %s into namespaced bank objects', async (directory) => {
    const objects = await renderKustomization(path.join(root, directory));
    expect(objects.length).toBeGreaterThan(10);
    expect(objects[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'bank' } });
    const deployments = objects.filter((object) => object.kind === 'Deployment');
    expect(deployments.map((object) => object.metadata.namespace)).toEqual(deployments.map(() => 'bank'));
    expect(deployments.map((object) => object.metadata.name)).toEqual(expect.arrayContaining(['bank-api', 'bank-grpc', 'bank-worker']));
  });

  it('this machine has kubectl >= 1.27 (a prerequisite of the manifest tier)', async () => {
    expect(await checkKubectl()).toMatch(/^v1\.\d+/);
  });

  it('says in one line that kubectl is missing (exit 7)', async () => {
    const error = await rejection(renderKustomization(path.join(root, 'deploy/kind'), { kubectl: path.join(os.tmpdir(), 'no-such-dir', 'kubectl') }));
    expect(error.exitCode).toBe(EXIT.missingProgram);
    expect(error.message).toMatch(/^kubectl is not installed \(.*kubectl not found on PATH\): the manifests are rendered with `kubectl kustomize`; install kubectl >= 1\.27$/);
  });

  it('refuses a kubectl older than 1.27 and accepts 1.27 with a vendor suffix', async () => {
    const old = await fakeKubectl({ major: '1', minor: '26', gitVersion: 'v1.26.15' });
    const error = await rejection(renderKustomization(path.join(root, 'deploy/kind'), { kubectl: old }));
    expect(error.exitCode).toBe(EXIT.missingProgram);
    expect(error.message).toBe('kubectl v1.26.15 is too old: the manifests are rendered with `kubectl kustomize` of kubectl >= 1.27; upgrade kubectl');

    const manifest = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: bank\ndata:\n  A: "1"';
    const floor = await fakeKubectl({ major: '1', minor: '27+', gitVersion: 'v1.27.0-eks' }, manifest);
    expect(await renderKustomization('/anywhere', { kubectl: floor })).toEqual([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one', namespace: 'bank' }, data: { A: '1' } },
    ]);
  });

  it('a kustomization kubectl refuses fails with its first error line (exit 1)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bad-kustomization-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'kustomization.yaml'), 'resources: [missing.yaml]\n');
    const error = await rejection(renderKustomization(dir));
    expect(error.exitCode).toBe(EXIT.unexpected);
    expect(error.message).toMatch(new RegExp(`^kubectl kustomize ${dir.replaceAll('.', '\\.')} failed: .*missing\\.yaml`));
  });

  it('npm run deploy without kubectl on PATH prints one error line and exits 7', async () => {
    // A PATH holding only node, wherever node and kubectl are installed on this machine.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'node-only-'));
    dirs.push(bin);
    await symlink(process.execPath, path.join(bin, 'node'));
    const env = { ...process.env, PATH: bin };
    const script = path.join(root, 'scripts/ops/src/deploy.ts');
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', script, '--env', 'kind', '--tag', 'abc1234', '--dry-run'], { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code).toBe(EXIT.missingProgram);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([
      'error: kubectl is not installed (kubectl not found on PATH): the manifests are rendered with `kubectl kustomize`; install kubectl >= 1.27',
    ]);
  });
});
