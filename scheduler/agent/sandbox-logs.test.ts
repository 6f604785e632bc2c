/**
 * The agent's sandbox log endpoint on its own, with a stub grant verifier:
 * what it refuses (no grant, another task's or agent's grant, bad queries,
 * malformed ids) and that it never crashes the agent's server.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { StrataError } from '../../common/errors.ts';
import { tempDir } from '../executor/test-helpers.ts';
import { parseLogQuery, sandboxLogHandler } from './sandbox-logs.ts';

test('the sandbox log endpoint serves a tail for a matching grant and refuses everything else with a clear code', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 't1'));
  await writeFile(join(dir, 't1', 'stdout'), 'a\nb\nc\n');
  const handler = sandboxLogHandler({
    agentId: 'agent-1',
    executor: { get: () => undefined, sandboxPath: (id: string) => join(dir, id) },
    verify: async (token) => {
      const [agentId, taskId] = token.split(':');
      if (!agentId || !taskId) throw new StrataError('AUTH_TOKEN_INVALID', 'grant rejected: bad');
      return { agentId, taskId };
    },
  });
  const server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string, grant?: string) => {
    const r = await fetch(`${base}${path}`, grant ? { headers: { authorization: `token=${grant}` } } : {});
    return { status: r.status, text: await r.text() };
  };
  t.deepEqual(await get('/v1/sandboxes/t1/logs?lines=2', 'agent-1:t1'), { status: 200, text: 'b\nc\n' });
  t.is((await get('/v1/sandboxes/t1/logs')).status, 401, 'no grant');
  t.is((await get('/v1/sandboxes/t1/logs', 'agent-2:t1')).status, 401, 'another agent\'s grant');
  t.is((await get('/v1/sandboxes/t1/logs', 'agent-1:t2')).status, 401, 'another task\'s grant');
  t.is((await get('/v1/sandboxes/t1/logs', 'garbage')).status, 401);
  const bad = await get('/v1/sandboxes/t1/logs?lines=x', 'agent-1:t1');
  t.is(bad.status, 400);
  t.regex(JSON.parse(bad.text).message, /lines must be/);
  t.is((await get('/v1/sandboxes/%E0%A4%A/logs', 'agent-1:x')).status, 401, 'a malformed id does not crash the server');
  t.is((await get('/v1/sandboxes/..%2F..%2Fetc/logs', 'agent-1:../../etc')).status, 404, 'no path outside the sandboxes');
  t.is((await get('/v1/sandboxes/t9/logs', 'agent-1:t9')).status, 404, 'no sandbox');
  t.is((await get('/health')).status, 404, 'other paths are left to the agent');
});

test('parseLogQuery: defaults and every bad parameter named', (t) => {
  t.deepEqual(parseLogQuery(new URLSearchParams('')), { stream: 'stdout', lines: 10, follow: false });
  t.deepEqual(parseLogQuery(new URLSearchParams('stream=stderr&lines=0&follow=true')), { stream: 'stderr', lines: 0, follow: true });
  t.throws(() => parseLogQuery(new URLSearchParams('stream=stdin')), { message: /stream must be stdout or stderr/ });
  t.throws(() => parseLogQuery(new URLSearchParams('lines=1.5')), { message: /lines must be an integer/ });
  t.throws(() => parseLogQuery(new URLSearchParams('follow=yes')), { message: /follow must be true or false/ });
});
