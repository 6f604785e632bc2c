/**
 * The web UI in a real browser (Debian's chromium, driven by playwright-core)
 * against `strata up` as a process: the unauthenticated redirect to the login
 * page, a login with the bootstrap password (the cookie session), an app
 * created from JSON reaching Running with its task, an API error shown with
 * its code, scale, a task's log, the VIP with its backends, nodes, a secret
 * shown only when asked, IAM users, destroy with confirmation, log out (the
 * session is revoked); then the same UI through the HTTPS gateway.
 *
 * Skipped (with the reason) only when /usr/bin/chromium is absent
 * (scripts/install-test-deps.sh installs it).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
// Chromium's own background connections are refused on closed networks.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

async function launch(t: { teardown(fn: () => Promise<void>): void }): Promise<Browser> {
  // playwright-core gives each launch a fresh, empty profile (a temp --user-data-dir it removes on close).
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  return browser;
}

/** Poll a locator's text until it matches (the pages refresh on events and timers; no timing assumed). */
async function waitForText(locator: Locator, pattern: RegExp, timeoutMs = 90_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = (await locator.count()) > 0 ? ((await locator.first().textContent()) ?? '') : '';
    if (pattern.test(last)) return last;
    if (Date.now() > deadline) {
      const main = ((await locator.page().locator('main').textContent()) ?? '').slice(0, 1500);
      throw new Error(`waited for ${pattern} in ${String(locator)}; last text: ${JSON.stringify(last.slice(0, 500))}; the page: ${JSON.stringify(main)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function logIn(page: Page, uid: string, password: string): Promise<void> {
  await page.getByLabel('User').fill(uid);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Services', level: 1 }).waitFor();
}

const APP_ID = '/uitest/web';

(haveChromium ? test : test.skip)('web UI: login redirect, services, tasks, log, VIP, nodes, secrets, IAM, destroy, logout; also through the gateway', async (t) => {
  const { dataDir, apiUrl, up, env } = await startUpLoggedIn(t, 'up-ui');
  // `strata ui` prints where the UI is (the address the CLI logged in to).
  const shown = await runStrata(['ui'], { env });
  t.is(shown.code, 0, shown.output);
  t.is(shown.output.split('\n')[0], `${apiUrl}/`);
  const { uid, password } = JSON.parse(await readFile(join(dataDir, 'bootstrap-credentials.json'), 'utf8')) as { uid: string; password: string };
  const browser = await launch(t);
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  // Unauthenticated: the services page's first API call answers 401 and the UI shows the login page.
  await page.goto(`${apiUrl}/`);
  await page.getByRole('heading', { name: 'Log in to Strata' }).waitFor();
  t.regex(page.url(), /#\/login$/);

  // A wrong password: the API's code and message are shown.
  await page.getByLabel('User').fill(uid);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Log in' }).click();
  t.regex(await waitForText(page.getByRole('alert'), /AUTH_LOGIN_FAILED/), /AUTH_LOGIN_FAILED/);

  await logIn(page, uid, password);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'dcos-acs-auth-cookie');
  t.truthy(session, 'the login set the session cookie');
  t.true(session!.httpOnly, 'HttpOnly');
  t.is(session!.sameSite, 'Strict');

  // A bad definition: the API's validation error with its code and the wrong field.
  await page.getByRole('button', { name: 'Create service' }).first().click();
  await page.getByLabel('App definition (Marathon JSON)').fill(JSON.stringify({ id: '/uitest/bad', cmd: 'true', instances: -1 }));
  await page.getByRole('button', { name: 'Create service' }).last().click();
  const invalid = await waitForText(page.getByRole('alert'), /API_BAD_REQUEST/);
  t.regex(invalid, /\/instances/);

  // Create from JSON; it reaches Running with its task.
  const app = {
    id: APP_ID, cmd: 'echo "hello from the ui $MESOS_TASK_ID"; echo "to stderr" >&2; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done', instances: 1, cpus: 0.05, mem: 32,
    portDefinitions: [{ port: 0, name: 'http', labels: { VIP_0: `${APP_ID}:80` } }], taskKillGracePeriodSeconds: 1,
  };
  await page.getByLabel('App definition (Marathon JSON)').fill(JSON.stringify(app));
  await page.getByRole('button', { name: 'Create service' }).last().click();
  await waitForText(page.getByRole('status'), /Created \/uitest\/web/);
  const row = page.getByRole('table', { name: 'Apps' }).getByRole('row').filter({ hasText: APP_ID });
  await waitForText(row, /Running.*1 \/ 1/);

  // Its page: the task RUNNING, with host and ports.
  await page.getByRole('link', { name: APP_ID, exact: true }).click();
  await page.getByRole('heading', { name: APP_ID }).waitFor();
  const taskRow = page.getByRole('table', { name: 'Tasks' }).getByRole('row').filter({ hasText: 'RUNNING' });
  const taskText = await waitForText(taskRow, /uitest_web\.instance-\S+RUNNING/);
  const taskId = /(uitest_web\.instance-[^\s]+?\._app\.\d+)/.exec(taskText)?.[1];
  t.truthy(taskId, taskText);

  // The task's log.
  await taskRow.first().getByRole('link', { name: /^Log of / }).click();
  await page.getByRole('heading', { name: 'Task log' }).waitFor();
  // All lines so far, however long the box took to get here.
  await page.getByLabel('Lines').fill('10000');
  await page.getByRole('button', { name: 'Show' }).click();
  await waitForText(page.getByRole('log'), new RegExp(`hello from the ui ${taskId!.replace(/\./g, '\\.')}`));
  await page.getByLabel('Stream').selectOption('stderr');
  await waitForText(page.getByRole('log'), /to stderr/);
  // Followed: lines the task writes later arrive on the open page.
  await page.getByLabel('Stream').selectOption('stdout');
  await page.getByLabel('Lines').fill('1');
  await page.getByLabel('Follow').check();
  const first = Number(/tick (\d+)/.exec(await waitForText(page.getByRole('log'), /tick \d+/))![1]);
  await waitForText(page.getByRole('log'), new RegExp(`tick ${first + 3}\\b`));

  // Scale to 2 from the list (a dialog asks for the number).
  await page.getByRole('link', { name: 'Services', exact: true }).click();
  await page.getByRole('button', { name: `Scale ${APP_ID}` }).click();
  await page.getByLabel('Instances').fill('2');
  await page.getByRole('button', { name: 'OK' }).click();
  await waitForText(page.getByRole('status'), /Scaling \/uitest\/web to 2/);
  await waitForText(row, /Running.*2 \/ 2/);

  // The VIP with its two backends.
  await page.getByRole('link', { name: 'Networking' }).click();
  const vipRow = page.getByRole('table', { name: 'VIPs' }).getByRole('row').filter({ hasText: APP_ID });
  const vip = await waitForText(vipRow, /11\.\d+\.\d+\.\d+.*80\/tcp.*:\d+ → 80 \(running.*:\d+ → 80 \(running/);
  t.regex(vip, /uitest\/web/);
  await waitForText(page.getByRole('table', { name: 'Overlay networks' }), /dcos/);

  // Nodes: the agent with its resources and the two tasks.
  await page.getByRole('link', { name: 'Nodes' }).click();
  await waitForText(page.getByRole('table', { name: 'Agents' }).getByRole('row').nth(1), /healthy2/);

  // Secrets: created, listed, the value only when asked.
  await page.getByRole('link', { name: 'Secrets' }).click();
  await page.getByLabel('Path', { exact: true }).fill('uitest/db-password');
  await page.getByLabel('Value', { exact: true }).fill('s3cr3t-value');
  await page.getByRole('button', { name: 'Create secret' }).click();
  const secretRow = page.getByRole('table', { name: /Secrets/ }).getByRole('row').filter({ hasText: 'uitest/db-password' });
  await waitForText(secretRow, /uitest\/db-password/);
  t.false((await page.content()).includes('s3cr3t-value'), 'the value is not on the page until asked');
  await page.getByRole('button', { name: 'Show the value of uitest/db-password' }).click();
  await waitForText(secretRow, /s3cr3t-value/);

  // IAM: the bootstrap superuser.
  await page.getByRole('link', { name: 'IAM' }).click();
  await waitForText(page.getByRole('table', { name: 'Users and service accounts' }), new RegExp(uid));

  // Destroy, confirmed in a dialog.
  await page.getByRole('link', { name: 'Services', exact: true }).click();
  await page.getByRole('button', { name: `Destroy ${APP_ID}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Destroy' }).click();
  await waitForText(page.getByRole('status'), /Destroying \/uitest\/web/);
  await waitForText(page.getByRole('table', { name: 'Apps' }), /no services yet/);

  // Log out: the token is revoked, so the old cookie no longer opens a page.
  const before = (await page.context().cookies()).find((c) => c.name === 'dcos-acs-auth-cookie')!.value;
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Strata' }).waitFor();
  const revoked = await fetch(`${apiUrl}/v2/apps`, { headers: { authorization: `token=${before}` } });
  t.is(revoked.status, 401, 'the logged-out token is revoked');
  await page.goto(`${apiUrl}/#/nodes`);
  await page.getByRole('heading', { name: 'Log in to Strata' }).waitFor();

  // The same UI through the HTTPS gateway (its certificate is from the cluster CA; the browser is told to accept it).
  const [, gatewayUrl] = await up.waitFor(/gateway: (https:\/\/127\.0\.0\.1:\d+) \(HTTPS/);
  const secure = await browser.newContext({ ignoreHTTPSErrors: true });
  const gw = await secure.newPage();
  gw.on('pageerror', (err) => pageErrors.push(err.message));
  await gw.goto(`${gatewayUrl}/#/services`);
  await gw.getByRole('heading', { name: 'Log in to Strata' }).waitFor();
  await logIn(gw, uid, password);
  const gwCookie = (await secure.cookies()).find((c) => c.name === 'dcos-acs-auth-cookie');
  t.true(gwCookie?.secure === true && gwCookie.httpOnly, 'through the gateway the cookie is Secure and HttpOnly');
  await gw.getByRole('link', { name: 'Nodes' }).click();
  await waitForText(gw.getByRole('table', { name: 'Agents' }), /healthy/);
  await secure.close();

  t.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
});
