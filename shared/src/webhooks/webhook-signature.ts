import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The header every delivery carries: `t=<unix seconds>,v1=<hex HMAC-SHA256>` (Stripe's scheme). */
export const SIGNATURE_HEADER = 'Bank-Signature';
/** The event's id, the same on every attempt: receivers drop the ones they have seen. */
export const EVENT_ID_HEADER = 'Bank-Event-Id';

/** A new signing secret: `whsec_` and 32 random bytes in base64url. The HMAC key is this whole string, as returned. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The v1 signature: hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, over `<t>.<raw body>`. */
export function signatureV1(secret: string, timestampSeconds: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(rawBody).digest('hex');
}

/** The Bank-Signature header value for a body sent at `timestampSeconds`. */
export function signatureHeader(secret: string, timestampSeconds: number, rawBody: string | Buffer): string {
  return `t=${timestampSeconds},v1=${signatureV1(secret, timestampSeconds, rawBody)}`;
}

/**
 * What a receiver does (the README shows the same): true when the header carries a v1 signature
 * of this exact body made with `secret`, at most `toleranceSeconds` from `nowSeconds`.
 */
export function verifySignature(secret: string, header: string, rawBody: string | Buffer, options: { nowSeconds?: number; toleranceSeconds?: number } = {}): boolean {
  const parts = header.split(',').map((part) => part.trim().split('=', 2) as [string, string | undefined]);
  const t = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isInteger(t)) return false;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signatureV1(secret, t, rawBody), 'hex');
  return parts.some(([key, value]) => key === 'v1' && value !== undefined && /^[0-9a-f]{64}$/.test(value) && timingSafeEqual(Buffer.from(value, 'hex'), expected));
}
