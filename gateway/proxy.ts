/**
 * Streaming HTTP/1.1 proxying on node:http: bodies are piped both ways, never
 * buffered (server-sent events, chunked logs and large uploads flow as they
 * come), upstream connections are kept alive in one agent, and websocket (any
 * `Upgrade`) requests are joined socket to socket after the upstream agrees.
 *
 * Hop-by-hop headers (RFC 9110 §7.6.1, and those named in `Connection`) are
 * dropped each way; `X-Forwarded-For`, `-Proto`, `-Host` are set.
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Where to send one request. */
export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  /** Path and query. */
  readonly path: string;
  /** Header changes: a value replaces, `undefined` removes. */
  readonly headers?: Readonly<Record<string, string | undefined>>;
}

export interface ProxyOptions {
  readonly agent: Agent;
  /** Called when the request opens a new upstream connection (not for a kept-alive one). */
  readonly onNewConnection?: () => void;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
}

/** How a proxied exchange went, for metrics and the access log. */
export type ProxyOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly upstreamMs: number }
  | { readonly kind: 'connect-failed' | 'timeout'; readonly message: string; readonly upstreamMs: number }
  | { readonly kind: 'aborted'; readonly message: string; readonly upstreamMs: number };

/** The names a `Connection` header adds to the hop-by-hop set (none for the usual `keep-alive`/`close`). */
function connectionNamed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const text = String(connection).toLowerCase();
  if (text === 'keep-alive' || text === 'close' || text === 'upgrade') return undefined;
  return new Set(text.split(',').map((s) => s.trim()).filter(Boolean));
}

/**
 * Pure: the headers to send on (hop-by-hop removed, the changes applied,
 * `host` when given). One pass over the incoming names, no intermediate
 * copies: this runs twice per proxied request.
 */
export function forwardHeaders(incoming: IncomingHttpHeaders, changes: Readonly<Record<string, string | undefined>> = {}, keepUpgrade = false, host?: string): OutgoingHttpHeaders {
  const named = connectionNamed(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(incoming)) {
    const value = incoming[name];
    if (value === undefined) continue;
    if ((HOP_BY_HOP.has(name) || named?.has(name) === true) && !(keepUpgrade && name === 'upgrade')) continue;
    out[name] = value;
  }
  for (const name of Object.keys(changes)) {
    const value = changes[name];
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  if (keepUpgrade) out['connection'] = 'upgrade';
  if (host !== undefined) out['host'] = host;
  return out;
}

/** Does the request carry a body (RFC 9112 §6.3: a length or a transfer coding)? */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function hostHeader(target: UpstreamTarget): string {
  return `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}

/**
 * Send `req` to `target` and stream the answer to `res`. Errors before the
 * upstream answered are reported through `onOutcome` (the caller writes the
 * 502/504); after, the client connection is cut (the status already left).
 * `transform`, when given, receives the whole (small) upstream body instead
 * of streaming it (the login answer, to set the cookie).
 */
export function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  target: UpstreamTarget,
  options: ProxyOptions & {
    readonly onOutcome: (outcome: ProxyOutcome) => void;
    readonly transform?: (status: number, headers: IncomingHttpHeaders, body: Buffer) => { headers: OutgoingHttpHeaders; body: Buffer };
  },
): void {
  const started = performance.now();
  let settled = false;
  const settle = (outcome: ProxyOutcome): void => {
    if (settled) return;
    settled = true;
    options.onOutcome(outcome);
  };
  const upstream = httpRequest({
    host: target.host,
    port: target.port,
    method: req.method,
    path: target.path,
    agent: options.agent,
    headers: forwardHeaders(req.headers, target.headers, false, req.headers.host ?? hostHeader(target)),
  });
  let answered = false;
  const responseTimer = setTimeout(() => {
    if (answered) return;
    settle({ kind: 'timeout', message: `no response within ${options.responseTimeoutMs} ms`, upstreamMs: performance.now() - started });
    upstream.destroy();
  }, options.responseTimeoutMs);
  // The connect timeout only, and only for a new connection (a kept-alive one is already connected): once connected, the response timer rules.
  upstream.on('socket', (socket) => {
    if (!(socket as { connecting?: boolean }).connecting) return;
    options.onNewConnection?.();
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => {
      clearTimeout(responseTimer);
      settle({ kind: 'connect-failed', message: `could not connect within ${options.connectTimeoutMs} ms`, upstreamMs: performance.now() - started });
      upstream.destroy();
    }, options.connectTimeoutMs);
    const connected = (): void => clearTimeout(connectTimer);
    socket.once('connect', connected);
    socket.once('close', connected);
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(responseTimer);
    if (!answered) settle({ kind: 'connect-failed', message: err.code ?? err.message, upstreamMs: performance.now() - started });
    else res.destroy(err);
  });
  upstream.on('response', (answer) => {
    answered = true;
    clearTimeout(responseTimer);
    const status = answer.statusCode ?? 502;
    const upstreamMs = performance.now() - started;
    if (options.transform) {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const out = options.transform!(status, answer.headers, Buffer.concat(chunks));
        res.writeHead(status, { ...out.headers, 'content-length': String(out.body.length) });
        res.end(out.body);
        settle({ kind: 'response', status, upstreamMs });
      });
      answer.on('error', (err) => res.destroy(err));
      return;
    }
    res.writeHead(status, answer.statusMessage, forwardHeaders(answer.headers));
    // A stream (no length: events, logs) shows its headers at once; a sized body goes out with them in one write.
    if (answer.headers['content-length'] === undefined) res.flushHeaders();
    settle({ kind: 'response', status, upstreamMs });
    answer.pipe(res);
    answer.on('error', (err) => res.destroy(err));
  });
  // The client went away: stop the upstream exchange too.
  res.on('close', () => {
    clearTimeout(responseTimer);
    if (!res.writableFinished) {
      upstream.destroy();
      settle({ kind: 'aborted', message: 'the client closed the connection', upstreamMs: performance.now() - started });
    }
  });
  // A request without a body (most GETs) needs no pipe: its headers leave in one write.
  if (hasBody(req)) req.pipe(upstream);
  else upstream.end();
}

/**
 * Join an `Upgrade` request (websocket) to `target`: the upstream's 101 and
 * everything after it flow byte for byte; any other upstream answer is sent
 * back as is and the connection closed.
 */
export function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: UpstreamTarget,
  options: { readonly connectTimeoutMs: number; readonly onOutcome: (outcome: ProxyOutcome) => void },
): void {
  const started = performance.now();
  const upstream = httpRequest({
    host: target.host,
    port: target.port,
    method: req.method,
    path: target.path,
    headers: forwardHeaders(req.headers, target.headers, true, req.headers.host ?? hostHeader(target)),
    timeout: options.connectTimeoutMs,
  });
  let done = false;
  const finish = (outcome: ProxyOutcome): void => {
    if (done) return;
    done = true;
    options.onOutcome(outcome);
  };
  upstream.on('timeout', () => {
    finish({ kind: 'connect-failed', message: `could not connect within ${options.connectTimeoutMs} ms`, upstreamMs: performance.now() - started });
    upstream.destroy();
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'connect-failed', message: err.code ?? err.message, upstreamMs: performance.now() - started }));
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    upstream.setTimeout(0);
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstreamSocket.write(head);
    upstreamSocket.pipe(socket).pipe(upstreamSocket);
    const close = (): void => {
      upstreamSocket.destroy();
      socket.destroy();
    };
    upstreamSocket.on('error', close);
    socket.on('error', close);
    upstreamSocket.on('close', close);
    socket.on('close', close);
    finish({ kind: 'response', status: answer.statusCode ?? 101, upstreamMs: performance.now() - started });
  });
  upstream.on('response', (answer) => {
    // The upstream refused the upgrade: relay its answer and close.
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
    for (const [k, v] of Object.entries(forwardHeaders(answer.headers))) lines.push(`${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
    lines.push('connection: close');
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    answer.pipe(socket);
    finish({ kind: 'response', status: answer.statusCode ?? 502, upstreamMs: performance.now() - started });
  });
  req.pipe(upstream);
}
