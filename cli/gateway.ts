/** `strata gateway status`: the gateway's address, certificate, upstream and app endpoints. */
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface GatewayStatus {
  url: string;
  api: string;
  caFingerprint: string;
  certificate: { serial: string; notAfter: string; renewAt: string; names: string[] };
  services: { appId: string; backends: number }[];
  /** The keep-alive pool to the upstreams (absent from gateways before it). */
  upstreamConnections?: { active: number; idle: number };
}

/** `strata gateway status`: the gateway's address, certificate, upstream and app endpoints (through the gateway you logged in to). */
export async function gatewayStatus(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  if (!state.url.startsWith('https://')) {
    throw new UsageError(`you are logged in to ${state.url}, not to a gateway: log in through it (strata auth login --url https://HOST:8443 --ca-fingerprint ...; strata up prints the line)`);
  }
  const status = await apiRequest<GatewayStatus>(state, 'GET', '/gateway/v1/status');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(status, null, 2));
    return 0;
  }
  console.log([
    `gateway:      ${status.url}`,
    `upstream API: ${status.api}`,
    ...(status.upstreamConnections ? [`upstream pool: ${status.upstreamConnections.active} active, ${status.upstreamConnections.idle} idle (kept alive)`] : []),
    `certificate:  serial ${status.certificate.serial}, for ${status.certificate.names.join(', ')}; expires ${status.certificate.notAfter}, renews at ${status.certificate.renewAt}`,
    `cluster CA:   SHA-256 ${status.caFingerprint}`,
    '',
    status.services.length === 0 ? 'no apps (each app is served at /service/<app-id>/)' : table(['SERVICE', 'HEALTHY TASKS'], status.services.map((s) => [`/service${s.appId}/`, String(s.backends)])),
  ].join('\n'));
  return 0;
}
