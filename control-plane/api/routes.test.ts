/**
 * The route walk: every registered route answers 401 without a token and 403
 * with a token that lacks its permission; public routes are exactly the
 * intended list.
 */
import test from 'ava';
import { startTestMaster } from '../../test/harness/master.ts';

const EXPECTED_PUBLIC = new Set([
  'GET /health',
  'GET /openapi.json',
  'GET /dcos-metadata/dcos-version.json',
  'POST /acs/api/v1/auth/login',
  'POST /acs/api/v1/auth/logout',
  'GET /acs/api/v1/auth/jwks',
  'GET /ca/dcos-ca.crt',
  'POST /ca/api/v2/info',
  'GET /ca/api/v2/crl',
  // external identity providers: login starts, callbacks, SP metadata, the login page list, the CLI hand-off
  'GET /acs/api/v1/auth/login',
  'GET /acs/api/v1/auth/providers',
  'POST /acs/api/v1/auth/handoff',
  'GET /acs/api/v1/auth/oidc/providers/:id/login',
  'GET /acs/api/v1/auth/oidc/providers/:id/callback',
  'GET /acs/api/v1/auth/saml/providers/:id/login',
  'POST /acs/api/v1/auth/saml/providers/:id/acs-callback',
  'GET /acs/api/v1/auth/saml/providers/:id/sp-metadata',
  'GET /acs/api/v1/auth/saml/providers/:id/acs-callback-url',
  // the web UI's static files (ui/)
  'GET /',
  'GET /ui/*',
]);

const fill = (url: string): string => url.replace(/:[^/]+/g, 'x').replace(/\*/g, 'x');

test('every route declares a permission; protected routes give 401 without a token and 403 without the permission', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const routes = h.master.app.strataRoutes.filter((r) => r.method !== 'HEAD');
  t.true(routes.length >= 7, `walked ${routes.length} routes`);
  const nobody = await h.tokenFor('nobody', []);
  const superuser = await h.superuserToken();
  const publicSeen = new Set<string>();
  for (const route of routes) {
    const name = `${route.method} ${route.url}`;
    const url = fill(route.url);
    const method = route.method as 'GET';
    if (route.permission.public) {
      publicSeen.add(name);
      const res = await h.master.app.inject({ method, url });
      t.not(res.statusCode, 401, `${name} is public`);
      continue;
    }
    const anonymous = await h.master.app.inject({ method, url });
    t.is(anonymous.statusCode, 401, `${name} without a token`);
    t.is(anonymous.json().code, 'API_UNAUTHENTICATED', name);
    t.is(anonymous.headers['www-authenticate'], 'oauthjwt', name);
    const forbidden = await h.master.app.inject({ method, url, headers: { authorization: `token=${nobody}` } });
    t.is(forbidden.statusCode, 403, `${name} without the permission`);
    t.is(forbidden.json().code, 'API_FORBIDDEN', name);
    const allowed = await h.master.app.inject({ method, url, headers: { authorization: `Bearer ${superuser}` } });
    t.false([401, 403].includes(allowed.statusCode), `${name} with the superuser: ${allowed.statusCode}`);
  }
  t.deepEqual([...publicSeen].sort(), [...EXPECTED_PUBLIC].sort(), 'the public routes are exactly the intended ones');
});

test('a route without a permission cannot be registered', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const { buildApi } = await import('./app.ts');
  const app = await buildApi(
    {
      config: (await import('../config/load.ts')).loadConfig({ env: {} }),
      store: h.store,
      records: h.master.records,
      tokens: h.master.tokens,
      iam: h.master.iam,
      metrics: { registry: new (await import('prom-client')).Registry() },
      role: () => 'leader',
      leader: async () => ({ id: 'x', apiUrl: 'http://x', fencingToken: 1, electedAt: new Date().toISOString() }),
    },
    { routes: [(a) => a.get('/open', async () => 'oops')] },
  ).catch((err: unknown) => err);
  t.true(app instanceof Error);
  t.regex((app as Error).message, /GET \/open declares no config.permission/);
});
