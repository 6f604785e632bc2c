/**
 * Network namespaces for tests: uniquely named (`<prefix>-<pid>-<n>`),
 * removed at teardown even when the test fails, with helpers to run
 * commands and long-lived processes inside them. Test setup may spawn `ip`;
 * production code never does per operation.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
let counter = 0;

/** Why namespace tests cannot run here, or `undefined` if they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!existsSync('/usr/sbin/nft')) return 'needs nft (apt-get install nftables)';
  return undefined;
}

export interface Netns {
  readonly name: string;
  /** Run a command inside; rejects with its stderr on failure. */
  exec(cmd: string, args: readonly string[]): Promise<string>;
  /** Start a long-lived process inside (killed at cleanup). */
  spawn(cmd: string, args: readonly string[]): ChildProcess;
}

export interface NetnsSet {
  create(suffix: string): Promise<Netns>;
  /** `ip` in the root namespace (for links spanning namespaces use `ip -n NAME`). */
  ip(args: readonly string[]): Promise<string>;
  cleanup(): Promise<void>;
}

/** Remove namespaces `<prefix>-<pid>-*` left by test processes that died before their teardown ran (a timeout kills the worker). */
async function removeStale(prefix: string): Promise<void> {
  const listing = await run('ip', ['netns', 'list']).then((r) => r.stdout, () => '');
  for (const line of listing.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}

export function netnsSet(prefix: string): NetnsSet {
  const names: string[] = [];
  let cleaned: Promise<void> | undefined;
  const children: ChildProcess[] = [];
  const base = `${prefix}-${process.pid}-${++counter}`;
  const ip = async (args: readonly string[]): Promise<string> => {
    try {
      return (await run('ip', [...args])).stdout;
    } catch (err) {
      throw new Error(`ip ${args.join(' ')}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
    }
  };
  return {
    ip,
    async create(suffix) {
      cleaned ??= removeStale(prefix);
      await cleaned;
      const name = `${base}-${suffix}`;
      await ip(['netns', 'add', name]);
      names.push(name);
      await ip(['-n', name, 'link', 'set', 'lo', 'up']);
      return {
        name,
        async exec(cmd, args) {
          try {
            return (await run('ip', ['netns', 'exec', name, cmd, ...args])).stdout;
          } catch (err) {
            throw new Error(`${cmd} ${args.join(' ')} in ${name}: ${(err as { stderr?: string }).stderr ?? String(err)}`);
          }
        },
        spawn(cmd, args) {
          const child = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
          children.push(child);
          return child;
        },
      };
    },
    async cleanup() {
      for (const c of children) c.kill('SIGKILL');
      for (const name of names.reverse()) await run('ip', ['netns', 'del', name]).catch(() => undefined);
    },
  };
}

/**
 * A routed veth from `host` to `ns`: host side `<net>.1/24` named `hostIf`,
 * far side `eth0` with `<net>.2/24` and a default route through the host
 * (each "container" its own subnet, replies routed back through the host).
 */
export async function routedVeth(set: NetnsSet, host: Netns, ns: Netns, hostIf: string, net: string): Promise<void> {
  await set.ip(['-n', host.name, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
  await set.ip(['-n', host.name, 'addr', 'add', `${net}.1/24`, 'dev', hostIf]);
  await set.ip(['-n', host.name, 'link', 'set', hostIf, 'up']);
  await set.ip(['-n', ns.name, 'addr', 'add', `${net}.2/24`, 'dev', 'eth0']);
  await set.ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  await set.ip(['-n', ns.name, 'route', 'add', 'default', 'via', `${net}.1`]);
}

// A TCP sink (counts what it receives on port 9000, answers the count) and a
// source (sends N MiB, prints bytes and seconds): the throughput benchmarks'
// two ends, run with the test's Node inside namespaces.
const SINK = `
const net = require('node:net');
net.createServer((s) => { let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => s.end(String(n))); }).listen(9000, process.argv.at(-1), () => console.log('up'));
`;
const SOURCE = `
const net = require('node:net');
const [host, port, mb] = process.argv.slice(-3);
const chunk = Buffer.alloc(1 << 20, 7);
const s = net.connect({ host, port: Number(port) }, () => {
  const started = process.hrtime.bigint();
  let left = Number(mb);
  const pump = () => { while (left > 0) { left--; if (!s.write(chunk)) { s.once('drain', pump); return; } } s.end(); };
  pump();
  let reply = '';
  s.on('data', (d) => { reply += d; });
  s.on('end', () => { const secs = Number(process.hrtime.bigint() - started) / 1e9; console.log(JSON.stringify({ bytes: Number(reply), secs })); });
});
`;

/** Start the TCP sink on `ip`:9000 inside `ns` (stopped at cleanup). */
export async function startTcpSink(ns: Netns, ip: string): Promise<void> {
  const sink = ns.spawn(process.execPath, ['-e', SINK, ip]);
  sink.stdout!.setEncoding('utf8');
  await once(sink.stdout!, 'data');
}

/** Send `mb` MiB from `from` to `host`:`port` (a sink, or a VIP in front of one); MB/s. */
export async function tcpThroughputMBps(from: Netns, host: string, port: number, mb: number): Promise<number> {
  const out = JSON.parse(await from.exec(process.execPath, ['-e', SOURCE, host, String(port), String(mb)])) as { bytes: number; secs: number };
  return out.bytes / out.secs / 1e6;
}

// An echo server on several ports, and a single connection attempt that
// says whether the handshake completed: the policy tests' two ends.
const ECHO = `
const net = require('node:net');
const [ip, ...ports] = process.argv.slice(1);
let up = 0;
for (const port of ports) net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(Number(port), ip, () => { if (++up === ports.length) console.log('listening'); });
`;
const PROBE = `
const net = require('node:net');
const [host, port, waitMs] = process.argv.slice(-3);
const s = net.connect({ host, port: Number(port) });
const timer = setTimeout(() => { console.log('blocked'); process.exit(0); }, Number(waitMs));
s.on('connect', () => { clearTimeout(timer); console.log('open'); s.destroy(); });
s.on('error', (e) => { clearTimeout(timer); console.log('error ' + e.code); });
`;

/** TCP echo servers on `ip` at each port inside `ns` (stopped at cleanup). */
export async function startEchoServer(ns: Netns, ip: string, ports: readonly number[]): Promise<void> {
  const child = ns.spawn(process.execPath, ['-e', ECHO, ip, ...ports.map(String)]);
  child.stdout!.setEncoding('utf8');
  await once(child.stdout!, 'data');
}

/**
 * One TCP connection attempt from `ns`: `open`, `blocked` (no handshake
 * within the wait: a dropped SYN), or `error <code>`. Expecting `open`,
 * wait long (a loaded machine is slow, and an open path answers as soon as
 * it can); expecting `blocked`, a short wait says the same (a dropped path
 * never answers).
 */
export async function probeTcp(ns: Netns, host: string, port: number, expect: 'open' | 'blocked'): Promise<string> {
  return (await ns.exec(process.execPath, ['-e', PROBE, host, String(port), expect === 'open' ? '10000' : '1500'])).trim();
}
