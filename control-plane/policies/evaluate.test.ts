import test from 'ava';
import fc from 'fast-check';
import { withAppDefaults } from '../model/app-defaults.ts';
import type { AppDefinition, Policy, Task } from '../model/schemas.ts';
import { decide, resolveEndpoint, type Endpoint, type Flow } from './evaluate.ts';

const ep = (input: string, extra: Partial<Endpoint> = {}): Endpoint => ({ input, labels: {}, networks: [], ips: [], ...extra });
const web = ep('/shop/web', { appId: '/shop/web', labels: { tier: 'front' }, networks: ['dcos'], ips: ['9.0.1.5'] });
const db = ep('/shop/db', { appId: '/shop/db', labels: { tier: 'data' }, networks: ['dcos'], ips: ['9.0.2.7'] });
const stranger = ep('10.9.9.9', { ips: ['10.9.9.9'] });
const flow = (from: Endpoint, to: Endpoint, port = 5432, protocol: Flow['protocol'] = 'tcp'): Flow => ({ from, to, protocol, port });

const dbOnlyFromWeb: Policy = {
  name: 'db-ingress',
  to: [{ appLabels: { tier: 'data' } }],
  defaultAction: 'deny',
  rules: [{ action: 'allow', from: [{ appId: '/shop/*' }], ports: [{ protocol: 'tcp', port: 5432 }] }],
};

test('the first matching rule decides; no match falls to the default; unselected destinations are not isolated', (t) => {
  const allowed = decide([dbOnlyFromWeb], flow(web, db));
  t.is(allowed.action, 'allow');
  t.like(allowed.verdicts[0], { policy: 'db-ingress', decidedBy: 0 });
  t.regex(allowed.verdicts[0]!.why, /has labels tier=data.*source is app \/shop\/web \(\/shop\/\*\)/);
  const wrongPort = decide([dbOnlyFromWeb], flow(web, db, 22));
  t.like(wrongPort, { action: 'deny' });
  t.is(wrongPort.verdicts[0]!.decidedBy, 'default');
  t.regex(decide([dbOnlyFromWeb], flow(stranger, db)).summary, /denied by policy db-ingress \(its default\)/);
  t.regex(decide([dbOnlyFromWeb], flow(db, web, 80)).summary, /allowed — no policy selects \/shop\/web/);
});

test('several policies on one destination: every one must allow (deny wins)', (t) => {
  const blockRange: Policy = { name: 'block-10', to: [{ network: 'dcos' }], defaultAction: 'allow', rules: [{ action: 'deny', from: [{ cidr: '10.0.0.0/8' }], ports: [] }] };
  t.is(decide([dbOnlyFromWeb, blockRange], flow(web, db)).action, 'allow');
  const d = decide([dbOnlyFromWeb, blockRange], flow(stranger, db));
  t.is(d.action, 'deny');
  t.deepEqual(d.verdicts.map((v) => [v.policy, v.action]), [['block-10', 'deny'], ['db-ingress', 'deny']]);
});

test('a decision is deny exactly when some selecting policy denies, and allow when none selects (property)', (t) => {
  const peer = fc.oneof(
    fc.constantFrom('dcos', 'blue').map((network) => ({ network })),
    fc.constantFrom('9.0.0.0/8', '10.0.0.0/8', '0.0.0.0/0').map((cidr) => ({ cidr })),
    fc.constantFrom('/shop/*', '/shop/web', '/other').map((appId) => ({ appId })),
    fc.constantFrom({ tier: 'data' }, { tier: 'front' }).map((appLabels) => ({ appLabels })),
  );
  const policy = fc.record({
    name: fc.stringMatching(/^[a-z]{1,6}$/),
    to: fc.array(peer, { minLength: 1, maxLength: 2 }),
    defaultAction: fc.constantFrom('allow' as const, 'deny' as const),
    rules: fc.array(fc.record({ action: fc.constantFrom('allow' as const, 'deny' as const), from: fc.array(peer, { minLength: 1, maxLength: 2 }), ports: fc.constant<Policy['rules'][number]['ports']>([]) }), { maxLength: 3 }),
  });
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uniqueArray(policy, { selector: (p) => p.name, maxLength: 4 }), fc.constantFrom(web, db, stranger), fc.constantFrom(web, db), (policies, from, to) => {
        const d = decide(policies as Policy[], flow(from, to));
        if (d.verdicts.length === 0) return d.action === 'allow';
        return (d.action === 'deny') === d.verdicts.some((v) => v.action === 'deny');
      }),
    ),
  );
});

test('resolveEndpoint reads app ids, task ids and IPs', (t) => {
  const app = withAppDefaults({ id: '/shop/db', cmd: 'x', labels: { tier: 'data' }, networks: [{ mode: 'container', name: 'dcos' }] } as AppDefinition, { version: '2026-01-01T00:00:00.000Z' });
  const now = '2026-01-01T00:00:00.000Z';
  const task = { id: 'shop_db.1', appId: '/shop/db', agentId: 'a', host: 'h', state: 'RUNNING', stagedAt: now, stateChangedAt: now, ports: [], servicePorts: [], ipAddresses: [{ ipAddress: '9.0.2.7', protocol: 'IPv4' }], healthCheckResults: [], version: now, resources: { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 }, role: '*' } as Task;
  const apps = new Map([[app.id, app]]);
  t.like(resolveEndpoint('/shop/db', apps, [task]), { appId: '/shop/db', networks: ['dcos'], ips: ['9.0.2.7'], labels: { tier: 'data' } });
  t.like(resolveEndpoint('shop_db.1', apps, [task]), { appId: '/shop/db' });
  t.like(resolveEndpoint('9.0.2.7', apps, [task]), { appId: '/shop/db', ips: ['9.0.2.7'] });
  t.like(resolveEndpoint('8.8.8.8', apps, [task]), { appId: undefined, ips: ['8.8.8.8'] });
  t.is(resolveEndpoint('/nope', apps, [task]), undefined);
  t.is(resolveEndpoint('not-a-thing', apps, [task]), undefined);
});
