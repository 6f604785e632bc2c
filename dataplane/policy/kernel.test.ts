/**
 * Policy enforcement against the real kernel, in network namespaces this
 * test creates: a host namespace holding the policy table (and the VIP load
 * balancer's), routed veths to three "containers" on three subnets (two
 * apps on network `dcos`, one on `blue`). Skipped without root or nft.
 */
import test from 'ava';
import fc from 'fast-check';
import { pino } from 'pino';
import type { Policy } from '../../control-plane/model/schemas.ts';
import { netnsSet, netnsUnavailable, probeTcp, routedVeth, startEchoServer, type Netns } from '../../test/harness/netns.ts';
import { L4lbManager } from '../l4lb/manager.ts';
import { NftProcess, defaultNftPath } from '../l4lb/nft.ts';
import { servicesFromVips } from '../l4lb/services.ts';
import type { PolicyInputs } from './compile.ts';
import { nftDropCounter } from './counter.ts';
import { PolicyManager } from './manager.ts';

const skip = netnsUnavailable();
const STRATA_SLOW = process.env['STRATA_SLOW'] === '1';
const logger = pino({ level: 'silent' });

// A long-lived connection: sends a line every 100 ms and prints each echo.
const HOLD = `
const net = require('node:net');
const [host, port] = process.argv.slice(-2);
const s = net.connect({ host, port: Number(port) }, () => setInterval(() => s.write('x\\n'), 100));
s.setEncoding('utf8');
s.on('data', (d) => { for (const _ of d.split('\\n').slice(1)) console.log('echo'); });
s.on('error', (e) => console.log('error ' + e.code));
`;

const serve = startEchoServer;
const probe = (ns: Netns, host: string, port: number, expectOpen: boolean): Promise<string> => probeTcp(ns, host, port, expectOpen ? 'open' : 'blocked');

const web = { appId: '/shop/web', labels: {}, networks: ['dcos'], ips: ['10.78.1.2'] };
const db = { appId: '/shop/db', labels: { tier: 'data' }, networks: ['dcos'], ips: ['10.78.2.2'] };
const other = { appId: '/blue/other', labels: {}, networks: ['blue'], ips: ['10.78.3.2'] };
const dbIngress: Policy = { name: 'db-ingress', to: [{ appLabels: { tier: 'data' } }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ appId: '/shop/web' }], ports: [{ protocol: 'tcp', port: 5432 }] }] };
// A default-deny network: only its own members reach it.
const blueIsolated: Policy = { name: 'blue-isolated', to: [{ network: 'blue' }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ network: 'blue' }], ports: [] }] };
const inputs: PolicyInputs = { policies: [dbIngress, blueIsolated], endpoints: [web, db, other] };

(skip ? test.skip : test)('the kernel enforces policy between subnets, for VIP-reached backends and on a default-deny network; restarts and hand edits neither open nor blackhole', async (t) => {
  const set = netnsSet('sxpol');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const cWeb = await set.create('web');
  const cDb = await set.create('db');
  const cOther = await set.create('oth');
  await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await routedVeth(set, host, cWeb, 'vweb', '10.78.1');
  await routedVeth(set, host, cDb, 'vdb', '10.78.2');
  await routedVeth(set, host, cOther, 'voth', '10.78.3');
  await serve(cDb, '10.78.2.2', [5432, 8080]);
  await serve(cWeb, '10.78.1.2', [8080]);
  await serve(cOther, '10.78.3.2', [8080]);

  // Before any policy: every path is open.
  t.is(await probe(cOther, '10.78.2.2', 5432, true), 'open');

  const manager = new PolicyManager({ nft: new NftProcess({ netns: host.name }), logger });
  t.teardown(() => manager.close());
  t.is(await manager.sync(inputs), 'full');
  t.is(await probe(cWeb, '10.78.2.2', 5432, true), 'open', 'web → db:5432 allowed');
  t.is(await probe(cWeb, '10.78.2.2', 8080, false), 'blocked', 'web → db:8080: no rule, default deny');
  t.is(await probe(cOther, '10.78.2.2', 5432, false), 'blocked', 'other → db: source not allowed');
  t.is(await probe(cDb, '10.78.1.2', 8080, true), 'open', 'db → web: no policy selects web');
  t.is(await probe(cWeb, '10.78.3.2', 8080, false), 'blocked', 'web → blue: default-deny network');

  // Through a VIP: the policy sees the backend the load balancer picked (forward runs after the DNAT).
  const lb = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger, table: 'strata_l4lb' });
  t.teardown(() => lb.close());
  await lb.sync({ services: servicesFromVips([{ name: '/db', ipv4: '11.0.0.1', ports: [{ port: 5432, protocol: 'tcp' }], backends: [{ ip: '10.78.2.2', port: 5432, protocol: 'tcp', vipPort: 5432, weight: 1 }] }]), localBackendIps: [] });
  t.is(await probe(cWeb, '11.0.0.1', 5432, true), 'open', 'web → VIP → db allowed');
  t.is(await probe(cOther, '11.0.0.1', 5432, false), 'blocked', 'other → VIP → db denied');

  // A connection open across an agent restart keeps working (established traffic passes, the table is swapped in one transaction).
  const hold = cWeb.spawn(process.execPath, ['-e', HOLD, '10.78.2.2', '5432']);
  hold.stdout!.setEncoding('utf8');
  let echoes = 0;
  hold.stdout!.on('data', (d: string) => {
    echoes += d.split('\n').filter((l) => l === 'echo').length;
  });
  const progress = async (what: string): Promise<void> => {
    const from = echoes;
    const deadline = Date.now() + 15_000;
    while (echoes < from + 3) {
      if (Date.now() > deadline) throw new Error(`no echo ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await progress('before the restart');
  const restarted = new PolicyManager({ nft: new NftProcess({ netns: host.name }), logger });
  t.teardown(() => restarted.close());
  t.is(await restarted.sync(inputs), 'full');
  await progress('after the restart');
  t.is(await probe(cOther, '10.78.2.2', 5432, false), 'blocked', 'still denied after the restart');

  // A task appears: its address joins the sets in one small transaction.
  t.is(await restarted.sync({ ...inputs, endpoints: [web, db, other, { ...other, appId: '/shop/web', networks: ['dcos'], ips: ['10.78.3.2'] }] }), 'incremental');
  t.is(await probe(cOther, '10.78.2.2', 5432, true), 'open', 'other now also a /shop/web task');

  // A hand edit: the policy chain flushed. The periodic reconcile (invalidate + full load) repairs it.
  t.is(await restarted.sync(inputs), 'incremental');
  await host.exec(defaultNftPath(), ['flush', 'chain', 'inet', 'strata_policy', 'p_db_ingress']);
  t.is(await probe(cOther, '10.78.2.2', 5432, true), 'open', 'the hand edit opened the path');
  restarted.invalidate();
  t.is(await restarted.sync(inputs), 'full');
  t.is(await probe(cOther, '10.78.2.2', 5432, false), 'blocked', 'repaired');
  // The table deleted by hand: the next update is refused and repaired with a full load.
  await host.exec(defaultNftPath(), ['delete', 'table', 'inet', 'strata_policy']);
  t.is(await restarted.sync({ ...inputs, policies: [dbIngress] }), 'full');
  t.is(await probe(cOther, '10.78.2.2', 5432, false), 'blocked');
  t.is(await probe(cWeb, '10.78.3.2', 8080, true), 'open', 'blue no longer isolated once its policy is gone');

  t.true(await nftDropCounter({ netns: host.name })('strata_policy') > 0, 'drops counted');
  hold.kill();
});

(skip ? test.skip : test)('tasks on one bridge are filtered too once bridged traffic passes the IP hooks (bridge-nf-call-iptables = 1, as the agent sets it)', async (t) => {
  const set = netnsSet('sxpolbr');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const a = await set.create('a');
  const b = await set.create('b');
  await set.ip(['-n', host.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', host.name, 'addr', 'add', '10.79.1.1/24', 'dev', 'br0']);
  await set.ip(['-n', host.name, 'link', 'set', 'br0', 'up']);
  for (const [ns, ip, port] of [[a, '10.79.1.2', 'va'], [b, '10.79.1.3', 'vb']] as const) {
    await set.ip(['-n', host.name, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
    await set.ip(['-n', host.name, 'link', 'set', port, 'master', 'br0', 'up']);
    await set.ip(['-n', ns.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await set.ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  }
  await serve(b, '10.79.1.3', [8080]);
  const manager = new PolicyManager({ nft: new NftProcess({ netns: host.name }), logger });
  t.teardown(() => manager.close());
  await manager.sync({
    policies: [{ name: 'b-closed', to: [{ appId: '/b' }], defaultAction: 'deny', rules: [] }],
    endpoints: [{ appId: '/a', labels: {}, networks: ['dcos'], ips: ['10.79.1.2'] }, { appId: '/b', labels: {}, networks: ['dcos'], ips: ['10.79.1.3'] }],
  });
  await host.exec('sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=0']);
  t.is(await probe(a, '10.79.1.3', 8080, true), 'open', 'bridged, not forwarded: the table does not see it');
  await host.exec('sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=1']);
  t.is(await probe(a, '10.79.1.3', 8080, false), 'blocked', 'with bridge-nf-call-iptables the forward hook sees bridged traffic');
});

(skip ? test.skip : test)('the kernel accepts every update between random tables, and ends with the chains and set elements compiled (property, IPv4 and IPv6)', async (t) => {
  const set = netnsSet('sxpolupd');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const nft = new NftProcess({ netns: host.name });
  const endpoints = [web, db, other, { appId: '/v6', labels: { tier: 'data' }, networks: ['blue'], ips: ['fd00:78::2', 'fd00:78::3'] }];
  const peer = fc.oneof(
    fc.constantFrom('dcos', 'blue').map((network) => ({ network })),
    fc.constantFrom('10.78.0.0/16', '10.78.2.2/32', '0.0.0.0/0', 'fd00::/8').map((cidr) => ({ cidr })),
    fc.constantFrom('/shop/*', '/blue/other', '/v6').map((appId) => ({ appId })),
    fc.constant({ appLabels: { tier: 'data' } }),
  );
  const policy = fc.record({
    name: fc.constantFrom('a', 'b-c', 'd'),
    to: fc.array(peer, { minLength: 1, maxLength: 2 }),
    defaultAction: fc.constantFrom('allow' as const, 'deny' as const),
    rules: fc.array(fc.record({
      action: fc.constantFrom('allow' as const, 'deny' as const),
      from: fc.array(peer, { minLength: 1, maxLength: 2 }),
      ports: fc.array(fc.constantFrom({ protocol: 'tcp' as const, port: 80 }, { protocol: 'udp' as const, port: 53, endPort: 60 }, { protocol: 'icmp' as const }, { protocol: 'any' as const }), { maxLength: 2 }),
    }), { maxLength: 3 }),
  });
  const tables = fc.uniqueArray(policy, { selector: (p) => p.name, maxLength: 3 });
  const samples = fc.sample(fc.tuple(tables, tables), { numRuns: STRATA_SLOW ? 60 : 12, seed: 42 });
  let incremental = 0;
  for (const [a, b] of samples) {
    const manager = new PolicyManager({ nft, logger });
    t.is(await manager.sync({ policies: a, endpoints }), 'full');
    const mode = await manager.sync({ policies: b, endpoints });
    t.not(mode, 'full', `the update from ${JSON.stringify(a)} to ${JSON.stringify(b)} was refused`);
    if (mode === 'incremental') incremental++;
    const listed = JSON.parse(await host.exec(defaultNftPath(), ['-j', 'list', 'table', 'inet', 'strata_policy'])) as { nftables: { chain?: { name: string }; set?: { name: string; elem?: unknown[] }; map?: { name: string; elem?: unknown[] } }[] };
    const compiled = manager.current!;
    const chains = listed.nftables.flatMap((o) => (o.chain ? [o.chain.name] : [])).sort();
    t.deepEqual(chains, ['forward', ...compiled.policyChains.keys(), ...compiled.comboChains.keys()].sort());
    const sets = listed.nftables.flatMap((o) => (o.set ? [`${o.set.name}=${o.set.elem?.length ?? 0}`] : [])).sort();
    t.deepEqual(sets, [...compiled.sets].map(([name, s]) => `${name}=${s.elements.length}`).sort());
    const dispatched = listed.nftables.reduce((n, o) => n + (o.map?.elem?.length ?? 0), 0);
    t.is(dispatched, compiled.dispatch[4].size + compiled.dispatch[6].size);
  }
  t.true(incremental >= samples.length / 2, `${incremental} of ${samples.length} samples changed something`);
});
