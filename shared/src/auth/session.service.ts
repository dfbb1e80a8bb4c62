import { createHash, randomBytes, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { DomainError, EmailNotVerified, InvalidArgument, LoginNotApproved, Unauthenticated } from '../errors/domain-error.ts';
import type { Logger } from '../logging/logger.ts';
import { SEND_LOGIN_EMAIL, type LoginEmailPayload } from '../mail/email.schema.ts';
import type { OutboxPublisher } from '../outbox/outbox-publisher.ts';
import { errorSummary } from '../outbox/outbox-publisher.ts';
import { outboxRepository } from '../outbox/outbox.repository.ts';
import { noteLoginAddress } from '../notifications/login-address.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { userRepository } from '../users/user.repository.ts';
import type { User } from '../users/user.types.ts';
import type { Actor } from './actor.ts';
import type { PasswordHasher } from './password.ts';
import { clientAddressKey, type RateLimiter } from './rate-limiter.ts';
import type { SessionLiveness } from './session-liveness.ts';
import { sessionRepository } from './session.repository.ts';
import type { TokenMaker } from './token-maker.ts';
import type { LoginChallenge, Session } from './session.types.ts';

export type AuthTokens = {
  sessionId: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  user: User;
};

/**
 * Failed confirmations (a wrong code, a wrong login secret) allowed per login challenge. The one
 * that reaches it ends the challenge: nothing confirms or approves it any more, the emailed token
 * included (the code has 10^6 values).
 */
export const MAX_LOGIN_CODE_ATTEMPTS = 5;

/** Bytes of the login secret: 256 bits, sent as 43 base64url characters. */
const LOGIN_SECRET_BYTES = 32;
const LOGIN_SECRET_MAX_LENGTH = 128;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INVALID_CREDENTIALS = 'invalid username or password';

const codeHash = (sessionId: string, code: string) => createHash('sha256').update(`${sessionId}:${code}`).digest();
const secretHash = (secret: string) => createHash('sha256').update(secret).digest();

/** A short hash of the username a login named, for logs: attempts correlate without the text typed. */
export const usernameHash = (username: string): string => createHash('sha256').update(username.trim().toLowerCase()).digest('hex').slice(0, 16);

export type SessionServiceDeps = {
  pool: DatabasePool;
  passwords: PasswordHasher;
  tokens: TokenMaker;
  outbox: OutboxPublisher;
  rateLimiter: RateLimiter;
  /** Caps login emails per user (successful step 1s); without it they are not capped. */
  loginEmailLimiter?: RateLimiter;
  config: { ACCESS_TOKEN_TTL_SECONDS: number; REFRESH_TOKEN_TTL_SECONDS: number; LOGIN_TOKEN_TTL_SECONDS: number; SESSION_MAX_AGE_SECONDS: number };
  /**
   * The session-liveness cache and revocation channel. Without it every `authenticate` reads the
   * session row and revocations are only written to the database.
   */
  liveness?: SessionLiveness;
  logger?: Logger;
  /** The longest wait before a login's password check (LOGIN_DELAY_MAX_MS; default 2 s). */
  loginDelayMaxMs?: number;
  /** Waits before a login's password check (loginDelayMs); tests count the waits instead. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Clock (ms since the epoch) for the session expiry check; tests share it with `liveness`. */
  now?: () => number;
};

type ClientInfo = { clientIp?: string; userAgent?: string };

/**
 * Two-step login, token refresh, logout and access-token authentication.
 *
 * Throws InvalidArgument, Unauthenticated (bad credentials, bad/used/expired tokens or codes,
 * revoked sessions), EmailNotVerified, RateLimited, Unavailable (Redis down during login) and
 * DomainError NOT_FOUND (logout of a session that is not the caller's). Every method takes
 * UseCaseOptions last and throws the abort reason of an aborted signal (RequestCancelled unless
 * the edge chose another DomainError) before touching the database or Redis.
 */
export class SessionService {
  readonly #deps: SessionServiceDeps;

  constructor(deps: SessionServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Step 1: checks the password and emails a single-use login token + 6-digit code bound to a new
   * pending session, and answers the session id with a random login secret (256 bits) that only
   * this caller gets and only its hash is stored: whoever reads the email cannot finish the login
   * without it. Unknown user and wrong password get the same error after the same bcrypt work, and
   * are logged with a hash of the username and the client address.
   * No lockout by strangers: wrong passwords are refused past the limit per client address and per
   * username + address, so failures from other addresses never stop the owner's right password
   * from theirs; per username they only slow every attempt down (loginDelayMs). What only someone
   * who knew the password can count per user (wrong codes) still blocks. Login emails count per user.
   * @throws InvalidArgument, Unauthenticated, EmailNotVerified, RateLimited, Unavailable (Redis down)
   */
  async loginStart(input: { username: string; password: string } & ClientInfo, options: UseCaseOptions = {}): Promise<{ sessionId: string; loginSecret: string }> {
    const { pool, passwords, tokens, rateLimiter, config } = this.#deps;
    if (typeof input.username !== 'string' || input.username.length === 0) throw InvalidArgument.field('username', 'is required');
    if (typeof input.password !== 'string' || input.password.length === 0) throw InvalidArgument.field('password', 'is required');
    const username = input.username.trim().toLowerCase();
    const limitKeys = passwordLimitKeys(username, input);
    throwIfAborted(options.signal);
    // Wrong codes of this user's challenges (only someone who knew the password can make them).
    await rateLimiter.check([`user:${username}`]);
    // Counted before the bcrypt work, atomically: concurrent guesses cannot all slip past a check.
    await rateLimiter.consume(limitKeys);
    const delayMs = loginDelayMs(await this.#refundingOnThrow(limitKeys, () => rateLimiter.count(failuresKey(username))), rateLimiter.max, this.#deps.loginDelayMaxMs);
    if (delayMs > 0) await this.#refundingOnThrow(limitKeys, () => (this.#deps.sleep ?? sleep)(delayMs, options.signal));

    // Only a wrong password (or an unknown user) is a failed login. Anything else that ends the
    // attempt here (the database or the pool unavailable, a timeout) gives the attempt back, so an
    // outage answered with 503s does not lock the user, or everyone behind one address, out.
    const { found, ok } = await this.#refundingOnThrow(limitKeys, async () => {
      const found = username.length <= 64 ? await userRepository.findByUsername(pool, username) : null;
      const ok = found ? await passwords.verify(input.password, found.hashedPassword) : await passwords.verifyDummy(input.password);
      return { found, ok };
    });
    if (!found || !ok) {
      this.#deps.logger?.info({ event: 'login_failed', usernameHash: usernameHash(username), clientIp: input.clientIp ?? null, knownUser: found !== null }, 'login failed');
      await rateLimiter.add(failuresKey(username)).catch((error: unknown) => this.#deps.logger?.warn({ err: errorSummary(error) }, 'login failure count failed'));
      throw new Unauthenticated(INVALID_CREDENTIALS);
    }
    await this.#refund(limitKeys);
    await this.#rehashIfNeeded(found.user.username, input.password, found.hashedPassword);
    const { user } = found;
    if (!user.isEmailVerified) throw new EmailNotVerified();
    // Every successful step 1 emails the user: bound those emails too, so someone holding the
    // password cannot flood the inbox (or grind through codes) with endless new sessions.
    await this.#deps.loginEmailLimiter?.consume([`login-email:${user.username}`]);

    const sessionId = randomUUID();
    const loginSecret = randomBytes(LOGIN_SECRET_BYTES).toString('base64url');
    const code = randomInt(0, 1_000_000).toString().padStart(6, '0');
    const login = await tokens.issue('login', { username: user.username, role: user.role, sessionId, ttlSeconds: config.LOGIN_TOKEN_TTL_SECONDS });
    const payload: LoginEmailPayload = {
      to: user.email,
      username: user.username,
      fullName: user.fullName,
      sessionId,
      loginToken: login.token,
      code,
      expiresAt: login.claims.expiresAt.toISOString(),
    };
    const outboxId = await pool.transaction(async (tx) => {
      await sessionRepository.insertPending(tx, { id: sessionId, username: user.username, expiresAt: login.claims.expiresAt, ...clientInfo(input) });
      await sessionRepository.insertChallenge(tx, {
        id: randomUUID(),
        sessionId,
        tokenId: login.claims.tokenId,
        codeHash: codeHash(sessionId, code).toString('hex'),
        secretHash: secretHash(loginSecret).toString('hex'),
        expiresAt: login.claims.expiresAt,
      });
      return outboxRepository.insert(tx, { kind: SEND_LOGIN_EMAIL, payload });
    });
    await this.#deps.outbox.enqueueOutbox([outboxId]);
    return { sessionId, loginSecret };
  }

  /**
   * Approves a pending login with the token of its email (the emailed link's page calls it), so
   * the client holding the login secret may confirm with the secret alone. Hands out no tokens.
   * Approving twice is harmless; a challenge confirmed, expired or ended by too many failed
   * attempts cannot be approved.
   * @throws InvalidArgument, Unauthenticated
   */
  async approveLogin(input: { sessionId: string; token: string }, options: UseCaseOptions = {}): Promise<void> {
    const { pool, tokens } = this.#deps;
    const sessionId = checkSessionId(input.sessionId);
    if (typeof input.token !== 'string' || input.token.length === 0) throw InvalidArgument.field('token', 'is required: the login token of the emailed link');
    throwIfAborted(options.signal);
    const claims = await tokens.verify(input.token, 'login');
    if (claims.sessionId !== sessionId) throw new Unauthenticated('this login token belongs to another session');
    const error = await pool.transaction(async (tx) => {
      const live = await liveChallenge(tx, sessionId);
      if ('error' in live) return live.error;
      if (live.challenge.tokenId !== claims.tokenId) return 'invalid login token or code';
      await sessionRepository.approveChallenge(tx, live.challenge.id);
      return undefined;
    });
    if (error !== undefined) throw new Unauthenticated(error);
    this.#deps.logger?.info({ event: 'login_approved', sessionId }, 'login approved by its emailed link');
  }

  /**
   * Step 2: confirms a pending session and opens it. Needs the login secret of step 1's answer
   * (so only the client that gave the password gets tokens), together with the emailed token or
   * code, or alone once the emailed link approved the login (LoginNotApproved before: no attempt
   * counted, so the client may poll). A wrong code or secret counts against the challenge
   * (MAX_LOGIN_CODE_ATTEMPTS ends it); wrong codes also count against the login rate limit
   * (RateLimited once it is used up): per client address always, per user only with the right
   * login secret, so a stranger holding the emailed session id cannot lock the owner out.
   * @throws InvalidArgument, Unauthenticated, LoginNotApproved, RateLimited, Unavailable (Redis down)
   */
  async loginConfirm(
    input: { sessionId: string; loginSecret: string; token?: string; code?: string } & ClientInfo,
    options: UseCaseOptions = {},
  ): Promise<AuthTokens> {
    const { pool, tokens } = this.#deps;
    const sessionId = checkSessionId(input.sessionId);
    const { loginSecret } = input;
    if (typeof loginSecret !== 'string' || loginSecret.length === 0) throw InvalidArgument.field('login_secret', 'is required: the login_secret of the login answer');
    if (loginSecret.length > LOGIN_SECRET_MAX_LENGTH) throw InvalidArgument.field('login_secret', `must be at most ${LOGIN_SECRET_MAX_LENGTH} characters`);
    const hasToken = typeof input.token === 'string' && input.token.length > 0;
    const hasCode = typeof input.code === 'string' && input.code.length > 0;
    if (hasToken && hasCode) throw InvalidArgument.field('token', 'give at most one of token and code');
    throwIfAborted(options.signal);

    let loginTokenId: string | undefined;
    let limitKeys: string[] = [];
    if (hasToken) {
      const claims = await tokens.verify(input.token as string, 'login');
      if (claims.sessionId !== sessionId) throw new Unauthenticated('this login token belongs to another session');
      loginTokenId = claims.tokenId;
    } else if (hasCode) {
      // A code has 10^6 values and a fresh login gives 5 more guesses, so wrong codes use up the
      // same per-address budget as wrong passwords, and the per-user one only when the login
      // secret matches: the session id is in the email, and whoever reads it without the device's
      // secret must not burn the owner's budget and lock them out (their wrong secret still counts
      // against the challenge below). The signed token needs no limit, nor does the secret: 256
      // bits, and a client polls with it. Read outside the transaction (no lock held across the
      // Redis call); the transaction checks the secret again.
      const live = await liveChallenge(pool, sessionId);
      const owner = 'challenge' in live && secretMatches(live.challenge.secretHash, loginSecret);
      limitKeys = [...(owner ? [`user:${live.session.username}`] : []), ...addressKeys(input)];
      await this.#deps.rateLimiter.consume(limitKeys);
    }

    const outcome = await this.#refundingOnThrow(limitKeys, () => pool.transaction(async (tx) => {
      const live = await liveChallenge(tx, sessionId);
      if ('error' in live) return { error: live.error, guess: live.guess } as const;
      const { challenge, session } = live;
      // Committed (no throw inside the transaction) so failed attempts count.
      const failed = async (error: string) => {
        await sessionRepository.countChallengeAttempt(tx, challenge.id);
        return { error, guess: true } as const;
      };
      if (!secretMatches(challenge.secretHash, loginSecret)) return failed('invalid login secret');
      if (loginTokenId !== undefined) {
        if (challenge.tokenId !== loginTokenId) return failed('invalid login token or code');
      } else if (hasCode) {
        const expected = Buffer.from(challenge.codeHash, 'hex');
        const actual = /^\d{6}$/.test(input.code as string) ? codeHash(sessionId, input.code as string) : Buffer.alloc(expected.length);
        if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return failed('invalid login token or code');
      } else if (!challenge.approvedAt) {
        return { notApproved: true } as const;
      }
      const found = await userRepository.findByUsername(tx, session.username);
      if (!found) return { error: 'invalid login token or code' } as const;
      const issued = await this.#issuePair(found.user.username, found.user.role, sessionId, this.#sessionEnd(new Date()));
      await sessionRepository.markChallengeUsed(tx, challenge.id);
      await sessionRepository.activate(tx, sessionId, { refreshTokenId: issued.refreshTokenId, expiresAt: issued.tokens.refreshTokenExpiresAt, ...clientInfo(input) });
      // A login from an address the user has not used before: a security email, in this transaction.
      const notice = await noteLoginAddress(tx, { user: found.user, sessionId, ...clientInfo(input) });
      return { tokens: { ...issued.tokens, user: found.user }, outboxIds: notice === undefined ? [] : [notice] } as const;
    }));
    if ('tokens' in outcome && outcome.outboxIds) await this.#deps.outbox.enqueueOutbox(outcome.outboxIds);
    if (!('guess' in outcome) || !outcome.guess) await this.#refund(limitKeys);
    if ('notApproved' in outcome) throw new LoginNotApproved();
    if ('error' in outcome) {
      this.#deps.logger?.info({ event: 'login_confirm_failed', sessionId, clientIp: input.clientIp ?? null, reason: outcome.error }, 'login confirmation failed');
      throw new Unauthenticated(outcome.error);
    }
    return outcome.tokens;
  }

  /**
   * Rotates the refresh token. Presenting an already-rotated refresh token revokes the whole
   * session. No token outlives the session's absolute lifetime (SESSION_MAX_AGE_SECONDS).
   * @throws Unauthenticated
   */
  async refresh(input: { refreshToken: string } & ClientInfo, options: UseCaseOptions = {}): Promise<AuthTokens> {
    const claims = await this.#deps.tokens.verify(input.refreshToken, 'refresh');
    throwIfAborted(options.signal);
    const outcome = await this.#deps.pool.transaction(async (tx) => {
      const session = await sessionRepository.findById(tx, claims.sessionId, { forUpdate: true });
      if (!session || session.username !== claims.username) return { error: 'invalid refresh token' } as const;
      if (session.status !== 'active') return { error: 'this session is no longer active' } as const;
      const sessionEnd = this.#sessionEnd(session.activatedAt ?? session.createdAt);
      if (session.expiresAt.getTime() <= Date.now() || sessionEnd.getTime() <= Date.now()) {
        return { error: 'this session has expired' } as const;
      }
      if (session.refreshTokenId !== claims.tokenId) {
        await sessionRepository.revoke(tx, session.id, 'refresh token reuse');
        return { error: 'this refresh token was already used; the session is revoked', reuse: true } as const;
      }
      const found = await userRepository.findByUsername(tx, session.username);
      if (!found) return { error: 'invalid refresh token' } as const;
      const issued = await this.#issuePair(found.user.username, found.user.role, session.id, sessionEnd);
      await sessionRepository.rotateRefresh(tx, session.id, {
        refreshTokenId: issued.refreshTokenId,
        expiresAt: issued.tokens.refreshTokenExpiresAt,
        ...clientInfo(input),
      });
      return { tokens: { ...issued.tokens, user: found.user } } as const;
    });
    if ('error' in outcome) {
      if ('reuse' in outcome) {
        this.#deps.logger?.warn({ sessionId: claims.sessionId, username: claims.username }, 'refresh token reuse: session revoked');
        // After the commit, so no process can read the session as active again once told.
        await this.#deps.liveness?.revoked([claims.sessionId]);
      }
      throw new Unauthenticated(outcome.error);
    }
    return outcome.tokens;
  }

  /**
   * Revokes one of the caller's sessions (idempotent); every process refuses its tokens at once in
   * this process and within the bound of `authenticate` elsewhere.
   * @throws InvalidArgument, DomainError NOT_FOUND (not the caller's session)
   */
  async logout(actor: Actor, sessionId: string, options: UseCaseOptions = {}): Promise<void> {
    if (typeof sessionId !== 'string' || !UUID.test(sessionId)) throw InvalidArgument.field('session_id', 'must be a session id (UUID)');
    throwIfAborted(options.signal);
    const session = await sessionRepository.findById(this.#deps.pool, sessionId.toLowerCase());
    if (!session || session.username !== actor.username) throw new DomainError('NOT_FOUND', 'session not found');
    await sessionRepository.revoke(this.#deps.pool, session.id, 'logout');
    await this.#deps.liveness?.revoked([session.id]);
  }

  /**
   * Verifies an access token and that its session is still active, usually without a query, and
   * answers the actor with its user's role as the session read found it (never the token's claim):
   * a role changed in the database applies from the next read, so within SESSION_CACHE_TTL_MS,
   * at no extra query (the role comes in the session read itself).
   *
   * The token's signature is checked once per token (TokenMaker remembers verified access tokens
   * until they expire). The session row is read only when this process has not seen the session
   * active within SESSION_CACHE_TTL_MS (`liveness`). The bound on how long a dead session's tokens
   * keep working: a session revoked (logout, refresh-token reuse, password change) is refused at
   * once by the process that revoked it, by every other process as soon as the revocation
   * published on Redis reaches it, and in any case within SESSION_CACHE_TTL_MS of the revocation
   * (a process whose subscription is down reads every time); a session is never trusted past its
   * `expiresAt`. With SESSION_CACHE_TTL_MS=0 every call reads the session.
   * @throws Unauthenticated (invalid or expired token, session revoked, expired or unknown)
   */
  async authenticate(accessToken: string, options: UseCaseOptions = {}): Promise<Actor> {
    const claims = await this.#deps.tokens.verify(accessToken, 'access');
    throwIfAborted(options.signal);
    const { liveness } = this.#deps;
    const trustedRole = liveness?.trustedRole(claims.sessionId, claims.username);
    if (trustedRole) return { username: claims.username, role: trustedRole, sessionId: claims.sessionId };
    const ticket = liveness?.beginRead();
    const session = await sessionRepository.findForAuthentication(this.#deps.pool, claims.sessionId);
    const now = this.#deps.now?.() ?? Date.now();
    if (!session || session.status !== 'active' || session.username !== claims.username || session.expiresAt.getTime() <= now) {
      throw new Unauthenticated('this session is no longer active');
    }
    if (liveness && ticket) liveness.remember(session, ticket);
    return { username: claims.username, role: session.role, sessionId: claims.sessionId };
  }

  /**
   * After a successful password check, replaces a stored hash of an older version or a lower bcrypt
   * cost (PasswordHasher.needsRehash) with a new one of the same password. Best-effort: guarded by
   * the old hash (a concurrent password change wins), and a failure is logged, never the login's.
   */
  async #rehashIfNeeded(username: string, password: string, storedHash: string): Promise<void> {
    const { passwords, pool, logger } = this.#deps;
    if (!passwords.needsRehash(storedHash)) return;
    try {
      const replaced = await userRepository.rehashPassword(pool, username, storedHash, await passwords.hash(password));
      logger?.info({ event: 'password_rehashed', username, replaced }, replaced ? 'password hash upgraded' : 'password hash not upgraded: it changed meanwhile');
    } catch (error) {
      logger?.warn({ event: 'password_rehash_failed', username, err: errorSummary(error) }, 'password rehash failed');
    }
  }

  /** Only failed attempts use up the limit; a refund that fails just leaves one attempt counted. */
  async #refund(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#deps.rateLimiter.refund(keys).catch((error: unknown) => this.#deps.logger?.warn({ err: errorSummary(error) }, 'rate limiter refund failed'));
  }

  /**
   * Runs `work`; when it throws, gives back the attempt taken for `keys` before rethrowing. A throw
   * is never a verdict on the credentials (those are answers, not errors): it is the database, the
   * pool or Redis failing, and a failure of ours must not count as a failed login.
   */
  async #refundingOnThrow<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await this.#refund(keys);
      throw error;
    }
  }

  /** Refreshing slides a session along, but never past SESSION_MAX_AGE_SECONDS after it opened. */
  #sessionEnd(activatedAt: Date): Date {
    return new Date(activatedAt.getTime() + this.#deps.config.SESSION_MAX_AGE_SECONDS * 1_000);
  }

  async #issuePair(username: string, role: User['role'], sessionId: string, sessionEnd: Date) {
    const { tokens, config } = this.#deps;
    const left = Math.max(1, Math.floor((sessionEnd.getTime() - Date.now()) / 1_000));
    const access = await tokens.issue('access', { username, role, sessionId, ttlSeconds: Math.min(config.ACCESS_TOKEN_TTL_SECONDS, left) });
    const refresh = await tokens.issue('refresh', { username, role, sessionId, ttlSeconds: Math.min(config.REFRESH_TOKEN_TTL_SECONDS, left) });
    return {
      refreshTokenId: refresh.claims.tokenId,
      tokens: {
        sessionId,
        accessToken: access.token,
        accessTokenExpiresAt: access.claims.expiresAt,
        refreshToken: refresh.token,
        refreshTokenExpiresAt: refresh.claims.expiresAt,
      },
    };
  }
}

function checkSessionId(sessionId: unknown): string {
  if (typeof sessionId !== 'string' || !UUID.test(sessionId)) throw InvalidArgument.field('session_id', 'must be a session id (UUID)');
  return sessionId.toLowerCase();
}

function secretMatches(storedHex: string | null, secret: string): boolean {
  if (storedHex === null) return false;
  const expected = Buffer.from(storedHex, 'hex');
  const actual = secretHash(secret);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * The challenge of a pending session, locked (in a transaction; on the pool only for the statement),
 * when it can still be confirmed or approved: not used, not expired, not ended by too many failed
 * attempts. `guess`: the refusal leaves a wrong code counted against the rate limit.
 */
async function liveChallenge(
  db: CommonQueryMethods,
  sessionId: string,
): Promise<{ challenge: LoginChallenge; session: Session } | { error: string; guess: boolean }> {
  const challenge = await sessionRepository.findChallengeForUpdate(db, sessionId);
  const session = challenge ? await sessionRepository.findById(db, sessionId, { forUpdate: true }) : null;
  if (!challenge || !session) return { error: 'invalid login token or code', guess: true };
  if (challenge.usedAt || session.status !== 'pending') return { error: 'this login was already confirmed or cancelled', guess: false };
  if (challenge.expiresAt.getTime() <= Date.now()) return { error: 'this login has expired; log in again', guess: false };
  if (challenge.attempts >= MAX_LOGIN_CODE_ATTEMPTS) return { error: 'too many failed attempts; log in again', guess: true };
  return { challenge, session };
}

/**
 * The hard limits on wrong passwords: per client address (guessing from one place) and per
 * username + address. Without an address (an in-process caller) per username, as before.
 */
function passwordLimitKeys(username: string, input: ClientInfo): string[] {
  if (!input.clientIp) return [`user:${username}`];
  const address = clientAddressKey(input.clientIp);
  return [`ip:${address}`, `user-ip:${username}:${address}`];
}

/** Waits `ms`; a cancelled call stops waiting with its abort reason. */
async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (error) {
    throwIfAborted(signal);
    throw error;
  }
}

/** Wrong passwords for a username from every address in the window: they slow, never block. */
const failuresKey = (username: string) => `user-failures:${username}`;

/** The longest a login waits for its username's failures by default (2 s; LOGIN_DELAY_MAX_MS). */
export const LOGIN_DELAY_MAX_MS = 2_000;

/**
 * How long a login for a username waits before its password check, given that username's wrong
 * passwords in the window from every address: nothing up to the limit, then 100 ms doubling per
 * failure, at most `ceilingMs` (the LOGIN_DELAY_MAX_MS setting). A spray from many addresses slows
 * each attempt (the owner's too) but cannot refuse the owner; the per-address limits bound how
 * many guesses it gets.
 */
export function loginDelayMs(failures: number, max: number, ceilingMs: number = LOGIN_DELAY_MAX_MS): number {
  if (failures < max) return 0;
  return Math.min(100 * 2 ** Math.min(failures - max, 16), ceilingMs);
}

function addressKeys(input: ClientInfo): string[] {
  return input.clientIp ? [`ip:${clientAddressKey(input.clientIp)}`] : [];
}

function clientInfo(input: ClientInfo): ClientInfo {
  return { clientIp: input.clientIp, userAgent: input.userAgent };
}
