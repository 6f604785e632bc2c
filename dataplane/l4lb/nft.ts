/**
 * Running nftables transactions. `NftRunner` is the small interface the
 * load balancer needs; `NftProcess` implements it with the `nft` binary,
 * one `nft -f -` process per transaction (script on stdin, argv without a
 * shell, all or nothing).
 *
 * Measured here (docs/benchmarks.md, `npm run bench -- vip`): a long-lived
 * `nft -i` process answers a small change in about a millisecond on a small
 * table but refetches its whole cache after every change it makes, which at
 * 10,000 VIPs costs 0.4-2.4 s per change; a new `nft -f` process per
 * change fetches only what the change touches (40-150 ms at 10,000 VIPs,
 * 15-30 ms on small tables). Changes are coalesced by the manager (it
 * always applies the latest state), so a burst costs one transaction.
 * Reaching a few milliseconds at 10,000 VIPs needs nf_tables netlink
 * messages sent directly (set element batches), planned with the overlay's
 * netlink socket.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The nftables binary: by absolute path, because `npm`/`npx` put
 * `node_modules/.bin` first on PATH and an npm package (`@vercel/nft`, a
 * dependency of our test runner) installs a program called `nft` there.
 */
export function defaultNftPath(): string {
  return ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((p) => existsSync(p)) ?? 'nft';
}

export interface NftRunner {
  /** Run an `nft -f` script as one transaction. */
  load(script: string): Promise<void>;
  /** Run commands (one per line) as one transaction on `table`. */
  apply(table: string, commands: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export class NftError extends Error {
  readonly nftOutput: string;
  constructor(message: string, nftOutput: string) {
    super(message);
    this.name = 'NftError';
    this.nftOutput = nftOutput;
  }
}

export interface NftProcessOptions {
  /** Run inside this network namespace (`ip netns exec`), for tests. */
  readonly netns?: string;
  readonly nftPath?: string;
  /** How long one transaction may take before nft is killed (default 30 s). */
  readonly timeoutMs?: number;
}

export class NftProcess implements NftRunner {
  readonly #options: NftProcessOptions;

  constructor(options: NftProcessOptions = {}) {
    this.#options = options;
  }

  #argv(args: readonly string[]): [string, string[]] {
    const nft = this.#options.nftPath ?? defaultNftPath();
    return this.#options.netns === undefined ? [nft, [...args]] : ['ip', ['netns', 'exec', this.#options.netns, nft, ...args]];
  }

  load(script: string): Promise<void> {
    const [cmd, args] = this.#argv(['-f', '-']);
    const timeoutMs = this.#options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new NftError(`nft did not finish within ${timeoutMs} ms`, stderr));
      }, timeoutMs);
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => {
        if (stderr.length < 64 * 1024) stderr += d;
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new NftError(`cannot run nft: ${err.message}`, ''));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new NftError(`nft refused the transaction (exit ${code}): ${firstError(stderr)}`, stderr));
      });
      child.stdin.on('error', () => {
        /* reported by 'close' */
      });
      child.stdin.end(script);
    });
  }

  apply(_table: string, commands: readonly string[]): Promise<void> {
    if (commands.length === 0) return Promise.resolve();
    for (const c of commands) if (c.includes('\n')) return Promise.reject(new NftError(`nft command must be one line: ${c}`, ''));
    return this.load(`${commands.join('\n')}\n`);
  }

  async close(): Promise<void> {}
}

function firstError(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.startsWith('Error:')) ?? stderr.split('\n')[0] ?? '';
  return line.trim() || 'no message';
}

/** An in-memory runner that records what it was asked (tests inspect it). */
export class RecordingNft implements NftRunner {
  readonly loads: string[] = [];
  readonly applied: (readonly string[])[] = [];
  /** Make the next calls fail. */
  failNext: { load?: string; apply?: string } = {};

  async load(script: string): Promise<void> {
    if (this.failNext.load !== undefined) {
      const message = this.failNext.load;
      delete this.failNext.load;
      throw new NftError(message, message);
    }
    this.loads.push(script);
  }

  async apply(_table: string, commands: readonly string[]): Promise<void> {
    if (this.failNext.apply !== undefined) {
      const message = this.failNext.apply;
      delete this.failNext.apply;
      throw new NftError(message, message);
    }
    this.applied.push(commands);
  }

  async close(): Promise<void> {}
}
