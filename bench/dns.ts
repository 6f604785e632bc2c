/**
 * DNS benchmark: dnsperf against loopback, peers measured in the same run.
 *
 * Authoritative: a zone of 10,000 names (`task-N.marathon.mesos`, the
 * calibration's zone) queried with 90% known and 10% unknown names, served
 * by Strata (the wire server with the in-repo fake Authority), dnsmasq
 * (addn-hosts, `local=/mesos/`) and unbound (local-data, 1 thread). Each
 * server is pinned to CPU 1 and dnsperf to CPU 0. Per server: max throughput
 * (`-c 10 -q 100`), server CPU µs per query, and p50/p99 at a fixed 10k qps.
 *
 * Forwarding: the same queries through Strata's dispatcher (cache off, full
 * chain) and through dnsmasq (`cache-size=0`) to the same upstream unbound,
 * which runs on CPU 0 beside dnsperf, as in the calibration.
 *
 * Both cores: two Strata processes sharing one port (`dns.reusePort`), one
 * per core, against unbound with 2 threads, dnsperf unpinned.
 *
 * Node floor: a Node process that answers every datagram with a fixed
 * record and does nothing else (bench/dns-node-floor.ts), measured like the
 * authoritative servers: what dgram's receive and send cost per query, the
 * least any Node DNS server can spend, and so the ceiling of Strata's ratios.
 *
 * Memory (`--parts rss` runs only this): the RSS of a Strata DNS server
 * after a short load (every name asked, the answer cache full), with the
 * real zones (`dns/zone`) built from the cluster state of ~10,000 and
 * ~100,000 names (bench/dns-cluster.ts, held as a `strata agent` holds
 * them), with V8's default young generation, with `--max-semi-space-size=2`
 * on the command line, and as `strata` starts its servers (bin/strata.mjs);
 * and, for comparison with earlier runs, the fake authority's 100,000
 * records.
 *
 * Options: --parts all|rss (default all), --seconds N per measurement (default 2), --runs N (default 5;
 * servers interleaved within a run, order rotated, medians reported),
 * --quiet-wait N (wait up to N s, default 2, for the shared box to go quiet
 * before each measurement; the other load seen is reported either way).
 *
 * On a shared box QPS swings with other people's load; server CPU per query
 * does not, so it is reported too, with the single-core capacity it implies
 * (1e6 / µs per query) and the CPU ratio between servers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import { parseQuery } from '../dns/codec/query.ts';
import { authorityPlugin } from '../dns/plugins/authority/authority.ts';
import type { UpstreamExchange } from '../dns/plugins/forward/exchange.ts';
import { forwardPlugin } from '../dns/plugins/forward/forward.ts';
import { UpstreamHealth } from '../dns/plugins/forward/health.ts';
import { forwardMetrics } from '../dns/plugins/forward/metrics.ts';
import { FAILURE_HALF_LIFE_MS } from '../dns/plugins/forward/setup.ts';
import { parseUpstream } from '../dns/plugins/forward/upstream.ts';
import { readyPlugin } from '../dns/plugins/ready/ready.ts';
import { compose } from '../dns/server/handler.ts';
import { serverMetrics } from '../dns/server/metrics.ts';
import { buildDnsServer } from '../dns/server/server.ts';
import { buildFromConfig } from '../dns/start.ts';
import { calibrationRecords, createFakeAuthority } from '../dns/zone-fake/fake-authority.ts';
import { available, freePort, startDnsmasq, startUnbound, type LocalRecord, type PeerServer } from '../test/harness/dns-peers.ts';
import { canonicalOf, cluster, serializedState, tasksForNames } from './dns-cluster.ts';
import { reexecFlags } from '../cli/node-flags.ts';

const NAMES = 10_000;

/**
 * Our own cost per authoritative query, without sockets: the chain and codec
 * in this process (`server.respond` on prepared query bytes), CPU µs, with
 * and without the answer cache. Stable under
 * contention in a way QPS is not; tracks regressions in our code.
 */
function inProcessUsPerQuery(): { authoritative: number; authoritativeNoAnswerCache: number; codecParse: number } {
  const config = loadConfig({ env: {}, overrides: { 'dns.cacheMaxEntries': 0 } });
  const silent = { warn: () => undefined, error: () => undefined, info: () => undefined, debug: () => undefined };
  const authority = createFakeAuthority({ zones: ['mesos'], records: calibrationRecords(NAMES), record: false });
  const { server } = buildFromConfig({ config: config.dns, authority, logger: silent, metrics: new Registry() });
  const queries = Array.from({ length: 1000 }, (_, i) =>
    encodeTestQuery(i % 10 === 0 ? `missing-${i}.marathon.mesos` : `task-${(i * 7) % NAMES}.marathon.mesos`, i),
  );
  let sink = 0;
  const deliver = (b: Buffer): void => void (sink += b.length);
  const time = (fn: (q: Buffer) => void): number => {
    const samples: number[] = [];
    for (let r = 0; r < 7; r++) {
      // CPU time, not wall time: a shared box preempts us, it does not make our code slower.
      const before = process.cpuUsage();
      for (let i = 0; i < 100_000; i++) fn(queries[i % 1000]!);
      const used = process.cpuUsage(before);
      samples.push((used.user + used.system) / 100_000);
    }
    return round(median(samples.slice(2)), 3); // first rounds warm the JIT
  };
  const noAnswerCache = buildFromConfig({ config: { ...config.dns, answerCacheMaxEntries: 0 }, authority, logger: silent, metrics: new Registry() }).server;
  const authoritativeNoAnswerCache = time((q) => void noAnswerCache.respond(q, 'udp', deliver));
  const authoritative = time((q) => void server.respond(q, 'udp', deliver));
  const codecParse = time((q) => void (sink += parseQuery(q).kind.length));
  if (sink === 0) throw new Error('nothing answered');
  return { authoritative, authoritativeNoAnswerCache, codecParse };
}

/**
 * Our own CPU per forwarded query, without sockets: the full chain
 * (`ready`, `authority`, `forward`) over an exchange that answers at once
 * (parse, routing, dispatch, timers, promises, metrics, relay), 100 queries
 * in flight at a time as under dnsperf. CPU time, not wall time.
 */
async function inProcessForwardCpuUsPerQuery(): Promise<number> {
  const registry = new Registry();
  const exchange: UpstreamExchange = {
    exchange: (_upstream, query) => {
      const reply = Buffer.from(query);
      reply[2] = reply[2]! | 0x80;
      return { result: Promise.resolve({ ok: true, bytes: reply }), cancel: () => undefined };
    },
    close: async () => undefined,
  };
  const server = buildDnsServer({
    handler: compose([
      readyPlugin(),
      authorityPlugin(createFakeAuthority({ zones: ['internal'], records: [], record: false })),
      forwardPlugin({
        upstreams: [parseUpstream('127.0.0.1:53', 'upstream')], zones: [], upstreamTimeoutMs: 2000, forwardTimeoutMs: 5000,
        exchange, health: new UpstreamHealth({ halfLifeMs: FAILURE_HALF_LIFE_MS }), metrics: forwardMetrics(registry),
      }),
    ]),
    metrics: serverMetrics(registry),
    logger: { warn: () => undefined, error: () => undefined, info: () => undefined, debug: () => undefined },
    maxUdpPayloadBytes: 1232,
    recursionAvailable: true,
    answerCacheMaxEntries: 32768,
  });
  const queries = Array.from({ length: 1000 }, (_, i) => encodeTestQuery(`name-${i}.example.com`, i));
  const samples: number[] = [];
  for (let r = 0; r < 7; r++) {
    const n = 100_000;
    const before = process.cpuUsage();
    for (let b = 0; b < n; b += 100) {
      await new Promise<void>((resolve) => {
        let left = 100;
        for (let i = b; i < b + 100; i++) server.respond(queries[i % 1000]!, 'udp', () => void (--left === 0 && resolve()));
      });
    }
    const used = process.cpuUsage(before);
    samples.push((used.user + used.system) / n);
  }
  return round(median(samples.slice(2)), 3);
}

/** A standard query for `name`, type A, RD set (built by hand: the bench does not load dns-packet). */
function encodeTestQuery(name: string, id: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  return Buffer.concat([Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Busy and total jiffies of the whole box, from /proc/stat. */
function boxJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Share of one core used by everything else on the box while `fn` ran, in %. */
async function withOtherLoad<T>(serverPid: number, fn: () => Promise<T & { clientCpuSeconds: number }>): Promise<T & { clientCpuSeconds: number; serverCpuSeconds: number; otherLoadPct: number }> {
  const box0 = boxJiffies();
  const server0 = cpuSeconds(serverPid);
  const started = performance.now();
  const result = await fn();
  const elapsedSeconds = (performance.now() - started) / 1000;
  const box1 = boxJiffies();
  const serverCpuSeconds = cpuSeconds(serverPid) - server0;
  const busySeconds = (box1.busy - box0.busy) / 100;
  const otherLoadPct = Math.max(0, (100 * (busySeconds - serverCpuSeconds - result.clientCpuSeconds)) / elapsedSeconds);
  return { ...result, serverCpuSeconds, otherLoadPct };
}

/** Waits (at most `maxSeconds`) for a second in which other work used under 25% of a core. */
async function waitQuiet(maxSeconds: number): Promise<void> {
  const deadline = performance.now() + maxSeconds * 1000;
  while (performance.now() < deadline) {
    const a = boxJiffies();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const b = boxJiffies();
    if ((b.busy - a.busy) / ((b.total - a.total) / cpus().length) < 0.25) return;
  }
}

function memoryMb(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: round(kb('VmRSS') / 1024, 1), peakMb: round(kb('VmHWM') / 1024, 1) };
}

interface Perf {
  /** dnsperf's own CPU time. */
  readonly clientCpuSeconds: number;
  readonly qps: number;
  readonly avgMs: number;
  readonly lost: number;
  readonly latenciesMs?: number[];
}

function dnsperf(port: number, queries: string, seconds: number, extra: string[], pinned = true): Promise<Perf> {
  return new Promise((resolve, reject) => {
    // Through sh, so the shell's cutime/cstime (printed after dnsperf exits) give dnsperf's CPU.
    const command = [...(pinned ? ['taskset', '-c', '0'] : []), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), ...extra].join(' ');
    const child = spawn('sh', ['-c', `${command}; echo; echo "STAT $(cat /proc/$$/stat)"`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('exit', () => {
      const text = Buffer.concat(chunks).toString();
      const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
      const latencies = extra.includes('-v')
        ? [...text.matchAll(/^> \S+ \S+ \S+ ([0-9.]+)$/gm)].map((m) => Number(m[1]) * 1000)
        : undefined;
      const stat = /^STAT .*\) (.*)$/m.exec(text)?.[1]?.split(' ') ?? [];
      resolve({
        clientCpuSeconds: (Number(stat[13]) + Number(stat[14])) / 100,
        qps: num(/Queries per second:\s+([0-9.]+)/),
        avgMs: num(/Average Latency \(s\):\s+([0-9.]+)/) * 1000,
        lost: num(/Queries lost:\s+(\d+)/),
        ...(latencies ? { latenciesMs: latencies } : {}),
      });
    });
  });
}

interface Target {
  readonly name: string;
  readonly port: number;
  /** Names the server's zones hold (Strata's children say so when ready). */
  readonly names?: number;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startStrata(options: { names?: number; stateFile?: string; upstreamPort?: number; port?: number; reusePort?: boolean }, cpu = 1, nodeFlags: readonly string[] = []): Promise<Target> {
  return startChild('strata', ['./dns-server.ts', JSON.stringify(options)], cpu, nodeFlags);
}

/** A Node child of this benchmark (`./dns-server.ts`, `./dns-node-floor.ts`) pinned to `cpu`, once it printed `READY <port>`. */
async function startChild(name: string, [file, ...args]: readonly string[], cpu: number, nodeFlags: readonly string[] = []): Promise<Target> {
  const script = fileURLToPath(new URL(file!, import.meta.url));
  const child: ChildProcess = spawn('taskset', ['-c', String(cpu), process.execPath, ...nodeFlags, '--disable-warning=ExperimentalWarning', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let names: number | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /READY (\d+)(?: (\d+))?\n/.exec(text);
      if (!m) return;
      if (m[2] !== undefined) names = Number(m[2]);
      resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} DNS child exited (${code}) before listening`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    port,
    ...(names !== undefined ? { names } : {}),
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const fromPeer = (peer: PeerServer): Target => ({ name: peer.name, port: peer.port, pid: peer.pid, stop: () => peer.stop() });

interface Sample {
  qps: number[];
  cpuUsPerQuery: number[];
  p50Ms: number[];
  p99Ms: number[];
  lost: number[];
  /** Other work on the box during each max-throughput measurement, % of one core. */
  otherLoadPct: number[];
  peakRssMb: number;
}

async function measure(target: Target, queries: string, seconds: number, sample: Sample, fixedRate: boolean, quietSeconds: number): Promise<void> {
  await waitQuiet(quietSeconds);
  const max = await withOtherLoad(target.pid, () => dnsperf(target.port, queries, seconds, ['-c', '10', '-q', '100']));
  sample.qps.push(max.qps);
  sample.lost.push(max.lost);
  sample.otherLoadPct.push(max.otherLoadPct);
  sample.cpuUsPerQuery.push((max.serverCpuSeconds * 1e6) / (max.qps * seconds));
  if (fixedRate) {
    const fixed = await dnsperf(target.port, queries, seconds, ['-c', '10', '-q', '100', '-Q', '10000', '-v']);
    const sorted = [...(fixed.latenciesMs ?? [])].sort((a, b) => a - b);
    sample.p50Ms.push(percentile(sorted, 50));
    sample.p99Ms.push(percentile(sorted, 99));
  }
  sample.peakRssMb = Math.max(sample.peakRssMb, memoryMb(target.pid).peakMb);
}

function summary(sample: Sample) {
  return {
    qpsMedian: Math.round(median(sample.qps)),
    qpsRuns: sample.qps.map((q) => Math.round(q)),
    cpuUsPerQueryMedian: round(median(sample.cpuUsPerQuery), 1),
    oneCoreCapacityQps: Math.round(1e6 / median(sample.cpuUsPerQuery)),
    ...(sample.p99Ms.length ? { p50MsAt10kQps: round(median(sample.p50Ms), 3), p99MsAt10kQps: round(median(sample.p99Ms), 3) } : {}),
    lostTotal: sample.lost.reduce((a, b) => a + b, 0),
    otherLoadPctRuns: sample.otherLoadPct.map((x) => Math.round(x)),
    peakRssMb: sample.peakRssMb,
  };
}

/**
 * RSS after a short load (dnsperf over every name once, then the same for
 * `seconds`), per server setup; the servers run one after another on CPU 1.
 */
async function memoryPart(dir: string, seconds: number, targets: Target[]) {
  const loadOnce = async (options: Parameters<typeof startStrata>[0], queries: string, nodeFlags: readonly string[] = []) => {
    const target = await startStrata(options, 1, nodeFlags);
    targets.push(target);
    await dnsperf(target.port, queries, Math.min(seconds, 2), ['-c', '10', '-q', '100']);
    await dnsperf(target.port, queries, Math.min(seconds, 2), ['-c', '10', '-q', '100']);
    const memory = { names: target.names, ...memoryMb(target.pid) };
    targets.splice(targets.indexOf(target), 1);
    await target.stop();
    return memory;
  };
  const zone = async (names: number) => {
    const c = cluster(tasksForNames(names));
    const stateFile = join(dir, `state-${names}.json`);
    await writeFile(stateFile, serializedState(c));
    // Every task's canonical name, its short name and the app's SRV name, in a fixed shuffled order: the answer cache fills.
    const lines: string[] = [];
    for (const [i, t] of c.tasks.entries()) {
      lines.push(`${canonicalOf(t)} A`);
      if (i % 10 === 0) lines.push(`${canonicalOf(t).replace(/-[^.]*-[^.]*\./, '.')} A`, `_${canonicalOf(t).split('-')[0]}._tcp.marathon.mesos SRV`);
    }
    const queries = join(dir, `queries-${names}.txt`);
    await writeFile(queries, `${lines.map((_, i) => lines[(i * 7919) % lines.length]).join('\n')}\n`);
    return { stateFile, queries };
  };
  const small = await zone(10_000);
  const big = await zone(100_000);
  const fakeLines = Array.from({ length: 100_000 }, (_, i) => `task-${(i * 7919) % 100_000}.marathon.mesos A`);
  const fakeQueries = join(dir, 'queries-fake-100k.txt');
  await writeFile(fakeQueries, `${fakeLines.join('\n')}\n`);
  // `strata` starts its servers through bin/strata.mjs, which sets the young generation itself (STRATA_NODE_SEMI_SPACE_MB).
  const strataFlags = reexecFlags({ args: ['agent'], execArgv: [], env: process.env }) ?? [];
  return {
    zone10kNames: await loadOnce({ stateFile: small.stateFile }, small.queries),
    zone100kNames: await loadOnce({ stateFile: big.stateFile }, big.queries),
    zone100kNamesSemiSpace2Mb: await loadOnce({ stateFile: big.stateFile }, big.queries, ['--max-semi-space-size=2']),
    zone100kNamesAsStrataStartsIt: { flags: strataFlags, ...(await loadOnce({ stateFile: big.stateFile }, big.queries, strataFlags)) },
    fakeAuthority100kRecords: await loadOnce({ names: 100_000 }, fakeQueries),
    goalRssMb: 150,
  };
}

const empty = (): Sample => ({ qps: [], cpuUsPerQuery: [], p50Ms: [], p99Ms: [], lost: [], otherLoadPct: [], peakRssMb: 0 });

/** Median over runs of a/b within the same run (robust to load that shifts between runs). */
const perRunRatio = (a: Sample, b: Sample): number => round(median(a.qps.map((q, i) => q / b.qps[i]!)));

export async function run(args: string[]): Promise<unknown> {
  const seconds = Number(option(args, 'seconds', '2'));
  const runs = Number(option(args, 'runs', '5'));
  const quietSeconds = Number(option(args, 'quiet-wait', '2'));
  const missing = (['dnsperf', 'unbound', 'dnsmasq'] as const).filter((b) => !available(b));
  if (missing.length) throw new Error(`npm run bench -- dns needs ${missing.join(', ')} (apt-get install ${missing.join(' ')})`);
  if (spawnSync('taskset', ['-c', '1', 'true']).status !== 0) throw new Error('taskset -c 1 failed: the benchmark needs 2 CPUs');

  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-dns-'));
  const targets: Target[] = [];
  if (option(args, 'parts', 'all') === 'rss') {
    try {
      return { area: 'dns', part: 'rss', node: process.version, memory: await memoryPart(dir, seconds, targets) };
    } finally {
      for (const t of targets) await t.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }
  const inProcess = { ...inProcessUsPerQuery(), forwardCpu: await inProcessForwardCpuUsPerQuery() };
  try {
    const records: LocalRecord[] = Array.from({ length: NAMES }, (_, n) => ({ name: `task-${n}.marathon.mesos`, address: `10.0.${n >> 8}.${n & 255}` }));
    // 100k queries: 90% known names, 10% unknown (NXDOMAIN), shuffled.
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const lines = Array.from({ length: 100_000 }, (_, i) =>
      random() < 0.9 ? `task-${Math.floor(random() * NAMES)}.marathon.mesos A` : `missing-${i}.marathon.mesos A`,
    );
    const queries = join(dir, 'queries.txt');
    await writeFile(queries, `${lines.join('\n')}\n`);

    const strata = await startStrata({ names: NAMES });
    targets.push(strata);
    const strataIdle = memoryMb(strata.pid);
    const dnsmasq = fromPeer(await startDnsmasq({ zone: 'mesos', records, cpu: 1 }));
    targets.push(dnsmasq);
    const unbound = fromPeer(await startUnbound({ zone: 'mesos', records, cpu: 1 }));
    targets.push(unbound);
    const nodeFloor = await startChild('nodeFloor', ['./dns-node-floor.ts', '0'], 1);
    targets.push(nodeFloor);
    const upstream = fromPeer(await startUnbound({ zone: 'mesos', records, cpu: 0 }));
    targets.push(upstream);
    const strataFwd = await startStrata({ upstreamPort: upstream.port });
    targets.push(strataFwd);
    const dnsmasqFwd = fromPeer(await startDnsmasq({ forwardTo: upstream.port, cpu: 1 }));
    targets.push(dnsmasqFwd);

    const auth = { strata: empty(), dnsmasq: empty(), unbound: empty(), nodeFloor: empty() };
    const fwd = { strata: empty(), dnsmasq: empty() };
    // Warm up each (JIT, caches) for a second, unmeasured.
    for (const t of [strata, dnsmasq, unbound, nodeFloor, strataFwd, dnsmasqFwd]) await dnsperf(t.port, queries, 1, ['-c', '10', '-q', '100']);
    for (let r = 0; r < runs; r++) {
      // Rotate the order each run so no server always goes first.
      const order = [
        ['strata', strata],
        ['dnsmasq', dnsmasq],
        ['unbound', unbound],
        ['nodeFloor', nodeFloor],
      ] as const;
      for (let i = 0; i < order.length; i++) {
        const [name, target] = order[(i + r) % order.length]!;
        await measure(target, queries, seconds, auth[name], name !== 'nodeFloor', quietSeconds);
      }
      const fOrder = [
        ['strata', strataFwd],
        ['dnsmasq', dnsmasqFwd],
      ] as const;
      for (let i = 0; i < fOrder.length; i++) {
        const [name, target] = fOrder[(i + r) % fOrder.length]!;
        await measure(target, queries, seconds, fwd[name], false, quietSeconds);
      }
    }
    for (const t of targets.splice(0)) await t.stop();

    // Both cores: two Strata processes sharing one port (dns.reusePort), one
    // per core, against unbound with 2 threads; dnsperf unpinned (it needs a
    // core too, so this is the box's ceiling, not the servers').
    const sharedPort = await freePort();
    const strataA = await startStrata({ names: NAMES, port: sharedPort, reusePort: true }, 0);
    targets.push(strataA);
    const strataB = await startStrata({ names: NAMES, port: sharedPort, reusePort: true }, 1);
    targets.push(strataB);
    const unbound2 = fromPeer(await startUnbound({ zone: 'mesos', records, threads: 2 }));
    targets.push(unbound2);
    const twoCore = { strata: [] as number[], unbound: [] as number[], strataCpuUs: [] as number[], unboundCpuUs: [] as number[] };
    for (const t of [strataA, unbound2]) await dnsperf(t.port, queries, 1, ['-c', '10', '-q', '100'], false);
    for (let r = 0; r < runs; r++) {
      for (const which of r % 2 === 0 ? (['strata', 'unbound'] as const) : (['unbound', 'strata'] as const)) {
        await waitQuiet(quietSeconds);
        const pids = which === 'strata' ? [strataA.pid, strataB.pid] : [unbound2.pid];
        const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
        const perf = await dnsperf(which === 'strata' ? sharedPort : unbound2.port, queries, seconds, ['-c', '10', '-q', '100'], false);
        const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
        twoCore[which].push(perf.qps);
        twoCore[which === 'strata' ? 'strataCpuUs' : 'unboundCpuUs'].push((cpu * 1e6) / (perf.qps * seconds));
      }
    }
    for (const t of targets.splice(0)) await t.stop();

    const memory = await memoryPart(dir, seconds, targets);

    const a = { strata: summary(auth.strata), dnsmasq: summary(auth.dnsmasq), unbound: summary(auth.unbound), nodeFloor: summary(auth.nodeFloor) };
    const f = { strata: summary(fwd.strata), dnsmasq: summary(fwd.dnsmasq) };
    return {
      area: 'dns',
      node: process.version,
      cpus: cpus().length,
      secondsPerMeasurement: seconds,
      runs,
      zoneNames: NAMES,
      inProcessUsPerQuery: inProcess,
      unknownShare: 0.1,
      authoritative: {
        ...a,
        strataVsDnsmasq: round(a.strata.qpsMedian / a.dnsmasq.qpsMedian),
        strataVsUnbound: round(a.strata.qpsMedian / a.unbound.qpsMedian),
        strataVsDnsmasqPerRunMedian: perRunRatio(auth.strata, auth.dnsmasq),
        strataVsUnboundPerRunMedian: perRunRatio(auth.strata, auth.unbound),
        capacityStrataVsDnsmasq: round(a.dnsmasq.cpuUsPerQueryMedian / a.strata.cpuUsPerQueryMedian),
        capacityStrataVsUnbound: round(a.unbound.cpuUsPerQueryMedian / a.strata.cpuUsPerQueryMedian),
        capacityStrataVsNodeFloor: round(a.nodeFloor.cpuUsPerQueryMedian / a.strata.cpuUsPerQueryMedian),
        capacityNodeFloorVsDnsmasq: round(a.dnsmasq.cpuUsPerQueryMedian / a.nodeFloor.cpuUsPerQueryMedian),
        capacityNodeFloorVsUnbound: round(a.unbound.cpuUsPerQueryMedian / a.nodeFloor.cpuUsPerQueryMedian),
      },
      forwarding: {
        upstream: 'unbound (local-data, CPU 0 with dnsperf)',
        ...f,
        strataVsDnsmasq: round(f.strata.qpsMedian / f.dnsmasq.qpsMedian),
        strataVsDnsmasqPerRunMedian: perRunRatio(fwd.strata, fwd.dnsmasq),
        capacityStrataVsDnsmasq: round(f.dnsmasq.cpuUsPerQueryMedian / f.strata.cpuUsPerQueryMedian),
      },
      bothCores: {
        setup: 'Strata: 2 processes on one port (dns.reusePort), pinned to CPU 0 and 1; unbound: num-threads 2; dnsperf unpinned',
        strataQpsMedian: Math.round(median(twoCore.strata)),
        strataQpsRuns: twoCore.strata.map(Math.round),
        strataCpuUsPerQueryMedian: round(median(twoCore.strataCpuUs), 1),
        unboundQpsMedian: Math.round(median(twoCore.unbound)),
        unboundQpsRuns: twoCore.unbound.map(Math.round),
        unboundCpuUsPerQueryMedian: round(median(twoCore.unboundCpuUs), 1),
        strataVsUnbound: round(median(twoCore.strata) / median(twoCore.unbound)),
      },
      strataIdleRssMb: strataIdle.rssMb,
      memory,
      note: 'Strata runs as `node file.ts` (type stripping loads a WASM compiler: part of its RSS); nodeFloor is a Node process that only echoes a fixed answer (bench/dns-node-floor.ts): the cheapest a Node DNS server can be',
    };
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
