import type { V1Job } from '@kubernetes/client-node';
import type { Manifest } from '../manifests/manifest.ts';
import type { Cluster } from './cluster.ts';
import { EXIT, OperatorError } from './errors.ts';

export const MIGRATION_LABEL = 'app.kubernetes.io/name=bank-migrator';
export const TAG_LABEL = 'bank.example.com/tag';

export interface MigrationOptions {
  namespace: string;
  tag: string;
  timeoutMs: number;
  pollMs: number;
  log: (line: string) => void;
  now?: () => number;
}

/** The Job this deploy creates: the manifest's migrator Job under a name unique to this run. */
export function migrationJobFor(template: Manifest, tag: string, now: number): Manifest {
  const job = structuredClone(template);
  const slug = tag.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 12).replace(/-+$/, '');
  job.metadata.name = `${template.metadata.name}-${slug}-${now.toString(36)}`;
  job.metadata.labels = { ...job.metadata.labels, [TAG_LABEL]: tag.slice(0, 63) };
  delete (job.metadata as { resourceVersion?: string }).resourceVersion;
  return job;
}

/**
 * Creates the migration Job, waits until it completes or fails, and prints its pods' logs.
 *
 * @throws OperatorError (exit 4) when the Job fails or does not finish within `timeoutMs`.
 */
export async function runMigrationJob(cluster: Cluster, job: Manifest, options: MigrationOptions): Promise<void> {
  const { namespace, log } = options;
  const name = job.metadata.name;
  await cluster.batch.createNamespacedJob({ namespace, body: job as V1Job });
  log(`created Job ${name}; waiting up to ${Math.round(options.timeoutMs / 1000)} s for it`);

  const deadline = Date.now() + options.timeoutMs;
  let outcome: 'complete' | 'failed' | 'timeout' = 'timeout';
  let reason = '';
  while (Date.now() < deadline) {
    const current = await cluster.batch.readNamespacedJobStatus({ name, namespace });
    const conditions = current.status?.conditions ?? [];
    const failed = conditions.find((condition) => condition.type === 'Failed' && condition.status === 'True');
    if (failed) {
      outcome = 'failed';
      reason = [failed.reason, failed.message].filter(Boolean).join(': ');
      break;
    }
    if (conditions.some((condition) => condition.type === 'Complete' && condition.status === 'True')) {
      outcome = 'complete';
      break;
    }
    await sleep(options.pollMs);
  }

  await printJobLogs(cluster, namespace, name, log);
  if (outcome === 'complete') {
    log(`migration Job ${name} completed`);
    return;
  }
  const detail = outcome === 'failed' ? `failed${reason ? ` (${reason})` : ''}` : `did not finish within ${Math.round(options.timeoutMs / 1000)} s`;
  throw new OperatorError(`migration Job ${name} ${detail}; the Deployments were left unchanged`, EXIT.migrationFailed);
}

async function printJobLogs(cluster: Cluster, namespace: string, job: string, log: (line: string) => void): Promise<void> {
  const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` });
  for (const pod of pods.items) {
    const podName = pod.metadata?.name ?? '';
    try {
      const text = await cluster.core.readNamespacedPodLog({ name: podName, namespace, container: 'migrator' });
      log(`--- logs of ${podName} ---`);
      for (const line of String(text).split('\n').filter(Boolean)) log(`  ${line}`);
    } catch (error) {
      log(`--- no logs for ${podName}: ${(error as Error).message} ---`);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
