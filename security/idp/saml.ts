/**
 * SAML 2.0 service provider over `samlify` for one configured provider: SP
 * metadata, the SP-initiated AuthnRequest (HTTP-Redirect binding) and the
 * ACS check of the IdP's signed Response (HTTP-POST binding).
 *
 * samlify verifies the XML signature (against the certificate in the IdP's
 * metadata, resisting signature wrapping: values are read from the verified
 * assertion only), the Issuer, the Conditions window and the session expiry.
 * On top, {@link SamlServiceProvider.verify} requires: the Audience is our SP
 * entity id; the SubjectConfirmationData's Recipient is our ACS URL and its
 * NotOnOrAfter has not passed; the Destination (when given) is our ACS URL;
 * InResponseTo names our request on both the Response and the confirmation.
 * Single use of the assertion ID and of the request is the caller's (store) part.
 */
import * as validator from '@authenio/samlify-node-xmllint';
import * as samlify from 'samlify';
import { StrataError } from '../../common/errors.ts';
import type { SamlProviderConfig } from '../../control-plane/model/schemas.ts';

/**
 * samlify refuses to parse without an XSD validator. node-xmllint (emscripten,
 * about 50 ms a document) adds a process `uncaughtException` listener and a
 * stdout `drain` listener on every call and never removes them: the wrapper
 * removes what each (synchronous) validation added, so a long-running master
 * does not collect two listeners per SAML login.
 */
const LEAKED: readonly [NodeJS.EventEmitter, string][] = [[process, 'uncaughtException'], [process.stdout, 'drain'], [process.stderr, 'drain']];
samlify.setSchemaValidator({
  validate: async (xml: string): Promise<unknown> => {
    const before = LEAKED.map(([emitter, event]) => new Set(emitter.listeners(event)));
    try {
      return await validator.validate(xml);
    } finally {
      LEAKED.forEach(([emitter, event], i) => {
        for (const listener of emitter.listeners(event)) if (!before[i]!.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      });
    }
  },
});

const BASE = '/acs/api/v1/auth/saml/providers';

export interface SamlEndpoints {
  /** Our SP entity id: the URL of our metadata. */
  readonly entityId: string;
  /** Assertion Consumer Service (HTTP-POST). */
  readonly acsUrl: string;
}

export function samlEndpoints(config: SamlProviderConfig, id: string): SamlEndpoints {
  const base = `${config.sp_base_url.replace(/\/+$/, '')}${BASE}/${encodeURIComponent(id)}`;
  return { entityId: `${base}/sp-metadata`, acsUrl: `${base}/acs-callback` };
}

/** A verified assertion. */
export interface SamlIdentity {
  readonly assertionId: string;
  /** The request this answers (our flow id, without the leading `_`). */
  readonly inResponseTo: string;
  readonly nameId: string;
  readonly attributes: Readonly<Record<string, string | string[]>>;
  /** When the assertion stops being usable (the replay record lives until then). */
  readonly notOnOrAfterMs: number;
}

export interface SamlServiceProvider {
  readonly endpoints: SamlEndpoints;
  metadata(): string;
  /** The IdP URL (HTTP-Redirect) carrying an AuthnRequest whose ID is `_<requestId>`, and `relayState`. */
  loginUrl(requestId: string, relayState: string): string;
  verify(samlResponse: string, nowMs: number): Promise<SamlIdentity>;
}

function rejected(message: string, cause?: unknown): StrataError {
  return new StrataError('IDP_RESPONSE_REJECTED', `SAML login rejected: ${message}`, cause === undefined ? {} : { cause });
}

const one = (v: unknown): string | undefined => (Array.isArray(v) ? (v[0] as string | undefined) : typeof v === 'string' ? v : undefined);

/** Build the SP; `API_BAD_REQUEST` (naming `idp_metadata`) when the IdP metadata is unusable. */
export function openSamlServiceProvider(id: string, config: SamlProviderConfig): SamlServiceProvider {
  const endpoints = samlEndpoints(config, id);
  let idp: ReturnType<typeof samlify.IdentityProvider>;
  try {
    idp = samlify.IdentityProvider({ metadata: config.idp_metadata });
    if (!idp.entityMeta.getEntityID()) throw new Error('no entityID');
    if (!idp.entityMeta.getSingleSignOnService(samlify.Constants.namespace.binding.redirect)) throw new Error('no SingleSignOnService with the HTTP-Redirect binding');
  } catch (err) {
    throw new StrataError('API_BAD_REQUEST', `idp_metadata is not usable SAML IdP metadata: ${(err as Error).message}`, { details: [{ path: '/idp_metadata', errors: [(err as Error).message] }] });
  }
  const sp = (requestId?: string): ReturnType<typeof samlify.ServiceProvider> =>
    samlify.ServiceProvider({
      entityID: endpoints.entityId,
      assertionConsumerService: [{ Binding: samlify.Constants.namespace.binding.post, Location: endpoints.acsUrl }],
      wantAssertionsSigned: true,
      authnRequestsSigned: false,
      clockDrifts: [-30_000, 30_000],
      ...(requestId ? { generateID: () => `_${requestId}` } : {}),
    });

  return {
    endpoints,
    metadata: () => sp().getMetadata(),

    loginUrl(requestId, relayState) {
      const { context } = sp(requestId).createLoginRequest(idp, 'redirect') as { context: string };
      const url = new URL(context);
      url.searchParams.set('RelayState', relayState);
      return url.href;
    },

    async verify(samlResponse, nowMs) {
      let result: Awaited<ReturnType<ReturnType<typeof samlify.ServiceProvider>['parseLoginResponse']>>;
      try {
        result = await sp().parseLoginResponse(idp, 'post', { body: { SAMLResponse: samlResponse } } as never);
      } catch (err) {
        throw rejected(err instanceof Error ? err.message : String(err), err);
      }
      // Read the confirmation from the verified assertion only (not from the possibly wrapped document).
      const [verified, assertion] = samlify.SamlLib.verifySignature(result.samlContent, { metadata: idp.entityMeta });
      if (!verified || !assertion) throw rejected('the assertion is not signed (wantAssertionsSigned)');
      const extra = samlify.Extractor.extract(result.samlContent, [
        { key: 'assertion', localPath: ['Assertion'], attributes: ['ID'], shortcut: assertion },
        { key: 'confirmation', localPath: ['Assertion', 'Subject', 'SubjectConfirmation', 'SubjectConfirmationData'], attributes: ['Recipient', 'NotOnOrAfter', 'InResponseTo'], shortcut: assertion },
      ] as never) as { assertion?: unknown; confirmation?: { recipient?: string; notOnOrAfter?: string; inResponseTo?: string } };
      const e = result.extract as {
        audience?: unknown;
        nameID?: unknown;
        attributes?: Record<string, string | string[]>;
        response?: { inResponseTo?: string; destination?: string };
        conditions?: { notOnOrAfter?: string };
      };
      const assertionId = one(extra.assertion);
      if (!assertionId) throw rejected('the assertion has no ID');
      const audiences = Array.isArray(e.audience) ? (e.audience as string[]) : e.audience === undefined ? [] : [String(e.audience)];
      if (!audiences.includes(endpoints.entityId)) throw rejected(`Audience ${JSON.stringify(audiences)} is not this SP (${endpoints.entityId})`);
      const c = extra.confirmation ?? {};
      if (c.recipient !== endpoints.acsUrl) throw rejected(`Recipient ${JSON.stringify(c.recipient ?? null)} is not this SP's ACS URL (${endpoints.acsUrl})`);
      if (e.response?.destination !== undefined && e.response.destination !== endpoints.acsUrl) throw rejected(`Destination ${JSON.stringify(e.response.destination)} is not this SP's ACS URL`);
      const notOnOrAfter = c.notOnOrAfter ?? e.conditions?.notOnOrAfter;
      const notOnOrAfterMs = notOnOrAfter === undefined ? Number.NaN : Date.parse(notOnOrAfter);
      if (Number.isNaN(notOnOrAfterMs)) throw rejected('the assertion has no NotOnOrAfter');
      if (c.notOnOrAfter !== undefined && Date.parse(c.notOnOrAfter) + 30_000 <= nowMs) throw rejected(`the subject confirmation expired at ${c.notOnOrAfter}`);
      const inResponseTo = e.response?.inResponseTo;
      if (!inResponseTo || !/^_[0-9a-f]{32}$/.test(inResponseTo)) throw rejected('InResponseTo does not name a request of this SP (IdP-initiated logins are not accepted)');
      if (c.inResponseTo !== undefined && c.inResponseTo !== inResponseTo) throw rejected('the subject confirmation answers another request than the Response');
      const nameId = one(e.nameID);
      if (!nameId) throw rejected('the assertion has no NameID');
      return { assertionId, inResponseTo: inResponseTo.slice(1), nameId, attributes: e.attributes ?? {}, notOnOrAfterMs };
    },
  };
}
