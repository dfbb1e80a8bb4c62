import { describe, expect, it } from '@jest/globals';
import { CLEARED_REFRESH_COOKIE, readCookie, refreshCookie } from './token-cookie.ts';

describe('readCookie', () => {
  it('finds the named cookie among others, by its exact name', () => {
    expect(readCookie('a=1; bank_refresh=v4.public.x; b=2', 'bank_refresh')).toBe('v4.public.x');
    expect(readCookie('xbank_refresh=1; bank_refresh_old=2', 'bank_refresh')).toBeUndefined();
  });

  it('treats a missing header, a missing cookie and an empty value alike', () => {
    expect(readCookie(undefined, 'bank_refresh')).toBeUndefined();
    expect(readCookie('a=1', 'bank_refresh')).toBeUndefined();
    expect(readCookie('bank_refresh=', 'bank_refresh')).toBeUndefined();
  });
});

describe('refreshCookie', () => {
  it('lives until the token expires, HttpOnly, Secure, SameSite=Strict, on /v1/tokens only', () => {
    expect(refreshCookie('v4.public.x', 1_000_600, 1_000_000_000)).toBe('bank_refresh=v4.public.x; Max-Age=600; HttpOnly; Secure; SameSite=Strict; Path=/v1/tokens');
    expect(CLEARED_REFRESH_COOKIE).toBe('bank_refresh=; Max-Age=0; HttpOnly; Secure; SameSite=Strict; Path=/v1/tokens');
  });
});
