import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { configFlags, loadConfig } from './load.ts';

const codeAndMessage = (fn: () => unknown): [string | undefined, string] => {
  try {
    fn();
    return [undefined, ''];
  } catch (err) {
    return [(err as { code?: string }).code, (err as Error).message];
  }
};

test('defaults, then file, then environment, then flags; the result is frozen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-config-'));
  const file = join(dir, 'strata.json');
  await writeFile(file, JSON.stringify({ api: { port: 1111, host: '127.0.0.2' }, log: { level: 'warn' } }));
  const config = loadConfig({ flags: { config: file, 'api-port': '3333' }, env: { STRATA_API_PORT: '2222', STRATA_LOG_LEVEL: 'debug' }, cwd: dir });
  t.is(config.api.port, 3333, 'flag beats env and file');
  t.is(config.log.level, 'debug', 'env beats file');
  t.is(config.api.host, '127.0.0.2', 'file beats default');
  t.is(config.store.backend, 'embedded', 'default');
  t.is(config.dataDir, join(dir, '.strata'), 'relative dataDir resolved against cwd');
  t.true(Object.isFrozen(config) && Object.isFrozen(config.api));
  t.throws(() => {
    (config.api as { port: number }).port = 1;
  });
});

test('a bad value is one line naming the field, its source and why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-config-'));
  await writeFile(join(dir, 'bad.json'), '{"api": {"prot": 1}}');
  await writeFile(join(dir, 'broken.json'), '{"api": ');
  const cases: [Parameters<typeof loadConfig>[0], RegExp][] = [
    [{ flags: { 'api-port': '70000' } }, /^config: api\.port \(from --api-port\) must be <= 65535$/],
    [{ env: { STRATA_API_PORT: 'eighty' } }, /^config: api\.port \(from STRATA_API_PORT\) must be a number, got "eighty"$/],
    [{ flags: { 'store-backend': 'zookeeper' } }, /store\.backend \(from --store-backend\) must be one of "embedded", "etcd", "consul"/],
    [{ flags: { 'no-such': '1' } }, /no-such \(from --no-such\) is not a known flag/],
    [{ flags: { config: join(dir, 'bad.json') } }, /api\.prot \(from config file\) is not a known setting/],
    [{ flags: { config: join(dir, 'broken.json') } }, /is not valid JSON/],
    [{ flags: { config: join(dir, 'missing.json') } }, /cannot read/],
    [{ flags: { 'cluster-name': 'Not_DNS' } }, /cluster\.name \(from --cluster-name\) must match pattern/],
    [{ flags: { 'vips-ipv4-range': 'fd01:c::/64' } }, /^config: vips\.ipv4Range \(from --vips-ipv4-range\) must be an IPv4 CIDR such as 11\.0\.0\.0\/8 \(got "fd01:c::\/64"\)$/],
    [{ env: { STRATA_VIPS_IPV6_RANGE: 'fd01:c::/200' } }, /vips\.ipv6Range \(from STRATA_VIPS_IPV6_RANGE\) must be an IPv6 CIDR/],
  ];
  for (const [inputs, expected] of cases) {
    const [code, message] = codeAndMessage(() => loadConfig({ env: {}, ...inputs }));
    t.is(code, 'CONFIG_INVALID', message);
    t.regex(message, expected);
    t.false(message.includes('\n'), 'one line');
  }
});

test('every setting has a flag and an environment variable', (t) => {
  const flags = configFlags();
  t.true(flags.some((f) => f.flag === '--store-etcd-endpoints' && f.env === 'STRATA_STORE_ETCD_ENDPOINTS' && f.type === 'array'));
  t.true(flags.some((f) => f.flag === '--data-dir' && f.env === 'STRATA_DATA_DIR'));
  const config = loadConfig({ env: { STRATA_STORE_ETCD_ENDPOINTS: 'http://127.0.0.1:1,http://127.0.0.1:2' } });
  t.deepEqual(config.store.etcdEndpoints, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
});
