// The OpenAPI document is a contract a generated client can trust: requests built from its schemas
// (required fields, values from their formats, patterns and bounds) are accepted by the real API,
// every answer matches the schema of its declared status, and a value just outside a bound the
// document declares, or a required field left out, is refused with 400 naming the field.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { signUpAndLogIn, signUpBanker, openAccount, loginEmailFor, verificationLinkFor, type LoggedInUser } from './flows.ts';
import { startStack, type Stack } from './harness.ts';
import { httpTransport } from './transports.ts';
import { answerProblems, buildRequest, DocumentSchemas, GENERATE, type JsonSchema, type OpenApiDocument, type Values } from './openapi-document.ts';

let stack: Stack;
let schemas: DocumentSchemas;
beforeAll(async () => {
  stack = await startStack();
  schemas = new DocumentSchemas((await (await fetch(`${stack.api.url}/openapi.json`)).json()) as OpenApiDocument);
});
afterAll(async () => {
  await stack?.stop();
});

type Sent = { status: number; body: Record<string, unknown>; problems: string[] };

/** Sends a request of `operationId` built from the document, and checks the answer against it. */
async function send(operationId: string, options: { as?: LoggedInUser | undefined; values?: Values; token?: string; omit?: string; breaksBounds?: boolean } = {}): Promise<Sent> {
  const request = buildRequest(schemas, operationId, options.values, options.omit);
  const problems: string[] = [];
  // The request itself must be one the document allows (the generator's own check), unless it is
  // built to break a bound.
  if (request.body && options.omit === undefined && !options.breaksBounds) {
    const schema = request.operation.requestBody?.content['application/json'].schema as JsonSchema;
    problems.push(...schemas.errors(schema, request.body).map((e) => `request body: ${e}`));
  }
  const token = options.token ?? options.as?.accessToken;
  const response = await fetch(`${stack.api.url}${request.path}`, {
    method: request.method,
    headers: {
      ...request.headers,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(request.body ? { 'content-type': 'application/json' } : {}),
    },
    ...(request.body ? { body: JSON.stringify(request.body) } : {}),
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  problems.push(...answerProblems(schemas, request.operation, response.status, contentType, text).map((p) => `${response.status} answer: ${p}`));
  const body = contentType.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
  return { status: response.status, body, problems };
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe('the OpenAPI document as a contract', () => {
  it('every operation accepts a request built from its schemas, and every answer matches the document', async () => {
    const transport = httpTransport(stack.api.url);
    const [alice, bob, payer, banker] = await Promise.all([
      signUpAndLogIn(transport, stack.smtp),
      signUpAndLogIn(transport, stack.smtp),
      signUpAndLogIn(transport, stack.smtp),
      signUpBanker(transport, stack.smtp, stack.db.pool),
    ]);
    const aliceUsd = String(await openAccount(transport, alice, 'USD', 100_000n));
    const aliceEur = String(await openAccount(transport, alice, 'EUR'));
    const aliceGbp = String(await openAccount(transport, alice, 'GBP'));
    const bobUsd = String(await openAccount(transport, bob, 'USD'));

    const failures: string[] = [];
    const ran = new Set<string>();
    const call = async (operationId: string, expected: number, options: Parameters<typeof send>[1] = {}): Promise<Record<string, unknown>> => {
      const sent = await send(operationId, options);
      ran.add(operationId);
      if (sent.status !== expected) failures.push(`${operationId}: ${sent.status}, not ${expected}: ${JSON.stringify(sent.body).slice(0, 300)}`);
      failures.push(...sent.problems.map((p) => `${operationId}: ${p}`));
      return sent.body;
    };
    const id = (body: Record<string, unknown>, key = 'transfer') => String((body[key] as { id?: string } | undefined)?.id ?? '0');

    // Sign-up with every field generated from the document, and the emailed verification.
    const created = await call('UserService_CreateUser', 201);
    const link = await verificationLinkFor(stack.smtp, String(created.email));
    await call('UserService_VerifyEmail', 200, { values: { emailId: link.searchParams.get('email_id'), secretCode: link.searchParams.get('secret_code') } });

    // A second session of alice's: login, approval by the emailed link's token, confirmation, refresh.
    const login = await call('AuthService_Login', 202, { values: { username: alice.username, password: alice.password } });
    const { token: loginToken } = await loginEmailFor(stack.smtp, String(login.sessionId));
    await call('AuthService_ApproveLogin', 200, { values: { session_id: login.sessionId, token: loginToken } });
    const confirmed = await call('AuthService_ConfirmLogin', 200, { values: { session_id: login.sessionId, loginSecret: login.loginSecret } });
    const refreshed = await call('AuthService_RefreshToken', 200, { values: { refreshToken: confirmed.refreshToken } });

    await call('UserService_GetUser', 200, { as: alice, values: { username: alice.username } });
    await call('UserService_UpdateUser', 200, { as: alice, values: { username: alice.username, fullName: GENERATE } });

    // Accounts and money: ids name real things, amounts stay within the limits, the rest is generated.
    await call('AccountService_OpenAccount', 201, { as: alice, values: { currency: 'JPY' } });
    await call('AccountService_ListAccounts', 200, { as: alice });
    await call('AccountService_GetAccount', 200, { as: alice, values: { account_id: aliceUsd } });
    await call('AccountService_Deposit', 201, { as: alice, values: { account_id: aliceUsd, amount: '5000' } });
    await call('AccountService_Deposit', 201, { as: alice, values: { account_id: aliceUsd, amount: '700', memo: GENERATE, reference: GENERATE, metadata: GENERATE } });
    await call('AccountService_Withdraw', 201, { as: alice, values: { account_id: aliceUsd, amount: '100' } });
    const toBob = { fromAccountId: aliceUsd, toAccountId: bobUsd, currency: 'USD' };
    const reversed = await call('TransferService_CreateTransfer', 201, { as: alice, values: { ...toBob, amount: '300' } });
    const refunded = await call('TransferService_CreateTransfer', 201, { as: alice, values: { ...toBob, amount: '400', memo: GENERATE, reference: GENERATE, metadata: GENERATE } });
    const captured = await call('TransferService_CreateTransfer', 201, { as: alice, values: { ...toBob, amount: '500', hold: { ttlSeconds: 3600 } } });
    const voided = await call('TransferService_CreateTransfer', 201, { as: alice, values: { ...toBob, amount: '600', hold: { ttlSeconds: 3600 } } });
    await call('TransferService_GetTransfer', 200, { as: alice, values: { transfer_id: id(reversed) } });
    await call('TransferService_ListTransfers', 200, { as: alice, values: { account_id: aliceUsd } });
    await call('TransferService_ListTransfers', 200, { as: alice, values: { account_id: aliceUsd, page_size: GENERATE, reference: GENERATE, since: '2020-01-01T00:00:00Z' } });
    await call('TransferService_CaptureTransfer', 200, { as: alice, values: { transfer_id: id(captured) } });
    await call('TransferService_VoidTransfer', 200, { as: alice, values: { transfer_id: id(voided) } });
    await call('TransferService_ReverseTransfer', 201, { as: banker, values: { transfer_id: id(reversed) } });
    await call('TransferService_RefundTransfer', 201, { as: bob, values: { transfer_id: id(refunded) } });
    await call('AccountService_ListEntries', 200, { as: alice, values: { account_id: aliceUsd } });
    await call('AccountService_GetBalance', 200, { as: alice, values: { account_id: aliceUsd } });
    await call('AccountService_GetStatement', 200, { as: alice, values: { account_id: aliceUsd } });
    await call('AccountService_FreezeAccount', 200, { as: banker, values: { account_id: aliceEur } });
    await call('AccountService_UnfreezeAccount', 200, { as: banker, values: { account_id: aliceEur } });
    await call('AccountService_CloseAccount', 200, { as: alice, values: { account_id: aliceGbp } });
    await call('AuditService_ListAuditEvents', 200, { as: banker });

    // Passwords: a change, then a reset by the emailed link.
    await call('PasswordService_ChangePassword', 200, { as: payer, values: { username: payer.username, currentPassword: payer.password } });
    await call('PasswordService_RequestPasswordReset', 202, { values: { email: payer.email } });
    const resetEmail = await stack.smtp.waitFor((list) => list.some((m) => m.to.includes(payer.email) && m.text.includes('/app/reset-password?')));
    const resetLink = new URL(/https?:\/\/\S+\/app\/reset-password\?\S+/.exec(resetEmail.filter((m) => m.to.includes(payer.email) && m.text.includes('/app/reset-password?')).at(-1)?.text ?? '')?.[0] ?? 'http://none');
    await call('PasswordService_ConfirmPasswordReset', 200, { values: { reset_id: resetLink.searchParams.get('reset_id'), secret: resetLink.searchParams.get('secret') } });

    await call('AuthService_Logout', 200, { token: String(refreshed.accessToken), values: { session_id: login.sessionId } });

    // Answers to refusals are checked against the document too: a replayed key with another body,
    // an overdraft, a stranger's account, no token.
    const key = 'contract-key-1';
    await call('AccountService_Deposit', 201, { as: bob, values: { account_id: bobUsd, amount: '10', 'Idempotency-Key': key } });
    await call('AccountService_Deposit', 409, { as: bob, values: { account_id: bobUsd, amount: '11', 'Idempotency-Key': key } });
    await call('AccountService_Withdraw', 422, { as: bob, values: { account_id: bobUsd, amount: '1000000' } });
    await call('AccountService_GetAccount', 404, { as: bob, values: { account_id: aliceUsd } });
    await call('AccountService_ListAccounts', 401);

    expect(failures).toEqual([]);
    // Every operation of the services this suite knows was exercised.
    const operations = Object.values(schemas.doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    const known = /^(UserService|AuthService|PasswordService|AccountService|TransferService|AuditService)_/;
    expect(operations.filter((o) => known.test(o) && !ran.has(o))).toEqual([]);
  });

  it('refuses, with 400 naming the field, a value just outside each bound the document declares and each required field left out', async () => {
    const transport = httpTransport(stack.api.url);
    const [alice, bob] = await Promise.all([signUpAndLogIn(transport, stack.smtp), signUpAndLogIn(transport, stack.smtp)]);
    const aliceUsd = String(await openAccount(transport, alice, 'USD', 10_000n));
    const bobUsd = String(await openAccount(transport, bob, 'USD'));
    const cases: { operationId: string; as?: LoggedInUser; valid: Values }[] = [
      { operationId: 'UserService_CreateUser', valid: {} },
      { operationId: 'AccountService_OpenAccount', as: alice, valid: {} },
      { operationId: 'AccountService_Deposit', as: alice, valid: { account_id: aliceUsd, amount: '100' } },
      { operationId: 'AccountService_Withdraw', as: alice, valid: { account_id: aliceUsd, amount: '100' } },
      { operationId: 'TransferService_CreateTransfer', as: alice, valid: { fromAccountId: aliceUsd, toAccountId: bobUsd, currency: 'USD', amount: '100' } },
      { operationId: 'TransferService_ListTransfers', as: alice, valid: { account_id: aliceUsd } },
      { operationId: 'AccountService_ListEntries', as: alice, valid: { account_id: aliceUsd } },
      { operationId: 'PasswordService_RequestPasswordReset', valid: { email: alice.email } },
    ];
    const failures: string[] = [];
    let probes = 0;
    const expectRefused = async (label: string, operationId: string, as: LoggedInUser | undefined, values: Values, field: string, omit?: string) => {
      probes++;
      const sent = await send(operationId, { as, values, breaksBounds: true, ...(omit ? { omit } : {}) });
      const fields = ((sent.body.errors ?? []) as { field: string }[]).map((e) => e.field);
      if (sent.status !== 400 || !fields.some((f) => f === field || f.startsWith(`${field}.`))) {
        failures.push(`${operationId} ${label}: ${sent.status} ${JSON.stringify(sent.body).slice(0, 240)}`);
      }
      failures.push(...sent.problems.map((p) => `${operationId} ${label}: ${p}`));
    };
    for (const { operationId, as, valid } of cases) {
      const { operation } = buildRequest(schemas, operationId, valid);
      const targets: { name: string; field: string; schema: JsonSchema; required: boolean }[] = [];
      for (const parameter of operation.parameters) {
        if (parameter.in !== 'path') targets.push({ name: parameter.name, field: parameter.in === 'header' ? 'idempotency_key' : parameter.name, schema: parameter.schema, required: parameter.required });
      }
      const body = operation.requestBody ? schemas.resolve(operation.requestBody.content['application/json'].schema) : undefined;
      for (const [name, property] of Object.entries(body?.properties ?? {})) {
        const resolved = schemas.resolve(property);
        if (resolved.type === 'object' && resolved.properties) {
          // A nested message (a transfer's hold): its own bounds, with the message itself given.
          for (const [inner, innerSchema] of Object.entries(resolved.properties)) {
            for (const bad of outside(schemas.resolve(innerSchema))) {
              const value = { ...(schemas.sample(resolved) as object), [inner]: bad };
              await expectRefused(`${name}.${inner}=${JSON.stringify(bad).slice(0, 40)}`, operationId, as, { ...valid, [name]: value }, `${snake(name)}.${snake(inner)}`);
            }
          }
          continue;
        }
        targets.push({ name, field: snake(name), schema: resolved, required: body?.required?.includes(name) ?? false });
      }
      for (const target of targets) {
        // A header value travels as it is only without control characters or spaces at its ends.
        const sendable = (bad: unknown) => target.field !== 'idempotency_key' || /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(String(bad));
        for (const bad of outside(schemas.resolve(target.schema)).filter(sendable)) {
          await expectRefused(`${target.name}=${JSON.stringify(bad).slice(0, 40)}`, operationId, as, { ...valid, [target.name]: bad }, target.field);
        }
        // Left out: the server refuses the call, naming the field.
        if (target.required) await expectRefused(`without ${target.name}`, operationId, as, valid, target.field, target.name);
      }
    }
    // The Idempotency-Key header's bound.
    await expectRefused('Idempotency-Key of 256 characters', 'AccountService_Deposit', alice, { account_id: aliceUsd, amount: '100', 'Idempotency-Key': 'k'.repeat(256) }, 'idempotency_key');
    expect(failures).toEqual([]);
    expect(probes).toBeGreaterThan(40);
  });
});

/**
 * Values just outside the bounds a schema declares (one per bound): a character too many or too
 * few, a value not allowed, a number past the range, a string its pattern refuses, a map one key
 * too big or with a key or value too long.
 */
function outside(schema: JsonSchema): unknown[] {
  const bad: unknown[] = [];
  if (schema.enum) bad.push('NOT_ONE_OF_THEM');
  if (schema.type === 'string' && !schema.enum) {
    if (schema.maxLength !== undefined) bad.push('a'.repeat(schema.maxLength + 1));
    if (schema.minLength !== undefined && schema.minLength > 0) bad.push('a'.repeat(schema.minLength - 1));
    if (schema.format === 'email') bad.push('two@at@example.test');
    if (schema.pattern) {
      const pattern = new RegExp(schema.pattern, 'u');
      bad.push(
        ...['-1', '0', 'UPPER CASE', ' padded', '\u0001', '1'.repeat(20), '1000000000000001', 'x'.repeat(300)].filter(
          (c) => !pattern.test(c) && (schema.maxLength === undefined || c.length <= schema.maxLength),
        ),
      );
    }
  }
  if (schema.type === 'integer') {
    if (schema.minimum !== undefined) bad.push(schema.minimum - 1);
    if (schema.maximum !== undefined) bad.push(schema.maximum + 1);
  }
  if (schema.type === 'object' && typeof schema.additionalProperties === 'object') {
    const values = schema.additionalProperties;
    if (schema.maxProperties !== undefined) bad.push(Object.fromEntries(Array.from({ length: schema.maxProperties + 1 }, (_, i) => [`k${i}`, 'v'])));
    if (schema.propertyNames?.maxLength !== undefined) bad.push({ ['k'.repeat(schema.propertyNames.maxLength + 1)]: 'v' });
    if (values.maxLength !== undefined) bad.push({ k: 'v'.repeat(values.maxLength + 1) });
  }
  return bad;
}
