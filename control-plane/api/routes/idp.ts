/**
 * External identity providers at /acs/api/v1 in DC/OS's shapes.
 *
 * Administration (read: `read` on `dcos:adminrouter:acs`, change: `full`):
 * - LDAP: `GET|PUT|DELETE /ldap/config`, `POST /ldap/config/test`
 *   (`{uid, password}` → `{code: TEST_PASSED|AUTHENTICATION_FAILURE|CONNECTION_FAILURE, description}`),
 *   `POST /ldap/importuser` (`{username}`), `POST /ldap/importgroup` (`{groupname}`).
 * - OIDC: `GET /auth/oidc/providers`, `GET|PUT|DELETE /auth/oidc/providers/{id}`.
 * - SAML: `GET /auth/saml/providers`, `GET|PUT|DELETE /auth/saml/providers/{id}`.
 * Secrets (`lookup-password`, `client_secret`) are never read back.
 *
 * Logins (public, as in Admin Router):
 * - `GET /auth/providers`: every way to log in (DC/OS's login page list).
 * - `GET /auth/login?oidc-provider=ID` (DC/OS; also `saml-provider`): as `.../login` below.
 * - `GET /auth/{oidc,saml}/providers/{id}/login?target=`: redirect to the provider.
 * - `GET /auth/oidc/providers/{id}/callback`, `POST /auth/saml/providers/{id}/acs-callback`
 *   (form `SAMLResponse`): verify, create or link the user, issue the auth
 *   token; then with a `target` path: the auth cookie and a redirect there;
 *   with a loopback `target` (the CLI): a redirect there with a one-time `code`;
 *   without one: `{uid, token}` and the cookie.
 * - `POST /auth/handoff` (`{code}` → `{uid, token}`): the CLI's exchange, once.
 * - `GET /auth/saml/providers/{id}/sp-metadata`, `.../acs-callback-url`.
 *
 * Users marked as LDAP users log in at `POST /auth/login` with their directory
 * password: this module hands the IAM the LDAP password check.
 */
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { IDP_ID_PATTERN, LdapConfig, OidcProviderConfig, SamlProviderConfig, type IdpType, type Principal } from '../../model/schemas.ts';
import type { Versioned } from '../../model/records.ts';
import { IdentityProviders, LDAP_ID, isLoopbackTarget, targetProblem } from '../../../security/idp/providers.ts';
import { openSamlServiceProvider, samlEndpoints } from '../../../security/idp/saml.ts';
import { AUTH_COOKIE } from '../auth.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC, requires } from '../permissions.ts';
import { IAM_RID } from './iam.ts';
import type { FastifyReply } from 'fastify';

const READ = requires(IAM_RID, 'read');
const WRITE = requires(IAM_RID, 'full');
const BASE = '/acs/api/v1';
const IdParams = Type.Object({ id: Type.String({ pattern: IDP_ID_PATTERN }) });
const TargetQuery = Type.Object({ target: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })) }, { additionalProperties: false });

/** The LDAP configuration as read back: without the lookup password. */
function ldapView(c: LdapConfig): Record<string, unknown> {
  const { 'lookup-password': _secret, ...rest } = c;
  return rest;
}

function oidcView(id: string, c: OidcProviderConfig): Record<string, unknown> {
  const { client_secret: _secret, ...rest } = c;
  return { provider_id: id, ...rest, callback_url: `${c.base_url.replace(/\/+$/, '')}${BASE}/auth/oidc/providers/${encodeURIComponent(id)}/callback` };
}

function samlView(id: string, c: SamlProviderConfig): Record<string, unknown> {
  return { provider_id: id, ...c, ...samlEndpoints(c, id) };
}

function checkTarget(target: string | undefined): void {
  if (target === undefined) return;
  const problem = targetProblem(target);
  if (problem) throw new StrataError('API_BAD_REQUEST', `target ${problem}`, { details: [{ path: '/target', errors: [problem] }] });
}

export function idpRoutes(app: ApiInstance, ctx: ApiContext): void {
  const logins = new Counter({
    name: 'strata_iam_provider_logins_total',
    help: 'Logins through external identity providers, by provider (<type>.<id>) and result (ok, or the error code)',
    labelNames: ['provider', 'result'],
    registers: [ctx.metrics.registry],
  });
  const idps = new IdentityProviders(ctx.records, ctx.iam, { onLogin: (provider, result) => logins.inc({ provider, result }) });
  ctx.iam.useExternalPasswords((principal, password) => idps.ldapPasswordCheck(principal, password));

  /** Issue the auth token and answer as `target` asks (see the module comment). */
  async function loggedIn(reply: FastifyReply, principal: Versioned<Principal>, target: string | undefined, provider: string, secureCookie: boolean): Promise<FastifyReply> {
    const issued = await ctx.tokens.issue(principal.value.uid, { principalIndex: principal.createIndex });
    if (target !== undefined && isLoopbackTarget(target)) {
      const url = new URL(target);
      url.searchParams.set('code', await idps.createHandoff(principal.value.uid, issued.token, provider));
      return reply.redirect(url.href, 302);
    }
    const maxAge = Math.max(0, issued.expiresAtSeconds - Math.floor(Date.now() / 1000));
    reply.header('set-cookie', `${AUTH_COOKIE}=${issued.token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secureCookie ? '; Secure' : ''}`);
    reply.header('cache-control', 'no-store');
    if (target !== undefined) return reply.redirect(target, 302);
    return reply.send({ uid: principal.value.uid, token: issued.token });
  }

  // LDAP -----------------------------------------------------------------------------

  app.get(`${BASE}/ldap/config`, { config: { permission: READ }, schema: { summary: 'The LDAP configuration (without lookup-password)' } }, async () => ldapView(await idps.must('ldap', LDAP_ID)));

  app.put(`${BASE}/ldap/config`, {
    config: { permission: WRITE },
    schema: { summary: 'Set the LDAP configuration (DC/OS LDAPConfiguration: host, port, enforce-starttls, use-ldaps, dntemplate or lookup-dn + user-search, group-search, ca-certs)', body: LdapConfig },
  }, async (request, reply) => {
    const { created } = await idps.put('ldap', LDAP_ID, request.body);
    return reply.code(created ? 201 : 200).send(ldapView(request.body));
  });

  app.delete(`${BASE}/ldap/config`, { config: { permission: WRITE }, schema: { summary: 'Remove the LDAP configuration (LDAP users can no longer log in)' } }, async (_request, reply) => {
    await idps.remove('ldap', LDAP_ID);
    return reply.code(204).send();
  });

  const Credentials = Type.Object({ uid: Type.String({ minLength: 1, maxLength: 256 }), password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });

  app.post(`${BASE}/ldap/config/test`, {
    config: { permission: WRITE },
    schema: { summary: 'Bind as {uid, password} with the stored configuration: {code: TEST_PASSED | AUTHENTICATION_FAILURE | CONNECTION_FAILURE, description}', body: Credentials },
  }, async (request) => idps.testLdap(request.body.uid, request.body.password));

  app.post(`${BASE}/ldap/importuser`, {
    config: { permission: WRITE },
    schema: { summary: 'Import a directory user (it logs in with its directory password)', body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 96 }) }, { additionalProperties: false }) },
  }, async (request, reply) => {
    await idps.importUser(request.body.username);
    return reply.code(201).send();
  });

  app.post(`${BASE}/ldap/importgroup`, {
    config: { permission: WRITE },
    schema: { summary: 'Import a directory group and its members: {members, skipped}', body: Type.Object({ groupname: Type.String({ minLength: 1, maxLength: 96 }) }, { additionalProperties: false }) },
  }, async (request, reply) => reply.code(201).send(await idps.importGroup(request.body.groupname)));

  // OIDC and SAML provider configurations ----------------------------------------------

  const configRoutes = <T extends 'oidc' | 'saml'>(type: T, body: T extends 'oidc' ? typeof OidcProviderConfig : typeof SamlProviderConfig, view: (id: string, c: never) => Record<string, unknown>): void => {
    const path = `${BASE}/auth/${type}/providers`;
    app.get(path, { config: { permission: READ }, schema: { summary: `The ${type.toUpperCase()} providers` } }, async () => {
      const all = await idps.list(type);
      return Object.fromEntries(all.map((p) => [p.id, view(p.id, p.config as never)]));
    });
    app.get(`${path}/:id`, { config: { permission: READ }, schema: { summary: `One ${type.toUpperCase()} provider (without secrets)`, params: IdParams } }, async (request) =>
      view(request.params.id, (await idps.must(type, request.params.id)) as never),
    );
    app.put(`${path}/:id`, { config: { permission: WRITE }, schema: { summary: `Create or replace a ${type.toUpperCase()} provider`, params: IdParams, body } }, async (request, reply) => {
      const { created } = await idps.put(type, request.params.id, request.body as never);
      return reply.code(created ? 201 : 200).send(view(request.params.id, request.body as never));
    });
    app.delete(`${path}/:id`, { config: { permission: WRITE }, schema: { summary: `Remove a ${type.toUpperCase()} provider`, params: IdParams } }, async (request, reply) => {
      await idps.remove(type, request.params.id);
      return reply.code(204).send();
    });
    app.get(`${path}/:id/login`, {
      config: { permission: PUBLIC },
      schema: { summary: `Start a ${type.toUpperCase()} login: redirect to the provider (target: a path here, or the CLI's loopback URL)`, params: IdParams, querystring: TargetQuery },
    }, async (request, reply) => {
      checkTarget(request.query.target);
      return reply.redirect(await idps.startLogin(type, request.params.id, request.query.target), 302);
    });
  };
  configRoutes('oidc', OidcProviderConfig, oidcView as never);
  configRoutes('saml', SamlProviderConfig, samlView as never);

  app.get(`${BASE}/auth/oidc/providers/:id/callback`, {
    config: { permission: PUBLIC },
    schema: { summary: 'OIDC redirect URI: verify the code (PKCE, state, nonce, ID token) and log the user in', params: IdParams, querystring: Type.Object({}, { additionalProperties: Type.String({ maxLength: 8192 }) }) },
  }, async (request, reply) => {
    const query = new URLSearchParams(request.query as Record<string, string>);
    const { principal, target } = await idps.finishOidc(request.params.id, query);
    const config = await idps.must('oidc', request.params.id);
    return loggedIn(reply, principal, target, `oidc.${request.params.id}`, config.base_url.startsWith('https:'));
  });

  // The ACS receives an HTML form post; the form parser lives only in this encapsulated context.
  void app.register(async (child: ApiInstance) => {
    child.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    child.post(`${BASE}/auth/saml/providers/:id/acs-callback`, {
      config: { permission: PUBLIC },
      schema: {
        summary: 'SAML Assertion Consumer Service (HTTP-POST): verify the signed Response and log the user in',
        params: IdParams,
        body: Type.Object({ SAMLResponse: Type.String({ minLength: 1, maxLength: 1024 * 1024 }), RelayState: Type.Optional(Type.String({ maxLength: 256 })) }),
      },
    }, async (request, reply) => {
      const { principal, target } = await idps.finishSaml(request.params.id, request.body.SAMLResponse);
      const config = await idps.must('saml', request.params.id);
      return loggedIn(reply, principal, target, `saml.${request.params.id}`, config.sp_base_url.startsWith('https:'));
    });
  });

  app.get(`${BASE}/auth/saml/providers/:id/sp-metadata`, { config: { permission: PUBLIC }, schema: { summary: 'This cluster\'s SAML SP metadata for provider {id} (XML)', params: IdParams } }, async (request, reply) => {
    const config = await idps.must('saml', request.params.id);
    return reply.type('application/samlmetadata+xml').send(openSamlServiceProvider(request.params.id, config).metadata());
  });

  app.get(`${BASE}/auth/saml/providers/:id/acs-callback-url`, { config: { permission: PUBLIC }, schema: { summary: 'The ACS URL to register at the IdP', params: IdParams } }, async (request) => ({
    'acs-callback-url': samlEndpoints(await idps.must('saml', request.params.id), request.params.id).acsUrl,
  }));

  app.get(`${BASE}/auth/providers`, { config: { permission: PUBLIC }, schema: { summary: 'The ways to log in (DC/OS login page shape)' } }, async () => {
    const out: Record<string, unknown> = {
      'dcos-users': { 'authentication-type': 'dcos-uid-password', description: 'Strata users (and LDAP users) with a password', 'client-method': 'dcos-usercredential-post-receive-authtoken', config: { start_flow_url: `${BASE}/auth/login` } },
    };
    for (const type of ['oidc', 'saml'] as IdpType[]) {
      for (const p of await idps.list(type)) {
        out[p.id] = {
          'authentication-type': type === 'oidc' ? 'oidc-authorization-code-flow' : 'saml-sp-initiated',
          provider_type: type,
          description: (p.config as { description?: string }).description ?? '',
          'client-method': 'browser-prompt-oidcidtoken-get-authtoken',
          config: { start_flow_url: `${BASE}/auth/${type}/providers/${encodeURIComponent(p.id)}/login` },
        };
      }
    }
    return out;
  });

  // DC/OS's SSO start: GET /acs/api/v1/auth/login?oidc-provider=<id> (Strata adds saml-provider=<id> and target).
  app.get(`${BASE}/auth/login`, {
    config: { permission: PUBLIC },
    schema: {
      summary: 'Start a browser login (DC/OS: ?oidc-provider=ID; also ?saml-provider=ID), redirecting to the provider',
      querystring: Type.Object({
        'oidc-provider': Type.Optional(Type.String({ pattern: IDP_ID_PATTERN })),
        'saml-provider': Type.Optional(Type.String({ pattern: IDP_ID_PATTERN })),
        target: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
      }, { additionalProperties: false }),
    },
  }, async (request, reply) => {
    const q = request.query;
    if ((q['oidc-provider'] === undefined) === (q['saml-provider'] === undefined)) {
      throw new StrataError('API_BAD_REQUEST', 'give exactly one of oidc-provider or saml-provider', { details: [{ path: '/oidc-provider', errors: ['exactly one of oidc-provider and saml-provider is required'] }] });
    }
    checkTarget(q.target);
    const [type, id] = q['oidc-provider'] !== undefined ? ['oidc' as const, q['oidc-provider']] : ['saml' as const, q['saml-provider']!];
    return reply.redirect(await idps.startLogin(type, id, q.target), 302);
  });

  app.post(`${BASE}/auth/handoff`, {
    config: { permission: PUBLIC },
    schema: { summary: 'Exchange the one-time code a browser login sent to the CLI\'s loopback URL for the auth token (once, within 60 s)', body: Type.Object({ code: Type.String({ pattern: '^[0-9a-f]{32}$' }) }, { additionalProperties: false }) },
  }, async (request) => idps.redeemHandoff(request.body.code));
}
