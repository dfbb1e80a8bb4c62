// npm run kind-up -- [--tag dev] [--no-aws] [--dry-run]
// Creates the Kind cluster `bank` (deploy/kind/cluster.yaml), builds the four images and loads
// them into it, installs ingress-nginx and (unless --no-aws) External Secrets, then deploys.
// Needs docker, kind, kubectl >= 1.27 and (with AWS) helm on PATH; with AWS, AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY go into the Secret aws-credentials the SecretStore reads.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { V1Secret } from '@kubernetes/client-node';
import { serverSideApply } from './k8s/apply.ts';
import { connectCluster } from './k8s/cluster.ts';
import { EXIT, OperatorError, type ExitCode } from './k8s/errors.ts';
import { deploy } from './deploy.ts';
import { checkKubectl } from './manifests/kubectl-kustomize.ts';
import { checkTag, contextCheck, KIND_CONTEXT, NAMESPACE, REPO_ROOT, SERVICES } from './environments.ts';
import { runMain, type Output } from './cli.ts';

export const KIND_CLUSTER = 'bank';
export const INGRESS_NGINX_MANIFEST = 'https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.13.0/deploy/static/provider/kind/deploy.yaml';
export const EXTERNAL_SECRETS_CHART = { repo: 'https://charts.external-secrets.io', name: 'external-secrets', version: '0.19.2' };

export interface KindUpOptions {
  tag: string;
  noAws: boolean;
  dryRun: boolean;
  repoRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export interface Command {
  command: string;
  args: string[];
  /** When set, the step runs only if this probe command fails (e.g. the cluster does not exist yet). */
  unless?: { command: string; args: string[] };
}

/** The external commands kind-up runs, in order. */
export function kindUpCommands(options: KindUpOptions): Command[] {
  const root = options.repoRoot ?? REPO_ROOT;
  const commands: Command[] = [
    {
      command: 'kind',
      args: ['create', 'cluster', '--config', path.join(root, 'deploy/kind/cluster.yaml')],
      unless: { command: 'kind', args: ['get', 'kubeconfig', '--name', KIND_CLUSTER] },
    },
  ];
  for (const service of SERVICES) {
    commands.push({ command: 'docker', args: ['build', '--target', service, '-t', `bank-${service}:${options.tag}`, root] });
    commands.push({ command: 'kind', args: ['load', 'docker-image', `bank-${service}:${options.tag}`, '--name', KIND_CLUSTER] });
  }
  commands.push({ command: 'kubectl', args: ['--context', KIND_CONTEXT, 'apply', '-f', INGRESS_NGINX_MANIFEST] });
  commands.push({
    command: 'kubectl',
    args: ['--context', KIND_CONTEXT, '-n', 'ingress-nginx', 'wait', '--for=condition=ready', 'pod', '-l', 'app.kubernetes.io/component=controller', '--timeout=300s'],
  });
  if (!options.noAws) {
    const chart = EXTERNAL_SECRETS_CHART;
    commands.push({
      command: 'helm',
      args: ['--kube-context', KIND_CONTEXT, 'upgrade', '--install', chart.name, chart.name, '--repo', chart.repo, '--version', chart.version, '--namespace', 'external-secrets', '--create-namespace', '--wait'],
    });
  }
  return commands;
}

/**
 * The Secrets kind-up creates before deploying: AWS keys for External Secrets, or (--no-aws) the
 * API's and the gRPC server's own Secrets with a fresh Ed25519 PASETO key (the worker and the
 * migrator need none on Kind). Never written to disk or printed.
 */
export function kindSecrets(options: KindUpOptions): V1Secret[] {
  const env = options.env ?? process.env;
  const secret = (name: string, stringData: Record<string, string>): V1Secret => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'bank' } },
    type: 'Opaque',
    stringData,
  });
  if (options.noAws) {
    // One key for both token issuers: a token one of them signed must verify at the other.
    const { privateKey } = generateKeyPairSync('ed25519');
    const paseto = { PASETO_SECRET_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    return [secret('bank-api-secrets', paseto), secret('bank-grpc-secrets', { ...paseto })];
  }
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
    throw new OperatorError('kind-up with AWS needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use --no-aws)', EXIT.usage);
  }
  return [secret('aws-credentials', { 'access-key-id': env.AWS_ACCESS_KEY_ID, 'secret-access-key': env.AWS_SECRET_ACCESS_KEY })];
}

export async function kindUp(options: KindUpOptions, out: Output, run: (command: Command) => Promise<number> = runCommand): Promise<ExitCode> {
  checkTag(options.tag);
  const commands = kindUpCommands(options);
  const secrets = kindSecrets(options);
  if (options.dryRun) {
    out.log(`dry run: kind-up with images tagged ${options.tag}${options.noAws ? ', without AWS' : ''}`);
    for (const command of commands) out.log(`$ ${command.command} ${command.args.join(' ')}${command.unless ? `   (unless: ${command.unless.command} ${command.unless.args.join(' ')})` : ''}`);
    out.log(`create Secret${secrets.length > 1 ? 's' : ''} ${secrets.map((secret) => secret.metadata?.name).join(', ')} in namespace ${NAMESPACE} (values not shown)`);
    out.log(`npm run deploy -- --env kind --tag ${options.tag}${options.noAws ? ' --no-aws' : ''}`);
    return EXIT.ok;
  }
  // Checked before the first step: the ingress install and the deploy at the end both need it,
  // and stopping there would leave a half-made cluster behind.
  await checkKubectl({ env: options.env });
  for (const command of commands) {
    if (command.unless && (await run({ ...command.unless, args: command.unless.args }).catch(() => 1)) === 0) {
      out.log(`skip: ${command.command} ${command.args.join(' ')} (already done)`);
      continue;
    }
    out.log(`$ ${command.command} ${command.args.join(' ')}`);
    const code = await run(command);
    if (code !== 0) throw new OperatorError(`${command.command} ${command.args[0]} failed with exit code ${code}`, EXIT.unexpected);
  }
  const cluster = await connectCluster({ context: KIND_CONTEXT, checkContext: contextCheck('kind') });
  await serverSideApply(cluster.objects, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }, ...(secrets as never[])], out.log);
  return deploy({ env: 'kind', tag: options.tag, noAws: options.noAws, context: KIND_CONTEXT }, out);
}

function runCommand(command: Command): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, command.args, { stdio: command.args[0] === 'get' ? 'ignore' : 'inherit' });
    child.on('error', (error) => reject(new OperatorError(`cannot run ${command.command}: ${error.message} (is it installed?)`, EXIT.usage)));
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

export function parseKindUpArgs(argv: readonly string[]): KindUpOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { tag: { type: 'string', default: 'dev' }, 'no-aws': { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false } },
    strict: true,
  });
  return { tag: values.tag, noAws: values['no-aws'], dryRun: values['dry-run'] };
}

if (import.meta.main) {
  await runMain((argv, out) => kindUp(parseKindUpArgs(argv), out));
}
