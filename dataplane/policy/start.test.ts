import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../control-plane/config/load.ts';
import { MasterUrls } from '../../scheduler/agent/masters.ts';
import { ensureBridgeFiltering, startConfiguredPolicy } from './start.ts';

test('bridge filtering is switched on for IPv4 and IPv6 (bridge-nf-call-iptables, -ip6tables)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-brnf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'net/bridge'), { recursive: true });
  for (const f of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables']) await writeFile(join(dir, 'net/bridge', f), '0\n');
  t.is(await ensureBridgeFiltering(dir), undefined);
  t.is(await readFile(join(dir, 'net/bridge/bridge-nf-call-iptables'), 'utf8'), '1\n');
  t.is(await readFile(join(dir, 'net/bridge/bridge-nf-call-ip6tables'), 'utf8'), '1\n');
});

test('dataplane.policy off starts nothing', async (t) => {
  const config = loadConfig({ env: {}, overrides: { 'dataplane.policy': 'off' } });
  t.is(await startConfiguredPolicy({ config, masters: new MasterUrls('http://127.0.0.1:1'), token: async () => 'x', logger: pino({ level: 'silent' }) }), undefined);
});
