// The requests of the storm, each sent the way a careful client sends it: a fresh idempotency key,
// then the same key and body on every retry. Each one ends in the journal with what the bank
// finally answered.
import { randomBytes } from 'node:crypto';
import { AccountService } from '@bank/proto/bank/v1/account_service_pb';
import { AuthService } from '@bank/proto/bank/v1/auth_service_pb';
import { TransferService } from '@bank/proto/bank/v1/transfer_service_pb';
import { UserService } from '@bank/proto/bank/v1/user_service_pb';
import type { TestSmtpServer } from '../smtp.ts';
import { withRetries, type BankClient, type Final, type Protocol, type RetryPolicy } from './bank-client.ts';
import type { ChaosConfig } from './chaos-config.ts';
import type { IdentityOp, Journal, MoneyKind, MoneyOp } from './journal.ts';

export const CURRENCY = 'EUR';
/** A hold lives longer than any run, so the storm's captures find it pending. */
const HOLD_TTL_SECONDS = 3_600;
/** Before any fault; generous, since a two-core machine shared with other work can be slow. */
const SET_UP_EMAIL_WAIT_MS = 90_000;

export type ChaosUser = { username: string; email: string; password: string; token: string; accountId: bigint };
export type OpsContext = { client: BankClient; journal: Journal; config: ChaosConfig };

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
export const newKey = (kind: string): string => `chaos-${kind}-${hex(8)}`;

export function retryPolicy(config: ChaosConfig, options: { impatient?: boolean; retryRateLimited?: boolean; giveUpAfterMs?: number } = {}): RetryPolicy {
  return {
    timeoutMs: config.requestTimeoutMs,
    ...(options.impatient ? { firstTimeoutMs: config.impatientTimeoutMs } : {}),
    backoffBaseMs: config.retryBaseMs,
    backoffMaxMs: config.retryMaxMs,
    giveUpAfterMs: options.giveUpAfterMs ?? config.giveUpMs,
    retryRateLimited: options.retryRateLimited ?? true,
    // A call shed with 503 OVERLOADED is retried with its key like any 503, after its Retry-After.
    honourRetryAfter: true,
  };
}

/** A money request with the storm's default policy (an impatient first attempt now and then). */
export function moneyPolicy(config: ChaosConfig): RetryPolicy {
  return retryPolicy(config, { impatient: Math.random() < config.impatientShare });
}

async function money(
  ctx: OpsContext,
  kind: MoneyKind,
  protocol: Protocol,
  user: ChaosUser,
  policy: RetryPolicy,
  send: (key: string, timeoutMs: number) => Promise<{ transfer?: { id: bigint } | undefined; replayed?: boolean }>,
  mustBeRefused = false,
): Promise<MoneyOp> {
  const key = newKey(kind);
  const final = await withRetries(kind, protocol, policy, ctx.journal.record, (timeoutMs) => send(key, timeoutMs));
  const op: MoneyOp = { kind, protocol, username: user.username, key, outcome: final.status, attempts: final.attempts, impatient: policy.firstTimeoutMs !== undefined };
  if (mustBeRefused) op.mustBeRefused = true;
  if (final.status === 'acknowledged') {
    const id = final.value.transfer?.id;
    if (id === undefined) throw new Error(`${kind} over ${protocol} was acknowledged without a transfer`);
    op.transferId = id;
    op.replayed = final.value.replayed === true;
  }
  if (final.status === 'refused') op.refusal = final.code;
  if (final.status === 'gave-up') op.lastCode = final.code;
  ctx.journal.money.push(op);
  return op;
}

export function transfer(
  ctx: OpsContext,
  protocol: Protocol,
  from: ChaosUser,
  to: ChaosUser,
  amount: bigint,
  options: { hold?: boolean; policy?: RetryPolicy; mustBeRefused?: boolean } = {},
) {
  return money(ctx, options.hold ? 'hold' : 'transfer', protocol, from, options.policy ?? moneyPolicy(ctx.config), (key, timeoutMs) =>
    ctx.client.call(
      protocol,
      TransferService,
      'createTransfer',
      {
        fromAccountId: from.accountId,
        toAccountId: to.accountId,
        amount,
        currency: CURRENCY,
        idempotencyKey: key,
        ...(options.hold ? { hold: { ttlSeconds: HOLD_TTL_SECONDS } } : {}),
      },
      { token: from.token, timeoutMs },
    ),
    options.mustBeRefused,
  );
}

export function deposit(ctx: OpsContext, protocol: Protocol, user: ChaosUser, amount: bigint, policy: RetryPolicy = moneyPolicy(ctx.config)) {
  return money(ctx, 'deposit', protocol, user, policy, (key, timeoutMs) =>
    ctx.client.call(protocol, AccountService, 'deposit', { accountId: user.accountId, amount, idempotencyKey: key }, { token: user.token, timeoutMs }),
  );
}

export function withdraw(ctx: OpsContext, protocol: Protocol, user: ChaosUser, amount: bigint, options: { mustBeRefused?: boolean } = {}) {
  return money(
    ctx,
    'withdrawal',
    protocol,
    user,
    moneyPolicy(ctx.config),
    (key, timeoutMs) =>
      ctx.client.call(
        protocol,
        AccountService,
        'withdraw',
        { accountId: user.accountId, amount, destination: 'DE89370400440532013000', idempotencyKey: key },
        { token: user.token, timeoutMs },
      ),
    options.mustBeRefused,
  );
}

export function capture(ctx: OpsContext, protocol: Protocol, user: ChaosUser, holdId: bigint, amount: bigint, options: { mustBeRefused?: boolean } = {}) {
  return money(
    ctx,
    'capture',
    protocol,
    user,
    moneyPolicy(ctx.config),
    (key, timeoutMs) => ctx.client.call(protocol, TransferService, 'captureTransfer', { transferId: holdId, amount, idempotencyKey: key }, { token: user.token, timeoutMs }),
    options.mustBeRefused,
  );
}

/** Voids a pending hold (its sender): the reservation is released, nothing moves. */
export function voidHold(ctx: OpsContext, protocol: Protocol, user: ChaosUser, holdId: bigint) {
  return money(ctx, 'void', protocol, user, moneyPolicy(ctx.config), (key, timeoutMs) =>
    ctx.client.call(protocol, TransferService, 'voidTransfer', { transferId: holdId, idempotencyKey: key }, { token: user.token, timeoutMs }),
  );
}

/**
 * A new user. Sign-up has no idempotency key: a retry after an answer that was lost finds the name
 * taken, which means the first attempt committed (and asked for the verification email).
 */
export async function signUp(ctx: OpsContext, protocol: Protocol, policy = retryPolicy(ctx.config)): Promise<IdentityOp & { password: string }> {
  const username = `chaos_${hex(6)}`;
  const email = `${username}@example.test`;
  const password = `pw-${hex(8)}`;
  const final: Final<unknown> = await withRetries('sign-up', protocol, policy, ctx.journal.record, (timeoutMs) =>
    ctx.client.call(protocol, UserService, 'createUser', { username, fullName: `Chaos ${username}`, email, password }, { timeoutMs }),
  );
  // (A taken email answers as a new one since issue 13, so the name is the only sign.)
  const committedEarlier = final.status === 'refused' && final.attempts > 1 && final.code === 'USERNAME_TAKEN';
  const op: IdentityOp = {
    kind: 'sign-up',
    protocol,
    username,
    email,
    outcome: committedEarlier ? 'acknowledged' : final.status,
    attempts: final.attempts,
    ...(final.status === 'refused' && !committedEarlier ? { refusal: final.code } : {}),
  };
  ctx.journal.identity.push(op);
  return { ...op, password };
}

/**
 * Step 1 of a login: the bank emails a code for a new pending session. A 429 is final. Answers the
 * journal's record with the login secret beside it (the journal never holds the secret).
 */
export async function logIn(
  ctx: OpsContext,
  protocol: Protocol,
  user: { username: string; email: string; password: string },
  policy = retryPolicy(ctx.config, { retryRateLimited: false }),
): Promise<IdentityOp & { loginSecret?: string }> {
  const final = await withRetries('login', protocol, policy, ctx.journal.record, (timeoutMs) =>
    ctx.client.call(protocol, AuthService, 'login', { username: user.username, password: user.password }, { timeoutMs }),
  );
  const op: IdentityOp = { kind: 'login', protocol, username: user.username, email: user.email, outcome: final.status, attempts: final.attempts };
  if (final.status === 'acknowledged') op.sessionId = final.value.sessionId;
  if (final.status === 'refused') op.refusal = final.code;
  ctx.journal.identity.push(op);
  return final.status === 'acknowledged' ? { ...op, loginSecret: final.value.loginSecret } : op;
}

function textOf(smtp: TestSmtpServer, predicate: (text: string, to: string[]) => boolean, timeoutMs: number): Promise<string> {
  return smtp.waitFor((list) => list.some((m) => predicate(m.text, m.to)), timeoutMs).then((list) => list.find((m) => predicate(m.text, m.to))?.text ?? '');
}

/**
 * A user of the storm, through the real flow before any fault: sign-up, the emailed link's values,
 * login with the login secret and the emailed token, an account funded with `funds` (none: 0).
 */
export async function setUpUser(ctx: OpsContext, smtp: TestSmtpServer, funds: bigint): Promise<ChaosUser> {
  const policy = retryPolicy(ctx.config);
  const user = await signUp(ctx, 'http', policy);
  if (user.outcome !== 'acknowledged') throw new Error(`set-up sign-up failed: ${user.refusal ?? user.outcome}`);
  const link = /(https?:\/\/\S+\/app\/verify-email\?\S+)/.exec(await textOf(smtp, (text, to) => to.includes(user.email) && text.includes('/app/verify-email?'), SET_UP_EMAIL_WAIT_MS))?.[1];
  if (!link) throw new Error(`no verification link for ${user.username}`);
  const url = new URL(link);
  await ctx.client.call('http', UserService, 'verifyEmail', { emailId: BigInt(url.searchParams.get('email_id') ?? '0'), secretCode: url.searchParams.get('secret_code') ?? '' }, { timeoutMs: 10_000 });
  const login = await logIn(ctx, 'http', user, policy);
  if (!login.sessionId || !login.loginSecret) throw new Error(`set-up login failed: ${login.refusal ?? login.outcome}`);
  const text = await textOf(smtp, (t) => t.includes(`Session: ${login.sessionId}`), SET_UP_EMAIL_WAIT_MS);
  const loginToken = /or with this login token:\s+(v4\.public\.\S+)/.exec(text)?.[1];
  if (!loginToken) throw new Error(`no login token for ${user.username}`);
  const tokens = await ctx.client.call('http', AuthService, 'confirmLogin', { sessionId: login.sessionId, loginSecret: login.loginSecret, token: loginToken }, { timeoutMs: 10_000 });
  const account = await ctx.client.call('http', AccountService, 'openAccount', { currency: CURRENCY }, { token: tokens.accessToken, timeoutMs: 10_000 });
  // The storm's money users turn the informational notifications off through the real API: the
  // suite proves that no requested email is lost under faults, and with them on every transfer,
  // hold and withdrawal of the storm asks for one (4,180 instead of ~450 emails in a short run),
  // more than one worker sends in the settling time. Notification delivery itself is covered by
  // the notifier's integration and e2e tests; the sign-ups and logins of the storm keep their emails.
  await ctx.client.call('http', UserService, 'updateUser', { username: user.username, notificationSettings: { moneyReceived: false, withdrawals: false, holds: false } }, { token: tokens.accessToken, timeoutMs: 10_000 });
  const chaosUser: ChaosUser = { username: user.username, email: user.email, password: user.password, token: tokens.accessToken, accountId: account.id };
  if (funds > 0n) {
    const funded = await deposit(ctx, 'http', chaosUser, funds, policy);
    if (funded.outcome !== 'acknowledged') throw new Error(`set-up deposit failed: ${funded.refusal ?? funded.outcome}`);
  }
  return chaosUser;
}
