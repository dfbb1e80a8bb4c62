// npm run k8s:status -- [--env kind|eks] [--context C]: pods, rollouts and the last migration Job.
import { parseArgs } from 'node:util';
import { connectCluster, type Cluster } from './k8s/cluster.ts';
import { EXIT, OperatorError, type ExitCode } from './k8s/errors.ts';
import { MIGRATION_LABEL, TAG_LABEL } from './k8s/migration-job.ts';
import { rolloutVerdict } from './k8s/rollout.ts';
import { contextCheck, NAMESPACE } from './environments.ts';
import { runMain, type Output } from './cli.ts';

export interface StatusOptions {
  env: 'kind' | 'eks';
  kubeconfig?: string | undefined;
  context?: string | undefined;
}

/**
 * Prints the bank namespace's Deployments (revision, image, rollout state), its pods and the
 * most recent migration Job.
 *
 * @returns 0 when every Deployment is rolled out and the last migration succeeded, 1 otherwise.
 * @throws OperatorError (exit 3) for a wrong or unreachable cluster.
 */
export async function status(options: StatusOptions, out: Output): Promise<ExitCode> {
  const cluster = await connectCluster({ kubeconfig: options.kubeconfig, context: options.context, checkContext: contextCheck(options.env) });
  out.log(`context "${cluster.context}" (${cluster.server}), namespace ${NAMESPACE}`);
  const healthy = [await printDeployments(cluster, out), await printPods(cluster, out), await printLastMigration(cluster, out)];
  return healthy.every(Boolean) ? EXIT.ok : EXIT.unexpected;
}

async function printDeployments(cluster: Cluster, out: Output): Promise<boolean> {
  const deployments = await cluster.apps.listNamespacedDeployment({ namespace: NAMESPACE });
  out.log('DEPLOYMENTS');
  let healthy = true;
  for (const deployment of deployments.items) {
    const verdict = rolloutVerdict(deployment);
    healthy &&= verdict.done;
    const revision = deployment.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? '-';
    const images = deployment.spec?.template.spec?.containers.map((container) => container.image).join(',');
    const ready = `${deployment.status?.availableReplicas ?? 0}/${deployment.spec?.replicas ?? 1}`;
    out.log(`  ${deployment.metadata?.name}  revision ${revision}  ready ${ready}  ${images}  ${verdict.message}`);
  }
  return healthy;
}

async function printPods(cluster: Cluster, out: Output): Promise<boolean> {
  const pods = await cluster.core.listNamespacedPod({ namespace: NAMESPACE });
  out.log('PODS');
  for (const pod of pods.items) {
    const statuses = pod.status?.containerStatuses ?? [];
    const ready = `${statuses.filter((container) => container.ready).length}/${pod.spec?.containers.length ?? 0}`;
    const restarts = statuses.reduce((sum, container) => sum + container.restartCount, 0);
    out.log(`  ${pod.metadata?.name}  ${pod.status?.phase ?? 'Unknown'}  ready ${ready}  restarts ${restarts}`);
  }
  return true;
}

async function printLastMigration(cluster: Cluster, out: Output): Promise<boolean> {
  const jobs = await cluster.batch.listNamespacedJob({ namespace: NAMESPACE, labelSelector: MIGRATION_LABEL });
  const last = jobs.items.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')))[0];
  if (!last) {
    out.log('LAST MIGRATION  none');
    return true;
  }
  const conditions = last.status?.conditions ?? [];
  const state = conditions.find((condition) => condition.status === 'True' && (condition.type === 'Complete' || condition.type === 'Failed'))?.type ?? 'Running';
  out.log(`LAST MIGRATION  ${last.metadata?.name}  tag ${last.metadata?.labels?.[TAG_LABEL] ?? '-'}  ${state}`);
  return state !== 'Failed';
}

export function parseStatusArgs(argv: readonly string[]): StatusOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { env: { type: 'string', default: 'kind' }, context: { type: 'string' }, kubeconfig: { type: 'string' } },
    strict: true,
  });
  if (values.env !== 'kind' && values.env !== 'eks') throw new OperatorError('--env must be kind or eks', EXIT.usage);
  return { env: values.env, context: values.context, kubeconfig: values.kubeconfig };
}

if (import.meta.main) {
  await runMain((argv, out) => status(parseStatusArgs(argv), out));
}
