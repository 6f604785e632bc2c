// @ts-check
/**
 * The web UI's shell: the navigation, the session line, and a hash router
 * (`#/services`, `#/services/<app id>`, `#/tasks/<task id>/logs`, `#/nodes`,
 * `#/networking`, `#/secrets`, `#/iam`, `#/login`), so the master serves
 * one page and every link works through the gateway too. A page is a
 * function that fills `main` and returns its cleanup (stopping its live
 * updates). Any 401 from the API shows the login page, then comes back.
 */
import { api, onUnauthenticated } from './api.js';
import { h, replace } from './dom.js';
import { onStreamState, streamWanted } from './live.js';
import { loginPage, iamPage, secretsPage, currentUser, forgetUser } from './pages-security.js';
import { nodesPage, networkingPage } from './pages-cluster.js';
import { servicesPage, servicePage, taskLogPage } from './pages-services.js';

/**
 * @typedef {(main: HTMLElement, param: string) => (() => void) | void} Page
 */

/** @type {[RegExp, Page, string][]} route pattern, page, navigation section */
const ROUTES = [
  [/^\/login$/, loginPage, ''],
  [/^\/services$/, servicesPage, 'services'],
  [/^\/services\/(.+)$/, servicePage, 'services'],
  [/^\/tasks\/(.+)\/logs$/, taskLogPage, 'services'],
  [/^\/nodes$/, nodesPage, 'nodes'],
  [/^\/networking$/, networkingPage, 'networking'],
  [/^\/secrets$/, secretsPage, 'secrets'],
  [/^\/iam$/, iamPage, 'iam'],
];

const SECTIONS = [['services', 'Services'], ['nodes', 'Nodes'], ['networking', 'Networking'], ['secrets', 'Secrets'], ['iam', 'IAM']];

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const session = /** @type {HTMLElement} */ (document.getElementById('session'));

/** @type {(() => void) | void} */
let cleanup;

function path() {
  const hash = location.hash.replace(/^#/, '');
  return hash === '' || hash === '/' ? '/services' : hash.split('?')[0] ?? '/services';
}

/** @param {string} section */
function renderNav(section) {
  replace(nav, h('ul', {}, SECTIONS.map(([id, label]) =>
    h('li', {}, h('a', { href: `#/${id}`, 'aria-current': id === section ? 'page' : undefined }, label)))));
  const user = currentUser();
  const live = h('span', { class: 'live' });
  replace(session, section === '' ? null : [live, ' ', user ? h('span', { class: 'user' }, `Signed in as ${user}`) : null, ' ',
    h('button', { type: 'button', onclick: logout }, 'Log out')]);
  stopStreamState?.();
  stopStreamState = section === '' ? undefined : onStreamState((up) => {
    live.hidden = !up && !streamWanted();
    live.textContent = up ? 'live' : 'polling';
    live.title = up ? 'updates arrive from the Marathon event stream' : 'the event stream is not attached: the page polls';
  });
}
/** @type {(() => void) | undefined} */
let stopStreamState;

async function logout() {
  try {
    await api('POST', '/acs/api/v1/auth/logout');
  } finally {
    forgetUser();
    location.hash = '#/login';
  }
}

function route() {
  const p = path();
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  for (const [pattern, page, section] of ROUTES) {
    const m = pattern.exec(p);
    if (!m) continue;
    main.replaceChildren();
    document.title = `Strata — ${section || 'log in'}`;
    cleanup = page(main, decodeURIComponent(m[1] ?? ''));
    renderNav(section);
    // Move focus to the new page (screen readers announce it), unless the page focused a field itself.
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
    return;
  }
  renderNav('');
  replace(main, h('h1', {}, 'Not found'), h('p', {}, `No page at ${p}. `, h('a', { href: '#/services' }, 'Services')));
}

onUnauthenticated(() => {
  const p = path();
  if (p === '/login') return;
  sessionStorage.setItem('strata.next', p);
  location.hash = '#/login';
});

window.addEventListener('hashchange', route);
route();
