import type { PluginSetup } from '../plugin.ts';
import { cachePlugin } from './cache.ts';
import { cacheMetrics } from './metrics.ts';

/** Upper bound on any cached TTL (an hour), whatever the upstream said. */
export const MAX_TTL_SECONDS = 3600;

/** `dns.cacheMaxEntries` 0 turns the cache into a pass-through. */
export const setup: PluginSetup = (context) => {
  if (context.config.cacheMaxEntries === 0) return (next) => next;
  return cachePlugin({ maxEntries: context.config.cacheMaxEntries, maxTtlSeconds: MAX_TTL_SECONDS, metrics: cacheMetrics(context.registry) });
};
