// @ts-check
/** Nodes (agents and their resources) and networking (VIPs, overlay networks, policies). */
import { api } from './api.js';
import { h, replace, table } from './dom.js';
import { appHref, errorBox, fmt, section } from './common.js';
import { live } from './live.js';

/** @param {{begin: number, end: number}[]} ranges */
function portRanges(ranges) {
  return ranges.map((r) => (r.begin === r.end ? String(r.begin) : `${r.begin}-${r.end}`)).join(', ') || '—';
}

/**
 * Agents with their total resources, what the tasks on them take, and
 * their health.
 * @param {HTMLElement} main
 */
export function nodesPage(main) {
  const nodes = h('div');
  replace(main, h('h1', {}, 'Nodes'), nodes);
  const poll = live(async () => {
    const [agents, tasks, apps] = await Promise.allSettled([api('GET', '/v1/agents'), api('GET', '/v2/tasks'), api('GET', '/v2/apps')]);
    if (agents.status === 'rejected') {
      replace(nodes, errorBox(agents.reason));
      throw agents.reason;
    }
    // What the live tasks on each agent take, from their apps' per-instance resources (when the caller may read both).
    /** @type {Map<string, {tasks: number, cpus: number, mem: number}>} */
    const used = new Map();
    if (tasks.status === 'fulfilled' && apps.status === 'fulfilled') {
      const byId = new Map(apps.value.apps.map((/** @type {any} */ a) => [a.id, a]));
      for (const t of tasks.value.tasks) {
        if (!['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING'].includes(t.state)) continue;
        const u = used.get(t.slaveId) ?? { tasks: 0, cpus: 0, mem: 0 };
        const app = byId.get(t.appId);
        u.tasks += 1;
        u.cpus += app?.cpus ?? 0;
        u.mem += app?.mem ?? 0;
        used.set(t.slaveId, u);
      }
    }
    const known = tasks.status === 'fulfilled' && apps.status === 'fulfilled';
    replace(nodes, table('Agents', ['ID', 'Hostname', 'Address', 'Health', 'Tasks', 'CPUs (used / total)', 'Memory MiB (used / total)', 'Disk MiB', 'Ports', 'Region / zone'],
      agents.value.agents.map((/** @type {any} */ a) => {
        const u = used.get(a.id) ?? { tasks: 0, cpus: 0, mem: 0 };
        return [
          h('code', {}, a.id), a.hostname, `${a.address.ip}:${a.address.port}`,
          h('span', { class: `health health-${a.health.status}` }, a.health.status),
          known ? String(u.tasks) : '?',
          `${known ? fmt(u.cpus) : '?'} / ${fmt(a.resources.cpus)}`,
          `${known ? fmt(u.mem) : '?'} / ${fmt(a.resources.memMb)}`,
          fmt(a.resources.diskMb), portRanges(a.resources.ports),
          [a.region, a.zone].filter(Boolean).join(' / ') || '—',
        ];
      }), 'no agents registered'));
  }, { intervalMs: 10_000 });
  return () => poll.stop();
}

/**
 * VIPs with their backends, overlay networks, network policies.
 * @param {HTMLElement} main
 */
export function networkingPage(main) {
  const vips = h('div');
  const networks = h('div');
  const policies = h('div');
  replace(main, h('h1', {}, 'Networking'), vips, networks, policies);
  const poll = live(async () => {
    const [v, n, p] = await Promise.allSettled([
      api('GET', '/networking/api/v1/vips'), api('GET', '/networking/api/v1/networks'), api('GET', '/networking/api/v1/policies'),
    ]);
    const vFailed = section(vips, v, (/** @type {any} */ x_) => table('VIPs', ['Name', 'Address', 'DNS name', 'Ports', 'Apps', 'Backends'], x_.vips.map((/** @type {any} */ x) => [
        h('code', {}, x.name),
        [x.ipv4, x.ipv6].filter(Boolean).join(', ') || (x.allocated ? '—' : 'allocating'),
        x.dnsName ? h('code', {}, x.dnsName) : '—',
        x.ports.map((/** @type {any} */ pt) => `${pt.port}/${pt.protocol}`).join(', '),
        h('span', {}, x.apps.map((/** @type {string} */ id, /** @type {number} */ i) => [i > 0 ? ', ' : '', h('a', { href: appHref(id) }, id)])),
        x.backends.length === 0 ? 'none' : h('ul', { class: 'backends' }, x.backends.map((/** @type {any} */ b) =>
          h('li', {}, `${b.ip}:${b.port} → ${b.vipPort} (${b.state.replace(/^TASK_/, '').toLowerCase()}, weight ${b.weight}${b.agentUnreachable ? ', agent unreachable' : ''})`))),
      ]), 'no VIPs: a port with a VIP_0 label makes one'));
    const nFailed = section(networks, n, (/** @type {any} */ x_) => table('Overlay networks', ['Name', 'Subnet', 'Prefix per agent', 'MTU', 'VNI', 'Description'], x_.networks.map((/** @type {any} */ x) => [
        h('code', {}, x.name), x.subnet ?? '—', `/${x.prefix}`, String(x.mtu), String(x.vni), x.description ?? '',
      ]), 'no overlay networks'));
    /** @param {any} peer */
    const peer = (peer) => peer.network ? `network ${peer.network}` : peer.cidr ? peer.cidr : peer.appId ? `app ${peer.appId}` : JSON.stringify(peer);
    const pFailed = section(policies, p, (/** @type {any} */ x_) => table('Network policies', ['Name', 'Applies to', 'Default', 'Rules', 'Description'], x_.policies.map((/** @type {any} */ x) => [
      h('code', {}, x.name), x.to.map(peer).join(', '), x.defaultAction, String(x.rules.length), x.description ?? '',
    ]), 'no network policies'));
    const failed = vFailed ?? nFailed ?? pFailed;
    if (failed !== undefined) throw failed;
  }, { intervalMs: 5_000 });
  return () => poll.stop();
}
