// Offline checks of deploy/kind and deploy/eks: every rendered object validates against the
// Kubernetes (and External Secrets / cert-manager) schemas, and the policies the issue asks for
// hold, each as its own test. Rendering is `kubectl kustomize`, as the operator scripts apply it:
// kubectl >= 1.27 is a prerequisite of this tier (like PostgreSQL of the integration tests), so
// without it every test here fails with the one line saying what to install; none is skipped.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, beforeAll } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '@bank/shared/config/config.schema';
import { renderKustomization } from '@bank/ops-tools/manifests/kubectl-kustomize';
import { containersOf, podSpecOf, splitImage, type Manifest } from '@bank/ops-tools/manifests/manifest';

const root = path.resolve(import.meta.dirname, '../..');
const environments = ['kind', 'kind/no-aws', 'eks'] as const;
type Environment = (typeof environments)[number];
const rendered = new Map<Environment, Manifest[]>();

beforeAll(async () => {
  for (const environment of environments) {
    rendered.set(environment, await renderKustomization(path.join(root, 'deploy', environment)));
  }
});

function objectsOf(environment: Environment): Manifest[] {
  const objects = rendered.get(environment);
  if (!objects) throw new Error(`not rendered: ${environment}`);
  return objects;
}

const LONG_RUNNING = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const APP_DEPLOYMENTS = ['bank-api', 'bank-grpc', 'bank-worker'];

async function modelFor(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const modules: Record<string, string> = {
    v1: 'kubernetes-models/v1',
    'apps/v1': 'kubernetes-models/apps/v1',
    'batch/v1': 'kubernetes-models/batch/v1',
    'policy/v1': 'kubernetes-models/policy/v1',
    'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
    'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
    'external-secrets.io/v1': '@kubernetes-models/external-secrets/external-secrets.io/v1',
    'cert-manager.io/v1': '@kubernetes-models/cert-manager/cert-manager.io/v1',
  };
  const specifier = modules[apiVersion];
  if (!specifier) throw new Error(`no schema known for ${apiVersion}`);
  const module = (await import(specifier)) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = module[kind];
  if (!model) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return model;
}

/** Field names a client-node model class knows, to catch typos the (open) schemas accept. */
function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const arrayMatch = /^Array<(.+)>$/.exec(type);
  if (arrayMatch?.[1]) {
    return Array.isArray(value) ? value.flatMap((item, index) => unknownFields(item, arrayMatch[1] ?? '', `${at}[${index}]`)) : [];
  }
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => { baseName: string; type: string }[] }>)[type];
  if (!model?.getAttributeTypeMap || typeof value !== 'object') return [];
  const attributes = new Map(model.getAttributeTypeMap().map((attribute) => [attribute.baseName, attribute.type]));
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => {
    const childType = attributes.get(key);
    if (childType === undefined) return [`${at}.${key}`];
    return unknownFields(child, childType, `${at}.${key}`);
  });
}

function probesOf(container: Record<string, unknown>): string[] {
  return ['startupProbe', 'readinessProbe', 'livenessProbe'].filter((probe) => container[probe] !== undefined);
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

function podLabels(object: Manifest): Record<string, string> | undefined {
  return ((object.spec as { template?: { metadata?: { labels?: Record<string, string> } } }).template?.metadata?.labels);
}

describe.each(environments)('deploy/%s', (environment) => {
  it('renders objects of the expected kinds', () => {
    const kinds = new Set(objectsOf(environment).map((object) => object.kind));
    for (const kind of ['Namespace', 'ConfigMap', 'Deployment', 'Service', 'Job', 'Ingress']) expect(kinds).toContain(kind);
  });

  it('every object validates against its Kubernetes or CRD schema', async () => {
    const failures: string[] = [];
    for (const object of objectsOf(environment)) {
      const Model = await modelFor(object.apiVersion, object.kind);
      try {
        new Model(object).validate();
      } catch (error) {
        failures.push(`${object.kind}/${object.metadata.name}: ${(error as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('core objects carry no field unknown to the Kubernetes API (typos)', () => {
    const problems = objectsOf(environment)
      .filter((object) => !object.apiVersion.includes('.io/'))
      .flatMap((object) => {
        const version = object.apiVersion.split('/').at(-1) ?? '';
        const type = `${version.charAt(0).toUpperCase()}${version.slice(1)}${object.kind}`;
        return unknownFields(object, type, `${object.kind}/${object.metadata.name}`);
      });
    expect(problems).toEqual([]);
  });

  it('every container has cpu and memory requests and limits', () => {
    const missing = objectsOf(environment).flatMap((object) =>
      containersOf(object)
        .filter((container) => {
          const resources = container.resources as { requests?: Record<string, unknown>; limits?: Record<string, unknown> } | undefined;
          return !resources?.requests?.cpu || !resources.requests.memory || !resources.limits?.cpu || !resources.limits.memory;
        })
        .map((container) => `${object.kind}/${object.metadata.name}/${container.name}`),
    );
    expect(missing).toEqual([]);
  });

  it('every long-running container has startup, readiness and liveness probes', () => {
    const workloads = objectsOf(environment).filter((object) => LONG_RUNNING.has(object.kind));
    expect(workloads.length).toBeGreaterThan(0);
    const missing = workloads.flatMap((object) =>
      containersOf(object)
        .filter((container) => probesOf(container).length !== 3)
        .map((container) => `${object.metadata.name}/${container.name}: ${probesOf(container).join(',')}`),
    );
    expect(missing).toEqual([]);
  });

  it('the processes are ready only when /readyz (database and Redis) answers', () => {
    for (const name of APP_DEPLOYMENTS) {
      const deployment = objectsOf(environment).find((object) => object.kind === 'Deployment' && object.metadata.name === name);
      const [container] = deployment ? containersOf(deployment) : [];
      expect((container?.readinessProbe as { httpGet?: { path?: string } } | undefined)?.httpGet?.path).toBe('/readyz');
    }
  });

  it('every pod runs as non-root with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    const problems: string[] = [];
    for (const object of objectsOf(environment)) {
      const podSpec = podSpecOf(object);
      if (!podSpec) continue;
      const podSecurity = (podSpec.securityContext ?? {}) as Record<string, unknown>;
      for (const container of containersOf(object)) {
        const security = (container.securityContext ?? {}) as Record<string, unknown>;
        const where = `${object.kind}/${object.metadata.name}/${container.name}`;
        const runAsNonRoot = security.runAsNonRoot ?? podSecurity.runAsNonRoot;
        const runAsUser = (security.runAsUser ?? podSecurity.runAsUser) as number | undefined;
        if (runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot`);
        if (runAsUser === 0) problems.push(`${where}: runAsUser 0`);
        if (security.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem`);
        if (security.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation`);
        if (security.privileged === true) problems.push(`${where}: privileged`);
        const drop = (security.capabilities as { drop?: string[]; add?: string[] } | undefined)?.drop ?? [];
        if (!drop.includes('ALL')) problems.push(`${where}: capabilities not dropped`);
        if (((security.capabilities as { add?: string[] } | undefined)?.add ?? []).length > 0) problems.push(`${where}: capabilities added`);
        const seccomp = ((security.seccompProfile ?? podSecurity.seccompProfile) as { type?: string } | undefined)?.type;
        if (seccomp !== 'RuntimeDefault') problems.push(`${where}: seccompProfile`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every image is pinned by an explicit tag that is not latest', () => {
    const images = objectsOf(environment).flatMap((object) => containersOf(object).map((container) => container.image));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      const { tag, digest } = splitImage(image);
      expect({ image, pinned: Boolean(digest) || (tag !== undefined && tag !== 'latest') }).toEqual({ image, pinned: true });
    }
  });

  it('no Secret with data is rendered; the workloads\' Secrets come from ExternalSecrets or are made by hand', () => {
    const secrets = objectsOf(environment).filter((object) => object.kind === 'Secret');
    expect(secrets.filter((secret) => secret.data !== undefined || secret.stringData !== undefined)).toEqual([]);
    const externalSecrets = objectsOf(environment).filter((object) => object.kind === 'ExternalSecret');
    if (environment === 'kind/no-aws') {
      expect(externalSecrets).toEqual([]);
      return;
    }
    const store = objectsOf(environment).find((object) => object.kind === 'SecretStore');
    expect(store?.apiVersion).toBe('external-secrets.io/v1');
    expect(externalSecrets.length).toBeGreaterThan(0);
    for (const externalSecret of externalSecrets) {
      const spec = externalSecret.spec as { secretStoreRef: { name: string; kind: string }; target: { name: string } };
      expect(spec.secretStoreRef).toEqual({ kind: 'SecretStore', name: store?.metadata.name });
      expect(spec.target.name).toBe(externalSecret.metadata.name);
    }
    const provider = (store?.spec as { provider: { aws: { service: string; auth: Record<string, unknown> } } }).provider.aws;
    expect(provider.service).toBe('SecretsManager');
    expect(Object.keys(provider.auth)).toEqual([environment === 'eks' ? 'jwt' : 'secretRef']);
  });

  it('selectors match: Deployments their templates, Services and Ingresses their backends', () => {
    const objects = objectsOf(environment);
    const workloads = objects.filter((object) => LONG_RUNNING.has(object.kind));
    for (const workload of workloads) {
      const selector = (workload.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      expect({ name: workload.metadata.name, matches: matches(selector, podLabels(workload)) }).toEqual({ name: workload.metadata.name, matches: true });
    }
    const services = objects.filter((object) => object.kind === 'Service');
    for (const service of services) {
      const spec = service.spec as { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
      const backing = workloads.filter((workload) => matches(spec.selector, podLabels(workload)));
      expect({ service: service.metadata.name, backed: backing.length }).toEqual({ service: service.metadata.name, backed: 1 });
      const containerPorts = containersOf(backing[0] as Manifest).flatMap((container) => (container.ports as { name: string }[] | undefined) ?? []);
      for (const port of spec.ports) expect(containerPorts.map((containerPort) => containerPort.name)).toContain(port.targetPort);
    }
    for (const ingress of objects.filter((object) => object.kind === 'Ingress')) {
      const rules = (ingress.spec as { rules: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] }).rules;
      for (const backend of rules.flatMap((rule) => rule.http.paths.map((entry) => entry.backend.service))) {
        const service = services.find((candidate) => candidate.metadata.name === backend.name);
        expect((service?.spec as { ports: { name: string }[] } | undefined)?.ports.map((port) => port.name)).toContain(backend.port.name);
      }
    }
  });

  it('every process reads the ConfigMap, then its own Secret (so the Secret wins)', () => {
    const objects = objectsOf(environment);
    const configMaps = new Set(objects.filter((object) => object.kind === 'ConfigMap').map((object) => object.metadata.name));
    for (const object of objects.filter((candidate) => candidate.metadata.name.startsWith('bank-') && podSpecOf(candidate))) {
      for (const container of containersOf(object)) {
        const envFrom = container.envFrom as { configMapRef?: { name: string }; secretRef?: { name: string } }[];
        expect(envFrom.map((source) => (source.configMapRef ? `cm:${source.configMapRef.name}` : `secret:${source.secretRef?.name}`))).toEqual([
          'cm:bank-config',
          `secret:${object.metadata.labels?.['app.kubernetes.io/name']}-secrets`,
        ]);
        expect(configMaps).toContain('bank-config');
      }
    }
  });

  it('every ConfigMap setting is one the config schema knows, with a value it accepts', () => {
    const config = objectsOf(environment).find((object) => object.kind === 'ConfigMap' && object.metadata.name === 'bank-config');
    const data = (config?.data ?? {}) as Record<string, string>;
    // Read by Node itself at start-up, not by the schema.
    const runtimeOnly = new Set(['UV_THREADPOOL_SIZE']);
    expect(Object.keys(data).filter((key) => !runtimeOnly.has(key) && !(key in configSchema.shape))).toEqual([]);
    const parsed = configSchema.safeParse(data);
    expect(parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)).toEqual([]);
  });

  it('the servers listen on every interface (HOST=0.0.0.0): probes and Services reach the pod on its own address', () => {
    const objects = objectsOf(environment);
    const config = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === 'bank-config');
    for (const name of APP_DEPLOYMENTS) {
      const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name === name) as Manifest;
      // A container's own env wins over envFrom; the ConfigMap is where every process reads it.
      const own = (containersOf(deployment)[0]?.env as { name: string; value?: string }[] | undefined)?.find((entry) => entry.name === 'HOST');
      expect({ [name]: own?.value ?? (config?.data as Record<string, string>).HOST }).toEqual({ [name]: '0.0.0.0' });
    }
  });

  it('the termination grace period covers the preStop pause plus SHUTDOWN_TIMEOUT_MS', () => {
    const objects = objectsOf(environment);
    const config = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === 'bank-config');
    const shutdownMs = Number((config?.data as Record<string, string>).SHUTDOWN_TIMEOUT_MS);
    expect(shutdownMs).toBe(20_000);
    for (const name of APP_DEPLOYMENTS) {
      const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name === name) as Manifest;
      const podSpec = podSpecOf(deployment) as { terminationGracePeriodSeconds: number };
      const preStop = (containersOf(deployment)[0]?.lifecycle as { preStop?: { exec: { command: string[] } } } | undefined)?.preStop;
      const pauseMs = preStop ? Number(preStop.exec.command[1]) * 1000 : 0;
      expect(podSpec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(shutdownMs + pauseMs);
    }
  });

  it('the servers start with their OpenTelemetry preload (--import, which the ESM hooks need)', () => {
    for (const name of APP_DEPLOYMENTS) {
      const deployment = objectsOf(environment).find((object) => object.kind === 'Deployment' && object.metadata.name === name) as Manifest;
      const service = name.replace(/^bank-/, '');
      expect(containersOf(deployment)[0]?.args).toEqual([`--import=./services/${service}/src/instrument.ts`, `services/${service}/src/main.ts`]);
    }
  });

  it('the migrator is a Job that runs `up` once and does not restart in place', () => {
    const job = objectsOf(environment).find((object) => object.kind === 'Job') as Manifest;
    const spec = job.spec as { backoffLimit: number; template: { spec: { restartPolicy: string } } };
    expect(spec.template.spec.restartPolicy).toBe('Never');
    expect(spec.backoffLimit).toBeLessThanOrEqual(1);
    expect(containersOf(job)[0]?.args).toEqual(['services/migrator/src/main.ts', 'up']);
  });
});

describe('deploy/eks only', () => {
  it('every Deployment has a PodDisruptionBudget whose selector matches its pods', () => {
    const objects = objectsOf('eks');
    const budgets = objects.filter((object) => object.kind === 'PodDisruptionBudget');
    for (const deployment of objects.filter((object) => object.kind === 'Deployment')) {
      const covering = budgets.filter((budget) =>
        matches((budget.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, podLabels(deployment)),
      );
      expect({ deployment: deployment.metadata.name, budgets: covering.length }).toEqual({ deployment: deployment.metadata.name, budgets: 1 });
    }
  });

  it('every Deployment is scaled by an HPA, and the HPA minimum keeps the PDB satisfiable', () => {
    const objects = objectsOf('eks');
    for (const deployment of objects.filter((object) => object.kind === 'Deployment')) {
      const hpa = objects.find(
        (object) => object.kind === 'HorizontalPodAutoscaler' && (object.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === deployment.metadata.name,
      );
      expect((hpa?.spec as { minReplicas: number } | undefined)?.minReplicas).toBeGreaterThanOrEqual(2);
    }
  });

  it('images come from ECR; pods spread across zones and run as their IRSA ServiceAccount', () => {
    const objects = objectsOf('eks');
    const accounts = new Map(objects.filter((object) => object.kind === 'ServiceAccount').map((object) => [object.metadata.name, object]));
    for (const object of objects.filter((candidate) => podSpecOf(candidate))) {
      for (const container of containersOf(object)) expect(container.image).toMatch(/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/bank-[a-z]+:/);
      const podSpec = podSpecOf(object) as { serviceAccountName?: string; topologySpreadConstraints?: { topologyKey: string }[] };
      const account = accounts.get(podSpec.serviceAccountName ?? '');
      expect(account?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\//);
      if (object.kind === 'Deployment') {
        expect(podSpec.topologySpreadConstraints?.map((constraint) => constraint.topologyKey)).toContain('topology.kubernetes.io/zone');
      }
    }
    const store = objects.find((object) => object.kind === 'SecretStore') as Manifest;
    const jwt = (store.spec as { provider: { aws: { auth: { jwt: { serviceAccountRef: { name: string } } } } } }).provider.aws.auth.jwt;
    expect(accounts.get(jwt.serviceAccountRef.name)?.metadata.annotations?.['eks.amazonaws.com/role-arn']).toMatch(/role\/bank-external-secrets$/);
  });

  it('network policies deny by default and every pod is selected by an allowing policy', () => {
    const objects = objectsOf('eks');
    const policies = objects.filter((object) => object.kind === 'NetworkPolicy');
    const defaultDeny = policies.find((policy) => {
      const spec = policy.spec as { podSelector: Record<string, unknown>; policyTypes: string[]; ingress?: unknown; egress?: unknown };
      return Object.keys(spec.podSelector).length === 0 && spec.policyTypes.length === 2 && !spec.ingress && !spec.egress;
    });
    expect(defaultDeny).toBeDefined();
    for (const workload of objects.filter((object) => podSpecOf(object))) {
      const allowing = policies.filter((policy) =>
        matches((policy.spec as { podSelector: { matchLabels?: Record<string, string> } }).podSelector.matchLabels, podLabels(workload)),
      );
      expect({ workload: workload.metadata.name, allowing: allowing.length }).toEqual({ workload: workload.metadata.name, allowing: 1 });
    }
    const api = policies.find((policy) => policy.metadata.name === 'bank-api')?.spec as { ingress: { ports: { port: number }[] }[] };
    // The ingress reaches the HTTP port, monitoring only the metrics port (never /metrics on 8080).
    expect(api.ingress.flatMap((rule) => rule.ports.map((port) => port.port))).toEqual([8080, 9464]);
  });

  it('both ingresses use TLS certificates from the cert-manager ClusterIssuer; gRPC is proxied as gRPC', () => {
    const objects = objectsOf('eks');
    const issuer = objects.find((object) => object.kind === 'ClusterIssuer');
    for (const ingress of objects.filter((object) => object.kind === 'Ingress')) {
      expect(ingress.metadata.annotations?.['cert-manager.io/cluster-issuer']).toBe(issuer?.metadata.name);
      expect((ingress.spec as { tls: { secretName: string }[] }).tls[0]?.secretName).toMatch(/-tls$/);
    }
    const grpc = objects.find((object) => object.kind === 'Ingress' && object.metadata.name === 'bank-grpc');
    expect(grpc?.metadata.annotations?.['nginx.ingress.kubernetes.io/backend-protocol']).toBe('GRPC');
  });
});

describe('deploy/observability', () => {
  it('renders the alert rules as a PrometheusRule and the Grafana dashboard as a ConfigMap its sidecar loads', async () => {
    const objects = await renderKustomization(path.join(root, 'deploy/observability'));
    expect(objects.map((object) => `${object.apiVersion} ${object.kind}/${object.metadata.name}`).sort()).toEqual([
      'monitoring.coreos.com/v1 PrometheusRule/bank',
      'v1 ConfigMap/bank-grafana-dashboard',
    ]);
    const dashboard = objects.find((object) => object.kind === 'ConfigMap') as Manifest;
    expect(dashboard.metadata.labels?.grafana_dashboard).toBe('1');
    expect((JSON.parse((dashboard.data as Record<string, string>)['grafana-dashboard.json'] ?? '{}') as { uid?: string }).uid).toBe('bank-overview');
  });

  it('stays out of deploy/kind and deploy/eks, which must apply without the Prometheus operator', () => {
    for (const environment of environments) expect(objectsOf(environment).filter((object) => object.kind === 'PrometheusRule')).toEqual([]);
  });
});

describe('files in git', () => {
  async function deployFiles(directory = path.join(root, 'deploy')): Promise<string[]> {
    const entries = await readdir(directory, { withFileTypes: true });
    const nested = await Promise.all(
      entries.map((entry) => (entry.isDirectory() ? deployFiles(path.join(directory, entry.name)) : Promise.resolve([path.join(directory, entry.name)]))),
    );
    return nested.flat();
  }

  it('no file under deploy/ holds a Secret with data, a private key or an AWS access key', async () => {
    const problems: string[] = [];
    for (const file of (await deployFiles()).filter((candidate) => /\.ya?ml$/.test(candidate))) {
      const text = await readFile(file, 'utf8');
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) problems.push(`${file}: private key`);
      if (/\bAKIA[0-9A-Z]{16}\b/.test(text)) problems.push(`${file}: AWS access key id`);
      for (const document of text.split(/^---$/m).map((part) => parseYaml(part) as Record<string, unknown> | null)) {
        if (document?.kind === 'Secret' && (document.data || document.stringData)) problems.push(`${file}: Secret with data`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the Kind cluster maps host ports 80 and 443 to the ingress node and pins its node image', async () => {
    const cluster = parseYaml(await readFile(path.join(root, 'deploy/kind/cluster.yaml'), 'utf8')) as {
      kind: string;
      apiVersion: string;
      name: string;
      nodes: { role: string; image: string; extraPortMappings: { hostPort: number }[]; kubeadmConfigPatches: string[] }[];
    };
    expect([cluster.kind, cluster.apiVersion, cluster.name]).toEqual(['Cluster', 'kind.x-k8s.io/v1alpha4', 'bank']);
    const [node] = cluster.nodes;
    expect(node?.image).toMatch(/^kindest\/node:v\d+\.\d+\.\d+$/);
    expect(node?.extraPortMappings.map((mapping) => mapping.hostPort)).toEqual([80, 443]);
    expect(node?.kubeadmConfigPatches.join('\n')).toContain('ingress-ready=true');
  });
});
