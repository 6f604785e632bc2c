// @ts-check
/**
 * Live updates. A page registers a `load` function; it runs at once, again
 * whenever Marathon's event stream (`GET /v2/events`, server-sent events)
 * reports a change (debounced), and on a timer: every `intervalMs` while
 * all is well (a safety net when the stream is down or the page shows data
 * the stream does not cover), doubling after each failure up to
 * {@link MAX_BACKOFF_MS} and back to `intervalMs` after a success.
 */

export const MAX_BACKOFF_MS = 60_000;
const DEBOUNCE_MS = 250;

/** Marathon event types that change what the pages show. */
const EVENT_TYPES = [
  'api_post_event', 'app_terminated_event', 'status_update_event', 'instance_changed_event', 'health_status_changed_event',
  'deployment_info', 'deployment_step_success', 'deployment_success', 'deployment_failed', 'deployment_step_failure',
];

/** @type {Set<() => void>} */
const subscribers = new Set();
/** @type {EventSource | undefined} */
let source;
/** Whether the stream is attached (for the status line). */
let streamUp = false;
/** @type {Set<(up: boolean) => void>} */
const streamListeners = new Set();

/** @param {boolean} up */
function setStreamUp(up) {
  if (up === streamUp) return;
  streamUp = up;
  for (const fn of streamListeners) fn(up);
}

/** Tell `fn` whether the event stream is attached (now and on every change). @param {(up: boolean) => void} fn */
export function onStreamState(fn) {
  streamListeners.add(fn);
  fn(streamUp);
  return () => streamListeners.delete(fn);
}

function openStream() {
  if (source || typeof EventSource === 'undefined') return;
  const es = new EventSource('/v2/events');
  source = es;
  es.addEventListener('event_stream_attached', () => setStreamUp(true));
  for (const type of EVENT_TYPES) es.addEventListener(type, () => { for (const fn of subscribers) fn(); });
  es.onerror = () => {
    setStreamUp(false);
    // EventSource retries by itself while CONNECTING; CLOSED means it gave up (401, 405): the timers carry on alone.
    if (es.readyState === EventSource.CLOSED) {
      source = undefined;
      setTimeout(() => { if (subscribers.size > 0) openStream(); }, MAX_BACKOFF_MS);
    }
  };
}

function closeStreamIfUnused() {
  if (subscribers.size > 0 || !source) return;
  source.close();
  source = undefined;
  setStreamUp(false);
}

/** Whether the current page follows the event stream at all. */
export function streamWanted() {
  return subscribers.size > 0;
}

/**
 * @param {() => Promise<void>} load the page's refresh; a rejection counts as a failure
 * @param {{intervalMs?: number, events?: boolean}} [options] `events`: also refresh on Marathon events
 * @returns {{stop(): void, now(): void}}
 */
export function live(load, options = {}) {
  const intervalMs = options.intervalMs ?? 5_000;
  let delayMs = intervalMs;
  let stopped = false;
  let running = false;
  let again = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let debounce;

  const run = async () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    try {
      await load();
      delayMs = intervalMs;
    } catch {
      delayMs = Math.min(MAX_BACKOFF_MS, delayMs * 2);
    } finally {
      running = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      void run();
      return;
    }
    timer = setTimeout(run, delayMs);
  };

  const onEvent = () => {
    clearTimeout(debounce);
    debounce = setTimeout(run, DEBOUNCE_MS);
  };
  if (options.events) {
    subscribers.add(onEvent);
    openStream();
  }
  void run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(debounce);
      subscribers.delete(onEvent);
      closeStreamIfUnused();
    },
    now() {
      void run();
    },
  };
}
