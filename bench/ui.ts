/**
 * `npm run bench -- ui`: the web UI's weight and speed.
 *
 * - `weight`: bytes of every file the page loads (index.html, the modules,
 *   the style sheet), raw and gzip-compressed (what a proxy that compresses
 *   would send).
 * - `serve`: requests/s and p50/p99 latency of `GET /ui/app.js` from a test
 *   master's real listener (fastify, the auth hook's public path, ETag),
 *   `--requests` (default 4,000) over `--concurrency` (default 16) keep-alive
 *   connections; the peer is a bare node:http server answering the same bytes
 *   in the same run (the floor), with the ratio.
 * - `render` (when /usr/bin/chromium exists): median time from navigation to
 *   the Services page's Apps table drawn (logged in, 20 apps), over `--loads`
 *   (default 10) reloads in headless chromium.
 *
 * `--parts weight,serve,render` picks parts.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UI_DIR, loadUiFiles } from '../control-plane/api/routes/ui.ts';
import { startTestMaster } from '../test/harness/master.ts';

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** `requests` GETs of `path` over `concurrency` keep-alive connections: {perSecond, p50Ms, p99Ms}. */
async function load(port: number, path: string, requests: number, concurrency: number): Promise<{ perSecond: number; p50Ms: number; p99Ms: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let next = 0;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode}`));
        latencies.push(performance.now() - started);
        resolve();
      });
    });
    req.on('error', reject);
    req.end();
  });
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next += 1;
      await one();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { perSecond: Math.round(requests / seconds), p50Ms: round(percentile(latencies, 0.5)), p99Ms: round(percentile(latencies, 0.99)) };
}

async function weight(): Promise<unknown> {
  const html = await readFile(join(UI_DIR, 'index.html'), 'utf8');
  const files = loadUiFiles(UI_DIR);
  let raw = 0;
  let gzip = 0;
  for (const [, file] of files) {
    raw += file.body.length;
    gzip += gzipSync(file.body).length;
  }
  return { files: files.size, rawBytes: raw, gzipBytes: gzip, thirdPartyRequests: (html.match(/(src|href)="https?:/g) ?? []).length };
}

async function serve(args: string[]): Promise<unknown> {
  const requests = arg(args, 'requests', 4000);
  const concurrency = arg(args, 'concurrency', 16);
  const h = await startTestMaster();
  const body = loadUiFiles(UI_DIR).get('app.js')!.body;
  const peer: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  try {
    const port = Number(new URL(h.master.apiUrl).port);
    const peerPort = (peer.address() as { port: number }).port;
    await load(port, '/ui/app.js', 500, concurrency); // warm-up
    await load(peerPort, '/', 500, concurrency);
    const strata = await load(port, '/ui/app.js', requests, concurrency);
    const bare = await load(peerPort, '/', requests, concurrency);
    return { path: '/ui/app.js', bytes: body.length, requests, concurrency, strata, peer: { what: 'node:http answering the same bytes', ...bare }, ratioPerSecond: Math.round((strata.perSecond / bare.perSecond) * 100) / 100 };
  } finally {
    peer.close();
    await h.close();
  }
}

async function render(args: string[]): Promise<unknown> {
  if (!existsSync('/usr/bin/chromium')) return { skipped: 'no /usr/bin/chromium' };
  const loads = arg(args, 'loads', 10);
  const { chromium } = await import('playwright-core');
  const h = await startTestMaster();
  const token = await h.superuserToken();
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${h.master.apiUrl}/v2/apps`, { method: 'POST', headers: { authorization: `token=${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: `/bench/app-${i}`, cmd: 'sleep 1000', instances: 0, cpus: 0.1, mem: 16 }) });
    if (res.status !== 201) throw new Error(`creating an app: ${res.status} ${await res.text()}`);
  }
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] });
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: 'dcos-acs-auth-cookie', value: token, url: h.master.apiUrl, httpOnly: true, sameSite: 'Strict' }]);
    const page = await context.newPage();
    const times: number[] = [];
    for (let i = 0; i <= loads; i++) {
      await page.goto('about:blank'); // a full load each time, not a same-document hash change
      const started = performance.now();
      await page.goto(`${h.master.apiUrl}/#/services`);
      await page.getByRole('link', { name: '/bench/app-19' }).waitFor();
      if (i > 0) times.push(performance.now() - started); // the first load fills the cache
    }
    times.sort((a, b) => a - b);
    return { loads, apps: 20, medianMs: Math.round(percentile(times, 0.5)), maxMs: Math.round(times[times.length - 1]!) };
  } finally {
    await browser.close();
    await h.close();
  }
}

export async function run(args: string[]): Promise<unknown> {
  const i = args.indexOf('--parts');
  const parts = i >= 0 ? args[i + 1]!.split(',') : ['weight', 'serve', 'render'];
  const out: Record<string, unknown> = { loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100) };
  if (parts.includes('weight')) out['weight'] = await weight();
  if (parts.includes('serve')) out['serve'] = await serve(args);
  if (parts.includes('render')) out['render'] = await render(args);
  return out;
}
