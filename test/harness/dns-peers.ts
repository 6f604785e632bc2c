/**
 * Real DNS servers for tests and the DNS benchmark: unbound and dnsmasq on
 * 127.0.0.1, on a port picked here, with their config in a temp dir. Each
 * is killed by `stop()`, and on process exit whatever happens. `available`
 * tells a test whether the binary exists (skip with a clear message if not).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function available(binary: 'unbound' | 'dnsmasq' | 'dnsperf' | 'dig'): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const path = join(dir, binary);
    if (spawnSync('test', ['-x', path]).status === 0) return path;
  }
  return undefined;
}

/** A port free for both UDP and TCP on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    const tcpOk = await new Promise<boolean>((resolve) => {
      const tcp = createServer();
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcpOk) return port;
  }
}

export interface PeerServer {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** Everything it printed. */
  output(): string;
  stop(): Promise<void>;
}

/** Minimal A query for `ready.check` used to wait for a server to answer. */
function probe(port: number): Promise<boolean> {
  const q = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x72, 0x65, 0x61, 0x64, 0x79, 5, 0x63, 0x68, 0x65, 0x63, 0x6b, 0, 0, 1, 0, 1]);
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(false);
    }, 200);
    s.on('message', () => {
      clearTimeout(timer);
      s.close();
      resolve(true);
    });
    s.on('error', () => undefined);
    s.send(q, port, '127.0.0.1');
  });
}

async function launch(name: string, args: string[], port: number, dir: string, cpu?: number): Promise<PeerServer> {
  const [cmd, ...rest] = cpu === undefined ? args : ['taskset', '-c', String(cpu), ...args];
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    running.delete(child);
    resolve();
  }));
  const stop = async (): Promise<void> => {
    if (running.has(child)) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await probe(port))) {
    if (!running.has(child) || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start on 127.0.0.1:${port}: ${text.slice(-2000)}`);
    }
  }
  return { name, port, pid: child.pid!, dir, output: () => text, stop };
}

export interface LocalRecord {
  readonly name: string;
  readonly address: string;
  readonly ttlSeconds?: number;
}

/**
 * unbound serving `records` from `local-data` (zone `zone` static: other
 * names in it are NXDOMAIN), one thread, no upstream. `extra` lines go in
 * the `server:` clause.
 */
export async function startUnbound(options: { zone: string; records: readonly LocalRecord[]; threads?: number; cpu?: number; extra?: readonly string[] }): Promise<PeerServer> {
  const binary = available('unbound');
  if (!binary) throw new Error('unbound is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'strata-unbound-'));
  const port = await freePort();
  const lines = [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${port}`,
    '  do-daemonize: no',
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 0',
    '  chroot: ""',
    '  username: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${join(dir, 'unbound.pid')}"`,
    '  do-ip6: no',
    `  num-threads: ${options.threads ?? 1}`,
    '  access-control: 127.0.0.0/8 allow',
    '  module-config: "iterator"',
    '  local-zone: "check." static',
    '  local-data: "ready.check. 1 IN A 127.0.0.1"',
    `  local-zone: "${options.zone}." static`,
    ...(options.extra ?? []).map((l) => `  ${l}`),
    ...options.records.map((r) => `  local-data: "${r.name}. ${r.ttlSeconds ?? 60} IN A ${r.address}"`),
  ];
  const conf = join(dir, 'unbound.conf');
  await writeFile(conf, `${lines.join('\n')}\n`);
  return launch('unbound', [binary, '-d', '-c', conf], port, dir, options.cpu);
}

/**
 * dnsmasq: either authoritative-style for `records` (an addn-hosts file,
 * `local=/zone/` so other names in the zone are NXDOMAIN, no upstream), or a
 * pure forwarder to `forwardTo` with its cache off.
 */
export async function startDnsmasq(options: { zone?: string; records?: readonly LocalRecord[]; forwardTo?: number; cpu?: number }): Promise<PeerServer> {
  const binary = available('dnsmasq');
  if (!binary) throw new Error('dnsmasq is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'strata-dnsmasq-'));
  const port = await freePort();
  const hosts = join(dir, 'hosts');
  await writeFile(hosts, `127.0.0.1 ready.check\n${(options.records ?? []).map((r) => `${r.address} ${r.name}`).join('\n')}\n`);
  const args = [
    binary, '-k', '-C', '/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--user=root',
    '--local=/check/',
    ...(options.zone ? [`--local=/${options.zone}/`] : []),
    ...(options.forwardTo === undefined ? [] : [`--server=127.0.0.1#${options.forwardTo}`, '--cache-size=0']),
  ];
  return launch('dnsmasq', args, port, dir, options.cpu);
}
