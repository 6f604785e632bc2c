import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import addFormats from 'ajv-formats';
import Fastify from 'fastify';
import { isStrataError, type StrataError } from '../../common/errors.ts';
import { withAppDefaults } from './app-defaults.ts';
import {
  AppDefinition,
  DEFAULT_NETWORKS,
  RECORD_SCHEMAS,
  type Agent,
  type App,
  type Framework,
  type Group,
  type LeaderInfo,
  type Network,
  type Policy,
  type Principal,
  type RecordKind,
  type Role,
  type SigningKey,
  type Task,
  type Vip,
} from './schemas.ts';
import { parseVipLabel } from './vip-label.ts';
import { assertRecord, validateAppDefinition, validateRecord, type Issue } from './validate.ts';

const VERSION = '2015-09-25T15:13:48.343Z';
const stored = (def: AppDefinition): App => withAppDefaults(def, { version: VERSION });
const paths = (issues: readonly Issue[]): string[] => issues.map((i) => i.path);
/** A plain mutable copy of a record, for cases that break it. */
const copy = <T>(v: T): Record<string, unknown> & T => structuredClone(v) as Record<string, unknown> & T;

// ---------------------------------------------------------------------------
// Defaults

test('withAppDefaults: a minimal definition gets every Marathon default', (t) => {
  t.deepEqual(stored({ id: 'web', cmd: 'sleep 100' }), {
    id: '/web',
    cmd: 'sleep 100',
    instances: 1,
    cpus: 1,
    mem: 128,
    disk: 0,
    gpus: 0,
    env: {},
    secrets: {},
    labels: {},
    portDefinitions: [{ port: 0, protocol: 'tcp', name: 'default', labels: {} }],
    requirePorts: false,
    networks: [{ mode: 'host' }],
    constraints: [],
    healthChecks: [],
    readinessChecks: [],
    upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 1 },
    backoffSeconds: 1,
    backoffFactor: 1.15,
    maxLaunchDelaySeconds: 300,
    killSelection: 'YOUNGEST_FIRST',
    unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 0 },
    dependencies: [],
    role: '*',
    fetch: [],
    version: VERSION,
  });
});

test('withAppDefaults: ports follow the network mode', (t) => {
  const bridge = stored({ id: '/b', container: { docker: { image: 'nginx' } }, networks: [{ mode: 'container/bridge' }] });
  t.deepEqual(bridge.portDefinitions, []);
  t.deepEqual(bridge.container, {
    type: 'DOCKER',
    docker: { image: 'nginx', forcePullImage: false, privileged: false, parameters: [] },
    portMappings: [{ containerPort: 0, hostPort: 0, servicePort: 0, protocol: 'tcp', name: 'default', labels: {} }],
  });
  const overlay = stored({ id: '/c', container: { docker: { image: 'nginx' }, portMappings: [{ containerPort: 80 }] }, networks: [{ name: 'dcos' }] });
  t.deepEqual(overlay.networks, [{ mode: 'container', name: 'dcos' }]);
  t.deepEqual(overlay.container?.portMappings, [{ containerPort: 80, servicePort: 0, protocol: 'tcp', labels: {} }]);
  t.deepEqual(stored({ id: '/n', cmd: 'x', portDefinitions: [] }).portDefinitions, [], '[] means no ports');
  t.deepEqual(validateRecord('app', bridge), []);
  t.deepEqual(validateRecord('app', overlay), []);
});

test('withAppDefaults: health and readiness check defaults', (t) => {
  const app = stored({
    id: '/h',
    cmd: 'x',
    portDefinitions: [{ name: 'http-api' }],
    healthChecks: [{}, { protocol: 'TCP', port: 8080 }],
    readinessChecks: [{}],
    unreachableStrategy: { inactiveAfterSeconds: 60 },
    fetch: [{ uri: 'https://example.com/app.tgz' }],
  });
  t.deepEqual(app.healthChecks, [
    { protocol: 'HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false },
    { protocol: 'TCP', port: 8080, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false },
  ]);
  t.deepEqual(app.readinessChecks, [
    { name: 'readinessCheck', protocol: 'HTTP', path: '/', portName: 'http-api', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200], preserveLastResponse: false },
  ]);
  t.deepEqual(app.unreachableStrategy, { inactiveAfterSeconds: 60, expungeAfterSeconds: 0 });
  t.deepEqual(app.fetch, [{ uri: 'https://example.com/app.tgz', extract: true, executable: false, cache: false }]);
  // inactive 60 > expunge 0: defaults never repair a definition that breaks a rule.
  t.deepEqual(paths(validateRecord('app', app)), ['/unreachableStrategy/expungeAfterSeconds']);
  const command = stored({ id: '/k', cmd: 'x', healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' } }] });
  t.deepEqual(command.healthChecks[0], { protocol: 'COMMAND', command: { value: 'true' }, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false });
  t.deepEqual(validateRecord('app', command), []);
});

test('withAppDefaults: the default role comes from the options', (t) => {
  t.is(withAppDefaults({ id: '/r', cmd: 'x' }, { version: VERSION, defaultRole: 'slave_public' }).role, 'slave_public');
  t.is(withAppDefaults({ id: '/r', cmd: 'x', role: 'dev' }, { version: VERSION, defaultRole: 'slave_public' }).role, 'dev');
  // Relative dependencies are resolved against the app's group, as Marathon's canonicalPath.
  t.deepEqual(stored({ id: 'a/b', cmd: 'x', dependencies: ['c', '/d/e', '../f', './g'] }).dependencies, ['/a/c', '/d/e', '/f', '/a/g']);
});

// ---------------------------------------------------------------------------
// App definitions in the shape of Marathon's documentation examples (docs/docs/*.md)

const MARATHON_EXAMPLES: Record<string, unknown> = {
  'basic app (application-basics.md)': { id: 'basic-0', cmd: 'while [ true ] ; do echo "Hello Marathon" ; sleep 5 ; done', cpus: 0.1, mem: 10.0, instances: 1 },
  'labels (labels.md)': { id: 'my-app', cmd: 'sleep 1000', cpus: 0.1, mem: 16, instances: 2, labels: { environment: 'staging', owner: 'zeus' } },
  'docker bridge (native-docker.md)': {
    id: 'bridged-webapp',
    cmd: 'python3 -m http.server 8080',
    cpus: 0.5,
    mem: 64.0,
    instances: 2,
    networks: [{ mode: 'container/bridge' }],
    container: {
      type: 'DOCKER',
      docker: { image: 'python:3' },
      portMappings: [
        { containerPort: 8080, hostPort: 0, servicePort: 9000, protocol: 'tcp' },
        { containerPort: 161, hostPort: 0, protocol: 'udp' },
      ],
    },
    healthChecks: [{ protocol: 'HTTP', portIndex: 0, path: '/', gracePeriodSeconds: 5, intervalSeconds: 20, maxConsecutiveFailures: 3 }],
  },
  'VIP port label (networking.md)': {
    id: '/acme/web',
    cmd: './run',
    portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: '/acme:10000' } }, { port: 0, name: 'admin', labels: { VIP_1: '10.0.0.1:9000' } }],
  },
  'container network (networking.md)': {
    id: '/overlay-app',
    networks: [{ mode: 'container', name: 'dcos' }],
    container: { type: 'MESOS', docker: { image: 'nginx' }, portMappings: [{ containerPort: 80, name: 'http', labels: { VIP_0: '/overlay-app:80' } }] },
  },
  'constraints (constraints.md)': {
    id: '/sleep-unique',
    cmd: 'sleep 60',
    instances: 3,
    constraints: [['hostname', 'UNIQUE'], ['rack_id', 'GROUP_BY', '3'], ['rack_id', 'LIKE', 'rack-[1-3]'], ['rack_id', 'MAX_PER', '2'], ['@zone', 'IS', 'us-east-1a'], ['hostname', 'CLUSTER', 'a.specific.node.com']],
  },
  'health checks (health-checks.md)': {
    id: '/checked',
    cmd: 'python3 -m http.server $PORT0',
    portDefinitions: [{ port: 0, name: 'http' }],
    healthChecks: [
      { protocol: 'MESOS_HTTP', path: '/api/health', portIndex: 0, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3 },
      { protocol: 'COMMAND', command: { value: 'curl -f -X GET http://$HOST:$PORT0/health' }, maxConsecutiveFailures: 3 },
    ],
  },
  'readiness check (readiness-checks.md)': {
    id: '/readiness',
    cmd: './serve',
    portDefinitions: [{ port: 0, name: 'http-api' }],
    readinessChecks: [{ name: 'readinessCheck', protocol: 'HTTP', path: '/', portName: 'http-api', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200], preserveLastResponse: false }],
  },
  'secrets (secrets.md)': {
    id: '/with-secret',
    cmd: 'env',
    env: { DATABASE_PW: { secret: 'secret0' }, PLAIN: 'value' },
    secrets: { secret0: { source: '/mysql/password' } },
  },
  'args with an image (app.raml)': { id: '/args', args: ['/bin/sh', '-c', 'sleep 100'], container: { type: 'DOCKER', docker: { image: 'busybox', forcePullImage: true, parameters: [{ key: 'label', value: 'x=y' }] } } },
  'upgrade, backoff, unreachable (app.raml)': {
    id: '/tuned',
    cmd: 'x',
    upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.2 },
    backoffSeconds: 1,
    backoffFactor: 1.15,
    maxLaunchDelaySeconds: 3600,
    killSelection: 'OLDEST_FIRST',
    unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 },
    taskKillGracePeriodSeconds: 30,
    dependencies: ['/product/db'],
    acceptedResourceRoles: ['*', 'slave_public'],
    fetch: [{ uri: 'https://example.com/app/cool-script.sh', executable: true }],
  },
  'unreachable disabled': { id: '/resident', cmd: 'x', unreachableStrategy: 'disabled' },
};

for (const [name, def] of Object.entries(MARATHON_EXAMPLES)) {
  test(`Marathon example accepted: ${name}`, (t) => {
    t.deepEqual(validateAppDefinition(def), []);
    t.deepEqual(validateRecord('app', stored(def as AppDefinition)), []);
  });
}

// ---------------------------------------------------------------------------
// Every bad field is rejected, naming the field

const BASE = stored({
  id: '/prod/web',
  cmd: 'serve',
  portDefinitions: [{ port: 0, name: 'http-api' }, { port: 0, name: 'admin' }],
  healthChecks: [{ protocol: 'HTTP' }],
  readinessChecks: [{}],
  env: { A: 'a' },
});

const BAD_APPS: [string, (a: Record<string, unknown> & App) => void, string][] = [
  ['relative id', (a) => void (a.id = 'prod/web'), '/id'],
  ['uppercase id', (a) => void (a.id = '/Prod/web'), '/id'],
  ['dot-dot id', (a) => void (a.id = '/prod/../web'), '/id'],
  ['trailing slash id', (a) => void (a.id = '/prod/'), '/id'],
  ['over-long id', (a) => void (a.id = `/${'a'.repeat(255)}`), '/id'],
  ['missing required field', (a) => void delete (a as Partial<App>).instances, '/instances'],
  ['unknown field', (a) => void (a.ports = [80]), '/ports'],
  ['negative cpus', (a) => void (a.cpus = -1), '/cpus'],
  ['string mem', (a) => void (a.mem = '128' as never), '/mem'],
  ['fractional instances', (a) => void (a.instances = 1.5), '/instances'],
  ['fractional gpus', (a) => void (a.gpus = 0.5), '/gpus'],
  ['negative disk', (a) => void (a.disk = -0.1), '/disk'],
  ['unknown killSelection', (a) => void (a.killSelection = 'RANDOM' as never), '/killSelection'],
  ['backoffFactor below 1', (a) => void (a.backoffFactor = 0.5), '/backoffFactor'],
  ['upgrade capacity above 1', (a) => void (a.upgradeStrategy.maximumOverCapacity = 1.5), '/upgradeStrategy/maximumOverCapacity'],
  ['unreachable as other string', (a) => void (a.unreachableStrategy = 'off' as never), '/unreachableStrategy'],
  ['unreachable negative', (a) => void (a.unreachableStrategy = { inactiveAfterSeconds: -1, expungeAfterSeconds: 0 }), '/unreachableStrategy/inactiveAfterSeconds'],
  ['unreachable inactive after expunge', (a) => void (a.unreachableStrategy = { inactiveAfterSeconds: 10, expungeAfterSeconds: 5 }), '/unreachableStrategy/expungeAfterSeconds'],
  ['port out of range', (a) => void (a.portDefinitions[0]!.port = 70000), '/portDefinitions/0/port'],
  ['unknown port protocol', (a) => void (a.portDefinitions[0]!.protocol = 'sctp' as never), '/portDefinitions/0/protocol'],
  ['port name with capitals', (a) => void (a.portDefinitions[1]!.name = 'Admin'), '/portDefinitions/1/name'],
  ['repeated port name', (a) => void (a.portDefinitions[1]!.name = 'http-api'), '/portDefinitions/1/name'],
  ['repeated service port', (a) => void ((a.portDefinitions[0]!.port = 10001), (a.portDefinitions[1]!.port = 10001)), '/portDefinitions/1/port'],
  ['malformed VIP label', (a) => void (a.portDefinitions[0]!.labels = { VIP_0: 'no-port' }), '/portDefinitions/0/labels/VIP_0'],
  ['label value not a string', (a) => void (a.labels = { x: 1 as never }), '/labels/x'],
  ['label key with a space', (a) => void (a.labels = { 'a b': 'x' }), '/labels/a b'],
  ['mixed network modes', (a) => void (a.networks = [{ mode: 'host' }, { mode: 'container', name: 'dcos' }]), '/networks'],
  ['two bridge networks', (a) => void (a.networks = [{ mode: 'container/bridge' }, { mode: 'container/bridge' }]), '/networks'],
  ['network name in host mode', (a) => void (a.networks = [{ mode: 'host', name: 'dcos' }]), '/networks/0/name'],
  ['unknown network mode', (a) => void (a.networks = [{ mode: 'overlay' as never }]), '/networks/0/mode'],
  ['no networks', (a) => void (a.networks = []), '/networks'],
  ['portDefinitions with container networks', (a) => void ((a.networks = [{ mode: 'container' }]), (a.container = { type: 'MESOS', portMappings: [] })), '/portDefinitions'],
  ['portMappings with host network', (a) => void (a.container = { type: 'MESOS', portMappings: [{ containerPort: 80, servicePort: 0, protocol: 'tcp', labels: {} }] }), '/container/portMappings'],
  ['DOCKER container without image', (a) => void (a.container = { type: 'DOCKER', portMappings: [] }), '/container/docker'],
  ['bad env name', (a) => void (a.env = { '1BAD': 'x' }), '/env/1BAD'],
  ['env value a number', (a) => void (a.env = { A: 1 as never }), '/env/A'],
  ['env secret reference malformed', (a) => void (a.env = { A: { secret: 5 } as never }), '/env/A/secret'],
  ['env secret undefined', (a) => void (a.env = { A: { secret: 'missing' } }), '/env/A/secret'],
  ['cmd and args', (a) => void (a.args = ['x']), '/args'],
  ['neither cmd nor args nor image', (a) => void delete (a as Partial<App>).cmd, '/cmd'],
  ['empty args', (a) => void ((a.args = []), delete (a as Partial<App>).cmd), '/args'],
  ['constraint too short', (a) => void (a.constraints = [['hostname']]), '/constraints/0'],
  ['unknown constraint operator', (a) => void (a.constraints = [['hostname', 'SPREAD']]), '/constraints/0/1'],
  ['UNIQUE with a value', (a) => void (a.constraints = [['hostname', 'UNIQUE', 'x']]), '/constraints/0/2'],
  ['LIKE with a bad regex', (a) => void (a.constraints = [['rack', 'LIKE', '([']]), '/constraints/0/2'],
  ['LIKE without a value', (a) => void (a.constraints = [['rack', 'LIKE']]), '/constraints/0'],
  ['MAX_PER not an integer', (a) => void (a.constraints = [['rack', 'MAX_PER', 'two']]), '/constraints/0/2'],
  ['IS with bad characters', (a) => void (a.constraints = [['rack', 'IS', 'a b']]), '/constraints/0/2'],
  ['GROUP_BY zero', (a) => void (a.constraints = [['rack', 'GROUP_BY', '0']]), '/constraints/0/2'],
  ['health check protocol unknown', (a) => void (a.healthChecks[0]!.protocol = 'UDP' as never), '/healthChecks/0/protocol'],
  ['health check port index out of range', (a) => void (a.healthChecks[0]!.portIndex = 2), '/healthChecks/0/portIndex'],
  ['health check port and portIndex', (a) => void (a.healthChecks[0]!.port = 8080), '/healthChecks/0/port'],
  ['HTTP health check without path', (a) => void delete a.healthChecks[0]!.path, '/healthChecks/0/path'],
  ['TCP health check with path', (a) => void (a.healthChecks[0]!.protocol = 'TCP'), '/healthChecks/0/path'],
  ['COMMAND check without command', (a) => void (a.healthChecks = [{ protocol: 'COMMAND', gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false }]), '/healthChecks/0/command'],
  ['mixed health check kinds', (a) => void a.healthChecks.push({ ...a.healthChecks[0]!, protocol: 'MESOS_HTTP' }), '/healthChecks'],
  ['negative grace period', (a) => void (a.healthChecks[0]!.gracePeriodSeconds = -1), '/healthChecks/0/gracePeriodSeconds'],
  ['zero interval', (a) => void (a.healthChecks[0]!.intervalSeconds = 0), '/healthChecks/0/intervalSeconds'],
  ['readiness timeout not below interval', (a) => void (a.readinessChecks[0]!.timeoutSeconds = 30), '/readinessChecks/0/timeoutSeconds'],
  ['readiness port name unknown', (a) => void (a.readinessChecks[0]!.portName = 'nope'), '/readinessChecks/0/portName'],
  ['two readiness checks', (a) => void a.readinessChecks.push(a.readinessChecks[0]!), '/readinessChecks'],
  ['readiness status code out of range', (a) => void (a.readinessChecks[0]!.httpStatusCodesForReady = [700]), '/readinessChecks/0/httpStatusCodesForReady/0'],
  ['version not a date-time', (a) => void (a.version = 'yesterday'), '/version'],
  ['dependency on itself', (a) => void (a.dependencies = ['/prod/web']), '/dependencies/0'],
  ['dependency not absolute', (a) => void (a.dependencies = ['db']), '/dependencies/0'],
  ['bad role', (a) => void (a.role = '-bad'), '/role'],
  ['empty acceptedResourceRoles', (a) => void (a.acceptedResourceRoles = []), '/acceptedResourceRoles'],
  ['zero taskKillGracePeriodSeconds', (a) => void (a.taskKillGracePeriodSeconds = 0), '/taskKillGracePeriodSeconds'],
  ['fetch without uri', (a) => void (a.fetch = [{ extract: true } as never]), '/fetch/0/uri'],
];

test('the base app used by the bad-field cases is valid', (t) => {
  t.deepEqual(validateRecord('app', BASE), []);
});

for (const [name, mutate, path] of BAD_APPS) {
  test(`app rejected naming the field: ${name}`, (t) => {
    const app = copy(BASE);
    mutate(app);
    const issues = validateRecord('app', app);
    t.true(issues.length > 0, 'rejected');
    t.true(paths(issues).includes(path), `names ${path}: ${JSON.stringify(issues)}`);
  });
}

test('every wrong field is listed at once, in the error details and message', (t) => {
  const app = copy(BASE);
  app.cpus = -1;
  app.instances = 'many' as never;
  app.extra = true;
  delete (app as Partial<App>).version;
  app.portDefinitions[0]!.protocol = 'icmp' as never;
  const thrown = t.throws(() => assertRecord('app', app));
  t.true(isStrataError(thrown, 'RECORD_INVALID'));
  const err = thrown as StrataError;
  const expected = ['/cpus', '/instances', '/extra', '/version', '/portDefinitions/0/protocol'];
  t.deepEqual(paths(err.details as Issue[]).sort(), [...expected].sort());
  for (const p of expected) t.true(err.message.includes(p), `message names ${p}`);
  t.is(err.httpStatus, 422);
});

test('the input form rejects what Marathon rejects, naming the field', (t) => {
  t.deepEqual(paths(validateAppDefinition({ cmd: 'x' })), ['/id']);
  t.deepEqual(paths(validateAppDefinition({ id: '/a', cpus: 'one' })), ['/cpus']);
  t.deepEqual(paths(validateAppDefinition({ id: '/a', portDefinitions: [{ port: -1 }] })), ['/portDefinitions/0/port']);
  t.deepEqual(paths(validateAppDefinition({ id: '/a', fetch: [{}] })), ['/fetch/0/uri']);
  t.deepEqual(paths(validateAppDefinition({ id: '/a', container: { docker: {} } })), ['/container/docker/image']);
});

// ---------------------------------------------------------------------------
// The other kinds: a valid example and the bad fields

const NOW = '2026-01-01T00:00:00.000Z';
const LATER = '2026-04-01T00:00:00.000Z';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPrivate = ec.privateKey.export({ format: 'jwk' });
const ecPublic = ec.publicKey.export({ format: 'jwk' });
const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();

const VALID = {
  agent: {
    id: '8b233e2c-3a8b-4c7e-9b8e-2d8e1c5d6f1a-S0',
    hostname: 'agent-1.example.com',
    address: { ip: '10.0.0.11', port: 5051 },
    region: 'us-east-1',
    zone: 'us-east-1a',
    attributes: { rack_id: 'rack-1', gpu_type: 'none' },
    resources: { cpus: 8, memMb: 32000, diskMb: 100000, gpus: 0, ports: [{ begin: 1025, end: 2180 }, { begin: 2182, end: 32000 }] },
    reservations: [{ role: 'slave_public', cpus: 2, memMb: 4096, diskMb: 0, gpus: 0 }],
    health: { status: 'healthy', lastSeenAt: NOW },
    maintenance: 'none',
    registeredAt: NOW,
  } satisfies Agent,
  framework: {
    id: '5e1c7b3a-0000-4000-8000-000000000001-0001',
    name: 'marathon',
    roles: ['*', 'slave_public'],
    principal: 'dcos_marathon',
    failoverTimeoutSeconds: 604800,
    checkpoint: true,
    capabilities: ['PARTITION_AWARE', 'TASK_KILLING_STATE'],
    active: true,
    registeredAt: NOW,
  } satisfies Framework,
  role: { name: 'eng/frontend', weight: 2.5, quota: { cpus: 10, memMb: 20480 } } satisfies Role,
  task: {
    id: 'prod_web.instance-1a2b3c4d-0000-4000-8000-000000000000._app.1',
    appId: '/prod/web',
    agentId: '8b233e2c-3a8b-4c7e-9b8e-2d8e1c5d6f1a-S0',
    host: '10.0.0.11',
    state: 'RUNNING',
    stagedAt: NOW,
    startedAt: NOW,
    stateChangedAt: NOW,
    ports: [31000, 31001],
    servicePorts: [10000, 10001],
    ipAddresses: [{ ipAddress: '9.0.1.5', protocol: 'IPv4' }, { ipAddress: 'fd01:b::1:5', protocol: 'IPv6' }],
    healthCheckResults: [{ alive: true, consecutiveFailures: 0, firstSuccess: NOW, lastSuccess: NOW }],
    version: VERSION,
    resources: { cpus: 0.5, memMb: 128, diskMb: 0, gpus: 0 },
    role: '*',
  } satisfies Task,
  vip: { framework: 'marathon', name: '/mygroup/myapp', kind: 'named', ipv4: '11.0.0.7', ipv6: 'fd01:c::7', ports: [{ port: 80, protocol: 'tcp' }] } satisfies Vip,
  network: { name: 'prod', subnet: '10.64.0.0/16', prefix: 24, subnet6: 'fd02::/48', prefix6: 80, mtu: 1420, vni: 2048, labels: {} } satisfies Network,
  policy: {
    name: 'db-from-web',
    to: [{ appId: '/prod/db' }],
    defaultAction: 'deny',
    rules: [
      { action: 'allow', from: [{ appLabels: { tier: 'web' } }, { network: 'prod' }], ports: [{ protocol: 'tcp', port: 5432 }] },
      { action: 'allow', from: [{ cidr: '10.0.0.0/8' }], ports: [{ protocol: 'tcp', port: 9000, endPort: 9100 }, { protocol: 'icmp' }] },
      { action: 'deny', from: [{ appId: '/dev/*' }], ports: [] },
    ],
  } satisfies Policy,
  principal: {
    kind: 'user',
    uid: 'alice@example.com',
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
    groups: ['ops'],
    permissions: [{ rid: 'dcos:service:marathon:marathon:services:/dev', actions: ['create', 'read'] }],
    disabled: false,
  } satisfies Principal,
  group: { gid: 'ops', permissions: [{ rid: 'dcos:superuser', actions: ['full'] }] } satisfies Group,
  leader: { id: 'master-1', apiUrl: 'https://10.0.0.1:443', fencingToken: 42, electedAt: NOW } satisfies LeaderInfo,
  acl: { rid: 'dcos:service:marathon:marathon:services:/dev', description: 'apps under /dev' },
  revokedToken: { jti: '6f0d2b7e-5c1a-4f3e-9d8b-1a2b3c4d5e6f', uid: 'alice', expiresAt: LATER },
  usedLoginToken: { digest: 'ab'.repeat(32), uid: 'ci-bot', expiresAt: LATER },
  certificateAuthority: {
    id: 'ca-1',
    trustDomain: 'strata.local',
    createdAt: NOW,
    rootCertificatePem: `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n`,
    rootKeyEncryptedPem: `-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBszCCAVmgAwIBAgIQ\n-----END ENCRYPTED PRIVATE KEY-----\n`,
    intermediateCertificatePem: `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n`,
    intermediateKeyPem: `-----BEGIN PRIVATE KEY-----\nMIIBszCCAVmgAwIBAgIQ\n-----END PRIVATE KEY-----\n`,
    rootCrlPem: `-----BEGIN X509 CRL-----\nMIIBszCCAVmgAwIBAgIQ\n-----END X509 CRL-----\n`,
  },
  certificate: { serial: '0123456789abcdef0123456789abcdef', authorityId: 'ca-1', uid: 'alice', spiffeId: 'spiffe://strata.local/user/alice', notBefore: NOW, notAfter: LATER, revokedAt: NOW, revocationReason: 'keyCompromise' },
  identityProvider: { type: 'ldap', id: 'default', config: { host: '127.0.0.1', port: 389, 'enforce-starttls': true, 'use-ldaps': false, dntemplate: 'uid=%(username)s,ou=people,dc=example,dc=com' } },
  loginFlow: { id: '0123456789abcdef0123456789abcdef', kind: 'oidc', provider: 'oidc.google', expiresAt: LATER, target: '/', nonce: 'n', codeVerifier: 'v' },
  signingKey: {
    kid: '3f1c9a2e-0000-4000-8000-000000000000',
    alg: 'ES256',
    privateJwk: { ...(ecPrivate as object), kty: 'EC' },
    publicJwk: { ...(ecPublic as object), kty: 'EC', kid: '3f1c9a2e-0000-4000-8000-000000000000', alg: 'ES256', use: 'sig' },
    createdAt: NOW,
    notAfter: LATER,
  } as SigningKey,
  deployment: {
    id: '5d2c7a1e-0b3f-4c1a-9e7d-2f6b8a9c0d1e',
    version: NOW,
    affectedApps: ['/db', '/web'],
    affectedPods: [],
    steps: [
      { actions: [{ action: 'StartApplication', app: '/web' }] },
      { actions: [{ action: 'RestartApplication', app: '/db' }] },
      { actions: [{ action: 'ScaleApplication', app: '/web' }] },
    ],
    currentActions: [],
    currentStep: 0,
    totalSteps: 3,
    state: 'pending',
    createdAt: NOW,
    previous: [{ app: '/db', version: '2025-12-01T00:00:00.000Z' }, { app: '/web' }],
  },
  servicePort: { port: 10000, appId: '/web' },
  launchDelay: { appId: '/web', version: NOW, failures: 2, lastFailureAt: NOW, delayUntil: LATER },
  overlayLease: { agentId: 'agent-1', underlayIp: '10.0.0.5', vtepIp: '44.128.0.1', vtepMac: '70:b3:d5:80:00:01', networks: { dcos: { subnet: '9.0.1.0/24' }, dcos6: { subnet6: 'fd01:b::/80' } }, updatedAt: NOW },
  overlayClaim: { pool: '_vtep', cidr: '44.128.0.1/32', agentId: 'agent-1' },
  overlayAddress: { network: 'dcos', ip: '9.0.1.2', agentId: 'agent-1', taskId: 'web.1', state: 'released', assignedAt: NOW, releasedAt: NOW },
  secret: { path: 'mysql/password', kekVersion: 1, dataKey: 'A'.repeat(80), value: 'B'.repeat(44), author: 'admin', createdAt: NOW, updatedAt: NOW },
} satisfies { [K in Exclude<RecordKind, 'app' | 'appVersion'>]: unknown };

test('every kind has a valid example', (t) => {
  for (const [kind, record] of Object.entries(VALID)) t.deepEqual(validateRecord(kind as RecordKind, record), [], kind);
  t.deepEqual(validateRecord('principal', { kind: 'service', uid: 'dcos_marathon', publicKey: rsaPem, groups: [], permissions: [], disabled: false }), []);
  // What security/iam.ts writes for the bootstrap user (no groups, no disabled flag).
  t.deepEqual(validateRecord('principal', { uid: 'admin', kind: 'user', description: 'bootstrap superuser', passwordHash: VALID.principal.passwordHash, permissions: [{ rid: 'dcos:superuser', actions: ['full'] }] }), []);
  // What control-plane/master.ts publishes as the leader.
  t.deepEqual(validateRecord('leader', { id: '5f0c1a2e-0000-4000-8000-000000000000', apiUrl: 'http://127.0.0.1:8080', electedAt: NOW }), []);
  for (const n of DEFAULT_NETWORKS) t.deepEqual(validateRecord('network', n), [], n.name);
  t.deepEqual(validateRecord('vip', { framework: 'marathon', name: '10.0.0.1', kind: 'ip', ports: [{ port: 9000, protocol: 'tcp' }] }), []);
});

type Case = [kind: keyof typeof VALID, name: string, mutate: (r: Record<string, any>) => void, path: string]; // eslint-disable-line @typescript-eslint/no-explicit-any

const BAD_RECORDS: Case[] = [
  ['agent', 'id with a slash', (r) => (r.id = 'a/b'), '/id'],
  ['agent', 'hostname with underscore', (r) => (r.hostname = 'bad_host'), '/hostname'],
  ['agent', 'ip not IPv4', (r) => (r.address.ip = '300.1.1.1'), '/address/ip'],
  ['agent', 'port 0', (r) => (r.address.port = 0), '/address/port'],
  ['agent', 'attribute value a number', (r) => (r.attributes.rack_id = 3), '/attributes/rack_id'],
  ['agent', 'negative memory', (r) => (r.resources.memMb = -1), '/resources/memMb'],
  ['agent', 'inverted port range', (r) => (r.resources.ports[0].end = 1000), '/resources/ports/0/end'],
  ['agent', 'overlapping port ranges', (r) => (r.resources.ports[1].begin = 2000), '/resources/ports/1'],
  ['agent', 'reservation above total', (r) => (r.reservations[0].cpus = 9), '/reservations'],
  ['agent', 'unknown health status', (r) => (r.health.status = 'fine'), '/health/status'],
  ['agent', 'unknown maintenance', (r) => (r.maintenance = 'off'), '/maintenance'],
  ['agent', 'registeredAt not a time', (r) => (r.registeredAt = 'now'), '/registeredAt'],
  ['framework', 'name with capitals', (r) => (r.name = 'Marathon'), '/name'],
  ['framework', 'no roles', (r) => (r.roles = []), '/roles'],
  ['framework', 'repeated role', (r) => (r.roles = ['*', '*']), '/roles'],
  ['framework', 'capability lowercase', (r) => (r.capabilities = ['multi_role']), '/capabilities/0'],
  ['framework', 'missing active', (r) => delete r.active, '/active'],
  ['role', 'zero weight', (r) => (r.weight = 0), '/weight'],
  ['role', 'role element ..', (r) => (r.name = 'eng/..'), '/name'],
  ['role', 'negative quota', (r) => (r.quota.cpus = -1), '/quota/cpus'],
  ['task', 'unknown state', (r) => (r.state = 'TASK_RUNNING'), '/state'],
  ['task', 'app id relative', (r) => (r.appId = 'prod/web'), '/appId'],
  ['task', 'ip family mismatch', (r) => (r.ipAddresses[0].protocol = 'IPv6'), '/ipAddresses/0/ipAddress'],
  ['task', 'ip not an address', (r) => (r.ipAddresses[0].ipAddress = 'zz'), '/ipAddresses/0/ipAddress'],
  ['task', 'repeated host port', (r) => (r.ports = [31000, 31000]), '/ports/1'],
  ['task', 'host port 0', (r) => (r.ports = [0]), '/ports/0'],
  ['task', 'health result without alive', (r) => delete r.healthCheckResults[0].alive, '/healthCheckResults/0/alive'],
  ['task', 'missing resources', (r) => delete r.resources, '/resources'],
  ['vip', 'named VIP with an IP name', (r) => (r.name = '10.0.0.1'), '/name'],
  ['vip', 'ip VIP with a name', (r) => (r.kind = 'ip'), '/name'],
  ['vip', 'ipv4 not an address', (r) => (r.ipv4 = '11.0.0'), '/ipv4'],
  ['vip', 'no ports', (r) => (r.ports = []), '/ports'],
  ['vip', 'repeated port', (r) => r.ports.push({ port: 80, protocol: 'tcp' }), '/ports/1'],
  ['vip', 'udp,tcp protocol', (r) => (r.ports[0].protocol = 'udp,tcp'), '/ports/0/protocol'],
  ['network', 'name longer than 13', (r) => (r.name = 'a-very-long-name'), '/name'],
  ['network', 'subnet with host bits', (r) => (r.subnet = '10.64.0.1/16'), '/subnet'],
  ['network', 'subnet IPv6 in subnet', (r) => (r.subnet = 'fd00::/64'), '/subnet'],
  ['network', 'prefix shorter than subnet', (r) => (r.prefix = 8), '/prefix'],
  ['network', 'prefix6 shorter than subnet6', (r) => (r.prefix6 = 32), '/prefix6'],
  ['network', 'no subnet at all', (r) => (delete r.subnet, delete r.subnet6), '/subnet'],
  ['network', 'MTU too small', (r) => (r.mtu = 100), '/mtu'],
  ['network', 'VNI beyond 24 bits', (r) => (r.vni = 2 ** 24), '/vni'],
  ['policy', 'name not a DNS label', (r) => (r.name = 'DB'), '/name'],
  ['policy', 'peer with two selectors', (r) => (r.to[0].network = 'prod'), '/to/0'],
  ['policy', 'empty peer', (r) => (r.rules[0].from[0] = {}), '/rules/0/from/0'],
  ['policy', 'bad CIDR', (r) => (r.rules[1].from[0].cidr = '10.0.0.0/33'), '/rules/1/from/0/cidr'],
  ['policy', 'unknown action', (r) => (r.rules[0].action = 'reject'), '/rules/0/action'],
  ['policy', 'endPort before port', (r) => (r.rules[1].ports[0].endPort = 8000), '/rules/1/ports/0/endPort'],
  ['policy', 'endPort without port', (r) => delete r.rules[1].ports[0].port, '/rules/1/ports/0/endPort'],
  ['policy', 'port on icmp', (r) => (r.rules[1].ports[1].port = 1), '/rules/1/ports/1/port'],
  ['policy', 'unknown default action', (r) => (r.defaultAction = 'drop'), '/defaultAction'],
  ['policy', 'empty appLabels', (r) => (r.rules[0].from[0].appLabels = {}), '/rules/0/from/0/appLabels'],
  ['principal', 'unknown kind', (r) => (r.kind = 'robot'), '/kind'],
  ['principal', 'uid with a space', (r) => (r.uid = 'al ice'), '/uid'],
  ['principal', 'password hash not PHC', (r) => (r.passwordHash = 'hunter2'), '/passwordHash'],
  ['principal', 'unknown action', (r) => (r.permissions[0].actions = ['write']), '/permissions/0/actions/0'],
  ['principal', 'no actions', (r) => (r.permissions[0].actions = []), '/permissions/0/actions'],
  ['principal', 'repeated group', (r) => (r.groups = ['ops', 'ops']), '/groups'],
  ['principal', 'disabled not boolean', (r) => (r.disabled = 'yes'), '/disabled'],
  ['principal', 'rid without a colon', (r) => (r.permissions[0].rid = 'superuser'), '/permissions/0/rid'],
  ['principal', 'repeated rid', (r) => r.permissions.push(r.permissions[0]), '/permissions/1/rid'],
  ['principal', 'user with a public key', (r) => (r.publicKey = rsaPem), '/publicKey'],
  ['principal', 'service without a public key', (r) => (r.kind = 'service'), '/publicKey'],
  ['group', 'gid with a slash', (r) => (r.gid = 'a/b'), '/gid'],
  ['group', 'uid instead of gid', (r) => ((r.uid = r.gid), delete r.gid), '/gid'],
  ['leader', 'API URL not http(s)', (r) => (r.apiUrl = 'ftp://10.0.0.1'), '/apiUrl'],
  ['leader', 'old field name', (r) => ((r.leaderId = r.id), delete r.id), '/id'],
  ['leader', 'fencing token 0', (r) => (r.fencingToken = 0), '/fencingToken'],
  ['signingKey', 'kid with a dot-dot path', (r) => (r.kid = '../../dev/null'), '/kid'],
  ['signingKey', 'unknown algorithm', (r) => (r.alg = 'HS256'), '/alg'],
  ['signingKey', 'algorithm does not fit the key', (r) => (r.alg = 'RS256'), '/privateJwk/kty'],
  ['signingKey', 'public JWK holds d', (r) => (r.publicJwk.d = r.privateJwk.d), '/publicJwk/d'],
  ['signingKey', 'private JWK without d', (r) => delete r.privateJwk.d, '/privateJwk/d'],
  ['signingKey', 'public key of another pair', (r) => (r.publicJwk.x = r.publicJwk.y), '/publicJwk/x'],
  ['signingKey', 'JWK kid differs', (r) => (r.publicJwk.kid = 'other'), '/publicJwk/kid'],
  ['signingKey', 'notAfter before createdAt', (r) => (r.notAfter = '2025-01-01T00:00:00Z'), '/notAfter'],
  ['signingKey', 'JWK member not base64url', (r) => (r.publicJwk.x = 'a+b/c='), '/publicJwk/x'],
  ['deployment', 'unknown action', (r) => (r.steps[0].actions[0].action = 'KillApplication'), '/steps/0/actions/0/action'],
  ['deployment', 'totalSteps off', (r) => (r.totalSteps = 2), '/totalSteps'],
  ['deployment', 'currentStep beyond the steps', (r) => (r.currentStep = 4), '/currentStep'],
  ['deployment', 'action on an app not affected', (r) => (r.steps[1].actions[0].app = '/other'), '/steps/1/actions/0/app'],
  ['deployment', 'affected app without action', (r) => r.affectedApps.push('/idle'), '/affectedApps/2'],
  ['deployment', 'app twice in a step', (r) => r.steps[0].actions.push({ action: 'ScaleApplication', app: '/web' }), '/steps/0/actions/1/app'],
  ['deployment', 'empty step', (r) => (r.steps[0].actions = []), '/steps/0/actions'],
  ['deployment', 'unknown state', (r) => (r.state = 'done'), '/state'],
  ['deployment', 'previous version not UTC', (r) => (r.previous[0].version = '2025-12-01T00:00:00+01:00'), '/previous/0/version'],
  ['deployment', 'repeated previous', (r) => r.previous.push({ app: '/db' }), '/previous/2/app'],
];

test('an app version is a stored app whose version is a UTC timestamp', (t) => {
  t.deepEqual(validateRecord('appVersion', stored({ id: '/v', cmd: 'x' })), []);
  t.deepEqual(paths(validateRecord('appVersion', { ...stored({ id: '/v', cmd: 'x' }), version: '2015-09-25T17:13:48+02:00' })), ['/version']);
  t.deepEqual(paths(validateRecord('appVersion', { ...stored({ id: '/v', cmd: 'x' }), cpus: -1 })), ['/cpus']);
  t.deepEqual(paths(validateRecord('appVersion', stored({ id: '/v' }))), ['/cmd'], 'the app rules apply');
});

for (const [kind, name, mutate, path] of BAD_RECORDS) {
  test(`${kind} rejected naming the field: ${name}`, (t) => {
    const record = copy(VALID[kind]) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    mutate(record);
    const issues = validateRecord(kind, record);
    t.true(paths(issues).includes(path), `names ${path}: ${JSON.stringify(issues)}`);
  });
}

test('a service account with an unreadable key is rejected', (t) => {
  const issues = validateRecord('principal', { kind: 'service', uid: 'svc', publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', groups: [], permissions: [], disabled: false });
  t.deepEqual(paths(issues), ['/publicKey']);
});

// ---------------------------------------------------------------------------
// VIP labels

test('parseVipLabel splits on the last colon into named and IP VIPs', (t) => {
  t.deepEqual(parseVipLabel('/acme:10000'), { kind: 'named', name: '/acme', port: 10000 });
  t.deepEqual(parseVipLabel('/mygroup/myapp:80'), { kind: 'named', name: '/mygroup/myapp', port: 80 });
  t.deepEqual(parseVipLabel('10.0.0.1:80'), { kind: 'ip', ip: '10.0.0.1', family: 4, port: 80 });
  t.deepEqual(parseVipLabel('fd01:c::1:443'), { kind: 'ip', ip: 'fd01:c::1', family: 6, port: 443 });
  for (const bad of ['acme', ':80', '/acme:0', '/acme:70000', '/acme:8o', '/a b:80', '//x:80']) t.is(parseVipLabel(bad), undefined, bad);
});

// ---------------------------------------------------------------------------
// fastify reuses the schemas

test('fastify (Ajv strict, useDefaults, coercion as the API sets it) compiles every schema', async (t) => {
  const app = Fastify({
    logger: false,
    ajv: { customOptions: { allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes: 'array' }, plugins: [addFormats.default as never] },
  });
  for (const [kind, schema] of Object.entries(RECORD_SCHEMAS)) app.post(`/${kind}`, { schema: { body: schema } }, () => ({ ok: true }));
  app.post('/definition', { schema: { body: AppDefinition } }, (request) => request.body);
  await app.ready();
  const accepted = await app.inject({ method: 'POST', url: '/definition', payload: MARATHON_EXAMPLES['docker bridge (native-docker.md)'] as object });
  t.is(accepted.statusCode, 200, accepted.body);
  const bad = await app.inject({ method: 'POST', url: '/definition', payload: { id: '/a', cpus: -1, mem: 'x' } });
  t.is(bad.statusCode, 400);
  for (const [kind, record] of Object.entries(VALID)) {
    const res = await app.inject({ method: 'POST', url: `/${kind}`, payload: record });
    t.is(res.statusCode, 200, `${kind}: ${res.body}`);
  }
  await app.close();
});
