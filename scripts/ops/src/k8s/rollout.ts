import type { V1Deployment } from '@kubernetes/client-node';
import type { Cluster } from './cluster.ts';
import { sleep } from './migration-job.ts';

const REVISION = 'deployment.kubernetes.io/revision';

export type RolloutResult = { ok: true } | { ok: false; reason: string };

/**
 * Waits for a Deployment's rollout the way `kubectl rollout status` judges it: the controller
 * has seen the new generation, every replica is updated and available, no old pod remains.
 * Fails on the controller's ProgressDeadlineExceeded or when `timeoutMs` passes.
 */
export async function waitForRollout(
  cluster: Cluster,
  namespace: string,
  name: string,
  options: { timeoutMs: number; pollMs: number },
): Promise<RolloutResult> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'no status yet';
  while (Date.now() < deadline) {
    const deployment = await cluster.apps.readNamespacedDeploymentStatus({ name, namespace });
    const verdict = rolloutVerdict(deployment);
    if (verdict.done) return { ok: true };
    if (verdict.failed) return { ok: false, reason: verdict.message };
    last = verdict.message;
    await sleep(options.pollMs);
  }
  return { ok: false, reason: `timed out after ${Math.round(options.timeoutMs / 1000)} s (${last})` };
}

export function rolloutVerdict(deployment: V1Deployment): { done: boolean; failed: boolean; message: string } {
  const generation = deployment.metadata?.generation ?? 0;
  const status = deployment.status ?? {};
  if ((status.observedGeneration ?? 0) < generation) return { done: false, failed: false, message: 'waiting for the controller to observe the update' };
  const progressing = status.conditions?.find((condition) => condition.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') return { done: false, failed: true, message: 'progress deadline exceeded' };
  const wanted = deployment.spec?.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const total = status.replicas ?? 0;
  const available = status.availableReplicas ?? 0;
  if (updated < wanted) return { done: false, failed: false, message: `${updated} of ${wanted} replicas updated` };
  if (total > updated) return { done: false, failed: false, message: `${total - updated} old replicas pending termination` };
  if (available < updated) return { done: false, failed: false, message: `${available} of ${updated} updated replicas available` };
  return { done: true, failed: false, message: 'rolled out' };
}

/** The Deployment's current revision number (0 when it does not exist yet). */
export async function currentRevision(cluster: Cluster, namespace: string, name: string): Promise<number> {
  try {
    const deployment = await cluster.apps.readNamespacedDeployment({ name, namespace });
    return Number(deployment.metadata?.annotations?.[REVISION] ?? 0);
  } catch (error) {
    if ((error as { code?: number }).code === 404) return 0;
    throw error;
  }
}

/**
 * Rolls a Deployment back to the revision before its current one, as `kubectl rollout undo`
 * does: the pod template of that revision's ReplicaSet replaces the Deployment's template.
 *
 * @returns the revision rolled back to, or an error message when there is none.
 */
export async function rollbackDeployment(cluster: Cluster, namespace: string, name: string): Promise<{ revision: number } | { error: string }> {
  const deployment = await cluster.apps.readNamespacedDeployment({ name, namespace });
  const current = Number(deployment.metadata?.annotations?.[REVISION] ?? 0);
  const selector = Object.entries(deployment.spec?.selector.matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const replicaSets = await cluster.apps.listNamespacedReplicaSet({ namespace, labelSelector: selector });
  const previous = replicaSets.items
    .filter((replicaSet) => replicaSet.metadata?.ownerReferences?.some((owner) => owner.uid === deployment.metadata?.uid))
    .map((replicaSet) => ({ replicaSet, revision: Number(replicaSet.metadata?.annotations?.[REVISION] ?? 0) }))
    .filter((candidate) => candidate.revision > 0 && candidate.revision < current)
    .sort((a, b) => b.revision - a.revision)[0];
  if (!previous?.replicaSet.spec?.template) return { error: `no revision before ${current} to roll back to` };

  const template = structuredClone(previous.replicaSet.spec.template);
  delete template.metadata?.labels?.['pod-template-hash'];
  await cluster.apps.patchNamespacedDeployment({
    name,
    namespace,
    body: [
      { op: 'test', path: '/metadata/resourceVersion', value: deployment.metadata?.resourceVersion },
      { op: 'replace', path: '/spec/template', value: template },
    ],
  });
  return { revision: previous.revision };
}

/**
 * Waits until every StatefulSet (the in-cluster data stores on Kind) has all replicas ready, so
 * the migration Job does not race a database that is still starting.
 */
export async function waitForStatefulSets(
  cluster: Cluster,
  namespace: string,
  names: readonly string[],
  options: { timeoutMs: number; pollMs: number },
): Promise<RolloutResult> {
  const deadline = Date.now() + options.timeoutMs;
  const pending = new Set(names);
  while (pending.size > 0) {
    for (const name of [...pending]) {
      const set = await cluster.apps.readNamespacedStatefulSetStatus({ name, namespace });
      const wanted = set.spec?.replicas ?? 1;
      if ((set.status?.observedGeneration ?? 0) >= (set.metadata?.generation ?? 0) && (set.status?.readyReplicas ?? 0) >= wanted) pending.delete(name);
    }
    if (pending.size === 0) break;
    if (Date.now() >= deadline) return { ok: false, reason: `not ready after ${Math.round(options.timeoutMs / 1000)} s: ${[...pending].join(', ')}` };
    await sleep(options.pollMs);
  }
  return { ok: true };
}

/** Waits for a Secret to exist (External Secrets writes it after its first sync). */
export async function waitForSecret(cluster: Cluster, namespace: string, name: string, options: { timeoutMs: number; pollMs: number }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      await cluster.core.readNamespacedSecret({ name, namespace });
      return true;
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    if (Date.now() >= deadline) return false;
    await sleep(options.pollMs);
  }
}
