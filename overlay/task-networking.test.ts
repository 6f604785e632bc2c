/**
 * Which addresses a task gets on a bridge (pure): one per family the
 * master gave and the bridge has a gateway of, IPv4 first, with the
 * agent subnet's prefix length and the bridge's gateway.
 */
import test from 'ava';
import { containerAddresses } from './task-networking.ts';

test('a dual-stack bridge gives both addresses (IPv4 first); an IPv6-only bridge only the IPv6 one; a family the bridge lacks is left out', (t) => {
  const dual = { name: 'm-dual', mtu: 1420, gateway: '10.8.0.1', prefixLength: 24, gateway6: 'fd01:e::1', prefixLength6: 80 };
  t.deepEqual(containerAddresses(dual, [{ ip: 'fd01:e::2' }, { ip: '10.8.0.2' }]), [
    { ip: '10.8.0.2', prefixLength: 24, gateway: '10.8.0.1' },
    { ip: 'fd01:e::2', prefixLength: 80, gateway: 'fd01:e::1' },
  ]);
  const dcos6 = { name: 'm-dcos6', mtu: 1420, gateway6: 'fd01:b::1', prefixLength6: 80 };
  t.deepEqual(containerAddresses(dcos6, [{ ip: 'fd01:b::2' }]), [{ ip: 'fd01:b::2', prefixLength: 80, gateway: 'fd01:b::1' }]);
  t.deepEqual(containerAddresses(dcos6, [{ ip: '9.0.0.2' }]), [], 'no IPv4 gateway here');
  t.deepEqual(containerAddresses({ name: 'm-dcos', mtu: 1420, gateway: '9.0.0.1', prefixLength: 24 }, [{ ip: '9.0.0.2' }, { ip: 'fd01:b::2' }]), [{ ip: '9.0.0.2', prefixLength: 24, gateway: '9.0.0.1' }]);
});
