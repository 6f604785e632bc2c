/**
 * Runs `strata` verbs as real child processes (the Node running the tests,
 * which is the pinned Node 24) and waits for lines of their output. Every
 * process started here is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const STRATA_BIN = fileURLToPath(new URL('../../bin/strata.mjs', import.meta.url));

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface StrataProcess {
  readonly child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal name). */
  exited(): Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export function startStrata(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): StrataProcess {
  const child = spawn(process.execPath, [STRATA_BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
      for (const l of listeners) l();
    });
  });
  return {
    child,
    output: () => text,
    exited: () => exit,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = text.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            cleanup();
            reject(new Error(`strata ${args.join(' ')} exited before printing ${pattern}:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}:\n${text}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Run a verb to completion. */
export async function runStrata(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | string; output: string }> {
  const p = startStrata(args, options);
  const code = await p.exited();
  return { code, output: p.output() };
}
