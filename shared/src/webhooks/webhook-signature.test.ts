import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { newSigningSecret, signatureHeader, verifySignature } from './webhook-signature.ts';

describe('webhook signatures', () => {
  const secret = newSigningSecret();
  const body = '{"id":"e1","type":"transfer.posted","createdAt":"2026-12-01T00:00:00.000Z","data":{}}';

  it('signs <t>.<raw body> with HMAC-SHA256 keyed with the secret as returned', () => {
    const header = signatureHeader(secret, 1_764_547_200, body);
    const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`1764547200.${body}`).digest('hex');
    expect(header).toBe(`t=1764547200,v1=${expected}`);
  });

  it('verifies its own signature, and refuses another body, another secret or an old timestamp', () => {
    const now = 1_764_547_200;
    const header = signatureHeader(secret, now, body);
    expect(verifySignature(secret, header, body, { nowSeconds: now + 10 })).toBe(true);
    expect(verifySignature(secret, header, `${body} `, { nowSeconds: now })).toBe(false);
    expect(verifySignature(newSigningSecret(), header, body, { nowSeconds: now })).toBe(false);
    expect(verifySignature(secret, header, body, { nowSeconds: now + 301 })).toBe(false);
    expect(verifySignature(secret, 'v1=abc', body, { nowSeconds: now })).toBe(false);
  });

  it('makes a new 256-bit secret each time', () => {
    expect(newSigningSecret()).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(newSigningSecret()).not.toBe(newSigningSecret());
  });
});
