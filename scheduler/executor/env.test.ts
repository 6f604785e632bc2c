import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import type { App } from '../../control-plane/model/schemas.ts';
import { labelsEnv, portsEnv, SecretMissingError, taskEnvironment } from './env.ts';
import { checkLaunchSpec, launchSpecFromApp, sandboxName } from './spec.ts';
import { taskSpec } from './test-helpers.ts';

test('ports: PORT<i>, PORT, PORTS, PORT_<NAME>; dynamic ports get no PORT_0 (Marathon EnvironmentHelperTest cases)', (t) => {
  t.deepEqual(portsEnv([{ port: 0 }, { port: 0 }], [1001, 1002]), {
    PORT0: '1001',
    PORT1: '1002',
    PORT_1001: '1001',
    PORT_1002: '1002',
    PORT: '1001',
    PORTS: '1001,1002',
  });
  const named = portsEnv([{ port: 0, name: 'http' }, { port: 0, name: 'https' }], [1001, 1002]);
  t.is(named.PORT_HTTP, '1001');
  t.is(named.PORT_HTTPS, '1002');
  t.false('PORT_0' in named);
  const declared = portsEnv([{ port: 80 }, { port: 8080 }], [1001, 1002]);
  t.is(declared.PORT_80, '1001');
  t.is(declared.PORT_8080, '1002');
  t.deepEqual(portsEnv([], []), {}, 'no ports, no variables');
});

test('labels: MARATHON_APP_LABELS lists escaped names; over-long ones are left out', (t) => {
  const env = labelsEnv({ 'com.example/team': 'core', ok: 'yes', long: 'x'.repeat(600) });
  t.is(env.MARATHON_APP_LABELS, 'COM_EXAMPLE_TEAM OK');
  t.is(env.MARATHON_APP_LABEL_COM_EXAMPLE_TEAM, 'core');
  t.is(env.MARATHON_APP_LABEL_OK, 'yes');
  t.false('MARATHON_APP_LABEL_LONG' in env);
  t.is(labelsEnv({}).MARATHON_APP_LABELS, '', 'always present, empty without labels');
});

test('the whole environment: Marathon context, ports, HOST, app env over them, MESOS_SANDBOX last; no agent variables', (t) => {
  process.env.STRATA_AGENT_SECRET_FOR_TEST = 'do-not-leak';
  t.teardown(() => delete process.env.STRATA_AGENT_SECRET_FOR_TEST);
  const env = taskEnvironment(
    taskSpec({
      taskId: 't1',
      env: { FOO: 'bar', PORT: 'override', DB_PASS: { secret: 'db' } },
      secrets: { db: 's3cret' },
      labels: { tier: 'front' },
      portDefinitions: [{ port: 0, name: 'http' }],
      ports: [31000],
      resources: { cpus: 0.5, memMb: 128, diskMb: 0, gpus: 0 },
    }),
    { host: 'agent-1.example', sandbox: '/var/lib/strata/t1' },
  );
  t.like(env, {
    MESOS_TASK_ID: 't1',
    MESOS_SANDBOX: '/var/lib/strata/t1',
    MARATHON_APP_ID: '/group/web',
    MARATHON_APP_VERSION: '2026-01-02T03:04:05.678Z',
    MARATHON_APP_RESOURCE_CPUS: '0.5',
    MARATHON_APP_RESOURCE_MEM: '128.0',
    MARATHON_APP_LABELS: 'TIER',
    MARATHON_APP_LABEL_TIER: 'front',
    HOST: 'agent-1.example',
    PORT0: '31000',
    PORT_HTTP: '31000',
    PORTS: '31000',
    PORT: 'override',
    FOO: 'bar',
    DB_PASS: 's3cret',
  });
  t.truthy(env.PATH);
  t.false('STRATA_AGENT_SECRET_FOR_TEST' in env, 'the agent environment is not inherited');
  t.throws(() => taskEnvironment(taskSpec({ env: { X: { secret: 'nope' } } }), { host: 'h', sandbox: '/s' }), { instanceOf: SecretMissingError });
});

test('launch specs: built from a stored App; malformed ones refused with EXECUTOR_SPEC_INVALID', (t) => {
  const app = {
    id: '/web',
    cmd: 'serve',
    cpus: 2,
    mem: 256,
    disk: 10,
    gpus: 0,
    env: { A: '1' },
    labels: { l: 'v' },
    portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: {} }],
    taskKillGracePeriodSeconds: 7,
    version: '2026-01-01T00:00:00.000Z',
  } as unknown as App;
  const spec = launchSpecFromApp(app, { id: 'web.instance-1._app.1', ports: [31001] });
  t.like(spec, { taskId: 'web.instance-1._app.1', appId: '/web', cmd: 'serve', ports: [31001], taskKillGracePeriodSeconds: 7 });
  t.deepEqual(spec.resources, { cpus: 2, memMb: 256, diskMb: 10, gpus: 0 });
  t.deepEqual(spec.portDefinitions, [{ port: 0, name: 'http' }]);

  const bad = (s: Parameters<typeof checkLaunchSpec>[0]): void => {
    const err = t.throws(() => checkLaunchSpec(s));
    t.true(isStrataError(err, 'EXECUTOR_SPEC_INVALID'), String(err));
  };
  bad(taskSpec({}));
  bad(taskSpec({ cmd: 'a', args: ['b'] }));
  bad(taskSpec({ taskId: '../escape', cmd: 'x' }));
  bad(taskSpec({ taskId: 'a/b', cmd: 'x' }));
  bad(taskSpec({ cmd: 'x', taskKillGracePeriodSeconds: 0 }));
  t.notThrows(() => checkLaunchSpec(taskSpec({ args: ['x'] })));
});

test('sandbox names: the task id, or a hashed prefix when too long for a file name', (t) => {
  t.is(sandboxName('web.instance-1._app.1'), 'web.instance-1._app.1');
  const long = `${'a'.repeat(300)}._app.1`;
  const name = sandboxName(long);
  t.true(name.length <= 200);
  t.not(name, sandboxName(`${'a'.repeat(300)}._app.2`));
});
