// `node scripts/gen-key-table.ts`: writes keyLayoutMarkdown() into the key
// layout tables of control-plane/model/README.md and docs/architecture.md
// (the first table starting `| kind | key |` in each), e.g. after a merge
// that adds record kinds. keys.test.ts checks the README holds it verbatim.
import { readFileSync, writeFileSync } from 'node:fs';
import { keyLayoutMarkdown } from '../control-plane/model/keys.ts';

const table = keyLayoutMarkdown().trimEnd();
for (const file of ['control-plane/model/README.md', 'docs/architecture.md']) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('| kind | key |'));
  if (start < 0) {
    console.error(`${file}: no key layout table found`);
    process.exitCode = 1;
    continue;
  }
  let end = start;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  lines.splice(start, end - start, ...table.split('\n'));
  writeFileSync(file, lines.join('\n'));
  console.log(`${file}: key layout table written (${table.split('\n').length - 2} kinds)`);
}
