/**
 * Test helpers: a tiny DNS client over UDP and TCP (dns-packet builds the
 * queries and decodes the replies: it is the oracle, not our codec), and a
 * server started from config on 127.0.0.1 port 0 with a logger that keeps
 * what it was told.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as packet from 'dns-packet';
import { Registry } from 'prom-client';
import { loadConfig } from '../../control-plane/config/load.ts';
import type { DnsConfig } from '../../control-plane/config/schema.ts';
import { startDnsServer, type RunningDnsServer } from '../start.ts';
import type { Authority } from '../zone/types.ts';
import type { DnsLogger } from './server.ts';

export interface QueryOptions {
  readonly id?: number;
  readonly type?: string;
  /** EDNS UDP size; undefined: no OPT record. */
  readonly udpPayloadSize?: number;
  /** How long askUdp waits for the reply (default 2000 ms). */
  readonly timeoutMs?: number;
  readonly dnssecOk?: boolean;
  readonly rd?: boolean;
}

export function buildQuery(name: string, options: QueryOptions = {}): Buffer {
  const flags = options.rd === false ? 0 : packet.RECURSION_DESIRED;
  return packet.encode({
    type: 'query',
    id: options.id ?? ((Math.random() * 0x10000) | 0),
    flags,
    questions: [{ name, type: (options.type ?? 'A') as packet.RecordType, class: 'IN' }],
    ...(options.udpPayloadSize === undefined
      ? {}
      : { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: options.udpPayloadSize, flags: options.dnssecOk ? packet.DNSSEC_OK : 0 } as unknown as packet.Answer] }),
  });
}

/** Sends raw bytes over UDP; resolves the raw reply, or undefined after `timeoutMs`. */
export function udpExchange(port: number, bytes: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(bytes, port, '127.0.0.1');
  });
}

/** Sends several framed messages in one write over one TCP connection; resolves the replies in arrival order. */
export function tcpExchange(port: number, messages: readonly Buffer[], options: { expect?: number; timeoutMs?: number } = {}): Promise<Buffer[]> {
  const expect = options.expect ?? messages.length;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Buffer[] = [];
    let buffered: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(replies);
    }, options.timeoutMs ?? 3000);
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (replies.length >= expect) socket.end();
    });
    socket.write(Buffer.concat(messages.flatMap((m) => [Buffer.from([m.length >> 8, m.length & 0xff]), m])));
  });
}

export async function askUdp(port: number, name: string, options: QueryOptions = {}): Promise<packet.DecodedPacket> {
  const reply = await udpExchange(port, buildQuery(name, options), options.timeoutMs);
  if (!reply) throw new Error(`no UDP reply for ${name}`);
  return packet.decode(reply);
}

export async function askTcp(port: number, name: string, options: QueryOptions = {}): Promise<packet.DecodedPacket> {
  const [reply] = await tcpExchange(port, [buildQuery(name, options)]);
  if (!reply) throw new Error(`no TCP reply for ${name}`);
  return packet.decode(reply);
}

export const rcodeOf = (p: packet.Packet): string | undefined => (p as { rcode?: string }).rcode;
export const hasFlag = (p: packet.Packet, flag: number): boolean => ((p.flags ?? 0) & flag) !== 0;

export interface LogLine {
  readonly level: string;
  readonly obj: object;
  readonly msg: string;
}

export function recordingLogger(): DnsLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, warn: at('warn'), error: at('error'), info: at('info'), debug: at('debug') };
}

/** Starts a server on 127.0.0.1, ports 0, with `dns` overrides (`{upstreams: [...]}`). */
export async function startTestServer(
  authority: Authority,
  overrides: Partial<{ [K in keyof DnsConfig]: unknown }> = {},
): Promise<RunningDnsServer & { registry: Registry; logger: ReturnType<typeof recordingLogger> }> {
  const dnsOverrides = Object.fromEntries(Object.entries({ host: '127.0.0.1', udpPort: 0, tcpPort: 0, ...overrides }).map(([k, v]) => [`dns.${k}`, v]));
  const config = loadConfig({ env: {}, overrides: dnsOverrides });
  const registry = new Registry();
  const logger = recordingLogger();
  const running = await startDnsServer({ config: config.dns, authority, logger, metrics: registry });
  return Object.assign(running, { registry, logger });
}
