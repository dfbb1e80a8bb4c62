import { createHash, createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { InspectFooter, PasetoError, PublicProtocol } from 'paseto';
import {
  ExportPublicKeyFactory,
  ExportSecretKeyFactory,
  GenerateKeyPairFactory,
  GetPublicKeyFactory,
  ImportPublicKeyFactory,
  ImportSecretKeyFactory,
} from 'paseto/v4/public';
import { z } from 'zod';
import { Unauthenticated } from '../errors/domain-error.ts';
import { ROLES, type Role } from './actor.ts';
import { pasetoV4, publicKeyFromPaserk, secretKeyFromPaserk, type NodePublicKey, type NodeSecretKey } from './paseto-v4.ts';

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
 *
 * Every token names its audience (`aud`, TOKEN_AUDIENCE: the bank's API, both edges) and
 * verification requires exactly that audience, so a token the same key signed for something else
 * is refused. No token is accepted whose lifetime (exp - iat), or whose age, exceeds the configured
 * TTL of its purpose (ACCESS_TOKEN_TTL_SECONDS, REFRESH_TOKEN_TTL_SECONDS, LOGIN_TOKEN_TTL_SECONDS):
 * a token claiming a ten-year life is refused even though its signature holds.
 *
 * Signing and verifying run on Node's one-shot Ed25519 calls (`./paseto-v4.ts`), never on the
 * libuv thread pool where bcrypt works. paseto's WebCrypto implementation is used only to
 * generate, import and export keys (PASERK), once at start-up.
 */
const keys = new PublicProtocol(
  GenerateKeyPairFactory,
  ImportPublicKeyFactory,
  ExportPublicKeyFactory,
  ImportSecretKeyFactory,
  ExportSecretKeyFactory,
  GetPublicKeyFactory,
);

export const TOKEN_PURPOSES = ['access', 'refresh', 'login'] as const;
export type TokenPurpose = (typeof TOKEN_PURPOSES)[number];

const ISSUER = 'bank';
/** TOKEN_AUDIENCE's default: every process of one deployment issues and accepts this audience. */
export const DEFAULT_TOKEN_AUDIENCE = 'bank-api';
/** The longest lifetime accepted per purpose when none is configured: the configuration's defaults. */
const DEFAULT_MAX_LIFETIME_SECONDS: Readonly<Record<TokenPurpose, number>> = { access: 900, refresh: 86_400, login: 600 };

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
  aud: z.string().min(1),
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
  const pair = await keys.GenerateKeyPair({ extractable: true });
  const secretKey = await keys.ExportSecretKey(pair.secretKey);
  const publicKey = await keys.ExportPublicKey(pair.publicKey);
  return { secretKey, publicKey, keyId: keyIdOf(publicKey) };
}

export type TokenMakerOptions = {
  /** PASETO_SECRET_KEY; without it the maker can only verify. */
  secretKey?: string;
  /** Additional accepted public keys (PASETO_PUBLIC_KEYS, already split or as the raw string). */
  publicKeys?: string | readonly string[];
  /** Clock for tests. */
  now?: () => Date;
  /** Verified access tokens remembered until they expire (default 10,000; 0 turns the cache off). */
  verifiedCacheSize?: number;
  /** TOKEN_AUDIENCE: the `aud` issued and required (default DEFAULT_TOKEN_AUDIENCE). */
  audience?: string;
  /** The longest lifetime (exp - iat) and age accepted per purpose, in seconds: the configured TTLs. */
  maxLifetimeSeconds?: Partial<Record<TokenPurpose, number>>;
};

/** Access tokens, not refresh or login tokens: only they are presented again and again. */
const CACHED_PURPOSE: TokenPurpose = 'access';
const DEFAULT_VERIFIED_CACHE_SIZE = 10_000;

/**
 * Issues and verifies typed PASETO v4.public tokens. `verify` throws Unauthenticated for anything
 * that is not a valid, unexpired token of the requested purpose signed by an accepted key.
 *
 * A verified access token is remembered (token string -> claims) until it expires, so a client
 * presenting the same token on every request pays for one signature check, not one per request.
 * The cache holds at most `verifiedCacheSize` tokens and forgets the oldest first. It is keyed by
 * the exact token string, which was fully verified once; only expiry can change its answer, and
 * expiry is checked on every hit. Accepted keys are fixed for the maker's life, so no key removal
 * can make a remembered token stale.
 */
export class TokenMaker {
  readonly keyId: string | undefined;
  readonly #signingKey: NodeSecretKey | undefined;
  readonly #verifyKeys: ReadonlyMap<string, NodePublicKey>;
  readonly #now: () => Date;
  readonly #verified = new Map<string, TokenClaims>();
  readonly #verifiedCacheSize: number;
  readonly #audience: string;
  readonly #maxLifetimeSeconds: Readonly<Record<TokenPurpose, number>>;
  #signatureChecks = 0;

  private constructor(
    signing: { keyId: string; key: NodeSecretKey } | undefined,
    verifyKeys: Map<string, NodePublicKey>,
    options: { now: () => Date; verifiedCacheSize: number; audience: string; maxLifetimeSeconds: Readonly<Record<TokenPurpose, number>> },
  ) {
    this.keyId = signing?.keyId;
    this.#signingKey = signing?.key;
    this.#verifyKeys = verifyKeys;
    this.#now = options.now;
    this.#verifiedCacheSize = options.verifiedCacheSize;
    this.#audience = options.audience;
    this.#maxLifetimeSeconds = options.maxLifetimeSeconds;
  }

  /**
   * @throws Error when no key is given or a key is malformed (PASERK or PEM), naming the variable
   */
  static async create(options: TokenMakerOptions): Promise<TokenMaker> {
    const verifyKeys = new Map<string, NodePublicKey>();
    let signing: { keyId: string; key: NodeSecretKey } | undefined;
    if (options.secretKey) {
      // paseto's own import validates the PASERK and derives its public half, as before.
      const paserk = secretToPaserk(options.secretKey);
      const publicPaserk = await keys.ExportPublicKey(await keys.GetPublicKey(await keys.ImportSecretKey(paserk)));
      signing = { keyId: keyIdOf(publicPaserk), key: secretKeyFromPaserk(paserk) };
      verifyKeys.set(signing.keyId, publicKeyFromPaserk(publicPaserk));
    }
    const list = typeof options.publicKeys === 'string' ? parsePublicKeyList(options.publicKeys) : (options.publicKeys ?? []);
    for (const entry of list) {
      const paserk = publicToPaserk(entry);
      await keys.ImportPublicKey(paserk);
      verifyKeys.set(keyIdOf(paserk), publicKeyFromPaserk(paserk));
    }
    if (verifyKeys.size === 0) throw new Error('PASETO keys missing: set PASETO_SECRET_KEY (to issue) and/or PASETO_PUBLIC_KEYS (to verify)');
    const audience = options.audience ?? DEFAULT_TOKEN_AUDIENCE;
    if (audience.length === 0) throw new Error('TOKEN_AUDIENCE must not be empty');
    return new TokenMaker(signing, verifyKeys, {
      now: options.now ?? (() => new Date()),
      verifiedCacheSize: Math.max(0, Math.floor(options.verifiedCacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE)),
      audience,
      maxLifetimeSeconds: { ...DEFAULT_MAX_LIFETIME_SECONDS, ...options.maxLifetimeSeconds },
    });
  }

  /**
   * From the config's PASETO_SECRET_KEY / PASETO_PUBLIC_KEYS, TOKEN_AUDIENCE and the TTLs that cap
   * each purpose's lifetime.
   * @throws Error when the keys are missing or malformed
   */
  static fromConfig(config: {
    PASETO_SECRET_KEY?: string | undefined;
    PASETO_PUBLIC_KEYS?: string | undefined;
    TOKEN_AUDIENCE: string;
    ACCESS_TOKEN_TTL_SECONDS: number;
    REFRESH_TOKEN_TTL_SECONDS: number;
    LOGIN_TOKEN_TTL_SECONDS: number;
  }): Promise<TokenMaker> {
    return TokenMaker.create({
      secretKey: config.PASETO_SECRET_KEY,
      publicKeys: config.PASETO_PUBLIC_KEYS ?? '',
      audience: config.TOKEN_AUDIENCE,
      maxLifetimeSeconds: { access: config.ACCESS_TOKEN_TTL_SECONDS, refresh: config.REFRESH_TOKEN_TTL_SECONDS, login: config.LOGIN_TOKEN_TTL_SECONDS },
    });
  }

  /** The `aud` this maker issues and requires. */
  get audience(): string {
    return this.#audience;
  }

  /** Key ids this maker accepts. */
  get acceptedKeyIds(): string[] {
    return [...this.#verifyKeys.keys()];
  }

  /** Signature checks `verify` has made so far (cache hits make none); tests and metrics count them. */
  get signatureChecks(): number {
    return this.#signatureChecks;
  }

  /**
   * Signs a token of `purpose` for a session. It signs any `ttlSeconds` it is given; verification
   * (here and in every other process) refuses one longer than its purpose's configured TTL.
   * @throws Error when this maker has no signing key
   */
  async issue(
    purpose: TokenPurpose,
    subject: { username: string; role: Role; sessionId: string; ttlSeconds: number; tokenId?: string },
  ): Promise<IssuedToken> {
    if (!this.#signingKey || !this.keyId) throw new Error('this TokenMaker has no PASETO_SECRET_KEY and cannot issue tokens');
    const tokenId = subject.tokenId ?? randomUUID();
    // PASETO times have one-second resolution; round here so the returned claims equal the token's.
    const now = new Date(Math.floor(this.#now().getTime() / 1000) * 1000);
    const token = await pasetoV4.Sign(
      this.#signingKey,
      { iss: ISSUER, aud: this.#audience, purpose, sub: subject.username, role: subject.role, sid: subject.sessionId, jti: tokenId },
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

  /**
   * Verifies signature, key, purpose, issuer, audience, expiry and that the lifetime and age are
   * within the purpose's TTL; a remembered access token only its expiry.
   * @throws Unauthenticated, never anything else
   */
  async verify(token: string, purpose: TokenPurpose): Promise<TokenClaims> {
    if (typeof token !== 'string' || !token.startsWith('v4.public.')) throw new Unauthenticated('invalid token');
    const remembered = this.#verified.get(token);
    if (remembered && remembered.purpose === purpose) {
      // paseto's rule: expired once now > exp.
      if (this.#now().getTime() <= remembered.expiresAt.getTime()) return remembered;
      this.#verified.delete(token);
      throw new Unauthenticated('token has expired');
    }
    const claims = await this.#verifySignedToken(token, purpose);
    if (purpose === CACHED_PURPOSE) this.#remember(token, claims);
    return claims;
  }

  async #verifySignedToken(token: string, purpose: TokenPurpose): Promise<TokenClaims> {
    let kid: string;
    try {
      kid = footerSchema.parse(JSON.parse(decoder.decode(InspectFooter(token)))).kid;
    } catch {
      throw new Unauthenticated('invalid token');
    }
    const key = this.#verifyKeys.get(kid);
    if (!key) throw new Unauthenticated('token signed by an unknown key');
    let raw: unknown;
    this.#signatureChecks += 1;
    const maxLifetimeSeconds = this.#maxLifetimeSeconds[purpose];
    try {
      const result = await pasetoV4.Verify(key, token, {
        now: this.#now(),
        issuer: ISSUER,
        audience: this.#audience,
        // Issued longer ago than a token of this purpose may live: refused, whatever its exp says.
        maxTokenAge: maxLifetimeSeconds,
        implicitAssertion: assertionFor(purpose),
        requiredClaims: ['purpose', 'sub', 'sid', 'jti', 'iat', 'aud'],
      });
      raw = result.claims;
    } catch (error) {
      if (error instanceof PasetoError && /expired/i.test(error.message)) throw new Unauthenticated('token has expired', { cause: error });
      throw new Unauthenticated('invalid token', { cause: error });
    }
    const parsed = claimsSchema.safeParse(raw);
    if (!parsed.success || parsed.data.purpose !== purpose) throw new Unauthenticated('invalid token');
    const claims = parsed.data;
    const issuedAt = new Date(claims.iat);
    const expiresAt = new Date(claims.exp);
    if (expiresAt.getTime() - issuedAt.getTime() > maxLifetimeSeconds * 1_000) throw new Unauthenticated('token lifetime longer than its purpose allows');
    return {
      purpose: claims.purpose,
      username: claims.sub,
      role: claims.role,
      sessionId: claims.sid,
      tokenId: claims.jti,
      issuedAt,
      expiresAt,
    };
  }

  #remember(token: string, claims: TokenClaims): void {
    if (this.#verifiedCacheSize === 0) return;
    // A Map iterates in insertion order: the first key is the oldest entry, so the cache stays
    // bounded without a timer (expired entries are dropped when they are met or pushed out).
    if (this.#verified.size >= this.#verifiedCacheSize) {
      const oldest = this.#verified.keys().next();
      if (!oldest.done) this.#verified.delete(oldest.value);
    }
    this.#verified.set(token, Object.freeze({ ...claims }));
  }
}
