/** `strata network leases|lease` as a user runs them, against a test master. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

test('network leases lists every agent\'s VTEP and subnets; network lease shows one; an unknown agent is a clear error', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-leases-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const token = await h.superuserToken();
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  const now = new Date().toISOString();
  await h.master.records.put('agent', {
    id: 'a1', hostname: 'a1.example', address: { ip: '10.0.0.1', port: 5051 }, attributes: {},
    resources: { cpus: 1, memMb: 1024, diskMb: 1024, gpus: 0, ports: [] }, reservations: [],
    health: { status: 'healthy', lastSeenAt: now }, maintenance: 'none', registeredAt: now,
  });
  const put = await h.master.app.inject({ method: 'PUT', url: '/networking/api/v1/agents/a1/overlay', headers: { authorization: `token=${token}` }, payload: {} });
  t.is(put.statusCode, 200, put.body);

  const list = await runStrata(['network', 'leases'], { env });
  t.is(list.code, 0, list.output);
  t.regex(list.output, /AGENT\s+UNDERLAY\s+VTEP\s+VTEP MAC\s+SUBNETS/);
  t.regex(list.output, /a1\s+10\.0\.0\.1\s+44\.128\.0\.1\s+70:b3:d5:80:00:01\s+dcos=9\.0\.0\.0\/24 dcos6=fd01:b::\/80/);
  const one = await runStrata(['network', 'lease', 'a1'], { env });
  t.is(one.code, 0, one.output);
  t.like(JSON.parse(one.output), { agentId: 'a1', vtepIp: '44.128.0.1' });
  const missing = await runStrata(['network', 'lease', 'nope'], { env });
  t.not(missing.code, 0);
  t.regex(missing.output, /agent nope has no overlay lease/);
});
