/**
 * fast-check properties of the zones:
 * - every published (RUNNING, on a known agent) task resolves by its name
 *   and its canonical name to its address; no other task has records;
 * - every owner name and target is a valid name with labels of at most 63
 *   characters, and sanitised labels are valid RFC 1123 labels;
 * - applying changes one by one gives exactly the zone a fresh build of
 *   the final state gives (the incremental path loses nothing).
 * STRATA_SLOW=1 runs many more cases.
 */
import test from 'ava';
import packet from 'dns-packet';
import fc from 'fast-check';
import type { Task, TaskState } from '../../control-plane/model/schemas.ts';
import { TASK_STATES } from '../../control-plane/model/schemas.ts';
import { ZoneAuthority } from './authority.ts';
import { FakeClusterFeed } from './fake-feed.ts';
import { agentIdTail, isValidName, marathonHostname, rfc1123Label, rfc952Label, taskIdHash, withLabelSuffix } from '../../common/dns-labels.ts';
import { mkAgent, mkApp, mkTask } from './testing.ts';
import type { ResourceRecord } from './types.ts';
import { rdataKey } from './zone-index.ts';

const RUNS = process.env.STRATA_SLOW === '1' ? 2000 : 150;
const LABEL = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?$/;

test('sanitised labels are always valid RFC 1123 labels of at most 63 (24 for RFC 952) characters', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      const a = rfc1123Label(s);
      const b = rfc952Label(s);
      return LABEL.test(a) && a.length <= 63 && LABEL.test(b) && b.length <= 24 && !/^[0-9]/.test(b);
    }),
    { numRuns: RUNS * 20 },
  ));
});

const element = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,70}[a-z0-9])?$/);
const appId = fc.array(element, { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}`).filter((id) => id.length <= 255);
const agentIds = ['a1b2-S0', 'a1b2-S1', 'c3d4-S12'];
const agentArb = fc.constantFrom(...agentIds);
// Half RUNNING (the state that has records), half any state.
const stateArb = fc.oneof(fc.constant<TaskState>('RUNNING'), fc.constantFrom<TaskState>(...TASK_STATES));

interface Scenario {
  readonly apps: string[];
  readonly tasks: { app: number; agent: string; state: TaskState; ports: number[]; ip: boolean }[];
}

const scenario = fc.record({
  apps: fc.uniqueArray(appId, { minLength: 1, maxLength: 4 }),
  tasks: fc.array(
    fc.record({
      app: fc.nat(3),
      agent: agentArb,
      state: stateArb,
      ports: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 2 }),
      ip: fc.boolean(),
    }),
    { maxLength: 12 },
  ),
});

function materialise(s: Scenario): { apps: ReturnType<typeof mkApp>[]; tasks: Task[]; agents: ReturnType<typeof mkAgent>[] } {
  const apps = s.apps.map((id) => mkApp(id, { portDefinitions: [{ port: 0, name: 'http' }, { port: 0, name: 'admin', protocol: 'udp' }] }));
  const agents = agentIds.slice(0, 2).map((id, i) => mkAgent(id, { ip: `10.0.0.${i + 1}` })); // c3d4-S12 is never registered
  const tasks = s.tasks.map((x, i) =>
    mkTask(`task-${i}.instance-${i}`, s.apps[x.app % s.apps.length]!, x.agent, {
      state: x.state,
      ports: x.ports,
      ipAddresses: x.ip ? [{ ipAddress: `9.0.0.${i + 1}`, protocol: 'IPv4' }] : [],
    }),
  );
  return { apps, tasks, agents };
}

async function authorityOf(state: ReturnType<typeof materialise>): Promise<ZoneAuthority> {
  const authority = new ZoneAuthority(new FakeClusterFeed(state));
  await authority.start();
  return authority;
}

test('every published task resolves by name and canonical name; no other task has records; every name is valid', async (t) => {
  await t.notThrowsAsync(fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const state = materialise(s);
      const authority = await authorityOf(state);
      for (const task of state.tasks) {
        const label = rfc1123Label(marathonHostname(task.appId));
        const canonical = `${withLabelSuffix(label, `-${taskIdHash(task.id)}-${agentIdTail(task.agentId, rfc1123Label)}`)}.marathon.mesos`;
        const agent = state.agents.find((a) => a.id === task.agentId);
        const answer = authority.lookup({ name: canonical, type: 'A' });
        if (task.state === 'RUNNING' && agent) {
          if (answer?.rcode !== 'NOERROR' || !answer.answers.some((r) => r.type === 'A' && r.address === agent.address.ip)) return false;
          const short = authority.lookup({ name: `${label}.marathon.mesos`, type: 'A' });
          if (!short?.answers.some((r) => r.type === 'A' && r.address === agent.address.ip)) return false;
        } else if (answer?.rcode !== 'NXDOMAIN') {
          return false;
        }
      }
      for (const r of authority.allRecords()) {
        if (!isValidName(r.name)) return false;
        if ((r.type === 'SRV' || r.type === 'PTR') && !isValidName(r.target)) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  ));
});

const change = fc.record({
  task: fc.nat(7),
  app: fc.nat(3),
  agent: agentArb,
  state: stateArb,
  ports: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 2 }),
  remove: fc.boolean(),
});

test('incremental updates (and resync snapshots) give the same zone as a fresh build', async (t) => {
  await t.notThrowsAsync(fc.assert(
    fc.asyncProperty(scenario, fc.array(change, { maxLength: 25 }), fc.boolean(), async (s, changes, resync) => {
      const initial = materialise(s);
      const feed = new FakeClusterFeed(initial);
      const authority = new ZoneAuthority(feed);
      await authority.start();
      // Every name the zone ever held, to compare existence at the end (stale empty non-terminals).
      const seen = new Set<string>();
      const remember = (): void => {
        for (const r of authority.allRecords()) seen.add(r.name);
      };
      remember();
      for (const [i, c] of changes.entries()) {
        const id = `task-${c.task}.instance-${c.task}`;
        const value = mkTask(id, s.apps[c.app % s.apps.length]!, c.agent, { state: c.state, ports: c.ports });
        // Every third change is missed (compacted history) and only a resync snapshot brings it.
        if (resync && i % 3 === 2) {
          if (c.remove) feed.tasks.delete(id);
          else feed.tasks.set(id, value);
        } else if (c.remove) feed.remove('task', id);
        else feed.put({ kind: 'task', value });
        remember();
      }
      if (resync) feed.sync();
      const fresh = new ZoneAuthority(new FakeClusterFeed({ tasks: [...feed.tasks.values()], apps: initial.apps, agents: initial.agents }));
      await fresh.start();
      const dump = (a: ZoneAuthority): string[] => a.allRecords().map((r) => `${r.name} ${rdataKey(r)}`);
      if (JSON.stringify(dump(authority)) !== JSON.stringify(dump(fresh))) return false;
      // Existence too: every name and every ancestor (empty non-terminals) answers alike.
      const names = new Set<string>();
      for (const name of [...seen, ...fresh.allRecords().map((r) => r.name)]) {
        for (let n = name; n.includes('.'); n = n.slice(n.indexOf('.') + 1)) names.add(n);
      }
      for (const name of names) {
        const q = { name, type: 'TYPE65' } as const;
        if (authority.lookup(q)?.rcode !== fresh.lookup(q)?.rcode) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  ));
});

test('every record of a generated zone encodes as a DNS answer and decodes back (dns-packet as the oracle)', async (t) => {
  await t.notThrowsAsync(fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const authority = await authorityOf(materialise(s));
      for (const r of authority.allRecords()) {
        const answer = toPacketAnswer(r);
        const decoded = packet.decode(packet.encode({ type: 'response', id: 1, flags: packet.AUTHORITATIVE_ANSWER, answers: [answer] }));
        const back = decoded.answers?.[0];
        if (!back || back.name !== r.name || back.type !== r.type) return false;
        if ((r.type === 'A' || r.type === 'AAAA') && (back as { data: string }).data !== r.address) return false;
        if (r.type === 'SRV' && (back as { data: { target: string; port: number } }).data.target !== r.target) return false;
      }
      return true;
    }),
    { numRuns: Math.ceil(RUNS / 3) },
  ));
});

function toPacketAnswer(r: ResourceRecord): packet.Answer {
  const base = { name: r.name, ttl: r.ttlSeconds, class: 'IN' as const };
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return { ...base, type: r.type, data: r.address };
    case 'SRV':
      return { ...base, type: 'SRV', data: { priority: r.priority, weight: r.weight, port: r.port, target: r.target } };
    case 'PTR':
    case 'NS':
    case 'CNAME':
      return { ...base, type: r.type, data: r.target };
    case 'TXT':
      return { ...base, type: 'TXT', data: [...r.text] };
    case 'SOA':
      return { ...base, type: 'SOA', data: { mname: r.mname, rname: r.rname, serial: r.serial, refresh: r.refreshSeconds, retry: r.retrySeconds, expire: r.expireSeconds, minimum: r.minimumSeconds } };
  }
}
