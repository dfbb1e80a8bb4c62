import { describe, expect, it } from '@jest/globals';
import { staleGeneratedFiles } from './generate.ts';

describe('generated code', () => {
  it('proto/gen matches a fresh `buf generate` of the contract', () => {
    expect(staleGeneratedFiles()).toEqual([]);
  }, 120_000);
});
