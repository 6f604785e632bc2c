/**
 * Store benchmark: durable puts per second (sequential, and with 64 in
 * flight) and watch delivery latency (put call -> watch batch), for the
 * embedded store and, in the same run as its peer, a 3-member etcd cluster
 * on 127.0.0.1 through the etcd backend. Every phase is bounded in time.
 *
 * Options: --seconds N (per phase, default 3), --backends embedded,etcd,
 * --runs N (repeat and report medians, default 3).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { openEtcdStore } from '../control-plane/store/etcd/etcd-store.ts';
import type { StateStore } from '../control-plane/store/port.ts';
import { startEtcdCluster } from '../test/harness/etcd-cluster.ts';

const VALUE = JSON.stringify({ payload: 'x'.repeat(180) }); // ~200 bytes, as the calibration used

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

async function putsPerSecond(store: StateStore, prefix: string, inFlight: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let seq = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await store.put(`${prefix}${seq++ % 10_000}`, VALUE);
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return done / ((performance.now() - start) / 1000);
}

async function watchLatencyMs(store: StateStore, prefix: string, seconds: number): Promise<number[]> {
  const { index } = await store.list(prefix);
  const abort = new AbortController();
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let waiter: (() => void) | undefined;
  const consumer = (async () => {
    for await (const batch of store.watch(prefix, { fromIndex: index, signal: abort.signal })) {
      const now = performance.now();
      if (batch.kind !== 'changes') continue;
      for (const e of batch.events) {
        const t0 = e.type === 'put' ? sentAt.get(e.entry.key) : undefined;
        if (t0 !== undefined) latencies.push(now - t0);
      }
      waiter?.();
    }
  })();
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end && i < 20_000; i++) {
    const key = `${prefix}${i}`;
    const delivered = new Promise<void>((resolve) => (waiter = resolve));
    sentAt.set(key, performance.now());
    await store.put(key, VALUE);
    await Promise.race([delivered, new Promise((r) => setTimeout(r, 1000))]);
  }
  abort.abort();
  await consumer;
  return latencies;
}

interface BackendResult {
  putsPerSecondSequential: number;
  putsPerSecond64InFlight: number;
  watchLatencyMsP50: number;
  watchLatencyMsP99: number;
  watchSamples: number;
  runs: number;
}

async function measure(open: () => Promise<StateStore>, seconds: number, runs: number): Promise<BackendResult> {
  const seq: number[] = [];
  const par: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  let samples = 0;
  for (let r = 0; r < runs; r++) {
    const store = await open();
    try {
      seq.push(await putsPerSecond(store, `bench/${r}/seq/`, 1, seconds));
      par.push(await putsPerSecond(store, `bench/${r}/par/`, 64, seconds));
      const lat = await watchLatencyMs(store, `bench/${r}/watch/`, seconds);
      samples += lat.length;
      p50.push(percentile(lat, 50));
      p99.push(percentile(lat, 99));
    } finally {
      await store.close();
    }
  }
  return {
    putsPerSecondSequential: Math.round(median(seq)),
    putsPerSecond64InFlight: Math.round(median(par)),
    watchLatencyMsP50: round(median(p50)),
    watchLatencyMsP99: round(median(p99)),
    watchSamples: samples,
    runs,
  };
}

export async function run(args: string[]): Promise<unknown> {
  const seconds = Number(option(args, 'seconds', '3'));
  const runs = Number(option(args, 'runs', '3'));
  const backends = option(args, 'backends', 'embedded,etcd').split(',');
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-'));
  const results: Record<string, BackendResult> = {};
  try {
    if (backends.includes('embedded')) {
      let n = 0;
      results.embedded = await measure(() => openEmbeddedStore({ path: join(dir, `embedded-${n++}.db`) }), seconds, runs);
    }
    if (backends.includes('etcd')) {
      const cluster = await startEtcdCluster({ members: 3 });
      try {
        let n = 0;
        results.etcd3 = await measure(() => openEtcdStore({ endpoints: [...cluster.endpoints], prefix: `bench-${n++}/` }), seconds, runs);
      } finally {
        await cluster.stop();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const e = results.embedded;
  const p = results.etcd3;
  return {
    area: 'store',
    node: process.version,
    secondsPerPhase: seconds,
    valueBytes: VALUE.length,
    durability: { embedded: 'SQLite WAL, synchronous=FULL (fsync per group commit)', etcd3: '3 members on 127.0.0.1, raft + fsync' },
    results,
    ...(e && p
      ? {
          ratiosEmbeddedOverEtcd: {
            putsSequential: round(e.putsPerSecondSequential / p.putsPerSecondSequential),
            puts64InFlight: round(e.putsPerSecond64InFlight / p.putsPerSecond64InFlight),
            watchP99: round(e.watchLatencyMsP99 / p.watchLatencyMsP99),
          },
        }
      : {}),
    goals: e
      ? {
          embeddedPuts64InFlightAtLeast20000: e.putsPerSecond64InFlight >= 20_000,
          embeddedWatchP99AtMost5Ms: e.watchLatencyMsP99 <= 5,
        }
      : undefined,
  };
}
