import { pbkdf2 } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { PublicProtocol } from 'paseto';
import {
  ExportPublicKeyFactory,
  ExportSecretKeyFactory,
  GenerateKeyPairFactory,
  ImportPublicKeyFactory,
  SignFactory,
  VerifyFactory,
} from 'paseto/v4/public';
import { pasetoV4, publicKeyFromPaserk, secretKeyFromPaserk } from './paseto-v4.ts';

// paseto's own WebCrypto implementation: the reference these tests hold ours to.
const stock = new PublicProtocol(GenerateKeyPairFactory, SignFactory, VerifyFactory, ImportPublicKeyFactory, ExportPublicKeyFactory, ExportSecretKeyFactory);

const encoder = new TextEncoder();
const implicitAssertion = encoder.encode('bank-token-purpose:access');
const footer = encoder.encode('{"kid":"test"}');
const claims = { iss: 'bank', sub: 'alice', purpose: 'access' };

async function keyPair() {
  const pair = await stock.GenerateKeyPair({ extractable: true });
  const secretPaserk = await stock.ExportSecretKey(pair.secretKey);
  const publicPaserk = await stock.ExportPublicKey(pair.publicKey);
  return { stock: pair, node: { secretKey: secretKeyFromPaserk(secretPaserk), publicKey: publicKeyFromPaserk(publicPaserk) }, publicPaserk };
}

/** What each implementation says about a token: its claims, or the name of the error it threw. */
async function outcomes(token: string, keys: Awaited<ReturnType<typeof keyPair>>, options: Parameters<typeof stock.Verify>[2] = { implicitAssertion }) {
  const ours = await pasetoV4.Verify(keys.node.publicKey, token, options).then(
    (result) => result.claims,
    (error: Error) => error.name,
  );
  const theirs = await stock.Verify(keys.stock.publicKey, token, options).then(
    (result) => result.claims,
    (error: Error) => error.name,
  );
  return { ours, theirs };
}

function flipByte(token: string, part: 'payload' | 'signature' | 'footer'): string {
  const [version, purpose, body, foot] = token.split('.') as [string, string, string, string | undefined];
  if (part === 'footer') {
    const bytes = Buffer.from(foot ?? '', 'base64url');
    bytes[2] = (bytes[2] as number) ^ 0x01;
    return `${version}.${purpose}.${body}.${bytes.toString('base64url')}`;
  }
  const bytes = Buffer.from(body, 'base64url');
  const index = part === 'payload' ? 3 : bytes.length - 1;
  bytes[index] = (bytes[index] as number) ^ 0x01;
  return [version, purpose, bytes.toString('base64url'), ...(foot === undefined ? [] : [foot])].join('.');
}

describe('PASETO v4.public on node:crypto', () => {
  // Official vectors 4-S-1 and 4-S-2 of the PASETO specification (paseto-standard/test-vectors, v4.json).
  const vectorPublicKey = publicKeyFromPaserk(`k4.public.${Buffer.from('1eb9dbbbbc047c03fd70604e0071f0987e16b28b757225c11f00415d0e20b1a2', 'hex').toString('base64url')}`);
  const vectorMessage = { data: 'this is a signed message', exp: '2022-01-01T00:00:00+00:00' };
  const vectors = [
    {
      name: '4-S-1',
      token:
        'v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9bg_XBBzds8lTZShVlwwKSgeKpLT3yukTw6JUz3W4h_ExsQV-P0V54zemZDcAxFaSeef1QlXEFtkqxT1ciiQEDA',
      footer: '',
    },
    {
      name: '4-S-2',
      token:
        'v4.public.eyJkYXRhIjoidGhpcyBpcyBhIHNpZ25lZCBtZXNzYWdlIiwiZXhwIjoiMjAyMi0wMS0wMVQwMDowMDowMCswMDowMCJ9v3Jt8mx_TdM2ceTGoqwrh4yDFn0XsHvvV_D0DtwQxVrJEBMl0F2caAdgnpKlt4p7xBnx1HcO-SPo8FPp214HDw.eyJraWQiOiJ6VmhNaVBCUDlmUmYyc25FY1Q3Z0ZUaW9lQTlDT2NOeTlEZmdMMVc2MGhhTiJ9',
      footer: '{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}',
    },
  ];

  it.each(vectors)('verifies the specification test vector $name', async ({ token, footer: expectedFooter }) => {
    const result = await pasetoV4.Verify(vectorPublicKey, token, { now: new Date('2021-06-01T00:00:00Z') });
    expect(result.claims).toEqual(vectorMessage);
    expect(new TextDecoder().decode(result.footer)).toBe(expectedFooter);
    // The same vector with an implicit assertion it was not signed with is refused.
    await expect(pasetoV4.Verify(vectorPublicKey, token, { now: new Date('2021-06-01T00:00:00Z'), implicitAssertion })).rejects.toThrow('signature verification failed');
  });

  it("verifies tokens signed by paseto's WebCrypto implementation", async () => {
    const keys = await keyPair();
    const token = await stock.Sign(keys.stock.secretKey, claims, { footer, implicitAssertion, expiresIn: 60 });
    const result = await pasetoV4.Verify(keys.node.publicKey, token, { implicitAssertion, issuer: 'bank', requiredClaims: ['sub', 'iat'] });
    expect(result.claims).toMatchObject(claims);
    expect(result.footer).toEqual(footer);
  });

  it("signs tokens that paseto's WebCrypto implementation verifies", async () => {
    const keys = await keyPair();
    const token = await pasetoV4.Sign(keys.node.secretKey, claims, { footer, implicitAssertion, expiresIn: 60 });
    const result = await stock.Verify(keys.stock.publicKey, token, { implicitAssertion, issuer: 'bank', requiredClaims: ['sub', 'iat'] });
    expect(result.claims).toMatchObject(claims);
    expect(result.footer).toEqual(footer);
  });

  it('refuses what the WebCrypto implementation refuses, with the same error: tampering, another purpose, another key, expiry, malformed tokens', async () => {
    const keys = await keyPair();
    const other = await keyPair();
    const good = await stock.Sign(keys.stock.secretKey, claims, { footer, implicitAssertion, expiresIn: 60 });
    const byOtherKey = await stock.Sign(other.stock.secretKey, claims, { footer, implicitAssertion, expiresIn: 60 });
    const expired = await stock.Sign(keys.stock.secretKey, claims, { footer, implicitAssertion, now: new Date(Date.now() - 120_000), expiresIn: 60 });
    const [, , body] = good.split('.') as [string, string, string, string];
    const cases: [string, string, Parameters<typeof stock.Verify>[2]?][] = [
      ['a flipped payload byte', flipByte(good, 'payload')],
      ['a flipped signature byte', flipByte(good, 'signature')],
      ['a flipped footer byte', flipByte(good, 'footer')],
      ['the footer removed', `v4.public.${body}`],
      ['another implicit assertion (purpose)', good, { implicitAssertion: encoder.encode('bank-token-purpose:refresh') }],
      ['no implicit assertion', good, {}],
      ['another key', byOtherKey],
      ['an expired token', expired],
      ['a truncated payload', `v4.public.${Buffer.from(body, 'base64url').subarray(0, 40).toString('base64url')}`],
      ['another header', good.replace('v4.public.', 'v4.local.')],
      ['padded base64', `v4.public.${body}=`],
    ];
    for (const [label, token, options] of cases) {
      const { ours, theirs } = await outcomes(token, keys, options ?? { implicitAssertion });
      expect({ label, ours }).toEqual({ label, ours: theirs });
      expect({ label, refused: typeof ours === 'string' }).toEqual({ label, refused: true });
    }
    expect(await outcomes(expired, keys)).toEqual({ ours: 'ClaimValidationError', theirs: 'ClaimValidationError' });
    expect(await outcomes(flipByte(good, 'signature'), keys)).toEqual({ ours: 'InvalidTokenError', theirs: 'InvalidTokenError' });
  });

  it('reads keys only from well-formed PASERKs whose halves belong together', async () => {
    const keys = await keyPair();
    const other = await keyPair();
    const secret = Buffer.from((await stock.ExportSecretKey(keys.stock.secretKey)).slice('k4.secret.'.length), 'base64url');
    const otherPublic = Buffer.from(other.publicPaserk.slice('k4.public.'.length), 'base64url');
    expect(() => publicKeyFromPaserk('k4.public.AAAA')).toThrow('invalid k4.public. key material');
    expect(() => publicKeyFromPaserk(`k4.secret.${secret.toString('base64url')}`)).toThrow('expected a k4.public. PASERK');
    expect(() => secretKeyFromPaserk(`k4.secret.${secret.subarray(0, 32).toString('base64url')}`)).toThrow('invalid k4.secret. key material');
    expect(() => secretKeyFromPaserk(`k4.secret.${Buffer.concat([secret.subarray(0, 32), otherPublic]).toString('base64url')}`)).toThrow('does not match the seed');
    // A key of the other kind, or one not made here, is refused as a token failure, not used.
    await expect(pasetoV4.Verify(keys.stock.publicKey as never, await stock.Sign(keys.stock.secretKey, claims), {})).rejects.toThrow('expected a public key');
  });

  it("does not wait for libuv's thread pool: a verify finishes while every pool thread is busy, where WebCrypto's waits", async () => {
    const keys = await keyPair();
    const token = await pasetoV4.Sign(keys.node.secretKey, claims, { footer, implicitAssertion });
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE) || 4;

    /** Occupies every pool thread with a long key derivation; counts how many have finished. */
    function fillThePool() {
      let finished = 0;
      const all = Array.from(
        { length: poolSize },
        () => new Promise<void>((resolve, reject) => pbkdf2('password', 'salt', 300_000, 64, 'sha512', (error) => (error ? reject(error) : (finished += 1, resolve())))),
      );
      return { finished: () => finished, done: Promise.all(all) };
    }

    const busy = fillThePool();
    await pasetoV4.Verify(keys.node.publicKey, token, { implicitAssertion });
    const finishedBeforeOurs = busy.finished();
    await busy.done;

    const busyAgain = fillThePool();
    await stock.Verify(keys.stock.publicKey, token, { implicitAssertion });
    const finishedBeforeWebCrypto = busyAgain.finished();
    await busyAgain.done;

    expect(finishedBeforeOurs).toBe(0);
    expect(finishedBeforeWebCrypto).toBeGreaterThanOrEqual(1);
  });
});
