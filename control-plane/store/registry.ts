/**
 * Store backends registered by name (grpc-js's `registerResolver` pattern):
 * the configuration names one, `openStore` opens it. Each factory imports its
 * client library lazily, so a process loads only the backend it uses.
 */
import { isAbsolute, join } from 'node:path';
import { StrataError } from '../../common/errors.ts';
import type { StrataConfig } from '../config/schema.ts';
import type { StateStore } from './port.ts';

export type StoreFactory = (config: Readonly<StrataConfig>) => Promise<StateStore>;

const factories = new Map<string, StoreFactory>();

export function registerStoreBackend(name: string, factory: StoreFactory): void {
  factories.set(name, factory);
}

export function storeBackends(): string[] {
  return [...factories.keys()];
}

export async function openStore(config: Readonly<StrataConfig>): Promise<StateStore> {
  const factory = factories.get(config.store.backend);
  if (!factory) {
    throw new StrataError('STORE_BACKEND_UNKNOWN', `no store backend named ${JSON.stringify(config.store.backend)}; known: ${storeBackends().join(', ')}`);
  }
  return factory(config);
}

registerStoreBackend('embedded', async (config) => {
  const { openEmbeddedStore } = await import('./embedded/embedded-store.ts');
  const path = isAbsolute(config.store.embeddedPath) ? config.store.embeddedPath : join(config.dataDir, config.store.embeddedPath);
  return openEmbeddedStore({ path });
});

registerStoreBackend('etcd', async (config) => {
  const { openEtcdStore } = await import('./etcd/etcd-store.ts');
  return openEtcdStore({ endpoints: [...config.store.etcdEndpoints], prefix: config.store.prefix });
});

registerStoreBackend('consul', async (config) => {
  const { openConsulStore } = await import('./consul/consul-store.ts');
  return openConsulStore({
    address: config.store.consulAddress,
    prefix: config.store.prefix,
    ...(config.store.consulToken === undefined ? {} : { token: config.store.consulToken }),
  });
});
