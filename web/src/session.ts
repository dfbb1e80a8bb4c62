// The signed-in session: the access token lives in this module's memory only (never in storage);
// the refresh token is the HttpOnly cookie `bank_refresh` that the API sets when asked with
// `Token-Delivery: cookie`, which no script here can read. A reload restores the session by one
// refresh from that cookie; the access token is refreshed a minute before it expires.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { BankRestClient, RestError } from '@bank/proto/bank/v1/rest_client';
import type { AuthTokens } from '@bank/proto/bank/v1/auth_service_pb';
import type { User } from '@bank/proto/bank/v1/types_pb';

export type Session = { sessionId: string; user: User; accessToken: string; expiresAt: number };

/** Asks the API for the refresh token as a cookie (ConfirmLogin, RefreshToken). */
export const COOKIE_DELIVERY = { 'token-delivery': 'cookie' } as const;

/** How long before the access token expires the app trades it for a new one. */
export const REFRESH_BEFORE_EXPIRY_MS = 60_000;

/** The client without a token: sign-up, login, the emailed links' calls. Same origin, so the cookie rides along. */
export const publicClient = new BankRestClient({ baseUrl: window.location.origin });

type Listener = () => void;
let current: Session | null = null;
let restoring: Promise<Session | null> | null = null;
let restored = false;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();

function set(session: Session | null): void {
  current = session;
  clearTimeout(timer);
  timer = undefined;
  if (session) {
    const lifetime = session.expiresAt - Date.now();
    // A very short-lived token (tests) is refreshed at half its life.
    const margin = Math.min(REFRESH_BEFORE_EXPIRY_MS, lifetime / 2);
    timer = setTimeout(() => void refreshNow().catch(() => undefined), Math.max(0, lifetime - margin));
  }
  for (const listener of listeners) listener();
}

function fromTokens(tokens: AuthTokens): Session {
  if (!tokens.user || !tokens.accessTokenExpiresAt) throw new Error('the login answer has no user or expiry');
  return { sessionId: tokens.sessionId, user: tokens.user, accessToken: tokens.accessToken, expiresAt: timestampDate(tokens.accessTokenExpiresAt).getTime() };
}

export const session = {
  get(): Session | null {
    return current;
  },
  /** Whether the first restore from the cookie has finished (before that, nobody knows who is signed in). */
  ready(): boolean {
    return restored;
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /** After ConfirmLogin with cookie delivery. */
  signedIn(tokens: AuthTokens): void {
    restored = true;
    set(fromTokens(tokens));
  },
  signedOut(): void {
    restored = true;
    set(null);
  },
};

let refreshing: Promise<Session | null> | null = null;

/**
 * Runs `work` while holding a lock every tab of this origin shares (Web Locks), so two tabs never
 * present the same refresh cookie at once (the second would look like a stolen token's reuse and
 * end the session); the tab that waits sends the cookie the first one's answer rotated.
 */
function oneTabAtATime<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  return locks ? (locks.request('bank_refresh', work) as Promise<unknown> as Promise<T>) : work();
}

/**
 * Trades the cookie for a new access token (and a rotated cookie). One at a time: a second caller
 * shares the first one's answer, since presenting the same refresh token twice revokes the session.
 */
export function refreshNow(): Promise<Session | null> {
  refreshing ??= oneTabAtATime(() => publicClient.auth.refreshToken({}, { headers: COOKIE_DELIVERY }))
    .then((tokens) => {
      const next = fromTokens(tokens);
      restored = true;
      set(next);
      return next;
    })
    .catch((error: unknown) => {
      if (error instanceof RestError && error.status === 401) {
        session.signedOut();
        return null;
      }
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Once per page load: the session the cookie still holds, if any. */
export function restoreSession(): Promise<Session | null> {
  restoring ??= refreshNow().catch(() => {
    session.signedOut();
    return null;
  });
  return restoring;
}

/**
 * The client for the signed-in user's calls. A call refused as unauthenticated (the token expired
 * while the tab slept) refreshes once and is tried again with the new token.
 */
export async function withApi<T>(call: (api: BankRestClient) => Promise<T>): Promise<T> {
  const now = current;
  if (!now) throw new RestError(401, { code: 'UNAUTHENTICATED', detail: 'You are not signed in.' });
  try {
    return await call(publicClient.withAccessToken(now.accessToken));
  } catch (error) {
    if (!(error instanceof RestError) || error.status !== 401) throw error;
    const next = await refreshNow();
    if (!next) throw error;
    return call(publicClient.withAccessToken(next.accessToken));
  }
}

export async function logOut(): Promise<void> {
  const now = current;
  if (now) {
    // The answer clears the cookie; the session ends on the server even if this tab goes away.
    await withApi((api) => api.auth.logout({ sessionId: now.sessionId })).catch(() => undefined);
  }
  session.signedOut();
}
