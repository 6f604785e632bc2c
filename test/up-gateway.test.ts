/**
 * End to end through `strata up` as a process: the gateway it starts, the CLI
 * logged in through it (CA pinned by the fingerprint the banner prints), and
 * a real app task (python3 -m http.server) reached at /service/<app-id>/.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import test from 'ava';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

function get(url: string, ca: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('strata up: login through the gateway, an app task served at /service/<app-id>/', async (t) => {
  const { dir, dataDir, env, up } = await startUpLoggedIn(t, 'up-gateway');
  const [, gatewayUrl, fingerprint] = await up.waitFor(/gateway: (https:\/\/127\.0\.0\.1:\d+) \(HTTPS, cluster CA SHA-256 ([0-9A-F:]{95})\)/);
  const login = await runStrata(['auth', 'login', '--url', gatewayUrl!, '--ca-fingerprint', fingerprint!, '--password-file', join(dataDir, 'bootstrap-credentials.json')], { env });
  t.is(login.code, 0, login.output);
  const { token, caFile } = JSON.parse(await readFile(env.STRATA_CLI_CONFIG, 'utf8')) as { token: string; caFile: string };
  const ca = await readFile(caFile, 'utf8');

  const site = join(dir, 'site');
  await mkdir(site);
  await writeFile(join(site, 'hello.txt'), 'hello through the gateway\n');
  const app = {
    id: '/gw/web', cmd: `cd ${site} && exec python3 -m http.server --bind 127.0.0.1 $PORT0`, instances: 1, cpus: 0.1, mem: 64,
    portDefinitions: [{ port: 0, name: 'http' }], taskKillGracePeriodSeconds: 1,
    healthChecks: [{ protocol: 'HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 30, intervalSeconds: 1, timeoutSeconds: 2 }],
  };
  await writeFile(join(dir, 'app.json'), JSON.stringify(app));
  const added = await runStrata(['app', 'add', join(dir, 'app.json'), '--wait', '--timeout', '120'], { env });
  t.is(added.code, 0, added.output);

  const served = await get(`${gatewayUrl}/service/gw/web/hello.txt`, ca, { authorization: `token=${token}` });
  t.is(served.status, 200, served.text);
  t.is(served.text, 'hello through the gateway\n');
  t.is((await get(`${gatewayUrl}/service/gw/web/hello.txt`, ca, {})).status, 401);

  const status = await runStrata(['gateway', 'status'], { env });
  t.is(status.code, 0, status.output);
  t.regex(status.output, /^\/service\/gw\/web\/ +1$/m);
});
