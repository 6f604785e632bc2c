/**
 * The record store behind the authority: records grouped by the source
 * that contributed them (`task:<id>`, `cluster`), indexed by owner name.
 * Replacing one source touches only its own names, so a task change costs
 * the task's few dozen records, not the zone.
 *
 * Reads are de-duplicated per name and type (many tasks on one agent give
 * the same `web.marathon.slave.mesos A <agent>`); the de-duplicated lists
 * are cached per name until the name changes. Names that exist only
 * because a name below them does (empty non-terminals) are tracked too,
 * so they answer NODATA rather than NXDOMAIN (RFC 8020).
 */
import type { ResourceRecord } from './types.ts';

/**
 * The records at one name. Most names have one source (a task's own
 * names), so that case needs no map: `source`/`records` hold it, and
 * `more` appears only when a second source shares the name.
 */
interface NameNode {
  source: string | undefined;
  records: readonly ResourceRecord[];
  more: Map<string, readonly ResourceRecord[]> | undefined;
  /** De-duplicated records, all and by the types asked most; rebuilt on the first read after a change. */
  cache: NameCache | undefined;
}

/** Fixed shape (no map per name): a long-running server ends up with one per name. */
interface NameCache {
  readonly all: readonly ResourceRecord[];
  readonly a: readonly ResourceRecord[];
  readonly aaaa: readonly ResourceRecord[];
  readonly srv: readonly ResourceRecord[];
  readonly ptr: readonly ResourceRecord[];
}

const NONE: readonly ResourceRecord[] = Object.freeze([]);

/** A key equal for records with the same type and data (TTL aside). */
export function rdataKey(r: ResourceRecord): string {
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return `${r.type} ${r.address}`;
    case 'SRV':
      return `SRV ${r.priority} ${r.weight} ${r.port} ${r.target}`;
    case 'PTR':
    case 'NS':
    case 'CNAME':
      return `${r.type} ${r.target}`;
    case 'TXT':
      return `TXT ${JSON.stringify(r.text)}`;
    case 'SOA':
      return `SOA ${r.mname} ${r.rname} ${r.serial}`;
  }
}

export class ZoneIndex {
  readonly #nodes = new Map<string, NameNode>();
  readonly #sources = new Map<string, readonly ResourceRecord[]>();
  /** For each name with names below it: how many of its direct children exist (hold records or have names below). */
  readonly #below = new Map<string, number>();

  /** Grows with every change: a cache derived from several names is valid while this stays the same. */
  generation = 0;

  /** Number of names holding records. */
  get names(): number {
    return this.#nodes.size;
  }

  /** Number of records held (before de-duplication). */
  get records(): number {
    let n = 0;
    for (const rs of this.#sources.values()) n += rs.length;
    return n;
  }

  /** Replace what `source` contributes (`undefined` or empty: remove it). */
  set(source: string, records: readonly ResourceRecord[] | undefined): void {
    this.generation++;
    const old = this.#sources.get(source);
    if (old) {
      const names = new Set<string>();
      for (const r of old) names.add(r.name);
      for (const name of names) this.#detach(name, source);
    }
    if (!records || records.length === 0) {
      this.#sources.delete(source);
      return;
    }
    this.#sources.set(source, records);
    const byName = new Map<string, ResourceRecord[]>();
    for (const r of records) {
      const list = byName.get(r.name);
      if (list) list.push(r);
      else byName.set(r.name, [r]);
    }
    for (const [name, list] of byName) this.#attach(name, source, list);
  }

  has(source: string): boolean {
    return this.#sources.has(source);
  }

  /** What `source` contributes (read, never change). */
  recordsOf(source: string): readonly ResourceRecord[] {
    return this.#sources.get(source) ?? NONE;
  }

  /** Every source's records, in no particular order (read, never change). */
  *allRecords(): Iterable<ResourceRecord> {
    for (const rs of this.#sources.values()) yield* rs;
  }

  clear(): void {
    this.generation++;
    this.#nodes.clear();
    this.#sources.clear();
    this.#below.clear();
  }

  /** True if the name holds records or has names below it. */
  exists(name: string): boolean {
    return this.#nodes.has(name) || this.#below.has(name);
  }

  /** The name's records of one type (or every type for `undefined`), de-duplicated; a shared, frozen list. */
  get(name: string, type?: string): readonly ResourceRecord[] {
    const node = this.#nodes.get(name);
    if (!node) return NONE;
    const cache = (node.cache ??= build(node));
    switch (type) {
      case undefined:
        return cache.all;
      case 'A':
        return cache.a;
      case 'AAAA':
        return cache.aaaa;
      case 'SRV':
        return cache.srv;
      case 'PTR':
        return cache.ptr;
      default: {
        const found = cache.all.filter((r) => r.type === type);
        return found.length === 0 ? NONE : found;
      }
    }
  }

  #attach(name: string, source: string, records: readonly ResourceRecord[]): void {
    const node = this.#nodes.get(name);
    if (!node) {
      const existed = this.#below.has(name);
      this.#nodes.set(name, { source, records, more: undefined, cache: undefined });
      if (!existed) this.#born(name);
      return;
    }
    node.cache = undefined;
    if (node.source === undefined || node.source === source) {
      node.source = source;
      node.records = records;
    } else {
      (node.more ??= new Map()).set(source, records);
    }
  }

  #detach(name: string, source: string): void {
    const node = this.#nodes.get(name);
    if (!node) return;
    if (node.source === source) {
      node.source = undefined;
      node.records = NONE;
    } else if (!node.more?.delete(source)) {
      return;
    }
    node.cache = undefined;
    if (node.source === undefined && node.more && node.more.size > 0) {
      // Promote another source into the single slot.
      const [first, records] = node.more.entries().next().value as [string, readonly ResourceRecord[]];
      node.more.delete(first);
      node.source = first;
      node.records = records;
    }
    if (node.source !== undefined) return;
    this.#nodes.delete(name);
    if (!this.#below.has(name)) this.#died(name);
  }

  /** `name` began to exist: count it in its parent, and the parent's parent if that began to exist too. */
  #born(name: string): void {
    for (let child = name, dot = child.indexOf('.'); dot >= 0; dot = child.indexOf('.')) {
      const parent = child.slice(dot + 1);
      const n = this.#below.get(parent) ?? 0;
      this.#below.set(parent, n + 1);
      if (n > 0 || this.#nodes.has(parent)) return;
      child = parent;
    }
  }

  /** `name` ceased to exist: uncount it, and the parent if that ceased to exist too. */
  #died(name: string): void {
    for (let child = name, dot = child.indexOf('.'); dot >= 0; dot = child.indexOf('.')) {
      const parent = child.slice(dot + 1);
      const n = (this.#below.get(parent) ?? 1) - 1;
      if (n > 0) {
        this.#below.set(parent, n);
        return;
      }
      this.#below.delete(parent);
      if (this.#nodes.has(parent)) return;
      child = parent;
    }
  }
}

function ofType(all: readonly ResourceRecord[], type: ResourceRecord['type']): readonly ResourceRecord[] {
  let n = 0;
  for (const r of all) if (r.type === type) n++;
  if (n === 0) return NONE;
  if (n === all.length) return all;
  return Object.freeze(all.filter((r) => r.type === type));
}

function build(node: NameNode): NameCache {
  let all: readonly ResourceRecord[];
  if (!node.more && node.records.length === 1) {
    // The common case (one task's own name, one address): share the source's list.
    all = Object.isFrozen(node.records) ? node.records : Object.freeze(node.records);
  } else {
    const seen = new Set<string>();
    const out: ResourceRecord[] = [];
    const lists = node.more ? [node.records, ...node.more.values()] : [node.records];
    for (const records of lists) {
      for (const r of records) {
        const key = rdataKey(r);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(r);
      }
    }
    all = Object.freeze(out);
  }
  return { all, a: ofType(all, 'A'), aaaa: ofType(all, 'AAAA'), srv: ofType(all, 'SRV'), ptr: ofType(all, 'PTR') };
}
