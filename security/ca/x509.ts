/**
 * X.509 pieces the cluster CA builds and reads (RFC 5280, RFC 2986), on
 * {@link ./der.ts} and node:crypto:
 * - {@link buildCertificate}: a v3 certificate from a TBS description, signed
 *   by an EC or RSA key;
 * - {@link parseCsr}: a PKCS#10 request, its self-signature verified, its
 *   requested extensions decoded (so the CA can refuse CA:true, certificate
 *   signing and foreign names);
 * - {@link buildCsr}: a request (for `newcert` and tests);
 * - {@link buildCrl}: a v2 CRL.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import {
  DerError,
  TAG,
  bits,
  bool,
  children,
  enumerated,
  expect,
  explicit,
  implicit,
  int,
  namedBits,
  nul,
  octets,
  oid,
  parse,
  readBits,
  readBool,
  readNamedBits,
  readOid,
  seq,
  set,
  time,
  utf8,
  type DerNode,
} from './der.ts';

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;

const SIGNATURE_HASH: Readonly<Record<string, string>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
};

/** The AlgorithmIdentifier a key signs with here: ECDSA or RSA PKCS#1 v1.5 with SHA-256. */
function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'ec') return seq(oid(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === 'rsa') return seq(oid(OID.sha256WithRsa), nul());
  throw new DerError(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`);
}

function signed(tbs: Buffer, key: KeyObject): Buffer {
  const alg = signatureAlgorithm(key);
  return seq(tbs, alg, bits(sign('sha256', tbs, key)));
}

/** An X.501 Name of (type, value) pairs, one RDN each, UTF8String values. */
export function name(attributes: readonly (readonly [string, string])[]): Buffer {
  return seq(...attributes.map(([type, value]) => set(seq(oid(type), utf8(value)))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const [, subjectPublicKey] = children(parse(spkiDer));
  return createHash('sha1').update(readBits(expect(subjectPublicKey, TAG.BIT_STRING, 'subjectPublicKey'))).digest();
}

export interface CertificateSpec {
  readonly serial: Buffer;
  /** The issuer's subject Name, byte for byte (from its certificate, or `subject` for a self-signed one). */
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  /** The issuer's public key: for the authority key identifier. */
  readonly issuerPublicKey: KeyObject;
  readonly ca: false | { readonly pathLength?: number };
  readonly keyUsage: readonly number[];
  readonly extKeyUsage?: readonly string[];
  /** URI SANs (a SPIFFE leaf has exactly one). */
  readonly uris?: readonly string[];
  /** DNS name SANs (component server certificates only, e.g. the gateway's host names). */
  readonly dnsNames?: readonly string[];
  /** IP address SANs, IPv4 or IPv6 text (component server certificates only). */
  readonly ipAddresses?: readonly string[];
}

/** The 4 or 16 bytes of an IP literal, for an iPAddress SAN. */
function ipBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('.')) throw new DerError(`${JSON.stringify(text)} is not an IP address (IPv4, or IPv6 in hex groups)`);
  const [head = '', tail] = text.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function generalNames(spec: CertificateSpec): Buffer[] {
  return [
    ...(spec.uris ?? []).map((u) => implicit(6, Buffer.from(u, 'ascii'))),
    ...(spec.dnsNames ?? []).map((d) => implicit(2, Buffer.from(d, 'ascii'))),
    ...(spec.ipAddresses ?? []).map((ip) => implicit(7, ipBytes(ip))),
  ];
}

/** Build and sign a v3 certificate; returns its DER. */
export function buildCertificate(spec: CertificateSpec, issuerKey: KeyObject): Buffer {
  const spki = spec.publicKey.export({ type: 'spki', format: 'der' });
  const issuerSpki = spec.issuerPublicKey.export({ type: 'spki', format: 'der' });
  const basic = spec.ca === false ? seq() : seq(bool(true), ...(spec.ca.pathLength === undefined ? [] : [int(spec.ca.pathLength)]));
  const subjectEmpty = children(parse(spec.subject)).length === 0;
  const extensions = [
    extension(OID.basicConstraints, true, basic),
    extension(OID.keyUsage, true, namedBits(spec.keyUsage)),
    ...(spec.extKeyUsage ? [extension(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map(oid)))] : []),
    ...(generalNames(spec).length > 0 ? [extension(OID.subjectAltName, subjectEmpty, seq(...generalNames(spec)))] : []),
    extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(spki))),
    extension(OID.authorityKeyIdentifier, false, seq(implicit(0, keyIdentifier(issuerSpki)))),
  ];
  const tbs = seq(
    explicit(0, int(2)),
    int(spec.serial),
    signatureAlgorithm(issuerKey),
    spec.issuer,
    seq(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spki,
    explicit(3, seq(...extensions)),
  );
  return signed(tbs, issuerKey);
}

export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** The DER inside the first PEM block with this label; `undefined` if there is none. */
export function fromPem(pem: string, label: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)-----END ${label}-----`).exec(pem);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}

/** Every PEM block with this label, each as its own PEM string (Node's `crl` option wants one CRL per array item). */
export function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`-----BEGIN ${label}-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+?-----END ${label}-----\\r?\\n?`, 'g'))].map((m) => m[0]);
}

/** The subject Name of a certificate, byte for byte (to use as a child's issuer). */
export function certificateSubject(certDer: Buffer): Buffer {
  const [tbs] = children(parse(certDer));
  const fields = children(expect(tbs, TAG.SEQUENCE, 'tbsCertificate'));
  const offset = fields[0]!.tag === 0xa0 ? 1 : 0;
  return fields[offset + 4]!.raw;
}

// ---------------------------------------------------------------------------
// CSRs

export interface RequestedExtensions {
  /** `cA` of a requested basicConstraints (false when absent). */
  readonly ca: boolean;
  /** Requested KeyUsage bits ([] when absent). */
  readonly keyUsage: readonly number[];
  /** Requested SANs as `type:value` (`uri:spiffe://...`, `dns:example.com`, `ip:...`, `other:[n]`). */
  readonly subjectAltNames: readonly string[];
  /** Every requested extension's OID. */
  readonly oids: readonly string[];
}

export interface ParsedCsr {
  readonly publicKey: KeyObject;
  readonly subject: Buffer;
  readonly requested: RequestedExtensions;
}

function readGeneralNames(value: Buffer): string[] {
  return children(parse(value)).map((n) => {
    const tagNumber = n.tag & 0x1f;
    if (tagNumber === 6) return `uri:${n.content.toString('latin1')}`;
    if (tagNumber === 2) return `dns:${n.content.toString('latin1')}`;
    if (tagNumber === 1) return `email:${n.content.toString('latin1')}`;
    if (tagNumber === 7) return `ip:${[...n.content].join(n.content.length === 4 ? '.' : ',')}`;
    return `other:[${tagNumber}]`;
  });
}

function readExtensions(node: DerNode): RequestedExtensions {
  let ca = false;
  let keyUsage: number[] = [];
  const sans: string[] = [];
  const oids: string[] = [];
  for (const ext of children(expect(node, TAG.SEQUENCE, 'Extensions'))) {
    const parts = children(expect(ext, TAG.SEQUENCE, 'Extension'));
    const id = readOid(parts[0]!);
    oids.push(id);
    const value = expect(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue').content;
    if (id === OID.basicConstraints) {
      const fields = children(parse(value));
      ca = fields[0]?.tag === TAG.BOOLEAN ? readBool(fields[0]) : false;
    } else if (id === OID.keyUsage) keyUsage = readNamedBits(parse(value));
    else if (id === OID.subjectAltName) sans.push(...readGeneralNames(value));
  }
  return { ca, keyUsage, subjectAltNames: sans, oids };
}

/**
 * Parse a PEM or DER PKCS#10 request and verify its self-signature. Throws
 * {@link DerError} saying what is wrong (the caller maps it to `CA_CSR_INVALID`).
 */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der = typeof input === 'string' ? (fromPem(input, 'CERTIFICATE REQUEST') ?? fromPem(input, 'NEW CERTIFICATE REQUEST')) : input;
  if (!der) throw new DerError('no -----BEGIN CERTIFICATE REQUEST----- block');
  const [info, algorithm, signature, extra] = children(expect(parse(der), TAG.SEQUENCE, 'CertificationRequest'));
  if (extra !== undefined || !signature) throw new DerError('CertificationRequest must have exactly three fields');
  const fields = children(expect(info, TAG.SEQUENCE, 'certificationRequestInfo'));
  const [version, subject, spki, attributes] = fields;
  if (expect(version, TAG.INTEGER, 'version').content.length !== 1 || version!.content[0] !== 0) throw new DerError('only version 1 (0) requests are known');
  expect(subject, TAG.SEQUENCE, 'subject');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: expect(spki, TAG.SEQUENCE, 'subjectPKInfo').raw, format: 'der', type: 'spki' });
  } catch (err) {
    throw new DerError(`its public key is unreadable (${(err as Error).message})`);
  }
  const algOid = readOid(children(expect(algorithm, TAG.SEQUENCE, 'signatureAlgorithm'))[0]!);
  const hash = SIGNATURE_HASH[algOid];
  if (!hash) throw new DerError(`signature algorithm ${algOid} is not accepted (use ECDSA or RSA with SHA-256/384/512)`);
  if ((algOid.startsWith('1.2.840.10045') ? 'ec' : 'rsa') !== publicKey.asymmetricKeyType) throw new DerError('the signature algorithm does not match the key type');
  if (!verify(hash, info!.raw, publicKey, readBits(signature))) throw new DerError('its self-signature does not verify (the request was altered, or not signed by its key)');
  let requested: RequestedExtensions = { ca: false, keyUsage: [], subjectAltNames: [], oids: [] };
  if (attributes !== undefined) {
    if (attributes.tag !== 0xa0) throw new DerError('attributes must be [0]');
    for (const attribute of children(attributes)) {
      const [type, values] = children(expect(attribute, TAG.SEQUENCE, 'Attribute'));
      if (readOid(type!) !== OID.extensionRequest) continue;
      const [extensions] = children(expect(values, TAG.SET, 'Attribute values'));
      requested = readExtensions(extensions!);
    }
  }
  if (fields.length > 4) throw new DerError('certificationRequestInfo has extra fields');
  return { publicKey, subject: subject!.raw, requested };
}

/** Build a PKCS#10 request for `publicKey`, signed by `privateKey`, asking for `extensions` (raw Extension DERs). */
export function buildCsr(options: { subject: Buffer; publicKey: KeyObject; privateKey: KeyObject; extensions?: readonly Buffer[] }): Buffer {
  const attributes = options.extensions && options.extensions.length > 0 ? explicit(0, seq(oid(OID.extensionRequest), set(seq(...options.extensions)))) : explicit(0, Buffer.alloc(0));
  const info = seq(int(0), options.subject, options.publicKey.export({ type: 'spki', format: 'der' }), attributes);
  return signed(info, options.privateKey);
}

/** Extension DERs for {@link buildCsr} (tests build hostile requests with these). */
export const requestExtension = {
  basicConstraints: (ca: boolean): Buffer => extension(OID.basicConstraints, true, ca ? seq(bool(true)) : seq()),
  keyUsage: (usage: readonly number[]): Buffer => extension(OID.keyUsage, true, namedBits(usage)),
  uris: (uris: readonly string[]): Buffer => extension(OID.subjectAltName, false, seq(...uris.map((u) => implicit(6, Buffer.from(u, 'ascii'))))),
  dns: (names: readonly string[]): Buffer => extension(OID.subjectAltName, false, seq(...names.map((n) => implicit(2, Buffer.from(n, 'ascii'))))),
};

// ---------------------------------------------------------------------------
// CRLs

export const CRL_REASON_CODES = { unspecified: 0, keyCompromise: 1, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5 } as const;

export interface CrlSpec {
  readonly issuer: Buffer;
  readonly issuerPublicKey: KeyObject;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: bigint;
  readonly revoked: readonly { readonly serial: Buffer; readonly revokedAt: Date; readonly reason: keyof typeof CRL_REASON_CODES }[];
}

/** Build and sign a v2 CRL (RFC 5280 §5); returns its DER. */
export function buildCrl(spec: CrlSpec, issuerKey: KeyObject): Buffer {
  const entries = spec.revoked.map((r) =>
    seq(int(r.serial), time(r.revokedAt), ...(r.reason === 'unspecified' ? [] : [seq(extension(OID.crlReason, false, enumerated(CRL_REASON_CODES[r.reason])))])),
  );
  const issuerSpki = spec.issuerPublicKey.export({ type: 'spki', format: 'der' });
  const tbs = seq(
    int(1),
    signatureAlgorithm(issuerKey),
    spec.issuer,
    time(spec.thisUpdate),
    time(spec.nextUpdate),
    ...(entries.length > 0 ? [seq(...entries)] : []),
    explicit(0, seq(extension(OID.authorityKeyIdentifier, false, seq(implicit(0, keyIdentifier(issuerSpki)))), extension(OID.crlNumber, false, int(spec.crlNumber)))),
  );
  return signed(tbs, issuerKey);
}
