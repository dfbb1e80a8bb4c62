import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { Unauthenticated } from '../errors/domain-error.ts';
import { generatePasetoKeyPair, parsePublicKeyList, TokenMaker } from './token-maker.ts';

const subject = { username: 'alice', role: 'depositor' as const, sessionId: '2f1d8a52-6f0c-4a53-9a39-2a8d8d0b6a11', ttlSeconds: 60 };

describe('TokenMaker (PASETO v4.public)', () => {
  it('issues a token whose claims verify for its own purpose', async () => {
    const keys = await generatePasetoKeyPair();
    const maker = await TokenMaker.create({ secretKey: keys.secretKey });
    const issued = await maker.issue('access', subject);
    expect(issued.token.startsWith('v4.public.')).toBe(true);
    const claims = await maker.verify(issued.token, 'access');
    expect(claims).toEqual(issued.claims);
    expect(claims.expiresAt.getTime() - claims.issuedAt.getTime()).toBe(60_000);
    expect(maker.keyId).toBe(keys.keyId);
  });

  it('refuses a token of another purpose (access, refresh and login are not interchangeable)', async () => {
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
    for (const [issuedAs, checkedAs] of [
      ['access', 'refresh'],
      ['refresh', 'access'],
      ['login', 'access'],
      ['access', 'login'],
    ] as const) {
      const { token } = await maker.issue(issuedAs, subject);
      await expect(maker.verify(token, checkedAs)).rejects.toBeInstanceOf(Unauthenticated);
    }
  });

  it('refuses a tampered token (payload, signature or footer changed)', async () => {
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
    const { token } = await maker.issue('access', subject);
    const [v, p, body, footer] = token.split('.') as [string, string, string, string];
    const payload = Buffer.from(body, 'base64url');
    const flipped = Buffer.from(payload);
    flipped[5] = (flipped[5] as number) ^ 0x01;
    const signatureFlipped = Buffer.from(payload);
    signatureFlipped[payload.length - 1] = (signatureFlipped[payload.length - 1] as number) ^ 0x01;
    const forgedClaims = Buffer.concat([Buffer.from(payload.subarray(0, payload.length - 64).toString().replace('depositor', 'banker')), payload.subarray(-64)]);
    for (const bad of [
      `${v}.${p}.${flipped.toString('base64url')}.${footer}`,
      `${v}.${p}.${signatureFlipped.toString('base64url')}.${footer}`,
      `${v}.${p}.${forgedClaims.toString('base64url')}.${footer}`,
      `${v}.${p}.${body}.${Buffer.from('{"kid":"other"}').toString('base64url')}`,
      `${v}.${p}.${body}`,
      'not-a-token',
    ]) {
      await expect(maker.verify(bad, 'access')).rejects.toBeInstanceOf(Unauthenticated);
    }
  });

  it('refuses an expired token', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey, now: () => now });
    const { token } = await maker.issue('access', { ...subject, ttlSeconds: 30 });
    now = new Date('2030-01-01T00:00:29Z');
    await expect(maker.verify(token, 'access')).resolves.toMatchObject({ username: 'alice' });
    now = new Date('2030-01-01T00:00:31Z');
    await expect(maker.verify(token, 'access')).rejects.toThrow('token has expired');
  });

  it('refuses a token signed by a key it does not accept', async () => {
    const a = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
    const b = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
    const { token } = await a.issue('access', subject);
    await expect(b.verify(token, 'access')).rejects.toThrow('token signed by an unknown key');
  });

  it('key rotation: old tokens stay valid while the old public key is listed, new tokens use the new key', async () => {
    const oldKeys = await generatePasetoKeyPair();
    const newKeys = await generatePasetoKeyPair();
    const before = await TokenMaker.create({ secretKey: oldKeys.secretKey });
    const oldToken = (await before.issue('refresh', subject)).token;

    const after = await TokenMaker.create({ secretKey: newKeys.secretKey, publicKeys: `${oldKeys.publicKey}` });
    expect(after.keyId).toBe(newKeys.keyId);
    expect(after.acceptedKeyIds.sort()).toEqual([oldKeys.keyId, newKeys.keyId].sort());
    await expect(after.verify(oldToken, 'refresh')).resolves.toMatchObject({ username: 'alice', purpose: 'refresh' });
    const newToken = (await after.issue('access', subject)).token;
    await expect(after.verify(newToken, 'access')).resolves.toMatchObject({ username: 'alice' });

    // A verify-only process (public keys only) accepts both during the overlap ...
    const verifier = await TokenMaker.create({ publicKeys: [oldKeys.publicKey, newKeys.publicKey] });
    await expect(verifier.verify(oldToken, 'refresh')).resolves.toMatchObject({ username: 'alice' });
    await expect(verifier.issue('access', subject)).rejects.toThrow('cannot issue');
    // ... and once the old key is dropped, old tokens stop working.
    const dropped = await TokenMaker.create({ secretKey: newKeys.secretKey });
    await expect(dropped.verify(oldToken, 'refresh')).rejects.toBeInstanceOf(Unauthenticated);
  });

  it('accepts PEM keys (PKCS#8 secret, SPKI public, one-line with \\n escapes)', async () => {
    const pair = generateKeyPairSync('ed25519');
    const secretPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const signer = await TokenMaker.create({ secretKey: secretPem.replace(/\n/g, '\\n') });
    const { token } = await signer.issue('login', subject);
    const other = await generatePasetoKeyPair();
    const verifier = await TokenMaker.create({ publicKeys: `${other.publicKey},\n${publicPem}` });
    await expect(verifier.verify(token, 'login')).resolves.toMatchObject({ purpose: 'login', sessionId: subject.sessionId });
  });

  it('checks the signature of a repeated access token once: later presentations cost no signature check', async () => {
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey });
    const { token, claims } = await maker.issue('access', subject);
    for (let i = 0; i < 50; i += 1) await expect(maker.verify(token, 'access')).resolves.toEqual(claims);
    expect(maker.signatureChecks).toBe(1);
    // Refresh and login tokens are used once each: they are checked every time, never remembered.
    const refresh = await maker.issue('refresh', subject);
    await maker.verify(refresh.token, 'refresh');
    await maker.verify(refresh.token, 'refresh');
    expect(maker.signatureChecks).toBe(3);
  });

  it('a remembered access token is still refused as another purpose and once it expires', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey, now: () => now });
    const { token } = await maker.issue('access', { ...subject, ttlSeconds: 30 });
    await expect(maker.verify(token, 'access')).resolves.toMatchObject({ username: 'alice' });
    await expect(maker.verify(token, 'refresh')).rejects.toBeInstanceOf(Unauthenticated);
    now = new Date('2030-01-01T00:00:30Z');
    await expect(maker.verify(token, 'access')).resolves.toMatchObject({ username: 'alice' });
    now = new Date('2030-01-01T00:00:31Z');
    await expect(maker.verify(token, 'access')).rejects.toThrow('token has expired');
    await expect(maker.verify(token, 'access')).rejects.toThrow('token has expired');
  });

  it('remembers at most verifiedCacheSize tokens, forgetting the oldest first; 0 remembers none', async () => {
    const { secretKey } = await generatePasetoKeyPair();
    const maker = await TokenMaker.create({ secretKey, verifiedCacheSize: 2 });
    const [a, b, c] = await Promise.all([maker.issue('access', subject), maker.issue('access', subject), maker.issue('access', subject)]);
    for (const issued of [a, b, c]) await maker.verify(issued!.token, 'access');
    expect(maker.signatureChecks).toBe(3);
    await maker.verify(c!.token, 'access');
    await maker.verify(b!.token, 'access');
    expect(maker.signatureChecks).toBe(3);
    await maker.verify(a!.token, 'access');
    expect(maker.signatureChecks).toBe(4);

    const uncached = await TokenMaker.create({ secretKey, verifiedCacheSize: 0 });
    for (let i = 0; i < 3; i += 1) await uncached.verify(a!.token, 'access');
    expect(uncached.signatureChecks).toBe(3);
  });

  it('issues its audience and refuses a token of another audience, or of none, signed by the same key', async () => {
    const { secretKey } = await generatePasetoKeyPair();
    const api = await TokenMaker.create({ secretKey, audience: 'bank-api' });
    const elsewhere = await TokenMaker.create({ secretKey, audience: 'bank-reports' });
    const ours = await api.issue('access', subject);
    const payload = JSON.parse(Buffer.from(ours.token.split('.')[2]!, 'base64url').subarray(0, -64).toString()) as Record<string, unknown>;
    expect(payload.aud).toBe('bank-api');
    await expect(api.verify(ours.token, 'access')).resolves.toMatchObject({ username: 'alice' });
    await expect(api.verify((await elsewhere.issue('access', subject)).token, 'access')).rejects.toMatchObject({ cause: expect.objectContaining({ message: 'Unexpected "aud" claim' }) });
    await expect(elsewhere.verify(ours.token, 'refresh')).rejects.toBeInstanceOf(Unauthenticated);
    // A token without any aud, signed by the same key (as tokens issued before the claim existed).
    const { pasetoV4, secretKeyFromPaserk } = await import('./paseto-v4.ts');
    const kid = JSON.parse(Buffer.from(ours.token.split('.')[3]!, 'base64url').toString()) as { kid: string };
    const unaddressed = await pasetoV4.Sign(
      secretKeyFromPaserk(secretKey),
      { iss: 'bank', purpose: 'access', sub: 'alice', role: 'depositor', sid: subject.sessionId, jti: '9d3c1c55-4a47-4a9c-8a43-1f0f3e7f2c10' },
      { expiresIn: 60, footer: new TextEncoder().encode(JSON.stringify(kid)), implicitAssertion: new TextEncoder().encode('bank-token-purpose:access') },
    );
    await expect(api.verify(unaddressed, 'access')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', cause: expect.objectContaining({ message: expect.stringContaining('"aud"') }) });
  });

  it('refuses a token whose lifetime exceeds its purpose\'s TTL, though its signature holds (a ten-year token)', async () => {
    const maker = await TokenMaker.create({ secretKey: (await generatePasetoKeyPair()).secretKey, maxLifetimeSeconds: { access: 900, refresh: 86_400, login: 600 } });
    const tenYears = await maker.issue('access', { ...subject, ttlSeconds: 10 * 365 * 86_400 });
    await expect(maker.verify(tenYears.token, 'access')).rejects.toBeInstanceOf(Unauthenticated);
    await expect(maker.verify((await maker.issue('access', { ...subject, ttlSeconds: 901 })).token, 'access')).rejects.toBeInstanceOf(Unauthenticated);
    await expect(maker.verify((await maker.issue('access', { ...subject, ttlSeconds: 900 })).token, 'access')).resolves.toMatchObject({ purpose: 'access' });
    await expect(maker.verify((await maker.issue('login', { ...subject, ttlSeconds: 601 })).token, 'login')).rejects.toBeInstanceOf(Unauthenticated);
    await expect(maker.verify((await maker.issue('refresh', { ...subject, ttlSeconds: 86_400 })).token, 'refresh')).resolves.toMatchObject({ purpose: 'refresh' });
    await expect(maker.verify((await maker.issue('refresh', { ...subject, ttlSeconds: 86_401 })).token, 'refresh')).rejects.toBeInstanceOf(Unauthenticated);
  });

  it('takes the audience and each purpose\'s cap from the configuration', async () => {
    const { secretKey } = await generatePasetoKeyPair();
    const config = { PASETO_SECRET_KEY: secretKey, TOKEN_AUDIENCE: 'bank-staging', ACCESS_TOKEN_TTL_SECONDS: 60, REFRESH_TOKEN_TTL_SECONDS: 120, LOGIN_TOKEN_TTL_SECONDS: 30 };
    const maker = await TokenMaker.fromConfig(config);
    expect(maker.audience).toBe('bank-staging');
    await expect(maker.verify((await maker.issue('access', { ...subject, ttlSeconds: 61 })).token, 'access')).rejects.toBeInstanceOf(Unauthenticated);
    await expect(maker.verify((await maker.issue('login', { ...subject, ttlSeconds: 30 })).token, 'login')).resolves.toMatchObject({ purpose: 'login' });
  });

  it('parses PASETO_PUBLIC_KEYS lists separated by commas or whitespace', () => {
    expect(parsePublicKeyList('k4.public.a, k4.public.b\nk4.public.c')).toEqual(['k4.public.a', 'k4.public.b', 'k4.public.c']);
    expect(parsePublicKeyList(undefined)).toEqual([]);
  });

  it('fails clearly without any key', async () => {
    await expect(TokenMaker.create({})).rejects.toThrow('PASETO keys missing');
    await expect(TokenMaker.create({ secretKey: 'nonsense' })).rejects.toThrow('PASETO_SECRET_KEY must be');
  });
});
