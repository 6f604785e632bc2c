/**
 * Upstream addresses as users write them (Spartan's `ip:port`): `10.0.0.1`,
 * `10.0.0.1:5353`, `[fd00::1]:53`, `fd00::1`. Port 53 when omitted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { StrataError } from '../../../common/errors.ts';

export interface Upstream {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** `ip:port` (`[ip6]:port`): the metrics label and health key. */
  readonly key: string;
}

/** Parses one address; throws `DNS_UPSTREAM_INVALID` naming `field` and the value. */
export function parseUpstream(text: string, field: string): Upstream {
  const bad = (why: string): StrataError =>
    new StrataError('DNS_UPSTREAM_INVALID', `dns: ${field} ${JSON.stringify(text)} ${why}`, { details: { field, value: text } });
  let host = text;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (!isIPv6(text)) {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      port = /^\d+$/.test(text.slice(colon + 1)) ? Number(text.slice(colon + 1)) : NaN;
    }
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad('has a port outside 1-65535');
  if (isIPv4(host)) return { host, port, family: 4, key: `${host}:${port}` };
  if (isIPv6(host)) return { host, port, family: 6, key: `[${host}]:${port}` };
  throw bad('is not an IP address with an optional port (ip, ip:port or [ipv6]:port)');
}
