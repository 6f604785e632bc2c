// @ts-check
/** Log in, secrets, IAM users and groups. */
import { api } from './api.js';
import { h, field, replace, table } from './dom.js';
import { confirmDialog, errorBox, errorRegion, notice, section } from './common.js';
import { live } from './live.js';

const USER_KEY = 'strata.uid';

/** Who logged in with a password here (display only: the session itself is the HttpOnly cookie). */
export function currentUser() {
  return localStorage.getItem(USER_KEY) ?? undefined;
}

export function forgetUser() {
  localStorage.removeItem(USER_KEY);
}

/**
 * The login page: uid and password (`POST /acs/api/v1/auth/login`, which
 * sets the session cookie), and a link per external provider from
 * `GET /acs/api/v1/auth/providers` (each starts the provider's browser flow
 * and comes back to `/`).
 * @param {HTMLElement} main
 */
export function loginPage(main) {
  const errors = errorRegion();
  const uid = h('input', { id: 'login-uid', name: 'uid', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const providers = h('div', { class: 'providers' });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const form = h('form', { 'aria-labelledby': 'login-title', onsubmit: onSubmit },
    field('User', uid), field('Password', password), submit);

  /** @param {Event} event */
  async function onSubmit(event) {
    event.preventDefault();
    errors.clear();
    submit.disabled = true;
    try {
      await api('POST', '/acs/api/v1/auth/login', { body: { uid: uid.value, password: password.value } });
      localStorage.setItem(USER_KEY, uid.value);
      const next = sessionStorage.getItem('strata.next');
      sessionStorage.removeItem('strata.next');
      location.hash = `#${next && next !== '/login' ? next : '/services'}`;
    } catch (err) {
      errors.show(err);
      password.select();
    } finally {
      submit.disabled = false;
    }
  }

  replace(main, h('section', { class: 'login' },
    h('h1', { id: 'login-title' }, 'Log in to Strata'), errors.el, form, providers));
  uid.focus();

  api('GET', '/acs/api/v1/auth/providers').then(
    (/** @type {Record<string, any>} */ all) => {
      const external = Object.entries(all).filter(([id]) => id !== 'dcos-users');
      if (external.length === 0) return;
      replace(providers, h('h2', {}, 'Or log in with'), h('ul', {}, external.map(([id, p]) => {
        const start = String(p?.config?.start_flow_url ?? '');
        const href = `${start}${start.includes('?') ? '&' : '?'}target=${encodeURIComponent('/')}`;
        return h('li', {}, h('a', { href, class: 'provider' }, p?.description ? `${p.description} (${id})` : id));
      })));
    },
    (err) => replace(providers, errorBox(err)),
  );
}

/**
 * Secrets (store `default`): the paths (`?list=true`), create, show one
 * value only when asked, delete with confirmation.
 * @param {HTMLElement} main
 */
export function secretsPage(main) {
  const errors = errorRegion();
  const status = h('div');
  const list = h('div');
  const path = h('input', { id: 'secret-path', required: true, placeholder: 'shop/db-password', pattern: '[A-Za-z0-9_./-]+' });
  const value = h('textarea', { id: 'secret-value', required: true, rows: 3, autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { 'aria-label': 'Create a secret', onsubmit: create },
    h('h2', {}, 'Create a secret'), field('Path', path), field('Value', value), h('button', { type: 'submit' }, 'Create secret'));

  /** @param {string} p */
  const secretUrl = (p) => `/secrets/v1/secret/default/${p.split('/').filter((x) => x !== '').map(encodeURIComponent).join('/')}`;

  /** @param {Event} event */
  async function create(event) {
    event.preventDefault();
    errors.clear();
    try {
      await api('PUT', secretUrl(path.value), { body: { value: value.value } });
      replace(status, notice(`Created secret ${path.value}`));
      value.value = '';
      path.value = '';
      poll.now();
    } catch (err) {
      errors.show(err);
    }
  }

  /** @param {string} p @param {HTMLElement} cell */
  async function reveal(p, cell) {
    errors.clear();
    try {
      const secret = await api('GET', secretUrl(p));
      replace(cell, h('code', { class: 'secret-value' }, String(secret.value)), ' ', h('button', { type: 'button', onclick: () => replace(cell, showButton(p, cell)) }, 'Hide'));
    } catch (err) {
      errors.show(err);
    }
  }

  /** @param {string} p @param {HTMLElement} cell */
  const showButton = (p, cell) => h('button', { type: 'button', 'aria-label': `Show the value of ${p}`, onclick: () => reveal(p, cell) }, 'Show value');

  /** @param {string} p */
  async function remove(p) {
    if (!(await confirmDialog('Delete secret', `Delete the secret ${p}? Apps that use it fail to launch new tasks.`, 'Delete'))) return;
    errors.clear();
    try {
      await api('DELETE', secretUrl(p));
      replace(status, notice(`Deleted secret ${p}`));
      poll.now();
    } catch (err) {
      errors.show(err);
    }
  }

  replace(main, h('h1', {}, 'Secrets'), h('p', {}, 'Values are encrypted at rest and shown only when you ask.'), errors.el, status, list, form);
  const poll = live(async () => {
    try {
      const { array } = await api('GET', '/secrets/v1/secret/default/?list=true');
      /** @type {string[]} */
      const paths = array;
      replace(list, table('Secrets in store default', ['Path', 'Value', 'Actions'], paths.map((p) => {
        const cell = h('span');
        cell.append(showButton(p, cell));
        return [h('code', {}, p), cell, h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${p}`, onclick: () => remove(p) }, 'Delete')];
      }), 'no secrets'));
    } catch (err) {
      replace(list, errorBox(err));
      throw err;
    }
  }, { intervalMs: 15_000 });
  return () => poll.stop();
}

/**
 * IAM: users (and service accounts) and groups.
 * @param {HTMLElement} main
 */
export function iamPage(main) {
  const users = h('div');
  const groups = h('div');
  replace(main, h('h1', {}, 'Identity and access'), users, groups);
  const poll = live(async () => {
    const [u, g] = await Promise.allSettled([api('GET', '/acs/api/v1/users'), api('GET', '/acs/api/v1/groups')]);
    const uFailed = section(users, u, (/** @type {any} */ x_) => table('Users and service accounts', ['UID', 'Description', 'Kind', 'Login', 'State'], x_.array.map((/** @type {any} */ x) => [
        h('code', {}, x.uid), x.description ?? '', x.is_service ? 'service account' : 'user',
        x.is_remote ? `${x.provider_type} ${x.provider_id}` : x.is_service ? 'login token' : 'password', x.disabled ? 'disabled' : 'enabled',
      ]), 'no users'));
    const gFailed = section(groups, g, (/** @type {any} */ x_) => table('Groups', ['GID', 'Description'], x_.array.map((/** @type {any} */ x) => [h('code', {}, x.gid), x.description ?? '']), 'no groups'));
    const failed = uFailed ?? gFailed;
    if (failed !== undefined) throw failed;
  }, { intervalMs: 30_000 });
  return () => poll.stop();
}
