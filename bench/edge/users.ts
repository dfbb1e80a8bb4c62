// The bench's users, made the way a person makes one: sign up, verify with the emailed link's
// values, log in with the password, the login secret and the emailed code, open a USD account,
// fund it with a deposit.
import { randomBytes } from 'node:crypto';
import { LOGIN_SUBJECT, loginSecrets, VERIFICATION_SUBJECT, verificationValues, waitForMail } from '@bank/dev-tools/smoke/mailbox';

export const PASSWORD = 'correct horse battery staple';
const FUNDING = '100000000000'; // 1,000,000,000.00 USD in cents: transfers of 1 cent never run dry

export type BenchUser = {
  /** 0-based; user i owns account `firstAccountId + i` (pgbench relies on it). */
  index: number;
  username: string;
  email: string;
  accessToken: string;
  accountId: bigint;
};

export type BenchUsers = { users: BenchUser[]; prefix: string; firstAccountId: bigint };

type Json = Record<string, unknown>;

/** One HTTP call answered with one of `expect`, else an error naming the step. */
export async function httpJson(base: string, method: string, route: string, options: { body?: unknown; token?: string; key?: string; expect: number } ): Promise<Json> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.key) headers['idempotency-key'] = options.key;
  const response = await fetch(`${base}${route}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (response.status !== options.expect) throw new Error(`${method} ${route}: expected ${options.expect}, got ${response.status}: ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Json) : {};
}

/**
 * Logs a verified user in the way a person does (password, then the login secret with the emailed code) and answers
 * the access token.
 * @throws when a step does not answer as the README says
 */
export async function logIn(base: string, inboxUrl: string, username: string, email: string): Promise<string> {
  const login = await httpJson(base, 'POST', '/v1/sessions', { body: { username, password: PASSWORD }, expect: 202 });
  const { code } = loginSecrets(await waitForMail(inboxUrl, email, LOGIN_SUBJECT, { timeoutMs: 60_000 }));
  const tokens = await httpJson(base, 'POST', `/v1/sessions/${String(login.sessionId)}/confirm`, { body: { loginSecret: login.loginSecret, code }, expect: 200 });
  if (typeof tokens.accessToken !== 'string') throw new Error(`login confirm answered no accessToken for ${username}`);
  return tokens.accessToken;
}

async function inParallel<T>(count: number, concurrency: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++;
        out[index] = await run(index);
      }
    }),
  );
  return out;
}

/**
 * Signs up, verifies and logs in `count` users with `concurrency` at a time (each costs two
 * bcrypt operations), then opens their accounts one after the other so the ids are consecutive,
 * and funds them.
 * @throws when any step does not answer as the README says, or the ids are not consecutive
 */
export async function createUsers(options: { httpUrl: string; inboxUrl: string; count: number; concurrency: number }): Promise<BenchUsers> {
  const { httpUrl: base, inboxUrl } = options;
  const prefix = `bench_${randomBytes(4).toString('hex')}_`;
  const signedIn = await inParallel(options.count, options.concurrency, async (index) => {
    const username = `${prefix}${index}`;
    const email = `${username}@example.test`;
    await httpJson(base, 'POST', '/v1/users', { body: { username, fullName: `Bench ${index}`, email, password: PASSWORD }, expect: 201 });
    const values = verificationValues(await waitForMail(inboxUrl, email, VERIFICATION_SUBJECT, { timeoutMs: 60_000 }));
    await httpJson(base, 'POST', '/v1/verify-email', { body: values, expect: 200 });
    return { index, username, email, accessToken: await logIn(base, inboxUrl, username, email) };
  });
  const users: BenchUser[] = [];
  for (const user of signedIn) {
    const account = await httpJson(base, 'POST', '/v1/accounts', { body: { currency: 'USD' }, token: user.accessToken, expect: 201 });
    users.push({ ...user, accountId: BigInt(String(account.id)) });
  }
  const firstAccountId = users[0]!.accountId;
  const gap = users.find((u) => u.accountId !== firstAccountId + BigInt(u.index));
  if (gap) throw new Error(`account ids are not consecutive (user ${gap.index} has ${gap.accountId}, expected ${firstAccountId + BigInt(gap.index)})`);
  await inParallel(users.length, options.concurrency, (index) => {
    const user = users[index]!;
    return httpJson(base, 'POST', `/v1/accounts/${user.accountId}/deposits`, {
      body: { amount: FUNDING },
      token: user.accessToken,
      key: `fund-${user.username}`,
      expect: 201,
    });
  });
  return { users, prefix, firstAccountId };
}
