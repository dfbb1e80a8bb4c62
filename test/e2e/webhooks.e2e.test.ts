// Webhooks over both edges against the real stack (worker included) and a real HTTP receiver on
// 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE_TARGETS=true, as in local development): the signing secret only
// in the create answer, the caller's webhooks only (404 for another's), clear 400s, and a delivery
// whose `data` is the Transfer exactly as GET /v1/transfers/{id} answers it, signed with the
// published scheme, with its log and a redeliver. A second API process with private targets
// refused shows the SSRF refusals over HTTP.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { WebhookService } from '@bank/proto/bank/v1/webhook_service_pb';
import { startApiServer, type ApiServer } from '@bank/api/api-server';
import { idemKey } from '../factories.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../webhook-receiver.ts';
import { openAccount, signUpAndLogIn, signUpBanker, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite({
  env: {
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '50',
    WEBHOOK_RETRY_MAX_DELAY_MS: '200',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_MAX_PER_USER: '3',
  },
});

let receiver: WebhookReceiver;
beforeAll(async () => {
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

describe.each(['http', 'grpc'] as const)('webhooks over %s', (name) => {
  let t: Transport;
  let alice: LoggedInUser;
  let bob: LoggedInUser;
  const status = (http: number, code: grpc.status) => (name === 'http' ? http : code);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    [alice, bob] = await Promise.all([signUpAndLogIn(t, suite.stack.smtp), signUpAndLogIn(t, suite.stack.smtp)]);
  });

  it('answers the signing secret when the webhook is made, and never again', async () => {
    const created = await t.call(WebhookService, 'createWebhook', { url: `${receiver.url}/${name}/secret`, eventTypes: ['transfer.posted', 'transfer.posted'] }, { token: alice.accessToken });
    expect(created.signingSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created.webhook).toMatchObject({ url: `${receiver.url}/${name}/secret`, eventTypes: ['transfer.posted'], allAccounts: false, owner: alice.username });
    const listed = await t.call(WebhookService, 'listWebhooks', {}, { token: alice.accessToken });
    expect(listed.webhooks.map((w) => w.id)).toContain(created.webhook!.id);
    expect(JSON.stringify(listed, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(created.signingSecret);
    if (name === 'http') {
      const raw = await fetch(`${suite.stack.api.url}/v1/webhooks`, { headers: { authorization: `Bearer ${alice.accessToken}` } });
      const text = await raw.text();
      expect(raw.status).toBe(200);
      expect(text).not.toContain(created.signingSecret);
      expect(text).not.toMatch(/signingSecret|signing_secret/);
    }
    await t.call(WebhookService, 'deleteWebhook', { webhookId: created.webhook!.id }, { token: alice.accessToken });
  });

  it("answers 404 for another user's webhook, its deliveries and its redeliver, and lists only the caller's", async () => {
    const created = await t.call(WebhookService, 'createWebhook', { url: `${receiver.url}/${name}/private`, eventTypes: ['account.frozen'] }, { token: alice.accessToken });
    const id = created.webhook!.id;
    const refusals = [
      await failure(t.call(WebhookService, 'listWebhookDeliveries', { webhookId: id }, { token: bob.accessToken })),
      await failure(t.call(WebhookService, 'deleteWebhook', { webhookId: id }, { token: bob.accessToken })),
      await failure(t.call(WebhookService, 'redeliverWebhookDelivery', { webhookId: id, deliveryId: 1n }, { token: bob.accessToken })),
    ];
    for (const refusal of refusals) expect(refusal).toMatchObject({ code: 'NOT_FOUND', status: status(404, grpc.status.NOT_FOUND) });
    expect((await t.call(WebhookService, 'listWebhooks', {}, { token: bob.accessToken })).webhooks.map((w) => w.id)).not.toContain(id);
    // Still there for its owner; a delivery id of another webhook is not found either.
    expect((await t.call(WebhookService, 'listWebhookDeliveries', { webhookId: id }, { token: alice.accessToken })).deliveries).toEqual([]);
    expect(await failure(t.call(WebhookService, 'redeliverWebhookDelivery', { webhookId: id, deliveryId: 999_999n }, { token: alice.accessToken }))).toMatchObject({ code: 'NOT_FOUND' });
    await t.call(WebhookService, 'deleteWebhook', { webhookId: id }, { token: alice.accessToken });
    expect(await failure(t.call(WebhookService, 'deleteWebhook', { webhookId: id }, { token: alice.accessToken }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await failure(t.call(WebhookService, 'listWebhooks', {}, {}))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses bad input with 400 naming the field, all_accounts for a depositor with 403, and more than the limit with 409', async () => {
    const invalid = async (request: { url: string; eventTypes: string[] }, field: string) => {
      const refusal = await failure(t.call(WebhookService, 'createWebhook', request, { token: bob.accessToken }));
      expect(refusal).toMatchObject({ code: 'INVALID_ARGUMENT', status: status(400, grpc.status.INVALID_ARGUMENT) });
      expect(refusal.fieldViolations.map((v) => v.field)).toContain(field);
      return refusal;
    };
    await invalid({ url: 'ftp://hooks.example.com/', eventTypes: ['transfer.posted'] }, 'url');
    await invalid({ url: 'https://user:pw@hooks.example.com/', eventTypes: ['transfer.posted'] }, 'url');
    await invalid({ url: 'not a url', eventTypes: ['transfer.posted'] }, 'url');
    await invalid({ url: 'https://hooks.example.com/', eventTypes: ['transfer.sent'] }, 'event_types');
    await invalid({ url: 'https://hooks.example.com/', eventTypes: [] }, 'event_types');
    expect(await failure(t.call(WebhookService, 'createWebhook', { url: 'https://hooks.example.com/', eventTypes: ['transfer.posted'], allAccounts: true }, { token: bob.accessToken }))).toMatchObject({
      code: 'PERMISSION_DENIED',
      status: status(403, grpc.status.PERMISSION_DENIED),
    });
    const ids: bigint[] = [];
    for (let i = 0; i < 3; i += 1) ids.push((await t.call(WebhookService, 'createWebhook', { url: `https://hooks.example.com/${i}`, eventTypes: ['transfer.posted'] }, { token: bob.accessToken })).webhook!.id);
    const over = await failure(t.call(WebhookService, 'createWebhook', { url: 'https://hooks.example.com/4', eventTypes: ['transfer.posted'] }, { token: bob.accessToken }));
    expect(over).toMatchObject({ code: 'FAILED_PRECONDITION', status: status(409, grpc.status.FAILED_PRECONDITION) });
    expect(over.message).toContain('at most 3 webhooks');
    for (const webhookId of ids) await t.call(WebhookService, 'deleteWebhook', { webhookId }, { token: bob.accessToken });
  });

  it('delivers a transfer as the API shows it, signed, logs the delivery, and redelivers it with the same event id', async () => {
    const path = `/${name}/deliver`;
    const { webhook, signingSecret } = await t.call(WebhookService, 'createWebhook', { url: `${receiver.url}${path}`, eventTypes: ['transfer.posted'] }, { token: alice.accessToken });
    const account = await openAccount(t, alice, 'EUR');
    const deposit = await t.call(AccountService, 'deposit', { accountId: account, amount: 1234n, idempotencyKey: idemKey(), memo: 'salary' }, { token: alice.accessToken });
    const at = () => receiver.received.filter((r) => r.path === path);
    await receiver.waitFor(() => at().length === 1);
    const [request] = at();

    // The published scheme: HMAC-SHA256 keyed with the secret as returned, over "<t>.<raw body>".
    const signature = Object.fromEntries(String(request!.headers['bank-signature']).split(',').map((kv) => kv.split('=') as [string, string]));
    expect(signature.v1).toBe(createHmac('sha256', signingSecret).update(`${signature.t}.${request!.rawBody}`).digest('hex'));
    expect(request!.headers['bank-event-id']).toBe(request!.json.id);
    expect(request!.json.type).toBe('transfer.posted');
    const apiJson = await (await fetch(`${suite.stack.api.url}/v1/transfers/${deposit.transfer!.id}`, { headers: { authorization: `Bearer ${alice.accessToken}` } })).json();
    expect(request!.json.data).toEqual(apiJson);

    const log = async () => (await t.call(WebhookService, 'listWebhookDeliveries', { webhookId: webhook!.id }, { token: alice.accessToken })).deliveries;
    let deliveries = await log();
    for (let tries = 0; deliveries[0]?.status !== 'delivered' && tries < 100; tries += 1) deliveries = await log();
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ eventId: request!.json.id, eventType: 'transfer.posted', status: 'delivered', attempts: 1, lastStatusCode: 200, lastError: '' });
    expect(deliveries[0]!.attemptLog).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200, error: '' })]);

    const redelivered = await t.call(WebhookService, 'redeliverWebhookDelivery', { webhookId: webhook!.id, deliveryId: deliveries[0]!.id }, { token: alice.accessToken });
    expect(redelivered).toMatchObject({ id: deliveries[0]!.id, status: 'pending' });
    await receiver.waitFor(() => at().length === 2);
    expect(at()[1]!.json.id).toBe(request!.json.id);
    expect(at()[1]!.rawBody).toBe(request!.rawBody);
  });
});

describe('webhooks of a banker', () => {
  it("may follow every account's events with all_accounts", async () => {
    const t = suite.transports.get('http')!;
    const banker = await signUpBanker(t, suite.stack.smtp, suite.stack.db.pool);
    const carol = await signUpAndLogIn(t, suite.stack.smtp);
    const path = '/banker/all';
    const { webhook } = await t.call(WebhookService, 'createWebhook', { url: `${receiver.url}${path}`, eventTypes: ['account.frozen'], allAccounts: true }, { token: banker.accessToken });
    expect(webhook!.allAccounts).toBe(true);
    const account = await openAccount(t, carol, 'USD');
    await t.call(AccountService, 'freezeAccount', { accountId: account, reason: 'review' }, { token: banker.accessToken });
    await receiver.waitFor((all) => all.some((r) => r.path === path && r.json.data.id === String(account)));
  });
});

describe('endpoint addresses when private targets are refused (the production default)', () => {
  let strict: ApiServer;
  let user: LoggedInUser;
  beforeAll(async () => {
    user = await signUpAndLogIn(suite.transports.get('http')!, suite.stack.smtp);
    strict = await startApiServer({ ...suite.stack.config, WEBHOOK_ALLOW_PRIVATE_TARGETS: false }, { logger: suite.stack.logger, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it.each([
    ['http://127.0.0.1:8080/hook', 'loopback'],
    ['http://[::1]/hook', 'loopback'],
    ['http://[::ffff:127.0.0.1]/hook', 'IPv4-mapped'],
    ['http://10.1.2.3/hook', 'private network'],
    ['http://172.16.0.1/hook', 'private network'],
    ['http://192.168.0.10/hook', 'private network'],
    ['http://169.254.169.254/latest/meta-data', 'link-local'],
    ['http://[fd00::1]/hook', 'unique local'],
    ['http://0.0.0.0/hook', 'this network'],
    ['http://localhost:3000/hook', 'localhost'],
  ])('refuses %s with 400 (%s)', async (url, why) => {
    const answer = await fetch(`${strict.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url, eventTypes: ['transfer.posted'] }),
    });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await answer.json()) as { code: string; errors?: { field: string; description: string }[] };
    expect(problem.code).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(problem)).toContain(why);
  });
});
