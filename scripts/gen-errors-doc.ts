// Regenerates docs/errors.md from the error registry: `node scripts/gen-errors-doc.ts`
// (through npm: `npm run docs:errors`). common/errors.test.ts keeps the two in step.
import { writeFileSync } from 'node:fs';
import { ERROR_CODES } from '../common/errors.ts';

const lines = [
  '# Error codes',
  '',
  'Every error Strata reports carries one of these stable codes (registry: `common/errors.ts`).',
  'API errors are JSON: `{"code": "...", "message": "...", "details": ...}` with the HTTP status below.',
  'Regenerate this file with `npm run docs:errors` after adding a code.',
  '',
  '| code | HTTP | meaning |',
  '|---|---|---|',
  ...Object.entries(ERROR_CODES).map(([code, spec]) => `| \`${code}\` | ${spec.httpStatus} | ${spec.summary} |`),
];
writeFileSync(new URL('../docs/errors.md', import.meta.url), `${lines.join('\n')}\n`);
