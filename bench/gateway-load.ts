/**
 * Open-loop HTTP(S) load for the gateway benchmark, run in a worker thread
 * (its own event loop, so the client's work is not the gateway's): sends
 * `ratePerSecond` requests per second for `seconds` over keep-alive
 * connections and returns each request's latency (send to last byte), in µs.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';

interface LoadJob {
  readonly url: string;
  readonly ca?: string;
  readonly headers: Record<string, string>;
  readonly ratePerSecond: number;
  readonly seconds: number;
  readonly sockets: number;
}

const job = workerData as LoadJob;
const https = job.url.startsWith('https:');
const agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: job.sockets, ...(job.ca ? { ca: job.ca } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: job.sockets });
const send = https ? httpsRequest : httpRequest;

function one(): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = send(job.url, { agent, headers: job.headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => (res.statusCode === 200 ? resolve((performance.now() - started) * 1000) : reject(new Error(`${job.url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

// Warm the connections up first (TLS handshakes are not what is measured).
await Promise.all(Array.from({ length: job.sockets }, () => one()));
const total = Math.round(job.ratePerSecond * job.seconds);
const intervalMs = 1000 / job.ratePerSecond;
const latencies: Promise<number>[] = [];
const start = performance.now();
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const due = Math.min(total, Math.floor((performance.now() - start) / intervalMs) + 1);
    while (latencies.length < due) latencies.push(one());
    if (latencies.length >= total) resolve();
    else setTimeout(tick, 1);
  };
  tick();
});
const sentSeconds = (performance.now() - start) / 1000;
const results = await Promise.all(latencies);
agent.destroy();
parentPort!.postMessage({ latenciesUs: results, achievedPerSecond: total / sentSeconds });
