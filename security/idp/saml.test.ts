/**
 * SAML 2.0 SP login against a samlify IdentityProvider in the test, which
 * signs real Responses with a key made here. Checks: SP metadata and the
 * AuthnRequest redirect; a good signed assertion logs the user in (created on
 * first login); refused: a replayed assertion, another Audience or Recipient,
 * an expired assertion, a NameID changed after signing, a stripped signature,
 * a key the metadata does not name, an unknown or missing InResponseTo.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import * as samlify from 'samlify';
import { makeSigningCert } from '../../test/harness/pki.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import './saml.ts'; // sets samlify's schema validator

const IDP_ENTITY = 'https://idp.example.test/metadata';
const IDP_SSO = 'https://idp.example.test/sso';

function makeIdp(keyPem: string, certPem: string): ReturnType<typeof samlify.IdentityProvider> {
  return samlify.IdentityProvider({
    entityID: IDP_ENTITY,
    signingCert: certPem,
    privateKey: keyPem,
    singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: IDP_SSO }],
    nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
  });
}

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'strata-saml-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const signing = makeSigningCert(dir, 'idp');
  const foreign = makeSigningCert(dir, 'foreign');
  const idp = makeIdp(signing.keyPem, signing.certPem);
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const call = (method: string, url: string, token?: string, payload?: unknown) =>
    h.master.app.inject({ method: method as 'GET', url, ...(token ? { headers: { authorization: `token=${token}` } } : {}), ...(payload === undefined ? {} : { payload: payload as object }) });
  const put = await call('PUT', '/acs/api/v1/auth/saml/providers/corp', su, { description: 'Corp SSO', idp_metadata: idp.getMetadata(), sp_base_url: h.master.apiUrl });
  if (put.statusCode !== 201) throw new Error(put.body);
  const spXml = (await call('GET', '/acs/api/v1/auth/saml/providers/corp/sp-metadata')).body;
  const sp = samlify.ServiceProvider({ metadata: spXml });
  const acsUrl = `${h.master.apiUrl}/acs/api/v1/auth/saml/providers/corp/acs-callback`;
  const entityId = `${h.master.apiUrl}/acs/api/v1/auth/saml/providers/corp/sp-metadata`;

  /** Start a login at Strata; returns the AuthnRequest id the IdP must answer. */
  const start = async (): Promise<string> => {
    const res = await call('GET', '/acs/api/v1/auth/saml/providers/corp/login');
    if (res.statusCode !== 302) throw new Error(res.body);
    const url = new URL(res.headers.location as string);
    if (`${url.origin}${url.pathname}` !== IDP_SSO) throw new Error(`redirected to ${url.href}`);
    const parsed = await idp.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(url.searchParams) } as never);
    return (parsed.extract as { request: { id: string } }).request.id;
  };

  /** A Response signed by `signer` (default: the configured IdP), with template values overridden. */
  const respond = async (requestId: string, overrides: Record<string, string> = {}, signer = idp, attributeStatementXml = ''): Promise<{ response: string; assertionId: string }> => {
    const now = new Date();
    const later = new Date(now.getTime() + 5 * 60_000).toISOString();
    const assertionId = `_${randomBytes(16).toString('hex')}`;
    const values: Record<string, string> = {
      ID: `_${randomBytes(16).toString('hex')}`, AssertionID: assertionId, Destination: acsUrl, Audience: entityId, EntityID: entityId,
      SubjectRecipient: acsUrl, Issuer: IDP_ENTITY, IssueInstant: now.toISOString(), StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
      ConditionsNotBefore: now.toISOString(), ConditionsNotOnOrAfter: later, SubjectConfirmationDataNotOnOrAfter: later,
      NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', NameID: 'alice@example.test', InResponseTo: requestId,
      AuthnStatement: '', AttributeStatement: '', ...overrides,
    };
    const { context } = await signer.createLoginResponse(sp, {} as never, 'post', {}, (template: string) => ({
      id: values['ID']!,
      // IdP-initiated: no InResponseTo attribute at all (an empty one is not schema-valid).
      // An attribute statement is XML: put into the template as is (tag values are escaped).
      context: samlify.SamlLib.replaceTagsByValue((requestId === '' ? template.replace(/ InResponseTo="\{InResponseTo\}"/g, '') : template).replace('{AttributeStatement}', attributeStatementXml), values),
    })) as { context: string };
    return { response: context, assertionId: values['AssertionID']! };
  };

  const post = (samlResponse: string) =>
    h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/saml/providers/corp/acs-callback', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ SAMLResponse: samlResponse }).toString() });

  return { h, su, call, idp, foreign, start, respond, post, acsUrl, entityId };
}

test('SP metadata, AuthnRequest, a signed assertion logs in; the same assertion again is refused', async (t) => {
  const { su, call, start, respond, post, acsUrl, entityId } = await setup(t);
  const metadata = (await call('GET', '/acs/api/v1/auth/saml/providers/corp/sp-metadata')).body;
  t.true(metadata.includes(`entityID="${entityId}"`));
  t.true(metadata.includes(`Location="${acsUrl}"`));
  t.true(metadata.includes('WantAssertionsSigned="true"'));
  t.deepEqual((await call('GET', '/acs/api/v1/auth/saml/providers/corp/acs-callback-url')).json(), { 'acs-callback-url': acsUrl });
  t.like((await call('GET', '/acs/api/v1/auth/providers')).json()['corp'], { 'authentication-type': 'saml-sp-initiated', description: 'Corp SSO' });

  const requestId = await start();
  t.regex(requestId, /^_[0-9a-f]{32}$/);
  const good = await respond(requestId);
  const res = await post(good.response);
  t.is(res.statusCode, 200, res.body);
  t.is(res.json().uid, 'alice@example.test');
  t.regex(String(res.headers['set-cookie']), /^dcos-acs-auth-cookie=.+HttpOnly; SameSite=Lax$/);
  t.like((await call('GET', '/acs/api/v1/users/alice%40example.test', su)).json(), { provider_type: 'saml', provider_id: 'corp', is_remote: true });
  t.is((await call('GET', '/acs/api/v1/users', res.json().token)).statusCode, 403, 'a valid token, no permissions');

  const replay = await post(good.response);
  t.is(replay.json().code, 'IDP_RESPONSE_REJECTED');
  t.regex(replay.json().message, /already used/, 'the same Response again');
  // The same assertion answering a new request (a replay re-wrapped by someone holding it) is refused too.
  const second = await start();
  const replayed = await respond(second, { AssertionID: good.assertionId });
  const again = await post(replayed.response);
  t.is(again.statusCode, 401);
  t.regex(again.json().message, /already used/);
  // A fresh assertion for that request still works: the replay did not consume the request.
  t.is((await post((await respond(second)).response)).statusCode, 200);
  const metrics = (await call('GET', '/metrics', su)).body;
  t.regex(metrics, /strata_iam_provider_logins_total\{provider="saml.corp",result="ok"\} 2/);
});

test('refused: wrong audience, recipient or destination, expired, tampered, unsigned, foreign key, unknown or missing InResponseTo', async (t) => {
  const { start, respond, post, foreign } = await setup(t);
  const requestId = await start();
  const past = new Date(Date.now() - 10 * 60_000).toISOString();
  const cases: [string, () => Promise<string>, RegExp][] = [
    ['another audience', async () => (await respond(requestId, { Audience: 'https://other-sp.example/metadata' })).response, /Audience/],
    ['another recipient', async () => (await respond(requestId, { SubjectRecipient: 'https://other-sp.example/acs' })).response, /Recipient/],
    ['another destination', async () => (await respond(requestId, { Destination: 'https://other-sp.example/acs' })).response, /Destination/],
    ['expired', async () => (await respond(requestId, { ConditionsNotBefore: past, ConditionsNotOnOrAfter: past, SubjectConfirmationDataNotOnOrAfter: past })).response, /SUBJECT_UNCONFIRMED|expired/],
    ['NameID changed after signing', async () => {
      const xml = Buffer.from((await respond(requestId)).response, 'base64').toString('utf8').replace('alice@example.test', 'admin@example.test');
      return Buffer.from(xml).toString('base64');
    }, /signature|SIGNATURE/i],
    ['signature stripped', async () => {
      const xml = Buffer.from((await respond(requestId)).response, 'base64').toString('utf8').replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, '');
      return Buffer.from(xml).toString('base64');
    }, /signature|SIGNATURE/i],
    ['signed by a key the metadata does not name', async () => (await respond(requestId, {}, makeIdp(foreign.keyPem, foreign.certPem))).response, /signature|CERTIFICATE/i],
    ['unknown InResponseTo', async () => (await respond(`_${'0'.repeat(32)}`)).response, /unknown, expired or already used/],
    ['IdP-initiated (no InResponseTo)', async () => (await respond('')).response, /InResponseTo/],
    ['not XML', async () => Buffer.from('<not-saml').toString('base64'), /./],
  ];
  for (const [name, make, why] of cases) {
    const res = await post(await make());
    t.is(res.statusCode, 401, `${name}: ${res.body}`);
    t.is(res.json().code, 'IDP_RESPONSE_REJECTED', name);
    t.regex(res.json().message, why, name);
  }
  t.is((await post((await respond(requestId)).response)).statusCode, 200, 'none of the refusals used up the request');
  t.true(process.listeners('uncaughtException').length < 5 && process.stdout.listenerCount('drain') < 5, 'XSD validations leave no listeners behind');
});

test('provider config: bad metadata names the field; admin only; removed providers cannot log in', async (t) => {
  const { h, su, call } = await setup(t);
  const bad = await call('PUT', '/acs/api/v1/auth/saml/providers/broken', su, { idp_metadata: '<nope/>', sp_base_url: h.master.apiUrl });
  t.is(bad.statusCode, 400);
  t.deepEqual(bad.json().details.map((d: { path: string }) => d.path), ['/idp_metadata']);
  const missing = await call('PUT', '/acs/api/v1/auth/saml/providers/broken', su, { sp_base_url: 'not a url' });
  t.is(missing.statusCode, 400);
  t.deepEqual(missing.json().details.map((d: { path: string }) => d.path).sort(), ['/idp_metadata', '/sp_base_url']);
  const user = await h.tokenFor('eve', []);
  t.is((await call('GET', '/acs/api/v1/auth/saml/providers', user)).statusCode, 403);
  t.is((await call('DELETE', '/acs/api/v1/auth/saml/providers/corp', user)).statusCode, 403);
  t.deepEqual(Object.keys((await call('GET', '/acs/api/v1/auth/saml/providers', su)).json()), ['corp']);
  t.is((await call('DELETE', '/acs/api/v1/auth/saml/providers/corp', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/auth/saml/providers/corp/login')).json().code, 'IDP_NOT_CONFIGURED');
  t.is((await call('DELETE', '/acs/api/v1/auth/saml/providers/corp', su)).statusCode, 404);
});

test('uid_attribute: the uid comes from an assertion attribute; a missing one is refused naming it', async (t) => {
  const { h, su, call, idp, start, respond, post } = await setup(t);
  const put = await call('PUT', '/acs/api/v1/auth/saml/providers/corp', su, { idp_metadata: idp.getMetadata(), sp_base_url: h.master.apiUrl, uid_attribute: 'uid' });
  t.is(put.statusCode, 200, 'replaced');
  const attribute = (value: string): string =>
    `<saml:AttributeStatement><saml:Attribute Name="uid" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xsi:type="xs:string">${value}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>`;
  const requestId = await start();
  const missing = await post((await respond(requestId)).response);
  t.is(missing.statusCode, 401);
  t.regex(missing.json().message, /uid is missing or not a valid uid/);
  const ok = await post((await respond(await start(), { NameID: 'opaque-id-123' }, idp, attribute('carol'))).response); // the refusal used its request up
  t.is(ok.statusCode, 200, ok.body);
  t.is(ok.json().uid, 'carol');
  // Linked by the NameID: the next login finds carol even if the attribute changed.
  const next = await post((await respond(await start(), { NameID: 'opaque-id-123' }, idp, attribute('carol-renamed'))).response);
  t.is(next.json().uid, 'carol');
});
