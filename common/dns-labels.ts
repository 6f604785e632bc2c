/**
 * Name mangling as Mesos-DNS does it (MD `records/labels/labels.go`,
 * `records/generator.go`), so names users already rely on stay the same:
 * lower case, `[a-z0-9]` kept, `-`, `.` and `_` mapped to `-`, everything
 * else dropped, leading `-` trimmed, cut to 63 characters (RFC 1123) or 24
 * with leading digits trimmed too (RFC 952), trailing `-` trimmed.
 *
 * Unlike Mesos-DNS, the result is always a valid label or empty (Mesos-DNS
 * could end a refilled label with `-`, MD #432), and the SRV form `_<label>`
 * is kept within 63 characters (MD #522).
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';

/** A function from any text to one DNS label (possibly empty). */
export type LabelSpec = (name: string) => string;

/** Longest DNS label and name (RFC 1035). */
export const MAX_LABEL_LENGTH = 63;
export const MAX_NAME_LENGTH = 253;

function mapped(name: string): string {
  let out = '';
  for (const ch of name) {
    const c = ch.toLowerCase();
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += c;
    else if (ch === '-' || ch === '.' || ch === '_') out += '-';
  }
  return out;
}

function trimLeft(s: string, cut: string): string {
  let i = 0;
  while (i < s.length && cut.includes(s[i]!)) i++;
  return s.slice(i);
}

function trimRight(s: string, cut: string): string {
  let i = s.length;
  while (i > 0 && cut.includes(s[i - 1]!)) i--;
  return s.slice(0, i);
}

/**
 * Mesos-DNS's `trimCut`: cut at `maxLength`; if trimming the right cutset
 * shortened the head, refill it from what follows the cut. The final trim
 * keeps the label valid where Mesos-DNS's refill could end it with `-`.
 */
function trimCut(label: string, maxLength: number, left: string, right: string): string {
  const trimmed = trimLeft(label, left);
  const size = Math.min(trimmed.length, maxLength);
  const head = trimRight(trimmed.slice(0, size), right);
  if (head.length === size) return head;
  const tail = trimLeft(trimmed.slice(size), right);
  return trimRight(head + tail.slice(0, size - head.length), right);
}

/** RFC 1123 label, at most 63 characters (Mesos-DNS's default). */
export const rfc1123Label: LabelSpec = (name) => trimCut(mapped(name), MAX_LABEL_LENGTH, '-', '-');

/** RFC 952 label: at most 24 characters, starting with a letter (Mesos-DNS `enforceRFC952`). */
export const rfc952Label: LabelSpec = (name) => trimCut(mapped(name), 24, '-0123456789', '-');

/** The label rule the options select. */
export function labelSpec(enforceRfc952: boolean): LabelSpec {
  return enforceRfc952 ? rfc952Label : rfc1123Label;
}

/** Dot-separated parts each made a label, empty ones dropped (Mesos-DNS `DomainFrag`; framework names keep their dots). */
export function domainFrag(name: string, spec: LabelSpec): string {
  const out: string[] = [];
  for (const part of name.split('.')) {
    const label = spec(part);
    if (label !== '') out.push(label);
  }
  return out.join('.');
}

/** A label cut so that `_<label>` (an SRV service or port label) fits in 63 characters. */
export function underscoreLabel(label: string): string {
  if (label.length < MAX_LABEL_LENGTH) return `_${label}`;
  return `_${trimRight(label.slice(0, MAX_LABEL_LENGTH - 1), '-')}`;
}

/** `<first label>` shortened so that `<first label><suffix>` is one label of at most 63 characters. */
export function withLabelSuffix(label: string, suffix: string): string {
  const room = MAX_LABEL_LENGTH - suffix.length;
  if (label.length <= room) return `${label}${suffix}`;
  return `${trimRight(label.slice(0, Math.max(0, room)), '-')}${suffix}`;
}

const ZBASE32 = 'ybndrfg8ejkmcpqxot1uwisza345h769';

/**
 * Mesos-DNS's `<h5>`: the first 5 characters of zbase32(SHA-1(task id)),
 * i.e. the hash's first 25 bits, 5 at a time, most significant first.
 */
export function taskIdHash(taskId: string): string {
  return zbase32Head(createHash('sha1').update(taskId).digest());
}

/** The first 5 zbase32 characters of at least 4 bytes (25 bits, most significant first). */
export function zbase32Head(bytes: Uint8Array): string {
  const top = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  let out = '';
  for (let i = 0; i < 5; i++) out += ZBASE32[(top >>> (27 - 5 * i)) & 31];
  return out;
}

/** The last `-` field of an agent id, lower-cased and made a label (Mesos-DNS `slaveIDTail`: `…-S3` → `s3`). */
export function agentIdTail(agentId: string, spec: LabelSpec): string {
  const fields = agentId.split('-');
  return spec(fields[fields.length - 1]!.toLowerCase());
}

/** Marathon's `PathId.toHostname`: the path's elements reversed, joined with `.` (`/group/web` → `web.group`). */
export function marathonHostname(appId: string): string {
  return appId
    .split('/')
    .filter((p) => p !== '')
    .reverse()
    .join('.');
}

/** True if every label is 1–63 characters of `[a-z0-9_-]` not starting or ending with `-`, and the name is at most 253 characters. */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

const NAME = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/** The reverse-lookup name of an address (`10.0.0.1` → `1.0.0.10.in-addr.arpa`), or undefined if it is not an IP literal. */
export function reverseName(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  if (family !== 6) return undefined;
  return `${expandIpv6(address).split('').reverse().join('.')}.ip6.arpa`;
}

/** The 32 hex digits of an IPv6 address (handles `::` and an embedded IPv4 tail). */
export function expandIpv6(address: string): string {
  let text = address.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headParts.length - tailParts.length;
  const groups = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  return groups.map((g) => g.padStart(4, '0')).join('');
}
