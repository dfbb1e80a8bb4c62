import { describe, expect, it } from '@jest/globals';
import { containersOf, parseManifests, secretsReadBy, splitImage } from './manifest.ts';

describe('manifest helpers', () => {
  it('splits image references into name, tag and digest', () => {
    expect(splitImage('registry:5000/team/app:1.2@sha256:abc')).toEqual({ name: 'registry:5000/team/app', tag: '1.2', digest: 'sha256:abc' });
    expect(splitImage('registry:5000/app')).toEqual({ name: 'registry:5000/app', tag: undefined, digest: undefined });
  });

  it('reads every object of a YAML stream, finds init and app containers, and refuses a document that is no object', () => {
    const [job, ...rest] = parseManifests(
      '---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  template:\n    spec:\n      initContainers: [{name: wait, image: "busybox:1.36"}]\n      containers: [{name: run, image: "bank-migrator:abc"}]\n---\n',
      'test',
    );
    expect(rest).toEqual([]);
    expect(containersOf(job!).map((container) => container.name)).toEqual(['wait', 'run']);
    expect(() => parseManifests('kind: Job\n', 'stream')).toThrow('stream: every document needs apiVersion, kind and metadata.name');
  });

  it('lists the Secrets a workload reads by envFrom and secretKeyRef; one is optional only when every reference says so', () => {
    const [deployment] = parseManifests(
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      initContainers:
        - name: wait
          image: busybox:1.36
          env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: shared, key: TOKEN, optional: true}}}]
      containers:
        - name: api
          image: bank-api:abc
          envFrom: [{configMapRef: {name: config}}, {secretRef: {name: own}}, {secretRef: {name: extra, optional: true}}]
          env: [{name: PLAIN, value: x}, {name: TOKEN, valueFrom: {secretKeyRef: {name: shared, key: TOKEN}}}]
`,
      'test',
    );
    expect(secretsReadBy(deployment!)).toEqual([
      { name: 'shared', optional: false },
      { name: 'own', optional: false },
      { name: 'extra', optional: true },
    ]);
  });
});
