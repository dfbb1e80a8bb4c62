import { describe, expect, it } from '@jest/globals';
import { CreateTransferRequestSchema } from '@bank/proto/bank/v1/transfer_service_pb';
import { InvalidArgument } from '@bank/shared/errors/domain-error';
import { decodeMessage, MAX_JSON_DEPTH, parseJsonBody } from './request-decoder.ts';

const violations = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgument) return error.fieldViolations.map((v) => v.field);
    throw error;
  }
  throw new Error('expected InvalidArgument');
};

describe('request decoding', () => {
  it('keeps the exact digits of integers beyond 2^53, so int64 values are exact', () => {
    const json = parseJsonBody(Buffer.from('{"amount": 9007199254740993}'), 'application/json');
    expect(decodeMessage(CreateTransferRequestSchema, json).amount).toBe(9_007_199_254_740_993n);
  });

  it('accepts camelCase and snake_case names, and reports every bad field at once', () => {
    expect(decodeMessage(CreateTransferRequestSchema, { from_account_id: '3', toAccountId: 4 }).toAccountId).toBe(4n);
    expect(violations(() => decodeMessage(CreateTransferRequestSchema, { amount: 'x', currency: 1, extra: true }))).toEqual(['amount', 'currency', 'extra']);
  });

  it('names the field that holds invalid UTF-8', () => {
    const raw = Buffer.concat([Buffer.from('{"currency":"ok","idempotencyKey":"a'), Buffer.from([0xc0]), Buffer.from('"}')]);
    expect(violations(() => parseJsonBody(raw, 'application/json'))).toEqual(['idempotencyKey']);
  });

  it('names the field with invalid UTF-8 by its proto name when given the request schema, however the client spelled it', () => {
    const raw = (key: string) => Buffer.concat([Buffer.from(`{"${key}":"a`), Buffer.from([0xc0]), Buffer.from('"}')]);
    expect(violations(() => parseJsonBody(raw('idempotencyKey'), 'application/json', CreateTransferRequestSchema))).toEqual(['idempotency_key']);
    expect(violations(() => parseJsonBody(raw('idempotency_key'), 'application/json', CreateTransferRequestSchema))).toEqual(['idempotency_key']);
    expect(violations(() => parseJsonBody(raw('fromAccountId'), 'application/json', CreateTransferRequestSchema))).toEqual(['from_account_id']);
    expect(violations(() => parseJsonBody(raw('notAField'), 'application/json', CreateTransferRequestSchema))).toEqual(['notAField']);
  });

  it('refuses a key repeated within one object, naming it by its proto name (JSON.parse would keep the last)', () => {
    const parse = (text: string) => () => parseJsonBody(Buffer.from(text), 'application/json', CreateTransferRequestSchema);
    expect(violations(parse('{"amount":"5","currency":"USD","amount":"500"}'))).toEqual(['amount']);
    expect(violations(parse('{"fromAccountId":"1", "fromAccountId" :"2"}'))).toEqual(['from_account_id']);
    expect(violations(parse('{"x":{"a":1,"b":[{"c":1},{"c":2,"c":3}]}}'))).toEqual(['x.b[1].c']);
    expect(violations(parse('{"a\\u0062":1,"ab":2}'))).toEqual(['ab']);
    expect(parseJsonBody(Buffer.from('{"a":{"k":1},"b":{"k":1},"s":"\\"k\\":1,\\"k\\":2"}'), 'application/json')).toEqual({ a: { k: 1 }, b: { k: 1 }, s: '"k":1,"k":2' });
  });

  it('refuses JSON nested deeper than MAX_JSON_DEPTH with a violation on body, before parsing it', () => {
    const deep = (n: number) => Buffer.from(`{"a":${'['.repeat(n)}${']'.repeat(n)}}`);
    expect(parseJsonBody(deep(MAX_JSON_DEPTH - 1), 'application/json')).toHaveProperty('a');
    expect(violations(() => parseJsonBody(deep(MAX_JSON_DEPTH), 'application/json'))).toEqual(['body']);
    expect(violations(() => parseJsonBody(deep(5_000), 'application/json'))).toEqual(['body']);
  });

  it('takes integers in strings only in JSON number syntax (BigInt would also read hex, spaces and a plus sign)', () => {
    for (const amount of ['0x10', ' 5', '5 ', '+5', '0b1', '0o7', '05', '', '\t5']) {
      expect({ amount, violations: violations(() => decodeMessage(CreateTransferRequestSchema, { amount })) }).toEqual({ amount, violations: ['amount'] });
    }
    for (const [amount, expected] of [['5', 5n], ['-5', -5n], ['0', 0n], ['9223372036854775807', 9_223_372_036_854_775_807n]] as const) {
      expect(decodeMessage(CreateTransferRequestSchema, { amount }).amount).toBe(expected);
    }
    expect(decodeMessage(CreateTransferRequestSchema, { amount: 5 }).amount).toBe(5n);
  });
});
