/**
 * The record store behind the authority: records grouped by the source
 * that contributed them (a task's id, `cluster`), indexed by owner name.
 * Replacing one source touches only its own names, so a task change costs
 * the task's few dozen records, not the zone.
 *
 * Compact by construction (issue 4: RSS ≤ 150 MB at 100,000 names), with
 * no JS object per name or per record:
 * - every name (owners, SRV/PTR/NS targets, and the ancestors of owners)
 *   is interned once: one `Map` from the lower-case name to a small id;
 *   the name's string is that map's key and nothing else holds a copy;
 * - a record is one slot of a set of typed arrays (owner id, type, TTL,
 *   data: an IPv4 address as 32 bits, a target as a name id, SRV fields
 *   packed); only AAAA and rare types keep a value aside;
 * - equal records (type and data, TTL aside) at one name are one slot with
 *   a count of the sources holding it, so many tasks on one agent cost one
 *   `web.marathon.slave.mesos A <agent>`; reads are therefore already
 *   de-duplicated, in the order records first arrived;
 * - the records at a name are a linked list through the record slots;
 *   a name's count of existing children makes empty non-terminals answer
 *   NODATA rather than NXDOMAIN (RFC 8020).
 *
 * Reads build plain `ResourceRecord` objects on demand (fresh arrays the
 * caller may keep; the wire server keeps encoded answers, not these).
 */
import type { ResourceRecord } from './types.ts';

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

// Record type codes in the `type` array (0: free slot).
const T_A = 1;
const T_AAAA = 2;
const T_SRV = 3;
const T_PTR = 4;
const T_NS = 5;
const T_CNAME = 6;
const T_TXT = 7;
const T_SOA = 8;
const TYPE_CODES: Readonly<Record<ResourceRecord['type'], number>> = { A: T_A, AAAA: T_AAAA, SRV: T_SRV, PTR: T_PTR, NS: T_NS, CNAME: T_CNAME, TXT: T_TXT, SOA: T_SOA };
/** `data` of a record whose value is kept aside (`#aside`). */
const ASIDE = -1;
const NIL = -1;
/** Capacity growth of the arrays when full (1.5: at most a third unused, against a half when doubling). */
const GROWTH = 1.5;

/** `a.b.c.d` as an unsigned 32-bit number, or -1 when it is not exactly that (kept aside then, so it reads back as given). */
function ipv4Bits(address: string): number {
  let bits = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      bits = bits * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero: not the canonical spelling
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return bits * 256 + octet;
}

function ipv4Text(bits: number): string {
  return `${bits >>> 24}.${(bits >>> 16) & 255}.${(bits >>> 8) & 255}.${bits & 255}`;
}

function grow<T extends Int32Array | Uint32Array | Uint16Array | Uint8Array>(array: T, size: number, fill?: number): T {
  const next = new (array.constructor as new (n: number) => T)(size);
  next.set(array);
  if (fill !== undefined) next.fill(fill, array.length);
  return next;
}

export class ZoneIndex {
  // Names: id ↔ string, and per id: records owned, existing children, references as a target, first and last record.
  readonly #ids = new Map<string, number>();
  #nameOf: (string | undefined)[] = [];
  #owned = new Int32Array(1024);
  #children = new Int32Array(1024);
  #targeted = new Int32Array(1024);
  #head = new Int32Array(1024).fill(NIL);
  #tail = new Int32Array(1024).fill(NIL);
  readonly #freeNames: number[] = [];
  #namesHolding = 0;

  // Records: per slot the owner, type, TTL, data (IPv4 bits, target name id, or ASIDE), SRV priority<<16|weight and port,
  // the number of sources holding it, and the links of its name's list.
  #owner = new Int32Array(1024);
  #type = new Uint8Array(1024);
  #ttl = new Uint32Array(1024);
  #data = new Int32Array(1024);
  #prioWeight = new Uint32Array(1024);
  #port = new Uint16Array(1024);
  #refs = new Int32Array(1024);
  #next = new Int32Array(1024);
  #prev = new Int32Array(1024);
  /** Values that do not fit the arrays: AAAA addresses, TXT texts, SOAs, unusual A spellings. */
  readonly #aside = new Map<number, unknown>();
  readonly #freeRecords: number[] = [];
  #recordSlots = 0;

  /** Record slots each source holds (a slot once per record the source gave, duplicates included). */
  readonly #sources = new Map<string, number[]>();
  #recordCount = 0;

  /** Grows with every change: a cache derived from several names is valid while this stays the same. */
  generation = 0;

  /** Number of names holding records. */
  get names(): number {
    return this.#namesHolding;
  }

  /** Number of records held (before de-duplication). */
  get records(): number {
    return this.#recordCount;
  }

  /** Replace what `source` contributes (`undefined` or empty: remove it). */
  set(source: string, records: readonly ResourceRecord[] | undefined): void {
    this.generation++;
    // Add the new records before releasing the old ones: a record in both keeps its slot (and its place in the name's list).
    let slots: number[] | undefined;
    if (records && records.length > 0) {
      slots = new Array<number>(records.length);
      for (let i = 0; i < records.length; i++) slots[i] = this.#hold(records[i]!);
    }
    const old = this.#sources.get(source);
    if (old) {
      this.#recordCount -= old.length;
      for (const slot of old) this.#release(slot);
    }
    if (slots) {
      this.#sources.set(source, slots);
      this.#recordCount += slots.length;
    } else {
      this.#sources.delete(source);
    }
  }

  has(source: string): boolean {
    return this.#sources.has(source);
  }

  /** What `source` contributes, in the order given (a fresh list). */
  recordsOf(source: string): readonly ResourceRecord[] {
    const slots = this.#sources.get(source);
    return slots ? slots.map((slot) => this.#record(slot)) : NONE;
  }

  /** Every source's records, in no particular order. */
  *allRecords(): Iterable<ResourceRecord> {
    for (const slots of this.#sources.values()) for (const slot of slots) yield this.#record(slot);
  }

  clear(): void {
    this.generation++;
    for (const source of [...this.#sources.keys()]) this.set(source, undefined);
  }

  /** True if the name holds records or has names below it. */
  exists(name: string): boolean {
    const id = this.#ids.get(name);
    return id !== undefined && (this.#owned[id]! > 0 || this.#children[id]! > 0);
  }

  /** The name's records of one type (or every type for `undefined`), de-duplicated, in the order they first arrived. */
  get(name: string, type?: string): readonly ResourceRecord[] {
    const id = this.#ids.get(name);
    if (id === undefined || this.#owned[id] === 0) return NONE;
    let code = 0;
    if (type !== undefined) {
      code = TYPE_CODES[type as ResourceRecord['type']] ?? -1;
      if (code < 0) return NONE;
    }
    let out: ResourceRecord[] | undefined;
    for (let slot = this.#head[id]!; slot !== NIL; slot = this.#next[slot]!) {
      if (code !== 0 && this.#type[slot] !== code) continue;
      (out ??= []).push(this.#record(slot));
    }
    return out ?? NONE;
  }

  /** Names interned (owners, targets, ancestors) and record slots in use: what {@link reserve} sizes for. */
  get slots(): { readonly names: number; readonly records: number } {
    return { names: this.#ids.size, records: this.#recordSlots - this.#freeRecords.length };
  }

  /**
   * Make room for this many interned names and record slots at once, so a
   * large first build allocates its arrays once instead of doubling them
   * (each doubling leaves the old arrays to the GC, and their memory to the
   * allocator, long after).
   */
  reserve(room: { readonly names: number; readonly records: number }): void {
    if (room.names > this.#owned.length) this.#growNames(room.names);
    if (room.records > this.#owner.length) this.#growRecords(room.records);
  }

  /** Bytes held by the typed arrays (capacity, not use). */
  get tableBytes(): number {
    return this.#owned.length * 20 + this.#owner.length * 31;
  }

  #growNames(size: number): void {
    this.#owned = grow(this.#owned, size);
    this.#children = grow(this.#children, size);
    this.#targeted = grow(this.#targeted, size);
    this.#head = grow(this.#head, size, NIL);
    this.#tail = grow(this.#tail, size, NIL);
  }

  #growRecords(size: number): void {
    this.#owner = grow(this.#owner, size);
    this.#type = grow(this.#type, size);
    this.#ttl = grow(this.#ttl, size);
    this.#data = grow(this.#data, size);
    this.#prioWeight = grow(this.#prioWeight, size);
    this.#port = grow(this.#port, size);
    this.#refs = grow(this.#refs, size);
    this.#next = grow(this.#next, size);
    this.#prev = grow(this.#prev, size);
  }

  // -------------------------------------------------------------------------
  // Names

  /** The name's id, interned if new (its count of uses is the caller's to raise). */
  #intern(name: string): number {
    let id = this.#ids.get(name);
    if (id !== undefined) return id;
    id = this.#freeNames.pop() ?? this.#nameOf.length;
    if (id >= this.#owned.length) this.#growNames(Math.ceil(this.#owned.length * GROWTH));
    this.#nameOf[id] = name;
    this.#ids.set(name, id);
    return id;
  }

  /** Forget the name when nothing uses it any more. */
  #maybeFree(id: number): void {
    if (this.#owned[id] !== 0 || this.#children[id] !== 0 || this.#targeted[id] !== 0) return;
    this.#ids.delete(this.#nameOf[id]!);
    this.#nameOf[id] = undefined;
    this.#freeNames.push(id);
  }

  /** The name began to exist: count it in its parent, and the parent's parent if that began to exist too. */
  #born(name: string): void {
    for (let child = name, dot = child.indexOf('.'); dot >= 0; dot = child.indexOf('.')) {
      const parent = child.slice(dot + 1);
      const id = this.#intern(parent);
      const existed = this.#owned[id]! > 0 || this.#children[id]! > 0;
      this.#children[id]!++;
      if (existed) return;
      child = parent;
    }
  }

  /** The name ceased to exist: uncount it, and the parent if that ceased to exist too. */
  #died(name: string): void {
    for (let child = name, dot = child.indexOf('.'); dot >= 0; dot = child.indexOf('.')) {
      const id = this.#ids.get(child.slice(dot + 1));
      if (id === undefined) return;
      this.#children[id]!--;
      const exists = this.#owned[id]! > 0 || this.#children[id]! > 0;
      const parent = this.#nameOf[id]!;
      this.#maybeFree(id);
      if (exists) return;
      child = parent;
    }
  }

  // -------------------------------------------------------------------------
  // Records

  /** Take a hold on the record: its existing slot at the name when an equal one is there, else a new slot at the end of the name's list. */
  #hold(r: ResourceRecord): number {
    const type = TYPE_CODES[r.type];
    let data = ASIDE;
    let prioWeight = 0;
    let port = 0;
    let aside: unknown;
    switch (r.type) {
      case 'A':
        {
          const bits = ipv4Bits(r.address);
          // 255.255.255.255 would read as ASIDE in 32 signed bits: kept aside like any other unusual spelling.
          if (bits < 0 || bits === 0xffffffff) aside = r.address;
          else data = bits | 0;
        }
        break;
      case 'AAAA':
        aside = r.address;
        break;
      case 'SRV':
        prioWeight = (r.priority & 0xffff) * 65536 + (r.weight & 0xffff);
        port = r.port;
        data = this.#intern(r.target);
        break;
      case 'PTR':
      case 'NS':
      case 'CNAME':
        data = this.#intern(r.target);
        break;
      case 'TXT':
      case 'SOA':
        aside = r;
        break;
    }
    const owner = this.#intern(r.name);
    // An equal record at the name (type and data, TTL aside): one more holder.
    for (let slot = this.#head[owner]!; slot !== NIL; slot = this.#next[slot]!) {
      if (this.#type[slot] !== type || this.#data[slot] !== data || this.#prioWeight[slot] !== prioWeight || this.#port[slot] !== port) continue;
      if (data === ASIDE && !sameAside(r, this.#aside.get(slot))) continue;
      this.#refs[slot]!++;
      return slot;
    }
    const slot = this.#newSlot();
    this.#owner[slot] = owner;
    this.#type[slot] = type;
    this.#ttl[slot] = r.ttlSeconds;
    this.#data[slot] = data;
    this.#prioWeight[slot] = prioWeight;
    this.#port[slot] = port;
    this.#refs[slot] = 1;
    if (data === ASIDE) this.#aside.set(slot, aside);
    if (type === T_SRV || type === T_PTR || type === T_NS || type === T_CNAME) this.#targeted[data]!++;
    // Append to the name's list.
    const tail = this.#tail[owner]!;
    this.#prev[slot] = tail;
    this.#next[slot] = NIL;
    if (tail === NIL) this.#head[owner] = slot;
    else this.#next[tail] = slot;
    this.#tail[owner] = slot;
    const existed = this.#owned[owner]! > 0 || this.#children[owner]! > 0;
    if (this.#owned[owner]!++ === 0) this.#namesHolding++;
    if (!existed) this.#born(r.name);
    return slot;
  }

  /** Drop one hold on the slot; the last one frees it (and names nothing else uses). */
  #release(slot: number): void {
    if (--this.#refs[slot]! > 0) return;
    const owner = this.#owner[slot]!;
    const prev = this.#prev[slot]!;
    const next = this.#next[slot]!;
    if (prev === NIL) this.#head[owner] = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail[owner] = prev;
    else this.#prev[next] = prev;
    const type = this.#type[slot]!;
    const data = this.#data[slot]!;
    if (data === ASIDE) this.#aside.delete(slot);
    this.#type[slot] = 0;
    this.#freeRecords.push(slot);
    if (type === T_SRV || type === T_PTR || type === T_NS || type === T_CNAME) {
      this.#targeted[data]!--;
      this.#maybeFree(data);
    }
    if (--this.#owned[owner]! === 0) {
      this.#namesHolding--;
      const name = this.#nameOf[owner]!;
      const exists = this.#children[owner]! > 0;
      this.#maybeFree(owner);
      if (!exists) this.#died(name);
    }
  }

  #newSlot(): number {
    const free = this.#freeRecords.pop();
    if (free !== undefined) return free;
    const slot = this.#recordSlots++;
    if (slot >= this.#owner.length) this.#growRecords(Math.ceil(this.#owner.length * GROWTH));
    return slot;
  }

  /** The slot as a plain record (the same fields, in the same order, as the builder's). */
  #record(slot: number): ResourceRecord {
    const name = this.#nameOf[this.#owner[slot]!]!;
    const ttlSeconds = this.#ttl[slot]!;
    const data = this.#data[slot]!;
    switch (this.#type[slot]) {
      case T_A:
        return { name, type: 'A', ttlSeconds, address: data === ASIDE ? (this.#aside.get(slot) as string) : ipv4Text(data >>> 0) };
      case T_AAAA:
        return { name, type: 'AAAA', ttlSeconds, address: this.#aside.get(slot) as string };
      case T_SRV: {
        const pw = this.#prioWeight[slot]!;
        return { name, type: 'SRV', ttlSeconds, priority: pw >>> 16, weight: pw & 0xffff, port: this.#port[slot]!, target: this.#nameOf[data]! };
      }
      case T_PTR:
        return { name, type: 'PTR', ttlSeconds, target: this.#nameOf[data]! };
      case T_NS:
        return { name, type: 'NS', ttlSeconds, target: this.#nameOf[data]! };
      case T_CNAME:
        return { name, type: 'CNAME', ttlSeconds, target: this.#nameOf[data]! };
      default: {
        // TXT and SOA are kept whole; the held record keeps the owner it was given.
        const r = this.#aside.get(slot) as ResourceRecord;
        return { ...r, ttlSeconds };
      }
    }
  }
}

function sameAside(r: ResourceRecord, held: unknown): boolean {
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return r.address === held;
    case 'TXT':
    case 'SOA':
      return rdataKey(r) === rdataKey(held as ResourceRecord);
    default:
      return false;
  }
}
