/**
 * Service-account login tokens (DC/OS service login): the account signs
 * `{uid, exp}` with its private key (RS256, header `{"alg":"RS256","typ":"JWT"}`;
 * ES256 for EC P-256 keys too) and sends it to `POST /acs/api/v1/auth/login`
 * as `{uid, token}`. The IAM accepts a token that
 * - verifies with the account's stored public key, with the algorithm its key
 *   type allows (never `none`, never HMAC, never a key from the header);
 * - carries `uid` (equal to the login's uid) and `exp`;
 * - lives at most `maxLifetimeSeconds` (10 minutes): `exp` is at most that far
 *   ahead of now, and of `iat` when present;
 * - has not been used before (the caller records {@link VerifiedLoginToken.digest}).
 * A token that fails its signature gives `AUTH_LOGIN_FAILED` (nothing more is
 * said); one that verifies but breaks a rule gives `AUTH_LOGIN_TOKEN_REJECTED`
 * saying which.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify } from 'jose';
import { StrataError } from '../common/errors.ts';

export interface VerifiedLoginToken {
  readonly uid: string;
  readonly expiresAtSeconds: number;
  /** SHA-256 (hex) of the decoded header and payload: the same token however it is base64-spelled. */
  readonly digest: string;
}

/** Which JWS algorithm a service key signs with; `CA`-style refusal of anything weaker. */
export function loginAlgorithmFor(key: KeyObject): 'RS256' | 'ES256' {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new StrataError('API_BAD_REQUEST', `the service account's RSA key has ${bits} bits; at least 2048 are required`);
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new StrataError('API_BAD_REQUEST', `the service account's key is ${key.asymmetricKeyType ?? 'unknown'}${key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''}; use RSA (2048 bits or more) or EC P-256`);
}

/** Refuse a public key a service account cannot log in with (`API_BAD_REQUEST` saying why). */
export function checkServicePublicKey(pem: string): void {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new StrataError('API_BAD_REQUEST', 'public_key is not a readable PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  loginAlgorithmFor(key);
}

export function loginTokenDigest(token: string): string {
  const [header = '', payload = ''] = token.split('.');
  return createHash('sha256').update(Buffer.from(header, 'base64url')).update('.').update(Buffer.from(payload, 'base64url')).digest('hex');
}

export async function verifyServiceLoginToken(
  token: string,
  publicKeyPem: string,
  options: { readonly uid: string; readonly nowMs: number; readonly maxLifetimeSeconds: number },
): Promise<VerifiedLoginToken> {
  const key = createPublicKey(publicKeyPem);
  const algorithm = loginAlgorithmFor(key);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key, { algorithms: [algorithm], currentDate: new Date(options.nowMs) }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new StrataError('AUTH_LOGIN_TOKEN_REJECTED', 'login token rejected: it has expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw new StrataError('AUTH_LOGIN_TOKEN_REJECTED', `login token rejected: claim "${err.claim}" is not accepted (${err.reason})`);
    throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown service account or bad login token', { cause: err });
  }
  const reject = (why: string): never => {
    throw new StrataError('AUTH_LOGIN_TOKEN_REJECTED', `login token rejected: ${why}`);
  };
  const { uid, exp, iat } = payload;
  if (typeof uid !== 'string') reject('it has no "uid" claim');
  if (uid !== options.uid) reject(`it names uid ${JSON.stringify(uid)}, not ${JSON.stringify(options.uid)}`);
  if (typeof exp !== 'number') reject('it has no "exp" claim (login tokens must expire)');
  const nowSeconds = options.nowMs / 1000;
  const max = options.maxLifetimeSeconds;
  if ((exp as number) - nowSeconds > max) reject(`it expires ${Math.round((exp as number) - nowSeconds)} s from now; login tokens may live at most ${max} s`);
  if (typeof iat === 'number' && (exp as number) - iat > max) reject(`it lives ${(exp as number) - iat} s (exp - iat); login tokens may live at most ${max} s`);
  return { uid: options.uid, expiresAtSeconds: exp as number, digest: loginTokenDigest(token) };
}
