// The deploy script against a stand-in Kubernetes API server: the real @kubernetes/client-node
// over real HTTP, with the stand-in playing a Job that succeeds or fails and rollouts that
// complete or stall. Asserts the calls, their order, the waits, the rollback and the exit codes.
import { describe, expect, it } from '@jest/globals';
import { deploy, parseDeployArgs, type DeployOptions } from './deploy.ts';
import { runCli } from './cli.ts';
import { EXIT } from './k8s/errors.ts';
import { renderEnvironment } from './environments.ts';
import type { KubeApiStandIn, RecordedRequest } from '../../../test/support/kube-api-stand-in.ts';
import { captureOutput, standInsPerTest } from '../../../test/support/ops-cli.ts';

const startStandIn = standInsPerTest();

const capture = captureOutput;

/** Puts the Deployments of `tag` in place as revision 1, as a previous deploy would have. */
async function seedPreviousRelease(standIn: KubeApiStandIn, tag: string): Promise<void> {
  for (const deployment of (await renderEnvironment({ env: 'kind', tag })).filter((object) => object.kind === 'Deployment')) {
    standIn.seedDeployment(structuredClone(deployment) as never);
  }
}

const fast = { pollMs: 20, migrationTimeoutMs: 5_000, rolloutTimeoutMs: 1_500 } satisfies Partial<DeployOptions>;

function applied(requests: RecordedRequest[]): string[] {
  return requests
    .filter((request) => request.method === 'PATCH' && request.contentType === 'application/apply-patch+yaml')
    .map((request) => {
      const body = request.body as { kind: string; metadata: { name: string } };
      return `${body.kind}/${body.metadata.name}`;
    });
}

function imageOf(object: unknown): string | undefined {
  return (object as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]?.image;
}

describe('deploy against a stand-in Kubernetes API', () => {
  it('kind: applies server-side, runs the migration Job, then rolls the Deployments to the tag (exit 0)', async () => {
    const standIn = await startStandIn({ job: 'succeed' });
    const kubeconfig = await standIn.writeKubeconfig('kind-bank');
    const out = capture();

    const code = await deploy({ env: 'kind', tag: 'abc1234', kubeconfig, ...fast }, out);

    expect(out.errors).toEqual([]);
    expect(code).toBe(EXIT.ok);
    const requests = standIn.requests;
    expect(requests[0]?.path).toBe('/version');
    // Every apply is server-side, owned by one field manager, forced.
    const applies = requests.filter((request) => request.contentType === 'application/apply-patch+yaml');
    expect(applies.every((request) => request.query.get('fieldManager') === 'bank-deploy' && request.query.get('force') === 'true')).toBe(true);
    const order = applied(requests);
    expect(order.slice(0, 2)).toEqual(['Namespace/bank', 'ConfigMap/bank-config']);
    expect(order).toEqual(expect.arrayContaining(['ExternalSecret/bank-api-secrets', 'ExternalSecret/bank-grpc-secrets']));
    expect(order).not.toContain('Job/bank-migrate');
    // The migration Job is created after the settled objects and before any Deployment changes.
    const jobCreate = requests.findIndex((request) => request.method === 'POST' && request.path === '/apis/batch/v1/namespaces/bank/jobs');
    const firstDeployment = requests.findIndex((request) => request.path.startsWith('/apis/apps/v1/namespaces/bank/deployments/') && request.method === 'PATCH');
    const lastSettled = requests.findLastIndex((request) => request.method === 'PATCH' && !request.path.includes('/deployments/'));
    expect(lastSettled).toBeLessThan(jobCreate);
    expect(jobCreate).toBeLessThan(firstDeployment);
    const job = requests[jobCreate]?.body as { metadata: { name: string; labels: Record<string, string> } };
    expect(job.metadata.name).toMatch(/^bank-migrate-abc1234-[a-z0-9]+$/);
    expect(job.metadata.labels['bank.example.com/tag']).toBe('abc1234');
    expect(imageOf(job)).toBe('bank-migrator:abc1234');
    // It waited: polled the Job until Complete, and only then touched the Deployments.
    const jobPolls = requests.filter((request) => request.path === `/apis/batch/v1/namespaces/bank/jobs/${job.metadata.name}/status`);
    expect(jobPolls.length).toBeGreaterThanOrEqual(3);
    expect(requests.indexOf(jobPolls.at(-1) as RecordedRequest)).toBeLessThan(firstDeployment);
    // The data stores were ready and the Secret existed before the Job.
    expect(requests.findIndex((request) => request.path.endsWith('/statefulsets/postgres/status'))).toBeLessThan(jobCreate);
    // On Kind the worker's and the migrator's Secrets are optional: not waited for.
    const secretReads = requests.filter((request) => request.path.startsWith('/api/v1/namespaces/bank/secrets/')).map((request) => request.path.split('/').at(-1));
    expect([...new Set(secretReads)].sort()).toEqual(['bank-api-secrets', 'bank-grpc-secrets']);
    expect(requests.findLastIndex((request) => request.path.startsWith('/api/v1/namespaces/bank/secrets/'))).toBeLessThan(jobCreate);
    expect(out.lines).toContain('  migrations up to date');
    // The Deployments now run the tag, and each rollout was waited for.
    for (const name of ['bank-api', 'bank-grpc', 'bank-worker']) {
      expect(imageOf(standIn.get('Deployment', name))).toBe(`${name}:abc1234`);
      expect(requests.filter((request) => request.path === `/apis/apps/v1/namespaces/bank/deployments/${name}/status`).length).toBeGreaterThanOrEqual(2);
      expect(out.lines).toContain(`rollout of ${name} complete`);
    }
    expect(requests.some((request) => request.contentType === 'application/json-patch+json')).toBe(false);
    expect(out.lines.at(-1)).toBe('deployed abc1234');
  });

  it('a failing migration Job prints its logs, stops before the Deployments and exits 4', async () => {
    const standIn = await startStandIn({ job: 'fail', jobLog: 'error: relation "accounts" already exists' });
    await seedPreviousRelease(standIn, 'old1111');
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await runCli(async (_argv, output) => deploy({ env: 'kind', tag: 'bad2222', kubeconfig, ...fast }, output), [], out);

    expect(code).toBe(EXIT.migrationFailed);
    expect(out.lines).toContain('  error: relation "accounts" already exists');
    expect(out.errors.join('\n')).toMatch(/^error: migration Job bank-migrate-bad2222-[a-z0-9]+ failed \(BackoffLimitExceeded: Job has reached the specified backoff limit\); the Deployments were left unchanged$/);
    expect(standIn.writes().some((request) => request.path.includes('/deployments/'))).toBe(false);
    for (const name of ['bank-api', 'bank-grpc', 'bank-worker']) expect(imageOf(standIn.get('Deployment', name))).toBe(`${name}:old1111`);
  });

  it('a stalled rollout is waited for until the timeout, then every changed Deployment is rolled back (exit 5)', async () => {
    const standIn = await startStandIn({ stallImages: ['bank-grpc:new3333'] });
    await seedPreviousRelease(standIn, 'old1111');
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();
    const started = performance.now();

    const code = await deploy({ env: 'kind', tag: 'new3333', kubeconfig, ...fast }, out);

    expect(code).toBe(EXIT.rolledBack);
    // It kept polling the stalled rollout for the whole rollout timeout before giving up.
    expect(performance.now() - started).toBeGreaterThanOrEqual(fast.rolloutTimeoutMs);
    expect(out.lines).toContain('rollout of bank-api complete');
    expect(out.lines.find((line) => line.startsWith('rollout of bank-grpc failed'))).toMatch(/timed out after 2 s \(1 of 1 replicas updated|old replicas pending/);
    // Rollback: a JSON patch that puts back revision 1's pod template, guarded by resourceVersion.
    const rollbacks = standIn.requests.filter((request) => request.contentType === 'application/json-patch+json');
    expect(rollbacks.map((request) => request.path.split('/').at(-1))).toEqual(['bank-api', 'bank-grpc', 'bank-worker']);
    for (const request of rollbacks) {
      const [test, replace] = request.body as { op: string; path: string; value: unknown }[];
      expect(test?.op).toBe('test');
      expect(test?.path).toBe('/metadata/resourceVersion');
      expect(replace?.path).toBe('/spec/template');
      expect(imageOf({ spec: { template: replace?.value } })).toMatch(/:old1111$/);
    }
    expect(out.lines).toContain('rolling back bank-grpc to revision 1');
    for (const name of ['bank-api', 'bank-grpc', 'bank-worker']) {
      const deployment = standIn.get('Deployment', name);
      expect(imageOf(deployment)).toBe(`${name}:old1111`);
      expect(deployment?.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('3');
      expect((deployment?.spec?.template as { metadata: { labels: Record<string, string> } }).metadata.labels['pod-template-hash']).toBeUndefined();
    }
    // mailpit's template did not change, so it was neither re-rolled nor rolled back.
    expect(standIn.get('Deployment', 'mailpit')?.metadata.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    expect(out.errors.at(-1)).toBe('deploy of new3333 failed (bank-grpc); rolled back');
  });

  it('ProgressDeadlineExceeded fails the rollout without waiting for the timeout', async () => {
    const standIn = await startStandIn({ stallImages: ['bank-worker:new4444'], progressDeadlineAfterReads: 2 });
    await seedPreviousRelease(standIn, 'old1111');
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await deploy({ env: 'kind', tag: 'new4444', kubeconfig, ...fast, rolloutTimeoutMs: 30_000 }, out);

    expect(code).toBe(EXIT.rolledBack);
    expect(out.lines).toContain('rollout of bank-worker failed: progress deadline exceeded');
    expect(imageOf(standIn.get('Deployment', 'bank-worker'))).toBe('bank-worker:old1111');
  });

  it('a stalled first rollout has no revision to return to: exit 6', async () => {
    const standIn = await startStandIn({ stallImages: ['bank-api:first5555'] });
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await deploy({ env: 'kind', tag: 'first5555', kubeconfig, ...fast }, out);

    expect(code).toBe(EXIT.rollbackFailed);
    expect(out.errors).toContain('cannot roll back bank-api: no revision before 1 to roll back to');
    expect(out.errors.at(-1)).toBe('deploy of first5555 failed (bank-api); rollback incomplete');
  });

  it('a missing workload Secret stops before the migration with a hint (exit 4)', async () => {
    const standIn = await startStandIn({ secrets: ['bank-grpc-secrets'] });
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await runCli(async (_argv, output) => deploy({ env: 'kind', tag: 'abc', kubeconfig, ...fast, rolloutTimeoutMs: 200 }, output), [], out);

    expect(code).toBe(EXIT.migrationFailed);
    expect(out.errors).toEqual(['error: Secret bank-api-secrets does not exist: check the ExternalSecret (kubectl -n bank describe externalsecret bank-api-secrets)']);
    expect(standIn.requests.some((request) => request.method === 'POST')).toBe(false);
  });

  it('eks waits for the Secret of every workload, the migrator\'s included, before the migration (exit 4 naming each missing one)', async () => {
    const standIn = await startStandIn({ secrets: ['bank-api-secrets', 'bank-grpc-secrets'] });
    const kubeconfig = await standIn.writeKubeconfig('bank-production');
    const out = capture();

    const code = await runCli(
      async (_argv, output) => deploy({ env: 'eks', tag: 'abc', registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', kubeconfig, ...fast, rolloutTimeoutMs: 200 }, output),
      [],
      out,
    );

    expect(code).toBe(EXIT.migrationFailed);
    expect(out.errors).toEqual([
      'error: Secrets bank-worker-secrets, bank-migrator-secrets do not exist: check the ExternalSecrets (kubectl -n bank describe externalsecret bank-worker-secrets bank-migrator-secrets)',
    ]);
    expect(standIn.requests.some((request) => request.method === 'POST')).toBe(false);
  });

  it('without AWS names the Secrets to make by hand', async () => {
    const standIn = await startStandIn({ secrets: [] });
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await runCli(async (_argv, output) => deploy({ env: 'kind', noAws: true, tag: 'abc', kubeconfig, ...fast, rolloutTimeoutMs: 200 }, output), [], out);

    expect(code).toBe(EXIT.migrationFailed);
    expect(out.errors).toEqual(['error: Secrets bank-api-secrets, bank-grpc-secrets do not exist: create them (see deploy/kind/no-aws/kustomization.yaml)']);
  });

  it('refuses a context that is not the Kind cluster, before sending any request (exit 3)', async () => {
    const standIn = await startStandIn();
    const kubeconfig = await standIn.writeKubeconfig('prod-eu');
    const out = capture();

    const code = await runCli(async (_argv, output) => deploy({ env: 'kind', tag: 'abc', kubeconfig, ...fast }, output), [], out);

    expect(code).toBe(EXIT.cluster);
    expect(out.errors[0]).toBe(
      `error: refusing context "prod-eu" (${standIn.url}): --env kind deploys only to the Kind cluster's context "kind-bank" (npm run kind-up creates it)`,
    );
    expect(standIn.requests).toEqual([]);
  });

  it('says clearly when the cluster is unreachable (exit 3)', async () => {
    const standIn = await startStandIn();
    const kubeconfig = await standIn.writeKubeconfig();
    const url = standIn.url;
    await standIn.stop();
    const out = capture();

    const code = await runCli(async (_argv, output) => deploy({ env: 'kind', tag: 'abc', kubeconfig, ...fast }, output), [], out);

    expect(code).toBe(EXIT.cluster);
    expect(out.errors[0]).toMatch(new RegExp(`^error: cannot reach the Kubernetes API of context "kind-bank" at ${url.replaceAll('.', '\\.')}: .*ECONNREFUSED`));
  });

  it('--dry-run prints the plan and sends nothing', async () => {
    const standIn = await startStandIn();
    const kubeconfig = await standIn.writeKubeconfig();
    const out = capture();

    const code = await runCli(async (argv, output) => deploy({ ...parseDeployArgs(argv), kubeconfig }, output), ['--env', 'kind', '--tag', 'dry6666', '--dry-run'], out);

    expect(code).toBe(EXIT.ok);
    expect(standIn.requests).toEqual([]);
    expect(out.lines[0]).toBe('dry run: deploy dry6666 to kind (namespace bank); nothing is sent to a cluster');
    expect(out.lines).toContain('   Deployment/bank-grpc -> bank-grpc:dry6666');
    expect(out.lines.some((line) => /^2\. create Job bank-migrate-dry6666-[a-z0-9]+ \(image bank-migrator:dry6666\)/.test(line))).toBe(true);
  });

  it('eks: images from the ECR registry, IRSA roles and region of its account, through the named context', async () => {
    const standIn = await startStandIn();
    const kubeconfig = await standIn.writeKubeconfig('bank-production');
    const out = capture();
    const registry = '111122223333.dkr.ecr.us-east-2.amazonaws.com';

    const code = await deploy({ ...parseDeployArgs(['--env', 'eks', '--tag', 'f00dcafe', '--context', 'bank-production', '--registry', registry]), kubeconfig, ...fast }, out);

    expect(out.errors).toEqual([]);
    expect(code).toBe(EXIT.ok);
    expect(imageOf(standIn.get('Deployment', 'bank-api'))).toBe(`${registry}/bank-api:f00dcafe`);
    expect(standIn.get('ServiceAccount', 'bank-external-secrets')?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe(
      'arn:aws:iam::111122223333:role/bank-external-secrets',
    );
    expect((standIn.get('SecretStore', 'aws-secrets-manager')?.spec as { provider: { aws: { region: string } } }).provider.aws.region).toBe('us-east-2');
    expect(standIn.get('ClusterIssuer', 'letsencrypt', '')).toBeDefined();
    expect(applied(standIn.requests)).toContain('HorizontalPodAutoscaler/bank-api');
  });

  it('usage errors exit 2: eks without --context, a latest tag, an unknown flag', async () => {
    for (const argv of [
      ['--env', 'eks', '--tag', 'abc', '--registry', '111122223333.dkr.ecr.us-east-2.amazonaws.com'],
      ['--env', 'kind', '--tag', 'latest', '--dry-run'],
      ['--env', 'kind', '--tag', 'abc', '--frobnicate'],
      ['--env', 'gke', '--tag', 'abc'],
    ]) {
      const out = capture();
      expect(await runCli(async (args, output) => deploy(parseDeployArgs(args), output), argv, out)).toBe(EXIT.usage);
      expect(out.errors[0]).toMatch(/^error: /);
    }
  });
});
