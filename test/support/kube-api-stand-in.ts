// A stand-in for the Kubernetes API server, for the operator scripts' tests: plain HTTP on a free
// port, an in-memory object store, discovery for the kinds deploy/ uses, and just enough of the
// Deployment, ReplicaSet, StatefulSet and Job controllers to play the scenarios the scripts must
// handle. It records every request so tests can assert the calls, their order and their bodies.
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { applyJsonPatch, type JsonPatchOperation } from './json-patch.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  body: unknown;
}

export interface Scenario {
  /** How the migration Job ends. */
  job: 'succeed' | 'fail' | 'never';
  /** Images whose rollout never becomes available (the pods never get ready). */
  stallImages: readonly string[];
  /** A stalled rollout reports ProgressDeadlineExceeded after this many status reads (default: never). */
  progressDeadlineAfterReads?: number;
  /** Status reads a healthy rollout or a Job takes before it is done. */
  readsBeforeDone: number;
  /** The Secrets that exist (External Secrets synced, or made by hand): by default every workload's. */
  secrets: readonly string[];
  /** Log lines of the migration pod. */
  jobLog: string;
}

type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; generation?: number; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { uid: string }[]; creationTimestamp?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [field: string]: unknown;
};

interface ResourceType {
  kind: string;
  plural: string;
  namespaced: boolean;
  groupVersion: string;
}

const RESOURCE_TYPES: ResourceType[] = [
  ['v1', 'Namespace', 'namespaces', false],
  ['v1', 'ConfigMap', 'configmaps', true],
  ['v1', 'Service', 'services', true],
  ['v1', 'Secret', 'secrets', true],
  ['v1', 'Pod', 'pods', true],
  ['v1', 'ServiceAccount', 'serviceaccounts', true],
  ['apps/v1', 'Deployment', 'deployments', true],
  ['apps/v1', 'StatefulSet', 'statefulsets', true],
  ['apps/v1', 'ReplicaSet', 'replicasets', true],
  ['batch/v1', 'Job', 'jobs', true],
  ['networking.k8s.io/v1', 'Ingress', 'ingresses', true],
  ['networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies', true],
  ['policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true],
  ['autoscaling/v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true],
  ['external-secrets.io/v1', 'SecretStore', 'secretstores', true],
  ['external-secrets.io/v1', 'ExternalSecret', 'externalsecrets', true],
  ['cert-manager.io/v1', 'ClusterIssuer', 'clusterissuers', false],
].map(([groupVersion, kind, plural, namespaced]) => ({ groupVersion, kind, plural, namespaced }) as ResourceType);

const REVISION = 'deployment.kubernetes.io/revision';

export class KubeApiStandIn {
  readonly requests: RecordedRequest[] = [];
  readonly scenario: Scenario;
  private readonly objects = new Map<string, KubeObject>();
  private readonly statusReads = new Map<string, number>();
  private server: http.Server | undefined;
  private resourceVersion = 100;
  url = '';

  constructor(scenario: Partial<Scenario> = {}) {
    this.scenario = { job: 'succeed', stallImages: [], readsBeforeDone: 2, secrets: ['bank-api-secrets', 'bank-grpc-secrets', 'bank-worker-secrets', 'bank-migrator-secrets'], jobLog: 'applied 0001_core.sql\napplied 0002_ledger_move.sql\nmigrations up to date', ...scenario };
  }

  async start(): Promise<string> {
    this.server = http.createServer((request, response) => {
      let raw = '';
      request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      request.on('end', () => this.handle(request, raw, response));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    for (const name of this.scenario.secrets) this.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'bank' } });
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    this.server = undefined;
  }

  /** A kubeconfig file with one context pointing at this stand-in. */
  async writeKubeconfig(context = 'kind-bank', server = this.url): Promise<string> {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'kube-stand-in-'));
    const file = path.join(directory, 'config');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': context,
      // client-node refuses plain http unless TLS verification is explicitly off.
      clusters: [{ name: context, cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: context, user: { token: 'stand-in-token' } }],
      contexts: [{ name: context, context: { cluster: context, user: context, namespace: 'bank' } }],
    };
    await writeFile(file, JSON.stringify(config));
    return file;
  }

  /** Puts a Deployment in place as if an earlier deploy had rolled it out (revision 1, available). */
  seedDeployment(deployment: KubeObject): void {
    this.applyDeployment(structuredClone(deployment));
    this.statusReads.set(this.key('Deployment', 'bank', deployment.metadata.name), Number.MAX_SAFE_INTEGER);
  }

  get(kind: string, name: string, namespace = 'bank'): KubeObject | undefined {
    return this.objects.get(this.key(kind, namespace, name));
  }

  list(kind: string): KubeObject[] {
    return [...this.objects.values()].filter((object) => object.kind === kind);
  }

  /** Requests that changed something (everything but GET), in order. */
  writes(): RecordedRequest[] {
    return this.requests.filter((request) => request.method !== 'GET');
  }

  private handle(request: http.IncomingMessage, raw: string, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://stand-in');
    const contentType = request.headers['content-type']?.split(';')[0];
    const body = raw ? (parseYaml(raw) as unknown) : undefined;
    const method = request.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams, contentType, body });
    try {
      const result = this.route(method, url, contentType, body);
      if (typeof result.body === 'string') {
        response.writeHead(result.status, { 'content-type': 'text/plain' });
        response.end(result.body);
      } else {
        response.writeHead(result.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(result.body));
      }
    } catch (error) {
      response.writeHead(500, { 'content-type': 'application/json' });
      response.end(JSON.stringify(status(500, 'InternalError', (error as Error).message)));
    }
  }

  private route(method: string, url: URL, contentType: string | undefined, body: unknown): { status: number; body: unknown } {
    const segments = url.pathname.split('/').filter(Boolean);
    if (segments[0] === 'version') return { status: 200, body: { major: '1', minor: '33', gitVersion: 'v1.33.1-stand-in', platform: 'linux/amd64' } };
    let groupVersion: string;
    let rest: string[];
    if (segments[0] === 'api' && segments[1] === 'v1') [groupVersion, rest] = ['v1', segments.slice(2)];
    else if (segments[0] === 'apis' && segments.length >= 3) [groupVersion, rest] = [`${segments[1]}/${segments[2]}`, segments.slice(3)];
    else return { status: 404, body: status(404, 'NotFound', `no route ${url.pathname}`) };

    if (rest.length === 0 && method === 'GET') return { status: 200, body: this.discovery(groupVersion) };

    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource] = rest;
    const type = RESOURCE_TYPES.find((candidate) => candidate.groupVersion === groupVersion && candidate.plural === plural);
    if (!type) return { status: 404, body: status(404, 'NotFound', `the server could not find the requested resource ${groupVersion}/${plural}`) };
    const ns = type.namespaced ? (namespace ?? 'default') : '';

    if (!name) {
      if (method === 'GET') return { status: 200, body: this.listBody(type, ns, url.searchParams.get('labelSelector')) };
      if (method === 'POST') return this.create(type, ns, body as KubeObject);
      return { status: 405, body: status(405, 'MethodNotAllowed', method) };
    }

    const key = this.key(type.kind, ns, name);
    if (method === 'GET') {
      const object = this.objects.get(key);
      if (!object) return { status: 404, body: status(404, 'NotFound', `${plural} "${name}" not found`) };
      if (subresource === 'log') return { status: 200, body: this.scenario.jobLog };
      if (subresource === 'status') this.advance(object);
      return { status: 200, body: object };
    }
    if (method === 'PATCH') {
      if (contentType === 'application/apply-patch+yaml') {
        const applied = body as KubeObject;
        applied.metadata.namespace = type.namespaced ? ns : undefined;
        return { status: 200, body: applied.kind === 'Deployment' ? this.applyDeployment(applied) : this.put(applied) };
      }
      if (contentType === 'application/json-patch+json') {
        const current = this.objects.get(key);
        if (!current) return { status: 404, body: status(404, 'NotFound', name) };
        const next = structuredClone(current);
        try {
          applyJsonPatch(next, body as JsonPatchOperation[]);
        } catch (error) {
          return { status: 422, body: status(422, 'Invalid', (error as Error).message) };
        }
        return { status: 200, body: next.kind === 'Deployment' ? this.applyDeployment(next) : this.put(next) };
      }
      return { status: 415, body: status(415, 'UnsupportedMediaType', contentType ?? '') };
    }
    if (method === 'DELETE') {
      this.objects.delete(key);
      return { status: 200, body: status(200, 'Success', 'deleted') };
    }
    return { status: 405, body: status(405, 'MethodNotAllowed', method) };
  }

  private discovery(groupVersion: string): unknown {
    const resources = RESOURCE_TYPES.filter((type) => type.groupVersion === groupVersion).flatMap((type) => [
      { name: type.plural, singularName: type.kind.toLowerCase(), namespaced: type.namespaced, kind: type.kind, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
      { name: `${type.plural}/status`, singularName: '', namespaced: type.namespaced, kind: type.kind, verbs: ['get', 'patch', 'update'] },
    ]);
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
  }

  private listBody(type: ResourceType, namespace: string, selector: string | null): unknown {
    const wanted = (selector ?? '')
      .split(',')
      .filter(Boolean)
      .map((term) => term.split('=') as [string, string]);
    const items = [...this.objects.values()].filter(
      (object) =>
        object.kind === type.kind &&
        (!type.namespaced || object.metadata.namespace === namespace) &&
        wanted.every(([label, value]) => object.metadata.labels?.[label] === value),
    );
    return { apiVersion: type.groupVersion, kind: `${type.kind}List`, metadata: { resourceVersion: String(this.resourceVersion) }, items };
  }

  private create(type: ResourceType, namespace: string, object: KubeObject): { status: number; body: unknown } {
    object.metadata.namespace = namespace;
    if (this.objects.has(this.key(type.kind, namespace, object.metadata.name))) {
      return { status: 409, body: status(409, 'AlreadyExists', `${type.plural} "${object.metadata.name}" already exists`) };
    }
    const created = this.put(object);
    if (type.kind === 'Job') {
      // The Job controller starts one pod, labelled job-name as the real one does.
      const template = (object.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: unknown } }).template;
      this.put({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${object.metadata.name}-x7k2p`, namespace, labels: { ...template.metadata?.labels, 'job-name': object.metadata.name } },
        spec: template.spec as Record<string, unknown>,
      });
    }
    return { status: 201, body: created };
  }

  private put(object: KubeObject): KubeObject {
    const key = this.key(object.kind, object.metadata.namespace ?? '', object.metadata.name);
    const previous = this.objects.get(key);
    object.metadata.uid = previous?.metadata.uid ?? randomUUID();
    object.metadata.creationTimestamp = previous?.metadata.creationTimestamp ?? new Date(Date.now() + this.resourceVersion).toISOString();
    object.metadata.resourceVersion = String(++this.resourceVersion);
    object.metadata.generation = (previous?.metadata.generation ?? 0) + (canonical(previous?.spec) === canonical(object.spec) ? 0 : 1);
    if (object.kind === 'StatefulSet') {
      const replicas = (object.spec?.replicas as number | undefined) ?? 1;
      object.status = { observedGeneration: object.metadata.generation, replicas, readyReplicas: replicas };
    }
    this.objects.set(key, object);
    return object;
  }

  /** The Deployment controller's bookkeeping: a new pod template is a new revision (ReplicaSet). */
  private applyDeployment(deployment: KubeObject): KubeObject {
    const namespace = deployment.metadata.namespace ?? 'bank';
    const key = this.key('Deployment', namespace, deployment.metadata.name);
    const previous = this.objects.get(key);
    const template = deployment.spec?.template as Record<string, unknown>;
    deployment.metadata.annotations = { ...previous?.metadata.annotations, ...deployment.metadata.annotations };
    const stored = this.put(deployment);
    if (previous && canonical(previous.spec?.template) === canonical(template)) {
      stored.status = previous.status;
      return stored;
    }
    const owned = this.list('ReplicaSet').filter((set) => set.metadata.ownerReferences?.[0]?.uid === stored.metadata.uid);
    const next = Math.max(0, ...owned.map((set) => Number(set.metadata.annotations?.[REVISION]))) + 1;
    const withoutHash = (set: KubeObject) => {
      const copy = structuredClone(set.spec?.template) as { metadata?: { labels?: Record<string, string> } };
      delete copy.metadata?.labels?.['pod-template-hash'];
      return canonical(copy);
    };
    let replicaSet = owned.find((set) => withoutHash(set) === canonical(template));
    if (!replicaSet) {
      const hash = `h${next}${randomUUID().slice(0, 4)}`;
      const podTemplate = structuredClone(template) as { metadata: { labels: Record<string, string> } };
      podTemplate.metadata.labels['pod-template-hash'] = hash;
      replicaSet = {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: `${deployment.metadata.name}-${hash}`, namespace, labels: podTemplate.metadata.labels, ownerReferences: [{ uid: stored.metadata.uid ?? '' }] },
        spec: { template: podTemplate },
      };
    }
    replicaSet.metadata.annotations = { [REVISION]: String(next) };
    this.put(replicaSet);
    stored.metadata.annotations = { ...stored.metadata.annotations, [REVISION]: String(next) };
    this.statusReads.set(key, 0);
    this.advance(stored);
    return stored;
  }

  /** Moves a Deployment's rollout or a Job one step on each status read, per the scenario. */
  private advance(object: KubeObject): void {
    const key = this.key(object.kind, object.metadata.namespace ?? '', object.metadata.name);
    const reads = this.statusReads.get(key) ?? 0;
    this.statusReads.set(key, Math.min(reads + 1, Number.MAX_SAFE_INTEGER));
    if (object.kind === 'Job') {
      if (reads < this.scenario.readsBeforeDone || this.scenario.job === 'never') {
        object.status = { active: 1 };
      } else if (this.scenario.job === 'succeed') {
        object.status = { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
      } else {
        object.status = { failed: 2, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] };
      }
      return;
    }
    if (object.kind !== 'Deployment') return;
    const replicas = (object.spec?.replicas as number | undefined) ?? 1;
    const generation = object.metadata.generation ?? 1;
    const images = ((object.spec?.template as { spec: { containers: { image: string }[] } }).spec.containers ?? []).map((container) => container.image);
    const stalled = images.some((image) => this.scenario.stallImages.includes(image));
    if (stalled) {
      const deadline = this.scenario.progressDeadlineAfterReads !== undefined && reads >= this.scenario.progressDeadlineAfterReads;
      object.status = {
        observedGeneration: generation,
        replicas: replicas + 1,
        updatedReplicas: 1,
        readyReplicas: replicas,
        availableReplicas: replicas,
        unavailableReplicas: 1,
        conditions: [
          deadline
            ? { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }
            : { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' },
        ],
      };
    } else if (reads < this.scenario.readsBeforeDone) {
      object.status = { observedGeneration: generation, replicas: replicas + 1, updatedReplicas: Math.min(reads, replicas), availableReplicas: replicas };
    } else {
      object.status = {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }],
      };
    }
  }

  private key(kind: string, namespace: string, name: string): string {
    const type = RESOURCE_TYPES.find((candidate) => candidate.kind === kind);
    return `${kind}/${type?.namespaced ? namespace : ''}/${name}`;
  }
}

function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, code };
}

/** JSON with sorted keys: the API server compares objects by content, not by key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}
