import { StrataError } from '../../../common/errors.ts';
import type { DnsConfig } from '../../../control-plane/config/schema.ts';
import type { PluginSetup } from '../plugin.ts';
import { createUpstreamExchange } from './exchange.ts';
import { forwardPlugin, type ForwardZone } from './forward.ts';
import { UpstreamHealth } from './health.ts';
import { forwardMetrics } from './metrics.ts';
import { parseUpstream, type Upstream } from './upstream.ts';

/** Failure scores halve every 30 s: a dead upstream is avoided for a few minutes at most after it recovers. */
export const FAILURE_HALF_LIFE_MS = 30_000;

const ZONE = /^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** The forwarder's options from the `dns` config section; throws naming the bad field. */
export function parse(config: Readonly<DnsConfig>): { upstreams: Upstream[]; zones: ForwardZone[] } {
  const upstreams = config.upstreams.map((u, i) => parseUpstream(u, `dns.upstreams[${i}]`));
  const zones = Object.entries(config.forwardZones).map(([zone, servers]): ForwardZone => {
    const name = zone.toLowerCase().replace(/\.$/, '');
    if (!ZONE.test(name) || name.length > 253) {
      throw new StrataError('CONFIG_INVALID', `config: dns.forwardZones ${JSON.stringify(zone)} is not a DNS zone name`, { details: { field: 'dns.forwardZones', value: zone } });
    }
    return { zone: name, servers: servers.map((s, i) => parseUpstream(s, `dns.forwardZones[${JSON.stringify(zone)}][${i}]`)) };
  });
  return { upstreams, zones };
}

export const setup: PluginSetup = (context) => {
  const { upstreams, zones } = parse(context.config);
  const metrics = forwardMetrics(context.registry);
  const exchange = createUpstreamExchange({ onUnmatched: (reason) => metrics.unmatched.inc({ reason }) });
  context.onClose(() => exchange.close());
  return forwardPlugin({
    upstreams,
    zones,
    upstreamTimeoutMs: context.config.upstreamTimeoutMs,
    forwardTimeoutMs: context.config.forwardTimeoutMs,
    exchange,
    health: new UpstreamHealth({ halfLifeMs: FAILURE_HALF_LIFE_MS }),
    metrics,
  });
};
