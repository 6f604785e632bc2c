/**
 * Security benchmark (issue 7): auth token verifications per second (ES256
 * and RS256), the authorisation decision (`allows` over a principal with
 * groups folded in), the auth hook's cost per request (a protected route
 * against the same handler on a public route, through `app.inject`,
 * interleaved in the same run), and certificate issuance per second (CSR parse + verify, sign,
 * store write).
 *
 * The gateway (`--parts gateway`): a proxied request's latency at a fixed
 * open-loop rate (default 2,000 requests/s) through the gateway (HTTPS,
 * token, revocation, ACL, /service/<app> resolution, keep-alive upstream)
 * against the same requests straight to the same upstream and against an
 * HTTPS server answering by itself (the TLS share) and against a bare
 * relay on the same TLS server (`bare_proxy`: the share any node:http proxy
 * pays, without the gateway's rules), phases interleaved; load
 * and upstream each in a worker thread; and the gateway's authentication
 * and authorisation decision (`iamAccess`) alone. `cpu_us_per_request` is
 * the gateway thread's CPU time per request (user + system, from
 * `process.threadCpuUsage`), against the HTTPS server alone's.
 *
 * Options: --runs N (default 3, medians), --seconds S per phase (default 1),
 * --parts tokens,decision,auth_hook,ca,gateway (default all), --rate R and
 * --load-seconds S for the gateway (default 2000 and 5).
 *
 * Parts (`--parts a,b`, default all): `tokens`, `decision`, `hook`, `certs`
 * (CA signing per second, and workload certificates per second as SDS makes
 * them: key pair, CSR, sign, store write), `mtls` (new connections per
 * second, each a full handshake and one request, to a master's mTLS
 * listener (client certificate verified against the root and the CRLs)
 * versus a plain TLS server with the same certificate, interleaved in the
 * same run).
 *
 * More parts: `auth_hook` (alias of `hook`), `ca` (CA signing alone), `gateway`.
 */
import { performance } from 'node:perf_hooks';
import { generateKeyPairSync } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig } from '../control-plane/config/load.ts';
import { startMaster } from '../control-plane/master.ts';
import { Records } from '../control-plane/model/records.ts';
import type { Group, Principal } from '../control-plane/model/schemas.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { ClusterCa } from '../security/ca/authority.ts';
import { buildCsr, name, toPem } from '../security/ca/x509.ts';
import { allows, resolvePrincipal } from '../security/iam.ts';
import { TokenService } from '../security/tokens.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ComponentCertificate } from '../security/mtls/certificate.ts';
import { attachMtls, MtlsServerContext } from '../security/mtls/server.ts';
import { Worker } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { iamAccess } from '../gateway/access.ts';
import { startGateway } from '../gateway/start.ts';
import { mkApp, mkTask } from '../dns/zone/testing.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (n: number, digits = 0): number => Number(n.toFixed(digits));

/** Calls per second of `fn` over `seconds` (awaited one at a time). */
async function rate(seconds: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/** Verifications/s of tokens seen for the first time (signature checked) and of tokens seen before (remembered until exp). */
async function tokenRates(seconds: number, runs: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const algorithm of ['ES256', 'RS256'] as const) {
    const store = await openEmbeddedStore({ path: ':memory:' });
    const tokens = await TokenService.open(new Records(store), { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm });
    const fresh: number[] = [];
    for (let r = 0; r < runs; r++) {
      const batch = await Promise.all(Array.from({ length: 1000 }, () => tokens.issue('admin')));
      const start = performance.now();
      for (const { token } of batch) await tokens.verify(token);
      fresh.push(batch.length / ((performance.now() - start) / 1000));
    }
    const { token } = await tokens.issue('admin');
    const seen: number[] = [];
    for (let r = 0; r < runs; r++) seen.push(await rate(seconds, () => tokens.verify(token)));
    out[`${algorithm}_first_sight_per_second`] = round(median(fresh));
    out[`${algorithm}_seen_per_second`] = round(median(seen));
    await store.close();
  }
  return out;
}

function decisionLatency(): { p50_us: number; p99_us: number } {
  const groups = new Map<string, Group>(
    Array.from({ length: 5 }, (_, i) => [`g${i}`, { gid: `g${i}`, permissions: Array.from({ length: 10 }, (_, j) => ({ rid: `dcos:service:marathon:marathon:services:/team${i}/app${j}`, actions: ['read' as const] })) }]),
  );
  const principal: Principal = {
    uid: 'alice', kind: 'user', groups: [...groups.keys()],
    permissions: Array.from({ length: 20 }, (_, j) => ({ rid: `dcos:service:marathon:marathon:services:/own/app${j}`, actions: ['update' as const] })),
  };
  const samples: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const start = performance.now();
    allows(resolvePrincipal(principal, (gid) => groups.get(gid)), `dcos:service:marathon:marathon:services:/team4/app9/web`, i % 2 === 0 ? 'read' : 'delete');
    samples.push((performance.now() - start) * 1000);
  }
  return { p50_us: round(percentile(samples, 50), 2), p99_us: round(percentile(samples, 99), 2) };
}

async function hookOverhead(requests: number): Promise<Record<string, number>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-sec-'));
  const store = await openEmbeddedStore({ path: ':memory:' });
  const config = loadConfig({ env: {}, overrides: { dataDir, 'api.port': 0, 'log.level': 'silent' } });
  const master = await startMaster({
    config, logger: pino({ level: 'silent' }), store,
    routes: [
      (app) => app.get('/bench/public', { config: { permission: { public: true } } }, async () => ({ ok: true })),
      (app) => app.get('/bench/protected', { config: { permission: { rid: 'dcos:service:marathon:marathon:services:/team4/app9', action: 'read' } } }, async () => ({ ok: true })),
    ],
  });
  await master.iam.createGroup('readers', undefined);
  await master.iam.createAcl('dcos:service:marathon:marathon:services:/team4', 'bench');
  await master.iam.grant({ gid: 'readers' }, 'dcos:service:marathon:marathon:services:/team4', 'read');
  await master.iam.createPrincipal({ uid: 'alice', kind: 'user', permissions: [], groups: ['readers'] });
  const { token } = await master.tokens.issue('alice');
  const once = async (url: string, headers: Record<string, string>): Promise<number> => {
    const start = performance.now();
    const res = await master.app.inject({ method: 'GET', url, headers });
    const us = (performance.now() - start) * 1000;
    if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
    return us;
  };
  const auth = { authorization: `token=${token}` };
  for (let i = 0; i < 500; i++) await once(i % 2 ? '/bench/public' : '/bench/protected', i % 2 ? {} : auth); // warm up
  // Interleaved, so GC and machine noise fall on both alike.
  const pub: number[] = [];
  const prot: number[] = [];
  for (let i = 0; i < requests; i++) {
    pub.push(await once('/bench/public', {}));
    prot.push(await once('/bench/protected', auth));
  }
  await master.close();
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
  return {
    public_p50_us: round(percentile(pub, 50)),
    public_p99_us: round(percentile(pub, 99)),
    protected_p50_us: round(percentile(prot, 50)),
    protected_p99_us: round(percentile(prot, 99)),
    added_p50_us: round(percentile(prot, 50) - percentile(pub, 50)),
    added_p99_us: round(percentile(prot, 99) - percentile(pub, 99)),
  };
}

async function issuanceRate(seconds: number, runs: number): Promise<Record<string, number>> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const records = new Records(store);
  const ca = await ClusterCa.open(records, { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey }), 'CERTIFICATE REQUEST');
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) rates.push(await rate(seconds, () => ca.sign({ uid: 'alice', kind: 'user' }, csr)));
  const crlStart = performance.now();
  await ca.crl(0);
  const crlMs = performance.now() - crlStart;
  const issued = (await records.list('certificate')).records.length;
  await store.close();
  return { certificates_per_second: round(median(rates)), issued, crl_build_ms_over_all_issued: round(crlMs, 1) };
}

interface LoadResult {
  readonly latenciesUs: number[];
  readonly achievedPerSecond: number;
}

function load(job: { url: string; ca?: string; headers: Record<string, string>; ratePerSecond: number; seconds: number; sockets: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./gateway-load.ts', import.meta.url), { workerData: job });
    worker.once('message', (m: LoadResult) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load worker exited with ${code}`));
    });
  });
}

/**
 * The gateway against its upstream at a fixed rate: a small upstream HTTP
 * server standing in for an app task, reached directly and through
 * `/service/bench/web/` (a user holding only that app's rid), in alternating
 * phases of `loadSeconds`, `runs` times each.
 */
async function gatewayOverhead(options: { ratePerSecond: number; loadSeconds: number; runs: number }): Promise<Record<string, unknown>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-gw-'));
  const store = await openEmbeddedStore({ path: ':memory:' });
  const config = loadConfig({ env: {}, overrides: { dataDir, 'api.port': 0, 'gateway.port': 0, 'log.level': 'silent' } });
  const master = await startMaster({ config, logger: pino({ level: 'silent' }), store });
  const body = JSON.stringify({ ok: true, data: 'x'.repeat(200) });
  const upstream = new Worker(new URL('./gateway-upstream.ts', import.meta.url));
  const port = await new Promise<number>((resolve, reject) => {
    upstream.once('message', (m: { port: number }) => resolve(m.port));
    upstream.once('error', reject);
  });
  await master.records.put('app', mkApp('/bench/web', { portDefinitions: [{ port: 0 }] }));
  await master.records.put('task', mkTask('bench_web.instance-1._app.1', '/bench/web', 'ag-S0', { host: '127.0.0.1', ports: [port] }));
  await master.iam.createPrincipal({ uid: 'bench', kind: 'user', permissions: [{ rid: 'dcos:adminrouter:service:bench/web', actions: ['full'] }] });
  const { token } = await master.tokens.issue('bench');
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const gateway = await startGateway({ config, apiUrl: master.apiUrl, tokens: master.tokens, iam: master.iam, ca: master.ca, records: master.records, registry: new Registry(), logger: quiet });

  // The decision alone: token (seen before), revocation, ACL.
  const access = iamAccess(master.tokens, master.iam);
  const decisions: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const startedAt = performance.now();
    const who = await access.authenticate(token);
    if (!who.ok || !access.allows(who.principal, 'dcos:adminrouter:service:bench/web', 'full')) throw new Error('bench principal refused');
    decisions.push((performance.now() - startedAt) * 1000);
  }

  // A peer for the TLS share of the cost: an HTTPS server with a certificate of the same CA answering the same body itself.
  const leaf = await master.ca.issueComponentCertificate('bench', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const tlsOnly = createHttpsServer({ cert: leaf.certificateChain, key: leaf.privateKey }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => tlsOnly.listen(0, '127.0.0.1', r));
  const tlsPort = (tlsOnly.address() as AddressInfo).port;
  // A peer for the proxying share: the same TLS server relaying each request to the upstream over a keep-alive pool,
  // and nothing else (no route, token, ACL, header rules, timers, metrics or log): what any node:http proxy pays.
  const bareAgent = new HttpAgent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
  const bare = createHttpsServer({ cert: leaf.certificateChain, key: leaf.privateKey }, (req, res) => {
    const up = httpRequest({ host: '127.0.0.1', port, path: req.url, method: req.method, agent: bareAgent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/octet-stream', 'content-length': answer.headers['content-length'] ?? '0' });
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end();
  });
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const barePort = (bare.address() as AddressInfo).port;

  const job = { headers: { authorization: `token=${token}` }, ratePerSecond: options.ratePerSecond, seconds: options.loadSeconds, sockets: 32 };
  const direct: LoadResult[] = [];
  const tls: LoadResult[] = [];
  const through: LoadResult[] = [];
  const bareProxy: LoadResult[] = [];
  // The main thread's event-loop utilisation while it serves (1 = saturated: latency is then queueing).
  const elu = { tls: [] as number[], bare: [] as number[], gateway: [] as number[] };
  // The main thread's CPU time (user + system) per request: what the box must lend it, unlike ELU not inflated when the thread waits for a core.
  const cpu = { tls: [] as number[], bare: [] as number[], gateway: [] as number[] };
  const measured = async (into: { elu: number[]; cpu: number[] }, run: () => Promise<LoadResult>): Promise<LoadResult> => {
    const before = performance.eventLoopUtilization();
    const cpuBefore = process.threadCpuUsage();
    const result = await run();
    into.elu.push(performance.eventLoopUtilization(before).utilization);
    const used = process.threadCpuUsage(cpuBefore);
    // The load worker's warm-up requests are served too.
    into.cpu.push((used.user + used.system) / (result.latenciesUs.length + job.sockets));
    return result;
  };
  for (let r = 0; r < options.runs; r++) {
    direct.push(await load({ ...job, url: `http://127.0.0.1:${port}/hello` }));
    tls.push(await measured({ elu: elu.tls, cpu: cpu.tls }, () => load({ ...job, url: `https://127.0.0.1:${tlsPort}/hello`, ca: master.ca.rootPem })));
    bareProxy.push(await measured({ elu: elu.bare, cpu: cpu.bare }, () => load({ ...job, url: `https://127.0.0.1:${barePort}/hello`, ca: master.ca.rootPem })));
    through.push(await measured({ elu: elu.gateway, cpu: cpu.gateway }, () => load({ ...job, url: `${gateway.url}/service/bench/web/hello`, ca: master.ca.rootPem })));
  }
  bare.closeAllConnections();
  await new Promise<void>((r) => bare.close(() => r()));
  bareAgent.destroy();
  tlsOnly.closeAllConnections();
  await new Promise<void>((r) => tlsOnly.close(() => r()));
  await gateway.close();
  upstream.postMessage('stop');
  await new Promise<void>((r) => upstream.once('exit', () => r()));
  await master.close();
  await store.close();
  await rm(dataDir, { recursive: true, force: true });

  const summary = (results: LoadResult[]): { p50_us: number; p99_us: number; achieved_per_second: number } => ({
    p50_us: round(median(results.map((x) => percentile(x.latenciesUs, 50)))),
    p99_us: round(median(results.map((x) => percentile(x.latenciesUs, 99)))),
    achieved_per_second: round(median(results.map((x) => x.achievedPerSecond))),
  });
  const d = summary(direct);
  const g = summary(through);
  return {
    rate_per_second: options.ratePerSecond,
    requests_per_phase: Math.round(options.ratePerSecond * options.loadSeconds),
    runs: options.runs,
    direct: d,
    https_server_alone: summary(tls),
    bare_proxy: summary(bareProxy),
    through_gateway: g,
    added_p50_us: g.p50_us - d.p50_us,
    added_p99_us: g.p99_us - d.p99_us,
    event_loop_utilisation: { https_server_alone: round(median(elu.tls), 2), bare_proxy: round(median(elu.bare), 2), gateway: round(median(elu.gateway), 2) },
    cpu_us_per_request: { https_server_alone: round(median(cpu.tls)), bare_proxy: round(median(cpu.bare)), gateway: round(median(cpu.gateway)) },
    // Load ratio: the box's 1-minute load average over its cores at the end (above 1: threads wait for a core).
    load_per_core: round(loadavg()[0]! / availableParallelism(), 1),
    decision_p50_us: round(percentile(decisions, 50), 2),
    decision_p99_us: round(percentile(decisions, 99), 2),
  };
}


/** Workload certificates per second as SDS makes them: a P-256 key pair, a CSR, the CA's signature and record. */
async function workloadRate(seconds: number, runs: number): Promise<Record<string, number>> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const ca = await ClusterCa.open(new Records(store), { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    rates.push(await rate(seconds, async () => {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const csr = toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey }), 'CERTIFICATE REQUEST');
      return ca.sign({ uid: 'web', kind: 'service' }, csr, { ttlSeconds: 86400 });
    }));
  }
  await store.close();
  return { workload_certificates_per_second: round(median(rates)) };
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null }): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** New connections per second (handshake + one request each), mTLS versus plain TLS, interleaved. */
async function handshakeRates(seconds: number, runs: number): Promise<Record<string, number>> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const ca = await ClusterCa.open(new Records(store), { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const certificate = await ComponentCertificate.obtain({ component: 'master', enrol: (csr) => ca.sign({ uid: 'm1', kind: 'master' }, csr, { ttlSeconds: 86400 }) });
  const context = await MtlsServerContext.start({ certificate, trust: ca, trustDomain: ca.trustDomain, crlRefreshSeconds: 3600 });
  // Some revoked certificates, so the CRL is not empty.
  for (let i = 0; i < 20; i++) await ca.revoke((await ca.newcert({ uid: `old-${i}`, kind: 'agent' }, { algo: 'ecdsa', size: 256 })).serial, 'superseded');
  await context.refreshCrl();
  const handler = (_req: unknown, res: { end(body: string): void }): void => res.end('ok');
  const mtlsHttp = createHttpServer(handler);
  const attached = attachMtls(mtlsHttp, context, { listener: 'bench' });
  const mtlsPort = await listen(mtlsHttp);
  const plain: HttpsServer = createHttpsServer({ key: certificate.current.keyPem, cert: certificate.current.certificateChain }, handler);
  const plainPort = await listen(plain);
  const agent = await ca.newcert({ uid: 'a1', kind: 'agent' }, { algo: 'ecdsa', size: 256 });
  const request = (port: number, client: { key?: string; cert?: string }): Promise<void> =>
    new Promise((resolve, reject) => {
      httpsGet({ host: '127.0.0.1', port, path: '/', agent: false, ca: ca.rootPem, checkServerIdentity: () => undefined, ...client }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      }).on('error', reject);
    });
  const withCert = { key: agent.privateKey, cert: agent.certificateChain };
  for (let i = 0; i < 50; i++) {
    await request(mtlsPort, withCert);
    await request(plainPort, {});
  }
  const m: number[] = [];
  const p: number[] = [];
  for (let r = 0; r < runs; r++) {
    m.push(await rate(seconds, () => request(mtlsPort, withCert)));
    p.push(await rate(seconds, () => request(plainPort, {})));
  }
  attached.close();
  mtlsHttp.close();
  plain.close();
  context.close();
  certificate.close();
  await store.close();
  return {
    mtls_connections_per_second: round(median(m)),
    plain_tls_connections_per_second: round(median(p)),
    ratio_mtls_to_plain_tls: round(median(m) / median(p), 2),
  };
}

const PARTS = ['tokens', 'decision', 'hook', 'auth_hook', 'ca', 'certs', 'mtls', 'gateway'] as const;

export async function run(args: string[]): Promise<unknown> {
  const runs = option(args, 'runs', 3);
  const seconds = option(args, 'seconds', 1);
  const i = args.indexOf('--parts');
  const wanted = new Set(i >= 0 && args[i + 1] ? args[i + 1]!.split(',') : PARTS.filter((p) => p !== 'auth_hook' && p !== 'ca'));
  for (const p of wanted) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--parts: unknown part ${JSON.stringify(p)} (known: ${PARTS.join(', ')})`);
  const out: Record<string, unknown> = { node: process.version };
  if (wanted.has('tokens')) out['tokens'] = await tokenRates(seconds, runs);
  if (wanted.has('decision')) out['decision'] = decisionLatency();
  if (wanted.has('hook') || wanted.has('auth_hook')) out['auth_hook'] = await hookOverhead(option(args, 'requests', 3000));
  if (wanted.has('certs')) out['ca'] = { ...(await issuanceRate(seconds, runs)), ...(await workloadRate(seconds, runs)) };
  else if (wanted.has('ca')) out['ca'] = await issuanceRate(seconds, runs);
  if (wanted.has('mtls')) out['mtls'] = await handshakeRates(seconds, runs);
  if (wanted.has('gateway')) out['gateway'] = await gatewayOverhead({ ratePerSecond: option(args, 'rate', 2000), loadSeconds: option(args, 'load-seconds', 5), runs });
  return out;
}
