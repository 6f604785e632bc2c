/**
 * The cluster CA: a root and an intermediate, kept in the store
 * (`certificateAuthority`), issuing SPIFFE-style leaf certificates to
 * authenticated principals.
 *
 * - The root is made once, by the first master (a create-only write), and
 *   signs only the intermediate. Its key is stored encrypted (PKCS#8,
 *   AES-256) under a passphrase written to that master's data directory
 *   (`ca-root-passphrase`, 0600), so it can be taken offline; nothing here
 *   ever loads it to sign a leaf.
 * - The intermediate signs leaves and the CRL.
 * - A leaf carries exactly one URI SAN, `spiffe://<trust domain>/<user|sa>/<uid>`,
 *   derived from the authenticated caller; the CSR's own names, its subject and
 *   a `hosts` override never add to it (a request for any other name is
 *   refused). Leaves are CA:false, keyUsage digitalSignature (+keyEncipherment
 *   for RSA) and extKeyUsage serverAuth+clientAuth, and live at most
 *   `maxLeafTtlSeconds` (72 h by default, Consul's leaf TTL).
 * - Renewal: a holder should renew at a jittered point between 60 % and 90 % of
 *   the lifetime (Consul's `calculateSoftExpiry`); {@link renewalWindow} says when.
 *
 * The decision whether to issue is the pure {@link issuanceProblems}; the
 * class is the I/O around it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { StrataError } from '../../common/errors.ts';
import type { Records } from '../../control-plane/model/records.ts';
import type { CertificateAuthority, IssuedCertificate } from '../../control-plane/model/schemas.ts';
import { DerError } from './der.ts';
import { KEY_USAGE, OID, buildCertificate, buildCrl, buildCsr, certificateSubject, fromPem, name, parseCsr, toPem, type ParsedCsr } from './x509.ts';

export const DEFAULT_MAX_LEAF_TTL_SECONDS = 72 * 3600;
export const MIN_LEAF_TTL_SECONDS = 60;
const ROOT_TTL_SECONDS = 10 * 365 * 86400;
const INTERMEDIATE_TTL_SECONDS = 365 * 86400;
/** Leaves start a minute in the past, for clocks a little behind (at most a tenth of their life). */
const BACKDATE_SECONDS = 60;
const CA_RECORD_ID = 'cluster-ca';

export type RevocationReason = NonNullable<IssuedCertificate['revocationReason']>;

/**
 * Who the certificate is for: the authenticated principal (`user`,
 * `service`), or a cluster component the caller was authorised to enrol
 * (`agent`: an agent id, by a holder of the agent permission; `master`: a
 * master's id, by the master itself).
 */
export interface CertificateCaller {
  readonly uid: string;
  readonly kind: 'user' | 'service' | 'agent' | 'master';
}

const SPIFFE_PATH: Readonly<Record<CertificateCaller['kind'], string>> = { user: 'user', service: 'sa', agent: 'agent', master: 'master' };

export function spiffeIdFor(trustDomain: string, caller: CertificateCaller): string {
  return `spiffe://${trustDomain}/${SPIFFE_PATH[caller.kind]}/${caller.uid}`;
}

/** When a holder should renew: between 60 % and 90 % of the lifetime. */
export function renewalWindow(notBefore: Date, notAfter: Date): { readonly start: Date; readonly end: Date } {
  const life = notAfter.getTime() - notBefore.getTime();
  return { start: new Date(notBefore.getTime() + life * 0.6), end: new Date(notBefore.getTime() + life * 0.9) };
}

/** A jittered renewal time inside {@link renewalWindow} (`random` in [0, 1)). */
export function renewAt(notBefore: Date, notAfter: Date, random: () => number = Math.random): Date {
  const { start, end } = renewalWindow(notBefore, notAfter);
  return new Date(start.getTime() + random() * (end.getTime() - start.getTime()));
}

/** Leaf key types the CA signs for: EC P-256/P-384, RSA 2048/3072/4096. */
export function keyProblem(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' || curve === 'secp384r1' ? undefined : `EC curve ${curve ?? 'unknown'} is not accepted (use P-256 or P-384)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return [2048, 3072, 4096].includes(bits) ? undefined : `RSA keys of ${bits} bits are not accepted (use 2048, 3072 or 4096)`;
  }
  return `${key.asymmetricKeyType ?? 'unknown'} keys are not accepted (use EC P-256/P-384 or RSA 2048-4096)`;
}

/**
 * Pure: every reason to refuse this request, or `[]` to issue. The leaf's
 * one name is `spiffeId`; the request may repeat it (in its SANs or in
 * `hosts`) but may not ask for anything else.
 */
export function issuanceProblems(csr: ParsedCsr, request: { readonly spiffeId: string; readonly hosts?: readonly string[]; readonly ttlSeconds: number; readonly maxTtlSeconds: number }): string[] {
  const problems: string[] = [];
  const key = keyProblem(csr.publicKey);
  if (key) problems.push(key);
  if (csr.requested.ca) problems.push('it asks for CA:true (the cluster CA issues leaf certificates only)');
  const signing = csr.requested.keyUsage.filter((b) => b === KEY_USAGE.keyCertSign || b === KEY_USAGE.cRLSign);
  if (signing.length > 0) problems.push('it asks for keyCertSign/cRLSign key usage (leaf certificates cannot sign certificates or CRLs)');
  const foreign = csr.requested.subjectAltNames.filter((n) => n !== `uri:${request.spiffeId}`);
  if (foreign.length > 0) problems.push(`it asks for names the caller does not own: ${foreign.join(', ')} (the certificate names ${request.spiffeId} only)`);
  const foreignHosts = (request.hosts ?? []).filter((h) => h !== request.spiffeId);
  if (foreignHosts.length > 0) problems.push(`"hosts" names what the caller does not own: ${foreignHosts.join(', ')} (the certificate names ${request.spiffeId} only)`);
  if (!Number.isInteger(request.ttlSeconds) || request.ttlSeconds < MIN_LEAF_TTL_SECONDS) problems.push(`ttl_seconds must be a whole number of at least ${MIN_LEAF_TTL_SECONDS}`);
  if (request.ttlSeconds > request.maxTtlSeconds) problems.push(`a lifetime of ${request.ttlSeconds} s is over the maximum of ${request.maxTtlSeconds} s`);
  return problems;
}

export interface IssuedLeaf {
  readonly certificate: string;
  /** Leaf then intermediate: what a TLS endpoint presents. */
  readonly certificateChain: string;
  readonly issuingCa: string;
  readonly rootCa: string;
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly renewal: { readonly start: Date; readonly end: Date };
}

export interface ClusterCaOptions {
  readonly trustDomain: string;
  readonly maxLeafTtlSeconds: number;
  readonly now?: () => number;
}

export interface RootKeyHooks {
  /** Keep the root key's passphrase (before the CA record exists). */
  persistPassphrase(passphrase: string): Promise<void>;
  /** Another master's CA won the create-only write: drop ours. */
  discardPassphrase(): Promise<void>;
}

function newSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) || 0x01; // positive, and no leading zero byte (32 hex digits in DER as stored)
  return bytes;
}

function makeKey(algo: 'ecdsa' | 'rsa', size: number): { publicKey: KeyObject; privateKey: KeyObject } {
  if (algo === 'ecdsa') {
    const curve = size === 256 ? 'P-256' : size === 384 ? 'P-384' : undefined;
    if (!curve) throw new StrataError('CA_CSR_REJECTED', `ecdsa keys of size ${size} are not offered (use 256 or 384)`);
    return generateKeyPairSync('ec', { namedCurve: curve });
  }
  if (![2048, 3072, 4096].includes(size)) throw new StrataError('CA_CSR_REJECTED', `rsa keys of size ${size} are not offered (use 2048, 3072 or 4096)`);
  return generateKeyPairSync('rsa', { modulusLength: size });
}

export class ClusterCa {
  readonly #records: Records;
  readonly #options: ClusterCaOptions;
  #record: CertificateAuthority;
  readonly #intermediateKey: KeyObject;
  readonly #intermediatePublicKey: KeyObject;
  readonly #intermediateSubject: Buffer;
  readonly #intermediateNotAfter: Date;
  #crlCache: { der: Buffer; madeAtMs: number } | undefined;
  readonly #revokedListeners = new Set<() => void>();

  private constructor(records: Records, options: ClusterCaOptions, record: CertificateAuthority) {
    this.#records = records;
    this.#options = options;
    this.#record = record;
    this.#intermediateKey = createPrivateKey(record.intermediateKeyPem);
    this.#intermediatePublicKey = createPublicKey(this.#intermediateKey);
    const der = fromPem(record.intermediateCertificatePem, 'CERTIFICATE')!;
    this.#intermediateSubject = certificateSubject(der);
    this.#intermediateNotAfter = new Date(new X509Certificate(der).validTo);
  }

  /** Load the cluster CA, creating it (root and intermediate) if this is the cluster's first start. */
  static async open(records: Records, options: ClusterCaOptions, hooks: RootKeyHooks): Promise<ClusterCa> {
    let stored = (await records.get('certificateAuthority', CA_RECORD_ID))?.value;
    if (!stored) {
      const passphrase = randomBytes(32).toString('base64url');
      const created = ClusterCa.create(options.trustDomain, passphrase, options.now ? options.now() : Date.now());
      await hooks.persistPassphrase(passphrase);
      const result = await records.put('certificateAuthority', created, { casIndex: 0 });
      if (!result.ok) {
        await hooks.discardPassphrase();
        stored = (await records.get('certificateAuthority', CA_RECORD_ID))?.value;
      } else stored = created;
    }
    if (!stored) throw new StrataError('CA_NOT_READY', 'the cluster CA record could not be read after it was created');
    return new ClusterCa(records, options, stored);
  }

  /** Make a root and an intermediate (pure apart from key generation and the clock value given). */
  static create(trustDomain: string, passphrase: string, nowMs: number): CertificateAuthority {
    const now = new Date(Math.floor(nowMs / 1000) * 1000 - 300_000);
    const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rootSubject = name([[OID.organization, 'Strata'], [OID.commonName, `Strata Root CA ${trustDomain}`.slice(0, 64)]]);
    const rootDer = buildCertificate(
      {
        serial: newSerial(), issuer: rootSubject, subject: rootSubject, notBefore: now, notAfter: new Date(now.getTime() + ROOT_TTL_SECONDS * 1000),
        publicKey: root.publicKey, issuerPublicKey: root.publicKey, ca: { pathLength: 1 },
        keyUsage: [KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign], uris: [`spiffe://${trustDomain}`],
      },
      root.privateKey,
    );
    const intermediate = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const intermediateDer = buildCertificate(
      {
        serial: newSerial(), issuer: rootSubject, subject: name([[OID.organization, 'Strata'], [OID.commonName, `Strata Intermediate CA ${trustDomain}`.slice(0, 64)]]),
        notBefore: now, notAfter: new Date(now.getTime() + INTERMEDIATE_TTL_SECONDS * 1000),
        publicKey: intermediate.publicKey, issuerPublicKey: root.publicKey, ca: { pathLength: 0 },
        keyUsage: [KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign], uris: [`spiffe://${trustDomain}`],
      },
      root.privateKey,
    );
    const rootCrl = buildCrl(
      { issuer: rootSubject, issuerPublicKey: root.publicKey, thisUpdate: now, nextUpdate: new Date(now.getTime() + INTERMEDIATE_TTL_SECONDS * 1000), crlNumber: 1n, revoked: [] },
      root.privateKey,
    );
    return {
      id: CA_RECORD_ID,
      trustDomain,
      createdAt: new Date(nowMs).toISOString(),
      rootCertificatePem: toPem(rootDer, 'CERTIFICATE'),
      rootKeyEncryptedPem: root.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString(),
      intermediateCertificatePem: toPem(intermediateDer, 'CERTIFICATE'),
      intermediateKeyPem: intermediate.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      rootCrlPem: toPem(rootCrl, 'X509 CRL'),
    };
  }

  get trustDomain(): string {
    return this.#record.trustDomain;
  }

  get rootPem(): string {
    return this.#record.rootCertificatePem;
  }

  get intermediatePem(): string {
    return this.#record.intermediateCertificatePem;
  }

  /** The root's CRL (for the intermediate), PEM. */
  get rootCrlPem(): string {
    return this.#record.rootCrlPem;
  }

  /** The encrypted root key, while it is still in the store (to move it offline). */
  get rootKeyEncryptedPem(): string | undefined {
    return this.#record.rootKeyEncryptedPem;
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }

  /**
   * Take the root key offline: return it (encrypted; the passphrase is in the
   * creating master's `ca-root-passphrase` file) and remove it from the store.
   * `RECORD_CONFLICT` once it is gone. Signing never needed it.
   */
  async takeRootKeyOffline(): Promise<string> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const current = await this.#records.get('certificateAuthority', this.#record.id);
      if (!current) throw new StrataError('CA_NOT_READY', 'the cluster CA record is missing');
      const key = current.value.rootKeyEncryptedPem;
      if (key === undefined) throw new StrataError('RECORD_CONFLICT', 'the root key is already offline (exported before)');
      const { rootKeyEncryptedPem: _dropped, ...rest } = current.value;
      const result = await this.#records.put('certificateAuthority', rest, { casIndex: current.modifyIndex });
      if (result.ok) {
        this.#record = rest;
        return key;
      }
    }
    throw new StrataError('RECORD_CONFLICT', 'the CA record kept changing; try again');
  }

  /** CFSSL's `/info`: the root, the usages leaves get, and their longest lifetime. */
  info(): { certificate: string; usages: string[]; expiry: string; trust_domain: string } {
    return { certificate: this.rootPem, usages: ['digital signature', 'key encipherment', 'server auth', 'client auth'], expiry: `${this.#options.maxLeafTtlSeconds}s`, trust_domain: this.trustDomain };
  }

  /**
   * Sign a CSR for the authenticated caller. `CA_CSR_INVALID` for an
   * unreadable request or a bad self-signature; `CA_CSR_REJECTED` listing
   * every reason for one that asks for what it may not have.
   */
  async sign(caller: CertificateCaller, csrPem: string, options: { readonly ttlSeconds?: number; readonly hosts?: readonly string[] } = {}): Promise<IssuedLeaf> {
    let csr: ParsedCsr;
    try {
      csr = parseCsr(csrPem);
    } catch (err) {
      if (err instanceof DerError) throw new StrataError('CA_CSR_INVALID', `certificate_request is not a valid CSR: ${err.message}`);
      throw err;
    }
    const spiffeId = spiffeIdFor(this.trustDomain, caller);
    const ttlSeconds = options.ttlSeconds ?? this.#options.maxLeafTtlSeconds;
    const problems = issuanceProblems(csr, { spiffeId, ttlSeconds, maxTtlSeconds: this.#options.maxLeafTtlSeconds, ...(options.hosts ? { hosts: options.hosts } : {}) });
    if (problems.length > 0) throw new StrataError('CA_CSR_REJECTED', `certificate request refused: ${problems.join('; ')}`, { details: problems });

    // Backdated for clocks a little behind, by at most a tenth of the life (a 60 s leaf must not be born expired).
    const backdateMs = Math.min(BACKDATE_SECONDS, Math.floor(ttlSeconds / 10)) * 1000;
    const notBefore = new Date(Math.floor(this.#now() / 1000) * 1000 - backdateMs);
    const wanted = new Date(notBefore.getTime() + ttlSeconds * 1000);
    const notAfter = wanted < this.#intermediateNotAfter ? wanted : this.#intermediateNotAfter;
    const serial = newSerial();
    const der = buildCertificate(
      {
        serial, issuer: this.#intermediateSubject, subject: name([]), notBefore, notAfter,
        publicKey: csr.publicKey, issuerPublicKey: this.#intermediatePublicKey, ca: false,
        keyUsage: csr.publicKey.asymmetricKeyType === 'rsa' ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment] : [KEY_USAGE.digitalSignature],
        extKeyUsage: [OID.serverAuth, OID.clientAuth], uris: [spiffeId],
      },
      this.#intermediateKey,
    );
    const serialHex = serial.toString('hex');
    // Recorded before it is handed out: every certificate that leaves the CA can be revoked.
    const record: IssuedCertificate = { serial: serialHex, authorityId: this.#record.id, uid: caller.uid, spiffeId, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
    const written = await this.#records.put('certificate', record, { casIndex: 0 });
    if (!written.ok) throw new StrataError('API_INTERNAL', 'a certificate serial repeated; retry');
    const certificate = toPem(der, 'CERTIFICATE');
    return {
      certificate,
      certificateChain: `${certificate}${this.intermediatePem}`,
      issuingCa: this.intermediatePem,
      rootCa: this.rootPem,
      serial: serialHex,
      spiffeId,
      notBefore,
      notAfter,
      renewal: renewalWindow(notBefore, notAfter),
    };
  }

  /** CFSSL's `newcert`: make a key pair and CSR here, and sign it for the caller. */
  async newcert(caller: CertificateCaller, key: { readonly algo: 'ecdsa' | 'rsa'; readonly size: number }, options: { readonly ttlSeconds?: number; readonly hosts?: readonly string[] } = {}): Promise<IssuedLeaf & { privateKey: string; certificateRequest: string }> {
    const pair = makeKey(key.algo, key.size);
    const csr = toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey }), 'CERTIFICATE REQUEST');
    const issued = await this.sign(caller, csr, options);
    return { ...issued, privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certificateRequest: csr };
  }

  /**
   * A server certificate for one of the cluster's own components (the
   * gateway): a fresh EC P-256 key, `spiffe://<trust domain>/component/<name>`
   * plus the DNS names and IP addresses clients dial (so HTTPS clients that
   * trust the root verify the host name), serverAuth+clientAuth, CA:false,
   * at most `maxLeafTtlSeconds`. Only processes holding the CA object call
   * this; no API route reaches it (callers of `/sign` get their own SPIFFE
   * id only). Recorded like every leaf, so it can be revoked.
   */
  async issueComponentCertificate(component: string, options: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[]; readonly ttlSeconds?: number }): Promise<IssuedLeaf & { privateKey: string }> {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(component)) throw new StrataError('CA_CSR_REJECTED', `component name ${JSON.stringify(component)} must be lower-case letters, digits and dashes`);
    const ttlSeconds = Math.min(options.ttlSeconds ?? this.#options.maxLeafTtlSeconds, this.#options.maxLeafTtlSeconds);
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spiffeId = `spiffe://${this.trustDomain}/component/${component}`;
    const notBefore = new Date(Math.floor(this.#now() / 1000) * 1000 - BACKDATE_SECONDS * 1000);
    const wanted = new Date(notBefore.getTime() + ttlSeconds * 1000);
    const notAfter = wanted < this.#intermediateNotAfter ? wanted : this.#intermediateNotAfter;
    const serial = newSerial();
    let der: Buffer;
    try {
      der = buildCertificate(
        {
          serial, issuer: this.#intermediateSubject, subject: name([[OID.commonName, component]]), notBefore, notAfter,
          publicKey: pair.publicKey, issuerPublicKey: this.#intermediatePublicKey, ca: false,
          keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: [OID.serverAuth, OID.clientAuth],
          uris: [spiffeId], dnsNames: options.dnsNames, ipAddresses: options.ipAddresses,
        },
        this.#intermediateKey,
      );
    } catch (err) {
      if (err instanceof DerError) throw new StrataError('CA_CSR_REJECTED', `component certificate refused: ${err.message}`);
      throw err;
    }
    const serialHex = serial.toString('hex');
    const record: IssuedCertificate = { serial: serialHex, authorityId: this.#record.id, uid: `component.${component}`, spiffeId, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
    const written = await this.#records.put('certificate', record, { casIndex: 0 });
    if (!written.ok) throw new StrataError('API_INTERNAL', 'a certificate serial repeated; retry');
    const certificate = toPem(der, 'CERTIFICATE');
    return {
      certificate, certificateChain: `${certificate}${this.intermediatePem}`, issuingCa: this.intermediatePem, rootCa: this.rootPem,
      serial: serialHex, spiffeId, notBefore, notAfter, renewal: renewalWindow(notBefore, notAfter),
      privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  async revoke(serial: string, reason: RevocationReason): Promise<IssuedCertificate> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const current = await this.#records.get('certificate', serial);
      if (!current) throw new StrataError('RECORD_NOT_FOUND', `no certificate with serial ${serial} was issued (or it expired and was swept)`);
      if (current.value.revokedAt) return current.value;
      const next: IssuedCertificate = { ...current.value, revokedAt: new Date(this.#now()).toISOString(), revocationReason: reason };
      const result = await this.#records.put('certificate', next, { casIndex: current.modifyIndex });
      if (result.ok) {
        this.#crlCache = undefined;
        for (const l of this.#revokedListeners) l();
        return next;
      }
    }
    throw new StrataError('RECORD_CONFLICT', `certificate ${serial} kept changing; try again`);
  }

  /** Serials (lower-case hex) of revoked certificates that have not expired: what the CRL lists. */
  async revokedSerials(): Promise<Set<string>> {
    const now = this.#now();
    const out = new Set<string>();
    for (const r of (await this.#records.list('certificate')).records) {
      if (r.value.revokedAt !== undefined && Date.parse(r.value.notAfter) > now) out.add(r.value.serial.toLowerCase());
    }
    return out;
  }

  /** Called after every revocation through this CA object (mTLS listeners reload the CRL at once). */
  onRevoked(listener: () => void): () => void {
    this.#revokedListeners.add(listener);
    return () => this.#revokedListeners.delete(listener);
  }

  async list(): Promise<IssuedCertificate[]> {
    return (await this.#records.list('certificate')).records.map((r) => r.value);
  }

  /**
   * The CRL (DER), signed by the intermediate: every revoked leaf not yet
   * expired. Rebuilt at most every `maxAgeSeconds` (and at once after a
   * revocation on this master); valid for 6 hours.
   */
  async crl(maxAgeSeconds = 30): Promise<Buffer> {
    const now = this.#now();
    if (this.#crlCache && now - this.#crlCache.madeAtMs < maxAgeSeconds * 1000) return this.#crlCache.der;
    const { records, index } = await this.#records.list('certificate');
    const revoked = records
      .map((r) => r.value)
      .filter((c) => c.revokedAt !== undefined && Date.parse(c.notAfter) > now)
      .map((c) => ({ serial: Buffer.from(c.serial, 'hex'), revokedAt: new Date(c.revokedAt!), reason: c.revocationReason ?? 'unspecified' }));
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const der = buildCrl(
      { issuer: this.#intermediateSubject, issuerPublicKey: this.#intermediatePublicKey, thisUpdate, nextUpdate: new Date(thisUpdate.getTime() + 6 * 3600_000), crlNumber: BigInt(index), revoked },
      this.#intermediateKey,
    );
    this.#crlCache = { der, madeAtMs: now };
    return der;
  }

  /** Forget certificates expired for a day (they are off every CRL already). */
  async sweep(): Promise<number> {
    const cutoff = this.#now() - 86400_000;
    let removed = 0;
    for (const r of (await this.#records.list('certificate')).records) {
      if (Date.parse(r.value.notAfter) < cutoff && (await this.#records.delete('certificate', r.id, { casIndex: r.modifyIndex })).ok) removed++;
    }
    return removed;
  }
}
