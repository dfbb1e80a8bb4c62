// Least privilege in the cluster (issue 13, item 6), on the manifests as `kubectl kustomize`
// renders them: each workload reads one Secret, its own, holding only the keys its configuration
// slice reads; External Secrets maps exactly those keys and may read only the secret they come
// from; each workload runs as its own IAM role, trusted only by its own ServiceAccount.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { SECRET_KEYS } from '@bank/shared/config/secrets';
import { renderKustomization } from '@bank/ops-tools/manifests/kubectl-kustomize';
import { containersOf, podSpecOf, secretsReadBy, type Manifest } from '@bank/ops-tools/manifests/manifest';
import type { ApiConfig } from '@bank/api/api-server';
import type { GrpcConfig } from '@bank/grpc/grpc-server';
import type { WorkerConfig } from '@bank/worker/worker';
import type { MigratorConfig } from '@bank/migrator/migrator';

const root = path.resolve(import.meta.dirname, '../..');
const environments = ['kind', 'kind/no-aws', 'eks'] as const;
type Environment = (typeof environments)[number];
const rendered = new Map<Environment, Manifest[]>();

beforeAll(async () => {
  for (const environment of environments) rendered.set(environment, await renderKustomization(path.join(root, 'deploy', environment)));
});

function objectsOf(environment: Environment): Manifest[] {
  const objects = rendered.get(environment);
  if (!objects) throw new Error(`not rendered: ${environment}`);
  return objects;
}

/** Keys that are secrets (MAIL_FROM may come from a secret but is no secret: it is in the ConfigMap). */
type SecretKey = Exclude<(typeof SECRET_KEYS)[number], 'MAIL_FROM'>;
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// What each workload's Secret holds, checked against the code by the compiler: each list is
// exactly the secret keys of that process's configuration slice. The migrator's DATABASE_URL is
// its local-development fallback, which no cluster gives it.
const API_KEYS = ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY', 'PASETO_PUBLIC_KEYS'] as const;
const GRPC_KEYS = ['DATABASE_URL', 'REDIS_URL', 'PASETO_SECRET_KEY', 'PASETO_PUBLIC_KEYS'] as const;
const WORKER_KEYS = ['DATABASE_URL', 'REDIS_URL', 'SMTP_URL'] as const;
const MIGRATOR_KEYS = ['MIGRATION_DATABASE_URL', 'APP_DATABASE_PASSWORD'] as const;
const sliceChecks: [
  Exactly<(typeof API_KEYS)[number], Extract<keyof ApiConfig, SecretKey>>,
  Exactly<(typeof GRPC_KEYS)[number], Extract<keyof GrpcConfig, SecretKey>>,
  Exactly<(typeof WORKER_KEYS)[number], Extract<keyof WorkerConfig, SecretKey>>,
  Exactly<(typeof MIGRATOR_KEYS)[number], Exclude<Extract<keyof MigratorConfig, SecretKey>, 'DATABASE_URL'>>,
] = [true, true, true, true];

const WORKLOADS = {
  'bank-api': API_KEYS,
  'bank-grpc': GRPC_KEYS,
  'bank-worker': WORKER_KEYS,
  'bank-migrator': MIGRATOR_KEYS,
} as const satisfies Record<string, readonly SecretKey[]>;
type Workload = keyof typeof WORKLOADS;
const workloadNames = Object.keys(WORKLOADS) as Workload[];
const secretOf = (workload: Workload) => `${workload}-secrets`;
const ALL_SECRET_KEYS = new Set<string>(Object.values(WORKLOADS).flat());

/** The Deployment or Job of each workload, by its app.kubernetes.io/name label. */
function workloadObjects(environment: Environment): Map<Workload, Manifest> {
  const found = new Map<Workload, Manifest>();
  for (const object of objectsOf(environment).filter((candidate) => podSpecOf(candidate))) {
    const name = object.metadata.labels?.['app.kubernetes.io/name'];
    if (name && name in WORKLOADS) found.set(name as Workload, object);
  }
  return found;
}

type ExternalSecretSpec = {
  target: { name: string };
  data?: { secretKey: string; remoteRef: { key: string; property?: string } }[];
  dataFrom?: unknown[];
};
const externalSecretsOf = (environment: Environment) =>
  objectsOf(environment)
    .filter((object) => object.kind === 'ExternalSecret')
    .map((object) => ({ name: object.metadata.name, spec: object.spec as ExternalSecretSpec }));

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(path.join(root, file), 'utf8')) as T;
}
type PolicyDocument = {
  Statement: { Effect: string; Action: string | string[]; Resource?: string | string[]; Principal?: { Federated: string }; Condition?: { StringEquals?: Record<string, string> } }[];
};
const list = (value: string | string[] | undefined) => [value ?? []].flat();

it('the workload key lists match the configuration slices (checked at compile time)', () => {
  expect(sliceChecks).toEqual([true, true, true, true]);
});

describe.each(environments)('deploy/%s', (environment) => {
  it('runs the four workloads', () => {
    expect([...workloadObjects(environment).keys()].sort()).toEqual([...workloadNames].sort());
  });

  it('each workload reads one Secret, its own, and no other workload reads it', () => {
    const readers = new Map<string, string[]>();
    for (const [workload, object] of workloadObjects(environment)) {
      const secrets = secretsReadBy(object).map((secret) => secret.name);
      expect({ workload, secrets }).toEqual({ workload, secrets: [secretOf(workload)] });
      for (const secret of secrets) readers.set(secret, [...(readers.get(secret) ?? []), workload]);
    }
    for (const [secret, workloads] of readers) expect({ secret, workloads }).toEqual({ secret, workloads: [secret.replace(/-secrets$/, '')] });
  });

  it("no workload sets another workload's secret key itself, and the shared ConfigMap holds no credential", () => {
    for (const [workload, object] of workloadObjects(environment)) {
      const own = (containersOf(object).flatMap((container) => (container.env as { name: string }[] | undefined) ?? [])).map((entry) => entry.name);
      const foreign = own.filter((name) => ALL_SECRET_KEYS.has(name) && !(WORKLOADS[workload] as readonly string[]).includes(name));
      expect({ workload, foreign }).toEqual({ workload, foreign: [] });
    }
    const config = objectsOf(environment).find((object) => object.kind === 'ConfigMap' && object.metadata.name === 'bank-config');
    const keys = Object.keys((config?.data ?? {}) as Record<string, string>).filter((key) => ALL_SECRET_KEYS.has(key));
    // Kind's in-cluster stores take no password: their addresses may be shared settings. The
    // owner's connection, the role password and the signing key never are.
    if (environment === 'eks') expect(keys).toEqual([]);
    else expect(keys.filter((key) => ['MIGRATION_DATABASE_URL', 'APP_DATABASE_PASSWORD', 'PASETO_SECRET_KEY'].includes(key))).toEqual([]);
  });

  it("each ExternalSecret fills one workload's Secret with only that workload's keys, named one by one", () => {
    const externalSecrets = externalSecretsOf(environment);
    if (environment === 'kind/no-aws') {
      expect(externalSecrets).toEqual([]);
      return;
    }
    for (const { name, spec } of externalSecrets) {
      const workload = workloadNames.find((candidate) => secretOf(candidate) === spec.target.name);
      expect({ name, workload: workload ?? 'none', dataFrom: spec.dataFrom ?? [] }).toEqual({ name, workload: spec.target.name.replace(/-secrets$/, ''), dataFrom: [] });
      const mapped = (spec.data ?? []).map((entry) => entry.secretKey);
      for (const entry of spec.data ?? []) expect(entry.remoteRef.property).toBe(entry.secretKey);
      const allowed = workload ? (WORKLOADS[workload] as readonly string[]) : [];
      // EKS: every key the workload reads, and nothing else; Kind: the API's and gRPC's PASETO
      // keys only (the rest is in the cluster without passwords).
      if (environment === 'eks') expect({ name, mapped: [...mapped].sort() }).toEqual({ name, mapped: [...allowed].sort() });
      else expect({ name, outside: mapped.filter((key) => !allowed.includes(key)) }).toEqual({ name, outside: [] });
    }
    const targets = externalSecrets.map(({ spec }) => spec.target.name).sort();
    expect(targets).toEqual(environment === 'eks' ? workloadNames.map(secretOf).sort() : ['bank-api-secrets', 'bank-grpc-secrets']);
  });
});

describe('deploy/eks: IAM', () => {
  const irsaRole = (object: Manifest | undefined) => object?.metadata.annotations?.['eks.amazonaws.com/role-arn']?.replace(/^arn:aws:iam::\d{12}:role\//, '');
  const accounts = () => new Map(objectsOf('eks').filter((object) => object.kind === 'ServiceAccount').map((object) => [object.metadata.name, object]));

  it('no workload may start without its Secret', () => {
    for (const [workload, object] of workloadObjects('eks')) expect({ workload, optional: secretsReadBy(object).some((secret) => secret.optional) }).toEqual({ workload, optional: false });
  });

  it('each workload runs as a ServiceAccount of its own with an IAM role of its own, trusted by that ServiceAccount alone', () => {
    const roles = new Set<string>();
    for (const [workload, object] of workloadObjects('eks')) {
      const serviceAccount = (podSpecOf(object) as { serviceAccountName?: string }).serviceAccountName ?? '';
      expect({ workload, serviceAccount }).toEqual({ workload, serviceAccount: workload });
      const role = irsaRole(accounts().get(serviceAccount));
      expect({ workload, role }).toEqual({ workload, role: workload });
      roles.add(role ?? '');
      const trust = readJson<PolicyDocument>(`deploy/eks/iam/${role}.trust.json`);
      expect(trust.Statement).toHaveLength(1);
      const [statement] = trust.Statement;
      expect(statement?.Principal?.Federated).toMatch(/:oidc-provider\/oidc\.eks\.[a-z0-9-]+\.amazonaws\.com\/id\/\w+$/);
      const conditions = statement?.Condition?.StringEquals ?? {};
      expect(Object.entries(conditions).filter(([key]) => key.endsWith(':sub')).map(([, value]) => value)).toEqual([`system:serviceaccount:bank:${serviceAccount}`]);
      expect(Object.entries(conditions).filter(([key]) => key.endsWith(':aud')).map(([, value]) => value)).toEqual(['sts.amazonaws.com']);
      // The processes call no AWS API: a permission policy, if one is ever added, never reads secrets.
      const policy = `deploy/eks/iam/${role}.policy.json`;
      if (existsSync(path.join(root, policy))) {
        const actions = readJson<PolicyDocument>(policy).Statement.flatMap((entry) => list(entry.Action));
        expect(actions.filter((action) => action.startsWith('secretsmanager:') || action === '*')).toEqual([]);
      }
    }
    expect(roles.size).toBe(workloadNames.length);
  });

  it("External Secrets may read exactly the secrets the ExternalSecrets name, and nothing else, as its own role", () => {
    const store = objectsOf('eks').find((object) => object.kind === 'SecretStore') as Manifest;
    const storeAccount = (store.spec as { provider: { aws: { region: string; auth: { jwt: { serviceAccountRef: { name: string } } } } } }).provider.aws;
    const role = irsaRole(accounts().get(storeAccount.auth.jwt.serviceAccountRef.name));
    expect(role).toBe('bank-external-secrets');
    expect(workloadNames).not.toContain(role);
    const trust = readJson<PolicyDocument>(`deploy/eks/iam/${role}.trust.json`);
    expect(Object.entries(trust.Statement[0]?.Condition?.StringEquals ?? {}).find(([key]) => key.endsWith(':sub'))?.[1]).toBe(
      `system:serviceaccount:bank:${storeAccount.auth.jwt.serviceAccountRef.name}`,
    );
    const policy = readJson<PolicyDocument>(`deploy/eks/iam/${role}.policy.json`);
    expect(policy.Statement.every((statement) => statement.Effect === 'Allow')).toBe(true);
    expect([...new Set(policy.Statement.flatMap((statement) => list(statement.Action)))]).toEqual(['secretsmanager:GetSecretValue']);
    const names = [...new Set(externalSecretsOf('eks').flatMap(({ spec }) => (spec.data ?? []).map((entry) => entry.remoteRef.key)))];
    expect(names).toEqual(['bank/production']);
    // Secrets Manager appends six random characters to a secret's ARN: `-??????` matches that
    // secret's ARN and no other secret's.
    const resources = policy.Statement.flatMap((statement) => list(statement.Resource)).sort();
    expect(resources).toEqual(names.map((name) => `arn:aws:secretsmanager:${storeAccount.region}:123456789012:secret:${name}-??????`).sort());
  });
});
