/**
 * The nft runner against the real nft, in a namespace this test creates:
 * changes through the long-lived `nft -i` coprocess are atomic, refusals
 * come back as errors naming nft's message, and a coprocess that dies is
 * replaced on the next transaction. Skipped without root or nft.
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsSet, netnsUnavailable } from '../../test/harness/netns.ts';
import { NftError, NftProcess, defaultNftPath } from './nft.ts';

const skip = netnsUnavailable();

(skip ? test.skip : test)('nft -i coprocess: one line is one transaction, refusals are errors, a dead coprocess is replaced', async (t) => {
  const set = netnsSet('sxnft');
  t.teardown(() => set.cleanup());
  const ns = await set.create('h');
  let starts = 0;
  const nft = new NftProcess({ netns: ns.name, onShellStart: () => starts++ });
  t.teardown(() => nft.close());
  await nft.load('table inet t {\n  set s { type ipv4_addr; }\n}\n');
  const elements = async (): Promise<string> => (await ns.exec(defaultNftPath(), ['list', 'set', 'inet', 't', 's'])).replace(/\s+/g, ' ');

  await nft.apply('t', ['add element inet t s { 10.0.0.1 }', 'add element inet t s { 10.0.0.2 }']);
  t.regex(await elements(), /10\.0\.0\.1\b/);
  t.regex(await elements(), /10\.0\.0\.2\b/);
  t.is(starts, 1);

  // The second command fails (no such element): the first is not applied either.
  const refused = await t.throwsAsync(nft.apply('t', ['add element inet t s { 10.0.0.3 }', 'delete element inet t s { 10.0.0.9 }']), { instanceOf: NftError });
  t.regex(refused.message, /refused the transaction: Error: Could not process rule: No such file or directory/);
  t.notRegex(await elements(), /10\.0\.0\.3/);
  // The coprocess carries on after a refusal.
  await nft.apply('t', ['delete element inet t s { 10.0.0.1 }']);
  t.notRegex(await elements(), /10\.0\.0\.1/);
  t.is(starts, 1);

  // A syntax error in our own commands is an error too, not a hang.
  await t.throwsAsync(nft.apply('t', ['add element inet t s { not-an-address }']), { instanceOf: NftError, message: /refused/ });

  // Killed from outside: the next transaction starts a new coprocess and succeeds.
  process.kill(nft.shell.pid!, 'SIGKILL');
  while (nft.shell.pid !== undefined) await new Promise((r) => setTimeout(r, 10));
  await nft.apply('t', ['add element inet t s { 10.0.0.4 }']);
  t.regex(await elements(), /10\.0\.0\.4/);
  t.is(starts, 2);

  // Recycled after a number of bytes (nft's line editor keeps every line): transactions carry on in a new coprocess.
  const recycled = new NftProcess({ netns: ns.name, shellRecycleBytes: 1 });
  t.teardown(() => recycled.close());
  for (const n of [6, 7, 8]) await recycled.apply('t', [`add element inet t s { 10.0.0.${n} }`]);
  for (const n of [6, 7, 8]) t.regex(await elements(), new RegExp(`10\\.0\\.0\\.${n}\\b`));
  t.is(recycled.shell.starts, 3);

  // A newline or ';' inside a command would split the transaction: refused before nft sees it.
  await t.throwsAsync(nft.apply('t', ['add element inet t s { 10.0.0.5 }; delete table inet t']), { instanceOf: NftError, message: /one line/ });
  await t.throwsAsync(nft.apply('t', ['add element inet t s { 10.0.0.5 } ; delete table inet t']), { instanceOf: NftError, message: /outside braces/ });
});

test('a coprocess that never answers is killed after the timeout and replaced; a missing binary is an error, not a hang', async (t) => {
  // Reads the lines and never writes stderr: like an nft that hangs.
  const dir = await mkdtemp(join(tmpdir(), 'strata-nft-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const silent = join(dir, 'nft');
  await writeFile(silent, '#!/bin/sh\nexec cat >/dev/null\n', { mode: 0o755 });
  let starts = 0;
  const hung = new NftProcess({ nftPath: silent, timeoutMs: 200, onShellStart: () => starts++ });
  t.teardown(() => hung.close());
  await t.throwsAsync(hung.apply('t', ['add element inet t s { 10.0.0.1 }']), { instanceOf: NftError, message: /did not finish a transaction within 200 ms/ });
  await t.throwsAsync(hung.apply('t', ['add element inet t s { 10.0.0.2 }']), { instanceOf: NftError });
  t.is(starts, 2, 'a new coprocess for the next transaction');

  const missing = new NftProcess({ nftPath: '/nonexistent/nft' });
  t.teardown(() => missing.close());
  await t.throwsAsync(missing.apply('t', ['add element inet t s { 10.0.0.1 }']), { instanceOf: NftError, message: /nft -i cannot run|nft -i exited/ });
  await t.throwsAsync(missing.load('table inet t {}\n'), { instanceOf: NftError, message: /cannot run nft/ });
});
