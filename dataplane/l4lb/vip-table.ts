/**
 * The agent's copy of the master's VIPs, as the delta feed gives them
 * (`follow.ts`), with each VIP's services kept apart: a change to some VIPs
 * rebuilds only their services and tells the manager which services to
 * look at ({@link DesiredChanges}), so one backend change costs the same at
 * 10 or 10,000 VIPs. Pure (no I/O); owned by one follower.
 */
import { type DesiredChanges, type DesiredState } from './ruleset.ts';
import { serviceKey, servicesFromVips, type L4Service, type VipViewInput } from './services.ts';

/** A VIP of the feed: the view's fields the dataplane reads, and its id. */
export interface FeedVip extends VipViewInput {
  readonly id: string;
}

interface Entry {
  readonly services: readonly L4Service[];
  /** Its backend addresses on this agent. */
  readonly localIps: readonly string[];
  /** Its services' backend addresses (each once). */
  readonly backendIps: readonly string[];
}

function count(map: Map<string, number>, keys: readonly string[], by: 1 | -1): void {
  for (const k of keys) {
    const n = (map.get(k) ?? 0) + by;
    if (n > 0) map.set(k, n);
    else map.delete(k);
  }
}

export class VipTable {
  readonly #agentId: string;
  readonly #entries = new Map<string, Entry>();
  /** Backend address on this agent → how many VIPs list it. */
  readonly #local = new Map<string, number>();
  /** Backend address of a service → how many VIPs' services use it. */
  readonly #backends = new Map<string, number>();

  constructor(agentId: string) {
    this.#agentId = agentId;
  }

  /** VIPs held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Hold exactly `vips` (a snapshot); the manager then diffs the whole desired state. */
  replace(vips: readonly FeedVip[]): DesiredState {
    this.#entries.clear();
    this.#local.clear();
    this.#backends.clear();
    for (const vip of vips) this.#put(vip);
    return this.desired();
  }

  /** Apply a change (VIPs as they are now, ids removed); returns what the manager must look at. */
  apply(vips: readonly FeedVip[], removed: readonly string[]): DesiredChanges {
    const upserts: L4Service[] = [];
    const removals: string[] = [];
    const drop = (id: string): readonly string[] => {
      const old = this.#entries.get(id);
      if (!old) return [];
      this.#entries.delete(id);
      count(this.#local, old.localIps, -1);
      count(this.#backends, old.backendIps, -1);
      return old.services.map(serviceKey);
    };
    for (const id of removed) removals.push(...drop(id));
    for (const vip of vips) {
      const before = new Set(drop(vip.id));
      const entry = this.#put(vip);
      for (const s of entry.services) before.delete(serviceKey(s));
      upserts.push(...entry.services);
      removals.push(...before);
    }
    // Hairpin pairs as the whole state gives them: service backends that are on this agent (a few: this agent's tasks).
    const hairpin = new Set<string>();
    for (const ip of this.#local.keys()) if (this.#backends.has(ip)) hairpin.add(`${ip} . ${ip}`);
    return { upserts, removals, hairpin };
  }

  /** Everything held, as the manager's whole desired state (services sorted by key). */
  desired(): DesiredState {
    const services: L4Service[] = [];
    for (const e of this.#entries.values()) services.push(...e.services);
    const keyed = services.map((s) => [serviceKey(s), s] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { services: keyed.map(([, s]) => s), localBackendIps: [...this.#local.keys()].sort() };
  }

  #put(vip: FeedVip): Entry {
    const services = servicesFromVips([vip]);
    const localIps = [...new Set(vip.backends.filter((b) => b.agentId === this.#agentId).map((b) => b.ip))];
    const backendIps = [...new Set(services.flatMap((s) => s.backends.map((b) => b.ip)))];
    const entry: Entry = { services, localIps, backendIps };
    this.#entries.set(vip.id, entry);
    count(this.#local, localIps, 1);
    count(this.#backends, backendIps, 1);
    return entry;
  }
}
