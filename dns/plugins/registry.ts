/**
 * Plugins by name (CoreDNS's `plugin.Register`, grpc-js's registries). The
 * chain order is data: `dns.chain` in the config, default {@link DEFAULT_CHAIN}.
 */
import { StrataError } from '../../common/errors.ts';
import { setup as authority } from './authority/setup.ts';
import { setup as cache } from './cache/setup.ts';
import { setup as forward } from './forward/setup.ts';
import type { PluginSetup } from './plugin.ts';
import { setup as ready } from './ready/setup.ts';

export const PLUGINS: Readonly<Record<string, PluginSetup>> = { ready, authority, cache, forward };

/**
 * Order matters: `ready` first so the health name never depends on anything;
 * `authority` before `cache`, so internal names are never cached or delayed;
 * `forward` last, as it answers everything.
 */
export const DEFAULT_CHAIN = ['ready', 'authority', 'cache', 'forward'] as const;

export function pluginSetup(name: string): PluginSetup {
  const setup = Object.hasOwn(PLUGINS, name) ? PLUGINS[name] : undefined;
  if (!setup) throw new StrataError('DNS_PLUGIN_UNKNOWN', `dns: no plugin named ${JSON.stringify(name)} (known: ${Object.keys(PLUGINS).join(', ')})`);
  return setup;
}
