import { readFile } from 'node:fs/promises';
import test from 'ava';
import { ERROR_CODES, StrataError } from './errors.ts';

test('docs/errors.md lists exactly the registered codes, with their HTTP status', async (t) => {
  const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Map([...doc.matchAll(/^\| `([A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  t.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, spec] of Object.entries(ERROR_CODES)) t.is(documented.get(code), spec.httpStatus, code);
});

test('StrataError carries code, status, details and serialises without the stack', (t) => {
  const err = new StrataError('RECORD_INVALID', 'bad', { details: [{ path: '/x' }] });
  t.is(err.httpStatus, 422);
  t.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'RECORD_INVALID', message: 'bad', details: [{ path: '/x' }] });
});
