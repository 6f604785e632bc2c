/**
 * Running nftables transactions. `NftRunner` is the small interface the
 * load balancer needs; `NftProcess` implements it with the `nft` binary:
 * - `load` (a whole table: large, rare) runs one `nft -f -` process, the
 *   script on stdin, all or nothing;
 * - `apply` (element-level changes: small, frequent) goes to one long-lived
 *   `nft -i` coprocess ({@link NftShell}), so a change costs no process
 *   start. `nft -i` runs each input line as one transaction, so the
 *   commands are sent as one line (`cmd ; cmd ; ...`).
 *
 * Measured at 10,000 VIPs × 5 backends (docs/benchmarks.md, `npm run bench
 * -- vip`): a backend change through the coprocess takes well under a
 * millisecond of nft's time (it refetches the table's chains and sets
 * before each transaction, a handful with the ruleset of `ruleset.ts`); a
 * new process per change took 40-60 ms on a quiet box, most of it process
 * start and library load.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { StrataError } from '../../common/errors.ts';

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
  /** Run commands (each one line) as one transaction on `table`. */
  apply(table: string, commands: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** Code `DATAPLANE_NFT`: nft refused a transaction, hung or could not run; `nftOutput` has what it said. */
export class NftError extends StrataError {
  readonly nftOutput: string;
  constructor(message: string, nftOutput: string) {
    super('DATAPLANE_NFT', message, { details: { nftOutput } });
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
  /** Called each time the `nft -i` coprocess is started (the first time, and after it died, hung or was recycled). */
  readonly onShellStart?: () => void;
  /** Replace the coprocess after it was sent this many bytes (default 32 MiB): nft's line editor keeps every line in memory. */
  readonly shellRecycleBytes?: number;
}

function argvOf(options: NftProcessOptions, args: readonly string[]): [string, string[]] {
  const nft = options.nftPath ?? defaultNftPath();
  return options.netns === undefined ? [nft, [...args]] : ['ip', ['netns', 'exec', options.netns, nft, ...args]];
}

function firstError(output: string): string {
  const line = output.split('\n').find((l) => l.startsWith('Error:')) ?? output.split('\n')[0] ?? '';
  return line.trim() || 'no message';
}

interface Pending {
  readonly marker: string;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One long-lived `nft -i` process. Each {@link run} writes one line (one
 * transaction) followed by a marker line: a bare word that nft refuses as a
 * syntax error, echoing it on stderr. nft handles lines in order and writes
 * a transaction's errors before it reads the next line, so everything on
 * stderr before the marker's error is what the transaction said; nothing
 * means it was committed. One transaction at a time. A coprocess that exits
 * or does not answer within the timeout is killed and the transaction
 * rejected; the next run starts a new one.
 */
export class NftShell {
  readonly #options: NftProcessOptions;
  #child: ChildProcess | undefined;
  #stderr = '';
  #pending: Pending | undefined;
  #seq = 0;
  #starts = 0;
  #bytes = 0;

  constructor(options: NftProcessOptions = {}) {
    this.#options = options;
  }

  /** How many coprocesses were started so far. */
  get starts(): number {
    return this.#starts;
  }

  /** The coprocess's pid (undefined when none runs), for tests. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #start(): ChildProcess {
    const [cmd, args] = argvOf(this.#options, ['-i']);
    // nft's line editor reads and writes `$HOME/.nft.history` (every transaction line): point it nowhere.
    const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, HOME: '/dev/null' } });
    this.#bytes = 0;
    this.#starts++;
    this.#options.onShellStart?.();
    this.#stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (this.#child !== child) return;
      this.#stderr += d;
      this.#settle();
    });
    child.stdin!.on('error', () => {
      /* reported by 'exit' */
    });
    const gone = (why: string): void => {
      if (this.#child !== child) return;
      this.#child = undefined;
      this.#fail(new NftError(`nft -i ${why}`, this.#stderr));
    };
    child.on('error', (err) => gone(`cannot run: ${err.message}`));
    child.on('exit', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    // An idle coprocess must not keep its owner's process alive (a transaction's own timer does while one runs).
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    this.#child = child;
    return child;
  }

  #fail(err: Error): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    clearTimeout(p.timer);
    p.reject(err);
  }

  /** Look for the marker's echo, then its caret line; answer the transaction from what came before. */
  #settle(): void {
    const p = this.#pending;
    if (!p) return;
    const text = this.#stderr;
    const echo = text.startsWith(`${p.marker}\n`) ? 0 : text.indexOf(`\n${p.marker}\n`) + 1;
    if (echo === 0 && !text.startsWith(`${p.marker}\n`)) return;
    const afterEcho = echo + p.marker.length + 1;
    const caretEnd = text.indexOf('\n', afterEcho);
    if (caretEnd < 0) return;
    // The line before the echo is the marker's own "Error: syntax error" line.
    const errorLine = echo === 0 ? 0 : text.lastIndexOf('\n', echo - 2) + 1;
    const said = text.slice(0, errorLine);
    this.#stderr = text.slice(caretEnd + 1);
    this.#pending = undefined;
    clearTimeout(p.timer);
    if (this.#bytes >= (this.#options.shellRecycleBytes ?? 32 * 1024 * 1024)) void this.close();
    if (said.includes('Error:')) p.reject(new NftError(`nft refused the transaction: ${firstError(said)}`, said));
    else p.resolve();
  }

  /** Run `line` (commands separated by `;`) as one transaction. Callers wait for one run before starting the next. */
  run(line: string): Promise<void> {
    if (line.includes('\n')) return Promise.reject(new NftError('an nft transaction line must not contain a newline', ''));
    if (this.#pending) return Promise.reject(new NftError('nft -i is busy with another transaction', ''));
    const child = this.#child ?? this.#start();
    const marker = `strata-marker-${++this.#seq}`;
    const timeoutMs = this.#options.timeoutMs ?? 30_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new NftError(`nft -i did not finish a transaction within ${timeoutMs} ms; restarting it`, this.#stderr));
        this.#stop();
      }, timeoutMs);
      this.#pending = { marker, resolve, reject, timer };
      const text = `${line}\n${marker}\n`;
      this.#bytes += Buffer.byteLength(text);
      child.stdin!.write(text);
    });
  }

  #stop(): ChildProcess | undefined {
    const child = this.#child;
    this.#child = undefined;
    child?.kill('SIGKILL');
    return child;
  }

  /** End the coprocess (stdin closed: nft exits; killed if it does not within a second). */
  async close(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    this.#fail(new NftError('nft -i closed', ''));
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
  }
}

/** Runs nft: whole tables through a new `nft -f -` process, changes through one long-lived `nft -i` ({@link NftShell}). */
export class NftProcess implements NftRunner {
  readonly #options: NftProcessOptions;
  readonly #shell: NftShell;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: NftProcessOptions = {}) {
    this.#options = options;
    this.#shell = new NftShell(options);
  }

  /** The coprocess, for metrics and tests. */
  get shell(): NftShell {
    return this.#shell;
  }

  load(script: string): Promise<void> {
    const [cmd, args] = argvOf(this.#options, ['-f', '-']);
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
    for (const c of commands) if (c.includes('\n') || hasTopLevelSemicolon(c)) return Promise.reject(new NftError(`nft command must be one line without a ';' outside braces: ${c}`, ''));
    const run = this.#queue.then(() => this.#shell.run(commands.join(' ; ')));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#shell.close();
  }
}

/** An in-memory runner that records what it was asked (tests inspect it). */
/**
 * A `;` outside `{ }` would end the command and start another on the shared line; inside braces it only separates
 * a body's statements (`add set … { type ipv4_addr; flags interval; }`, as network policy sends).
 */
function hasTopLevelSemicolon(command: string): boolean {
  let depth = 0;
  for (const ch of command) {
    if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    else if (ch === ';' && depth === 0) return true;
  }
  return false;
}

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
