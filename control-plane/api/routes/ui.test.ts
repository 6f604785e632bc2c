/** The web UI's files on the master: the page with its CSP, the modules, ETags, and nothing outside the folder. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';
import { UI_CSP, loadUiFiles } from './ui.ts';

test('GET / is the UI page (strict CSP, no-cache, ETag → 304); /ui/<file> the modules; other files and paths 404', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const page = await h.master.app.inject({ method: 'GET', url: '/' });
  t.is(page.statusCode, 200);
  t.regex(String(page.headers['content-type']), /^text\/html/);
  t.is(page.headers['content-security-policy'], UI_CSP);
  t.is(page.headers['cache-control'], 'no-cache');
  t.is(page.headers['x-frame-options'], 'DENY');
  t.regex(page.body, /<script type="module" src="\/ui\/app\.js"><\/script>/);
  const again = await h.master.app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': String(page.headers.etag) } });
  t.is(again.statusCode, 304);

  const js = await h.master.app.inject({ method: 'GET', url: '/ui/app.js' });
  t.is(js.statusCode, 200);
  t.regex(String(js.headers['content-type']), /^text\/javascript/);
  t.is(js.headers['x-content-type-options'], 'nosniff');
  // Every module the page imports is served.
  for (const m of js.body.matchAll(/from '\.\/([\w-]+\.js)'/g)) t.is((await h.master.app.inject({ method: 'GET', url: `/ui/${m[1]}` })).statusCode, 200, m[1]);
  t.regex(String((await h.master.app.inject({ method: 'GET', url: '/ui/style.css' })).headers['content-type']), /^text\/css/);

  for (const url of ['/ui/README.md', '/ui/tsconfig.json', '/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/x/app.js', '/ui/%2e%2e/README.md']) {
    const res = await h.master.app.inject({ method: 'GET', url });
    t.is(res.statusCode, 404, url);
    t.is(res.json().code, 'API_NOT_FOUND', url);
  }
});

test('loadUiFiles: only the known extensions; a missing folder serves nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-ui-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'index.html'), '<!doctype html>');
  await writeFile(join(dir, 'a.js'), 'export {}');
  await writeFile(join(dir, 'notes.md'), '# no');
  t.deepEqual([...loadUiFiles(dir).keys()].sort(), ['a.js', 'index.html']);
  t.is(loadUiFiles(join(dir, 'missing')).size, 0);
});
