/**
 * `strata iam ldap|oidc|saml ...`: the external identity providers' API from
 * the command line, and `strata auth login --provider ID`: a browser login
 * at an OIDC or SAML provider.
 *
 * The browser login (RFC 8252's loopback redirect): the CLI listens on
 * 127.0.0.1 (a free port), prints the login URL (with
 * `target=http://127.0.0.1:PORT/callback`) for the user to open, and waits.
 * After the provider, the cluster redirects the browser to that loopback URL
 * with a one-time code (never the token); the CLI exchanges the code at
 * `POST /acs/api/v1/auth/handoff` (once, within 60 s) and keeps the token.
 * Secrets (LDAP lookup password, OIDC client secret) come from files, never
 * from the command line.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { cliStatePath, DEFAULT_API_URL, readCliState, writeCliState } from './auth.ts';
import { apiRequest, loggedIn, table } from './client.ts';

const enc = encodeURIComponent;

async function readFileFlag(flag: string, file: string): Promise<string> {
  return readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read --${flag} ${file}: ${err.message}`);
  });
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);

// LDAP -------------------------------------------------------------------------

/** `strata iam ldap config set FILE.json`: the DC/OS LDAPConfiguration JSON. */
export async function ldapConfigSet(args: ParsedArgs): Promise<number> {
  const file = args.words[4]!;
  let body: unknown;
  try {
    body = JSON.parse(await readFileFlag('file', file));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
  await apiRequest(await loggedIn(), 'PUT', '/acs/api/v1/ldap/config', body);
  console.log('LDAP configuration set; check it with `strata iam ldap config test UID`');
  return 0;
}

export async function ldapConfigShow(): Promise<number> {
  console.log(json(await apiRequest(await loggedIn(), 'GET', '/acs/api/v1/ldap/config')));
  return 0;
}

export async function ldapConfigTest(args: ParsedArgs): Promise<number> {
  const uid = args.words[4]!;
  const file = args.values['password-file'];
  const password = file ? (await readFileFlag('password-file', file)).replace(/\r?\n$/, '') : process.env.STRATA_LDAP_PASSWORD;
  if (!password) throw new UsageError('no password given: use --password-file FILE or STRATA_LDAP_PASSWORD');
  const result = await apiRequest<{ code: string; description: string }>(await loggedIn(), 'POST', '/acs/api/v1/ldap/config/test', { uid, password });
  console.log(`${result.code}: ${result.description}`);
  return result.code === 'TEST_PASSED' ? 0 : 1;
}

export async function ldapConfigRemove(): Promise<number> {
  await apiRequest(await loggedIn(), 'DELETE', '/acs/api/v1/ldap/config');
  console.log('LDAP configuration removed; LDAP users can no longer log in');
  return 0;
}

export async function ldapImportUser(args: ParsedArgs): Promise<number> {
  const username = args.words[3]!;
  await apiRequest(await loggedIn(), 'POST', '/acs/api/v1/ldap/importuser', { username });
  console.log(`Imported LDAP user ${username}; it logs in with its directory password`);
  return 0;
}

export async function ldapImportGroup(args: ParsedArgs): Promise<number> {
  const groupname = args.words[3]!;
  const r = await apiRequest<{ members: string[]; skipped: string[] }>(await loggedIn(), 'POST', '/acs/api/v1/ldap/importgroup', { groupname });
  console.log(`Imported LDAP group ${groupname} with ${r.members.length} member(s): ${r.members.join(', ') || '-'}`);
  if (r.skipped.length > 0) console.log(`Skipped (not found, or the uid belongs to a local principal): ${r.skipped.join(', ')}`);
  return 0;
}

// OIDC and SAML -------------------------------------------------------------------

export async function oidcAdd(args: ParsedArgs): Promise<number> {
  const id = args.words[3]!;
  const v = args.values;
  for (const flag of ['issuer', 'base-url', 'client-id', 'client-secret-file'] as const) if (v[flag] === undefined) throw new UsageError(`--${flag} is required`);
  const body = {
    issuer: v.issuer,
    base_url: v['base-url'],
    client_id: v['client-id'],
    client_secret: (await readFileFlag('client-secret-file', v['client-secret-file']!)).replace(/\r?\n$/, ''),
    ...(v.description === undefined ? {} : { description: v.description }),
    ...(v['uid-claim'] === undefined ? {} : { uid_claim: v['uid-claim'] }),
    ...(v['ca-certs'] === undefined ? {} : { ca_certs: await readFileFlag('ca-certs', v['ca-certs']) }),
    ...(args.booleans.has('insecure-skip-verify') ? { verify_server_certificate: false } : {}),
  };
  const view = await apiRequest<{ callback_url: string }>(await loggedIn(), 'PUT', `/acs/api/v1/auth/oidc/providers/${enc(id)}`, body);
  console.log(`OIDC provider ${id} set; register this redirect URI at the provider: ${view.callback_url}`);
  return 0;
}

export async function samlAdd(args: ParsedArgs): Promise<number> {
  const id = args.words[3]!;
  const v = args.values;
  for (const flag of ['idp-metadata', 'sp-base-url'] as const) if (v[flag] === undefined) throw new UsageError(`--${flag} is required`);
  const body = {
    idp_metadata: await readFileFlag('idp-metadata', v['idp-metadata']!),
    sp_base_url: v['sp-base-url'],
    ...(v.description === undefined ? {} : { description: v.description }),
    ...(v['uid-attribute'] === undefined ? {} : { uid_attribute: v['uid-attribute'] }),
  };
  const view = await apiRequest<{ entityId: string; acsUrl: string }>(await loggedIn(), 'PUT', `/acs/api/v1/auth/saml/providers/${enc(id)}`, body);
  console.log(`SAML provider ${id} set; at the IdP register entity id ${view.entityId} and ACS URL ${view.acsUrl} (metadata: ${view.entityId})`);
  return 0;
}

async function providerList(type: 'oidc' | 'saml', args: ParsedArgs): Promise<number> {
  const all = await apiRequest<Record<string, Record<string, string>>>(await loggedIn(), 'GET', `/acs/api/v1/auth/${type}/providers`);
  if (args.booleans.has('json')) console.log(json(all));
  else if (type === 'oidc') console.log(table(['ID', 'ISSUER', 'CLIENT', 'DESCRIPTION'], Object.entries(all).map(([id, p]) => [id, p['issuer'] ?? '', p['client_id'] ?? '', p['description'] ?? ''])));
  else console.log(table(['ID', 'SP ENTITY ID', 'DESCRIPTION'], Object.entries(all).map(([id, p]) => [id, p['entityId'] ?? '', p['description'] ?? ''])));
  return 0;
}
export const oidcList = (args: ParsedArgs): Promise<number> => providerList('oidc', args);
export const samlList = (args: ParsedArgs): Promise<number> => providerList('saml', args);

async function providerRemove(type: 'oidc' | 'saml', args: ParsedArgs): Promise<number> {
  const id = args.words[3]!;
  await apiRequest(await loggedIn(), 'DELETE', `/acs/api/v1/auth/${type}/providers/${enc(id)}`);
  console.log(`Removed ${type.toUpperCase()} provider ${id}`);
  return 0;
}
export const oidcRemove = (args: ParsedArgs): Promise<number> => providerRemove('oidc', args);
export const samlRemove = (args: ParsedArgs): Promise<number> => providerRemove('saml', args);

// Browser login ----------------------------------------------------------------------

const PAGE = (text: string): string => `<!doctype html><meta charset="utf-8"><title>Strata login</title><p>${text.replace(/[<>&]/g, '')}</p>`;

/** `strata auth login --provider ID`: see the module comment. */
export async function providerLogin(args: ParsedArgs): Promise<number> {
  const statePath = cliStatePath();
  const previous = await readCliState(statePath);
  const url = (args.values.url ?? previous?.url ?? DEFAULT_API_URL).replace(/\/+$/, '');
  const id = args.values.provider!;
  const timeoutSeconds = Number(args.values.timeout ?? 300);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) throw new UsageError('--timeout must be a positive number of seconds');
  const providers = (await fetch(`${url}/acs/api/v1/auth/providers`).then((r) => r.json())) as Record<string, { provider_type?: string; config?: { start_flow_url?: string } }>;
  const provider = providers[id];
  if (!provider?.config?.start_flow_url || (provider.provider_type !== 'oidc' && provider.provider_type !== 'saml')) {
    const known = Object.entries(providers).filter(([, p]) => p.provider_type).map(([k]) => k);
    console.error(`strata: no OIDC or SAML provider ${JSON.stringify(id)} at ${url} (known: ${known.join(', ') || 'none'})`);
    return 1;
  }

  let settle: (result: { code: string } | { error: string }) => void = () => undefined;
  const arrived = new Promise<{ code: string } | { error: string }>((resolve) => {
    settle = resolve;
  });
  const server = createServer((req, res) => {
    const here = new URL(req.url ?? '/', 'http://127.0.0.1');
    const code = here.searchParams.get('code');
    if (here.pathname !== '/callback' || !code || !/^[0-9a-f]{32}$/.test(code)) {
      res.writeHead(404, { 'content-type': 'text/html' }).end(PAGE('Not the login callback.'));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE('Logged in to Strata. You can close this tab and return to the terminal.'));
    settle({ code });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const timer = setTimeout(() => settle({ error: `no login within ${timeoutSeconds} s` }), timeoutSeconds * 1000);
  try {
    const target = `http://127.0.0.1:${port}/callback`;
    console.log(`Open this URL in a browser on this machine to log in with ${id}:\n\n  ${url}${provider.config.start_flow_url}?target=${enc(target)}\n\nWaiting for the login (up to ${timeoutSeconds} s)...`);
    const result = await arrived;
    if ('error' in result) {
      console.error(`strata: ${result.error}`);
      return 1;
    }
    const response = await fetch(`${url}/acs/api/v1/auth/handoff`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: result.code }) });
    const answer = (await response.json().catch(() => ({}))) as { uid?: string; token?: string; code?: string; message?: string };
    if (!response.ok || !answer.token || !answer.uid) {
      console.error(`strata: login failed (${response.status} ${answer.code ?? ''}): ${answer.message ?? 'no message'}`);
      return 1;
    }
    await writeCliState(statePath, { url, uid: answer.uid, token: answer.token });
    console.log(`Logged in to ${url} as ${answer.uid} (via ${id}); token kept in ${statePath}`);
    return 0;
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    server.close();
  }
}
