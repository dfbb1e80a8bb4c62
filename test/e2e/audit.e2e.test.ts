// The audit trail over both transports: a role granted with the operator's use case shows up in
// ListAuditEvents, newest first, page by page; the grant ends the user's sessions, so the role
// takes effect at the next login.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuditService } from '@bank/proto/bank/v1/audit_service_pb';
import { SessionLiveness } from '@bank/shared/auth/session-liveness';
import { createRedis, type Redis } from '@bank/shared/redis/redis';
import { RoleService } from '@bank/shared/users/role.service';
import { TEST_REDIS_URL } from '../services.ts';
import { logIn, signUpAndLogIn, type LoggedInUser } from './flows.ts';
import { stackPerSuite } from './harness.ts';
import { failure, type Transport } from './transports.ts';

const suite = stackPerSuite();
let redis: Redis;
let roles: RoleService;

beforeAll(() => {
  redis = createRedis(TEST_REDIS_URL);
  // Announced like the admin command does, so the servers drop the ended sessions from their caches.
  const revocations = new SessionLiveness({ ttlMs: 0, publish: { redis, channel: `${suite.stack.config.REDIS_KEY_PREFIX}sessions:revoked` } });
  roles = new RoleService({ pool: suite.stack.db.pool, sessionRevocations: revocations });
});

afterAll(() => {
  redis?.disconnect();
});

/** Polls until the call is refused; a revocation reaches every process within SESSION_CACHE_TTL_MS. */
async function refusedSoon(call: () => Promise<unknown>): Promise<{ code: string; status: number }> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const outcome = await call().then(
      () => undefined,
      (error: unknown) => error,
    );
    if (outcome !== undefined) {
      const error = await failure(Promise.reject(outcome));
      return { code: error.code, status: error.status };
    }
    if (Date.now() > deadline) throw new Error('the call was still accepted after 5 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(['http', 'grpc'] as const)('the audit trail over %s', (name) => {
  let t: Transport;
  let banker: LoggedInUser;
  let teller: { username: string };
  const expectedStatus = (httpStatus: number, grpcStatus: grpc.status) => (name === 'http' ? httpStatus : grpcStatus);

  beforeAll(async () => {
    t = suite.transports.get(name)!;
    const first = await signUpAndLogIn(t, suite.stack.smtp);
    expect((await roles.grantBanker({ username: first.username, actor: 'operator:e2e', reason: 'head of tellers' })).outcome).toBe('changed');
    // The grant ended the session: its token is refused, and the next login carries the role.
    expect(await refusedSoon(() => t.call(AccountService, 'listAccounts', {}, { token: first.accessToken }))).toEqual({
      code: 'UNAUTHENTICATED',
      status: expectedStatus(401, grpc.status.UNAUTHENTICATED),
    });
    banker = await logIn(t, suite.stack.smtp, first, 'code');
    teller = await signUpAndLogIn(t, suite.stack.smtp);
    await roles.grantBanker({ username: teller.username, actor: 'operator:e2e', reason: 'temporary cover' });
    await roles.revokeBanker({ username: teller.username, actor: 'operator:e2e' });
  });

  it('lists the role changes newest first, with actor, action, target, reason and time', async () => {
    const page = await t.call(AuditService, 'listAuditEvents', {}, { token: banker.accessToken });
    const ours = page.auditEvents.filter((e) => e.target === teller.username || e.target === banker.username);
    expect(ours.map((e) => ({ actor: e.actor, action: e.action, target: e.target, reason: e.reason }))).toEqual([
      { actor: 'operator:e2e', action: 'role_revoked', target: teller.username, reason: '' },
      { actor: 'operator:e2e', action: 'role_granted', target: teller.username, reason: 'temporary cover' },
      { actor: 'operator:e2e', action: 'role_granted', target: banker.username, reason: 'head of tellers' },
    ]);
    const ids = page.auditEvents.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)));
    for (const event of ours) expect(Math.abs(Number(event.createdAt?.seconds ?? 0n) * 1_000 - Date.now())).toBeLessThan(60_000);
  });

  it('pages with page_size and next_page_token, each event once, until the token is empty', async () => {
    const seen: bigint[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await t.call(AuditService, 'listAuditEvents', { pageSize: 2, pageToken }, { token: banker.accessToken });
      expect(page.auditEvents.length).toBeLessThanOrEqual(2);
      seen.push(...page.auditEvents.map((e) => e.id));
      pageToken = page.nextPageToken;
      pages += 1;
    } while (pageToken !== '' && pages < 100);
    expect(pageToken).toBe('');
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    const all = await t.call(AuditService, 'listAuditEvents', { pageSize: 200 }, { token: banker.accessToken });
    expect(seen).toEqual(all.auditEvents.map((e) => e.id));
  });

  it('refuses a page token it did not make and a negative page size, naming the field', async () => {
    const badToken = await failure(t.call(AuditService, 'listAuditEvents', { pageToken: 'not-a-token' }, { token: banker.accessToken }));
    expect(badToken).toMatchObject({ code: 'INVALID_ARGUMENT', status: expectedStatus(400, grpc.status.INVALID_ARGUMENT) });
    expect(badToken.fieldViolations.map((v) => v.field)).toEqual(['page_token']);
    const negative = await failure(t.call(AuditService, 'listAuditEvents', { pageSize: -1 }, { token: banker.accessToken }));
    expect(negative.fieldViolations.map((v) => v.field)).toEqual(['page_size']);
  });

  it('a user whose banker role was revoked can no longer read the trail after logging in again', async () => {
    const former = await signUpAndLogIn(t, suite.stack.smtp);
    await roles.grantBanker({ username: former.username, actor: 'operator:e2e' });
    const asBanker = await logIn(t, suite.stack.smtp, former, 'code');
    expect((await t.call(AuditService, 'listAuditEvents', { pageSize: 1 }, { token: asBanker.accessToken })).auditEvents).toHaveLength(1);
    await roles.revokeBanker({ username: former.username, actor: 'operator:e2e' });
    expect((await refusedSoon(() => t.call(AuditService, 'listAuditEvents', {}, { token: asBanker.accessToken }))).code).toBe('UNAUTHENTICATED');
    const again = await logIn(t, suite.stack.smtp, former, 'code');
    expect(await failure(t.call(AuditService, 'listAuditEvents', {}, { token: again.accessToken }))).toMatchObject({
      code: 'PERMISSION_DENIED',
      status: expectedStatus(403, grpc.status.PERMISSION_DENIED),
    });
  });
});
