/**
 * VIP port labels (DC/OS): a port label whose key starts with `VIP` or `vip`
 * (`VIP_0`, …) publishes the port as a VIP. The value is split on its last
 * `:`: an IP literal before it gives an IP VIP (`10.0.0.1:80`), anything else
 * a named VIP (`/mygroup/myapp:80`, reached as
 * `<name>.<framework>.l4lb.thisdcos.directory:<port>`).
 */
import { isIP } from 'node:net';
import { domainFrag, rfc1123Label } from '../../common/dns-labels.ts';

export type VipLabel =
  | { readonly kind: 'named'; readonly name: string; readonly port: number }
  | { readonly kind: 'ip'; readonly ip: string; readonly family: 4 | 6; readonly port: number };

/** Names of named VIPs: `/`-separated elements of letters, digits, `_`, `.`, `-`; an optional leading `/`. */
export const NAMED_VIP_PATTERN = /^\/?[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;
export const VIP_NAME_MAX_LENGTH = 128;

export function isVipLabelKey(key: string): boolean {
  return key.startsWith('VIP') || key.startsWith('vip');
}

/** The VIP a label value names, or `undefined` if it is not `name:port` / `ip:port`. */
export function parseVipLabel(value: string): VipLabel | undefined {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  const family = isIP(host);
  if (family === 4 || family === 6) return { kind: 'ip', ip: host, family, port };
  if (host.length > VIP_NAME_MAX_LENGTH || !NAMED_VIP_PATTERN.test(host)) return undefined;
  return { kind: 'named', name: host, port };
}

/**
 * The DNS name part of a named VIP, as dcos-net derives it (`domain_frag`
 * over Mesos-DNS's label rules, `common/dns-labels.ts`): each `.`-separated
 * part made an RFC 1123 label (lower case; `/` dropped; `_` to `-`), empty
 * parts dropped. `/mygroup/myapp` gives `mygroupmyapp`
 * (`mygroupmyapp.marathon.l4lb.thisdcos.directory`); empty when nothing is
 * left. The DNS zones (`dns/zone`) and the VIP conflict check use this one
 * function, so a name the check lets through is the name DNS serves.
 */
export function vipDnsLabel(name: string): string {
  return domainFrag(name, rfc1123Label);
}
