/**
 * Runs `strata` verbs as real child processes (the Node running the tests,
 * which is the pinned Node 24) and waits for lines of their output. Every
 * process started here is killed when the test process exits.
 */
import { claimPortRange } from './ports.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

export function startStrata(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; netns?: string } = {}): StrataProcess {
  // `ip netns exec` execs the command in place: the child is strata itself.
  const [cmd, argv] = options.netns === undefined ? [process.execPath, [STRATA_BIN, ...args]] : ['ip', ['netns', 'exec', options.netns, process.execPath, STRATA_BIN, ...args]];
  const child = spawn(cmd, argv, {
    cwd: options.cwd,
    // Tests never program the root namespace's nftables or links (the VIP load balancer, network policy and the overlay are off unless a
    // test turns them on, in its own namespace), and DNS, xDS and gateway servers take free ports.
    env: { ...process.env, STRATA_DATAPLANE_L4LB: 'off', STRATA_OVERLAY_ENABLED: 'off', STRATA_DATAPLANE_POLICY: 'off', STRATA_DNS_UDP_PORT: '0', STRATA_DNS_TCP_PORT: '0', STRATA_XDS_PORT: '0', STRATA_XDS_MTLS_PORT: '0', STRATA_GATEWAY_PORT: '0', ...options.env },
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
export async function runStrata(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; netns?: string } = {}): Promise<{ code: number | string; output: string }> {
  const p = startStrata(args, options);
  const code = await p.exited();
  return { code, output: p.output() };
}


/**
 * `strata up` in a temp dir, logged in through `strata auth login`, with a
 * task port range of its own (so agents of test files running at once never
 * hand out the same host port). Everything goes when the test ends.
 */
export async function startUpLoggedIn(t: { teardown(fn: () => Promise<void> | void): void }, name: string): Promise<{
  dir: string;
  dataDir: string;
  env: { STRATA_CLI_CONFIG: string };
  up: StrataProcess;
  apiUrl: string;
  token: string;
  portBase: number;
}> {
  const dir = await mkdtemp(join(tmpdir(), `strata-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const ports = claimPortRange();
  t.teardown(() => ports.release());
  const portBase = ports.first;
  const up = startStrata(['up', '--data-dir', dataDir, '--api-port', '0', '--agent-port', '0', '--xds-port', '0', '--xds-mtls-port', '0', '--agent-port-ranges', `${portBase}-${portBase + 99}`], { env });
  t.teardown(async () => {
    up.kill('SIGKILL');
    await up.exited();
  });
  const [, apiUrl] = await up.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/);
  await up.waitFor(/Stop:/);
  const login = await runStrata(['auth', 'login', '--url', apiUrl!, '--password-file', join(dataDir, 'bootstrap-credentials.json')], { env });
  if (login.code !== 0) throw new Error(`login failed: ${login.output}`);
  const { token } = JSON.parse(await readFile(env.STRATA_CLI_CONFIG, 'utf8')) as { token: string };
  return { dir, dataDir, env, up, apiUrl: apiUrl!, token, portBase };
}

/**
 * `strata up` inside network namespace `netns` (created by the test), with
 * `env` (e.g. the load balancer or the overlay turned on), logged in with
 * `strata auth login` run in the same namespace; `cli` runs more verbs there.
 */
export async function startUpLoggedInNetns(
  t: { teardown(fn: () => Promise<void> | void): void },
  name: string,
  netns: string,
  env: Readonly<Record<string, string>>,
): Promise<{ dir: string; up: StrataProcess; apiUrl: string; cli(args: readonly string[]): Promise<{ code: number | string; output: string }> }> {
  const dir = await mkdtemp(join(tmpdir(), `strata-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const allEnv = { STRATA_CLI_CONFIG: join(dir, 'cli.json'), ...env };
  const up = startStrata(['up', '--data-dir', join(dir, 'data'), '--api-port', '0', '--agent-port', '0'], { env: allEnv, netns });
  t.teardown(async () => {
    up.kill('SIGKILL');
    await up.exited();
  });
  const [, apiUrl] = await up.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/, 60_000);
  await up.waitFor(/Stop:/);
  const cli = (args: readonly string[]) => runStrata(args, { env: allEnv, netns });
  const login = await cli(['auth', 'login', '--url', apiUrl!, '--password-file', join(dir, 'data', 'bootstrap-credentials.json')]);
  if (login.code !== 0) throw new Error(`login failed: ${login.output}`);
  return { dir, up, apiUrl: apiUrl!, cli };
}
