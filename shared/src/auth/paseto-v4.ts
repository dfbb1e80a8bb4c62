import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { PAE, PublicProtocol, PublicSign, PublicVerify, type Key } from 'paseto';

/**
 * PASETO v4.public (Ed25519) signing and verification on Node's one-shot `crypto.sign` and
 * `crypto.verify`, instead of the WebCrypto calls paseto's built-in v4 implementation makes.
 *
 * Why: Node runs `crypto.subtle.sign/verify` as jobs on libuv's thread pool (4 threads by
 * default), the same threads bcrypt hashes on. During a burst of logins every authenticated
 * request's token check queued behind the password checks (a cheap GET went from 15 ms to 12.5 s
 * at p99). The one-shot calls run on the calling thread, tens of microseconds for an Ed25519
 * verify, and never wait for the pool.
 *
 * Only the primitive changes. These are paseto's own composable `PublicSign` / `PublicVerify`
 * operations with a different `run`, so token parsing (the `v4.public.` header, canonical
 * base64url, the 64-byte signature split, the footer), claim parsing and claim validation (exp,
 * iat, nbf, issuer, required claims) are the library's, exactly as with `v4.Verify`. The
 * primitive signs and checks PAE(["v4.public.", message, footer, implicit assertion]) as the
 * PASETO v4 specification defines it.
 */

const HEADER = new TextEncoder().encode('v4.public.');
const ALGORITHM = 'Ed25519 (node:crypto)' as const;

/** A v4.public verification key held as a Node KeyObject. */
export interface NodePublicKey extends Key {
  readonly algorithm: { readonly name: typeof ALGORITHM };
  readonly type: 'public';
  readonly keyObject: KeyObject;
}

/** A v4.public signing key held as a Node KeyObject. */
export interface NodeSecretKey extends Key {
  readonly algorithm: { readonly name: typeof ALGORITHM };
  readonly type: 'secret';
  readonly keyObject: KeyObject;
}

/** The bytes after a PASERK header, refusing anything but canonical base64url of `length` bytes. */
function paserkBytes(paserk: string, header: string, length: number): Buffer {
  if (typeof paserk !== 'string' || !paserk.startsWith(header)) throw new TypeError(`expected a ${header} PASERK`);
  const text = paserk.slice(header.length);
  const bytes = Buffer.from(text, 'base64url');
  if (bytes.length !== length || bytes.toString('base64url') !== text) throw new TypeError(`invalid ${header} key material`);
  return bytes;
}

/**
 * A verification key from a PASERK `k4.public.<base64url of the 32-byte Ed25519 public key>`.
 * @throws TypeError when it is not one
 */
export function publicKeyFromPaserk(paserk: string): NodePublicKey {
  const x = paserkBytes(paserk, 'k4.public.', 32).toString('base64url');
  const keyObject = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  return Object.freeze({ algorithm: { name: ALGORITHM }, extractable: false, type: 'public', keyObject });
}

/**
 * A signing key from a PASERK `k4.secret.<base64url of seed (32 bytes) || public key (32 bytes)>`.
 * @throws TypeError when it is not one, or when its public half does not belong to its seed
 */
export function secretKeyFromPaserk(paserk: string): NodeSecretKey {
  const bytes = paserkBytes(paserk, 'k4.secret.', 64);
  const d = bytes.subarray(0, 32).toString('base64url');
  const x = bytes.subarray(32).toString('base64url');
  const keyObject = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x }, format: 'jwk' });
  // The JWK import does not check that x is d's public key; a mismatched pair would sign tokens
  // that no holder of the published public key could verify.
  if (createPublicKey(keyObject).export({ format: 'jwk' }).x !== x) throw new TypeError('k4.secret key: the public half does not match the seed');
  return Object.freeze({ algorithm: { name: ALGORITHM }, extractable: false, type: 'secret', keyObject });
}

function keyObjectOf(key: Key, type: 'public' | 'secret'): KeyObject {
  const candidate = key as Partial<NodePublicKey | NodeSecretKey>;
  if (candidate.algorithm?.name !== ALGORITHM || candidate.type !== type || !candidate.keyObject) {
    throw new TypeError(`expected a ${type} key from ${type === 'public' ? 'publicKeyFromPaserk' : 'secretKeyFromPaserk'}`);
  }
  return candidate.keyObject;
}

/** paseto's Sign operation with the signature made by `crypto.sign` (no thread pool). */
export const NodeSignFactory = PublicSign<4, NodeSecretKey>({
  version: 4,
  run: async (key, message, footer, implicitAssertion) =>
    new Uint8Array(sign(null, PAE([HEADER, message, footer, implicitAssertion]), keyObjectOf(key, 'secret'))),
});

/** paseto's Verify operation with the signature checked by `crypto.verify` (no thread pool). */
export const NodeVerifyFactory = PublicVerify<4, NodePublicKey>({
  version: 4,
  run: async (key, message, signature, footer, implicitAssertion) =>
    verify(null, PAE([HEADER, message, footer, implicitAssertion]), keyObjectOf(key, 'public'), signature),
});

/**
 * `Sign(secretKey, claims, options)` and `Verify(publicKey, token, options)` with the same options
 * and errors as paseto's `v4` (`PasetoError` subclasses: `InvalidTokenError` for a malformed or
 * badly signed token, `ClaimValidationError` for expired / wrong issuer / missing claims).
 */
export const pasetoV4 = new PublicProtocol(NodeSignFactory, NodeVerifyFactory);
