/**
 * External identity providers benchmark (issue 7.2): what a login costs at
 * `POST /acs/api/v1/auth/login` for a user imported from LDAP (a real slapd
 * this run starts: StartTLS, search bind with a lookup account, then a bind
 * as the user, one connection per step) against a local user in the same run
 * (the peer: one argon2id verification), interleaved, one login at a time,
 * through `app.inject` (no HTTP socket); and a whole OIDC login (start,
 * the provider's pages, callback: discovery cached, code exchange, JWKS
 * verification, userinfo) against an in-process oidc-provider.
 *
 * Options: --logins N per kind (default 40), --oidc N (default 10).
 */
import { browse } from '../test/harness/browser.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { startOidcIdp } from '../test/harness/oidc-idp.ts';
import { LDAP_SUFFIX, slapdUnavailable, startSlapd } from '../test/harness/slapd.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (n: number): number => Number(n.toFixed(2));

export async function run(args: string[]): Promise<unknown> {
  const n = option(args, 'logins', 40);
  const oidcLogins = option(args, 'oidc', 10);
  const why = slapdUnavailable();
  if (why) throw new Error(why);
  const slapd = await startSlapd();
  const h = await startTestMaster();
  try {
    const su = await h.superuserToken();
    const call = (method: 'GET' | 'PUT' | 'POST', url: string, payload?: object, token?: string) =>
      h.master.app.inject({ method, url, ...(payload ? { payload } : {}), ...(token ? { headers: { authorization: `token=${token}` } } : {}) });
    const put = await call('PUT', '/acs/api/v1/ldap/config', {
      host: '127.0.0.1', port: slapd.ldapPort, 'enforce-starttls': true, 'use-ldaps': false,
      'lookup-dn': `cn=admin,${LDAP_SUFFIX}`, 'lookup-password': 'adminpw',
      'user-search': { 'search-base': `ou=people,${LDAP_SUFFIX}`, 'search-filter-template': '(uid=%(username)s)' },
      'ca-certs': slapd.caPem,
    }, su);
    if (put.statusCode !== 201) throw new Error(put.body);
    await call('POST', '/acs/api/v1/ldap/importuser', { username: 'alice' }, su);
    await call('PUT', '/acs/api/v1/users/local-carol', { password: 'local-carol-password' }, su);
    const ldap: number[] = [];
    const local: number[] = [];
    const login = async (uid: string, password: string, into: number[]): Promise<void> => {
      const t0 = performance.now();
      const res = await call('POST', '/acs/api/v1/auth/login', { uid, password });
      into.push(performance.now() - t0);
      if (res.statusCode !== 200) throw new Error(`${uid}: ${res.body}`);
    };
    for (let i = 0; i < n; i++) {
      await login('alice', 'alicepw', ldap);
      await login('local-carol', 'local-carol-password', local);
    }

    const callback = `${h.master.apiUrl}/acs/api/v1/auth/oidc/providers/bench/callback`;
    const idp = await startOidcIdp(callback, 'bench-secret-0123456789');
    const oidc: number[] = [];
    try {
      await call('PUT', '/acs/api/v1/auth/oidc/providers/bench', { issuer: idp.issuer, base_url: h.master.apiUrl, client_id: 'strata', client_secret: 'bench-secret-0123456789' }, su);
      for (let i = 0; i < oidcLogins + 1; i++) {
        const t0 = performance.now();
        const start = await call('GET', '/acs/api/v1/auth/oidc/providers/bench/login');
        const done = await browse(start.headers.location as string, { fill: { login: `user${i}`, password: 'x' }, stopAt: callback });
        const res = await call('GET', done.url.slice(h.master.apiUrl.length));
        if (res.statusCode !== 200) throw new Error(res.body);
        if (i > 0) oidc.push(performance.now() - t0); // the first includes discovery
      }
    } finally {
      await idp.close();
    }
    return {
      note: 'one login at a time through app.inject; LDAP: StartTLS + lookup bind + search + user bind to a local slapd; local: argon2id (m=19 MiB, t=2); OIDC: the whole browser round trip including the in-process provider\'s own pages',
      logins: n,
      ldapLoginMs: { p50: ms(percentile(ldap, 50)), p99: ms(percentile(ldap, 99)) },
      localPasswordLoginMs: { p50: ms(percentile(local, 50)), p99: ms(percentile(local, 99)) },
      ldapOverLocalP50: Number((percentile(ldap, 50) / percentile(local, 50)).toFixed(2)),
      oidcLogins: oidc.length,
      oidcWholeLoginMs: { p50: ms(percentile(oidc, 50)), p99: ms(percentile(oidc, 99)) },
    };
  } finally {
    await h.close();
    await slapd.close();
  }
}
