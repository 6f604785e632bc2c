/**
 * Secrets benchmark (issue 7.4): what encryption at rest costs a read and a
 * write, measured against its peer in the same run, interleaved: the same
 * store (embedded, in memory) reading and writing a record of the same size
 * without any crypto, and the same secret records read without decrypting
 * (isolating the crypto). Also the re-wrap rate of a KEK rotation (secrets per
 * second) and the time a rotation of N secrets takes while reads go on.
 *
 * Options: --runs N (default 3, medians), --seconds S per phase (default 1),
 * --secrets N for the rotation (default 1000).
 */
import { setImmediate } from 'node:timers/promises';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { Keyring, memoryKekStore } from '../security/secrets/keyring.ts';
import { SecretVault } from '../security/secrets/vault.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (n: number, digits = 0): number => Number(n.toFixed(digits));

async function rate(seconds: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) await fn(n++);
  return n / ((performance.now() - start) / 1000);
}

export async function run(args: string[]): Promise<unknown> {
  const runs = option(args, 'runs', 3);
  const seconds = option(args, 'seconds', 1);
  const count = option(args, 'secrets', 1000);
  const store = await openEmbeddedStore({ path: ':memory:' });
  try {
    const records = new Records(store);
    const vault = new SecretVault(records, await Keyring.open(memoryKekStore(), { create: true, where: 'memory' }));
    const value = Buffer.from('x'.repeat(64));
    const paths = Array.from({ length: 100 }, (_, i) => `bench/read-${i}`);
    for (const p of paths) await vault.create(p, { value });
    // The peer: the same store, plain records of about the same size, no crypto.
    const plain = JSON.stringify({ value: value.toString('base64').repeat(2), pad: 'y'.repeat(120) });
    for (let i = 0; i < paths.length; i++) await store.put(`bench/plain/${i}`, plain);

    const reads = { vault: [] as number[], plain: [] as number[], records: [] as number[] };
    const writes = { vault: [] as number[], plain: [] as number[] };
    for (let r = 0; r < runs; r++) {
      reads.plain.push(await rate(seconds, (i) => store.get(`bench/plain/${i % paths.length}`).then((e) => JSON.parse(e!.value))));
      reads.records.push(await rate(seconds, (i) => records.get('secret', paths[i % paths.length]!)));
      reads.vault.push(await rate(seconds, (i) => vault.read(paths[i % paths.length]!)));
      writes.plain.push(await rate(seconds, (i) => store.put(`bench/plain/${i % paths.length}`, plain)));
      writes.vault.push(await rate(seconds, (i) => vault.update(paths[i % paths.length]!, { value })));
    }

    for (let i = 0; i < count; i++) await vault.create(`bench/rot/${i}`, { value });
    let readsDuring = 0;
    let stop = false;
    const reader = (async () => {
      for (let i = 0; !stop; i++) {
        await vault.read(paths[i % paths.length]!);
        readsDuring++;
        await setImmediate();
      }
    })();
    const started = performance.now();
    await vault.rotate({ generate: true });
    await vault.rotationSettled();
    const rotationMs = performance.now() - started;
    stop = true;
    await reader;
    const status = vault.status();

    const readVault = median(reads.vault);
    const readPlain = median(reads.plain);
    const writeVault = median(writes.vault);
    const writePlain = median(writes.plain);
    return {
      area: 'secrets',
      note: 'embedded store in memory; peer = the same store without crypto, interleaved in the same run',
      runs,
      secondsPerPhase: seconds,
      readsPerSecond: {
        vault: round(readVault),
        plainStore: round(readPlain),
        ratio: round(readVault / readPlain, 2),
        /** The same secret record read and schema-checked, not decrypted: isolates the two AES-GCM opens. */
        recordOnly: round(median(reads.records)),
        decryptMicrosecondsPerRead: round(1e6 / readVault - 1e6 / median(reads.records), 1),
      },
      writesPerSecond: { vault: round(writeVault), plainStore: round(writePlain), ratio: round(writeVault / writePlain, 2) },
      rotation: {
        secrets: status.total,
        rewrapped: status.rewrapped,
        failed: status.failed,
        seconds: round(rotationMs / 1000, 2),
        rewrapsPerSecond: round(status.rewrapped / (rotationMs / 1000)),
        readsDuringRotation: readsDuring,
      },
    };
  } finally {
    await store.close();
  }
}
