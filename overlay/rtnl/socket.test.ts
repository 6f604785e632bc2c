/**
 * The socket against the real kernel, in a network namespace this test
 * creates (a child process runs there: a netlink socket belongs to its
 * process's namespace): a burst of 5,000 requests at once completes (the
 * window keeps the receive queue from overflowing, which would abort the
 * process in the package's native layer), dumps run while requests are in
 * flight, and a refusal carries its errno. Skipped without root.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { netnsSet, netnsUnavailable } from '../../test/harness/netns.ts';

const skip = netnsUnavailable();
const SOCKET = fileURLToPath(new URL('./socket.ts', import.meta.url));
const CODEC = fileURLToPath(new URL('./codec.ts', import.meta.url));

const BURST = `
const { NetlinkRtnl } = await import(${JSON.stringify(SOCKET)});
const c = await import(${JSON.stringify(CODEC)});
const rtnl = new NetlinkRtnl();
await rtnl.request(c.newVxlan({ name: 'vtep9', vni: 9, local: '10.0.0.1', port: 64000, mtu: 1420, mac: '70:b3:d5:80:00:01', up: true }));
const index = (await rtnl.dump(c.dump.links())).map(c.decodeLink).find((l) => l.name === 'vtep9').index;
const ops = [];
for (let i = 0; i < 5000; i++) {
  const ip = '44.128.' + (i >> 8) + '.' + (i & 255);
  const mac = '70:b3:d5:80:' + ((i >> 8) & 255).toString(16).padStart(2, '0') + ':' + (i & 255).toString(16).padStart(2, '0');
  ops.push(rtnl.request(c.neighbour('replace', index, ip, mac)));
  if (i % 1000 === 0) ops.push(rtnl.dump(c.dump.links()).then(() => undefined));
}
await Promise.all(ops);
const neighbours = (await rtnl.dump(c.dump.neighbours())).map(c.decodeNeighbour).filter((n) => n.index === index).length;
let refused;
try { await rtnl.request(c.newBridge('vtep9', 1500, true)); } catch (e) { refused = { code: e.code, details: e.details, message: e.message }; }
rtnl.close();
console.log(JSON.stringify({ neighbours, refused }));
`;

(skip ? test.skip : test)('5,000 requests at once complete, dumps interleave safely, and a refusal carries errno', async (t) => {
  const set = netnsSet('sxovs');
  t.teardown(() => set.cleanup());
  const ns = await set.create('n');
  const out = JSON.parse(await ns.exec(process.execPath, ['--input-type=module', '-e', BURST])) as { neighbours: number; refused: { code: string; details: { errno: number; code: string }; message: string } };
  t.is(out.neighbours, 5000);
  t.like(out.refused, { code: 'OVERLAY_NETLINK', details: { errno: 17, code: 'EEXIST' } });
  t.regex(out.refused.message, /add bridge vtep9: the kernel refused it: EEXIST/);
});
