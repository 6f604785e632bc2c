/**
 * Golden bytes: each request equals what iproute2 6.1 sends for the same
 * command (captured with `strace -e trace=sendmsg -e write=3`, same
 * sequence number), except where noted. Decoders read real dump shapes.
 */
import test from 'ava';
import { address, decodeAddress, defaultRoute, decodeLink, decodeNeighbour, decodeRoute, errorOf, fdb, message, neighbour, newBridge, newVxlan, parseAttrs, route, setLink, NLA_F_NESTED } from './codec.ts';

const SEQ = 0x6b069807;
const hex = (b: Buffer): string => b.toString('hex');

test('ip link add vtep1024 mtu 1420 address 70:b3:d5:80:00:01 type vxlan id 1024 local 10.0.0.1 dstport 64000 nolearning', (t) => {
  const iproute2 = '78000000100005060798066b0000000000000000000000000000000000000000080004008c0500000a00010070b3d580000100000d000300767465703130323400000000340012000900010076786c616e000000240002000800010000040000080004000a000001050007000000000006000f00fa000000';
  // The one difference: NLA_F_NESTED on IFLA_LINKINFO and IFLA_INFO_DATA (iproute2 leaves it off; the kernel accepts both).
  const expected = iproute2.replace('340012000900', '340012800900').replace('240002000800', '240002800800');
  t.is(hex(message(newVxlan({ name: 'vtep1024', vni: 1024, local: '10.0.0.1', port: 64000, mtu: 1420, mac: '70:b3:d5:80:00:01', up: false }), SEQ)), expected);
});

test('ip link add m-dcos mtu 1420 type bridge', (t) => {
  const iproute2 = '44000000100005060798066b0000000000000000000000000000000000000000080004008c0500000b0003006d2d64636f730000100012000a0001006272696467650000';
  t.is(hex(message(newBridge('m-dcos', 1420, false), SEQ)), iproute2.replace('100012000a00', '100012800a00'));
});

test('ip addr add 44.128.0.1/32 dev vtep1024', (t) => {
  t.is(hex(message(address('add', 4, '44.128.0.1', 32), SEQ)), '28000000140005060798066b000000000220000004000000080002002c800001080001002c800001');
});

test('ip link set vtep1024 up; ip link set ul1 master m-dcos', (t) => {
  t.is(hex(message(setLink(4, { up: true }), SEQ)), '20000000100005000798066b0000000000000000040000000100000001000000');
  t.is(hex(message(setLink(2, { master: 5 }), SEQ)), '28000000100005000798066b000000000000000002000000000000000000000008000a0005000000');
});

test('ip route add 9.0.2.0/24 via 44.128.0.2 dev vtep1024 onlink proto 83', (t) => {
  t.is(hex(message(route('add', { dst: '9.0.2.0', dstLength: 24, gateway: '44.128.0.2', oif: 4 }), SEQ)), '34000000180005060798066b0000000002180000fe530001040000000800010009000200080005002c8000020800040004000000');
  // replace = CREATE|REPLACE instead of CREATE|EXCL
  t.is(message(route('replace', { dst: '9.0.2.0', dstLength: 24, gateway: '44.128.0.2', oif: 4 }), SEQ).readUInt16LE(6), 0x0505);
});

test('ip neigh replace 44.128.0.2 lladdr 70:b3:d5:80:00:02 dev vtep1024 nud permanent', (t) => {
  t.is(hex(message(neighbour('replace', 4, '44.128.0.2', '70:b3:d5:80:00:02'), 0x6b069808)), '300000001c0005050898066b00000000020000000400000080000000080001002c8000020a00020070b3d58000020000');
});

test('bridge fdb replace 70:b3:d5:80:00:02 dev vtep1024 dst 10.0.0.2 self permanent', (t) => {
  t.is(hex(message(fdb('replace', 4, '70:b3:d5:80:00:02', '10.0.0.2'), 0x6b069808)), '300000001c0005050898066b000000000700000004000000c00002000a00020070b3d58000020000080001000a000002');
});

test('decoders read back what the encoders write (the kernel echoes the same layouts in dumps)', (t) => {
  const vx = newVxlan({ name: 'vtep1024', vni: 1024, local: '10.0.0.1', port: 64000, mtu: 1420, mac: '70:b3:d5:80:00:01', up: true }).payload;
  vx.writeInt32LE(4, 4);
  t.deepEqual(decodeLink(vx), { index: 4, name: 'vtep1024', up: true, mtu: 1420, mac: '70:b3:d5:80:00:01', kind: 'vxlan', vxlan: { vni: 1024, local: '10.0.0.1', port: 64000, learning: false } });
  t.deepEqual(decodeAddress(address('add', 4, '44.128.0.1', 32).payload), { index: 4, ip: '44.128.0.1', prefixLength: 32 });
  t.deepEqual(decodeRoute(route('replace', { dst: '9.0.2.0', dstLength: 24, gateway: '44.128.0.2', oif: 4 }).payload), { dst: '9.0.2.0', dstLength: 24, gateway: '44.128.0.2', oif: 4, table: 254, protocol: 83, onlink: true });
  t.deepEqual(decodeNeighbour(fdb('replace', 4, '70:b3:d5:80:00:02', '10.0.0.2').payload), { family: 7, index: 4, state: 0xc0, flags: 2, dst: '10.0.0.2', mac: '70:b3:d5:80:00:02' });
  // Attribute types are read with the NESTED / NET_BYTEORDER bits stripped; a truncated attribute ends the walk.
  const a = Buffer.from('0800' + (18 | NLA_F_NESTED).toString(16).padStart(4, '0').match(/../g)!.reverse().join('') + '01020304' + 'ff00', 'hex');
  t.deepEqual([...parseAttrs(a, 0).keys()], [18]);
  // NLMSG_ERROR: a negative errno; 0 is an ACK.
  const err = Buffer.alloc(20);
  err.writeInt32LE(-17, 0);
  t.is(errorOf(err), 17);
  t.is(errorOf(Buffer.alloc(20)), 0);
});

test('IPv6, against iproute2 6.1 (dev index 3): ip -6 addr add fd01:b::1/80 nodad; ip -6 route add fd01:b:0:0:1::/80 via fe80::72b3:d5ff:fe80:2 onlink proto 83; ip -6 neigh replace ... nud permanent; ip -6 route add default via fd01:b::1 proto 83', (t) => {
  const seq = 0x6b06c11a;
  t.is(hex(message(address('add', 3, 'fd01:b::1', 80), seq)), '40000000140005061ac1066b000000000a5002000300000014000200fd01000b00000000000000000000000114000100fd01000b000000000000000000000001');
  t.is(hex(message(route('add', { dst: 'fd01:b:0:0:1::', dstLength: 80, gateway: 'fe80::72b3:d5ff:fe80:2', oif: 3 }), seq)), '4c000000180005061ac1066b000000000a500000fe5300010400000014000100fd01000b00000000000100000000000014000500fe8000000000000072b3d5fffe8000020800040003000000');
  t.is(hex(message(neighbour('replace', 3, 'fe80::72b3:d5ff:fe80:2', '70:b3:d5:80:00:02'), seq + 1)), '3c0000001c0005051bc1066b000000000a000000030000008000000014000100fe8000000000000072b3d5fffe8000020a00020070b3d58000020000');
  // iproute2 also sends RTA_DST :: for a default route; the kernel takes its absence the same.
  const iproute2Default = '44000000180005061ac1066b000000000a000000fe53000100000000140001000000000000000000000000000000000014000500fd01000b000000000000000000000001';
  t.is(hex(message(defaultRoute('fd01:b::1'), seq)), iproute2Default.replace('44000000', '30000000').replace('1400010000000000000000000000000000000000', ''));
});

test('IPv6: addresses (nodad), routes via a link-local next hop and neighbours decode back; the families of destination and gateway must match', (t) => {
  const add = address('add', 5, 'fd01:b::1', 80).payload;
  t.is(add.readUInt8(0), 10, 'AF_INET6');
  t.is(add.readUInt8(2), 0x02, 'IFA_F_NODAD in ifa_flags');
  t.deepEqual(decodeAddress(add), { index: 5, ip: 'fd01:b::1', prefixLength: 80 });
  t.is(address('del', 5, 'fd01:b::1', 80).payload.readUInt8(2), 0);
  t.deepEqual(decodeRoute(route('replace', { dst: 'fd01:b:0:0:1::', dstLength: 80, gateway: 'fe80::72b3:d5ff:fe80:2', oif: 4 }).payload), { dst: 'fd01:b:0:0:1::', dstLength: 80, gateway: 'fe80::72b3:d5ff:fe80:2', oif: 4, table: 254, protocol: 83, onlink: true });
  t.deepEqual(decodeNeighbour(neighbour('replace', 4, 'fe80::72b3:d5ff:fe80:2', '70:b3:d5:80:00:02').payload), { family: 10, index: 4, state: 0x80, flags: 0, dst: 'fe80::72b3:d5ff:fe80:2', mac: '70:b3:d5:80:00:02' });
  t.throws(() => route('replace', { dst: 'fd01:b::', dstLength: 80, gateway: '44.128.0.2', oif: 4 }), { message: /gateway 44\.128\.0\.2 is of the other family/ });
});

test('bad input is refused before anything is sent', (t) => {
  t.throws(() => route('add', { dst: '9.0.2', dstLength: 24, gateway: '44.128.0.2', oif: 4 }), { message: /not an IP address: 9\.0\.2/ });
  t.throws(() => neighbour('replace', 4, '44.128.0.2', '70:b3:d5'), { message: /not a MAC address/ });
});
