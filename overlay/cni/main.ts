/**
 * The `strata-cni` process (`bin/strata-cni`): stdin and CNI_* in, the
 * spec's result or error JSON out. The control plane is reached over HTTP
 * with the token in the configuration's `tokenFile`; the kernel through a
 * netlink socket in this process's namespace (the host's, where the
 * runtime runs plugins) and one opened inside CNI_NETNS.
 */
import { readFileSync } from 'node:fs';
import { StrataError } from '../../common/errors.ts';
import type { Network, OverlayAddress, OverlayLease } from '../../control-plane/model/schemas.ts';
import { ContainerNetworks } from '../attach.ts';
import { nativeNetns } from '../netns.ts';
import { NetlinkRtnl } from '../rtnl/socket.ts';
import { runCni, type CniConfig, type CniMaster } from './cni.ts';

function httpMaster(config: CniConfig): CniMaster {
  const call = async <T>(method: string, path: string, body?: object): Promise<T> => {
    let token: string;
    try {
      token = readFileSync(config.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new StrataError('CONFIG_INVALID', `cannot read tokenFile ${config.tokenFile}: ${(err as Error).message}`);
    }
    const res = await fetch(`${config.masterUrl.replace(/\/$/, '')}${path}`, {
      method,
      headers: { authorization: `token=${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) {
      const parsed = (() => {
        try {
          return JSON.parse(text) as { code?: string; message?: string };
        } catch {
          return {};
        }
      })();
      throw new StrataError(parsed.code === 'OVERLAY_CONTENDED' ? 'OVERLAY_CONTENDED' : 'OVERLAY_ATTACH', `${method} ${path}: ${res.status} ${parsed.message ?? text.slice(0, 300)}`);
    }
    return JSON.parse(text) as T;
  };
  const agent = (id: string): string => `/networking/api/v1/agents/${encodeURIComponent(id)}`;
  return {
    lease: (agentId) => call<OverlayLease>('GET', `${agent(agentId)}/overlay`),
    network: (name) => call<Network>('GET', `/networking/api/v1/networks/${encodeURIComponent(name)}`),
    assign: async (agentId, network, id) => (await call<{ addresses: OverlayAddress[] }>('POST', `${agent(agentId)}/overlay/addresses`, { network, taskId: id, holder: 'cni' })).addresses,
    release: async (agentId, network, id) => (await call<{ released: number }>('DELETE', `${agent(agentId)}/overlay/addresses/${encodeURIComponent(network)}/${encodeURIComponent(id)}`)).released,
  };
}

const chunks: Buffer[] = [];
if (process.env.CNI_COMMAND !== 'VERSION') for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
let host: NetlinkRtnl | undefined;
const outcome = await runCni({
  env: process.env,
  stdin: Buffer.concat(chunks).toString('utf8'),
  master: httpMaster,
  kernel: () => {
    const netns = nativeNetns();
    host ??= new NetlinkRtnl({ window: 8, timeoutMs: 5000 });
    return new ContainerNetworks({ host, netns });
  },
});
host?.close();
if (outcome.output) process.stdout.write(`${JSON.stringify(outcome.output)}\n`);
process.exitCode = outcome.exitCode;
