/**
 * The authority: the zones of {@link ZoneOptions} answered from a
 * {@link ClusterFeed}, kept current by push. A snapshot rebuilds the zone;
 * each change rebuilds only what it touches (a task: its own records; an
 * app: its tasks; an agent: its tasks and the cluster records; a
 * framework, VIP or leader: the cluster records), synchronously inside the
 * feed's callback, so a lookup right after the store's watch delivered a
 * change already sees it. `lookup` is a few map reads.
 *
 * Answer rules (Mesos-DNS `resolver/resolver.go`, fixed where its users
 * complained): authoritative; NXDOMAIN with the zone's SOA in authority for
 * a name that does not exist; NOERROR/NODATA with the SOA when the name
 * exists with other types only, including SRV-only names (MD #365) and
 * empty non-terminals (RFC 8020; Mesos-DNS said NXDOMAIN); SRV answers
 * carry their targets' A/AAAA as additionals; ANY gives every record of the
 * name; answers rotate round-robin across calls; SERVFAIL (not NXDOMAIN,
 * MD #344) for every name in the zones until the first snapshot.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Agent, Framework, LeaderInfo, Vip } from '../../control-plane/model/schemas.ts';
import { MARATHON_FRAMEWORK, clusterRecords, enumerableTask, forwardApexes, soaRecord, taskRecords, toMesos, toMirror, type EnumerableTask } from './build.ts';
import { zoneApp, zoneTask, type ClusterChange, type ClusterFeed, type ClusterFeedEvent, type ClusterState, type FeedSubscription, type ZoneApp, type ZoneTask } from './feed.ts';
import { THIS_DCOS_APEX, resolveZoneOptions, type ZoneOptions, type ZoneOptionsInput } from './options.ts';
import type { Authority, Question, ResourceRecord, ZoneAnswer } from './types.ts';
import { ZoneIndex, rdataKey } from './zone-index.ts';

const NONE: readonly ResourceRecord[] = Object.freeze([]);
const REVERSE_APEXES = ['in-addr.arpa', 'ip6.arpa'] as const;
/** Tasks built per turn of the event loop during the first snapshot (~50 ms of work). */
const FIRST_BUILD_SLICE = 500;
/**
 * From this many tasks, a first build ends with a full garbage collection
 * when the process allows one (`global.gc`, `--expose-gc`: `strata`'s server
 * verbs start with it, cli/node-flags.ts). The build's garbage (the state it
 * was handed, the records it built) otherwise stays in the old generation
 * until a major GC that a DNS load, allocating little, may not cause for a
 * long time: ~10 MB of RSS at 100,000 names. One pause, once per process.
 */
const COLLECT_AFTER_TASKS = 5_000;
/** The index's sources: a task's id (the map key's own string, no copy), and the cluster records under a key no task id can be. */
const CLUSTER_SOURCE = '\u0000cluster';
const taskSource = (id: string): string => id;

/** `/v1/enumerate` (Mesos-DNS `EnumerationData`). */
export interface EnumerationData {
  readonly frameworks: readonly { readonly tasks: readonly EnumerableTask[]; readonly name: string }[];
}

/** What the HTTP API reads: the same zone the DNS answers come from. */
export interface ZoneReader {
  readonly options: ZoneOptions;
  /** False until the first snapshot. */
  readonly synced: boolean;
  /** The SOA serial (the state's index). */
  readonly serial: number;
  /** The name's records, de-duplicated (all types, or one). */
  recordsAt(name: string, type?: ResourceRecord['type']): readonly ResourceRecord[];
  enumerate(): EnumerationData;
  /** Every record of the `mesos` zone (not its mirror), de-duplicated, sorted by name. */
  mesosRecords(): readonly ResourceRecord[];
  /** The SRV records whose target is `target` (lower case, no trailing dot). */
  srvRecordsTo(target: string): readonly ResourceRecord[];
}

export interface ZoneAuthorityOptions {
  /** Zone options (or resolved ones), validated here: `DNS_OPTIONS_INVALID` names the wrong field. */
  readonly zone?: ZoneOptionsInput;
  /** Where to register `strata_dns_zone_*` metrics. */
  readonly metrics?: Registry;
}

interface Metrics {
  readonly applied: Counter;
  readonly applySeconds: Histogram;
  readonly names: Gauge;
  readonly records: Gauge;
  readonly tableBytes: Gauge;
  readonly synced: Gauge;
}

const metricsByRegistry = new WeakMap<Registry, Metrics>();

function metricsOf(registry: Registry): Metrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      applied: new Counter({ name: 'strata_dns_zone_updates_total', help: 'State events applied to the DNS zones', labelNames: ['type'], registers }),
      applySeconds: new Histogram({
        name: 'strata_dns_zone_apply_seconds',
        help: 'Time to apply one state event to the DNS zones',
        buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.25, 1],
        registers,
      }),
      names: new Gauge({ name: 'strata_dns_zone_names', help: 'Names holding records in the DNS zones', registers }),
      records: new Gauge({ name: 'strata_dns_zone_records', help: 'Records the DNS zones hold, each source counted (before de-duplication)', registers }),
      tableBytes: new Gauge({ name: 'strata_dns_zone_table_bytes', help: 'Bytes of the record and name tables of the DNS zones (typed arrays, capacity)', registers }),
      synced: new Gauge({ name: 'strata_dns_zone_synced', help: '1 once the DNS zones hold the cluster state, 0 before', registers }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

/** The tasks of one app or agent; `key` is the one copy of the app's or agent's id that the tasks held here share. */
interface TaskGroup {
  readonly key: string;
  readonly ids: Set<string>;
}

/** Add the task to the group of `key`; returns the group's own copy of `key`. */
function addTo(index: Map<string, TaskGroup>, key: string, id: string): string {
  let group = index.get(key);
  if (!group) index.set(key, (group = { key, ids: new Set() }));
  group.ids.add(id);
  return group.key;
}

function removeFrom(index: Map<string, TaskGroup>, key: string, id: string): void {
  const group = index.get(key);
  if (group?.ids.delete(id) && group.ids.size === 0) index.delete(key);
}

export class ZoneAuthority implements Authority, ZoneReader {
  readonly options: ZoneOptions;
  readonly #feed: ClusterFeed;
  readonly #index = new ZoneIndex();
  readonly #metrics: Metrics | undefined;
  readonly #apexes: readonly string[];
  readonly #zones: readonly string[];
  /** What the zones read of each task (not the whole record: `zoneTask`). */
  readonly #tasks = new Map<string, ZoneTask>();
  readonly #apps = new Map<string, ZoneApp>();
  readonly #agents = new Map<string, Agent>();
  readonly #frameworks = new Map<string, Framework>();
  readonly #vips = new Map<string, Vip>();
  #leader: LeaderInfo | undefined;
  readonly #tasksByApp = new Map<string, TaskGroup>();
  readonly #tasksByAgent = new Map<string, TaskGroup>();
  readonly #soas = new Map<string, ResourceRecord>();
  readonly #glueCache = new Map<string, { readonly generation: number; readonly glue: readonly ResourceRecord[] }>();
  #glueCacheGeneration = -1;
  readonly #listeners = new Set<(index: number) => void>();
  #serial = 0;
  /** Moves whenever a lookup result may change (see `Authority.version`). */
  #version = 0;
  #synced = false;
  #turn = 0;
  #subscription: FeedSubscription | undefined;
  #closed = false;
  /** Events that arrived while the first snapshot was being built. */
  #queued: ClusterFeedEvent[] | undefined;
  #firstBuild: Promise<void> = Promise.resolve();

  constructor(feed: ClusterFeed, options: ZoneAuthorityOptions = {}) {
    this.#feed = feed;
    this.options = resolveZoneOptions(options.zone ?? {});
    this.#metrics = options.metrics ? metricsOf(options.metrics) : undefined;
    // Longest first, so `mesos.thisdcos.directory`-style nesting picks the inner apex.
    this.#apexes = [...forwardApexes(this.options), ...this.options.reverseZones].sort((a, b) => b.length - a.length);
    this.#zones = Object.freeze([...forwardApexes(this.options), ...this.options.reverseZones, ...(this.options.ptrRecords ? REVERSE_APEXES : [])]);
  }

  /** Subscribe to the feed; resolves once the first snapshot is in the zones. */
  async start(): Promise<void> {
    if (this.#subscription || this.#closed) return;
    const subscription = await this.#feed.subscribe((event) => this.#apply(event));
    if (this.#closed) subscription.close();
    else this.#subscription = subscription;
    await this.#firstBuild;
  }

  /** Stop following the feed; the zones keep answering from the last state. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#subscription?.close();
  }

  /** Settles when the feed stops (after `close()`, or rejects if it failed); `undefined` before `start()` resolved. */
  get ended(): Promise<void> | undefined {
    return this.#subscription?.ended;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get serial(): number {
    return this.#serial;
  }

  /** Names holding records. */
  get names(): number {
    return this.#index.names;
  }

  /** Records held, each source counted (before de-duplication). */
  get records(): number {
    return this.#index.records;
  }

  /** Called after every applied event with the state's index (tests, benchmarks). Returns the unsubscribe function. */
  onApplied(listener: (index: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves once the zones reflect the state at `index`, for
   * read-your-writes: the index of a write to a kind the zones read (task,
   * app, agent, framework, VIP, leader); another kind's index may never be
   * seen. Never rejects; pending after `close()`.
   */
  waitFor(index: number): Promise<void> {
    if (this.#synced && this.#serial >= index) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onApplied((serial) => {
        if (serial < index) return;
        off();
        resolve();
      });
    });
  }

  zones(): readonly string[] {
    return this.#zones;
  }

  version(): number {
    return this.#version;
  }

  lookup(question: Question): ZoneAnswer | undefined {
    let name = question.name.toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    const apex = this.#apexOf(name);
    if (apex === undefined) {
      // A reverse name outside the configured reverse zones: answered when a record exists, else left to the forwarder.
      if (!this.options.ptrRecords || !this.#synced || !isReverse(name) || !this.#index.exists(name)) return undefined;
      return this.#answer(undefined, name, question.type);
    }
    if (!this.#synced) return SERVFAIL;
    if (apex === THIS_DCOS_APEX && this.options.thisDcos.mirrorMesos) {
      const inner = toMesos(name, this.options);
      if (inner !== undefined) return this.#mirrorAnswer(name, inner, question.type);
    }
    return this.#answer(apex, name, question.type);
  }

  recordsAt(name: string, type?: ResourceRecord['type']): readonly ResourceRecord[] {
    let n = name.toLowerCase();
    if (n.endsWith('.')) n = n.slice(0, -1);
    const records = this.#index.get(n, type);
    if (n === this.options.domain && (type === undefined || type === 'SOA')) return [...records, this.#soa(n)];
    return records;
  }

  enumerate(): EnumerationData {
    const tasks: EnumerableTask[] = [];
    for (const [id, task] of this.#tasks) {
      const records = this.#index.recordsOf(taskSource(id));
      if (records.length > 0) tasks.push(enumerableTask(task, records, this.options));
    }
    const frameworks = [{ name: MARATHON_FRAMEWORK, tasks }];
    for (const f of this.#frameworks.values()) if (f.name !== MARATHON_FRAMEWORK && !frameworks.some((x) => x.name === f.name)) frameworks.push({ name: f.name, tasks: [] });
    return { frameworks };
  }

  mesosRecords(): readonly ResourceRecord[] {
    return this.allRecords(this.options.domain);
  }

  /** Every record held (under `apex` when given, SOAs aside), de-duplicated, sorted by name then data. */
  allRecords(apex?: string): readonly ResourceRecord[] {
    const suffix = `.${apex}`;
    const byKey = new Map<string, ResourceRecord>();
    for (const r of this.#index.allRecords()) {
      if (apex !== undefined && r.name !== apex && !r.name.endsWith(suffix)) continue;
      const key = `${r.name} ${rdataKey(r)}`;
      if (!byKey.has(key)) byKey.set(key, r);
    }
    return [...byKey.keys()].sort().map((key) => byKey.get(key)!);
  }

  /** The SRV records whose target is `target`, de-duplicated (for `/v1/hosts/{host}/ports`). */
  srvRecordsTo(target: string): readonly ResourceRecord[] {
    const byKey = new Map<string, ResourceRecord>();
    for (const r of this.#index.allRecords()) {
      if (r.type === 'SRV' && r.target === target) byKey.set(`${r.name} ${rdataKey(r)}`, r);
    }
    return [...byKey.values()];
  }

  // -------------------------------------------------------------------------
  // Answers

  #apexOf(name: string): string | undefined {
    for (const apex of this.#apexes) {
      if (name === apex || (name.length > apex.length && name.endsWith(apex) && name[name.length - apex.length - 1] === '.')) return apex;
    }
    return undefined;
  }

  #soa(apex: string): ResourceRecord {
    let soa = this.#soas.get(apex);
    if (!soa) {
      soa = soaRecord(apex, this.#serial, this.options);
      this.#soas.set(apex, soa);
    }
    return soa;
  }

  #answer(apex: string | undefined, name: string, type: Question['type']): ZoneAnswer {
    const authority = apex === undefined ? NONE : [this.#soa(apex)];
    if (!this.#index.exists(name)) return { rcode: 'NXDOMAIN', authoritative: true, answers: NONE, authority, additionals: NONE };
    let answers: readonly ResourceRecord[];
    if (type === 'SOA') answers = name === apex ? authority : NONE;
    else if (type === 'ANY') answers = name === apex ? [...this.#index.get(name), this.#soa(apex)] : this.#index.get(name);
    else if (type.startsWith('TYPE')) answers = NONE;
    else answers = this.#index.get(name, type);
    if (answers.length === 0) return { rcode: 'NOERROR', authoritative: true, answers: NONE, authority, additionals: NONE };
    if (answers.length > 1) {
      const offset = this.#turn++ % answers.length;
      if (offset > 0) answers = rotated(answers, offset);
    }
    return { rcode: 'NOERROR', authoritative: true, answers, authority: NONE, additionals: type === 'SRV' ? this.#srvGlue(name, answers) : this.#glue(answers) };
  }

  /** SRV glue, cached per name until the zone next changes (SRV answers with many targets are the costly ones). */
  #srvGlue(name: string, answers: readonly ResourceRecord[]): readonly ResourceRecord[] {
    const generation = this.#index.generation;
    const cached = this.#glueCache.get(name);
    if (cached && cached.generation === generation) return cached.glue;
    if (this.#glueCacheGeneration !== generation) {
      this.#glueCache.clear();
      this.#glueCacheGeneration = generation;
    }
    const glue = this.#glue(answers);
    this.#glueCache.set(name, { generation, glue });
    return glue;
  }

  /** A question under `mesos.thisdcos.directory`: the `mesos` zone's A/AAAA/SRV at `inner`, renamed. */
  #mirrorAnswer(name: string, inner: string, type: Question['type']): ZoneAnswer {
    const authority = [this.#soa(THIS_DCOS_APEX)];
    if (!this.#index.exists(inner)) return { rcode: 'NXDOMAIN', authoritative: true, answers: NONE, authority, additionals: NONE };
    const mirrored = type === 'ANY' || type === 'A' || type === 'AAAA' || type === 'SRV';
    const records = !mirrored ? NONE : type === 'ANY' ? this.#index.get(inner).filter((r) => r.type === 'A' || r.type === 'AAAA' || r.type === 'SRV') : this.#index.get(inner, type);
    if (records.length === 0) return { rcode: 'NOERROR', authoritative: true, answers: NONE, authority, additionals: NONE };
    const rename = (r: ResourceRecord, owner: string): ResourceRecord => (r.type === 'SRV' ? { ...r, name: owner, target: toMirror(r.target, this.options) } : { ...r, name: owner });
    const offset = records.length > 1 ? this.#turn++ % records.length : 0;
    const answers = rotated(records, offset).map((r) => rename(r, name));
    const additionals = this.#glue(records).map((r) => rename(r, toMirror(r.name, this.options)));
    return { rcode: 'NOERROR', authoritative: true, answers, authority: NONE, additionals };
  }

  /** A/AAAA of SRV and NS targets held here, once per target. */
  #glue(answers: readonly ResourceRecord[]): readonly ResourceRecord[] {
    let out: ResourceRecord[] | undefined;
    let seen: Set<string> | undefined;
    for (const r of answers) {
      if (r.type !== 'SRV' && r.type !== 'NS') continue;
      seen ??= new Set();
      if (seen.has(r.target)) continue;
      seen.add(r.target);
      const a = this.#index.get(r.target, 'A');
      const aaaa = this.#index.get(r.target, 'AAAA');
      if (a.length + aaaa.length === 0) continue;
      out ??= [];
      for (const x of a) out.push(x);
      for (const x of aaaa) out.push(x);
    }
    return out ?? NONE;
  }

  // -------------------------------------------------------------------------
  // Applying state

  #apply(event: ClusterFeedEvent): void {
    if (this.#queued) {
      this.#queued.push(event);
      return;
    }
    if (event.type === 'snapshot' && !this.#synced) {
      this.#queued = [];
      this.#firstBuild = this.#buildFirst(event.state);
      return;
    }
    this.#applyNow(event);
  }

  /**
   * The first snapshot, built in slices of {@link FIRST_BUILD_SLICE} tasks
   * with a turn of the event loop between them, so a large cluster does not
   * stall the process (the DNS server forwards meanwhile; the zones answer
   * SERVFAIL until the build is done). Events arriving meanwhile are queued
   * and applied, in order, at the end.
   */
  async #buildFirst(state: ClusterState): Promise<void> {
    const started = performance.now();
    const others: ClusterChange[] = [];
    for (const [id, value] of state.agents) others.push({ kind: 'agent', id, value });
    for (const [id, value] of state.apps) others.push({ kind: 'app', id, value });
    for (const [id, value] of state.frameworks) others.push({ kind: 'framework', id, value });
    for (const [id, value] of state.vips) others.push({ kind: 'vip', id, value });
    if (state.leader) others.push({ kind: 'leader', id: 'leader', value: state.leader });
    this.#change(state.index, others, true);
    let slice: ClusterChange[] = [];
    let built = 0;
    const before = this.#index.slots;
    for (const [id, value] of state.tasks) {
      slice.push({ kind: 'task', id, value });
      if (slice.length < FIRST_BUILD_SLICE) continue;
      this.#change(state.index, slice);
      built += slice.length;
      slice = [];
      if (built === FIRST_BUILD_SLICE && state.tasks.size > 2 * FIRST_BUILD_SLICE) {
        // The first slice tells what a task costs: room for all of them at once (5% spare), not capacity doubled again and again.
        const after = this.#index.slots;
        const scale = (state.tasks.size / built) * 1.05;
        this.#index.reserve({ names: before.names + Math.ceil((after.names - before.names) * scale), records: before.records + Math.ceil((after.records - before.records) * scale) });
      }
      await new Promise((resolve) => setImmediate(resolve));
      if (this.#closed) break;
    }
    this.#change(state.index, slice);
    this.#version++;
    this.#synced = true;
    this.#metrics?.synced.set(1);
    this.#observe('snapshot', started);
    if (state.tasks.size >= COLLECT_AFTER_TASKS) (globalThis as { gc?: () => void }).gc?.();
    for (const listener of this.#listeners) listener(this.#serial);
    const queued = this.#queued ?? [];
    this.#queued = undefined;
    for (const event of queued) this.#applyNow(event);
  }

  #applyNow(event: ClusterFeedEvent): void {
    const started = performance.now();
    if (event.type === 'snapshot') this.#replace(event.state);
    else this.#change(event.index, event.changes);
    this.#observe(event.type, started);
    for (const listener of this.#listeners) listener(this.#serial);
  }

  #observe(type: ClusterFeedEvent['type'], started: number): void {
    if (this.#metrics) {
      this.#metrics.applied.inc({ type });
      this.#metrics.applySeconds.observe((performance.now() - started) / 1000);
      this.#metrics.names.set(this.#index.names);
      this.#metrics.records.set(this.#index.records);
      this.#metrics.tableBytes.set(this.#index.tableBytes);
    }
  }

  #setSerial(index: number): void {
    if (index === this.#serial) return;
    this.#version++;
    this.#serial = index;
    this.#soas.clear();
  }

  /**
   * A snapshot, applied as the difference from what the zones hold: a
   * resync after compacted history usually changes little, so only the
   * records that differ are rebuilt (the first snapshot builds everything).
   */
  #replace(state: ClusterState): void {
    const changes: ClusterChange[] = [];
    const diff = <K extends 'task' | 'app' | 'agent' | 'framework' | 'vip', T, H = T>(kind: K, held: ReadonlyMap<string, H>, next: ReadonlyMap<string, T>, kept: (value: T) => unknown = (v) => v): void => {
      for (const [id, value] of next) if (!same(held.get(id), kept(value))) changes.push({ kind, id, value } as ClusterChange);
      for (const id of held.keys()) if (!next.has(id)) changes.push({ kind, id, value: undefined } as ClusterChange);
    };
    diff('agent', this.#agents, state.agents);
    diff('app', this.#apps, state.apps, (app) => zoneApp(app));
    diff('framework', this.#frameworks, state.frameworks);
    diff('vip', this.#vips, state.vips);
    diff('task', this.#tasks, state.tasks, (task) => zoneTask(task));
    if (!same(this.#leader, state.leader)) changes.push({ kind: 'leader', id: 'leader', value: state.leader });
    this.#change(state.index, changes, !this.#synced);
  }

  #change(index: number, changes: readonly ClusterChange[], first = false): void {
    this.#version++;
    const dirty = new Set<string>();
    let cluster = first;
    for (const change of changes) {
      switch (change.kind) {
        case 'task': {
          const old = this.#tasks.get(change.id);
          if (old) {
            removeFrom(this.#tasksByApp, old.appId, change.id);
            removeFrom(this.#tasksByAgent, old.agentId, change.id);
          }
          if (change.value) {
            const id = change.id;
            const appId = addTo(this.#tasksByApp, change.value.appId, id);
            const agentId = addTo(this.#tasksByAgent, change.value.agentId, id);
            this.#tasks.set(id, zoneTask(change.value, (s) => (s === id ? id : s === appId ? appId : s === agentId ? agentId : s)));
          } else {
            this.#tasks.delete(change.id);
          }
          dirty.add(change.id);
          break;
        }
        case 'app':
          if (change.value) this.#apps.set(change.id, zoneApp(change.value));
          else this.#apps.delete(change.id);
          for (const id of this.#tasksByApp.get(change.id)?.ids ?? []) dirty.add(id);
          break;
        case 'agent':
          if (change.value) this.#agents.set(change.id, change.value);
          else this.#agents.delete(change.id);
          for (const id of this.#tasksByAgent.get(change.id)?.ids ?? []) dirty.add(id);
          cluster = true;
          break;
        case 'framework':
          if (change.value) this.#frameworks.set(change.id, change.value);
          else this.#frameworks.delete(change.id);
          cluster = true;
          break;
        case 'vip':
          if (change.value) this.#vips.set(change.id, change.value);
          else this.#vips.delete(change.id);
          cluster = true;
          break;
        case 'leader':
          this.#leader = change.value;
          cluster = true;
          break;
      }
    }
    if (cluster) this.#rebuildCluster();
    for (const id of dirty) this.#rebuildTask(id);
    this.#setSerial(index);
  }

  #rebuildCluster(): void {
    this.#index.set(CLUSTER_SOURCE, clusterRecords({ agents: this.#agents, frameworks: this.#frameworks, vips: this.#vips, leader: this.#leader }, this.options));
  }

  #rebuildTask(id: string): void {
    const task = this.#tasks.get(id);
    const built = task ? taskRecords(task, this.#apps.get(task.appId), this.#agents.get(task.agentId), this.options) : undefined;
    this.#index.set(taskSource(id), built);
  }
}

const SERVFAIL: ZoneAnswer = Object.freeze({ rcode: 'SERVFAIL', authoritative: false, answers: NONE, authority: NONE, additionals: NONE });

/** The list started at `offset` and wrapped around (loops, not spreads: spreading the frozen cached lists is slow in V8). */
function rotated<T>(list: readonly T[], offset: number): T[] {
  const out = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = list[(i + offset) % list.length]!;
  return out;
}

/** Equal records: the same object, or the same JSON (records are plain data). */
function same(a: unknown, b: unknown): boolean {
  return a === b || (a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b));
}

function isReverse(name: string): boolean {
  return REVERSE_APEXES.some((apex) => name.endsWith(`.${apex}`));
}
