// npm run deploy -- --env kind|eks --tag TAG [--registry ECR] [--context C] [--dry-run]
// Applies the manifests (server-side apply), runs the migration Job for TAG and waits for it,
// then rolls the Deployments to TAG, waits for each rollout and rolls back if one fails.
import { parseArgs } from 'node:util';
import type { V1Deployment } from '@kubernetes/client-node';
import { secretsReadBy, type Manifest } from './manifests/manifest.ts';
import { serverSideApply } from './k8s/apply.ts';
import { connectCluster } from './k8s/cluster.ts';
import { EXIT, OperatorError, type ExitCode } from './k8s/errors.ts';
import { migrationJobFor, runMigrationJob } from './k8s/migration-job.ts';
import { currentRevision, rollbackDeployment, waitForRollout, waitForSecret, waitForStatefulSets } from './k8s/rollout.ts';
import { contextCheck, NAMESPACE, renderEnvironment, type EnvironmentName } from './environments.ts';
import { runMain, type Output } from './cli.ts';

/**
 * The Secrets the workloads cannot start without (each workload has its own, filled by External
 * Secrets or made by hand without AWS), in the order the manifests name them.
 */
export function requiredSecrets(objects: readonly Manifest[]): string[] {
  const names = objects.flatMap((object) => secretsReadBy(object).filter((secret) => !secret.optional).map((secret) => secret.name));
  return [...new Set(names)];
}

export interface DeployOptions {
  env: EnvironmentName;
  tag: string;
  dryRun?: boolean;
  kubeconfig?: string | undefined;
  context?: string | undefined;
  registry?: string | undefined;
  noAws?: boolean;
  repoRoot?: string;
  migrationTimeoutMs?: number;
  rolloutTimeoutMs?: number;
  pollMs?: number;
}

/**
 * The deploy, as a function the tests call with a stand-in cluster.
 *
 * @returns the exit code: 0 deployed, 3 wrong/unreachable cluster, 4 migration failed (nothing
 *   rolled), 5 a rollout failed and was rolled back, 6 the rollback failed too.
 * @throws OperatorError for usage errors (exit 2) and cluster errors (exit 3).
 */
export async function deploy(options: DeployOptions, out: Output): Promise<ExitCode> {
  const objects = await renderEnvironment(options);
  const deployments = objects.filter((object) => object.kind === 'Deployment');
  const jobTemplate = objects.find((object) => object.kind === 'Job' && object.metadata.name === 'bank-migrate');
  if (!jobTemplate) throw new OperatorError('the manifests have no Job bank-migrate', EXIT.unexpected);
  // Deployments are applied after the migration (that is the image change); Jobs are immutable,
  // so each deploy creates a fresh migration Job instead of applying the manifest's copy.
  const settled = objects.filter((object) => object.kind !== 'Deployment' && object.kind !== 'Job');
  const migration = migrationJobFor(jobTemplate, options.tag, Date.now());
  const namespace = NAMESPACE;

  if (options.dryRun) {
    out.log(`dry run: deploy ${options.tag} to ${options.env} (namespace ${namespace}); nothing is sent to a cluster`);
    out.log(`1. server-side apply ${settled.length} objects:`);
    for (const object of settled) out.log(`   ${object.kind}/${object.metadata.name}`);
    out.log(`2. create Job ${migration.metadata.name} (image ${imagesOf(migration).join(', ')}) and wait for it`);
    out.log('3. server-side apply the Deployments with the new images:');
    for (const deployment of deployments) out.log(`   Deployment/${deployment.metadata.name} -> ${imagesOf(deployment).join(', ')}`);
    out.log('4. wait for each rollout; roll back to the previous revision if one fails');
    return EXIT.ok;
  }

  const cluster = await connectCluster({ kubeconfig: options.kubeconfig, context: options.context, checkContext: contextCheck(options.env) });
  out.log(`deploying ${options.tag} to ${options.env} through context "${cluster.context}" (${cluster.server})`);

  await serverSideApply(cluster.objects, settled, out.log);

  const waitOptions = { timeoutMs: options.rolloutTimeoutMs ?? 300_000, pollMs: options.pollMs ?? 2_000 };
  const statefulSets = settled.filter((object) => object.kind === 'StatefulSet').map((object) => object.metadata.name);
  if (statefulSets.length > 0) {
    out.log(`waiting for ${statefulSets.join(', ')} to be ready`);
    const ready = await waitForStatefulSets(cluster, namespace, statefulSets, waitOptions);
    if (!ready.ok) throw new OperatorError(`data stores ${ready.reason}; nothing was migrated or rolled`, EXIT.migrationFailed);
  }
  const secrets = requiredSecrets(objects);
  const present = await Promise.all(secrets.map((name) => waitForSecret(cluster, namespace, name, waitOptions)));
  const missing = secrets.filter((_name, index) => !present[index]);
  if (missing.length > 0) {
    const targets = new Set(
      settled.filter((object) => object.kind === 'ExternalSecret').map((object) => (object.spec as { target?: { name?: string } }).target?.name ?? object.metadata.name),
    );
    const synced = missing.filter((name) => targets.has(name));
    const byHand = missing.filter((name) => !targets.has(name));
    const hints = [
      ...(synced.length > 0 ? [`check the ExternalSecret${synced.length > 1 ? 's' : ''} (kubectl -n ${namespace} describe externalsecret ${synced.join(' ')})`] : []),
      ...(byHand.length > 0 ? [`create ${byHand.length > 1 ? 'them' : 'it'} (see deploy/kind/no-aws/kustomization.yaml)`] : []),
    ];
    const plural = missing.length > 1;
    throw new OperatorError(`Secret${plural ? 's' : ''} ${missing.join(', ')} ${plural ? 'do' : 'does'} not exist: ${hints.join('; ')}`, EXIT.migrationFailed);
  }

  await runMigrationJob(cluster, migration, {
    namespace,
    tag: options.tag,
    timeoutMs: options.migrationTimeoutMs ?? 600_000,
    pollMs: options.pollMs ?? 2_000,
    log: out.log,
  });

  const before = new Map<string, number>();
  for (const deployment of deployments) before.set(deployment.metadata.name, await currentRevision(cluster, namespace, deployment.metadata.name));
  await serverSideApply(cluster.objects, deployments, out.log);

  const rolloutOptions = waitOptions;
  const results = await Promise.all(
    deployments.map(async (deployment) => ({ name: deployment.metadata.name, result: await waitForRollout(cluster, namespace, deployment.metadata.name, rolloutOptions) })),
  );
  const failed = results.filter(({ result }) => !result.ok);
  for (const { name, result } of results) out.log(result.ok ? `rollout of ${name} complete` : `rollout of ${name} failed: ${result.reason}`);
  if (failed.length === 0) {
    out.log(`deployed ${options.tag}`);
    return EXIT.ok;
  }

  // Roll back every Deployment this run changed, so the processes stay on one version.
  let rollbackFailed = false;
  for (const deployment of deployments) {
    const name = deployment.metadata.name;
    const after = await currentRevision(cluster, namespace, name);
    if (after === before.get(name)) continue;
    const outcome = await rollbackDeployment(cluster, namespace, name);
    if ('error' in outcome) {
      out.error(`cannot roll back ${name}: ${outcome.error}`);
      rollbackFailed = true;
      continue;
    }
    out.log(`rolling back ${name} to revision ${outcome.revision}`);
    const undo = await waitForRollout(cluster, namespace, name, rolloutOptions);
    if (!undo.ok) {
      out.error(`rollback of ${name} did not complete: ${undo.reason}`);
      rollbackFailed = true;
    }
  }
  out.error(`deploy of ${options.tag} failed (${failed.map(({ name }) => name).join(', ')}); ${rollbackFailed ? 'rollback incomplete' : 'rolled back'}`);
  return rollbackFailed ? EXIT.rollbackFailed : EXIT.rolledBack;
}

function imagesOf(object: Manifest): string[] {
  const template = (object.spec as V1Deployment['spec'])?.template;
  return (template?.spec?.containers ?? []).map((container) => container.image ?? '');
}

export function parseDeployArgs(argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): DeployOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      env: { type: 'string' },
      tag: { type: 'string' },
      registry: { type: 'string' },
      context: { type: 'string' },
      kubeconfig: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'no-aws': { type: 'boolean', default: false },
      'migration-timeout': { type: 'string', default: '600' },
      'rollout-timeout': { type: 'string', default: '300' },
    },
    strict: true,
  });
  if (values.env !== 'kind' && values.env !== 'eks') throw new OperatorError('--env must be kind or eks', EXIT.usage);
  if (!values.tag) throw new OperatorError('--tag is required (the image tag to deploy, e.g. the commit SHA)', EXIT.usage);
  if (values.env === 'eks' && !values.context && !values['dry-run']) {
    throw new OperatorError('--env eks needs --context <name> so a deploy never goes to whatever context is current', EXIT.usage);
  }
  return {
    env: values.env,
    tag: values.tag,
    dryRun: values['dry-run'],
    noAws: values['no-aws'],
    kubeconfig: values.kubeconfig,
    context: values.context,
    registry: values.registry ?? environment.ECR_REGISTRY,
    migrationTimeoutMs: seconds(values['migration-timeout'], '--migration-timeout'),
    rolloutTimeoutMs: seconds(values['rollout-timeout'], '--rollout-timeout'),
  };
}

function seconds(value: string, flag: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new OperatorError(`${flag} must be a number of seconds`, EXIT.usage);
  return parsed * 1000;
}

if (import.meta.main) {
  await runMain((argv, out) => deploy(parseDeployArgs(argv), out));
}
