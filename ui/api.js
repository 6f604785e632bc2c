// @ts-check
/**
 * The API, from the page's own origin: the master that served it, or the
 * gateway in front of it (the same paths either way). The session is the
 * `dcos-acs-auth-cookie` cookie the login sets (HttpOnly: no script reads
 * it); a state change carries the browser's `Origin`, which the API (and
 * the gateway) check against the host (same-origin CSRF rule).
 *
 * Every error answer is thrown as an {@link ApiError} with the API's stable
 * `code`, its message and field details; a 401 also tells the app to show
 * the login page.
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {unknown} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** @type {Set<() => void>} */
const unauthenticatedListeners = new Set();

/** Called whenever the API answers 401 (no session, or it ended). @param {() => void} fn */
export function onUnauthenticated(fn) {
  unauthenticatedListeners.add(fn);
}

/**
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
async function errorOf(res) {
  const text = await res.text();
  /** @type {{code?: unknown, message?: unknown, details?: unknown}} */
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text.slice(0, 500) };
  }
  const code = typeof body.code === 'string' ? body.code : `HTTP_${res.status}`;
  const message = typeof body.message === 'string' && body.message !== '' ? body.message : res.statusText;
  return new ApiError(res.status, code, message, body.details);
}

/**
 * One request. `body` is sent as JSON; the answer is parsed as JSON (or
 * `undefined` for 204, or text when `text` is set).
 * @param {string} method
 * @param {string} path
 * @param {{body?: unknown, text?: boolean, signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
export async function api(method, path, options = {}) {
  /** @type {RequestInit} */
  const init = { method, credentials: 'same-origin', headers: { accept: options.text ? 'text/plain' : 'application/json' } };
  if (options.signal) init.signal = options.signal;
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `the cluster cannot be reached (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401) for (const fn of unauthenticatedListeners) fn();
    throw error;
  }
  if (res.status === 204) return undefined;
  if (options.text) return res.text();
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') ? res.json() : res.text();
}

/**
 * A Marathon path id (`/shop/web`) as a URL path under a prefix, each element encoded.
 * @param {string} prefix e.g. `/v2/apps`
 * @param {string} id
 */
export function idPath(prefix, id) {
  return `${prefix}/${id.split('/').filter((x) => x !== '').map(encodeURIComponent).join('/')}`;
}

/**
 * Read a streamed text answer (a followed task log) chunk by chunk.
 * @param {string} path
 * @param {AbortSignal} signal
 * @param {(text: string) => void} onText
 */
export async function streamText(path, signal, onText) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'text/plain' }, signal });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') return;
    throw new ApiError(0, 'NETWORK', `the cluster cannot be reached (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401) for (const fn of unauthenticatedListeners) fn();
    throw error;
  }
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onText(value);
    }
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') return;
    throw err;
  }
}
