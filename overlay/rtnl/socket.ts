/**
 * The rtnetlink transport: the `netlink` package's socket (sequence
 * numbers, multipart dumps, ACK matching), with its gaps fixed around
 * (../shared/reference/net-calibration.md §1):
 *
 * - Errors carry errno: requests go with `checkError: false` and the
 *   NLMSG_ERROR payload is decoded here, so a refusal is
 *   `OVERLAY_NETLINK` with `details: {errno, code, request}` instead of the
 *   package's bare "Request rejected: EEXIST" string.
 * - Bounded in flight: at most `window` requests (default 32) wait for a
 *   reply at once, and the receive buffer is 4 MiB, so a burst of thousands
 *   of requests never overflows the socket (which aborts the process in the
 *   package's native layer).
 * - Dumps run alone on the socket: the package assembles multipart replies
 *   in one buffer per socket, so concurrent dumps corrupt each other (and
 *   the kernel refuses a second dump on a socket with EBUSY).
 * - Socket errors and a closed socket fail the waiting requests instead of
 *   hanging them (every request has a timeout) or crashing on an unhandled
 *   `error` event.
 * - Messages are built by `codec.ts` (NLA_F_NESTED set, onlink explicit).
 *
 * Not fixable from here: NETLINK_EXT_ACK (the kernel's extended error text)
 * cannot be enabled through the package; and the socket lives in the
 * network namespace of the process that opens it (run the agent in the
 * host namespace, or under `ip netns exec` in tests).
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { StrataError } from '../../common/errors.ts';
import { NLMSG_DONE, NLMSG_ERROR, errorOf, type Request } from './codec.ts';

const require = createRequire(import.meta.url);

interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly data: Buffer;
}
interface PackageSocket {
  request(type: number, data: Uint8Array, options: { flags: number; checkError: false; timeout: number }): Promise<[NlMessage[] | NlMessage, unknown]>;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  readonly socket: { on(event: 'error', listener: (err: Error) => void): unknown };
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));
export const errnoName = (errno: number): string => ERRNO_NAMES.get(errno) ?? `errno ${errno}`;

/** What the overlay asks of rtnetlink; `NetlinkRtnl` is the real one, tests may fake it. */
export interface Rtnl {
  /** Send one request; resolves on the kernel's ACK, rejects with OVERLAY_NETLINK (details.errno) on its refusal. */
  request(request: Request): Promise<void>;
  /** A dump: the payloads of every reply message. */
  dump(request: Request): Promise<Buffer[]>;
  close(): void;
}

export interface NetlinkRtnlOptions {
  /** Most requests waiting for a reply at once (default 32). */
  readonly window?: number;
  /** Per-request timeout in ms (default 10,000). */
  readonly timeoutMs?: number;
  readonly recvBufferSize?: number;
}

export function netlinkError(request: Request, errno: number): StrataError {
  const code = errnoName(errno);
  return new StrataError('OVERLAY_NETLINK', `${request.what}: the kernel refused it: ${code}`, { details: { errno, code, request: request.what } });
}

export class NetlinkRtnl implements Rtnl {
  readonly #socket: PackageSocket;
  readonly #window: number;
  readonly #timeoutMs: number;
  #inFlight = 0;
  #dumping = false;
  readonly #queue: { readonly kind: 'request' | 'dump'; readonly wake: () => void }[] = [];
  #failed: Error | undefined;

  constructor(options: NetlinkRtnlOptions = {}) {
    const { createRtNetlink } = require('netlink') as { createRtNetlink(o: object): { socket: PackageSocket } };
    this.#socket = createRtNetlink({ recvBufferSize: options.recvBufferSize ?? 4 << 20 }).socket;
    this.#window = options.window ?? 32;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const onError = (err: Error): void => {
      this.#failed = new StrataError('OVERLAY_NETLINK', `the netlink socket failed: ${err.message}`, { cause: err });
    };
    this.#socket.on('error', onError);
    this.#socket.socket.on('error', onError);
  }

  /** Hand free capacity to waiters in arrival order: requests while the window has room, a dump once nothing else is in flight. */
  #pump(): void {
    for (;;) {
      const head = this.#queue[0];
      if (!head || this.#dumping) return;
      if (head.kind === 'dump') {
        if (this.#inFlight > 0) return;
        this.#dumping = true;
      } else {
        if (this.#inFlight >= this.#window) return;
        this.#inFlight++;
      }
      this.#queue.shift();
      head.wake();
    }
  }

  async #run<T>(kind: 'request' | 'dump', fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((wake) => {
      this.#queue.push({ kind, wake });
      this.#pump();
    });
    try {
      if (this.#failed) throw this.#failed;
      return await fn();
    } finally {
      if (kind === 'dump') this.#dumping = false;
      else this.#inFlight--;
      this.#pump();
    }
  }

  async #send(request: Request): Promise<NlMessage[]> {
    try {
      const [reply] = await this.#socket.request(request.type, request.payload, { flags: request.flags, checkError: false, timeout: this.#timeoutMs });
      return Array.isArray(reply) ? reply : [reply];
    } catch (err) {
      throw this.#failed ?? new StrataError('OVERLAY_NETLINK', `${request.what}: ${(err as Error).message}`, { cause: err, details: { request: request.what } });
    }
  }

  request(request: Request): Promise<void> {
    return this.#run('request', async () => {
      const replies = await this.#send(request);
      for (const m of replies) {
        if (m.type === NLMSG_ERROR) {
          const errno = errorOf(m.data);
          if (errno !== 0) throw netlinkError(request, errno);
        }
      }
    });
  }

  dump(request: Request): Promise<Buffer[]> {
    return this.#run('dump', async () => {
      const replies = await this.#send(request);
      const out: Buffer[] = [];
      for (const m of replies) {
        if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) {
          const errno = errorOf(m.data);
          if (errno !== 0) throw netlinkError(request, errno);
          continue;
        }
        out.push(m.data);
      }
      return out;
    });
  }

  close(): void {
    this.#socket.close();
  }
}
