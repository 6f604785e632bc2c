import test from 'ava';
import fc from 'fast-check';
import { bigIntToIp, canonicalIp, cidrContains, ipToBigInt, parseCidr } from './ip.ts';

test('parseCidr reads IPv4 and IPv6 ranges, clears host bits, refuses what is not a CIDR', (t) => {
  t.deepEqual(parseCidr('11.0.0.0/8'), { family: 4, base: 11n << 24n, prefixLength: 8 });
  t.deepEqual(parseCidr('11.2.3.4/8'), { family: 4, base: 11n << 24n, prefixLength: 8 });
  t.is(parseCidr('fd01:c::/64')?.family, 6);
  t.is(parseCidr('fd01:c::/64')?.base, ipToBigInt('fd01:c::'));
  for (const bad of ['11.0.0.0', '11.0.0.0/33', 'fd01::/129', 'x/8', '11.0.0.0/-1', '11.0.0.0/08a', '']) t.is(parseCidr(bad), undefined, bad);
});

test('bigIntToIp writes RFC 5952 IPv6 (longest zero run compressed, lower case) and dotted IPv4', (t) => {
  t.is(bigIntToIp(ipToBigInt('FD01:000C:0000:0000:0000:0000:0000:0001'), 6), 'fd01:c::1');
  t.is(bigIntToIp(0n, 6), '::');
  t.is(bigIntToIp(1n, 6), '::1');
  t.is(bigIntToIp(ipToBigInt('1:0:0:1:0:0:0:1'), 6), '1:0:0:1::1');
  t.is(bigIntToIp(ipToBigInt('1:0:1:0:1:0:1:0'), 6), '1:0:1:0:1:0:1:0');
  t.is(canonicalIp('::ffff:1.2.3.4'), '::ffff:102:304');
  t.is(bigIntToIp(ipToBigInt('10.1.2.3'), 4), '10.1.2.3');
  t.throws(() => canonicalIp('nope'), { message: /not an IP/ });
});

test('IPv6 text round-trips through numbers (property)', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const n = ipToBigInt(ip);
        return ipToBigInt(bigIntToIp(n, 6)) === n;
      }),
    ),
  );
});

test('cidrContains checks family and prefix', (t) => {
  const r = parseCidr('11.0.0.0/8')!;
  t.true(cidrContains(r, '11.255.0.1'));
  t.false(cidrContains(r, '12.0.0.1'));
  t.false(cidrContains(r, 'fd01:c::1'));
  t.true(cidrContains(parseCidr('fd01:c::/64')!, 'fd01:c::abcd'));
  t.false(cidrContains(parseCidr('fd01:c::/64')!, 'fd01:d::1'));
});
