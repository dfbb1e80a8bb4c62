import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { applyJsonPatch, CLUSTER_SCOPED_KINDS, renderKustomization, splitImage, type Manifest } from './kustomize.ts';

const root = path.resolve(import.meta.dirname, '../../..');

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  );
}

function byId(objects: Manifest[]): Map<string, string> {
  return new Map(
    objects.map((object) => {
      // kubectl's kustomize cannot know a CRD's scope and namespaces cluster-scoped custom kinds too;
      // the API server ignores that namespace, so it is left out of the comparison.
      if (CLUSTER_SCOPED_KINDS.has(object.kind)) delete object.metadata.namespace;
      return [`${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`, canonical(object)];
    }),
  );
}

async function kustomizationIn(files: Record<string, string>): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'kustomize-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(directory, name), text);
  return directory;
}

describe('renderKustomization', () => {
  it.each(['deploy/kind', 'deploy/kind/no-aws', 'deploy/eks'])('renders %s exactly as `kubectl kustomize` does', async (directory) => {
    let kubectlOutput: string;
    try {
      kubectlOutput = execFileSync('kubectl', ['kustomize', path.join(root, directory)], { encoding: 'utf8' });
    } catch (error) {
      throw new Error(`this check needs kubectl (with its built-in kustomize) on PATH: ${(error as Error).message}`);
    }
    const theirs = parseAllDocuments(kubectlOutput).map((document) => document.toJS() as Manifest);
    const mine = await renderKustomization(path.join(root, directory));
    expect(theirs.length).toBeGreaterThan(10);
    expect(byId(mine)).toEqual(byId(theirs));
  });

  it('refuses kustomize features it does not implement instead of ignoring them', async () => {
    const deployment = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web\n';
    const commonLabels = await kustomizationIn({ 'kustomization.yaml': 'resources: [web.yaml]\ncommonLabels:\n  a: b\n', 'web.yaml': deployment });
    await expect(renderKustomization(commonLabels)).rejects.toThrow('field "commonLabels" is not supported by this renderer');
    const strategicMerge = await kustomizationIn({
      'kustomization.yaml': 'resources: [web.yaml]\npatches:\n  - target: {kind: Deployment, name: web}\n    patch: |-\n      spec:\n        replicas: 3\n',
      'web.yaml': deployment,
    });
    await expect(renderKustomization(strategicMerge)).rejects.toThrow('only JSON 6902 patches');
    const missingTarget = await kustomizationIn({
      'kustomization.yaml': 'resources: [web.yaml]\npatches:\n  - target: {kind: Deployment, name: api}\n    patch: "[]"\n',
      'web.yaml': deployment,
    });
    await expect(renderKustomization(missingTarget)).rejects.toThrow('patch target Deployment/api matches nothing');
  });

  it('applies JSON 6902 add, replace, remove and test, and rejects a path that does not exist', () => {
    const document = { spec: { replicas: 1, list: ['a', 'c'], labels: { 'app/x': '1' } } };
    applyJsonPatch(document, [
      { op: 'test', path: '/spec/replicas', value: 1 },
      { op: 'replace', path: '/spec/replicas', value: 2 },
      { op: 'add', path: '/spec/list/1', value: 'b' },
      { op: 'add', path: '/spec/list/-', value: 'd' },
      { op: 'remove', path: '/spec/labels/app~1x' },
      { op: 'add', path: '/spec/new', value: { nested: true } },
    ]);
    expect(document).toEqual({ spec: { replicas: 2, list: ['a', 'b', 'c', 'd'], labels: {}, new: { nested: true } } });
    expect(() => applyJsonPatch(document, [{ op: 'replace', path: '/spec/missing', value: 1 }])).toThrow('does not exist');
    expect(() => applyJsonPatch(document, [{ op: 'test', path: '/spec/replicas', value: 3 }])).toThrow('patch test failed');
  });

  it('splits image references into name, tag and digest', () => {
    expect(splitImage('registry:5000/team/app:1.2@sha256:abc')).toEqual({ name: 'registry:5000/team/app', tag: '1.2', digest: 'sha256:abc' });
    expect(splitImage('registry:5000/app')).toEqual({ name: 'registry:5000/app', tag: undefined, digest: undefined });
  });
});
