/**
 * DNS zone benchmark (`npm run bench -- dns-zone`): how fast a task state
 * change reaches DNS answers, with 10,000 tasks in the zone.
 *
 * - `storeToAnswer`: `records.put` of a task (RUNNING ↔ KILLED) on the
 *   embedded store (a temp file, WAL, synchronous=FULL) until a lookup
 *   answers the new state; the path a master runs (store watch → view →
 *   StoreAuthority). p50/p99 in ms; `storePutP99Ms` is the put call alone
 *   (durable commit), for comparison.
 * - `applyOnly`: the zone's share: one change event from the fake feed
 *   to the answer, in µs.
 * - `fullRebuild`: the peer inside this run: rebuilding the whole zone
 *   from a snapshot per change (what a Mesos-DNS-style reload does), in ms;
 *   the ratio shows what incremental updates save.
 * - `resyncSnapshotMs`: a resync snapshot (every record a new object, one
 *   changed), applied as a difference.
 * - `lookups`: lookups per second on the 10k-task zone, 10% unknown names.
 * - `zoneHeapMb`: heap held by the 10k-task zone (full GC before and after),
 *   and after every name was asked once (the per-name answer caches).
 *
 * - `memory` (`--parts memory` runs only this): the zones built from the
 *   state of ~10,000 and ~100,000 names as an agent receives it (JSON,
 *   bench/dns-cluster.ts), nothing else holding the state: heap and array
 *   buffers held (full GC before and after), first build time, and the
 *   time of one change (a task RUNNING ↔ KILLED) on that zone.
 *
 * Options: --parts all|memory, --tasks N (default 10000), --updates N (default 300), --runs N (default 3, medians).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { keys } from '../control-plane/model/keys.ts';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { ZoneAuthority } from '../dns/zone/authority.ts';
import { FakeClusterFeed } from '../dns/zone/fake-feed.ts';
import { rfc1123Label } from '../common/dns-labels.ts';
import { StoreAuthority } from '../dns/zone/store-feed.ts';
import { JsonSnapshotFeed, canonicalOf, cluster, serializedState, tasksForNames, type Cluster } from './dns-cluster.ts';

// A heap figure needs a full GC before and after: expose it without a command-line flag.
setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]): number => percentile(xs, 50);
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

function visible(authority: ZoneAuthority, name: string, running: boolean): boolean {
  const rcode = authority.lookup({ name, type: 'A' })?.rcode;
  return running ? rcode === 'NOERROR' : rcode === 'NXDOMAIN';
}

async function storeToAnswer(c: Cluster, updates: number): Promise<{ p50Ms: number; p99Ms: number; maxMs: number; putP99Ms: number; initialSyncMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-dns-'));
  const store = await openEmbeddedStore({ path: join(dir, 'state.db') });
  try {
    const records = new Records(store);
    for (const a of c.agents) await records.put('agent', a);
    for (const a of c.apps) await records.put('app', a);
    // Bulk-load tasks in transactions of 32.
    for (let i = 0; i < c.tasks.length; i += 32) {
      const writes = c.tasks.slice(i, i + 32).map((t) => ({ op: 'put' as const, key: keys.task(t.id), value: JSON.stringify(t) }));
      const r = await store.txn({ writes });
      if (!r.ok) throw new Error('bulk load failed');
    }
    const authority = new StoreAuthority(records);
    const syncStart = performance.now();
    await authority.start();
    const initialSyncMs = performance.now() - syncStart;
    const samples: number[] = [];
    const puts: number[] = [];
    for (let u = 0; u < updates; u++) {
      const task = c.tasks[(u * 7919) % c.tasks.length]!;
      const running = u % 2 === 1;
      const name = canonicalOf(task);
      const started = performance.now();
      const seen = new Promise<number>((resolve) => {
        const off = authority.onApplied(() => {
          if (!visible(authority, name, running)) return;
          off();
          resolve(performance.now());
        });
      });
      await records.put('task', { ...task, state: running ? 'RUNNING' : 'KILLED' });
      puts.push(performance.now() - started);
      samples.push((await seen) - started);
    }
    authority.close();
    return {
      p50Ms: round(median(samples)),
      p99Ms: round(percentile(samples, 99)),
      maxMs: round(Math.max(...samples)),
      putP99Ms: round(percentile(puts, 99)),
      initialSyncMs: round(initialSyncMs, 1),
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function applyOnly(c: Cluster, updates: number): Promise<{ p50Us: number; p99Us: number; fullRebuildMs: number; incrementalVsRebuild: number; resyncMs: number; names: number; heapMb: number; askedHeapMb: number }> {
  const feed = new FakeClusterFeed(c);
  const authority = new ZoneAuthority(feed);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  await authority.start();
  gc();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  // A long-running server ends up having been asked every name: the per-name answer caches are part of its heap.
  for (const name of new Set(authority.allRecords().map((r) => r.name))) authority.lookup({ name, type: 'A' });
  gc();
  const askedHeapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  const samples: number[] = [];
  for (let u = 0; u < updates; u++) {
    const task = c.tasks[(u * 7919) % c.tasks.length]!;
    const running = u % 2 === 1;
    const started = performance.now();
    feed.put({ kind: 'task', value: { ...task, state: running ? 'RUNNING' : 'KILLED' } });
    if (!visible(authority, canonicalOf(task), running)) throw new Error('change not visible after apply');
    samples.push((performance.now() - started) * 1000);
  }
  // The peer: a Mesos-DNS-style reload builds the whole zone again per change.
  const rebuilds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const fresh = new ZoneAuthority(new FakeClusterFeed(c));
    await fresh.start();
    rebuilds.push(performance.now() - started);
  }
  // A resync (store history compacted): every record a new object, one task changed.
  const resyncs: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (const [id, t] of feed.tasks) feed.tasks.set(id, structuredClone(t));
    const first = c.tasks[i]!;
    feed.tasks.set(first.id, { ...first, state: i % 2 === 0 ? 'KILLED' : 'RUNNING' });
    const started = performance.now();
    feed.sync();
    resyncs.push(performance.now() - started);
  }
  const p50Us = median(samples);
  return {
    p50Us: round(p50Us, 1),
    p99Us: round(percentile(samples, 99), 1),
    fullRebuildMs: round(median(rebuilds), 1),
    incrementalVsRebuild: round(median(rebuilds) / (p50Us / 1000), 0),
    resyncMs: round(median(resyncs), 1),
    names: authority.names,
    heapMb: round(heapMb, 0),
    askedHeapMb: round(askedHeapMb, 0),
  };
}

async function lookups(c: Cluster, seconds: number): Promise<{ lookupsPerSecond: number }> {
  const authority = new ZoneAuthority(new FakeClusterFeed(c));
  await authority.start();
  const names = c.tasks.map((t, i) => (i % 10 === 0 ? `nope-${i}.marathon.mesos` : i % 3 === 0 ? `_${rfc1123Label(t.appId.split('/').filter(Boolean).reverse().join('.'))}._tcp.marathon.mesos` : canonicalOf(t)));
  const types = names.map((n) => (n.startsWith('_') ? 'SRV' : 'A') as 'A' | 'SRV');
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++, n++) authority.lookup({ name: names[n % names.length]!, type: types[n % names.length]! });
  }
  return { lookupsPerSecond: Math.round(n / seconds) };
}

/** The zones' memory, build time and change time at about `names` names (see the header). */
async function memory(names: number, updates: number): Promise<{ names: number; tasks: number; heapMb: number; arrayBuffersMb: number; bytesPerName: number; firstBuildMs: number; changeP50Us: number; changeP99Us: number }> {
  const c = cluster(tasksForNames(names));
  let json: string | undefined = serializedState(c);
  const used = (): number => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const jsonBytes = json.length;
  const before = used() - jsonBytes; // the JSON string (one byte a character) is gone once parsed
  const authority = new ZoneAuthority(new JsonSnapshotFeed(json));
  json = undefined;
  const started = performance.now();
  await authority.start();
  const firstBuildMs = performance.now() - started;
  const held = used() - before;
  const m = process.memoryUsage();
  const arrayBuffersMb = m.arrayBuffers / 2 ** 20;
  // Changes through a second authority over a fake feed of the same state (the JSON one delivers a snapshot only).
  const feed = new FakeClusterFeed(c);
  const live = new ZoneAuthority(feed);
  await live.start();
  const samples: number[] = [];
  for (let u = 0; u < updates; u++) {
    const task = c.tasks[(u * 7919) % c.tasks.length]!;
    const running = u % 2 === 1;
    const t0 = performance.now();
    feed.put({ kind: 'task', value: { ...task, state: running ? 'RUNNING' : 'KILLED' } });
    if (!visible(live, canonicalOf(task), running)) throw new Error('change not visible after apply');
    samples.push((performance.now() - t0) * 1000);
  }
  live.close();
  authority.close();
  return {
    names: authority.names,
    tasks: c.tasks.length,
    heapMb: round((held - m.arrayBuffers) / 2 ** 20, 1),
    arrayBuffersMb: round(arrayBuffersMb, 1),
    bytesPerName: Math.round(held / authority.names),
    firstBuildMs: round(firstBuildMs, 0),
    changeP50Us: round(median(samples), 1),
    changeP99Us: round(percentile(samples, 99), 1),
  };
}

export async function run(args: string[]): Promise<unknown> {
  const i = args.indexOf('--parts');
  if (i >= 0 && args[i + 1] === 'memory') {
    const updates = option(args, 'updates', 300);
    return { area: 'dns-zone', part: 'memory', node: process.version, at10kNames: await memory(10_000, updates), at100kNames: await memory(100_000, updates) };
  }
  const taskCount = option(args, 'tasks', 10_000);
  const updates = option(args, 'updates', 300);
  const runs = option(args, 'runs', 3);
  const c = cluster(taskCount);
  const store: Awaited<ReturnType<typeof storeToAnswer>>[] = [];
  const apply: Awaited<ReturnType<typeof applyOnly>>[] = [];
  const look: number[] = [];
  for (let r = 0; r < runs; r++) {
    store.push(await storeToAnswer(c, updates));
    apply.push(await applyOnly(c, updates));
    look.push((await lookups(c, 2)).lookupsPerSecond);
  }
  const med = <T>(xs: T[], f: (x: T) => number): number => median(xs.map(f));
  return {
    area: 'dns-zone',
    tasks: taskCount,
    updatesPerRun: updates,
    runs,
    storeToAnswer: {
      p50Ms: med(store, (x) => x.p50Ms),
      p99Ms: med(store, (x) => x.p99Ms),
      maxMs: med(store, (x) => x.maxMs),
      storePutP99Ms: med(store, (x) => x.putP99Ms),
      initialSyncMs: med(store, (x) => x.initialSyncMs),
      goalP99Ms: 50,
    },
    applyOnly: { p50Us: med(apply, (x) => x.p50Us), p99Us: med(apply, (x) => x.p99Us), names: apply[0]?.names, zoneHeapMb: med(apply, (x) => x.heapMb), zoneHeapAfterEveryNameAskedMb: med(apply, (x) => x.askedHeapMb) },
    fullRebuildPerChange: { ms: med(apply, (x) => x.fullRebuildMs), ratioToIncremental: med(apply, (x) => x.incrementalVsRebuild) },
    resyncSnapshotMs: med(apply, (x) => x.resyncMs),
    lookups: { perSecond: median(look), unknownShare: 0.1 },
    raw: { store, apply, look },
  };
}
