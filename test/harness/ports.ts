/**
 * Host port ranges for test agents, claimed across every test process at
 * once (ava runs test files in parallel workers): a directory per 100-port
 * slot under the temp dir, created exclusively, holding the claimer's pid.
 * A slot whose pid is gone (a killed run) is taken over. The slots lie
 * below Linux's ephemeral range (32768-60999 by default), so listeners on
 * port 0 and outgoing connections never sit on a task's assigned port.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIRST_PORT = 20_000;
const SLOT_PORTS = 100;
const SLOTS = 127; // 20000-32699
const ROOT = join(tmpdir(), 'strata-test-port-slots');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claim a free range of `SLOT_PORTS` ports; `release()` gives it back (call it in a teardown). */
export function claimPortRange(): { readonly first: number; readonly last: number; release(): void } {
  mkdirSync(ROOT, { recursive: true });
  const start = (process.pid * 7 + Date.now()) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    const dir = join(ROOT, String(slot));
    try {
      mkdirSync(dir);
    } catch {
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        continue; // being claimed right now
      }
      if (!Number.isInteger(owner) || alive(owner)) continue;
      rmSync(dir, { recursive: true, force: true });
      try {
        mkdirSync(dir);
      } catch {
        continue;
      }
    }
    writeFileSync(join(dir, 'pid'), String(process.pid));
    const first = FIRST_PORT + slot * SLOT_PORTS;
    let released = false;
    return {
      first,
      last: first + SLOT_PORTS - 1,
      release() {
        if (released) return;
        released = true;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error(`no free test port range: all ${SLOTS} slots under ${ROOT} are held by live processes`);
}
