import { createPrivateKey } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { kindSecrets, kindUp, kindUpCommands, parseKindUpArgs, INGRESS_NGINX_MANIFEST } from './kind-up.ts';
import { runCli } from './cli.ts';
import { EXIT } from './k8s/errors.ts';
import { captureOutput } from '../../../test/support/ops-cli.ts';

const capture = captureOutput;

describe('kind-up', () => {
  it('creates the cluster once, builds and loads each image, then installs ingress-nginx and External Secrets', () => {
    const commands = kindUpCommands({ tag: 'dev', noAws: false, dryRun: true, repoRoot: '/repo' }).map((command) => `${command.command} ${command.args.join(' ')}`);
    expect(commands).toEqual([
      'kind create cluster --config /repo/deploy/kind/cluster.yaml',
      'docker build --target api -t bank-api:dev /repo',
      'kind load docker-image bank-api:dev --name bank',
      'docker build --target grpc -t bank-grpc:dev /repo',
      'kind load docker-image bank-grpc:dev --name bank',
      'docker build --target worker -t bank-worker:dev /repo',
      'kind load docker-image bank-worker:dev --name bank',
      'docker build --target migrator -t bank-migrator:dev /repo',
      'kind load docker-image bank-migrator:dev --name bank',
      `kubectl --context kind-bank apply -f ${INGRESS_NGINX_MANIFEST}`,
      'kubectl --context kind-bank -n ingress-nginx wait --for=condition=ready pod -l app.kubernetes.io/component=controller --timeout=300s',
      'helm --kube-context kind-bank upgrade --install external-secrets external-secrets --repo https://charts.external-secrets.io --version 0.19.2 --namespace external-secrets --create-namespace --wait',
    ]);
    expect(kindUpCommands({ tag: 'dev', noAws: true, dryRun: true }).some((command) => command.command === 'helm')).toBe(false);
  });

  it('without AWS generates the API and gRPC Secrets with one fresh Ed25519 PASETO key, and only that key', () => {
    const secrets = kindSecrets({ tag: 'dev', noAws: true, dryRun: true });
    expect(secrets.map((each) => each.metadata?.name)).toEqual(['bank-api-secrets', 'bank-grpc-secrets']);
    for (const each of secrets) expect(Object.keys(each.stringData ?? {})).toEqual(['PASETO_SECRET_KEY']);
    const [secret, grpc] = secrets;
    expect(grpc?.stringData?.PASETO_SECRET_KEY).toBe(secret?.stringData?.PASETO_SECRET_KEY);
    const key = createPrivateKey(secret?.stringData?.PASETO_SECRET_KEY ?? '');
    expect(key.asymmetricKeyType).toBe('ed25519');
    const [again] = kindSecrets({ tag: 'dev', noAws: true, dryRun: true });
    expect(again?.stringData?.PASETO_SECRET_KEY).not.toBe(secret?.stringData?.PASETO_SECRET_KEY);
  });

  it('with AWS puts the static keys into aws-credentials for the SecretStore, and refuses to start without them', async () => {
    const [secret] = kindSecrets({ tag: 'dev', noAws: false, dryRun: true, env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'shh' } });
    expect(secret?.metadata?.name).toBe('aws-credentials');
    expect(Object.keys(secret?.stringData ?? {})).toEqual(['access-key-id', 'secret-access-key']);
    const out = capture();
    const code = await runCli(async (_argv, output) => kindUp({ tag: 'dev', noAws: false, dryRun: true, env: {} }, output), [], out);
    expect(code).toBe(EXIT.usage);
    expect(out.errors).toEqual(['error: kind-up with AWS needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use --no-aws)']);
  });

  it('--dry-run prints the steps and never a secret value', async () => {
    const out = capture();
    const ran: string[] = [];
    const code = await kindUp({ ...parseKindUpArgs(['--dry-run', '--tag', 'dev42']), env: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'top-secret-value' } }, out, async (command) => {
      ran.push(command.command);
      return 0;
    });
    expect(code).toBe(EXIT.ok);
    expect(ran).toEqual([]);
    expect(out.lines[0]).toBe('dry run: kind-up with images tagged dev42');
    expect(out.lines).toContain('create Secret aws-credentials in namespace bank (values not shown)');
    expect(out.lines.at(-1)).toBe('npm run deploy -- --env kind --tag dev42');
    expect(out.lines.join('\n')).not.toContain('top-secret-value');
  });

  it('stops at the first failing command with its name and exit code', async () => {
    const out = capture();
    const ran: string[] = [];
    const code = await runCli(
      async (_argv, output) =>
        kindUp({ tag: 'dev', noAws: true, dryRun: false }, output, async (command) => {
          ran.push(`${command.command} ${command.args[0]}`);
          if (command.args[0] === 'get') return 1; // no cluster yet
          return command.command === 'docker' ? 17 : 0;
        }),
      [],
      out,
    );
    expect(code).toBe(EXIT.unexpected);
    expect(ran).toEqual(['kind get', 'kind create', 'docker build']);
    expect(out.errors).toEqual(['error: docker build failed with exit code 17']);
  });

  it('says in one line that kubectl is missing, before any step runs (exit 7)', async () => {
    const out = capture();
    const ran: string[] = [];
    const env = { ...process.env, PATH: path.join(os.tmpdir(), 'no-kubectl-here') };
    const code = await runCli(
      async (_argv, output) =>
        kindUp({ tag: 'dev', noAws: true, dryRun: false, env }, output, async (command) => {
          ran.push(command.command);
          return 0;
        }),
      [],
      out,
    );
    expect(code).toBe(EXIT.missingProgram);
    expect(ran).toEqual([]);
    expect(out.errors).toEqual(['error: kubectl is not installed (kubectl not found on PATH): the manifests are rendered with `kubectl kustomize`; install kubectl >= 1.27']);
  });
});
