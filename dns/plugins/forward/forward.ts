/**
 * `forward`: the Spartan-style dispatcher for every name the plugins above
 * did not answer. `forwardZones` route their names to their own servers
 * (longest zone wins), everything else goes to the upstream resolvers.
 *
 * Per query: ask 2 upstreams at once (all of them when fewer than 3), chosen
 * by recent health (health.ts); relay the first good reply. SERVFAIL and
 * REFUSED are not good: while another attempt is running or a fallback is
 * left, keep waiting (Spartan returned the first reply, whatever it was). A
 * failed attempt (bad rcode, per-upstream timeout, network error, garbage)
 * starts the next fallback. When nothing is left, relay the last bad reply
 * if there was one, else SERVFAIL; at the overall timeout, the same.
 *
 * Replies are relayed byte-for-byte (RFC 5625): EDNS, DO, unknown types and
 * TC pass through; only the ID is the client's. A TCP query is forwarded
 * over TCP.
 */
import { RCODE } from '../../codec/constants.ts';
import { emptyReply, type DnsReply, type DnsRequest, type Handler, type Plugin } from '../../server/handler.ts';
import { inZone } from '../authority/authority.ts';
import type { Attempt, UpstreamExchange } from './exchange.ts';
import { planAttempts, type UpstreamHealth } from './health.ts';
import type { ForwardMetrics } from './metrics.ts';
import type { Upstream } from './upstream.ts';

export const NAME = 'forward';

export interface ForwardZone {
  readonly zone: string;
  readonly servers: readonly Upstream[];
}

export interface ForwardOptions {
  readonly upstreams: readonly Upstream[];
  /** Lower case zones; matched longest first. */
  readonly zones: readonly ForwardZone[];
  readonly upstreamTimeoutMs: number;
  readonly forwardTimeoutMs: number;
  readonly exchange: UpstreamExchange;
  readonly health: UpstreamHealth;
  readonly metrics: ForwardMetrics;
  readonly now?: () => number;
  readonly random?: () => number;
  /** Default {@link MAX_IN_FLIGHT}. */
  readonly maxInFlight?: number;
}

/** The servers for a name: its longest forward zone's, else the upstreams. */
export function route(options: Pick<ForwardOptions, 'upstreams' | 'zones'>, nameLower: string): readonly Upstream[] {
  let best: ForwardZone | undefined;
  for (const z of options.zones) {
    if (inZone(nameLower, z.zone) && (!best || z.zone.length > best.zone.length)) best = z;
  }
  return best ? best.servers : options.upstreams;
}

const isBad = (rcode: number): boolean => rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED;

/**
 * Queries being forwarded at once, at most (Spartan: 1024 handlers). Beyond
 * it, SERVFAIL at once: a flood towards a dead upstream must not turn into
 * unbounded pending state.
 */
export const MAX_IN_FLIGHT = 10_000;

export function forwardPlugin(options: ForwardOptions): Plugin {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const { exchange, health, metrics } = options;

  let inFlight = 0;
  const dispatch = (request: DnsRequest, servers: readonly Upstream[]): Promise<DnsReply> =>
    new Promise<DnsReply>((resolve) => {
      inFlight++;
      const plan = planAttempts(servers, (key) => health.score(key, now()), random);
      const fallbacks = [...plan.fallbacks];
      const running = new Set<Attempt>();
      let done = false;
      let lastBad: Buffer | undefined;
      // Attempts still running when the reply is chosen are left to finish
      // (or time out) unobserved by the client: their outcome keeps the
      // health scores honest, so a dead upstream that lost every race still
      // ranks below the live ones. Only closing the exchange cancels them.
      const finish = (bytes: Buffer | undefined): void => {
        if (done) return;
        done = true;
        inFlight--;
        if (overall !== undefined) clearTimeout(overall);
        const reply = bytes ?? lastBad;
        resolve(reply ? { kind: 'relay', plugin: NAME, bytes: reply } : emptyReply(NAME, RCODE.SERVFAIL));
      };
      // The overall timeout. Without fallbacks the first attempts settle
      // within upstreamTimeoutMs (the exchange's contract), so when that is
      // the shorter of the two, the timer starts only if a fallback is
      // launched (one timer per query instead of two: the common case of 1-2
      // upstreams).
      const dispatchedMs = now();
      let overall: NodeJS.Timeout | undefined;
      const armOverall = (): void => {
        if (overall === undefined && !done) overall = setTimeout(() => finish(undefined), Math.max(0, options.forwardTimeoutMs - (now() - dispatchedMs)));
      };
      if (fallbacks.length > 0 || options.forwardTimeoutMs <= options.upstreamTimeoutMs) armOverall();
      const launch = (upstream: Upstream): void => {
        const startedMs = performance.now();
        const attempt = exchange.exchange(upstream, request.bytes, request.query.questionEnd, request.transport, options.upstreamTimeoutMs);
        running.add(attempt);
        void attempt.result.then((result) => {
          running.delete(attempt);
          // Aborted only when the exchange closes: the server is stopping.
          if (!result.ok && result.reason === 'aborted') return finish(undefined);
          if (result.ok) {
            metrics.upstreamSeconds.cell(upstream.key).observe((performance.now() - startedMs) / 1000);
            const rcode = result.bytes[3]! & 0x0f;
            if (!isBad(rcode)) {
              health.recordSuccess(upstream.key, now());
              finish(result.bytes);
              return;
            }
            if (!done) lastBad = result.bytes;
            metrics.upstreamFailures.inc({ upstream: upstream.key, reason: rcode === RCODE.SERVFAIL ? 'SERVFAIL' : 'REFUSED' });
          } else {
            metrics.upstreamFailures.inc({ upstream: upstream.key, reason: result.reason });
          }
          health.recordFailure(upstream.key, now());
          if (done) return;
          const next = fallbacks.shift();
          if (next) {
            armOverall();
            launch(next);
          }
          else if (running.size === 0) finish(undefined);
        }).catch(() => finish(undefined)); // a bug here must cost one SERVFAIL, not the process
      };
      for (const upstream of plan.first) launch(upstream);
    });

  return (_next: Handler): Handler => ({
    name: NAME,
    serve(request: DnsRequest): DnsReply | Promise<DnsReply> {
      const servers = route(options, request.query.nameLower);
      // No resolvers configured: refuse, as Mesos-DNS with externalOn false.
      if (servers.length === 0) return emptyReply(NAME, RCODE.REFUSED);
      if (inFlight >= (options.maxInFlight ?? MAX_IN_FLIGHT)) {
        metrics.overloaded.inc();
        return emptyReply(NAME, RCODE.SERVFAIL);
      }
      return dispatch(request, servers);
    },
  });
}
