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
import type { Records } from '../control-plane/model/records.ts';
import type { SigningKey } from '../control-plane/model/schemas.ts';

export const ALLOWED_ALGORITHMS = ['ES256', 'RS256'] as const;
export type SigningAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

export interface TokenServiceOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly tokenTtlSeconds: number;
  readonly algorithm: SigningAlgorithm;
  /** How long a new key signs; it verifies until its last token expires. Default 90 days. */
  readonly keySigningSeconds?: number;
  readonly now?: () => number;
}

export interface VerifiedToken {
  readonly uid: string;
  readonly expiresAtSeconds: number;
  readonly issuedAtSeconds: number | undefined;
  readonly tokenId: string | undefined;
  /** The `pidx` claim: the createIndex of the principal record the token was issued to (absent on internal tokens). */
  readonly principalIndex: number | undefined;
  /** The `nbf` claim, when present. */
  readonly notBeforeSeconds?: number;
}

interface LoadedKey {
  readonly record: SigningKey;
  readonly createIndex: number;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/** How many verified tokens {@link TokenService.verify} remembers. */
const VERIFIED_CACHE_MAX = 10_000;

export class TokenService {
  readonly #records: Records;
  readonly #options: TokenServiceOptions;
  #keys = new Map<string, LoadedKey>();
  #lastReloadMs = 0;
  /**
   * Tokens whose signature and claims already verified, until their `exp`:
   * the hot path skips the signature check for a token it has seen. Bounded
   * (oldest dropped first) and cleared when a signing key disappears.
   * Revocation is not cached here: the auth hook checks it on every request.
   */
  readonly #verified = new Map<string, VerifiedToken>();

  private constructor(records: Records, options: TokenServiceOptions) {
    this.#records = records;
    this.#options = options;
  }

  /** Load the stored keys, creating the first one if the store has none. */
  static async open(records: Records, options: TokenServiceOptions): Promise<TokenService> {
    const service = new TokenService(records, options);
    await service.#reload();
    if (!service.#currentSigner()) {
      await service.rotate();
    }
    return service;
  }

  /** Add a new signing key; it signs from now on, older keys still verify. */
  async rotate(): Promise<string> {
    const alg = this.#options.algorithm;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomUUID();
    const now = this.#now();
    const record = {
      kid,
      alg,
      privateJwk: await exportJWK(privateKey),
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
      createdAt: new Date(now).toISOString(),
      notAfter: new Date(now + (this.#options.keySigningSeconds ?? 90 * 86400) * 1000).toISOString(),
    } as SigningKey;
    await this.#records.put('signingKey', record, { casIndex: 0 });
    await this.#reload();
    return kid;
  }

  /**
   * `principalIndex` (the principal record's createIndex) ties the token to
   * this incarnation of the uid: if the uid is deleted and created again,
   * the old tokens do not fit the new one. With `scope` (and `claims`), a
   * *grant*: a short-lived token another component checks against the JWKS
   * for that scope (e.g. an agent serving a task's logs). Grants never
   * authenticate API calls: {@link verify} refuses them.
   */
  async issue(
    uid: string,
    options: { ttlSeconds?: number; principalIndex?: number; scope?: string; claims?: Readonly<Record<string, string>> } = {},
  ): Promise<{ token: string; expiresAtSeconds: number }> {
    const signer = await this.#signingKey();
    const nowSeconds = Math.floor(this.#now() / 1000);
    const exp = nowSeconds + (options.ttlSeconds ?? this.#options.tokenTtlSeconds);
    const token = await new SignJWT({
      ...options.claims,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      uid,
      ...(options.principalIndex === undefined ? {} : { pidx: options.principalIndex }),
    })
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
    const cached = this.#verified.get(token);
    if (cached) {
      if (cached.expiresAtSeconds * 1000 > this.#now() && (cached.notBeforeSeconds ?? 0) * 1000 <= this.#now()) return cached;
      this.#verified.delete(token);
    }
    const verified = await this.#verifyUncached(token);
    if (this.#verified.size >= VERIFIED_CACHE_MAX) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, verified);
    return verified;
  }

  async #verifyUncached(token: string): Promise<VerifiedToken> {
    try {
      const { payload } = await jwtVerify(token, (header) => this.#verificationKey(header.kid), {
        algorithms: [...ALLOWED_ALGORITHMS],
        issuer: this.#options.issuer,
        audience: this.#options.audience,
        requiredClaims: ['exp', 'iss', 'aud', 'uid'],
        currentDate: new Date(this.#now()),
      });
      if (payload['scope'] !== undefined) throw new StrataError('AUTH_TOKEN_INVALID', `token rejected: a grant (scope ${JSON.stringify(payload['scope'])}) cannot authenticate API calls`);
      return toVerified(payload);
    } catch (err) {
      if (err instanceof StrataError) throw err;
      throw new StrataError('AUTH_TOKEN_INVALID', `token rejected: ${describeJoseError(err)}`, { cause: err });
    }
  }

  /** Public keys, as RFC 7517 JSON Web Key Set. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.#keys.values()].map((k) => k.record.publicJwk as JWK) };
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }

  /** The newest key of the configured algorithm that may still sign. */
  #currentSigner(): LoadedKey | undefined {
    let best: LoadedKey | undefined;
    for (const k of this.#keys.values()) {
      if (k.record.alg !== this.#options.algorithm || Date.parse(k.record.notAfter) <= this.#now()) continue;
      if (!best || k.createIndex > best.createIndex) best = k;
    }
    return best;
  }

  /** The current signer; when every key is past `notAfter`, another master may have rotated: reload, else rotate. */
  async #signingKey(): Promise<LoadedKey> {
    let signer = this.#currentSigner();
    if (!signer) {
      await this.#reload();
      signer = this.#currentSigner();
    }
    if (!signer) {
      await this.rotate();
      signer = this.#currentSigner();
    }
    if (!signer) throw new StrataError('API_INTERNAL', 'no signing key may sign now, even after rotating one in');
    return signer;
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
    const { records } = await this.#records.list('signingKey');
    const next = new Map<string, LoadedKey>();
    for (const { value: record, createIndex } of records) {
      const known = this.#keys.get(record.kid);
      next.set(
        record.kid,
        known ?? {
          record,
          createIndex,
          privateKey: (await importJWK(record.privateJwk as JWK, record.alg)) as CryptoKey,
          publicKey: (await importJWK(record.publicJwk as JWK, record.alg)) as CryptoKey,
        },
      );
    }
    if ([...this.#keys.keys()].some((kid) => !next.has(kid))) this.#verified.clear();
    this.#keys = next;
  }
}

function toVerified(payload: JWTPayload): VerifiedToken {
  const uid = payload['uid'];
  if (typeof uid !== 'string' || uid.length === 0) throw new StrataError('AUTH_TOKEN_INVALID', 'token rejected: "uid" must be a non-empty string');
  const pidx = payload['pidx'];
  if (pidx !== undefined && !(typeof pidx === 'number' && Number.isSafeInteger(pidx) && pidx > 0)) throw new StrataError('AUTH_TOKEN_INVALID', 'token rejected: "pidx" must be a positive integer');
  return { uid, expiresAtSeconds: payload.exp!, issuedAtSeconds: payload.iat, tokenId: payload.jti, principalIndex: pidx as number | undefined, ...(payload.nbf === undefined ? {} : { notBeforeSeconds: payload.nbf }) };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'is not accepted'}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'it is not a well-formed JWT';
  return err instanceof Error ? err.message : String(err);
}
