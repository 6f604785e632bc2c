/**
 * A fake upstream resolver for tests: UDP and TCP on 127.0.0.1 (port 0),
 * whose behaviour a test picks and changes, and which records what it was
 * asked. Behaviours: answer (a function of the query), a fixed rcode,
 * silence (dead), a delay, garbage, a wrong ID.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import * as packet from 'dns-packet';

export type FakeBehaviour =
  /** Build the reply from the decoded query; return raw bytes for byte-exact tests. */
  | { readonly kind: 'answer'; readonly reply: (query: packet.DecodedPacket, raw: Buffer) => Buffer; readonly delayMs?: number }
  | { readonly kind: 'rcode'; readonly rcode: 'SERVFAIL' | 'REFUSED' | 'NXDOMAIN'; readonly delayMs?: number }
  | { readonly kind: 'dead' }
  | { readonly kind: 'garbage' }
  | { readonly kind: 'wrong-id' };

export interface FakeUpstream {
  readonly port: number;
  /** `127.0.0.1:port` */
  readonly address: string;
  /** Queries received, raw, with the transport and the sender's port. */
  readonly received: { transport: 'udp' | 'tcp'; bytes: Buffer; fromPort: number }[];
  behave(behaviour: FakeBehaviour): void;
  close(): Promise<void>;
}

/** A NOERROR A answer `192.0.2.<last>` with TTL 300 to any question. */
export const answerA = (last: number): FakeBehaviour => ({
  kind: 'answer',
  reply: (q) =>
    packet.encode({
      type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: q.questions,
      answers: [{ name: q.questions![0]!.name, type: 'A', ttl: 300, data: `192.0.2.${last}` }],
    }),
});

const RCODES = { SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

function respond(behaviour: FakeBehaviour, raw: Buffer, send: (reply: Buffer) => void): void {
  let query: packet.DecodedPacket;
  try {
    query = packet.decode(raw);
  } catch {
    return;
  }
  const later = (delayMs: number | undefined, fn: () => void): void => {
    if (delayMs) setTimeout(fn, delayMs).unref();
    else fn();
  };
  switch (behaviour.kind) {
    case 'dead':
      return;
    case 'answer':
      later(behaviour.delayMs, () => send(behaviour.reply(query, raw)));
      return;
    case 'rcode':
      later(behaviour.delayMs, () =>
        // dns-packet takes the rcode from the low bits of `flags`.
        send(packet.encode({ type: 'response', id: query.id, flags: packet.RECURSION_DESIRED | RCODES[behaviour.rcode], questions: query.questions })),
      );
      return;
    case 'garbage':
      send(Buffer.concat([raw.subarray(0, 2), Buffer.from([0x81, 0x80, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 1, 2, 3])]));
      return;
    case 'wrong-id': {
      const reply = (answerA(99) as { reply: (q: packet.DecodedPacket, raw: Buffer) => Buffer }).reply(query, raw);
      reply.writeUInt16BE((query.id! + 1) & 0xffff, 0);
      send(reply);
      return;
    }
  }
}

export async function startFakeUpstream(initial: FakeBehaviour): Promise<FakeUpstream> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryStart(initial);
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

async function tryStart(initial: FakeBehaviour): Promise<FakeUpstream> {
  let behaviour = initial;
  let closed = false;
  const connections = new Set<TcpSocket>();
  const received: FakeUpstream['received'] = [];
  const udp: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
  const port = udp.address().port;
  udp.on('message', (msg, rinfo) => {
    received.push({ transport: 'udp', bytes: msg, fromPort: rinfo.port });
    respond(behaviour, msg, (reply) => {
      if (!closed) udp.send(reply, rinfo.port, rinfo.address);
    });
  });
  const tcp: Server = createServer((socket) => {
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
    let buffered: Buffer = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + msg.length);
        received.push({ transport: 'tcp', bytes: msg, fromPort: socket.remotePort ?? 0 });
        respond(behaviour, msg, (reply) => {
          if (!socket.destroyed) socket.write(Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]));
        });
      }
    });
  });
  // Same port number for TCP, as real resolvers; retry on the rare clash.
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err) => {
      udp.close();
      reject(err);
    });
    tcp.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    received,
    behave: (b) => {
      behaviour = b;
    },
    close: async () => {
      closed = true;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const socket of connections) socket.destroy();
      });
    },
  };
}
