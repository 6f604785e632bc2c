/**
 * xDS benchmark (issue 5): 1,000 services x 10 endpoints in an in-memory
 * embedded store, served by the real snapshot source (watches, default
 * 100 ms debounce) and ADS server over gRPC on 127.0.0.1, to K simulated
 * in-process clients. Each client is an Envoy-like SotW ADS stream: CDS
 * wildcard and EDS for all 1,000 clusters, ACKing every response. The
 * clients parse only the top-level response fields (version, type, nonce),
 * so the process's memory is mostly the server's.
 *
 * Measures:
 * - convergence: one endpoint change written to the store → every stream
 *   has ACKed the EDS response that carries it (p50/p99 over --changes);
 *   includes the debounce (goal p99 <= 250 ms);
 * - full snapshot rebuild: translate + encode of the whole state, cold (new
 *   builder) and warm (unchanged resources reused);
 * - memory per connected stream: heap growth after GC from connecting the
 *   streams (clients included, so an upper bound; goal <= 100 KB).
 *
 * K defaults to 200 streams (the machine is shared); STRATA_SLOW=1 or
 * --streams 1000 runs the full 1,000.
 * Options: --services N (1000), --endpoints N (10), --streams N, --changes N (20), --debounce-ms N (100),
 * --delta (incremental xDS streams instead of state of the world).
 */
import * as grpc from '@grpc/grpc-js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { Iam } from '../security/iam.ts';
import { TokenService } from '../security/tokens.ts';
import { tokenAuthenticator } from '../control-plane/xds/identity.ts';
import { createXdsMetrics } from '../control-plane/xds/metrics.ts';
import { adsPackageDefinition, TYPE } from '../control-plane/xds/protos.ts';
import { XdsServer } from '../control-plane/xds/server.ts';
import { frame, SnapshotBuilder } from '../control-plane/xds/snapshot.ts';
import { openSnapshotSource } from '../control-plane/xds/source.ts';
import { translate, Translator } from '../control-plane/xds/translate.ts';
import { task, vipApp } from '../control-plane/xds/testing.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Top-level fields of a DiscoveryResponse without decoding its resources: 1 version, 4 type_url, 5 nonce. */
function scanResponse(buf: Buffer): { version: string; typeUrl: string; nonce: string } {
  let i = 0;
  const out = { version: '', typeUrl: '', nonce: '' };
  const varint = (): number => {
    let n = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) {
      varint();
      continue;
    }
    const len = varint();
    const field = tag >>> 3;
    if (field === 1) out.version = buf.toString('utf8', i, i + len);
    else if (field === 4) out.typeUrl = buf.toString('utf8', i, i + len);
    else if (field === 5) out.nonce = buf.toString('utf8', i, i + len);
    i += len;
  }
  return out;
}

export async function run(args: string[]): Promise<unknown> {
  const services = option(args, 'services', 1000);
  const endpoints = option(args, 'endpoints', 10);
  const streams = option(args, 'streams', process.env['STRATA_SLOW'] === '1' ? 1000 : 200);
  const changes = option(args, 'changes', 20);
  const debounceMs = option(args, 'debounce-ms', 100);
  const delta = args.includes('--delta');

  const store = await openEmbeddedStore({ path: ':memory:' });
  const records = new Records(store);
  const tokens = await TokenService.open(records, { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm: 'ES256' });
  const iam = new Iam(records);
  await iam.createPrincipal({ uid: 'bench', kind: 'user', permissions: [{ rid: 'dcos:superuser', actions: ['full'] }] });
  const token = (await tokens.issue('bench')).token;

  // The state: services x endpoints.
  const populateStart = performance.now();
  const names: string[] = [];
  for (let s = 0; s < services; s += 50) {
    await Promise.all(Array.from({ length: Math.min(50, services - s) }, async (_, k) => {
      const i = s + k;
      const id = `/bench/svc-${i}`;
      names.push(`benchsvc-${i}:80`);
      await records.put('app', vipApp(id, { instances: endpoints }));
      for (let e = 0; e < endpoints; e++) await records.put('task', task(`bench_svc-${i}.${e}`, id, 20000 + e, { host: `10.${(i >> 8) & 255}.${i & 255}.${e + 1}` }));
    }));
  }
  const populateSeconds = (performance.now() - populateStart) / 1000;
  const progress = (msg: string): void => void process.stderr.write(`xds bench: ${msg}\n`);
  progress(`store populated in ${populateSeconds.toFixed(1)} s`);

  // Full rebuild, outside the server: cold (new builder) and warm (everything reused).
  const registry = new Registry();
  const metrics = createXdsMetrics(registry);
  const server = new XdsServer({ authenticate: tokenAuthenticator({ tokens, iam }), metrics });
  // The sink records when each snapshot reached the server and how long handing it to every stream took.
  const servedAt = new Map<string, { at: number; pushMs: number }>();
  const sink = {
    setSnapshot(snap: Parameters<XdsServer['setSnapshot']>[0]): void {
      const at = performance.now();
      server.setSnapshot(snap);
      servedAt.set(snap.version, { at, pushMs: performance.now() - at });
    },
  };
  const source = await openSnapshotSource({ records, sink, metrics, debounceMs });
  const state = source.state();
  const cold: number[] = [];
  const warm: number[] = [];
  const translateOnly: number[] = [];
  for (let r = 0; r < 5; r++) {
    let t0 = performance.now();
    const tr = translate(state);
    translateOnly.push(performance.now() - t0);
    t0 = performance.now();
    const b = new SnapshotBuilder();
    b.build(tr);
    cold.push(performance.now() - t0 + translateOnly.at(-1)!);
    // Warm: a long-lived translator and builder, one endpoint changed (what a change costs the source).
    const translator = new Translator();
    b.build(translator.translate(state));
    const one = [...state.tasksByApp.values()][r]!;
    const changed = { ...state, tasksByApp: new Map(state.tasksByApp).set(one[0]!.appId, [{ ...one[0]!, host: '10.255.255.1' }, ...one.slice(1)]) };
    t0 = performance.now();
    b.build(translator.translate(changed));
    warm.push(performance.now() - t0);
  }
  const snapshot = server.snapshot!;
  const resourceCounts = Object.fromEntries([...snapshot.resources].map(([t, m]) => [t.split('.').pop(), m.size]));

  progress(`rebuilds measured (snapshot ${server.snapshot!.version})`);
  const port = await server.listen('127.0.0.1', 0);
  const def = adsPackageDefinition()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition;
  const method = def[delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources']!;
  const encode = method.requestSerialize;
  // The simulated clients send pre-encoded bytes (the subscription list is encoded once), so their cost stays small next to the server's.
  const Client = grpc.makeGenericClientConstructor({ Ads: { ...method, requestSerialize: (b: unknown) => b as Buffer, responseDeserialize: (b: Buffer) => b } }, 'Ads');
  const namesFrame = Buffer.concat(names.map((n) => frame(3, n)));
  const wildcardFrame = frame(3, '*');
  const sotwAck = (r: { version: string; typeUrl: string; nonce: string }): Buffer =>
    Buffer.concat([frame(1, r.version), r.typeUrl === TYPE.cluster ? wildcardFrame : namesFrame, frame(4, r.typeUrl), frame(5, r.nonce)]);
  // DeltaDiscoveryRequest: type_url = 2, response_nonce = 6.
  const deltaAck = (r: { typeUrl: string; nonce: string }): Buffer => Buffer.concat([frame(2, r.typeUrl), frame(6, r.nonce)]);
  const channels = Array.from({ length: Math.ceil(streams / 100) }, () => new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));

  // ACKs as the server records them (the moment each stream's ACK arrives).
  server.onAck = ({ typeUrl, version, nack }) => {
    if (typeUrl !== TYPE.endpoint || nack) return;
    acked++;
    ackedVersions.set(version, (ackedVersions.get(version) ?? 0) + 1);
  };
  const heapBefore = heapAfterGc();
  const rssBefore = process.memoryUsage().rss;
  let acked = 0;
  const ackedVersions = new Map<string, number>();
  const calls: grpc.ClientDuplexStream<unknown, Buffer>[] = [];
  const connectStart = performance.now();
  let initialDone = 0;
  let resolveInitial!: () => void;
  const initial = new Promise<void>((r) => (resolveInitial = r));
  for (let k = 0; k < streams; k++) {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const call = (channels[Math.floor(k / 100)] as unknown as { Ads: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, Buffer> }).Ads(md);
    let gotCds = false;
    let gotEds = false;
    call.on('data', (buf: Buffer) => {
      const r = scanResponse(buf);
      call.write(delta ? deltaAck(r) : sotwAck(r));
      if (r.typeUrl === TYPE.cluster && !gotCds) {
        gotCds = true;
        call.write(encode(delta ? { type_url: TYPE.endpoint, resource_names_subscribe: names } : { type_url: TYPE.endpoint, resource_names: names }));
      }
      if (r.typeUrl === TYPE.endpoint) {
        if (!gotEds) {
          gotEds = true;
          if (++initialDone === streams) resolveInitial();
        }
      }
    });
    call.on('error', () => undefined);
    const node = { id: `bench-${k}`, user_agent_name: 'envoy' };
    call.write(encode(delta ? { node, type_url: TYPE.cluster, resource_names_subscribe: ['*'] } : { node, type_url: TYPE.cluster, resource_names: ['*'] }));
    calls.push(call);
  }
  await initial;
  progress(`${streams} streams synced (snapshot ${server.snapshot!.version})`);
  const initialSyncSeconds = (performance.now() - connectStart) / 1000;
  const heapAfter = heapAfterGc();
  const rssAfter = process.memoryUsage().rss;

  // Convergence: one endpoint change at a time, until every stream ACKed the EDS version carrying it.
  const convergence: number[] = [];
  const toSnapshot: number[] = [];
  const pushes: number[] = [];
  for (let c = 0; c < changes; c++) {
    const i = (c * 37) % services;
    const lastVersion = server.snapshot!.version;
    const start = performance.now();
    await records.put('task', task(`bench_svc-${i}.0`, `/bench/svc-${i}`, 20000, { host: `10.${(i >> 8) & 255}.${i & 255}.${50 + (c % 200)}` }));
    // Poll every millisecond: the new snapshot's version, ACKed by every stream.
    for (;;) {
      const v = server.snapshot!.version;
      if (v !== lastVersion && (ackedVersions.get(v) ?? 0) >= streams) break;
      await new Promise((r) => setTimeout(r, 1));
      if (performance.now() - start > 30_000) throw new Error(`change ${c} did not converge in 30 s: snapshot ${lastVersion} -> ${v}, ACKs ${ackedVersions.get(v) ?? 0}/${streams}`);
    }
    convergence.push(performance.now() - start);
    const served = servedAt.get(server.snapshot!.version)!;
    toSnapshot.push(served.at - start);
    pushes.push(served.pushMs);
  }
  const sorted = [...convergence].sort((a, b) => a - b);

  for (const call of calls) call.cancel();
  for (const ch of channels) ch.close();
  source.close();
  await server.close();
  await store.close();

  const perStreamKb = (heapAfter - heapBefore) / streams / 1024;
  return {
    area: 'xds',
    node: process.version,
    scenario: { services, endpointsPerService: endpoints, streams, changes, debounceMs, client: `Envoy-like ${delta ? 'delta' : 'SotW'}: CDS wildcard + EDS for every cluster, ACK everything` },
    populateStoreSeconds: Math.round(populateSeconds * 100) / 100,
    resources: resourceCounts,
    snapshotBytes: snapshot.totalBytes,
    rebuildMs: { note: 'cold = translate + encode everything; warm = one endpoint changed, memoized translator and encoder', translateMedian: Math.round(median(translateOnly)), coldMedian: Math.round(median(cold)), warmMedian: Math.round(median(warm)), cold: cold.map(Math.round), warm: warm.map(Math.round) },
    initialSyncSeconds: Math.round(initialSyncSeconds * 100) / 100,
    convergenceMs: { p50: Math.round(percentile(sorted, 50)), p99: Math.round(percentile(sorted, 99)), max: Math.round(sorted.at(-1)!), all: convergence.map(Math.round) },
    convergenceBreakdownMedianMs: { storeChangeToSnapshotServed: Math.round(median(toSnapshot)), pushToEveryStream: Math.round(median(pushes) * 10) / 10, snapshotToLastAck: Math.round(median(convergence.map((c, k) => c - toSnapshot[k]!))) },
    memory: { heapPerStreamKb: Math.round(perStreamKb * 10) / 10, rssGrowthMb: Math.round((rssAfter - rssBefore) / 1024 / 1024), heapAfterMb: Math.round(heapAfter / 1024 / 1024) },
    acksReceived: acked,
    goals: { convergenceP99AtMost250Ms: percentile(sorted, 99) <= 250, memoryPerStreamAtMost100Kb: perStreamKb <= 100 },
  };
}
