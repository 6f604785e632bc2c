/**
 * Table tests of the zones through the Authority contract: the names
 * Mesos-DNS and dcos-net publish, the answer rules, and what Strata adds
 * (PTR, AAAA, starting/healthy options, SERVFAIL before the first sync,
 * incremental updates).
 */
import test from 'ava';
import { ZoneAuthority } from './authority.ts';
import { FakeClusterFeed, type FakeState } from './fake-feed.ts';
import { taskIdHash } from '../../common/dns-labels.ts';
import type { ZoneOptionsInput } from './options.ts';
import { mkAgent, mkApp, mkLeader, mkTask, mkVip } from './testing.ts';
import type { Question, ResourceRecord, ZoneAnswer } from './types.ts';

async function zoneOf(state: FakeState, zone: ZoneOptionsInput = {}): Promise<{ authority: ZoneAuthority; feed: FakeClusterFeed }> {
  const feed = new FakeClusterFeed(state);
  const authority = new ZoneAuthority(feed, { zone });
  await authority.start();
  return { authority, feed };
}

function ask(authority: ZoneAuthority, name: string, type: Question['type'] = 'A'): ZoneAnswer {
  const answer = authority.lookup({ name, type });
  if (!answer) throw new Error(`${name} ${type}: outside the zones`);
  return answer;
}

/** The answer's data, sorted: addresses, `target:port` for SRV, targets for PTR/NS. */
function data(answer: ZoneAnswer, section: 'answers' | 'additionals' = 'answers'): string[] {
  return answer[section]
    .map((r: ResourceRecord) => {
      switch (r.type) {
        case 'A':
        case 'AAAA':
          return r.address;
        case 'SRV':
          return `${r.target}:${r.port}`;
        case 'PTR':
        case 'NS':
        case 'CNAME':
          return r.target;
        case 'SOA':
          return `SOA ${r.mname}`;
        case 'TXT':
          return r.text.join(' ');
      }
    })
    .sort();
}

const AGENT = mkAgent('20151020-170929-16842879-5050-1-S0', { ip: '10.0.0.1', hostname: 'node-1.example' });
const AGENT2 = mkAgent('20151020-170929-16842879-5050-1-S1', { ip: '10.0.0.2', hostname: 'node-2.example', ipv6: 'fd00::2' });
const WEB = mkApp('/web', {
  portDefinitions: [
    { port: 0, name: 'http' },
    { port: 0, protocol: 'udp', name: 'dns' },
  ],
});
const WEB_TASK = mkTask('web.instance-1._app.1', '/web', AGENT.id, { ports: [31000, 31001] });
const H = taskIdHash(WEB_TASK.id);
const CANONICAL = `web-${H}-s0.marathon.mesos`;

const basic = (): FakeState => ({ agents: [AGENT, AGENT2], apps: [WEB], tasks: [WEB_TASK], leader: mkLeader('http://10.0.0.100:8080') });

const NAMES: { title: string; name: string; type?: Question['type']; want: string[]; additionals?: string[] }[] = [
  { title: 'task name → task address (host IP source first)', name: 'web.marathon.mesos', want: ['10.0.0.1'] },
  { title: 'canonical <task>-<hash>-<agent tail>', name: CANONICAL, want: ['10.0.0.1'] },
  { title: '.slave variant → agent address', name: 'web.marathon.slave.mesos', want: ['10.0.0.1'] },
  { title: 'canonical .slave variant', name: `web-${H}-s0.marathon.slave.mesos`, want: ['10.0.0.1'] },
  {
    title: 'SRV _<task>._tcp with A glue',
    name: '_web._tcp.marathon.mesos',
    type: 'SRV',
    want: [`${CANONICAL}:31000`],
    additionals: ['10.0.0.1'],
  },
  { title: 'SRV _<task>._udp (udp port)', name: '_web._udp.marathon.mesos', type: 'SRV', want: [`${CANONICAL}:31001`] },
  { title: 'SRV per named port _http', name: '_http._web._tcp.marathon.mesos', type: 'SRV', want: [`${CANONICAL}:31000`] },
  { title: 'SRV per named port _dns (udp)', name: '_dns._web._udp.marathon.mesos', type: 'SRV', want: [`${CANONICAL}:31001`] },
  {
    title: 'SRV .slave: every host port, both protocols',
    name: '_web._tcp.marathon.slave.mesos',
    type: 'SRV',
    want: [`web-${H}-s0.marathon.slave.mesos:31000`, `web-${H}-s0.marathon.slave.mesos:31001`],
  },
  { title: 'leader', name: 'leader.mesos', want: ['10.0.0.100'] },
  { title: 'master (leader, not listed)', name: 'master.mesos', want: ['10.0.0.100'] },
  { title: 'master0 (the unlisted leader gets the next index)', name: 'master0.mesos', want: ['10.0.0.100'] },
  { title: '_leader._tcp', name: '_leader._tcp.mesos', type: 'SRV', want: ['leader.mesos:8080'], additionals: ['10.0.0.100'] },
  { title: '_leader._udp', name: '_leader._udp.mesos', type: 'SRV', want: ['leader.mesos:8080'] },
  { title: 'slave: every agent', name: 'slave.mesos', want: ['10.0.0.1', '10.0.0.2'] },
  { title: 'agent: every agent', name: 'agent.mesos', want: ['10.0.0.1', '10.0.0.2'] },
  { title: 'agent IPv6 as AAAA', name: 'agent.mesos', type: 'AAAA', want: ['fd00::2'] },
  { title: '_slave._tcp', name: '_slave._tcp.mesos', type: 'SRV', want: ['slave.mesos:5051'] },
  { title: 'framework name → the leader (Marathon is served there)', name: 'marathon.mesos', want: ['10.0.0.100'] },
  { title: '_framework._tcp.marathon', name: '_framework._tcp.marathon.mesos', type: 'SRV', want: ['marathon.mesos:8080'] },
  { title: 'NS at the apex', name: 'mesos', type: 'NS', want: ['ns1.mesos'] },
  { title: 'SOA at the apex', name: 'mesos', type: 'SOA', want: ['SOA ns1.mesos'] },
  { title: 'autoip (host ports → agent)', name: 'web.marathon.autoip.dcos.thisdcos.directory', want: ['10.0.0.1'] },
  { title: 'agentip', name: 'web.marathon.agentip.dcos.thisdcos.directory', want: ['10.0.0.1'] },
  { title: 'leader.dcos.thisdcos.directory', name: 'leader.dcos.thisdcos.directory', want: ['10.0.0.100'] },
  { title: 'master.dcos.thisdcos.directory', name: 'master.dcos.thisdcos.directory', want: ['10.0.0.100'] },
  { title: 'mesos.thisdcos.directory mirror', name: 'web.marathon.mesos.thisdcos.directory', want: ['10.0.0.1'] },
  {
    title: 'mirror SRV targets the mirror',
    name: '_web._tcp.marathon.mesos.thisdcos.directory',
    type: 'SRV',
    want: [`web-${H}-s0.marathon.mesos.thisdcos.directory:31000`],
  },
  { title: 'NS of thisdcos.directory', name: 'thisdcos.directory', type: 'NS', want: ['ns.spartan'] },
  { title: 'PTR of an agent address → its host name', name: '1.0.0.10.in-addr.arpa', type: 'PTR', want: ['node-1.example'] },
  { title: 'case-insensitive, trailing dot', name: 'WEB.Marathon.MESOS.', want: ['10.0.0.1'] },
];

for (const c of NAMES) {
  test(`name: ${c.title}`, async (t) => {
    const { authority } = await zoneOf(basic());
    const answer = ask(authority, c.name, c.type ?? 'A');
    t.is(answer.rcode, 'NOERROR');
    t.true(answer.authoritative);
    t.deepEqual(data(answer), [...c.want].sort());
    if (c.additionals) t.deepEqual(data(answer, 'additionals'), c.additionals);
  });
}

const RULES: { title: string; name: string; type: Question['type']; rcode: ZoneAnswer['rcode']; soa: boolean }[] = [
  { title: 'unknown name: NXDOMAIN with SOA', name: 'nope.marathon.mesos', type: 'A', rcode: 'NXDOMAIN', soa: true },
  { title: 'unknown name, SRV: NXDOMAIN with SOA', name: '_nope._tcp.marathon.mesos', type: 'SRV', rcode: 'NXDOMAIN', soa: true },
  { title: 'name with A only, asked AAAA: NODATA with SOA', name: 'web.marathon.mesos', type: 'AAAA', rcode: 'NOERROR', soa: true },
  { title: 'SRV-only name asked A: NODATA (MD #365)', name: '_web._tcp.marathon.mesos', type: 'A', rcode: 'NOERROR', soa: true },
  { title: 'empty non-terminal: NODATA (RFC 8020)', name: 'marathon.slave.mesos', type: 'A', rcode: 'NOERROR', soa: true },
  { title: 'type the zones never hold: NODATA', name: 'web.marathon.mesos', type: 'TYPE65', rcode: 'NOERROR', soa: true },
  { title: 'thisdcos unknown: NXDOMAIN with its SOA', name: 'nope.marathon.autoip.dcos.thisdcos.directory', type: 'A', rcode: 'NXDOMAIN', soa: true },
];

for (const c of RULES) {
  test(`rule: ${c.title}`, async (t) => {
    const { authority } = await zoneOf(basic());
    const answer = ask(authority, c.name, c.type);
    t.is(answer.rcode, c.rcode);
    t.true(answer.authoritative);
    t.deepEqual(answer.answers, []);
    t.is(answer.authority.length, c.soa ? 1 : 0);
    if (c.soa) t.is(answer.authority[0]!.type, 'SOA');
  });
}

test('SOA: Mesos-DNS fields; serial is the state index; negative TTL 1 s (not the 60 s TTL) so new names are not cached away', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  const soa = ask(authority, 'mesos', 'SOA').answers[0]!;
  t.like(soa, { type: 'SOA', mname: 'ns1.mesos', rname: 'root.ns1.mesos', refreshSeconds: 60, retrySeconds: 600, expireSeconds: 86400, minimumSeconds: 1, ttlSeconds: 60 });
  const mesosDnsLike = await zoneOf(basic(), { soa: { minimumSeconds: 60 } });
  t.like(ask(mesosDnsLike.authority, 'mesos', 'SOA').answers[0], { minimumSeconds: 60 });
  const before = soa.type === 'SOA' ? soa.serial : -1;
  feed.put({ kind: 'task', value: mkTask('web.instance-2._app.1', '/web', AGENT2.id) });
  const after = ask(authority, 'mesos', 'SOA').answers[0]!;
  t.true(after.type === 'SOA' && after.serial > before);
  const dcos = ask(authority, 'thisdcos.directory', 'SOA').answers[0]!;
  t.like(dcos, { mname: 'ns.spartan', rname: 'support.mesosphere.com', refreshSeconds: 60, retrySeconds: 180, expireSeconds: 86400, minimumSeconds: 1 });
});

test('names outside the zones are not answered (the server forwards them)', async (t) => {
  const { authority } = await zoneOf(basic());
  t.is(authority.lookup({ name: 'example.com', type: 'A' }), undefined);
  t.is(authority.lookup({ name: 'mesosx', type: 'A' }), undefined);
  t.is(authority.lookup({ name: '8.8.8.8.in-addr.arpa', type: 'PTR' }), undefined, 'unknown reverse names are forwarded');
  t.deepEqual([...authority.zones()], ['mesos', 'thisdcos.directory', 'in-addr.arpa', 'ip6.arpa']);
});

test('configured reverse zones are fully authoritative', async (t) => {
  const { authority } = await zoneOf(basic(), { reverseZones: ['10.in-addr.arpa'] });
  t.is(ask(authority, '9.9.9.10.in-addr.arpa', 'PTR').rcode, 'NXDOMAIN');
  t.deepEqual(data(ask(authority, '1.0.0.10.in-addr.arpa', 'PTR')), ['node-1.example']);
});

test('SERVFAIL for every name in the zones before the first state sync (MD #344)', async (t) => {
  const feed = new FakeClusterFeed(basic(), { synced: false });
  const authority = new ZoneAuthority(feed);
  const started = authority.start();
  for (const name of ['web.marathon.mesos', 'nope.mesos', 'leader.dcos.thisdcos.directory']) {
    const answer = ask(authority, name);
    t.is(answer.rcode, 'SERVFAIL', name);
    t.false(answer.authoritative);
  }
  t.is(authority.lookup({ name: 'example.com', type: 'A' }), undefined);
  t.false(authority.synced);
  feed.sync();
  await started;
  t.true(authority.synced);
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
});

test('Marathon group paths: sanitised (web-group) and DiscoveryInfo (web.group) forms', async (t) => {
  const app = mkApp('/group/web', { portDefinitions: [{ port: 0, name: 'http' }] });
  const task = mkTask('group_web.instance-1._app.1', '/group/web', AGENT.id, { ports: [31005] });
  const { authority } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [task] });
  const h = taskIdHash(task.id);
  t.deepEqual(data(ask(authority, 'web-group.marathon.mesos')), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, 'web.group.marathon.mesos')), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, `web-group-${h}-s0.marathon.mesos`)), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, `web.group-${h}-s0.marathon.mesos`)), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, '_web-group._tcp.marathon.mesos', 'SRV')), [`web-group-${h}-s0.marathon.mesos:31005`]);
  t.deepEqual(data(ask(authority, '_http._web-group._tcp.marathon.mesos', 'SRV')), [`web-group-${h}-s0.marathon.mesos:31005`]);
  t.deepEqual(data(ask(authority, '_web.group._tcp.marathon.mesos', 'SRV')), [`web.group-${h}-s0.marathon.mesos:31005`]);
  t.deepEqual(data(ask(authority, 'web-group.marathon.autoip.dcos.thisdcos.directory')), ['10.0.0.1']);
});

test('container networking: containerip, autoip → container address, PTR, netinfo first', async (t) => {
  const app = mkApp('/db', { networks: [{ mode: 'container', name: 'dcos' }], container: { type: 'MESOS', portMappings: [{ containerPort: 5432, name: 'pg' }] }, portDefinitions: [] });
  const task = mkTask('db.instance-1._app.1', '/db', AGENT.id, { ipAddresses: [{ ipAddress: '9.0.1.5', protocol: 'IPv4' }, { ipAddress: 'fd01:b::5', protocol: 'IPv6' }] });
  const state = { agents: [AGENT], apps: [app], tasks: [task] };
  const h = taskIdHash(task.id);
  {
    const { authority } = await zoneOf(state);
    t.deepEqual(data(ask(authority, 'db.marathon.mesos')), ['10.0.0.1'], 'DC/OS ipSources: host first');
    t.deepEqual(data(ask(authority, 'db.marathon.containerip.dcos.thisdcos.directory')), ['9.0.1.5']);
    t.deepEqual(data(ask(authority, 'db.marathon.containerip.dcos.thisdcos.directory', 'AAAA')), ['fd01:b::5']);
    t.deepEqual(data(ask(authority, 'db.marathon.autoip.dcos.thisdcos.directory')), ['9.0.1.5']);
    t.deepEqual(data(ask(authority, 'db.marathon.agentip.dcos.thisdcos.directory')), ['10.0.0.1']);
    t.deepEqual(data(ask(authority, '_pg._db._tcp.marathon.mesos', 'SRV')), [`db-${h}-s0.marathon.mesos:5432`]);
    t.deepEqual(data(ask(authority, '5.1.0.9.in-addr.arpa', 'PTR')), ['db.marathon.containerip.dcos.thisdcos.directory'], 'PTR to a name that resolves back');
  }
  {
    const { authority } = await zoneOf(state, { ipSources: ['netinfo', 'host'] });
    t.deepEqual(data(ask(authority, 'db.marathon.mesos')), ['9.0.1.5']);
    t.deepEqual(data(ask(authority, 'db.marathon.mesos', 'AAAA')), ['fd01:b::5']);
    t.deepEqual(data(ask(authority, `db-${h}-s0.marathon.mesos`)), ['9.0.1.5']);
    t.deepEqual(data(ask(authority, '5.1.0.9.in-addr.arpa', 'PTR')), [`db-${h}-s0.marathon.mesos`]);
    t.deepEqual(data(ask(authority, 'db.marathon.slave.mesos')), ['10.0.0.1']);
  }
});

test('bridge networking: named port mappings with host ports', async (t) => {
  const app = mkApp('/api', {
    networks: [{ mode: 'container/bridge' }],
    container: { type: 'DOCKER', docker: { image: 'nginx' }, portMappings: [{ containerPort: 80, hostPort: 0, name: 'http' }, { containerPort: 9090, name: 'metrics' }] },
    portDefinitions: [],
  });
  t.is(app.container?.portMappings[1]?.hostPort, 0, 'bridge mode: hostPort defaults to 0 (any)');
  const task = mkTask('api.instance-1._app.1', '/api', AGENT.id, { ports: [31010, 31011] });
  const { authority } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [task] });
  const h = taskIdHash(task.id);
  t.deepEqual(data(ask(authority, '_http._api._tcp.marathon.mesos', 'SRV')), [`api-${h}-s0.marathon.mesos:31010`]);
  t.deepEqual(data(ask(authority, '_metrics._api._tcp.marathon.mesos', 'SRV')), [`api-${h}-s0.marathon.mesos:31011`]);
  t.deepEqual(data(ask(authority, '_api._tcp.marathon.mesos', 'SRV')), [`api-${h}-s0.marathon.mesos:31010`, `api-${h}-s0.marathon.mesos:31011`]);
});

test('udp,tcp ports publish both protocols', async (t) => {
  const app = mkApp('/dns', { portDefinitions: [{ port: 0, protocol: 'udp,tcp', name: 'dns' }] });
  const task = mkTask('dns.instance-1._app.1', '/dns', AGENT.id, { ports: [31053] });
  const { authority } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [task] });
  t.is(ask(authority, '_dns._dns._udp.marathon.mesos', 'SRV').answers.length, 1);
  t.is(ask(authority, '_dns._dns._tcp.marathon.mesos', 'SRV').answers.length, 1);
});

test('only RUNNING tasks by default; includeStartingTasks adds STAGING/STARTING; never terminal ones', async (t) => {
  const tasks = [
    mkTask('web.instance-s._app.1', '/web', AGENT.id, { state: 'STAGING' }),
    mkTask('web.instance-k._app.1', '/web', AGENT.id, { state: 'KILLED' }),
    mkTask('web.instance-f._app.1', '/web', AGENT.id, { state: 'FAILED' }),
  ];
  const state = { agents: [AGENT], apps: [WEB], tasks };
  {
    const { authority } = await zoneOf(state);
    t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
  }
  {
    const { authority } = await zoneOf(state, { includeStartingTasks: true });
    t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
    t.is(ask(authority, `web-${taskIdHash('web.instance-k._app.1')}-s0.marathon.mesos`).rcode, 'NXDOMAIN');
    t.is(ask(authority, `web-${taskIdHash('web.instance-s._app.1')}-s0.marathon.mesos`).rcode, 'NOERROR');
  }
});

test('healthyOnly leaves out RUNNING tasks until every health check passed', async (t) => {
  const app = mkApp('/hc', { healthChecks: [{ protocol: 'MESOS_TCP', portIndex: 0 }], portDefinitions: [{ port: 0 }] });
  const unknown = mkTask('hc.instance-1._app.1', '/hc', AGENT.id, { ports: [31001] });
  const sick = mkTask('hc.instance-2._app.1', '/hc', AGENT.id, { ports: [31002], healthCheckResults: [{ alive: false, consecutiveFailures: 1 }] });
  const { authority, feed } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [unknown, sick] }, { healthyOnly: true });
  t.is(ask(authority, 'hc.marathon.mesos').rcode, 'NXDOMAIN');
  feed.put({ kind: 'task', value: { ...sick, healthCheckResults: [{ alive: true, consecutiveFailures: 0 }] } });
  t.deepEqual(data(ask(authority, '_hc._tcp.marathon.mesos', 'SRV')), [`hc-${taskIdHash(sick.id)}-s0.marathon.mesos:31002`]);
  const plain = await zoneOf({ agents: [AGENT], apps: [app], tasks: [unknown] });
  t.is(ask(plain.authority, 'hc.marathon.mesos').rcode, 'NOERROR', 'default: RUNNING is enough, as Mesos-DNS');
});

test('a task whose agent is unknown gets no records (as Mesos-DNS)', async (t) => {
  const { authority } = await zoneOf({ agents: [], apps: [WEB], tasks: [WEB_TASK] });
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
});

test('named VIPs with an address: <name>.<fw>.l4lb.thisdcos.directory; pending and IP VIPs have none', async (t) => {
  const vips = [
    mkVip('/mygroup/myapp', { ipv4: '11.0.0.7', ipv6: 'fd01:c::7' }),
    mkVip('/pending', { ipv4: undefined } as never),
    mkVip('10.1.1.1', { kind: 'ip', ipv4: '10.1.1.1' }),
  ];
  const pending = { ...vips[1]! };
  delete (pending as { ipv4?: string }).ipv4;
  const { authority } = await zoneOf({ vips: [vips[0]!, pending, vips[2]!], agents: [AGENT] });
  t.deepEqual(data(ask(authority, 'mygroupmyapp.marathon.l4lb.thisdcos.directory')), ['11.0.0.7']);
  t.deepEqual(data(ask(authority, 'mygroupmyapp.marathon.l4lb.thisdcos.directory', 'AAAA')), ['fd01:c::7']);
  t.is(ask(authority, 'pending.marathon.l4lb.thisdcos.directory').rcode, 'NXDOMAIN');
});

test('masters: master<N> in the configured order, the leader keeps its index, master lists all', async (t) => {
  const { authority } = await zoneOf({ agents: [AGENT], leader: mkLeader('https://10.0.0.12') }, { masters: ['10.0.0.11', '10.0.0.12', '10.0.0.13'] });
  t.deepEqual(data(ask(authority, 'master0.mesos')), ['10.0.0.11']);
  t.deepEqual(data(ask(authority, 'master1.mesos')), ['10.0.0.12']);
  t.deepEqual(data(ask(authority, 'master2.mesos')), ['10.0.0.13']);
  t.is(ask(authority, 'master3.mesos').rcode, 'NXDOMAIN');
  t.deepEqual(data(ask(authority, 'master.mesos')), ['10.0.0.11', '10.0.0.12', '10.0.0.13']);
  t.deepEqual(data(ask(authority, 'leader.mesos')), ['10.0.0.12']);
  t.deepEqual(data(ask(authority, '_leader._tcp.mesos', 'SRV')), ['leader.mesos:443']);
});

test('no leader: no leader records; a leader on localhost resolves to 127.0.0.1', async (t) => {
  const none = await zoneOf({ agents: [AGENT] });
  t.is(ask(none.authority, 'leader.mesos').rcode, 'NXDOMAIN');
  const local = await zoneOf({ agents: [AGENT], leader: mkLeader('http://localhost:5050') });
  t.deepEqual(data(ask(local.authority, 'leader.mesos')), ['127.0.0.1']);
});

test('name server addresses are the glue of NS answers', async (t) => {
  const { authority } = await zoneOf(basic(), { nameserverAddresses: ['10.0.0.100'] });
  const answer = ask(authority, 'mesos', 'NS');
  t.deepEqual(data(answer, 'additionals'), ['10.0.0.100']);
  t.deepEqual(data(ask(authority, 'ns1.mesos')), ['10.0.0.100']);
});

test('ANY gives every record of the name; at the apex also NS and SOA', async (t) => {
  const { authority } = await zoneOf(basic());
  t.deepEqual(data(ask(authority, 'agent.mesos', 'ANY')), ['10.0.0.1', '10.0.0.2', 'fd00::2']);
  t.deepEqual(data(ask(authority, 'mesos', 'ANY')), ['SOA ns1.mesos', 'ns1.mesos']);
});

test('answers rotate across calls', async (t) => {
  const tasks = [1, 2, 3].map((i) => mkTask(`web.instance-${i}._app.1`, '/web', [AGENT, AGENT2][i % 2]!.id, { ports: [31000 + i, 31100 + i] }));
  const { authority } = await zoneOf({ agents: [AGENT, AGENT2], apps: [WEB], tasks });
  const firsts = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const answer = ask(authority, '_web._tcp.marathon.mesos', 'SRV');
    t.is(answer.answers.length, 3);
    const r = answer.answers[0]!;
    if (r.type === 'SRV') firsts.add(`${r.target}:${r.port}`);
  }
  t.is(firsts.size, 3, 'each record comes first in turn');
});

test('duplicate records (many tasks on one agent) are answered once', async (t) => {
  const tasks = [1, 2].map((i) => mkTask(`web.instance-${i}._app.1`, '/web', AGENT.id));
  const { authority } = await zoneOf({ agents: [AGENT], apps: [WEB], tasks });
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, 'web.marathon.slave.mesos')), ['10.0.0.1']);
});

test('RFC 952 option: 24-character labels, no leading digits', async (t) => {
  const app = mkApp('/1-averyveryverylongapplicationname', { portDefinitions: [] });
  const task = mkTask('x.instance-1._app.1', app.id, AGENT.id);
  const { authority } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [task] }, { enforceRfc952: true });
  t.deepEqual(data(ask(authority, 'averyveryverylongapplica.marathon.mesos')), ['10.0.0.1']);
});

test('a long app name keeps canonical and SRV labels within 63 characters', async (t) => {
  const id = `/${'a'.repeat(70)}`;
  const app = mkApp(id, { portDefinitions: [{ port: 0, name: 'http' }] });
  const task = mkTask('long.instance-1._app.1', id, AGENT.id, { ports: [31000] });
  const { authority } = await zoneOf({ agents: [AGENT], apps: [app], tasks: [task] });
  const srv = ask(authority, `_${'a'.repeat(62)}._tcp.marathon.mesos`, 'SRV');
  t.is(srv.rcode, 'NOERROR');
  const target = srv.answers[0]!.type === 'SRV' ? srv.answers[0]!.target : '';
  t.true(target.split('.')[0]!.length <= 63);
  t.deepEqual(data(ask(authority, target)), ['10.0.0.1']);
  for (const r of authority.allRecords()) for (const label of r.name.split('.')) t.true(label.length <= 63, r.name);
});

test('custom domain; thisdcos.directory can be turned off', async (t) => {
  const { authority } = await zoneOf(basic(), { domain: 'DC1.Internal.', thisDcos: { enabled: false } });
  t.deepEqual(data(ask(authority, 'web.marathon.dc1.internal')), ['10.0.0.1']);
  t.is(authority.lookup({ name: 'web.marathon.mesos', type: 'A' }), undefined);
  t.is(authority.lookup({ name: 'leader.dcos.thisdcos.directory', type: 'A' }), undefined);
  t.like(ask(authority, 'dc1.internal', 'SOA').answers[0], { mname: 'ns1.dc1.internal' });
});

test('bad options are refused naming the field', (t) => {
  const feed = new FakeClusterFeed();
  t.throws(() => new ZoneAuthority(feed, { zone: { ttlSeconds: -1 } }), { code: 'DNS_OPTIONS_INVALID', message: /ttlSeconds/ } as never);
  t.throws(() => new ZoneAuthority(feed, { zone: { domain: 'bad domain' } }), { message: /domain/ });
  t.throws(() => new ZoneAuthority(feed, { zone: { ipSources: ['host', 'magic' as never] } }), { message: /ipSources\[1\]/ });
  t.throws(() => new ZoneAuthority(feed, { zone: { masters: ['10.0.0.1', 'nope'] } }), { message: /masters\[1\]/ });
  t.throws(() => new ZoneAuthority(feed, { zone: { domain: 'thisdcos.directory' } }), { message: /overlap/ });
});

// ---------------------------------------------------------------------------
// Incremental updates

test('incremental: task put → resolves; state change → gone; deleted → NXDOMAIN', async (t) => {
  const { authority, feed } = await zoneOf({ agents: [AGENT], apps: [WEB] });
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
  const task = mkTask('web.instance-9._app.1', '/web', AGENT.id, { state: 'STAGING', ports: [31999, 31998] });
  feed.put({ kind: 'task', value: task });
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN', 'STAGING: no records');
  feed.put({ kind: 'task', value: { ...task, state: 'RUNNING' } });
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
  t.is(ask(authority, '_http._web._tcp.marathon.mesos', 'SRV').answers.length, 1);
  feed.put({ kind: 'task', value: { ...task, state: 'KILLING' } });
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
  feed.put({ kind: 'task', value: { ...task, state: 'RUNNING' } });
  feed.remove('task', task.id);
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
  t.is(ask(authority, '_web._tcp.marathon.mesos', 'SRV').rcode, 'NXDOMAIN');
});

test('incremental: agent address change moves its tasks and the agent records', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  feed.put({ kind: 'agent', value: { ...AGENT, address: { ...AGENT.address, ip: '10.9.9.9' } } });
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.9.9.9']);
  t.deepEqual(data(ask(authority, 'slave.mesos')), ['10.0.0.2', '10.9.9.9']);
  t.is(authority.lookup({ name: '1.0.0.10.in-addr.arpa', type: 'PTR' }), undefined, 'old PTR gone');
  feed.remove('agent', AGENT.id);
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
});

test('incremental: app change renames SRV ports; app delete keeps running tasks (no DiscoveryInfo)', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  feed.put({ kind: 'app', value: { ...WEB, portDefinitions: [{ port: 0, protocol: 'tcp', name: 'web-ui', labels: {} }, WEB.portDefinitions[1]!] } });
  t.is(ask(authority, '_http._web._tcp.marathon.mesos', 'SRV').rcode, 'NXDOMAIN');
  t.is(ask(authority, '_web-ui._web._tcp.marathon.mesos', 'SRV').answers.length, 1);
  feed.remove('app', '/web');
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
  t.is(ask(authority, '_web._tcp.marathon.mesos', 'SRV').answers.length, 2, 'without DiscoveryInfo: host ports without .slave too');
});

test('incremental: leader change, VIP allocation', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  feed.put({ kind: 'leader', value: mkLeader('http://10.0.0.101:8080') });
  t.deepEqual(data(ask(authority, 'leader.mesos')), ['10.0.0.101']);
  feed.remove('leader', 'leader');
  t.is(ask(authority, 'leader.mesos').rcode, 'NXDOMAIN');
  feed.put({ kind: 'vip', value: mkVip('/svc', { ipv4: '11.0.0.9' }) });
  t.deepEqual(data(ask(authority, 'svc.marathon.l4lb.thisdcos.directory')), ['11.0.0.9']);
});

test('a resync snapshot replaces everything', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  feed.tasks.clear();
  feed.sync();
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
  t.deepEqual(data(ask(authority, 'leader.mesos')), ['10.0.0.100']);
  t.is(feed.events.filter((e) => e.type === 'snapshot').length, 2);
});

test('enumerate lists each published task with its mesos records', async (t) => {
  const { authority } = await zoneOf(basic());
  const { frameworks } = authority.enumerate();
  t.is(frameworks.length, 1);
  t.is(frameworks[0]!.name, 'marathon');
  const task = frameworks[0]!.tasks[0]!;
  t.like(task, { name: 'web', id: WEB_TASK.id });
  t.true(task.records.some((r) => r.name === 'web.marathon.mesos.' && r.host === '10.0.0.1' && r.rtype === 'A'));
  t.true(task.records.some((r) => r.name === '_http._web._tcp.marathon.mesos.' && r.host === `${CANONICAL}.:31000` && r.rtype === 'SRV'));
  t.false(task.records.some((r) => r.name.includes('thisdcos')));
});

test('the mesos.thisdcos.directory mirror: renamed answers and glue, its own SOA, and it can be turned off', async (t) => {
  const { authority } = await zoneOf(basic());
  const srv = ask(authority, '_web._tcp.marathon.mesos.thisdcos.directory', 'SRV');
  t.is(srv.answers[0]!.name, '_web._tcp.marathon.mesos.thisdcos.directory');
  t.deepEqual(srv.additionals.map((r) => r.name), [`web-${H}-s0.marathon.mesos.thisdcos.directory`]);
  const missing = ask(authority, 'nope.marathon.mesos.thisdcos.directory');
  t.is(missing.rcode, 'NXDOMAIN');
  t.like(missing.authority[0], { type: 'SOA', name: 'thisdcos.directory', mname: 'ns.spartan' });
  t.is(ask(authority, 'mesos.thisdcos.directory', 'A').rcode, 'NOERROR', 'the mirror apex exists');
  t.deepEqual(data(ask(authority, 'agent.mesos.thisdcos.directory', 'ANY')), ['10.0.0.1', '10.0.0.2', 'fd00::2']);
  const off = await zoneOf(basic(), { thisDcos: { mirrorMesos: false } });
  t.is(ask(off.authority, 'web.marathon.mesos.thisdcos.directory').rcode, 'NXDOMAIN');
  t.deepEqual(data(ask(off.authority, 'web.marathon.autoip.dcos.thisdcos.directory')), ['10.0.0.1']);
});

test('the first snapshot is built in slices: the event loop turns, lookups SERVFAIL until done, changes meanwhile are kept', async (t) => {
  const tasks = Array.from({ length: 1200 }, (_, i) => mkTask(`web.instance-${i}._app.1`, '/web', AGENT.id));
  const feed = new FakeClusterFeed({ agents: [AGENT, AGENT2], apps: [WEB], tasks }, { synced: false });
  const authority = new ZoneAuthority(feed);
  const started = authority.start();
  feed.sync();
  let turned = false;
  setImmediate(() => {
    turned = true;
    t.is(ask(authority, 'web.marathon.mesos').rcode, 'SERVFAIL', 'still building');
    feed.put({ kind: 'task', value: mkTask('late.instance-1._app.1', '/late', AGENT2.id) });
  });
  await started;
  t.true(turned, 'the build yielded to the event loop');
  t.deepEqual(data(ask(authority, 'web.marathon.mesos')), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, 'late.marathon.mesos')), ['10.0.0.2'], 'the change made during the build was applied');
  t.is(authority.serial, feed.index);
});

test('SRV glue follows changes of its targets (the glue cache is dropped on every change)', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  t.deepEqual(data(ask(authority, '_web._tcp.marathon.mesos', 'SRV'), 'additionals'), ['10.0.0.1']);
  t.deepEqual(data(ask(authority, '_web._tcp.marathon.mesos', 'SRV'), 'additionals'), ['10.0.0.1'], 'cached');
  feed.put({ kind: 'agent', value: { ...AGENT, address: { ...AGENT.address, ip: '10.0.0.77' } } });
  t.deepEqual(data(ask(authority, '_web._tcp.marathon.mesos', 'SRV'), 'additionals'), ['10.0.0.77']);
  feed.put({ kind: 'app', value: { ...WEB, portDefinitions: [] } });
  t.is(ask(authority, '_web._tcp.marathon.mesos', 'SRV').rcode, 'NXDOMAIN', 'no discovery ports left');
});

test('version(): the same between changes (answers may be reused), moves with every applied change', async (t) => {
  const { authority, feed } = await zoneOf(basic());
  const v0 = authority.version();
  ask(authority, 'web.marathon.mesos');
  ask(authority, 'nope.marathon.mesos');
  t.is(authority.version(), v0, 'lookups do not move it');
  feed.put({ kind: 'task', value: mkTask('web.instance-2._app.1', '/web', AGENT2.id) });
  const v1 = authority.version();
  t.not(v1, v0);
  feed.remove('task', 'web.instance-2._app.1');
  t.not(authority.version(), v1);
});

test('metrics: names, records and the size of the tables follow the zones; a resync that changes nothing DNS reads rebuilds nothing', async (t) => {
  const { Registry } = await import('prom-client');
  const registry = new Registry();
  const app = mkApp('/web', { portDefinitions: [{ port: 0, name: 'http' }] });
  const feed = new FakeClusterFeed({ agents: [mkAgent('S1', { ip: '10.0.0.1' })], apps: [app], tasks: [mkTask('web.1', '/web', 'S1', { ports: [31000] })] });
  const authority = new ZoneAuthority(feed, { metrics: registry });
  await authority.start();
  const value = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values[0]!.value;
  t.is(await value('strata_dns_zone_names'), authority.names);
  t.is(await value('strata_dns_zone_records'), authority.records);
  t.true(authority.names > 0 && authority.records >= authority.names);
  t.true((await value('strata_dns_zone_table_bytes')) > 0);
  // Fields the zones do not read (here the task's stagedAt) leave the zones alone on a resync.
  const version = authority.version();
  feed.tasks.set('web.1', { ...feed.tasks.get('web.1')!, stagedAt: '2026-02-02T00:00:00.000Z' });
  const records = authority.records;
  feed.sync();
  t.is(authority.records, records);
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NOERROR');
  t.true(authority.version() > version, 'the serial still moves');
  feed.remove('task', 'web.1');
  t.is(await value('strata_dns_zone_records'), authority.records);
  t.is(ask(authority, 'web.marathon.mesos').rcode, 'NXDOMAIN');
});

test.serial('a first build of 5,000 tasks or more ends with one full GC when the process exposes gc; smaller ones do not', async (t) => {
  const holder = globalThis as { gc?: () => void };
  const had = holder.gc;
  let calls = 0;
  holder.gc = () => void calls++;
  t.teardown(() => {
    if (had) holder.gc = had;
    else delete holder.gc;
  });
  const agents = [mkAgent('S1', { ip: '10.0.0.1' })];
  const apps = [mkApp('/web')];
  const tasks = (n: number) => Array.from({ length: n }, (_, i) => mkTask(`web.${i}`, '/web', 'S1'));
  const small = new ZoneAuthority(new FakeClusterFeed({ agents, apps, tasks: tasks(100) }));
  await small.start();
  t.is(calls, 0);
  const big = new ZoneAuthority(new FakeClusterFeed({ agents, apps, tasks: tasks(5_000) }));
  await big.start();
  t.is(calls, 1);
  t.is(ask(big, 'web.marathon.mesos').rcode, 'NOERROR');
});
