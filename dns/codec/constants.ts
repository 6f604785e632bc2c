/**
 * Wire numbers of the DNS protocol that the codec and server use. Plain
 * objects (no enums): the server looks types up by mnemonic and back.
 */

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const CLASS_IN = 1;

export const OPCODE_QUERY = 0;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (EDNS) rcode: upper 8 bits go in the OPT TTL, lower 4 in the header. */
  BADVERS: 16,
} as const;

export type RcodeName = keyof typeof RCODE;

const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([k, v]) => [v, k]));

/** `NOERROR`, `SERVFAIL`, … or `RCODE<n>` for the rest (metrics labels). */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES.get(rcode) ?? `RCODE${rcode}`;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

/** Mnemonic of a type number, or `TYPE<n>` (RFC 3597) for the rest. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

/** Header size in bytes. */
export const HEADER_BYTES = 12;
/** Largest UDP answer without EDNS (RFC 1035). */
export const CLASSIC_UDP_BYTES = 512;
/** Largest name on the wire, length bytes included (RFC 1035 3.1). */
export const MAX_NAME_BYTES = 255;
export const MAX_LABEL_BYTES = 63;
/** Smallest resource record: root name (1) + type, class, ttl, rdlength (10). */
export const MIN_RR_BYTES = 11;
