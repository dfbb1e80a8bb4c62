// Refresh tokens in a cookie, for the web app (issue 15): the browser keeps the refresh token
// where no script can read it, and the app keeps only the short-lived access token, in memory.
//
//   ConfirmLogin, RefreshToken with `Token-Delivery: cookie`: the answer sets `bank_refresh`
//     (HttpOnly; Secure; SameSite=Strict; Path=/v1/tokens) and its JSON carries no refresh token.
//   RefreshToken with no refresh_token in the body: the token comes from that cookie, and the
//     answer goes back the same way. Only with a JSON content type, so a plain HTML form
//     (urlencoded, multipart, text/plain: the only kinds a cross-site page can send without a
//     CORS preflight) never reaches the cookie.
//   Logout: the answer clears the cookie (harmless for clients that never had one).
// Which method does which is the proto's `(bank.v1.refresh_token_cookie)` option (SET, READ_AND_SET,
// CLEAR), which the OpenAPI document declares as well.
//
// CSRF has nothing to ride on: the cookie is SameSite=Strict (a request started by another site
// carries no cookie at all), it is sent only to /v1/tokens/*, only the refresh route reads it, that
// route needs a JSON content type, and what it answers (an access token) goes into the body of a
// response that a cross-origin page cannot read (CORS never allows credentials). Every other route
// authenticates with `Authorization: Bearer`, which a browser never attaches by itself.
// Every JSON client that does not ask for cookies sees the API exactly as before.
import type { Context } from 'koa';
import { RefreshTokenCookie } from '@bank/proto/bank/v1/options_pb';
import { REFRESH_COOKIE, REFRESH_COOKIE_PATH, TOKEN_DELIVERY_HEADER } from '@bank/edge/http/refresh-token-cookie';
import { UnsupportedMediaType } from '@bank/shared/errors/domain-error';

const ATTRIBUTES = `HttpOnly; Secure; SameSite=Strict; Path=${REFRESH_COOKIE_PATH}`;

type TokenMessage = { refreshToken: string; refreshTokenExpiresAt?: { seconds: bigint } | undefined };

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** The Set-Cookie value that stores `token` until `expiresAt` (seconds since the epoch). */
export function refreshCookie(token: string, expiresAtSeconds: number, nowMs = Date.now()): string {
  const maxAge = Math.max(0, Math.floor(expiresAtSeconds - nowMs / 1_000));
  return `${REFRESH_COOKIE}=${token}; Max-Age=${maxAge}; ${ATTRIBUTES}`;
}

/** The Set-Cookie value that removes the cookie. */
export const CLEARED_REFRESH_COOKIE = `${REFRESH_COOKIE}=; Max-Age=0; ${ATTRIBUTES}`;

/** What the gateway asks of the cookie rules around one call of a route. */
export type TokenCookieRule = {
  /** Fills the request from the cookie where the rules say so (after decoding). */
  request(message: unknown): unknown;
  /** Sets or clears the cookie and takes the refresh token out of the answer. */
  answered(message: unknown): void;
  /** The call failed with this HTTP status. */
  failed(status: number): void;
};

/**
 * The cookie rule of one HTTP call, or undefined for the routes it has nothing to do with. Its
 * `request` throws UnsupportedMediaType for a refresh from the cookie without a JSON content type.
 */
export function tokenCookieRule(mode: RefreshTokenCookie, ctx: Context): TokenCookieRule | undefined {
  if (mode === RefreshTokenCookie.UNSPECIFIED) return undefined;
  const asked = (ctx.get(TOKEN_DELIVERY_HEADER) || '').trim().toLowerCase() === 'cookie';
  const deliver = (message: unknown) => {
    const tokens = message as TokenMessage;
    if (!tokens.refreshToken) return;
    ctx.append('Set-Cookie', refreshCookie(tokens.refreshToken, Number(tokens.refreshTokenExpiresAt?.seconds ?? 0n)));
    tokens.refreshToken = '';
  };
  switch (mode) {
    case RefreshTokenCookie.SET:
      if (!asked) return undefined;
      return { request: (m) => m, answered: deliver, failed: () => undefined };
    case RefreshTokenCookie.READ_AND_SET: {
      let fromCookie = false;
      return {
        request: (m) => {
          const request = m as TokenMessage;
          if (request.refreshToken) return request;
          const cookie = readCookie(ctx.get('cookie') || undefined, REFRESH_COOKIE);
          if (cookie === undefined) return request;
          const type = (ctx.get('content-type') || '').split(';')[0]?.trim().toLowerCase() ?? '';
          if (type !== 'application/json') throw new UnsupportedMediaType(type || '(none)');
          fromCookie = true;
          request.refreshToken = cookie;
          return request;
        },
        answered: (m) => {
          if (asked || fromCookie) deliver(m);
        },
        // A cookie the server refused (used, expired, revoked) is of no more use: drop it.
        failed: (status) => {
          if (fromCookie && status === 401) ctx.append('Set-Cookie', CLEARED_REFRESH_COOKIE);
        },
      };
    }
    case RefreshTokenCookie.CLEAR:
      return { request: (m) => m, answered: () => ctx.append('Set-Cookie', CLEARED_REFRESH_COOKIE), failed: () => undefined };
    default:
      return undefined;
  }
}
