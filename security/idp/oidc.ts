/**
 * OIDC relying party (authorization code flow with PKCE S256, `state` and
 * `nonce`) over `openid-client`, for one configured provider.
 *
 * The ID token is verified here with `jose` against the provider's JWKS
 * (signature, `iss` equal to the discovered issuer, `aud` containing our
 * client id, `azp` when several audiences, `exp`/`iat`, `nonce`), on top of
 * openid-client's own checks: openid-client alone may skip the signature of an
 * ID token fetched from the token endpoint over TLS (OIDC Core §3.1.3.7).
 * Claims the ID token leaves out (email, name) are read from userinfo for the
 * same `sub`.
 *
 * Plain `http://` issuers are accepted only on loopback addresses (tests,
 * a provider on the same host); `ca_certs` and `verify_server_certificate`
 * apply to every request to the provider (discovery, token, JWKS).
 */
import { request as httpsRequest } from 'node:https';
import { createRemoteJWKSet, customFetch as joseCustomFetch, jwtVerify, type JWTPayload } from 'jose';
import * as client from 'openid-client';
import { StrataError } from '../../common/errors.ts';
import type { OidcProviderConfig } from '../../control-plane/model/schemas.ts';

/** The redirect URI registered at the provider for provider `id`. */
export function oidcRedirectUri(config: OidcProviderConfig, id: string): string {
  return `${config.base_url.replace(/\/+$/, '')}/acs/api/v1/auth/oidc/providers/${encodeURIComponent(id)}/callback`;
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname === '::1';
}

/** What a login start hands the browser and keeps for the callback. */
export interface OidcChallenge {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** The verified identity from a callback. */
export interface OidcIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly claims: JWTPayload;
}

export interface OidcRelyingParty {
  authorizationUrl(challenge: OidcChallenge): Promise<string>;
  /** `query` is the callback's query string (`code`, `state`, or `error`). */
  finish(query: URLSearchParams, challenge: OidcChallenge): Promise<OidcIdentity>;
}

type FetchLike = (url: string, options: { body?: unknown; headers: Record<string, string>; method: string; signal?: AbortSignal }) => Promise<Response>;

/** fetch over node:https with our own trust (the provider's CA, or no verification when asked). */
function tlsFetch(config: OidcProviderConfig): FetchLike | undefined {
  if (config.ca_certs === undefined && config.verify_server_certificate !== false) return undefined;
  return (url, options) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') return fetch(url, options as RequestInit);
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(target, {
        method: options.method,
        headers: options.headers,
        ...(config.ca_certs ? { ca: config.ca_certs } : {}),
        rejectUnauthorized: config.verify_server_certificate !== false,
        minVersion: 'TLSv1.2',
        ...(options.signal ? { signal: options.signal } : {}),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 500, headers }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      const body = options.body;
      if (body !== undefined && body !== null) req.write(body instanceof URLSearchParams ? body.toString() : (body as string | Buffer));
      req.end();
    });
  };
}

const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function rejected(message: string, cause?: unknown): StrataError {
  return new StrataError('IDP_RESPONSE_REJECTED', `OIDC login rejected: ${message}`, cause === undefined ? {} : { cause });
}

/** Discover the provider and build its relying party; `IDP_UNAVAILABLE` when discovery fails. */
export async function openOidcRelyingParty(id: string, config: OidcProviderConfig): Promise<OidcRelyingParty> {
  const issuerUrl = new URL(config.issuer);
  const insecure = issuerUrl.protocol === 'http:';
  if (insecure && !isLoopbackHost(issuerUrl.hostname)) {
    throw new StrataError('IDP_UNAVAILABLE', `OIDC issuer ${config.issuer} is plain http on a non-loopback host; use https`);
  }
  const fetcher = tlsFetch(config);
  let configuration: client.Configuration;
  try {
    configuration = await client.discovery(issuerUrl, config.client_id, { client_secret: config.client_secret }, client.ClientSecretBasic(config.client_secret), {
      ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
      ...(fetcher ? { [client.customFetch]: fetcher } : {}),
      timeout: 10,
    });
  } catch (err) {
    throw new StrataError('IDP_UNAVAILABLE', `OIDC discovery at ${config.issuer} failed: ${(err as Error).message}`, { cause: err });
  }
  if (fetcher) configuration[client.customFetch] = fetcher as never;
  const metadata = configuration.serverMetadata();
  if (!metadata.jwks_uri) throw new StrataError('IDP_UNAVAILABLE', `OIDC provider ${config.issuer} publishes no jwks_uri`);
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: 10_000, ...(fetcher ? { [joseCustomFetch]: fetcher as never } : {}) });
  const redirectUri = oidcRedirectUri(config, id);
  const scope = ['openid', ...(config.scopes ?? ['email', 'profile']).filter((s) => s !== 'openid')].join(' ');

  return {
    async authorizationUrl(challenge) {
      return client.buildAuthorizationUrl(configuration, {
        redirect_uri: redirectUri,
        scope,
        response_type: 'code',
        code_challenge: await client.calculatePKCECodeChallenge(challenge.codeVerifier),
        code_challenge_method: 'S256',
        state: challenge.state,
        nonce: challenge.nonce,
      }).href;
    },

    async finish(query, challenge) {
      const error = query.get('error');
      if (error !== null) throw rejected(`the provider answered ${error}${query.get('error_description') ? `: ${query.get('error_description')}` : ''}`);
      // The callback URL is rebuilt from the configured redirect URI, never from the request's Host header.
      const current = new URL(redirectUri);
      for (const [k, v] of query) current.searchParams.append(k, v);
      let idToken: string | undefined;
      let accessToken: string | undefined;
      try {
        const tokens = await client.authorizationCodeGrant(configuration, current, {
          pkceCodeVerifier: challenge.codeVerifier,
          expectedState: challenge.state,
          expectedNonce: challenge.nonce,
          idTokenExpected: true,
        });
        idToken = tokens.id_token;
        accessToken = tokens.access_token;
      } catch (err) {
        const e = err as { code?: string; error?: string; message: string };
        // Transport failures (fetch's TypeError, timeouts) and non-OAuth answers are the provider's outage, not a bad login.
        if (e.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err instanceof TypeError || (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') throw new StrataError('IDP_UNAVAILABLE', `OIDC token endpoint failed: ${e.message}`, { cause: err });
        throw rejected(e.error ? `${e.error}: ${e.message}` : e.message, err);
      }
      if (!idToken) throw rejected('the token response has no id_token');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, jwks, {
          issuer: metadata.issuer,
          audience: config.client_id,
          algorithms: ID_TOKEN_ALGORITHMS,
          requiredClaims: ['sub', 'exp', 'iat'],
          clockTolerance: 30,
        }));
      } catch (err) {
        throw rejected(`ID token: ${(err as Error).message}`, err);
      }
      if (payload['nonce'] !== challenge.nonce) throw rejected('ID token nonce does not match the login');
      if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload['azp'] !== config.client_id) throw rejected('ID token has several audiences and azp is not our client');
      // Providers may keep scope claims (email, name) out of the ID token and serve them at userinfo
      // (OIDC Core §5.4): fetch them for the same subject; the verified ID token's claims win.
      let claims: JWTPayload = payload;
      if (accessToken && metadata.userinfo_endpoint) {
        try {
          const info = await client.fetchUserInfo(configuration, accessToken, payload.sub!);
          claims = { ...info, ...payload };
        } catch (err) {
          throw rejected(`userinfo: ${(err as Error).message}`, err);
        }
      }
      return { issuer: metadata.issuer, subject: payload.sub!, claims };
    },
  };
}
