/**
 * Readiness checks on the agent: the task runner runs them for a RUNNING
 * task (a real process serving HTTP on $PORT0) and reports each verdict with
 * the task's status, until the task is ready.
 */
import { writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { noCgroups } from '../executor/cgroups.ts';
import { Executor } from '../executor/executor.ts';
import { reap, tempDir, waitFor } from '../executor/test-helpers.ts';
import { FAKE_TOKEN, FakeMaster } from './fake-master.ts';
import { TaskRunner } from './task-runner.ts';

const VERSION = '2026-01-02T03:04:05.678Z';
const AGENT = 'agent-ready-S0';

test('readiness verdicts ride on status reports until the task is ready', async (t) => {
  const dir = await tempDir(t);
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  const executor = new Executor({ workDir: join(dir, 'sandboxes'), host: 'agent.test', pollIntervalMs: 50, cgroups: noCgroups('tests') });
  reap(t, executor);
  const runner = new TaskRunner({ agentId: AGENT, masterUrl: master.url, token: () => Promise.resolve(FAKE_TOKEN), executor, logger: pino({ level: 'silent' }), waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, orphanGraceMs: 300, minPollIntervalMs: 20 });
  t.teardown(() => runner.close());
  await runner.start();
  const free = createNetServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as AddressInfo).port;
  await new Promise((resolve) => free.close(resolve));
  // 503 "warming up" until the file `ready` exists in the sandbox, then 200.
  const server = `require('http').createServer((q,s)=>{const r=require('fs').existsSync('ready');s.writeHead(r?200:503,{'content-type':'text/plain'});s.end(r?'ok':'warming up')}).listen(process.env.PORT0,'127.0.0.1')`;
  master.addApp({
    id: '/ready/app', version: VERSION, cmd: `exec ${process.execPath} -e "${server}"`, portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: {} }], taskKillGracePeriodSeconds: 1,
    healthChecks: [],
    readinessChecks: [{ name: 'warm', protocol: 'HTTP', path: '/', portName: 'http', intervalSeconds: 1, timeoutSeconds: 1, httpStatusCodesForReady: [200], preserveLastResponse: true }],
  } as never);
  const id = `ready_app.instance-${process.pid}._app.1`;
  master.addTask({ id, appId: '/ready/app', agentId: AGENT, version: VERSION, ports: [port] });
  const verdicts = () => master.reports.filter((r) => r.taskId === id && r.readinessCheckResults).map((r) => r.readinessCheckResults!);
  await waitFor('not ready reported', () => verdicts().some((v) => v[0]?.ready === false && v[0].lastResponse?.status === 503), 8000);
  // (An earlier verdict may be a refused connection, before the server listened.)
  t.like(verdicts().find((v) => v[0]?.lastResponse !== undefined)![0], { taskId: id, name: 'warm', ready: false, lastResponse: { status: 503, body: 'warming up' } });
  await writeFile(join(executor.get(id)!.sandbox, 'ready'), '');
  await waitFor('ready reported', () => verdicts().some((v) => v[0]?.ready === true), 8000);
  t.is(master.tasks.get(id)!.state, 'RUNNING');
});
