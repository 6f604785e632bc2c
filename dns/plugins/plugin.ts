/**
 * What a plugin's `setup` receives: the validated, frozen `dns` config
 * section, the authority, the shared metrics registry, a logger, and a way to
 * release what it opened (sockets) when the server closes. `setup` reads its
 * options from the config once (its `parse`) and returns the `Plugin`.
 */
import type { Registry } from 'prom-client';
import type { DnsConfig } from '../../control-plane/config/schema.ts';
import type { Plugin } from '../server/handler.ts';
import type { DnsLogger } from '../server/server.ts';
import type { Authority } from '../zone/types.ts';

export interface PluginContext {
  readonly config: Readonly<DnsConfig>;
  readonly authority: Authority;
  readonly registry: Registry;
  readonly logger: DnsLogger;
  /** Registers a cleanup run by the server's `close()`. */
  onClose(cleanup: () => void | Promise<void>): void;
}

export type PluginSetup = (context: PluginContext) => Plugin;
