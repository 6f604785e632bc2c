import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchFromMaster, MasterUnreachableError, type MasterChoice } from './masters.ts';

/** Records which masters were reported failed; moves like the agent's MasterUrls. */
class Recorder implements MasterChoice {
  readonly failures: string[] = [];
  #i = 0;
  readonly #urls: readonly string[];
  constructor(urls: readonly string[]) {
    this.#urls = urls;
  }
  get current(): string {
    return this.#urls[this.#i]!;
  }
  failed(url: string): void {
    this.failures.push(url);
    if (url === this.current) this.#i = (this.#i + 1) % this.#urls.length;
  }
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function closedPortUrl(): Promise<string> {
  const { url, server } = await serve(() => {});
  await new Promise((r) => server.close(r));
  return url;
}

test('a master that is down, answers 5xx or does not answer in time is reported and the next one is used; a 4xx or an abort moves nothing', async (t) => {
  const ok = await serve((req, res) => res.end(req.url));
  const unavailable = await serve((_req, res) => {
    res.statusCode = 503;
    res.end('no store');
  });
  const forbidden = await serve((_req, res) => {
    res.statusCode = 403;
    res.end('no');
  });
  const silent = await serve(() => {}); // accepts, never answers
  t.teardown(() => {
    for (const s of [ok, unavailable, forbidden, silent]) s.server.closeAllConnections();
    for (const s of [ok, unavailable, forbidden, silent]) s.server.close();
  });
  const down = await closedPortUrl();

  const masters = new Recorder([down, unavailable.url, silent.url, ok.url]);
  const refused = await t.throwsAsync(fetchFromMaster(masters, '/x'), { instanceOf: MasterUnreachableError });
  t.true(refused.message.includes(down) && refused.message.includes('/x'), refused.message);
  t.is((await fetchFromMaster(masters, '/x')).status, 503);
  await t.throwsAsync(fetchFromMaster(masters, '/x', { timeoutMs: 200 }), { instanceOf: MasterUnreachableError });
  const res = await fetchFromMaster(masters, '/y?z=1');
  t.is(await res.text(), '/y?z=1');
  t.deepEqual(masters.failures, [down, unavailable.url, silent.url]);

  const strict = new Recorder([forbidden.url, ok.url]);
  t.is((await fetchFromMaster(strict, '/x')).status, 403);
  const stop = new AbortController();
  const stopping = new Recorder([silent.url, ok.url]);
  const pending = fetchFromMaster(stopping, '/x', { signal: stop.signal });
  stop.abort();
  await t.throwsAsync(pending, { name: 'AbortError' });
  t.deepEqual(strict.failures, []);
  t.deepEqual(stopping.failures, []);
});
