// Child process of `npm run bench -- dns`: the floor of any DNS server in
// Node on this machine. It answers every datagram with one fixed A record
// (the query's header and question echoed, ID kept) and does nothing else:
// no parse, no lookup, no policy. It sends the way dns/server/udp.ts does
// (synchronous lookup, no callback). What it costs per query is dgram's
// receive and send: Strata's authoritative server cannot be cheaper.
// argv[2]: port (0 = any). Prints `READY <port>`; exits on SIGTERM.
import { createSocket } from 'node:dgram';

const socket = createSocket({ type: 'udp4', lookup: (host, _options, callback) => callback(null, host, 4) });
// Pointer to the question, A, IN, TTL 60, 10.0.0.1.
const ANSWER = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
socket.on('message', (msg, rinfo) => {
  // The end of the question (labels, then type and class); an OPT after it is not echoed.
  let end = 12;
  while (end < msg.length && msg[end] !== 0) end += msg[end]! + 1;
  end += 5;
  if (end > msg.length) return;
  const out = Buffer.allocUnsafe(end + ANSWER.length);
  msg.copy(out, 0, 0, end);
  out[2] = 0x84 | (msg[2]! & 0x01);
  out[3] = 0;
  out[6] = 0;
  out[7] = 1;
  out[8] = out[9] = out[10] = out[11] = 0;
  out.set(ANSWER, end);
  socket.send(out, rinfo.port, rinfo.address);
});
socket.bind(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`READY ${socket.address().port}`));
process.once('SIGTERM', () => socket.close(() => process.exit(0)));
