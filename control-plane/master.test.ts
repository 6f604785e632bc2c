/** Master lifecycle on stores with other limits than the embedded one. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { startFakeConsul } from '../test/fakes/consul/fake-consul.ts';
import { loadConfig } from './config/load.ts';
import { startMaster } from './master.ts';

test('on Consul (sessions of 10 s at least) the default leader TTL is raised, not refused: the master leads and serves', async (t) => {
  const consul = await startFakeConsul({ txnMaxReqLen: 1024 * 1024 });
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-master-consul-'));
  t.teardown(async () => {
    await consul.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const config = loadConfig({ env: {}, overrides: { dataDir, 'api.port': 0, 'store.backend': 'consul', 'store.consulAddress': consul.address } });
  t.is(config.master.leaderTtlSeconds, 3);
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const master = await startMaster({ config, logger });
  t.teardown(() => master.close());
  const leadership = await Promise.race([master.whenLeader(), new Promise<undefined>((r) => setTimeout(r, 10_000, undefined))]);
  t.truthy(leadership, 'leads within 10 s');
  t.true(warnings.some((w) => w.includes('leaderTtlSeconds is outside what the store accepts')), 'the change is logged');
  const token = (await master.tokens.issue('admin')).token;
  const res = await master.app.inject({ method: 'GET', url: '/v1/leader', headers: { authorization: `token=${token}` } });
  t.is(res.statusCode, 200);
  t.is(res.json().fencingToken, leadership!.token);
});
