import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as plain data (what a manifest file holds). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Container {
  name: string;
  image: string;
  [field: string]: unknown;
}

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

/**
 * Parses a multi-document YAML stream (a manifest file, or what `kubectl kustomize` prints) into
 * objects, refusing a document that is not a Kubernetes object so nothing is applied half-read.
 *
 * @throws Error naming `source` and the first problem.
 */
export function parseManifests(text: string, source: string): Manifest[] {
  const objects: Manifest[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`${source}: ${document.errors[0]?.message}`);
    const value = document.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) throw new Error(`${source}: every document needs apiVersion, kind and metadata.name`);
    objects.push(value);
  }
  return objects;
}

/** Pod templates of the workload kinds (where images, service accounts and security live). */
export function podSpecOf(object: Manifest): Record<string, unknown> | undefined {
  const spec = object.spec as Record<string, unknown> | undefined;
  if (!spec) return undefined;
  if (object.kind === 'Pod') return spec;
  if (object.kind === 'CronJob') {
    const jobTemplate = spec.jobTemplate as { spec?: { template?: { spec?: Record<string, unknown> } } } | undefined;
    return jobTemplate?.spec?.template?.spec;
  }
  if (WORKLOAD_KINDS.has(object.kind)) return (spec.template as { spec?: Record<string, unknown> } | undefined)?.spec;
  return undefined;
}

/** Every container and init container of a workload. */
export function containersOf(object: Manifest): Container[] {
  const podSpec = podSpecOf(object);
  if (!podSpec) return [];
  return [...((podSpec.initContainers as Container[] | undefined) ?? []), ...((podSpec.containers as Container[] | undefined) ?? [])];
}

/**
 * The Secrets a workload's containers read, by envFrom and by secretKeyRef, each with whether the
 * pod may start without it (`optional: true`).
 */
export function secretsReadBy(object: Manifest): { name: string; optional: boolean }[] {
  const found = new Map<string, boolean>();
  const note = (name: string | undefined, optional: boolean | undefined) => {
    if (name) found.set(name, (found.get(name) ?? true) && optional === true);
  };
  for (const container of containersOf(object)) {
    for (const source of (container.envFrom as { secretRef?: { name?: string; optional?: boolean } }[] | undefined) ?? []) {
      note(source.secretRef?.name, source.secretRef?.optional);
    }
    for (const variable of (container.env as { valueFrom?: { secretKeyRef?: { name?: string; optional?: boolean } } }[] | undefined) ?? []) {
      note(variable.valueFrom?.secretKeyRef?.name, variable.valueFrom?.secretKeyRef?.optional);
    }
  }
  return [...found].map(([name, optional]) => ({ name, optional }));
}

/** Splits `registry/name:tag@digest` into its name and the tag (or undefined). */
export function splitImage(image: string): { name: string; tag: string | undefined; digest: string | undefined } {
  const [withoutDigest = '', digest] = image.split('@');
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  if (colon === -1) return { name: withoutDigest, tag: undefined, digest };
  return { name: withoutDigest.slice(0, colon), tag: withoutDigest.slice(colon + 1), digest };
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const object = value as Partial<Manifest>;
  return (
    typeof object.apiVersion === 'string' &&
    typeof object.kind === 'string' &&
    typeof object.metadata === 'object' &&
    object.metadata !== null &&
    typeof object.metadata.name === 'string'
  );
}
