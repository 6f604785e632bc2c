/**
 * The web UI's static files (`ui/` at the repository root), served by every
 * master: `GET /` is `ui/index.html`, `GET /ui/<file>` the modules and the
 * style sheet. Public, like DC/OS's UI: the files hold no data; every page
 * reads the API with the auth cookie the login sets.
 *
 * The files are read once when the routes are registered (a few tens of
 * KiB) and answered from memory with a strong ETag (`If-None-Match` → 304)
 * and `cache-control: no-cache` (revalidated on every load, so an upgrade
 * shows at once). Only the extensions in {@link CONTENT_TYPES} are served;
 * the folder's README and tsconfig are not. The HTML carries a strict
 * Content-Security-Policy: scripts, styles and connections from this origin
 * only, no framing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { StrataError } from '../../../common/errors.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC } from '../permissions.ts';

/** Where the UI's files live: `ui/` at the repository root (from the sources, or from `dist/` after `npm run build`). */
export const UI_DIR = [new URL('../../../ui/', import.meta.url), new URL('../../../../ui/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(join(dir, 'index.html'))) ?? fileURLToPath(new URL('../../../ui/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const UI_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface UiFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Pure over the listing: the servable files of `dir` by name (no subfolders). */
export function loadUiFiles(dir: string): ReadonlyMap<string, UiFile> {
  const files = new Map<string, UiFile>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return files; // no ui/ folder (a stripped install): `/` answers 404 with a clear message
  }
  for (const name of names) {
    const type = CONTENT_TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return files;
}

export function uiRoutes(app: ApiInstance, _ctx: ApiContext, dir: string = UI_DIR): void {
  const files = loadUiFiles(dir);

  const serve = (name: string, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const file = files.get(name);
    if (!file) throw new StrataError('API_NOT_FOUND', `the UI has no file ${JSON.stringify(name)}`);
    reply.header('etag', file.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (file.type.startsWith('text/html')) reply.header('content-security-policy', UI_CSP).header('referrer-policy', 'same-origin').header('x-frame-options', 'DENY');
    if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  };

  app.get('/', {
    config: { permission: PUBLIC },
    schema: { summary: 'The web UI (ui/index.html)', hide: true },
  }, async (request, reply) => serve('index.html', request, reply));

  app.get('/ui/*', {
    config: { permission: PUBLIC },
    schema: { summary: 'The web UI\'s modules and style sheet', hide: true },
  }, async (request, reply) => {
    const name = (request.params as { '*': string })['*'];
    // One flat folder: no subpaths, so nothing outside it can be named.
    if (!/^[A-Za-z0-9_-]+\.[a-z]+$/.test(name)) throw new StrataError('API_NOT_FOUND', `the UI has no file ${JSON.stringify(name)}`);
    return serve(name, request, reply);
  });
}
