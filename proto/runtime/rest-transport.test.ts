// The REST client runtime against a real HTTP server on a free local port: what goes on the wire
// (path, query, headers, body) and how answers and errors come back.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EmptySchema, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  DepositRequestSchema,
  DepositResponseSchema,
  GetAccountRequestSchema,
  GetStatementRequestSchema,
  ListEntriesRequestSchema,
  ListEntriesResponseSchema,
} from '../gen/bank/v1/account_service_pb.ts';
import { LogoutRequestSchema } from '../gen/bank/v1/auth_service_pb.ts';
import { HttpBodySchema } from '../gen/google/api/httpbody_pb.ts';
import { BankRestClient, RestError as GeneratedRestError } from '../gen/bank/v1/rest_client.ts';
import { ListTransfersRequestSchema, ListTransfersResponseSchema } from '../gen/bank/v1/transfer_service_pb.ts';
import { AccountSchema, AccountStatus, UserSchema } from '../gen/bank/v1/types_pb.ts';
import { GetUserRequestSchema, UpdateUserRequestSchema, VerifyEmailRequestSchema, VerifyEmailResponseSchema } from '../gen/bank/v1/user_service_pb.ts';
import { contentDispositionFilename, RestError, RestTransport, type RestRoute } from './rest-transport.ts';

// The routes as the generator emits them for these RPCs (see proto/gen/bank/v1/rest_client.ts).
const ROUTES = {
  getUser: { verb: 'GET', path: '/v1/users/{username}', pathFields: ['username'], body: '' },
  updateUser: { verb: 'PATCH', path: '/v1/users/{username}', pathFields: ['username'], body: '*' },
  verifyEmail: { verb: 'GET', path: '/v1/verify-email', pathFields: [], body: '' },
  getAccount: { verb: 'GET', path: '/v1/accounts/{account_id}', pathFields: ['account_id'], body: '' },
  listEntries: { verb: 'GET', path: '/v1/accounts/{account_id}/entries', pathFields: ['account_id'], body: '' },
  listTransfers: { verb: 'GET', path: '/v1/transfers', pathFields: [], body: '' },
  deposit: {
    verb: 'POST',
    path: '/v1/accounts/{account_id}/deposits',
    pathFields: ['account_id'],
    body: '*',
    idempotencyField: 'idempotencyKey',
  },
  logout: { verb: 'DELETE', path: '/v1/sessions/{session_id}', pathFields: ['session_id'], body: '' },
  getStatement: { verb: 'GET', path: '/v1/accounts/{account_id}/statement', pathFields: ['account_id'], body: '' },
} satisfies Record<string, RestRoute>;

type Seen = { method: string; url: string; headers: IncomingHttpHeaders; body: string };
type Reply = { status: number; headers?: Record<string, string>; body?: string | Buffer } | 'hang';

let server: Server;
let baseUrl: string;
let seen: Seen[] = [];
let reply: Reply = { status: 200, body: '{}' };
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (reply === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(reply.status, reply.headers ?? { 'content-type': 'application/json' });
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  seen = [];
  reply = { status: 200, body: '{}' };
});
afterEach(() => {
  for (const res of hanging.splice(0)) res.destroy();
});

const only = (): Seen => {
  expect(seen).toHaveLength(1);
  return seen[0]!;
};
const problem = (status: number, body: unknown): Reply => ({
  status,
  headers: { 'content-type': 'application/problem+json' },
  body: JSON.stringify(body),
});
/** The RestError a call ends in; fails the test when it succeeds or fails otherwise. */
async function restError(promise: Promise<unknown>): Promise<RestError> {
  const error = await promise.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  if (error instanceof RestError) return error;
  throw error;
}

describe('errors', () => {
  it('a problem+json answer becomes a RestError with its status, code, title, detail, field violations and request id', async () => {
    reply = problem(400, {
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      code: 'INVALID_ARGUMENT',
      detail: 'amount must be positive',
      errors: [{ field: 'amount', description: 'must be positive' }],
      requestId: 'req-42',
    });
    const error = await restError(
      new RestTransport({ baseUrl }).call(ROUTES.deposit, DepositRequestSchema, DepositResponseSchema, { accountId: 1n, amount: -5n, idempotencyKey: 'k' }),
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RestError');
    expect(error.message).toBe('HTTP 400 INVALID_ARGUMENT: amount must be positive');
    expect(error).toMatchObject({
      status: 400,
      code: 'INVALID_ARGUMENT',
      title: 'Bad Request',
      detail: 'amount must be positive',
      errors: [{ field: 'amount', description: 'must be positive' }],
      requestId: 'req-42',
    });
  });

  it('keeps the problem\'s other string members as extensions, such as the limit a refusal names', async () => {
    reply = problem(422, {
      type: 'urn:bank:problem:limit_exceeded',
      title: 'Limit exceeded',
      status: 422,
      code: 'LIMIT_EXCEEDED',
      detail: 'a single deposit may be at most 1000000 minor units',
      errors: [],
      limit: 'deposit_max_amount',
      remaining: '1000000',
      retries: 3,
      requestId: 'req-43',
    });
    const error = await restError(
      new RestTransport({ baseUrl }).call(ROUTES.deposit, DepositRequestSchema, DepositResponseSchema, { accountId: 1n, amount: 2_000_000n, idempotencyKey: 'k' }),
    );
    expect(error).toMatchObject({ status: 422, code: 'LIMIT_EXCEEDED', requestId: 'req-43' });
    expect(error.extensions).toEqual({ limit: 'deposit_max_amount', remaining: '1000000' });
  });

  it('field violations that are not {field, description} pairs are left out of errors', async () => {
    reply = problem(400, { code: 'INVALID_ARGUMENT', errors: [{ field: 'amount', description: 'too big' }, 'amount', { field: 7 }, null] });
    const error = await restError(new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }));
    expect(error.errors).toEqual([{ field: 'amount', description: 'too big' }]);
  });

  it('a non-JSON error body, such as a proxy page, is kept as the detail with code UNKNOWN', async () => {
    reply = { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway</html>' };
    const error = await restError(new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }));
    expect(error).toMatchObject({ status: 502, code: 'UNKNOWN', title: '', detail: '<html>Bad Gateway</html>', errors: [], requestId: undefined });
    expect(error.message).toBe('HTTP 502 UNKNOWN: <html>Bad Gateway</html>');
  });

  it('an error body that is JSON but not an object is kept as text in the detail', async () => {
    reply = { status: 500, body: '["boom"]' };
    const error = await restError(new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }));
    expect(error).toMatchObject({ status: 500, code: 'UNKNOWN', detail: '["boom"]' });
  });

  it('an empty error body gives code UNKNOWN and an empty detail', async () => {
    reply = { status: 503 };
    const error = await restError(new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }));
    expect(error).toMatchObject({ status: 503, code: 'UNKNOWN', detail: '' });
  });
});

describe('path variables', () => {
  it('a string path variable is percent-encoded and left out of the body', async () => {
    reply = { status: 200, body: JSON.stringify({ username: 'a b/ç?#%' }) };
    const user = await new RestTransport({ baseUrl }).call(ROUTES.updateUser, UpdateUserRequestSchema, UserSchema, {
      username: 'a b/ç?#%',
      fullName: 'Alice Renamed',
    });
    const request = only();
    expect(request.method).toBe('PATCH');
    expect(request.url).toBe('/v1/users/a%20b%2F%C3%A7%3F%23%25');
    expect(JSON.parse(request.body)).toEqual({ fullName: 'Alice Renamed' });
    expect(user.username).toBe('a b/ç?#%');
  });

  it('an int64 path variable is sent as its exact decimal digits, beyond 2^53', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.getAccount, GetAccountRequestSchema, AccountSchema, { accountId: 9_007_199_254_740_993n });
    const request = only();
    expect(request.method).toBe('GET');
    expect(request.url).toBe('/v1/accounts/9007199254740993');
    expect(request.body).toBe('');
    expect(request.headers['content-type']).toBeUndefined();
  });

  it.each(['', '.', '..'])('a path variable of %j is refused before any request, since the URL would reach another route', async (username) => {
    const call = new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username });
    await expect(call).rejects.toThrow(`bank.v1.GetUserRequest.username is ${JSON.stringify(username)}, which cannot be sent in the path`);
    expect(seen).toEqual([]);
  });
});

describe('query strings', () => {
  it('a call without a body sends the other fields in the query string under their proto names', async () => {
    reply = { status: 200, body: JSON.stringify({ entries: [], nextPageToken: 'next' }) };
    const page = await new RestTransport({ baseUrl }).call(ROUTES.listEntries, ListEntriesRequestSchema, ListEntriesResponseSchema, {
      accountId: 7n,
      pageSize: 5,
      pageToken: 'a b&c=d',
      since: timestampFromDate(new Date('2025-01-02T03:04:05Z')),
    });
    const request = only();
    expect(request.url).toBe('/v1/accounts/7/entries?page_size=5&page_token=a+b%26c%3Dd&since=2025-01-02T03%3A04%3A05Z');
    const query = new URL(request.url, baseUrl).searchParams;
    expect(Object.fromEntries(query)).toEqual({ page_size: '5', page_token: 'a b&c=d', since: '2025-01-02T03:04:05Z' });
    expect(page.nextPageToken).toBe('next');
  });

  it('fields at their default value are left out, and no empty "?" is sent', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.listEntries, ListEntriesRequestSchema, ListEntriesResponseSchema, {
      accountId: 7n,
      pageSize: 0,
      pageToken: '',
    });
    expect(only().url).toBe('/v1/accounts/7/entries');
  });

  it('an int64 query field is sent as decimal digits', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.listTransfers, ListTransfersRequestSchema, ListTransfersResponseSchema, {
      accountId: 9_007_199_254_740_993n,
      pageSize: 4,
    });
    expect(only().url).toBe('/v1/transfers?account_id=9007199254740993&page_size=4');
  });

  it('the emailed verification link is rebuilt from its fields: email_id and secret_code', async () => {
    reply = { status: 200, body: JSON.stringify({ isVerified: true }) };
    const verified = await new RestTransport({ baseUrl }).call(ROUTES.verifyEmail, VerifyEmailRequestSchema, VerifyEmailResponseSchema, {
      emailId: 12n,
      secretCode: 's3cr+t/=',
    });
    expect(only().url).toBe('/v1/verify-email?email_id=12&secret_code=s3cr%2Bt%2F%3D');
    expect(verified.isVerified).toBe(true);
  });
});

describe('Idempotency-Key', () => {
  it('the request idempotency key is sent as the Idempotency-Key header, not in the JSON body', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.deposit, DepositRequestSchema, DepositResponseSchema, {
      accountId: 3n,
      amount: 500n,
      idempotencyKey: 'dep-1',
    });
    const request = only();
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/v1/accounts/3/deposits');
    expect(request.headers['idempotency-key']).toBe('dep-1');
    expect(request.headers['content-type']).toBe('application/json');
    // int64 as a decimal string, per canonical proto3 JSON.
    expect(request.body).toBe('{"amount":"500"}');
  });

  it('a per-call idempotency key wins over the request field', async () => {
    await new RestTransport({ baseUrl }).call(
      ROUTES.deposit,
      DepositRequestSchema,
      DepositResponseSchema,
      { accountId: 3n, amount: 500n, idempotencyKey: 'from-request' },
      { idempotencyKey: 'from-options' },
    );
    const request = only();
    expect(request.headers['idempotency-key']).toBe('from-options');
    expect(request.body).toBe('{"amount":"500"}');
  });

  it('without a key no Idempotency-Key header is sent (the client never invents one)', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.deposit, DepositRequestSchema, DepositResponseSchema, { accountId: 3n, amount: 500n });
    expect(only().headers['idempotency-key']).toBeUndefined();
  });
});

describe('headers and base URL', () => {
  it('the client access token is sent as a bearer token and a per-call token replaces it', async () => {
    const transport = new RestTransport({ baseUrl, accessToken: 'v4.public.client' });
    await transport.call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' });
    await transport.call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }, { accessToken: 'v4.public.call' });
    expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer v4.public.client', 'Bearer v4.public.call']);
  });

  it('without a token no authorization header is sent', async () => {
    await new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' });
    expect(only().headers.authorization).toBeUndefined();
  });

  it('client headers and per-call headers are both sent, the per-call ones winning, and JSON is asked for', async () => {
    await new RestTransport({ baseUrl, headers: { 'x-client': 'c', 'x-both': 'client' } }).call(
      ROUTES.getUser,
      GetUserRequestSchema,
      UserSchema,
      { username: 'alice' },
      { headers: { 'x-call': 'k', 'x-both': 'call' } },
    );
    expect(only().headers).toMatchObject({ accept: 'application/json', 'x-client': 'c', 'x-call': 'k', 'x-both': 'call' });
  });

  it('trailing slashes of the base URL do not double the slash before the path', async () => {
    await new RestTransport({ baseUrl: `${baseUrl}//` }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' });
    expect(only().url).toBe('/v1/users/alice');
  });

  it('a fetch given in the options is the one that sends the request', async () => {
    const urls: string[] = [];
    const countingFetch: typeof fetch = (input, init) => {
      urls.push(String(input));
      return fetch(input, init);
    };
    await new RestTransport({ baseUrl, fetch: countingFetch }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' });
    expect(urls).toEqual([`${baseUrl}/v1/users/alice`]);
    expect(seen).toHaveLength(1);
  });
});

describe('answers', () => {
  it('a JSON answer is read as canonical proto3 JSON, ignoring fields this client does not know', async () => {
    reply = {
      status: 200,
      body: JSON.stringify({ id: '9007199254740993', owner: 'alice', currency: 'USD', balance: '1600', status: 'ACCOUNT_STATUS_OPEN', addedLater: true }),
    };
    const account = await new RestTransport({ baseUrl }).call(ROUTES.getAccount, GetAccountRequestSchema, AccountSchema, { accountId: 1n });
    expect(account).toMatchObject({ id: 9_007_199_254_740_993n, owner: 'alice', currency: 'USD', balance: 1_600n, status: AccountStatus.OPEN });
  });

  it('an empty 2xx answer is the message with every field at its default', async () => {
    reply = { status: 204 };
    const empty = await new RestTransport({ baseUrl }).call(ROUTES.logout, LogoutRequestSchema, EmptySchema, { sessionId: 'abc' });
    expect(only()).toMatchObject({ method: 'DELETE', url: '/v1/sessions/abc' });
    expect(empty.$typeName).toBe('google.protobuf.Empty');
  });

  it('a 2xx answer that is not JSON is an error, not a message with every field at its default', async () => {
    reply = { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>login portal</html>' };
    const call = new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' });
    await expect(call).rejects.toThrow('GET /v1/users/alice: HTTP 200 answered a body that is not JSON');
  });

  it('an HttpBody answer (a statement file) is its bytes and content type, not JSON', async () => {
    reply = { status: 200, headers: { 'content-type': 'text/csv; charset=utf-8' }, body: 'date,amount\n2026-12-01,100\n' };
    const file = await new RestTransport({ baseUrl }).call(ROUTES.getStatement, GetStatementRequestSchema, HttpBodySchema, { accountId: 7n, format: 'csv' });
    expect(only()).toMatchObject({ method: 'GET', url: '/v1/accounts/7/statement?format=csv' });
    expect(file.contentType).toBe('text/csv; charset=utf-8');
    expect(new TextDecoder().decode(file.data)).toBe('date,amount\n2026-12-01,100\n');
  });

  it('the generated getStatement downloads the file: bytes, content type and the name from Content-Disposition', async () => {
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x2d, 0x00, 0xff, 0x0a]);
    reply = {
      status: 200,
      headers: { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="statement-7-2026-11-01-2026-12-01.pdf"' },
      body: pdf,
    };
    const file = await new BankRestClient({ baseUrl, accessToken: 'v4.public.t' }).account.getStatement({ accountId: 7n, format: 'pdf' });
    const sent = only();
    expect(sent).toMatchObject({ method: 'GET', url: '/v1/accounts/7/statement?format=pdf' });
    expect(sent.headers.accept).toBe('*/*');
    expect(sent.headers.authorization).toBe('Bearer v4.public.t');
    expect(file.contentType).toBe('application/pdf');
    expect(file.filename).toBe('statement-7-2026-11-01-2026-12-01.pdf');
    expect(Buffer.from(file.data).equals(pdf)).toBe(true);
  });

  it('a refused download is a RestError with the problem, like any call', async () => {
    reply = problem(404, { status: 404, code: 'ACCOUNT_NOT_FOUND', detail: 'account 7 not found' });
    const error = await restError(new BankRestClient({ baseUrl }).account.getStatement({ accountId: 7n }));
    expect(error).toMatchObject({ status: 404, code: 'ACCOUNT_NOT_FOUND', detail: 'account 7 not found' });
  });

  it('the file name comes from filename* (RFC 5987) first, then filename, and never carries a path', () => {
    expect(contentDispositionFilename('attachment; filename="a.csv"')).toBe('a.csv');
    expect(contentDispositionFilename('attachment; filename=a.csv')).toBe('a.csv');
    expect(contentDispositionFilename(`attachment; filename="fallback.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`)).toBe('résumé.pdf');
    expect(contentDispositionFilename('attachment; FILENAME="say \\"hi\\".txt"')).toBe('say "hi".txt');
    expect(contentDispositionFilename('attachment; filename="../../etc/passwd"')).toBe('passwd');
    expect(contentDispositionFilename('attachment; filename="..\\\\..\\\\boot.ini"')).toBe('boot.ini');
    expect(contentDispositionFilename('attachment; filename=".."')).toBeUndefined();
    expect(contentDispositionFilename('attachment')).toBeUndefined();
    expect(contentDispositionFilename(null)).toBeUndefined();
  });

  it('aborting the signal cancels a call in flight', async () => {
    reply = 'hang';
    const controller = new AbortController();
    const call = new RestTransport({ baseUrl }).call(ROUTES.getUser, GetUserRequestSchema, UserSchema, { username: 'alice' }, { signal: controller.signal });
    while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('the generated client', () => {
  it('re-exports the runtime RestError, so instanceof holds whichever module a caller imports it from', async () => {
    reply = problem(404, { code: 'NOT_FOUND', detail: 'no such user' });
    expect(GeneratedRestError).toBe(RestError);
    const error = await restError(new BankRestClient({ baseUrl }).user.getUser({ username: 'nobody' }));
    expect(error).toBeInstanceOf(GeneratedRestError);
    expect(error).toMatchObject({ status: 404, code: 'NOT_FOUND', detail: 'no such user' });
    expect(only().url).toBe('/v1/users/nobody');
  });

  it('withAccessToken gives a client that sends the new token and keeps the other options', async () => {
    const client = new BankRestClient({ baseUrl, accessToken: 'v4.public.old', headers: { 'x-client': 'c' } }).withAccessToken('v4.public.new');
    await client.account.getAccount({ accountId: 5n });
    expect(only().headers).toMatchObject({ authorization: 'Bearer v4.public.new', 'x-client': 'c' });
  });
});
