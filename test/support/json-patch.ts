// JSON Patch (RFC 6902) on plain objects, as the API server applies an
// application/json-patch+json PATCH. The stand-in Kubernetes API uses it to play the deploy
// script's rollback (a `test` on resourceVersion, then a `replace` of the pod template).

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** Applies add, replace, remove and test operations in place; throws on a path that does not exist. */
export function applyJsonPatch(document: unknown, operations: readonly JsonPatchOperation[]): void {
  for (const operation of operations) {
    const segments = parsePointer(operation.path);
    const last = segments.pop();
    if (last === undefined) throw new Error(`patch path "${operation.path}" must not be the document root`);
    let parent: unknown = document;
    for (const segment of segments) {
      parent = childOf(parent, segment, operation.path);
    }
    if (typeof parent !== 'object' || parent === null) throw new Error(`patch path "${operation.path}" does not exist`);
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
        if (JSON.stringify(actual) !== JSON.stringify(operation.value)) throw new Error(`patch test failed at "${operation.path}"`);
        break;
      }
      default:
        throw new Error(`patch operation "${String((operation as { op: unknown }).op)}" is not supported`);
    }
  }
}

function parsePointer(pointer: string): string[] {
  if (!pointer.startsWith('/')) throw new Error(`patch path "${pointer}" must start with /`);
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
  throw new Error(`patch path "${pointer}" does not exist`);
}

function arrayIndex(segment: string, length: number, pointer: string): number {
  const index = Number(segment);
  if (!/^\d+$/.test(segment) || index >= length) throw new Error(`patch path "${pointer}": bad array index`);
  return index;
}
