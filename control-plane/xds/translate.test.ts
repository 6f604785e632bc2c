import test from 'ava';
import fc from 'fast-check';
import { isStrataError } from '../../common/errors.ts';
import type { App, Task, Vip } from '../model/schemas.ts';
import { checkConsistency } from './consistency.ts';
import { MESH_LABELS } from './labels.ts';
import { decodeMessage, encodeMessage, EXTENSION, TYPE, type TypeUrl } from './protos.ts';
import { SnapshotBuilder } from './snapshot.ts';
import { translate, Translator, type MeshState, type XdsResource } from './translate.ts';
import { app, task, vipApp } from './testing.ts';

function state(apps: App[], tasks: Task[] = [], vips: Vip[] = []): MeshState {
  const tasksByApp = new Map<string, Task[]>();
  for (const t of tasks) tasksByApp.set(t.appId, [...(tasksByApp.get(t.appId) ?? []), t]);
  return { apps: new Map(apps.map((a) => [a.id, a])), tasksByApp, vips: new Map(vips.map((v) => [`${v.framework}/${v.name}`, v])) };
}

function get(resources: ReadonlyMap<TypeUrl, ReadonlyMap<string, XdsResource>>, t: TypeUrl, name: string): Record<string, unknown> {
  const r = resources.get(t)?.get(name);
  if (!r) throw new Error(`no ${t} ${name}`);
  return r.value;
}

const webVip: Vip = { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.5', ports: [{ port: 80, protocol: 'tcp' }, { port: 443, protocol: 'tcp' }] };

test('each TCP VIP port gives a cluster, endpoints with health, routes, gRPC API listeners and an Envoy listener', (t) => {
  const web = app({ id: '/web', portDefinitions: [
    { port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: '/web:80' } },
    { port: 0, protocol: 'tcp', name: 'https', labels: { VIP_1: '/web:443' } },
    { port: 0, protocol: 'udp', name: 'dns', labels: { VIP_2: '/web:53' } },
  ] } as Parameters<typeof app>[0]);
  const tasks = [
    { ...task('web.1', '/web', 31001), ports: [31001, 31002, 31003] },
    { ...task('web.2', '/web', 31011, { state: 'KILLING' }), ports: [31011, 31012, 31013] },
  ];
  const { resources, issues } = translate(state([web], tasks, [webVip]));
  t.deepEqual(issues, []);
  t.deepEqual([...resources.get(TYPE.cluster)!.keys()].sort(), ['web:443', 'web:53/udp', 'web:80']);
  t.like(get(resources, TYPE.cluster, 'web:80'), { type: 'EDS', lb_policy: 'ROUND_ROBIN', eds_cluster_config: { service_name: 'web:80', eds_config: { ads: {} } } });
  const cla = get(resources, TYPE.endpoint, 'web:80') as { endpoints: { locality: object; load_balancing_weight: { value: number }; lb_endpoints: { health_status: string; endpoint: { address: { socket_address: { port_value: number } } } }[] }[] };
  t.deepEqual(cla.endpoints[0]!.lb_endpoints.map((e) => [e.endpoint.address.socket_address.port_value, e.health_status]), [[31001, 'HEALTHY'], [31011, 'DRAINING']]);
  t.truthy(cla.endpoints[0]!.locality);
  t.is(cla.endpoints[0]!.load_balancing_weight.value, 1);
  t.deepEqual([...resources.get(TYPE.listener)!.keys()].sort(), ['vip/web:443', 'vip/web:53/udp', 'vip/web:80', 'web', 'web:443', 'web:80'], 'no gRPC API listener for UDP');
  t.is(resources.get(TYPE.listener)!.get('web')!.flavor, 'grpc');
  t.is(resources.get(TYPE.listener)!.get('vip/web:80')!.flavor, 'envoy');
  const envoy = get(resources, TYPE.listener, 'vip/web:80') as { address: { socket_address: { address: string } }; filter_chains: { filters: { name: string }[] }[] };
  t.is(envoy.address.socket_address.address, '11.0.0.5');
  t.is(envoy.filter_chains[0]!.filters[0]!.name, 'envoy.filters.network.tcp_proxy', 'tcp is the default protocol');
  t.deepEqual([...resources.get(TYPE.cluster)!.get('web:80')!.owners], ['/web']);
  t.deepEqual(checkConsistency(resources), []);
});

test('each UDP VIP port gives a cluster, its UDP endpoints, and an Envoy UDP listener with the udp_proxy listener filter (valid against the Envoy protos)', (t) => {
  const dns = app({ id: '/dns', portDefinitions: [
    { port: 0, protocol: 'udp,tcp', name: 'dns', labels: { VIP_0: '/dns:53' } },
  ] } as Parameters<typeof app>[0]);
  const tasks = [{ ...task('dns.1', '/dns', 31053), ports: [31053] }, { ...task('dns.2', '/dns', 31153, { state: 'KILLING' }), ports: [31153] }];
  const dnsVip: Vip = { framework: 'marathon', name: '/dns', kind: 'named', ipv4: '11.0.0.53', ports: [{ port: 53, protocol: 'tcp' }, { port: 53, protocol: 'udp' }] };
  const { resources, issues } = translate(state([dns], tasks, [dnsVip]));
  t.deepEqual(issues, []);
  t.deepEqual([...resources.get(TYPE.cluster)!.keys()].sort(), ['dns:53', 'dns:53/udp'], 'TCP and UDP on the same port are two clusters');
  const cla = get(resources, TYPE.endpoint, 'dns:53/udp') as { endpoints: { lb_endpoints: { health_status: string; endpoint: { address: { socket_address: { port_value: number } } } }[] }[] };
  t.deepEqual(cla.endpoints[0]!.lb_endpoints.map((e) => [e.endpoint.address.socket_address.port_value, e.health_status]), [[31053, 'HEALTHY'], [31153, 'DRAINING']]);
  const listener = resources.get(TYPE.listener)!.get('vip/dns:53/udp')!;
  t.is(listener.flavor, 'envoy');
  t.false(resources.get(TYPE.listener)!.has('dns:53/udp'), 'proxyless gRPC has no UDP');
  // Encoded and decoded through the Envoy protos: the UDP proxy and its route survive as typed messages.
  const decoded = decodeMessage(TYPE.listener, encodeMessage(TYPE.listener, listener.value)) as {
    address: { socket_address: { protocol: string; address: string; port_value: number } };
    listener_filters: { name: string; typed_config: { type_url: string; value: Uint8Array } }[];
  };
  t.like(decoded.address.socket_address, { protocol: 'UDP', address: '11.0.0.53', port_value: 53 });
  t.is(decoded.listener_filters[0]!.name, 'envoy.filters.udp_listener.udp_proxy');
  t.is(decoded.listener_filters[0]!.typed_config.type_url, EXTENSION.udpProxy);
  const proxy = decodeMessage(EXTENSION.udpProxy, decoded.listener_filters[0]!.typed_config.value) as { stat_prefix: string; matcher: { on_no_match: { action: { typed_config: { type_url: string; value: Uint8Array } } } } };
  t.is(proxy.stat_prefix, 'dns:53/udp');
  const route = proxy.matcher.on_no_match.action.typed_config;
  t.is(route.type_url, EXTENSION.udpProxyRoute);
  t.deepEqual(decodeMessage(EXTENSION.udpProxyRoute, route.value), { cluster: 'dns:53/udp' });
  t.deepEqual(checkConsistency(resources), []);
  // A UDP proxy sending to a cluster that is not there is caught before serving.
  const broken = new Map(resources);
  broken.set(TYPE.cluster, new Map([...resources.get(TYPE.cluster)!].filter(([name]) => name !== 'dns:53/udp')));
  t.true(checkConsistency(broken).some((i) => i.name === 'vip/dns:53/udp' && i.message.includes('"dns:53/udp"')));
});

test('routes from labels: path prefix/exact/regex, header matches, weighted clusters, retries and timeouts; HTTP apps get an HCM listener', (t) => {
  const routes = [
    { path: '/healthz', to: '/web', timeoutMs: 250 },
    { regex: '^/v[0-9]+/.*', caseSensitive: false, headers: [{ name: 'X-Canary', exact: '1' }, { name: 'x-debug', present: true, invert: true }], to: '/canary' },
    { prefix: '/api', weights: { '/web': 90, '/canary': 10 }, retries: 2, retryOn: 'reset' },
  ];
  const web = vipApp('/web', { labels: { [MESH_LABELS.protocol]: 'http', [MESH_LABELS.routes]: JSON.stringify(routes), [MESH_LABELS.timeoutMs]: '1500', [MESH_LABELS.retries]: '1' } });
  const canary = vipApp('/canary');
  const { resources, issues } = translate(state([web, canary], [], [{ ...webVip, ports: [{ port: 80, protocol: 'tcp' }] }]));
  t.deepEqual(issues, []);
  const rc = get(resources, TYPE.route, 'web:80') as { virtual_hosts: { domains: string[]; routes: { match: Record<string, unknown>; route: Record<string, unknown> }[] }[] };
  const [r0, r1, r2, fallback] = rc.virtual_hosts[0]!.routes;
  t.deepEqual(rc.virtual_hosts[0]!.domains, ['*']);
  t.deepEqual(r0!.match, { path: '/healthz' });
  t.like(r0!.route, { cluster: 'web:80', timeout: { seconds: 0, nanos: 250_000_000 }, max_stream_duration: { max_stream_duration: { seconds: 0, nanos: 250_000_000 } } });
  t.deepEqual(r1!.match, {
    safe_regex: { regex: '^/v[0-9]+/.*' }, case_sensitive: { value: false },
    headers: [{ name: 'x-canary', string_match: { exact: '1' } }, { name: 'x-debug', present_match: true, invert_match: true }],
  });
  t.is(r1!.route['cluster'], 'canary:80');
  t.deepEqual(r2!.route['weighted_clusters'], { clusters: [{ name: 'web:80', weight: { value: 90 } }, { name: 'canary:80', weight: { value: 10 } }] });
  t.deepEqual(r2!.route['retry_policy'], { retry_on: 'reset', num_retries: { value: 2 } });
  t.like(fallback!, { match: { prefix: '' }, route: { cluster: 'web:80', timeout: { seconds: 1, nanos: 500_000_000 }, retry_policy: { retry_on: '5xx,reset,connect-failure', num_retries: { value: 1 } } } });
  const envoy = get(resources, TYPE.listener, 'vip/web:80') as { filter_chains: { filters: { name: string }[] }[] };
  t.is(envoy.filter_chains[0]!.filters[0]!.name, 'envoy.filters.network.http_connection_manager');
  // A node allowed to see /web also sees the canary cluster its routes send to.
  t.deepEqual([...resources.get(TYPE.cluster)!.get('canary:80')!.owners].sort(), ['/canary', '/web']);
  t.deepEqual(checkConsistency(resources), []);
  // The whole snapshot encodes against the Envoy protos; a frame decodes back as a DiscoveryResponse entry.
  const snap = new SnapshotBuilder().build({ resources, issues });
  const response = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', snap.resources.get(TYPE.route)!.get('web:80')!.sotwFrame) as { resources: { type_url: string; value: Uint8Array }[] };
  t.is(response.resources[0]!.type_url, TYPE.route);
  t.deepEqual(decodeMessage(TYPE.route, response.resources[0]!.value)['name'], 'web:80');
});

test('bad mesh labels give issues naming the label, never an exception; a route to an unknown VIP is skipped', (t) => {
  const web = vipApp('/web', { labels: { [MESH_LABELS.protocol]: 'smtp', [MESH_LABELS.routes]: JSON.stringify([{ prefix: '/a', to: '/nowhere' }, { prefix: 5 }, { regex: '(' }]), [MESH_LABELS.retries]: 'many' } });
  const { resources, issues } = translate(state([web]));
  const text = issues.map((i) => i.message).join('\n');
  t.regex(text, /STRATA_MESH_PROTOCOL: must be one of tcp, http, http2, grpc/);
  t.regex(text, /STRATA_MESH_ROUTES: route to "\/nowhere": no VIP of that name publishes 80\/tcp/);
  t.regex(text, /\/1\/prefix: must be a string/);
  t.regex(text, /\/2\/regex: not a valid regular expression/);
  t.regex(text, /STRATA_MESH_RETRIES/);
  const rc = get(resources, TYPE.route, 'web:80') as { virtual_hosts: { routes: unknown[] }[] };
  t.is(rc.virtual_hosts[0]!.routes.length, 1, 'only the default route');
  t.deepEqual(checkConsistency(resources), []);
});

test('the snapshot builder re-encodes only what changed and refuses an inconsistent translation', (t) => {
  const builder = new SnapshotBuilder({ versionPrefix: 'test' });
  const apps = [vipApp('/a'), vipApp('/b')];
  const s1 = builder.build(translate(state(apps, [task('a.1', '/a', 31001)])));
  const s2 = builder.build(translate(state(apps, [task('a.1', '/a', 31001), task('b.1', '/b', 31002)])));
  t.is(s1.version, 'test-1');
  t.is(s2.version, 'test-2');
  t.deepEqual([...s2.changed.keys()], [TYPE.endpoint]);
  t.deepEqual([...s2.changed.get(TYPE.endpoint)!], ['b:80']);
  t.is(s2.resources.get(TYPE.cluster)!.get('a:80')!.sotwFrame, s1.resources.get(TYPE.cluster)!.get('a:80')!.sotwFrame, 'shared bytes, not re-encoded');
  t.not(s2.resources.get(TYPE.endpoint)!.get('b:80')!.version, s1.resources.get(TYPE.endpoint)!.get('b:80')!.version);
  const same = builder.build(translate(state(apps, [task('a.1', '/a', 31001), task('b.1', '/b', 31002)])));
  t.is(same.version, 'test-2', 'no change, no new version');

  const broken = translate(state(apps));
  const cla = broken.resources.get(TYPE.endpoint)!.get('a:80')!;
  (broken.resources.get(TYPE.endpoint) as Map<string, XdsResource>).set('a:80', { ...cla, value: { cluster_name: 'a:80', endpoints: [{ lb_endpoints: [] }] } });
  (broken.resources.get(TYPE.cluster) as Map<string, XdsResource>).delete('b:80');
  const err = t.throws(() => builder.build(broken));
  t.true(isStrataError(err, 'XDS_SNAPSHOT_INCONSISTENT'));
  const problems = (err as unknown as { details: { message: string }[] }).details.map((d) => d.message).join('\n');
  t.regex(problems, /endpoints\[0\] has no locality/);
  t.regex(problems, /no load_balancing_weight/);
  t.regex(problems, /sends to cluster "b:80", which does not exist/);
  t.is(builder.current!.version, 'test-2', 'the previous snapshot stays');
});

test('property: for random states the translation is always consistent and encodes, and the memoizing translator agrees with a fresh one', (t) => {
  const names = ['/web', '/api', '/shop/cart', '/db', '/canary'];
  const labelValue = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom('tcp', 'http', 'grpc', 'bogus'),
  );
  const routeArb = fc.record({
    prefix: fc.option(fc.constantFrom('/', '/api', ''), { nil: undefined }),
    to: fc.option(fc.constantFrom(...names, '/missing'), { nil: undefined }),
    weights: fc.option(fc.dictionary(fc.constantFrom(...names, '/missing'), fc.integer({ min: 0, max: 100 }), { maxKeys: 3 }), { nil: undefined }),
    headers: fc.option(fc.array(fc.record({ name: fc.constantFrom('x-a', 'bad header'), exact: fc.string({ maxLength: 3 }) }), { maxLength: 2 }), { nil: undefined }),
  }, { requiredKeys: [] });
  const appArb = fc.record({
    name: fc.constantFrom(...names),
    ports: fc.array(fc.record({ vip: fc.constantFrom(...names), port: fc.integer({ min: 1, max: 3 }), protocol: fc.constantFrom('tcp', 'udp', 'udp,tcp') }), { minLength: 0, maxLength: 3 }),
    protocol: labelValue,
    routes: fc.option(fc.oneof(fc.array(routeArb, { maxLength: 3 }).map((r) => JSON.stringify(r)), fc.constant('{not json')), { nil: undefined }),
    tasks: fc.array(fc.record({ state: fc.constantFrom('RUNNING', 'KILLING', 'STAGING', 'FINISHED'), healthy: fc.option(fc.boolean(), { nil: undefined }), host: fc.constantFrom('127.0.0.1', '10.0.0.2', 'not-an-ip') }), { maxLength: 4 }),
  });
  t.notThrows(() =>
    fc.assert(
    fc.property(fc.uniqueArray(appArb, { selector: (a) => a.name, maxLength: 5 }), (specs) => {
      const apps: App[] = [];
      const tasks: Task[] = [];
      for (const s of specs) {
        const labels: Record<string, string> = {};
        if (s.protocol) labels[MESH_LABELS.protocol] = s.protocol;
        if (s.routes) labels[MESH_LABELS.routes] = s.routes;
        const a = app({
          id: s.name, labels,
          healthChecks: s.tasks.some((x) => x.healthy !== undefined) ? [{ protocol: 'TCP', portIndex: 0, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false }] : [],
          portDefinitions: s.ports.map((p, i) => ({ port: 0, protocol: p.protocol, name: `p${i}`, labels: { [`VIP_${i}`]: `${p.vip}:${p.port}` } })),
        } as Parameters<typeof app>[0]);
        apps.push(a);
        s.tasks.forEach((x, i) => tasks.push({ ...task(`${s.name.replaceAll('/', '_')}.${i}`, s.name, 31000 + i, { state: x.state as Task['state'], host: x.host, healthy: x.healthy === undefined ? [] : [x.healthy] }), ports: s.ports.map((_, j) => 31000 + i * 10 + j) }));
      }
      const s1 = state(apps, tasks);
      const translation = translate(s1);
      const problems = checkConsistency(translation.resources);
      if (problems.length > 0) throw new Error(JSON.stringify(problems));
      new SnapshotBuilder().build(translation);
      // The memoizing translator, after s1, gives exactly translate(s2) for a state sharing most objects with s1.
      const translator = new Translator();
      translator.translate(s1);
      const tasksByApp = new Map(s1.tasksByApp);
      let k = 0;
      for (const [appId, list] of tasksByApp) if (k++ % 2 === 0) tasksByApp.set(appId, list.map((x) => ({ ...x, host: '10.9.9.9' })));
      const s2 = { ...s1, tasksByApp };
      const view = (tr: ReturnType<typeof translate>): string => JSON.stringify([...tr.resources].map(([ty, m]) => [ty, [...m].map(([n, r]) => [n, r.value, [...r.owners].sort(), r.flavor])]));
      if (view(translator.translate(s2)) !== view(translate(s2))) throw new Error('the memoized translation differs from a fresh one');
    }),
    { numRuns: process.env['STRATA_SLOW'] === '1' ? 2000 : 150 },
  ),
  );
});

test('a named VIP with an IPv6 address gets an Envoy listener on it too (TCP and UDP), valid against the Envoy protos, to the same cluster', (t) => {
  const web = app({ id: '/web', portDefinitions: [
    { port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: '/web:80' } },
    { port: 0, protocol: 'udp', name: 'dns', labels: { VIP_1: '/web:53' } },
  ] } as Parameters<typeof app>[0]);
  const tasks = [{ ...task('web.1', '/web', 31001), ports: [31001, 31002] }];
  const dual: Vip = { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.5', ipv6: 'fd01:c::5', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }] };
  const { resources, issues } = translate(state([web], tasks, [dual]));
  t.deepEqual(issues, []);
  t.deepEqual([...resources.get(TYPE.listener)!.keys()].sort(), ['vip/web:53/udp', 'vip/web:80', 'vip6/web:53/udp', 'vip6/web:80', 'web', 'web:80']);
  for (const [name, protocol, address, port] of [['vip6/web:80', 'TCP', 'fd01:c::5', 80], ['vip6/web:53/udp', 'UDP', 'fd01:c::5', 53], ['vip/web:80', 'TCP', '11.0.0.5', 80]] as const) {
    const r = resources.get(TYPE.listener)!.get(name)!;
    t.is(r.flavor, 'envoy');
    t.deepEqual([...r.owners], ['/web']);
    const decoded = decodeMessage(TYPE.listener, encodeMessage(TYPE.listener, r.value)) as { name: string; address: { socket_address: { protocol?: string; address: string; port_value: number } } };
    t.is(decoded.name, name);
    t.like(decoded.address.socket_address, { address, port_value: port });
    t.is(decoded.address.socket_address.protocol ?? 'TCP', protocol);
  }
  const tcp6 = decodeMessage(TYPE.listener, encodeMessage(TYPE.listener, get(resources, TYPE.listener, 'vip6/web:80'))) as { filter_chains: { filters: { name: string; typed_config: { type_url: string; value: Uint8Array } }[] }[] };
  const proxy = tcp6.filter_chains[0]!.filters[0]!;
  t.is(proxy.name, 'envoy.filters.network.tcp_proxy');
  t.like(decodeMessage(EXTENSION.tcpProxy, proxy.typed_config.value), { cluster: 'web:80' }, 'the IPv6 listener sends to the VIP port\'s one cluster');
  t.deepEqual(checkConsistency(resources), []);
});

test('an IPv6 IP VIP gets its Envoy listener on that address; a named VIP without an IPv6 address gets none', (t) => {
  const ip6 = app({ id: '/ip6', portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: 'fd01:c::99:8080' } }] } as Parameters<typeof app>[0]);
  const { resources } = translate(state([ip6, vipApp('/web')], [task('ip6.1', '/ip6', 31001), task('web.1', '/web', 31002)], [webVip]));
  const listeners = [...resources.get(TYPE.listener)!.keys()];
  const ipListener = listeners.find((n) => n.startsWith('vip/') && n.includes('fd01:c::99'));
  t.truthy(ipListener, listeners.join(' '));
  const decoded = decodeMessage(TYPE.listener, encodeMessage(TYPE.listener, get(resources, TYPE.listener, ipListener!))) as { address: { socket_address: { address: string; port_value: number } } };
  t.like(decoded.address.socket_address, { address: 'fd01:c::99', port_value: 8080 });
  t.false(listeners.some((n) => n.startsWith('vip6/web')), 'no IPv6 address allocated: no IPv6 listener');
});
