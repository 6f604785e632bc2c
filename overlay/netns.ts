/**
 * Network namespaces for tasks, through the `strata_netns` addon
 * (`native/strata_netns.c`, node-api only, built by `npm ci` from the
 * root `binding.gyp`): create one kept alive by a bind mount (as `ip netns
 * add`), remove it, and run a synchronous function with the main thread
 * inside one. A netlink socket opened in that function, or a process
 * spawned in it, belongs to the namespace for good (`openRtnlIn`,
 * the executor's spawn). Why an addon and not `ip netns exec` per task:
 * docs/architecture.md ("Tasks in network namespaces").
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { StrataError } from '../common/errors.ts';

/** Where task namespaces are mounted: iproute2's directory, so `ip netns exec strata-…` works on them. */
export const NETNS_DIR = '/run/netns';

/** What Strata asks of network namespaces; `nativeNetns()` is the real one. */
export interface NetnsOps {
  /** A new, empty network namespace (only `lo`, down) mounted at `path`; OVERLAY_NETNS (errno EEXIST) if `path` exists. */
  create(path: string): void;
  /** Unmount and remove `path`; nothing if it is gone. The namespace ends once no process or socket holds it. */
  remove(path: string): void;
  /** Run `fn` (synchronous) inside the namespace at `path` and return its result; a promise returned by `fn` is refused. */
  within<T>(path: string, fn: () => T): T;
}

interface Addon {
  createNetns(path: string, share: boolean): void;
  removeNetns(path: string): void;
  withNetns(path: string, fn: () => unknown): unknown;
}

const require = createRequire(import.meta.url);
let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const file = join(import.meta.dirname, '..', 'build', 'Release', 'strata_netns.node');
  try {
    addon = require(file) as Addon;
  } catch (err) {
    throw new StrataError('OVERLAY_NETNS', `the strata_netns addon is not built (${file}): run \`npm ci\` or \`npm run build:native\` (needs make and a C compiler)`, { cause: err });
  }
  return addon;
}

/** Whether the addon can be loaded (tests skip namespace work without it). */
export function netnsAddonMissing(): string | undefined {
  try {
    load();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const wrap = (err: unknown): StrataError => {
  const e = err as Error & { errno?: number };
  return err instanceof StrataError ? err : new StrataError('OVERLAY_NETNS', e.message, { cause: err, ...(e.errno !== undefined ? { details: { errno: e.errno } } : {}) });
};

export function nativeNetns(): NetnsOps {
  const a = load();
  return {
    create(path) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      try {
        // /run/netns is made a shared mount point as iproute2 does (mounts there reach other mount namespaces); other directories are left as they are.
        a.createNetns(path, dirname(path) === NETNS_DIR);
      } catch (err) {
        throw wrap(err);
      }
    },
    remove(path) {
      try {
        a.removeNetns(path);
      } catch (err) {
        throw wrap(err);
      }
    },
    within<T>(path: string, fn: () => T): T {
      let result: unknown;
      try {
        result = a.withNetns(path, fn);
      } catch (err) {
        if (err instanceof Error && (err as { code?: string }).code === 'OVERLAY_NETNS') throw wrap(err);
        throw err;
      }
      if (result instanceof Promise) throw new StrataError('OVERLAY_NETNS', 'within(): the function must be synchronous (it ran inside the namespace only until its first await)');
      return result as T;
    },
  };
}

/** The namespace path of a task (`/run/netns/strata-<12 hex of the id>`), the same after an agent restart. */
export function taskNetnsPath(taskId: string, dir = NETNS_DIR): string {
  return join(dir, `strata-${createHash('sha256').update(taskId).digest('hex').slice(0, 12)}`);
}

/** The host end of a container's veth (`sv<12 hex>`, 14 characters: interface names hold 15). */
export function hostVethName(id: string): string {
  return `sv${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;
}
