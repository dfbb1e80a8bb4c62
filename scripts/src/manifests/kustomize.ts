import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/** A Kubernetes object as plain data (what a manifest file holds). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Thrown for a kustomization this renderer cannot render faithfully, or an invalid manifest. */
export class KustomizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KustomizeError';
  }
}

/**
 * The subset of kustomize the manifests in deploy/ use, rendered the way `kubectl kustomize`
 * does: `resources` (files and kustomization directories), `namespace`, `images` and inline
 * JSON 6902 `patches` targeted by kind and name. Any other field is refused rather than ignored,
 * so what the scripts apply and what the tests check can never silently differ from kubectl.
 */
export async function renderKustomization(directory: string): Promise<Manifest[]> {
  const file = path.join(directory, 'kustomization.yaml');
  const kustomization = parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>;
  for (const key of Object.keys(kustomization)) {
    if (!SUPPORTED_FIELDS.has(key)) throw new KustomizeError(`${file}: field "${key}" is not supported by this renderer`);
  }

  const objects: Manifest[] = [];
  for (const entry of asArray<string>(kustomization.resources, `${file}: resources`)) {
    const target = path.resolve(directory, entry);
    const isDirectory = (await stat(target)).isDirectory();
    objects.push(...(isDirectory ? await renderKustomization(target) : await readManifests(target)));
  }

  for (const patch of asArray<PatchEntry>(kustomization.patches, `${file}: patches`)) {
    applyPatchEntry(objects, patch, file);
  }

  const namespace = kustomization.namespace;
  if (namespace !== undefined) {
    if (typeof namespace !== 'string') throw new KustomizeError(`${file}: namespace must be a string`);
    for (const object of objects) {
      if (!CLUSTER_SCOPED_KINDS.has(object.kind)) object.metadata.namespace = namespace;
    }
  }

  for (const image of asArray<ImageEntry>(kustomization.images, `${file}: images`)) {
    setImage(objects, image);
  }

  assertUniqueIds(objects, file);
  return objects;
}

/** Reads every YAML document of one manifest file. */
export async function readManifests(file: string): Promise<Manifest[]> {
  const documents = parseAllDocuments(await readFile(file, 'utf8'));
  const objects: Manifest[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw new KustomizeError(`${file}: ${document.errors[0]?.message}`);
    const value = document.toJS() as unknown;
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) throw new KustomizeError(`${file}: every document needs apiVersion, kind and metadata.name`);
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

export interface Container {
  name: string;
  image: string;
  [field: string]: unknown;
}

/** Every container and init container of a workload. */
export function containersOf(object: Manifest): Container[] {
  const podSpec = podSpecOf(object);
  if (!podSpec) return [];
  return [...((podSpec.initContainers as Container[] | undefined) ?? []), ...((podSpec.containers as Container[] | undefined) ?? [])];
}

/** Splits `registry/name:tag@digest` into its name and the tag (or undefined). */
export function splitImage(image: string): { name: string; tag: string | undefined; digest: string | undefined } {
  const [withoutDigest = '', digest] = image.split('@');
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  if (colon === -1) return { name: withoutDigest, tag: undefined, digest };
  return { name: withoutDigest.slice(0, colon), tag: withoutDigest.slice(colon + 1), digest };
}

/** JSON 6902 operations on a plain object (add, replace, remove, test). */
export function applyJsonPatch(document: unknown, operations: readonly JsonPatchOperation[]): void {
  for (const operation of operations) {
    const segments = parsePointer(operation.path);
    const last = segments.pop();
    if (last === undefined) throw new KustomizeError(`patch path "${operation.path}" must not be the document root`);
    let parent: unknown = document;
    for (const segment of segments) {
      parent = childOf(parent, segment, operation.path);
    }
    if (typeof parent !== 'object' || parent === null) throw new KustomizeError(`patch path "${operation.path}" does not exist`);
    const container = parent as Record<string, unknown> | unknown[];
    switch (operation.op) {
      case 'add':
        if (Array.isArray(container)) {
          const index = last === '-' ? container.length : arrayIndex(last, container.length + 1, operation.path);
          container.splice(index, 0, structuredClone(operation.value));
        } else {
          container[last] = structuredClone(operation.value);
        }
        break;
      case 'replace':
        childOf(container, last, operation.path);
        if (Array.isArray(container)) container[arrayIndex(last, container.length, operation.path)] = structuredClone(operation.value);
        else container[last] = structuredClone(operation.value);
        break;
      case 'remove':
        childOf(container, last, operation.path);
        if (Array.isArray(container)) container.splice(arrayIndex(last, container.length, operation.path), 1);
        else delete container[last];
        break;
      case 'test': {
        const actual = childOf(container, last, operation.path);
        if (JSON.stringify(actual) !== JSON.stringify(operation.value)) {
          throw new KustomizeError(`patch test failed at "${operation.path}"`);
        }
        break;
      }
      default:
        throw new KustomizeError(`patch operation "${String((operation as { op: unknown }).op)}" is not supported`);
    }
  }
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

interface PatchEntry {
  target?: { kind?: string; name?: string; [field: string]: unknown };
  patch?: string;
  path?: string;
}

interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images', 'patches']);

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

/** Kinds kustomize's namespace transformer leaves alone (the ones deploy/ uses, and their kin). */
export const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'ClusterIssuer',
  'ClusterSecretStore',
  'ClusterExternalSecret',
  'IngressClass',
  'StorageClass',
  'PriorityClass',
  'PersistentVolume',
]);

function applyPatchEntry(objects: Manifest[], entry: PatchEntry, file: string): void {
  if (entry.path !== undefined) throw new KustomizeError(`${file}: patches from files are not supported; inline them`);
  const target = entry.target;
  if (!target?.kind || !target.name) throw new KustomizeError(`${file}: every patch needs target.kind and target.name`);
  const unsupported = Object.keys(target).filter((key) => key !== 'kind' && key !== 'name');
  if (unsupported.length > 0) throw new KustomizeError(`${file}: patch target fields ${unsupported.join(', ')} are not supported`);
  const operations = parseYaml(entry.patch ?? '') as unknown;
  if (!Array.isArray(operations)) {
    throw new KustomizeError(`${file}: only JSON 6902 patches (a list of operations) are supported`);
  }
  const matches = objects.filter((object) => object.kind === target.kind && object.metadata.name === target.name);
  if (matches.length === 0) throw new KustomizeError(`${file}: patch target ${target.kind}/${target.name} matches nothing`);
  for (const object of matches) applyJsonPatch(object, operations as JsonPatchOperation[]);
}

function setImage(objects: Manifest[], entry: ImageEntry): void {
  for (const object of objects) {
    for (const container of containersOf(object)) {
      const current = splitImage(container.image);
      if (current.name !== entry.name) continue;
      const name = entry.newName ?? current.name;
      if (entry.digest) container.image = `${name}@${entry.digest}`;
      else {
        const tag = entry.newTag ?? current.tag;
        container.image = tag ? `${name}:${tag}` : name;
      }
    }
  }
}

function assertUniqueIds(objects: Manifest[], file: string): void {
  const seen = new Set<string>();
  for (const object of objects) {
    const id = `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    if (seen.has(id)) throw new KustomizeError(`${file}: ${object.kind}/${object.metadata.name} is defined twice`);
    seen.add(id);
  }
}

function parsePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new KustomizeError(`patch path "${pointer}" must start with /`);
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function childOf(parent: unknown, segment: string, pointer: string): unknown {
  if (Array.isArray(parent)) return parent[arrayIndex(segment, parent.length, pointer)];
  if (typeof parent === 'object' && parent !== null && Object.hasOwn(parent, segment)) {
    return (parent as Record<string, unknown>)[segment];
  }
  throw new KustomizeError(`patch path "${pointer}" does not exist`);
}

function arrayIndex(segment: string, length: number, pointer: string): number {
  const index = Number(segment);
  if (!/^\d+$/.test(segment) || index >= length) throw new KustomizeError(`patch path "${pointer}": bad array index`);
  return index;
}

function asArray<T>(value: unknown, what: string): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new KustomizeError(`${what} must be a list`);
  return value as T[];
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
