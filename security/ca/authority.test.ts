/** The CA's pure parts: DER round trips, the issuance decision, renewal windows, CSR parsing. */
import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import { issuanceProblems, keyProblem, renewAt, renewalWindow, spiffeIdFor } from './authority.ts';
import { DerError, children, int, oid, parse, readOid, time } from './der.ts';
import { KEY_USAGE, buildCsr, name, parseCsr, requestExtension, toPem, type ParsedCsr } from './x509.ts';

const ID = 'spiffe://strata.local/user/alice';
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

function csr(extensions: Buffer[] = [], pair = ec()): ParsedCsr {
  return parseCsr(toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey, extensions }), 'CERTIFICATE REQUEST'));
}

test('property: OIDs and non-negative INTEGERs survive a DER round trip, minimally encoded', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.nat({ max: 2 }), fc.nat({ max: 39 }), fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n }), { maxLength: 8 }), (a, b, rest) => {
      const dotted = [a, b, ...rest].join('.');
      return readOid(parse(oid(dotted))) === dotted;
    }),
  ));
  t.notThrows(() => fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 2n ** 160n }), (n) => {
      const der = int(n);
      const content = parse(der).content;
      const value = BigInt(`0x${content.toString('hex') || '0'}`);
      const minimal = content.length === 1 || !(content[0] === 0 && (content[1]! & 0x80) === 0);
      return value === n && (content[0]! & 0x80) === 0 && minimal;
    }),
  ));
});

test('DER: UTCTime before 2050, GeneralizedTime from 2050; the reader refuses indefinite and overlong lengths and trailing bytes', (t) => {
  t.is(time(new Date('2049-12-31T23:59:59Z')).subarray(2).toString(), '491231235959Z');
  t.is(time(new Date('2050-01-01T00:00:00Z')).subarray(2).toString(), '20500101000000Z');
  t.throws(() => parse(Buffer.from([0x30, 0x80, 0x00, 0x00])), { message: /indefinite/ });
  t.throws(() => parse(Buffer.from([0x04, 0x81, 0x01, 0xaa])), { message: /non-minimal/ });
  t.throws(() => parse(Buffer.from([0x04, 0x01, 0xaa, 0x00])), { message: /trailing/ });
  t.throws(() => parse(Buffer.from([0x30, 0x05, 0x04, 0x01])), { message: /past the end/ });
  t.is(children(parse(Buffer.from([0x30, 0x00]))).length, 0);
});

test('issuanceProblems: a plain request for the caller passes; each hostile part is named', (t) => {
  const base = { spiffeId: ID, ttlSeconds: 3600, maxTtlSeconds: 72 * 3600 };
  t.deepEqual(issuanceProblems(csr(), base), []);
  t.deepEqual(issuanceProblems(csr([requestExtension.uris([ID])]), { ...base, hosts: [ID] }), [], 'repeating its own id is fine');
  const all = issuanceProblems(
    csr([requestExtension.basicConstraints(true), requestExtension.keyUsage([KEY_USAGE.keyCertSign]), requestExtension.uris([ID, 'spiffe://strata.local/user/admin'])]),
    { ...base, hosts: ['evil.example'], ttlSeconds: 72 * 3600 + 1 },
  );
  t.is(all.length, 5, all.join('\n'));
  t.regex(all.join('\n'), /CA:true/);
  t.regex(all.join('\n'), /keyCertSign/);
  t.regex(all.join('\n'), /names the caller does not own: uri:spiffe:\/\/strata.local\/user\/admin/);
  t.regex(all.join('\n'), /"hosts" names what the caller does not own: evil.example/);
  t.regex(all.join('\n'), /over the maximum/);
  t.regex(issuanceProblems(csr([requestExtension.dns(['web.example'])]), base).join(), /dns:web.example/);
});

test('property: whatever names a request asks for, it passes only if every one is the caller\'s own id', (t) => {
  const names = fc.array(fc.constantFrom(ID, 'spiffe://strata.local/user/bob', 'spiffe://other.domain/user/alice', `${ID}/x`), { maxLength: 3 });
  const pair = ec();
  t.notThrows(() => fc.assert(
    fc.property(names, names, (sans, hosts) => {
      const problems = issuanceProblems(csr(sans.length > 0 ? [requestExtension.uris(sans)] : [], pair), { spiffeId: ID, hosts, ttlSeconds: 60, maxTtlSeconds: 3600 });
      return (problems.length === 0) === [...sans, ...hosts].every((n) => n === ID);
    }),
    { numRuns: 200 },
  ));
});

test('key types: P-256, P-384 and RSA 2048-4096 only', (t) => {
  t.is(keyProblem(ec().publicKey), undefined);
  t.is(keyProblem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey), undefined);
  t.regex(keyProblem(generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey)!, /secp521r1 is not accepted/);
  t.regex(keyProblem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)!, /1024 bits are not accepted/);
  t.regex(keyProblem(generateKeyPairSync('ed25519').publicKey)!, /ed25519 keys are not accepted/);
});

test('parseCsr: verifies the self-signature and refuses tampered or foreign-signed requests', (t) => {
  const pair = ec();
  const der = buildCsr({ subject: name([['2.5.4.3', 'alice']]), publicKey: pair.publicKey, privateKey: pair.privateKey });
  t.notThrows(() => parseCsr(der));
  const tampered = Buffer.from(der);
  tampered[tampered.indexOf(Buffer.from('alice'))] = 0x41; // 'Alice'
  t.throws(() => parseCsr(tampered), { message: /self-signature does not verify/ });
  const other = ec();
  t.throws(() => parseCsr(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: other.privateKey })), { message: /self-signature/ });
  t.throws(() => parseCsr('not a csr'), { message: /no -----BEGIN CERTIFICATE REQUEST-----/ });
});

test('renewal: the window is 60-90 % of the lifetime; a jittered time falls inside it', (t) => {
  const nb = new Date('2026-01-01T00:00:00Z');
  const na = new Date(nb.getTime() + 72 * 3600_000);
  const w = renewalWindow(nb, na);
  t.is(w.start.getTime() - nb.getTime(), 155_520_000, "60 % of 72 h = 43.2 h");
  t.is(w.end.getTime() - nb.getTime(), 233_280_000, "90 % of 72 h = 64.8 h");
  t.notThrows(() => fc.assert(fc.property(fc.double({ min: 0, max: 0.999999, noNaN: true }), (r) => {
    const at = renewAt(nb, na, () => r).getTime();
    return at >= w.start.getTime() && at <= w.end.getTime();
  })));
  t.is(spiffeIdFor('strata.local', { uid: 'ci-bot', kind: 'service' }), 'spiffe://strata.local/sa/ci-bot');
});

test('property: a mutated or random CSR never throws anything but DerError (the API answers CA_CSR_INVALID, never a 500)', (t) => {
  const ecPair = ec();
  const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const seeds = [
    buildCsr({ subject: name([['2.5.4.3', 'x']]), publicKey: ecPair.publicKey, privateKey: ecPair.privateKey, extensions: [requestExtension.uris([ID]), requestExtension.basicConstraints(false), requestExtension.keyUsage([0])] }),
    buildCsr({ subject: name([]), publicKey: rsaPair.publicKey, privateKey: rsaPair.privateKey }),
  ];
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat())
    .map(([seed, edits, cut]) => {
      const b = Buffer.from(seed);
      for (const [at, value] of edits) b[at % b.length] = value;
      return cut % 5 === 0 ? b.subarray(0, cut % b.length) : b;
    });
  const inputs = fc.oneof(mutated, fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)));
  t.notThrows(() => fc.assert(
    fc.property(inputs, (der) => {
      try {
        parseCsr(der);
        return true;
      } catch (err) {
        return err instanceof DerError;
      }
    }),
    { numRuns: process.env.STRATA_SLOW ? 20_000 : 1_000 },
  ));
});
