/**
 * The `strata` command: one verb table, each verb with its summary, usage,
 * flags and `--help`. Verbs that run a process share the configuration
 * flags of control-plane/config (every setting is also a flag).
 */
import { isStrataError } from '../common/errors.ts';
import { configFlags } from '../control-plane/config/load.ts';
import { appAdd, appList, appRemove, appRestart, appScale, appShow, appUpdate, deploymentList, deploymentRollback, taskKill, taskList } from './apps.ts';
import { parseArgs, UsageError, type ParsedArgs } from './args.ts';
import { authLogin, authLogout, authToken } from './auth.ts';
import { ApiError } from './client.ts';
import { listAgents, showLeader } from './cluster.ts';
import { groupAdd, groupList, groupRemove, groupShow, groupUpdate } from './groups.ts';
import { runAgent, runMaster, runUp } from './processes.ts';
import { vipList, vipShow } from './vips.ts';
import { networkAdd, networkLease, networkLeases, networkList, networkRemove, networkShow } from './networks.ts';

export interface Verb {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Verb-specific flags: name -> description. Boolean flags are listed in `booleans`. */
  readonly flags: Readonly<Record<string, string>>;
  readonly booleans?: readonly string[];
  /** Names of the positional arguments after the verb's words, all required (`strata app show ID`). */
  readonly operands?: readonly string[];
  /** Positional arguments that may follow the required ones (`strata group update ID [FILE.json]`). */
  readonly optionalOperands?: readonly string[];
  /** Accepts every configuration flag (`--api-port`, `--store-backend`, ...). */
  readonly configFlags: boolean;
  run(args: ParsedArgs): Promise<number>;
}

/** `--wait` and `--timeout` of the verbs that start a deployment. */
const WAIT_FLAGS = { timeout: 'with --wait: give up waiting after this many seconds (default 600); the deployment goes on' };
/** Strata's deployment deadline, for the verbs that start a deployment. */
const DEADLINE_FLAGS = { ...WAIT_FLAGS, deadline: 'mark the deployment failed if it is not done after this many seconds (with --rollback-on-failure: then roll it back)' };
const WAIT_HELP = ' --wait polls /v2/deployments and prints each step until the deployment is done.';

const VERBS: readonly Verb[] = [
  {
    name: 'up',
    summary: 'Run a whole single-node Strata (master on the embedded store, and a local agent) in this process',
    usage: 'strata up [--data-dir DIR] [--api-port PORT] [config flags]',
    flags: {},
    configFlags: true,
    run: runUp,
  },
  {
    name: 'master',
    summary: 'Run a master: the API server; campaigns for leadership on the configured store',
    usage: 'strata master [--store-backend embedded|etcd|consul] [--store-etcd-endpoints URLS] [config flags]',
    flags: {},
    configFlags: true,
    run: runMaster,
  },
  {
    name: 'agent',
    summary: 'Run an agent that registers this host with a master and heartbeats',
    usage: 'strata agent --agent-master-url URL --agent-token-file FILE [config flags]',
    flags: {},
    configFlags: true,
    run: runAgent,
  },
  {
    name: 'agent list',
    summary: 'List the agents registered with the cluster',
    usage: 'strata agent list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: listAgents,
  },
  {
    name: 'node list',
    summary: 'List the nodes (agents) registered with the cluster (same as `strata agent list`)',
    usage: 'strata node list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: listAgents,
  },
  {
    name: 'leader',
    summary: 'Show which master leads, where its API is, and its fencing token',
    usage: 'strata leader [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: showLeader,
  },
  {
    name: 'app add',
    summary: `Create an app from a Marathon app definition (JSON file), as POST /v2/apps.${WAIT_HELP}`,
    usage: 'strata app add FILE.json [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['FILE.json'],
    configFlags: false,
    run: appAdd,
  },
  {
    name: 'app list',
    summary: 'List the apps you may read: instances, resources, version, deployments',
    usage: 'strata app list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: appList,
  },
  {
    name: 'app show',
    summary: 'Show one app as Marathon JSON (with its tasks and deployments)',
    usage: 'strata app show ID',
    flags: {},
    operands: ['ID'],
    configFlags: false,
    run: appShow,
  },
  {
    name: 'app remove',
    summary: `Remove an app (a deployment stops it); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app remove ID [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID'],
    configFlags: false,
    run: appRemove,
  },
  {
    name: 'app update',
    summary: `Change an app from a JSON file of the fields to change (PUT /v2/apps/ID, merged into the definition); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app update ID FILE.json [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID', 'FILE.json'],
    configFlags: false,
    run: appUpdate,
  },
  {
    name: 'app scale',
    summary: `Set an app's number of instances (PUT {"instances": N}); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app scale ID N [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID', 'N'],
    configFlags: false,
    run: appScale,
  },
  {
    name: 'app restart',
    summary: `Restart an app: a deployment replaces every task (POST /v2/apps/ID/restart); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app restart ID [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID'],
    configFlags: false,
    run: appRestart,
  },
  {
    name: 'group list',
    summary: 'List the groups (derived from app ids) you may read: apps, sub-groups, dependencies, version',
    usage: 'strata group list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: groupList,
  },
  {
    name: 'group show',
    summary: 'Show one group as Marathon JSON (its apps with counts and deployments, and its sub-groups)',
    usage: 'strata group show ID',
    flags: {},
    operands: ['ID'],
    configFlags: false,
    run: groupShow,
  },
  {
    name: 'group add',
    summary: `Create a group with its apps and nested groups from a Marathon group (JSON file), as POST /v2/groups; apps start in dependency order.${WAIT_HELP}`,
    usage: 'strata group add FILE.json [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['FILE.json'],
    configFlags: false,
    run: groupAdd,
  },
  {
    name: 'group update',
    summary: `Change a group (PUT /v2/groups/ID): from a JSON file (apps, groups, dependencies), or scale every app by a factor, or roll back to a group version; --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata group update ID (FILE.json | --scale-by FACTOR | --version VERSION) [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: { ...DEADLINE_FLAGS, 'scale-by': 'multiply the instances of every app under the group (rounded up)', version: 'roll the group back to this version (see `strata group show`, /v2/groups/ID/versions)' },
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID'],
    optionalOperands: ['FILE.json'],
    configFlags: false,
    run: groupUpdate,
  },
  {
    name: 'group remove',
    summary: `Remove a group and every app under it (a deployment stops them); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata group remove ID [--force] [--deadline SECONDS [--rollback-on-failure]] [--wait [--timeout SECONDS]]',
    flags: DEADLINE_FLAGS,
    booleans: ['force', 'wait', 'rollback-on-failure'],
    operands: ['ID'],
    configFlags: false,
    run: groupRemove,
  },
  {
    name: 'task list',
    summary: 'List the tasks of the apps you may read (or of one app)',
    usage: 'strata task list [--app ID] [--json]',
    flags: { app: 'only the tasks of this app' },
    booleans: ['json'],
    configFlags: false,
    run: taskList,
  },
  {
    name: 'task kill',
    summary: 'Kill a task (its app replaces it); --scale also lowers the app\'s instances so it is not replaced',
    usage: 'strata task kill TASK_ID [--scale]',
    flags: {},
    booleans: ['scale'],
    operands: ['TASK_ID'],
    configFlags: false,
    run: taskKill,
  },
  {
    name: 'deployment list',
    summary: 'List deployments not yet finished',
    usage: 'strata deployment list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: deploymentList,
  },
  {
    name: 'deployment rollback',
    summary: `Roll a deployment back (a new deployment to the previous versions); --force only removes it, leaving the apps as they are.${WAIT_HELP}`,
    usage: 'strata deployment rollback ID [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
    operands: ['ID'],
    configFlags: false,
    run: deploymentRollback,
  },
  {
    name: 'vip list',
    summary: 'List the VIPs published by app port labels (VIP_n): address, ports, healthy backends, DNS name',
    usage: 'strata vip list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: vipList,
  },
  {
    name: 'vip show',
    summary: 'Show one VIP (by name such as /web, DNS label, or address) with every backend and its weight',
    usage: 'strata vip show VIP [--json]',
    flags: {},
    booleans: ['json'],
    operands: ['VIP'],
    configFlags: false,
    run: vipShow,
  },
  {
    name: 'network list',
    summary: 'List the overlay networks (subnet split per agent, VNI, MTU)',
    usage: 'strata network list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: networkList,
  },
  {
    name: 'network show',
    summary: 'Show one overlay network as JSON',
    usage: 'strata network show NAME',
    flags: {},
    operands: ['NAME'],
    configFlags: false,
    run: networkShow,
  },
  {
    name: 'network add',
    summary: 'Add an overlay network; refused when it overlaps another network or reuses a VNI',
    usage: 'strata network add NAME --subnet CIDR [--prefix N] [--subnet6 CIDR] [--prefix6 N] [--vni N] [--mtu N] [--description TEXT]',
    flags: { subnet: 'IPv4 range, split into one /prefix per agent', prefix: 'per-agent prefix length (default 24)', subnet6: 'IPv6 range', prefix6: 'per-agent IPv6 prefix length (default 80)', vni: 'VXLAN network identifier (default 1024; must be unused)', mtu: 'container MTU (default 1420)', description: 'free text' },
    operands: ['NAME'],
    configFlags: false,
    run: networkAdd,
  },
  {
    name: 'network remove',
    summary: 'Remove an overlay network no app asks for and no task runs on',
    usage: 'strata network remove NAME',
    flags: {},
    operands: ['NAME'],
    configFlags: false,
    run: networkRemove,
  },
  {
    name: 'network leases',
    summary: 'List every agent\'s overlay lease: underlay address, VTEP address and MAC, subnet of each network',
    usage: 'strata network leases [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: networkLeases,
  },
  {
    name: 'network lease',
    summary: 'Show one agent\'s overlay lease as JSON',
    usage: 'strata network lease AGENT_ID',
    flags: {},
    operands: ['AGENT_ID'],
    configFlags: false,
    run: networkLease,
  },
  {
    name: 'auth login',
    summary: 'Log in to a Strata API and keep the token for later commands',
    usage: 'strata auth login [--url URL] [--uid UID] [--password-file FILE]   (or STRATA_PASSWORD in the environment)',
    flags: {
      url: 'API address (default http://127.0.0.1:8080, or the last one logged in to)',
      uid: 'user id (default: the uid in --password-file when it is a bootstrap credentials file)',
      'password-file': 'file holding the password, or a bootstrap-credentials.json written by `strata up`',
    },
    configFlags: false,
    run: authLogin,
  },
  {
    name: 'auth token',
    summary: 'Print the kept token (for scripts, or an agent\'s --agent-token-file)',
    usage: 'strata auth token',
    flags: {},
    configFlags: false,
    run: authToken,
  },
  {
    name: 'auth logout',
    summary: 'Forget the kept token',
    usage: 'strata auth logout',
    flags: {},
    configFlags: false,
    run: authLogout,
  },
];

function helpFor(verb: Verb): string {
  const lines = [`${verb.summary}.`, '', `Usage: ${verb.usage}`];
  const flags = Object.entries(verb.flags);
  if (flags.length > 0 || verb.booleans?.length) {
    lines.push('', 'Flags:');
    for (const [name, text] of flags) lines.push(`  --${name.padEnd(24)} ${text}`);
    for (const name of verb.booleans ?? []) lines.push(`  --${name}`);
  }
  if (verb.configFlags) {
    lines.push('', 'Configuration (flag, environment variable; --config FILE reads a JSON file):');
    for (const f of configFlags()) lines.push(`  ${f.flag.padEnd(28)} ${f.env.padEnd(30)} ${f.type}`);
  }
  lines.push('  --help                       show this help');
  return lines.join('\n');
}

function topHelp(): string {
  const lines = ['strata: an open datacenter operating system centred on the service mesh', '', 'Usage: strata <verb> [flags]', '', 'Verbs:'];
  for (const v of VERBS) lines.push(`  ${v.name.padEnd(20)} ${v.summary}`);
  lines.push('', 'Run `strata <verb> --help` for a verb\'s flags.');
  return lines.join('\n');
}

function findVerb(words: readonly string[]): { verb: Verb; rest: string[] } | undefined {
  for (const v of [...VERBS].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length)) {
    const parts = v.name.split(' ');
    if (parts.every((p, i) => words[i] === p)) return { verb: v, rest: words.slice(parts.length) };
  }
  return undefined;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const all = new Set(VERBS.flatMap((v) => v.booleans ?? []).concat(['help']));
    const probe = parseArgs(argv, all);
    if (probe.words.length === 0 || probe.words[0] === 'help') {
      const target = probe.words.length > 1 ? findVerb(probe.words.slice(1)) : undefined;
      console.log(target ? helpFor(target.verb) : topHelp());
      return probe.words.length === 0 && !probe.booleans.has('help') ? 2 : 0;
    }
    const found = findVerb(probe.words);
    if (!found) {
      console.error(`strata: unknown verb "${probe.words.join(' ')}"\n\n${topHelp()}`);
      return 2;
    }
    const { verb, rest } = found;
    if (probe.booleans.has('help')) {
      console.log(helpFor(verb));
      return 0;
    }
    const operands = verb.operands ?? [];
    const most = operands.length + (verb.optionalOperands?.length ?? 0);
    if (rest.length > most) throw new UsageError(`unexpected argument "${rest[most]}"`);
    if (rest.length < operands.length) throw new UsageError(`missing ${operands[rest.length]}`);
    for (const name of Object.keys(probe.values)) {
      if (!(name in verb.flags) && !verb.configFlags) throw new UsageError(`unknown flag --${name}`);
    }
    for (const name of probe.booleans) {
      if (!verb.booleans?.includes(name)) throw new UsageError(`unknown flag --${name}`);
    }
    return await verb.run(probe);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`strata: ${err.message} (see --help)`);
      return 2;
    }
    if (err instanceof ApiError) {
      console.error(`strata: ${err.message}`);
      return 1;
    }
    if (isStrataError(err)) {
      console.error(`strata: ${err.message}`);
      return 1;
    }
    console.error(`strata: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}
