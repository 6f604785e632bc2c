/**
 * Auth tokens: JWTs signed with `jose` by keys kept in the state store, so
 * every master verifies what any master issued. Verification requires `exp`,
 * `iss`, `aud` and `uid`, allows only ES256 and RS256, and matches each
 * token's `kid` to a stored key (an unknown kid re-reads the store at most
 * once a second). `jwks()` is what `GET /acs/api/v1/auth/jwks` serves.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, errors as joseErrors, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { StrataError } from '../common/errors.ts';
import type { StateStore } from '../control-plane/store/port.ts';

export const ALLOWED_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SigningAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

export interface TokenServiceOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly tokenTtlSeconds: number;
  readonly algorithm: SigningAlgorithm;
  /** Store prefix of the signing keys, e.g. `strata/security/signing-keys/`. */
  readonly keyPrefix: string;
  readonly now?: () => number;
}

export interface VerifiedToken {
  readonly uid: string;
  readonly expiresAtSeconds: number;
  readonly issuedAtSeconds: number | undefined;
  readonly tokenId: string | undefined;
}

interface StoredSigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly createdAt: string;
}

interface LoadedKey {
  readonly record: StoredSigningKey;
  readonly createIndex: number;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

function parseKey(key: string, value: string): StoredSigningKey {
  const v = JSON.parse(value) as Partial<StoredSigningKey>;
  if (typeof v.kid !== 'string' || !ALLOWED_ALGORITHMS.includes(v.alg as SigningAlgorithm) || !v.privateJwk || !v.publicJwk) {
    throw new StrataError('STORE_DATA_CORRUPT', `signing key record ${key} is malformed`);
  }
  return v as StoredSigningKey;
}

export class TokenService {
  readonly #store: StateStore;
  readonly #options: TokenServiceOptions;
  #keys = new Map<string, LoadedKey>();
  #lastReloadMs = 0;

  private constructor(store: StateStore, options: TokenServiceOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Load the stored keys, creating the first one if the store has none. */
  static async open(store: StateStore, options: TokenServiceOptions): Promise<TokenService> {
    const service = new TokenService(store, options);
    await service.#reload();
    if (![...service.#keys.values()].some((k) => k.record.alg === options.algorithm)) {
      await service.rotate();
    }
    return service;
  }

  /** Add a new signing key; it signs from now on, older keys still verify. */
  async rotate(): Promise<string> {
    const alg = this.#options.algorithm;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomUUID();
    const record: StoredSigningKey = {
      kid,
      alg,
      privateJwk: await exportJWK(privateKey),
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
      createdAt: new Date(this.#now()).toISOString(),
    };
    await this.#store.put(`${this.#options.keyPrefix}${kid}`, JSON.stringify(record), { casIndex: 0 });
    await this.#reload();
    return kid;
  }

  async issue(uid: string, options: { ttlSeconds?: number } = {}): Promise<{ token: string; expiresAtSeconds: number }> {
    const signer = this.#signingKey();
    const nowSeconds = Math.floor(this.#now() / 1000);
    const exp = nowSeconds + (options.ttlSeconds ?? this.#options.tokenTtlSeconds);
    const token = await new SignJWT({ uid })
      .setProtectedHeader({ alg: signer.record.alg, kid: signer.record.kid, typ: 'JWT' })
      .setIssuer(this.#options.issuer)
      .setAudience(this.#options.audience)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(signer.privateKey);
    return { token, expiresAtSeconds: exp };
  }

  /** Throws `AUTH_TOKEN_INVALID` saying why; never returns an unverified claim. */
  async verify(token: string): Promise<VerifiedToken> {
    try {
      const { payload } = await jwtVerify(token, (header) => this.#verificationKey(header.kid), {
        algorithms: [...ALLOWED_ALGORITHMS],
        issuer: this.#options.issuer,
        audience: this.#options.audience,
        requiredClaims: ['exp', 'iss', 'aud', 'uid'],
        currentDate: new Date(this.#now()),
      });
      return toVerified(payload);
    } catch (err) {
      if (err instanceof StrataError) throw err;
      throw new StrataError('AUTH_TOKEN_INVALID', `token rejected: ${describeJoseError(err)}`, { cause: err });
    }
  }

  /** Public keys, as RFC 7517 JSON Web Key Set. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.#keys.values()].map((k) => k.record.publicJwk) };
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }

  #signingKey(): LoadedKey {
    let best: LoadedKey | undefined;
    for (const k of this.#keys.values()) {
      if (k.record.alg === this.#options.algorithm && (!best || k.createIndex > best.createIndex)) best = k;
    }
    if (!best) throw new StrataError('API_INTERNAL', 'no signing key is loaded');
    return best;
  }

  async #verificationKey(kid: string | undefined): Promise<CryptoKey> {
    if (kid === undefined) throw new StrataError('AUTH_TOKEN_INVALID', 'token rejected: its header has no "kid"');
    let key = this.#keys.get(kid);
    if (!key && this.#now() - this.#lastReloadMs > 1000) {
      await this.#reload();
      key = this.#keys.get(kid);
    }
    if (!key) throw new StrataError('AUTH_TOKEN_INVALID', 'token rejected: it was signed by an unknown key');
    return key.publicKey;
  }

  async #reload(): Promise<void> {
    this.#lastReloadMs = this.#now();
    const { entries } = await this.#store.list(this.#options.keyPrefix);
    const next = new Map<string, LoadedKey>();
    for (const entry of entries) {
      const record = parseKey(entry.key, entry.value);
      const known = this.#keys.get(record.kid);
      next.set(
        record.kid,
        known ?? {
          record,
          createIndex: entry.createIndex,
          privateKey: (await importJWK(record.privateJwk, record.alg)) as CryptoKey,
          publicKey: (await importJWK(record.publicJwk, record.alg)) as CryptoKey,
        },
      );
    }
    this.#keys = next;
  }
}

function toVerified(payload: JWTPayload): VerifiedToken {
  const uid = payload['uid'];
  if (typeof uid !== 'string' || uid.length === 0) throw new StrataError('AUTH_TOKEN_INVALID', 'token rejected: "uid" must be a non-empty string');
  return { uid, expiresAtSeconds: payload.exp!, issuedAtSeconds: payload.iat, tokenId: payload.jti };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'is not accepted'}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'it is not a well-formed JWT';
  return err instanceof Error ? err.message : String(err);
}
