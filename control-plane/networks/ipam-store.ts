/**
 * Overlay IPAM over the store: reads claims, leases and addresses, asks the
 * pure functions of `ipam.ts`, and writes the answer in one transaction
 * whose conditions make it unique. A subnet or VTEP address is taken by
 * creating its claim key (`strata/overlay/claims/<pool>/<cidr>`, create-only),
 * in the same transaction as the agent's lease, so two agents registering at
 * once on two masters can never get the same one: the loser's transaction is
 * refused and it plans again from a fresh read. A container IP is its own
 * record, created create-only (or taken over with check-and-set once its
 * quarantine has passed).
 */
import { StrataError } from '../../common/errors.ts';
import { decodeEntry, type Records } from '../model/records.ts';
import { keyOf, keys, overlayAddressId, overlayClaimId, parseOverlayClaimId } from '../model/keys.ts';
import type { OverlayAddress, OverlayClaim, OverlayLease, Task } from '../model/schemas.ts';
import { VTEP_POOL } from '../model/schemas.ts';
import { assertRecord } from '../model/validate.ts';
import type { StateStore, TxnCondition, TxnWrite } from '../store/port.ts';
import { TXN_MAX_OPS } from '../store/port.ts';
import { ADDRESS_QUARANTINE_SECONDS, inSubnet, pickAddress, planLease, released, shouldRelease } from './ipam.ts';

export interface LeaseResult {
  readonly lease: OverlayLease;
  /** Networks that had no free subnet for this agent (the lease holds the others). */
  readonly exhausted: readonly { readonly network: string; readonly message: string }[];
}

export interface OverlayIpamOptions {
  readonly quarantineSeconds?: number;
  /** Check-and-set attempts before giving up with OVERLAY_CONTENDED (default 200). */
  readonly maxAttempts?: number;
  readonly now?: () => Date;
}

const put = (key: string, value: unknown): TxnWrite => ({ op: 'put', key, value: JSON.stringify(value) });

/** Jittered pause between lost races, so agents registering together spread out. */
const backoff = (attempt: number): Promise<void> => new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));

export class OverlayIpam {
  readonly #store: StateStore;
  readonly #records: Records;
  readonly #quarantineSeconds: number;
  readonly #maxAttempts: number;
  readonly #now: () => Date;

  constructor(store: StateStore, records: Records, options: OverlayIpamOptions = {}) {
    this.#store = store;
    this.#records = records;
    this.#quarantineSeconds = options.quarantineSeconds ?? ADDRESS_QUARANTINE_SECONDS;
    this.#maxAttempts = options.maxAttempts ?? 200;
    this.#now = options.now ?? (() => new Date());
  }

  /** Every claim, by pool, with their store entries (to release an agent's stale ones). */
  async #claims(): Promise<{ byPool: Map<string, Set<string>>; mine: (agentId: string) => { key: string; modifyIndex: number; claim: OverlayClaim }[] }> {
    const { entries } = await this.#store.list(keys.prefix('overlayClaim'));
    const byPool = new Map<string, Set<string>>();
    const all: { key: string; modifyIndex: number; claim: OverlayClaim }[] = [];
    for (const entry of entries) {
      const decoded = decodeEntry('overlayClaim', entry);
      let claim: OverlayClaim;
      if (decoded.ok) claim = decoded.record.value;
      else {
        // An unusable claim's key still exists, so its subnet is still taken (create-only would fail on it forever).
        const parsed = decoded.invalid.id === undefined ? undefined : parseOverlayClaimId(decoded.invalid.id);
        if (!parsed) continue;
        claim = { ...parsed, agentId: '' };
      }
      let set = byPool.get(claim.pool);
      if (!set) byPool.set(claim.pool, (set = new Set()));
      set.add(claim.cidr);
      all.push({ key: entry.key, modifyIndex: entry.modifyIndex, claim });
    }
    return { byPool, mine: (agentId) => all.filter((c) => c.claim.agentId === agentId) };
  }

  /** The agent's lease as stored. */
  async lease(agentId: string): Promise<OverlayLease | undefined> {
    return (await this.#records.get('overlayLease', agentId))?.value;
  }

  /** Every agent's lease (what each overlay agent programs routes to). */
  async leases(): Promise<OverlayLease[]> {
    return (await this.#records.list('overlayLease')).records.map((r) => r.value);
  }

  /**
   * Give the agent a VTEP address and a subnet of every network it lacks one
   * of, keeping what it holds. Idempotent; safe against any number of
   * concurrent callers (for this agent or others) on any master.
   */
  async ensureLease(agentId: string, underlayIp: string): Promise<LeaseResult> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      if (attempt > 0) await backoff(attempt);
      const [current, networks, claims] = await Promise.all([this.#records.get('overlayLease', agentId), this.#records.list('network'), this.#claims()]);
      const plan = planLease({
        agentId,
        underlayIp,
        ...(current ? { existing: current.value } : {}),
        networks: networks.records.map((r) => r.value),
        claims: claims.byPool,
        now: this.#now().toISOString(),
      });
      const vtep = plan.exhausted.find((e) => e.network === VTEP_POOL);
      if (vtep) throw new StrataError('OVERLAY_EXHAUSTED', `agent ${agentId}: ${vtep.message}`);
      const held = new Set([`${VTEP_POOL}/${plan.lease.vtepIp}/32`, ...Object.entries(plan.lease.networks).flatMap(([n, s]) => [s.subnet, s.subnet6].filter((c) => c !== undefined).map((c) => `${n}/${c}`))]);
      const stale = claims.mine(agentId).filter((c) => !held.has(overlayClaimId(c.claim.pool, c.claim.cidr)));
      if (!plan.changed && stale.length === 0) return { lease: plan.lease, exhausted: plan.exhausted };

      assertRecord('overlayLease', plan.lease);
      const conditions: TxnCondition[] = [{ key: keys.overlayLease(agentId), modifyIndex: current?.modifyIndex ?? 0 }];
      const writes: TxnWrite[] = [put(keys.overlayLease(agentId), plan.lease)];
      for (const claim of plan.newClaims) {
        assertRecord('overlayClaim', claim);
        const key = keys.overlayClaim(claim.pool, claim.cidr);
        conditions.push({ key, modifyIndex: 0 });
        writes.push(put(key, claim));
      }
      for (const s of stale) {
        conditions.push({ key: s.key, modifyIndex: s.modifyIndex });
        writes.push({ op: 'delete', key: s.key });
      }
      if (conditions.length + writes.length > TXN_MAX_OPS) {
        throw new StrataError('OVERLAY_CONTENDED', `agent ${agentId}: a lease change of ${writes.length} writes exceeds one store transaction; too many networks changed at once`);
      }
      const result = await this.#store.txn({ conditions, writes });
      if (result.ok) return { lease: plan.lease, exhausted: plan.exhausted };
    }
    throw new StrataError('OVERLAY_CONTENDED', `agent ${agentId}: the overlay lease lost its check-and-set race ${this.#maxAttempts} times; retry`);
  }

  /** Every container address record of a network, with its store index. */
  async #addresses(network: string): Promise<{ key: string; modifyIndex: number; value: OverlayAddress }[]> {
    const { entries } = await this.#store.list(keys.overlayAddressPrefix(network));
    const out: { key: string; modifyIndex: number; value: OverlayAddress }[] = [];
    for (const entry of entries) {
      const decoded = decodeEntry('overlayAddress', entry);
      if (decoded.ok) out.push({ key: entry.key, modifyIndex: entry.modifyIndex, value: decoded.record.value });
    }
    return out;
  }

  /**
   * A container IP (one per family the network has) for `taskId` on the
   * agent's subnet of `network`. Idempotent per task: asking again returns
   * the same addresses.
   */
  async assignAddresses(agentId: string, network: string, taskId: string, options: { readonly holder?: 'task' | 'cni' } = {}): Promise<OverlayAddress[]> {
    const lease = await this.lease(agentId);
    if (!lease) throw new StrataError('OVERLAY_NO_LEASE', `agent ${agentId} has no overlay lease yet (it must PUT /networking/api/v1/agents/${agentId}/overlay first)`);
    const subnets = lease.networks[network];
    if (!subnets) {
      const exists = await this.#records.get('network', network);
      if (!exists) throw new StrataError('RECORD_NOT_FOUND', `no network ${JSON.stringify(network)}`);
      throw new StrataError('OVERLAY_EXHAUSTED', `agent ${agentId} has no subnet of network ${JSON.stringify(network)}: the network's pool had none free when the agent registered (or the network was added since; the agent's next lease renewal takes one)`);
    }
    const out: OverlayAddress[] = [];
    for (const subnet of [subnets.subnet, subnets.subnet6]) {
      if (subnet !== undefined) out.push(await this.#assignOne(agentId, network, subnet, taskId, options.holder));
    }
    return out;
  }

  async #assignOne(agentId: string, network: string, subnet: string, taskId: string, holder: 'task' | 'cni' | undefined): Promise<OverlayAddress> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      if (attempt > 0) await backoff(attempt);
      const all = (await this.#addresses(network)).filter((a) => inSubnet(subnet, a.value.ip));
      const already = all.find((a) => a.value.taskId === taskId && a.value.state === 'assigned');
      if (already) return already.value;
      const now = this.#now();
      const pick = pickAddress(subnet, all.map((a) => a.value), now.getTime(), this.#quarantineSeconds);
      if (!pick) {
        const assigned = all.filter((a) => a.value.state === 'assigned').length;
        throw new StrataError('OVERLAY_EXHAUSTED', `network ${JSON.stringify(network)}: agent ${agentId}'s subnet ${subnet} has no free container IP (${assigned} assigned, ${all.length - assigned} released and still in their ${this.#quarantineSeconds} s quarantine)`);
      }
      const record: OverlayAddress = { network, ip: pick.ip, agentId, taskId, state: 'assigned', assignedAt: now.toISOString(), ...(holder === 'cni' ? { holder } : {}) };
      assertRecord('overlayAddress', record);
      const casIndex = pick.reuses ? all.find((a) => a.value.ip === pick.ip)!.modifyIndex : 0;
      const result = await this.#store.put(keyOf('overlayAddress', overlayAddressId(network, pick.ip)), JSON.stringify(record), { casIndex });
      if (result.ok) return record;
    }
    throw new StrataError('OVERLAY_CONTENDED', `network ${JSON.stringify(network)}: a container IP for task ${taskId} lost its check-and-set race ${this.#maxAttempts} times; retry`);
  }

  /**
   * Release the addresses whose task ended (or whose task record is gone);
   * an address stays assigned while its task may still run (LOST,
   * UNREACHABLE, ...). Returns how many were released.
   */
  async releaseEnded(tasks: ReadonlyMap<string, Task>): Promise<number> {
    const networks = (await this.#records.list('network')).records.map((r) => r.id);
    let count = 0;
    for (const network of networks) {
      for (const a of await this.#addresses(network)) {
        if (!shouldRelease(a.value, tasks.get(a.value.taskId))) continue;
        const next = released(a.value, this.#now().toISOString());
        const result = await this.#store.put(a.key, JSON.stringify(next), { casIndex: a.modifyIndex });
        if (result.ok) count++;
      }
    }
    return count;
  }

  /** Release one task's (or CNI container's) addresses now; with `agentId`, only those held on that agent. */
  async releaseTask(network: string, taskId: string, agentId?: string): Promise<number> {
    let count = 0;
    for (const a of await this.#addresses(network)) {
      if (a.value.taskId !== taskId || a.value.state !== 'assigned' || (agentId !== undefined && a.value.agentId !== agentId)) continue;
      const result = await this.#store.put(a.key, JSON.stringify(released(a.value, this.#now().toISOString())), { casIndex: a.modifyIndex });
      if (result.ok) count++;
    }
    return count;
  }
}
