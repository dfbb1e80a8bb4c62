import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOGIN_SUBJECT, loginSecrets, VERIFICATION_SUBJECT, verificationPath, verificationValues, waitForMail } from './mailbox.ts';

/**
 * The README walkthrough as a program: sign up, verify through the emailed link's page, log in
 * and confirm with the login secret (after approving through the emailed link, or with the
 * emailed token or code), open accounts, deposit, transfer, read history, refresh, close
 * and log out, first over HTTP (as the curl examples) and then over gRPC (as the grpcurl ones).
 * Any difference from what the README promises throws with the step's name.
 */
export type SmokeOptions = { httpUrl: string; grpcAddress: string; inboxUrl: string; log?: (line: string) => void };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

class SmokeFailure extends Error {}

function check(condition: unknown, step: string, detail: unknown): asserts condition {
  if (!condition) throw new SmokeFailure(`${step}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
}

const suffix = () => randomBytes(4).toString('hex');
const PASSWORD = 'correct horse battery';

async function http(base: string, method: string, route: string, options: { body?: unknown; token?: string; key?: string; expect?: number | number[] } = {}) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.key) headers['idempotency-key'] = options.key;
  const response = await fetch(`${base}${route}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  const expected = [options.expect ?? 200].flat();
  check(expected.includes(response.status), `${method} ${route}`, `expected ${expected.join(' or ')}, got ${response.status}: ${text.slice(0, 400)}`);
  return body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function httpWalkthrough(o: SmokeOptions, log: (line: string) => void) {
  const h = o.httpUrl.replace(/\/$/, '');
  const people = [];
  for (const name of ['alice', 'bob']) {
    const username = `${name}_${suffix()}`;
    const email = `${username}@example.test`;
    const user = await http(h, 'POST', '/v1/users', { body: { username, fullName: `${name} Smoke`, email, password: PASSWORD }, expect: 201 });
    check(user.username === username && user.isEmailVerified !== true, 'sign up', user);
    const verification = await waitForMail(o.inboxUrl, email, VERIFICATION_SUBJECT);
    const page = await fetch(`${h}${verificationPath(verification)}`, { signal: AbortSignal.timeout(15_000) });
    check(page.status === 200 && (page.headers.get('content-type') ?? '').startsWith('text/html'), 'verification page', page.status);
    // What the page's button does: post the link's two values.
    const verified = await http(h, 'POST', '/v1/verify-email', { body: verificationValues(verification) });
    check(verified.isVerified === true, 'verify email', verified);
    const login = await http(h, 'POST', '/v1/sessions', { body: { username, password: PASSWORD }, expect: 202 });
    check(typeof login.sessionId === 'string' && typeof login.loginSecret === 'string', 'login step 1', Object.keys(login));
    const mail = loginSecrets(await waitForMail(o.inboxUrl, email, LOGIN_SUBJECT));
    let tokens;
    if (name === 'alice') {
      // The emailed link's page approves; this client, holding the secret, then confirms alone.
      const notYet = await http(h, 'POST', `/v1/sessions/${login.sessionId}/confirm`, { body: { loginSecret: login.loginSecret }, expect: 409 });
      check(notYet.code === 'LOGIN_NOT_APPROVED', 'login not approved yet', notYet);
      const approvePage = new URL(mail.approvePath, h);
      await http(h, 'POST', `/v1/sessions/${approvePage.searchParams.get('session_id')}/approve`, { body: { token: approvePage.searchParams.get('token') } });
      tokens = await http(h, 'POST', `/v1/sessions/${login.sessionId}/confirm`, { body: { loginSecret: login.loginSecret } });
    } else {
      tokens = await http(h, 'POST', `/v1/sessions/${login.sessionId}/confirm`, { body: { loginSecret: login.loginSecret, token: mail.token } });
    }
    check(typeof tokens.accessToken === 'string' && typeof tokens.refreshToken === 'string', 'login step 2', Object.keys(tokens));
    people.push({ username, email, session: login.sessionId as string, access: tokens.accessToken as string, refresh: tokens.refreshToken as string });
    log(`http: ${username} signed up, verified and logged in`);
  }
  const [alice, bob] = people as [(typeof people)[0], (typeof people)[0]];
  const a = await http(h, 'POST', '/v1/accounts', { body: { currency: 'USD' }, token: alice.access, expect: 201 });
  const b = await http(h, 'POST', '/v1/accounts', { body: { currency: 'USD' }, token: bob.access, expect: 201 });
  check(a.balance === '0' && a.currency === 'USD', 'open account', a);
  const key = `smoke-${suffix()}`;
  const deposit = await http(h, 'POST', `/v1/accounts/${a.id}/deposits`, { body: { amount: '10000' }, token: alice.access, key, expect: 201 });
  check(deposit.balance === '10000', 'deposit', deposit);
  const replay = await http(h, 'POST', `/v1/accounts/${a.id}/deposits`, { body: { amount: '10000' }, token: alice.access, key, expect: [200, 201] });
  check(replay.replayed === true && replay.transfer.id === deposit.transfer.id, 'deposit replay', replay);
  const transfer = await http(h, 'POST', '/v1/transfers', {
    body: { fromAccountId: a.id, toAccountId: b.id, amount: '2500', currency: 'USD' },
    token: alice.access,
    key: `smoke-${suffix()}`,
    expect: 201,
  });
  check(transfer.fromBalance === '7500', 'transfer', transfer);
  const got = await http(h, 'GET', `/v1/transfers/${transfer.transfer.id}`, { token: bob.access });
  check(got.amount === '2500', 'get transfer', got);
  const entries = await http(h, 'GET', `/v1/accounts/${a.id}/entries?page_size=1`, { token: alice.access });
  check(entries.entries?.length === 1 && typeof entries.nextPageToken === 'string' && entries.nextPageToken !== '', 'entries page 1', entries);
  const page2 = await http(h, 'GET', `/v1/accounts/${a.id}/entries?page_size=1&page_token=${encodeURIComponent(entries.nextPageToken)}`, { token: alice.access });
  check(page2.entries?.length === 1 && page2.entries[0].id !== entries.entries[0].id, 'entries page 2', page2);
  const list = await http(h, 'GET', `/v1/transfers?account_id=${b.id}`, { token: bob.access });
  check(list.transfers?.length === 1, 'list transfers', list);
  await http(h, 'GET', `/v1/accounts/${a.id}`, { token: bob.access, expect: 404 });
  const refreshed = await http(h, 'POST', '/v1/tokens/refresh', { body: { refreshToken: alice.refresh } });
  check(typeof refreshed.accessToken === 'string' && refreshed.refreshToken !== alice.refresh, 'refresh', Object.keys(refreshed));
  const back = await http(h, 'POST', '/v1/transfers', {
    body: { fromAccountId: b.id, toAccountId: a.id, amount: '2500', currency: 'USD' },
    token: bob.access,
    key: `smoke-${suffix()}`,
    expect: 201,
  });
  check(back.fromBalance === '0', 'transfer back', back);
  const closed = await http(h, 'DELETE', `/v1/accounts/${b.id}`, { token: bob.access });
  check(closed.status === 'ACCOUNT_STATUS_CLOSED' || closed.status === 'CLOSED' || closed.status === 'closed', 'close account', closed);
  await http(h, 'DELETE', `/v1/sessions/${bob.session}`, { token: bob.access });
  await http(h, 'GET', '/v1/accounts', { token: bob.access, expect: 401 });
  log(`http: accounts, deposit (and its replay), transfers, history pages, refresh, close and logout all as documented`);
}

type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response: any) => void) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

function grpcClients(address: string) {
  const definition = protoLoader.loadSync(
    ['bank/v1/user_service.proto', 'bank/v1/auth_service.proto', 'bank/v1/account_service.proto', 'bank/v1/transfer_service.proto'],
    {
      includeDirs: [path.join(ROOT, 'proto'), path.join(ROOT, 'node_modules/google-proto-files')],
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
    },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { bank: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const make = (name: string) => new loaded.bank.v1[name]!(address, grpc.credentials.createInsecure()) as unknown as Record<string, Unary> & grpc.Client;
  return { users: make('UserService'), auth: make('AuthService'), accounts: make('AccountService'), transfers: make('TransferService') };
}

function call(client: Record<string, Unary>, method: string, request: object, token?: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) =>
    client[method]!.call(client, request, metadata, (error, response) =>
      error ? reject(new SmokeFailure(`grpc ${method}: ${grpc.status[error.code]} ${error.details}`)) : resolve(response),
    ),
  );
}

async function grpcWalkthrough(o: SmokeOptions, log: (line: string) => void) {
  const c = grpcClients(o.grpcAddress);
  try {
    const people = [];
    for (const name of ['carol', 'dave']) {
      const username = `${name}_${suffix()}`;
      const email = `${username}@example.test`;
      await call(c.users, 'createUser', { username, fullName: `${name} Smoke`, email, password: PASSWORD });
      const verified = await call(c.users, 'verifyEmail', verificationValues(await waitForMail(o.inboxUrl, email, VERIFICATION_SUBJECT)));
      check(verified.isVerified === true, 'grpc verify email', verified);
      const login = await call(c.auth, 'login', { username, password: PASSWORD });
      const { code } = loginSecrets(await waitForMail(o.inboxUrl, email, LOGIN_SUBJECT));
      const tokens = await call(c.auth, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, code });
      people.push({ username, session: login.sessionId as string, access: tokens.accessToken as string, refresh: tokens.refreshToken as string });
    }
    const [carol, dave] = people as [(typeof people)[0], (typeof people)[0]];
    log(`grpc: ${carol.username} and ${dave.username} signed up, verified and logged in (confirmed with the login secret and the emailed code)`);
    const a = await call(c.accounts, 'openAccount', { currency: 'EUR' }, carol.access);
    const b = await call(c.accounts, 'openAccount', { currency: 'EUR' }, dave.access);
    const deposit = await call(c.accounts, 'deposit', { accountId: a.id, amount: '5000', idempotencyKey: `smoke-${suffix()}` }, carol.access);
    check(deposit.balance === '5000', 'grpc deposit', deposit);
    const transfer = await call(
      c.transfers,
      'createTransfer',
      { fromAccountId: a.id, toAccountId: b.id, amount: '1200', currency: 'EUR', idempotencyKey: `smoke-${suffix()}` },
      carol.access,
    );
    check(transfer.fromBalance === '3800', 'grpc transfer', transfer);
    const entries = await call(c.accounts, 'listEntries', { accountId: b.id, pageSize: 10 }, dave.access);
    check(entries.entries.length === 1 && entries.entries[0].amount === '1200', 'grpc entries', entries);
    const denied = await call(c.accounts, 'getAccount', { accountId: a.id }, dave.access).then(
      () => 'allowed',
      (error: Error) => error.message,
    );
    check(/NOT_FOUND|PERMISSION_DENIED/.test(denied), 'grpc foreign account', denied);
    const refreshed = await call(c.auth, 'refreshToken', { refreshToken: carol.refresh });
    check(typeof refreshed.accessToken === 'string', 'grpc refresh', Object.keys(refreshed));
    await call(c.auth, 'logout', { sessionId: dave.session }, dave.access);
    log('grpc: accounts, deposit, transfer, history, authorization, refresh and logout all as documented');
  } finally {
    for (const client of Object.values(c)) client.close();
  }
}

export async function runSmoke(options: SmokeOptions): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(`smoke: ${line}`));
  await httpWalkthrough(options, log);
  await grpcWalkthrough(options, log);
}
