/**
 * Child process of `durability.test.ts`: opens the store file given as the
 * first argument and writes as fast as it can with 64 writes in flight,
 * printing `ack <key> <index>` for every acknowledged write, until it is
 * killed. Every 10th write is a two-key transaction.
 *
 *   node durability-writer.ts <file> <round>
 */
import { writeSync } from 'node:fs';
import { openEmbeddedStore } from './embedded-store.ts';

/** The value written under `key`; the test recomputes it (keep the two in step). */
export function durabilityValue(key: string): string {
  return `value-of:${key}:${'x'.repeat(key.length * 7 % 300)}`;
}

const IN_FLIGHT = 64;

async function main(file: string, round: string): Promise<void> {
  const store = await openEmbeddedStore({ path: file });
  writeSync(1, `ready ${store.stats().index}\n`);
  let seq = 0;
  const worker = async (): Promise<never> => {
    for (;;) {
      const n = seq++;
      const key = `r${round}/k${n}`;
      if (n % 10 === 9) {
        const other = `${key}/t`;
        const r = await store.txn({
          writes: [
            { op: 'put', key, value: durabilityValue(key) },
            { op: 'put', key: other, value: durabilityValue(other) },
          ],
        });
        if (!r.ok) throw new Error(`txn failed: ${JSON.stringify(r)}`);
        writeSync(1, `ack ${key} ${r.index}\nack ${other} ${r.index}\n`);
      } else {
        const r = await store.put(key, durabilityValue(key));
        if (!r.ok) throw new Error(`put failed: ${JSON.stringify(r)}`);
        writeSync(1, `ack ${key} ${r.index}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

// Only when run as a script, not when the test imports durabilityValue.
if (import.meta.main) {
  const [file, round] = process.argv.slice(2);
  if (file === undefined || round === undefined) throw new Error('usage: durability-writer.ts <file> <round>');
  await main(file, round);
}
