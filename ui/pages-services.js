// @ts-check
/**
 * Services (Marathon apps and groups), one service with its tasks, and a
 * task's log. Lists refresh on Marathon's event stream and on a timer
 * (live.js); every action shows the API's error code and message.
 */
import { api, idPath, streamText } from './api.js';
import { h, field, replace, table } from './dom.js';
import { appHref, confirmDialog, errorBox, errorRegion, fmt, notice, numberDialog, section } from './common.js';
import { live } from './live.js';

/**
 * What a list row says about an app.
 * @param {any} app a Marathon app with its counts and deployments
 */
export function appStatus(app) {
  if (app.deployments.length > 0) return 'Deploying';
  if (app.instances === 0) return 'Suspended';
  if (app.tasksRunning >= app.instances) return 'Running';
  return 'Waiting';
}

/**
 * The actions on one app: scale, restart, destroy (confirmed). `done(text)`
 * reports success, `fail(err)` an error, `after()` runs once the API answered.
 * @param {any} app
 * @param {{done(text: string): void, fail(err: unknown): void, after(): void}} report
 */
function appActions(app, report) {
  const id = app.id;
  const run = async (/** @type {() => Promise<string>} */ fn) => {
    try {
      report.done(await fn());
    } catch (err) {
      report.fail(err);
    } finally {
      report.after();
    }
  };
  return h('span', { class: 'actions' },
    h('button', { type: 'button', 'aria-label': `Scale ${id}`, onclick: async () => {
      const n = await numberDialog(`Scale ${id}`, 'Instances', app.instances);
      if (n !== undefined) await run(async () => { await api('PUT', idPath('/v2/apps', id), { body: { instances: n } }); return `Scaling ${id} to ${n} instances`; });
    } }, 'Scale'),
    ' ',
    h('button', { type: 'button', 'aria-label': `Restart ${id}`, onclick: async () => {
      if (await confirmDialog('Restart service', `Replace every task of ${id}?`, 'Restart')) {
        await run(async () => { await api('POST', `${idPath('/v2/apps', id)}/restart`); return `Restarting ${id}`; });
      }
    } }, 'Restart'),
    ' ',
    h('button', { type: 'button', class: 'danger', 'aria-label': `Destroy ${id}`, onclick: async () => {
      if (await confirmDialog('Destroy service', `Destroy ${id} and kill all its tasks? This cannot be undone.`, 'Destroy')) {
        await run(async () => { await api('DELETE', idPath('/v2/apps', id)); return `Destroying ${id}`; });
      }
    } }, 'Destroy'),
  );
}

/**
 * Every group below the root, flattened: [id, number of apps directly in it].
 * @param {any} group
 * @returns {[string, number][]}
 */
function flattenGroups(group) {
  /** @type {[string, number][]} */
  const out = [];
  for (const g of group.groups ?? []) {
    out.push([g.id, (g.apps ?? []).length]);
    out.push(...flattenGroups(g));
  }
  return out;
}

/** @param {HTMLElement} main */
export function servicesPage(main) {
  const errors = errorRegion();
  const status = h('div');
  const apps = h('div');
  const groups = h('div');
  const deployments = h('div');
  const definition = h('textarea', {
    id: 'app-definition', rows: 8, spellcheck: 'false', required: true,
    placeholder: '{"id": "/shop/web", "cmd": "python3 -m http.server $PORT0", "instances": 1, "cpus": 0.1, "mem": 64}',
  });
  const createForm = h('form', { 'aria-label': 'Create a service from JSON', onsubmit: create, hidden: true },
    field('App definition (Marathon JSON)', definition),
    h('button', { type: 'submit' }, 'Create service'), ' ',
    h('button', { type: 'button', onclick: () => { createForm.hidden = true; } }, 'Cancel'));
  const report = {
    /** @param {string} text */
    done: (text) => { errors.clear(); replace(status, notice(text)); },
    /** @param {unknown} err */
    fail: (err) => errors.show(err),
    after: () => poll.now(),
  };

  /** @param {Event} event */
  async function create(event) {
    event.preventDefault();
    errors.clear();
    let body;
    try {
      body = JSON.parse(definition.value);
    } catch (err) {
      errors.show(new Error(`the definition is not valid JSON: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    try {
      const created = await api('POST', '/v2/apps', { body });
      replace(status, notice(`Created ${created.id}; deploying`));
      definition.value = '';
      createForm.hidden = true;
      poll.now();
    } catch (err) {
      errors.show(err);
    }
  }

  replace(main,
    h('div', { class: 'title' }, h('h1', {}, 'Services'),
      h('button', { type: 'button', onclick: () => { createForm.hidden = false; definition.focus(); } }, 'Create service')),
    createForm, errors.el, status, apps, deployments, groups);

  const poll = live(async () => {
    const [a, g, d] = await Promise.allSettled([api('GET', '/v2/apps'), api('GET', '/v2/groups'), api('GET', '/v2/deployments')]);
    const aFailed = section(apps, a, (/** @type {any} */ x_) => table('Apps', ['ID', 'Status', 'Running', 'Healthy', 'CPUs', 'Memory (MiB)', 'Actions'], x_.apps.map((/** @type {any} */ app) => [
        h('a', { href: appHref(app.id) }, app.id),
        h('span', { class: `status status-${appStatus(app).toLowerCase()}` }, appStatus(app)),
        `${app.tasksRunning} / ${app.instances}`,
        (app.healthChecks ?? []).length === 0 ? '—' : `${app.tasksHealthy} / ${app.instances}`,
        fmt(app.cpus), fmt(app.mem),
        appActions(app, report),
      ]), 'no services yet: create one from its JSON'));
    const dFailed = section(deployments, d, (/** @type {any} */ x_) => table('Deployments in progress', ['ID', 'Apps', 'Step', 'Waiting for'], x_.map((/** @type {any} */ x) => [
        h('code', {}, x.id), x.affectedApps.join(', '), `${x.currentStep} / ${x.totalSteps}`,
        (x.waitReasons ?? []).map((/** @type {any} */ w) => w.message).join('; ') || '—',
      ]), 'none'));
    const gFailed = section(groups, g, (/** @type {any} */ x_) => table('Groups', ['ID', 'Apps directly in it'], flattenGroups(x_).map(([id, n]) => [h('code', {}, id), String(n)]), 'no groups'));
    const failed = aFailed ?? dFailed ?? gFailed;
    if (failed !== undefined) throw failed;
  }, { events: true, intervalMs: 10_000 });
  return () => poll.stop();
}

/**
 * Health of a task from its check results.
 * @param {any} task
 */
function taskHealth(task) {
  const results = task.healthCheckResults ?? [];
  if (results.length === 0) return '—';
  return results.every((/** @type {any} */ r) => r.alive) ? 'healthy' : 'unhealthy';
}

/**
 * @param {HTMLElement} main
 * @param {string} id the app id
 */
export function servicePage(main, id) {
  const errors = errorRegion();
  const status = h('div');
  const summary = h('div');
  const tasks = h('div');
  const definition = h('pre', { class: 'json' });
  const report = {
    /** @param {string} text */
    done: (text) => { errors.clear(); replace(status, notice(text)); },
    /** @param {unknown} err */
    fail: (err) => errors.show(err),
    after: () => poll.now(),
  };
  replace(main, h('p', {}, h('a', { href: '#/services' }, '← Services')), h('h1', {}, id), errors.el, status, summary, tasks,
    h('details', {}, h('summary', {}, 'Definition (JSON)'), definition));

  const poll = live(async () => {
    let app;
    try {
      ({ app } = await api('GET', idPath('/v2/apps', id)));
    } catch (err) {
      replace(summary, errorBox(err));
      replace(tasks);
      throw err;
    }
    replace(summary, h('dl', { class: 'summary' },
      h('dt', {}, 'Status'), h('dd', {}, appStatus(app)),
      h('dt', {}, 'Instances'), h('dd', {}, `${app.tasksRunning} running of ${app.instances}`),
      h('dt', {}, 'Healthy'), h('dd', {}, (app.healthChecks ?? []).length === 0 ? 'no health checks' : `${app.tasksHealthy} of ${app.instances}`),
      h('dt', {}, 'Resources'), h('dd', {}, `${fmt(app.cpus)} CPUs, ${fmt(app.mem)} MiB per instance`),
      h('dt', {}, 'Command'), h('dd', {}, h('code', {}, app.cmd ?? '—')),
      h('dt', {}, 'Version'), h('dd', {}, app.version ?? ''),
    ), appActions(app, report));
    definition.textContent = JSON.stringify(app, null, 2);
    const list = await api('GET', `${idPath('/v2/apps', id)}/tasks`);
    replace(tasks, table('Tasks', ['ID', 'State', 'Host', 'Ports', 'Container IP', 'Health', 'Log'], list.tasks.map((/** @type {any} */ t) => [
      h('code', {}, t.id), t.state.replace(/^TASK_/, ''), t.host, (t.ports ?? []).join(', ') || '—',
      (t.ipAddresses ?? []).map((/** @type {any} */ a) => a.ipAddress).join(', ') || '—', taskHealth(t),
      h('a', { href: `#/tasks/${encodeURIComponent(t.id)}/logs`, 'aria-label': `Log of ${t.id}` }, 'Log'),
    ]), 'no tasks'));
  }, { events: true, intervalMs: 10_000 });
  return () => poll.stop();
}

/**
 * A task's stdout or stderr (`GET /v1/tasks/{id}/logs`): the last lines,
 * or followed as the task writes.
 * @param {HTMLElement} main
 * @param {string} taskId
 */
export function taskLogPage(main, taskId) {
  const errors = errorRegion();
  const stream = h('select', { id: 'log-stream' }, h('option', { value: 'stdout' }, 'stdout'), h('option', { value: 'stderr' }, 'stderr'));
  const lines = h('input', { id: 'log-lines', type: 'number', min: 1, max: 10000, value: 100 });
  const follow = h('input', { id: 'log-follow', type: 'checkbox' });
  const output = h('pre', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': `Log of ${taskId}`, tabindex: 0 });
  const appId = taskId.split('.instance-')[0]?.replaceAll('_', '/') ?? '';
  /** @type {AbortController | undefined} */
  let running;

  async function load() {
    running?.abort();
    const controller = new AbortController();
    running = controller;
    errors.clear();
    output.textContent = '';
    const q = new URLSearchParams({ stream: stream.value, lines: lines.value || '100' });
    const path = `/v1/tasks/${encodeURIComponent(taskId)}/logs`;
    try {
      if (follow.checked) {
        q.set('follow', 'true');
        await streamText(`${path}?${q}`, controller.signal, (text) => {
          output.append(text);
          output.scrollTop = output.scrollHeight;
        });
      } else {
        output.textContent = await api('GET', `${path}?${q}`, { text: true, signal: controller.signal });
      }
      if (output.textContent === '') output.textContent = '(empty)';
    } catch (err) {
      if (!(err instanceof DOMException && err.name === 'AbortError')) errors.show(err);
    }
  }

  replace(main,
    h('p', {}, h('a', { href: `#/services/${encodeURIComponent(`/${appId}`)}` }, `← ${appId ? `/${appId}` : 'Service'}`)),
    h('h1', {}, 'Task log'), h('p', {}, h('code', {}, taskId)),
    h('form', { class: 'inline', 'aria-label': 'Log options', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); void load(); } },
      field('Stream', stream), field('Lines', lines),
      h('div', { class: 'field' }, follow, h('label', { for: follow.id }, 'Follow')),
      h('button', { type: 'submit' }, 'Show')),
    errors.el, output);
  stream.addEventListener('change', () => void load());
  follow.addEventListener('change', () => void load());
  void load();
  return () => running?.abort();
}
