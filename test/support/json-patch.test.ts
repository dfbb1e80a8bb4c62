// The JSON Patch the stand-in Kubernetes API applies for the deploy script's rollbacks.
import { describe, expect, it } from '@jest/globals';
import { applyJsonPatch } from './json-patch.ts';

describe('applyJsonPatch', () => {
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
});
