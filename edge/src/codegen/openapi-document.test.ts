// The bounds the generated OpenAPI document states are the server's own: the proto's
// (bank.v1.rules) must not drift from the constants the use cases check against.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from '@jest/globals';
import { PASSWORD_MAX_CHARACTERS, PASSWORD_MIN_CHARACTERS } from '@bank/shared/auth/password';
import { CURRENCIES } from '@bank/shared/ledger/currency';
import { MAX_HOLD_TTL_SECONDS } from '@bank/shared/ledger/ledger.service';
import { MAX_AMOUNT } from '@bank/shared/ledger/money';
import { EMAIL_ADDRESS_MAX_LENGTH } from '@bank/shared/mail/email-address';
import { REFRESH_COOKIE } from '../http/refresh-token-cookie.ts';

type Schema = { $ref?: string; enum?: string[]; pattern?: string; minimum?: number; maximum?: number; minLength?: number; maxLength?: number; properties?: Record<string, Schema>; required?: string[] };
type Operation = {
  operationId: string;
  parameters: { name: string; in: string; required: boolean; schema: Schema }[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, { headers?: Record<string, unknown> }>;
  security?: unknown[];
};
const doc = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@bank/proto/openapi.json'), 'utf8')) as {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};
const body = (path: string, verb: string): Schema => doc.paths[path]?.[verb]?.requestBody?.content['application/json'].schema ?? {};
const field = (path: string, verb: string, name: string): Schema => body(path, verb).properties?.[name] ?? {};

describe('the generated OpenAPI document', () => {
  it('offers exactly the supported currencies', () => {
    expect(field('/v1/accounts', 'post', 'currency').enum).toEqual([...CURRENCIES]);
    expect(field('/v1/transfers', 'post', 'currency').enum).toEqual([...CURRENCIES]);
  });

  it('bounds amounts by MAX_AMOUNT: 1 and the maximum match, 0 and one more do not', () => {
    const amount = new RegExp(field('/v1/accounts/{account_id}/deposits', 'post', 'amount').pattern ?? '');
    expect([amount.test('1'), amount.test(String(MAX_AMOUNT)), amount.test('0'), amount.test(String(MAX_AMOUNT + 1n)), amount.test('-5')]).toEqual([true, true, false, false, false]);
  });

  it('bounds a hold by MAX_HOLD_TTL_SECONDS, passwords and email addresses by their checks', () => {
    expect(doc.components.schemas['bank.v1.Hold']?.properties?.ttlSeconds).toMatchObject({ minimum: 1, maximum: MAX_HOLD_TTL_SECONDS });
    expect(field('/v1/users', 'post', 'password')).toMatchObject({ minLength: PASSWORD_MIN_CHARACTERS, maxLength: PASSWORD_MAX_CHARACTERS });
    expect(field('/v1/users', 'post', 'email')).toMatchObject({ format: 'email', maxLength: EMAIL_ADDRESS_MAX_LENGTH });
  });

  it('requires account_id on GET /v1/transfers, and the required body fields of a transfer', () => {
    expect(doc.paths['/v1/transfers']?.get?.parameters.find((p) => p.name === 'account_id')?.required).toBe(true);
    expect(body('/v1/transfers', 'post').required).toEqual(['fromAccountId', 'toAccountId', 'amount', 'currency']);
  });

  it('declares 400 and 503 for every operation, 401 for those that need a token, and a same-origin server', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [verb, operation] of Object.entries(operations)) {
        const statuses = Object.keys(operation.responses);
        expect({ op: `${verb} ${path}`, has400: statuses.includes('400'), has503: statuses.includes('503') }).toEqual({ op: `${verb} ${path}`, has400: true, has503: true });
        if (!operation.security) expect({ op: `${verb} ${path}`, has401: statuses.includes('401') }).toEqual({ op: `${verb} ${path}`, has401: true });
      }
    }
  });

  it('declares the refresh-token cookie where the gateway applies it, and nowhere else', () => {
    const seen: Record<string, { tokenDelivery?: Schema; cookie?: string; setCookie: boolean }> = {};
    for (const operations of Object.values(doc.paths)) {
      for (const operation of Object.values(operations)) {
        const tokenDelivery = operation.parameters.find((p) => p.name === 'Token-Delivery');
        const cookie = operation.parameters.find((p) => p.in === 'cookie');
        const setCookie = Object.values(operation.responses).some((r) => r.headers?.['Set-Cookie'] !== undefined);
        if (!tokenDelivery && !cookie && !setCookie) continue;
        expect({ op: operation.operationId, optional: [tokenDelivery?.required, cookie?.required].filter((r) => r !== undefined).every((r) => r === false) }).toEqual({ op: operation.operationId, optional: true });
        seen[operation.operationId] = { ...(tokenDelivery ? { tokenDelivery: tokenDelivery.schema } : {}), ...(cookie ? { cookie: cookie.name } : {}), setCookie };
      }
    }
    const asks = { tokenDelivery: { type: 'string', enum: ['cookie'] } };
    expect(seen).toEqual({
      AuthService_ConfirmLogin: { ...asks, setCookie: true },
      AuthService_RefreshToken: { ...asks, cookie: REFRESH_COOKIE, setCookie: true },
      AuthService_Logout: { setCookie: true },
    });
  });
});
