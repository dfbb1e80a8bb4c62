import { createHash, createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { InspectFooter, PasetoError, PublicProtocol } from 'paseto';
import {
  ExportPublicKeyFactory,
  ExportSecretKeyFactory,
  GenerateKeyPairFactory,
  GetPublicKeyFactory,
  ImportPublicKeyFactory,
  ImportSecretKeyFactory,
  SignFactory,
  VerifyFactory,
  type PublicKey,
  type SecretKey,
} from 'paseto/v4/public';
import { z } from 'zod';
import { Unauthenticated } from '../errors/domain-error.ts';
import { ROLES, type Role } from './actor.ts';

/**
 * PASETO v4.public (Ed25519) tokens.
 *
 * Key formats (env vars, also fillable from AWS Secrets Manager):
 * - `PASETO_SECRET_KEY`: the signing key, either a PASERK `k4.secret.<base64url>` or an Ed25519
 *   PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`; literal `\n` sequences are accepted for one-line env
 *   values). Only processes that issue tokens need it.
 * - `PASETO_PUBLIC_KEYS`: extra accepted verification keys, separated by commas or whitespace,
 *   each a PASERK `k4.public.<base64url>` or an Ed25519 SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
 *   The public half of PASETO_SECRET_KEY is always accepted too.
 *
 * Every token carries its key id in the footer: `{"kid":"<id>"}` where the id is the first 22
 * characters of base64url(sha256(public PASERK)). Verification picks the public key by that id, so
 * rotation is: add the new public key to PASETO_PUBLIC_KEYS everywhere, switch PASETO_SECRET_KEY
 * to the new key, keep the old public key listed until the longest-lived old token (a refresh
 * token) has expired, then drop it.
 *
 * Token purposes (`access`, `refresh`, `login`) are a claim and also the implicit assertion of
 * the signature, so a token of one purpose fails verification as another even before claims are read.
 */
const v4 = new PublicProtocol(
  GenerateKeyPairFactory,
  SignFactory,
  VerifyFactory,
  ImportPublicKeyFactory,
  ExportPublicKeyFactory,
  ImportSecretKeyFactory,
  ExportSecretKeyFactory,
  GetPublicKeyFactory,
);

export const TOKEN_PURPOSES = ['access', 'refresh', 'login'] as const;
export type TokenPurpose = (typeof TOKEN_PURPOSES)[number];

const ISSUER = 'bank';

export type TokenClaims = {
  readonly purpose: TokenPurpose;
  readonly username: string;
  readonly role: Role;
  readonly sessionId: string;
  readonly tokenId: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
};

export type IssuedToken = { readonly token: string; readonly claims: TokenClaims };

const claimsSchema = z.object({
  iss: z.literal(ISSUER),
  purpose: z.enum(TOKEN_PURPOSES),
  sub: z.string().min(1),
  role: z.enum(ROLES),
  sid: z.string().uuid(),
  jti: z.string().uuid(),
  iat: z.string(),
  exp: z.string(),
});

const footerSchema = z.object({ kid: z.string().min(1).max(64) });

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const assertionFor = (purpose: TokenPurpose) => encoder.encode(`bank-token-purpose:${purpose}`);

/** Key id of a public key: first 22 chars of base64url(sha256(PASERK)). */
export function keyIdOf(publicPaserk: string): string {
  return createHash('sha256').update(publicPaserk).digest('base64url').slice(0, 22);
}

const unescapePem = (text: string) => text.replace(/\\n/g, '\n').trim();

function secretToPaserk(text: string): `k4.secret.${string}` {
  const value = unescapePem(text);
  if (value.startsWith('k4.secret.')) return value as `k4.secret.${string}`;
  if (value.startsWith('-----BEGIN')) {
    const jwk = createPrivateKey(value).export({ format: 'jwk' });
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.d || !jwk.x) throw new Error('PASETO_SECRET_KEY: the PEM key is not an Ed25519 private key');
    const bytes = Buffer.concat([Buffer.from(jwk.d, 'base64url'), Buffer.from(jwk.x, 'base64url')]);
    return `k4.secret.${bytes.toString('base64url')}`;
  }
  throw new Error('PASETO_SECRET_KEY must be a k4.secret PASERK or an Ed25519 PKCS#8 PEM');
}

function publicToPaserk(text: string): `k4.public.${string}` {
  const value = unescapePem(text);
  if (value.startsWith('k4.public.')) return value as `k4.public.${string}`;
  if (value.startsWith('-----BEGIN')) {
    const jwk = createPublicKey(value).export({ format: 'jwk' });
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('PASETO_PUBLIC_KEYS: a PEM key is not an Ed25519 public key');
    return `k4.public.${jwk.x}`;
  }
  throw new Error('PASETO_PUBLIC_KEYS entries must be k4.public PASERKs or Ed25519 SPKI PEMs');
}

/** Splits PASETO_PUBLIC_KEYS into single keys: PEM blocks, then PASERKs separated by commas/whitespace. */
export function parsePublicKeyList(text: string | undefined): string[] {
  if (!text) return [];
  const value = unescapePem(text);
  const pems = value.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  const rest = value.replace(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g, ' ');
  return [...pems, ...rest.split(/[\s,]+/).filter((part) => part.length > 0)];
}

/** A fresh Ed25519 key pair as PASERKs, for development and for rotation (`npm start` writes one). */
export async function generatePasetoKeyPair(): Promise<{ secretKey: string; publicKey: string; keyId: string }> {
  const pair = await v4.GenerateKeyPair({ extractable: true });
  const secretKey = await v4.ExportSecretKey(pair.secretKey);
  const publicKey = await v4.ExportPublicKey(pair.publicKey);
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

export type TokenMakerOptions = {
  /** PASETO_SECRET_KEY; without it the maker can only verify. */
  secretKey?: string;
  /** Additional accepted public keys (PASETO_PUBLIC_KEYS, already split or as the raw string). */
  publicKeys?: string | readonly string[];
  /** Clock for tests. */
  now?: () => Date;
};

/**
 * Issues and verifies typed PASETO v4.public tokens. `verify` throws Unauthenticated for anything
 * that is not a valid, unexpired token of the requested purpose signed by an accepted key.
 */
export class TokenMaker {
  readonly keyId: string | undefined;
  readonly #signingKey: SecretKey | undefined;
  readonly #verifyKeys: ReadonlyMap<string, PublicKey>;
  readonly #now: () => Date;

  private constructor(signing: { keyId: string; key: SecretKey } | undefined, verifyKeys: Map<string, PublicKey>, now: () => Date) {
    this.keyId = signing?.keyId;
    this.#signingKey = signing?.key;
    this.#verifyKeys = verifyKeys;
    this.#now = now;
  }

  static async create(options: TokenMakerOptions): Promise<TokenMaker> {
    const verifyKeys = new Map<string, PublicKey>();
    let signing: { keyId: string; key: SecretKey } | undefined;
    if (options.secretKey) {
      const key = await v4.ImportSecretKey(secretToPaserk(options.secretKey));
      const publicPaserk = await v4.ExportPublicKey(await v4.GetPublicKey(key));
      signing = { keyId: keyIdOf(publicPaserk), key };
      verifyKeys.set(signing.keyId, await v4.ImportPublicKey(publicPaserk));
    }
    const list = typeof options.publicKeys === 'string' ? parsePublicKeyList(options.publicKeys) : (options.publicKeys ?? []);
    for (const entry of list) {
      const paserk = publicToPaserk(entry);
      verifyKeys.set(keyIdOf(paserk), await v4.ImportPublicKey(paserk));
    }
    if (verifyKeys.size === 0) throw new Error('PASETO keys missing: set PASETO_SECRET_KEY (to issue) and/or PASETO_PUBLIC_KEYS (to verify)');
    return new TokenMaker(signing, verifyKeys, options.now ?? (() => new Date()));
  }

  /** From the config's PASETO_SECRET_KEY / PASETO_PUBLIC_KEYS. */
  static fromConfig(config: { PASETO_SECRET_KEY?: string | undefined; PASETO_PUBLIC_KEYS?: string | undefined }): Promise<TokenMaker> {
    return TokenMaker.create({ secretKey: config.PASETO_SECRET_KEY, publicKeys: config.PASETO_PUBLIC_KEYS ?? '' });
  }

  /** Key ids this maker accepts. */
  get acceptedKeyIds(): string[] {
    return [...this.#verifyKeys.keys()];
  }

  async issue(
    purpose: TokenPurpose,
    subject: { username: string; role: Role; sessionId: string; ttlSeconds: number; tokenId?: string },
  ): Promise<IssuedToken> {
    if (!this.#signingKey || !this.keyId) throw new Error('this TokenMaker has no PASETO_SECRET_KEY and cannot issue tokens');
    const tokenId = subject.tokenId ?? randomUUID();
    // PASETO times have one-second resolution; round here so the returned claims equal the token's.
    const now = new Date(Math.floor(this.#now().getTime() / 1000) * 1000);
    const token = await v4.Sign(
      this.#signingKey,
      { iss: ISSUER, purpose, sub: subject.username, role: subject.role, sid: subject.sessionId, jti: tokenId },
      {
        now,
        expiresIn: subject.ttlSeconds,
        footer: encoder.encode(JSON.stringify({ kid: this.keyId })),
        implicitAssertion: assertionFor(purpose),
      },
    );
    return {
      token,
      claims: {
        purpose,
        username: subject.username,
        role: subject.role,
        sessionId: subject.sessionId,
        tokenId,
        issuedAt: now,
        expiresAt: new Date(now.getTime() + subject.ttlSeconds * 1000),
      },
    };
  }

  /** Verifies signature, key, purpose, issuer and expiry. Throws Unauthenticated, never anything else. */
  async verify(token: string, purpose: TokenPurpose): Promise<TokenClaims> {
    if (typeof token !== 'string' || !token.startsWith('v4.public.')) throw new Unauthenticated('invalid token');
    let kid: string;
    try {
      kid = footerSchema.parse(JSON.parse(decoder.decode(InspectFooter(token)))).kid;
    } catch {
      throw new Unauthenticated('invalid token');
    }
    const key = this.#verifyKeys.get(kid);
    if (!key) throw new Unauthenticated('token signed by an unknown key');
    let raw: unknown;
    try {
      const result = await v4.Verify(key, token, {
        now: this.#now(),
        issuer: ISSUER,
        implicitAssertion: assertionFor(purpose),
        requiredClaims: ['purpose', 'sub', 'sid', 'jti', 'iat'],
      });
      raw = result.claims;
    } catch (error) {
      if (error instanceof PasetoError && /expired/i.test(error.message)) throw new Unauthenticated('token has expired', { cause: error });
      throw new Unauthenticated('invalid token', { cause: error });
    }
    const parsed = claimsSchema.safeParse(raw);
    if (!parsed.success || parsed.data.purpose !== purpose) throw new Unauthenticated('invalid token');
    const claims = parsed.data;
    return {
      purpose: claims.purpose,
      username: claims.sub,
      role: claims.role,
      sessionId: claims.sid,
      tokenId: claims.jti,
      issuedAt: new Date(claims.iat),
      expiresAt: new Date(claims.exp),
    };
  }
}
