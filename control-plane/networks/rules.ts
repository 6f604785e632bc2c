/**
 * Rules between overlay networks and what uses them (pure): two networks
 * may not overlap or share a VNI; a network that tasks or apps use may not
 * be removed, nor have its addressing changed under them.
 */
import { cidrContains, parseCidr } from '../../common/ip.ts';
import type { App, Network, Task } from '../model/schemas.ts';
import { TERMINAL_TASK_STATES } from '../model/schemas.ts';
import type { Issue } from '../model/validate.ts';
import { OVERLAY_DEFAULTS } from '../model/schemas.ts';

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y || x.family !== y.family) return false;
  const shorter = x.prefixLength <= y.prefixLength ? x : y;
  const other = shorter === x ? b : a;
  return cidrContains(shorter, other.slice(0, other.indexOf('/')));
}

/** Conflicts of `candidate` with the other networks (and the VTEP range every agent's VXLAN endpoint uses). */
export function networkConflicts(candidate: Network, others: readonly Network[]): Issue[] {
  const issues: Issue[] = [];
  for (const [field, vtep] of [['subnet', OVERLAY_DEFAULTS.vtepSubnet], ['subnet6', OVERLAY_DEFAULTS.vtepSubnet6]] as const) {
    const mine = candidate[field];
    if (mine !== undefined && overlaps(mine, vtep)) issues.push({ path: `/${field}`, message: `${mine} overlaps the VTEP range ${vtep} the overlay's tunnel endpoints use` });
  }
  for (const other of others) {
    if (other.name === candidate.name) continue;
    for (const field of ['subnet', 'subnet6'] as const) {
      const mine = candidate[field];
      const theirs = other[field];
      if (mine !== undefined && theirs !== undefined && overlaps(mine, theirs)) {
        issues.push({ path: `/${field}`, message: `${mine} overlaps network ${JSON.stringify(other.name)} (${theirs})` });
      }
    }
    if (other.vni === candidate.vni) issues.push({ path: '/vni', message: `VNI ${candidate.vni} is used by network ${JSON.stringify(other.name)}` });
  }
  return issues;
}

/** The apps that ask for a network by name (container mode). */
export function appsOn(network: string, apps: readonly App[]): App[] {
  return apps.filter((a) => a.networks.some((n) => n.mode === 'container' && n.name === network));
}

/** Tasks not yet terminal of the apps on a network. */
export function liveTasksOn(network: string, apps: readonly App[], tasks: readonly Task[]): Task[] {
  const ids = new Set(appsOn(network, apps).map((a) => a.id));
  return tasks.filter((t) => ids.has(t.appId) && !TERMINAL_TASK_STATES.has(t.state));
}

/** Fields whose change would move addresses under running tasks. */
const ADDRESSING = ['subnet', 'prefix', 'subnet6', 'prefix6', 'vni', 'mtu'] as const;

/** Why `next` may not replace `current` now, or an empty list. */
export function changeProblems(current: Network, next: Network, apps: readonly App[], tasks: readonly Task[]): Issue[] {
  const changed = ADDRESSING.filter((f) => current[f] !== next[f]);
  if (changed.length === 0) return [];
  const live = liveTasksOn(current.name, apps, tasks);
  if (live.length === 0) return [];
  return changed.map((f) => ({
    path: `/${f}`,
    message: `cannot change while ${live.length} task(s) run on network ${JSON.stringify(current.name)} (e.g. ${live[0]!.id}); scale its apps to 0 first`,
  }));
}

/** Why `network` may not be removed now, or an empty list. */
export function removalProblems(network: string, apps: readonly App[], tasks: readonly Task[]): string[] {
  const users = appsOn(network, apps);
  const live = liveTasksOn(network, apps, tasks);
  const problems: string[] = [];
  if (live.length > 0) problems.push(`${live.length} task(s) still run on it (e.g. ${live[0]!.id})`);
  if (users.length > 0) problems.push(`app(s) ${users.slice(0, 5).map((a) => a.id).join(', ')}${users.length > 5 ? ', …' : ''} ask for it`);
  return problems;
}
