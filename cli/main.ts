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
import { runAgent, runMaster, runUp } from './processes.ts';
import { vipList, vipShow } from './vips.ts';
import { envoyBootstrapVerb } from './envoy.ts';

export interface Verb {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Verb-specific flags: name -> description. Boolean flags are listed in `booleans`. */
  readonly flags: Readonly<Record<string, string>>;
  readonly booleans?: readonly string[];
  /** Names of the positional arguments after the verb's words, all required (`strata app show ID`). */
  readonly operands?: readonly string[];
  /** Accepts every configuration flag (`--api-port`, `--store-backend`, ...). */
  readonly configFlags: boolean;
  run(args: ParsedArgs): Promise<number>;
}

/** `--wait` and `--timeout` of the verbs that start a deployment. */
const WAIT_FLAGS = { timeout: 'with --wait: give up waiting after this many seconds (default 600); the deployment goes on' };
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
    usage: 'strata app add FILE.json [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
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
    usage: 'strata app remove ID [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
    operands: ['ID'],
    configFlags: false,
    run: appRemove,
  },
  {
    name: 'app update',
    summary: `Change an app from a JSON file of the fields to change (PUT /v2/apps/ID, merged into the definition); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app update ID FILE.json [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
    operands: ['ID', 'FILE.json'],
    configFlags: false,
    run: appUpdate,
  },
  {
    name: 'app scale',
    summary: `Set an app's number of instances (PUT {"instances": N}); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app scale ID N [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
    operands: ['ID', 'N'],
    configFlags: false,
    run: appScale,
  },
  {
    name: 'app restart',
    summary: `Restart an app: a deployment replaces every task (POST /v2/apps/ID/restart); --force overrides a running deployment.${WAIT_HELP}`,
    usage: 'strata app restart ID [--force] [--wait [--timeout SECONDS]]',
    flags: WAIT_FLAGS,
    booleans: ['force', 'wait'],
    operands: ['ID'],
    configFlags: false,
    run: appRestart,
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
    name: 'envoy bootstrap',
    summary: 'Print an Envoy bootstrap (JSON; --grpc: a proxyless gRPC bootstrap) that points a node at the xDS server with its node id and a token',
    usage: 'strata envoy bootstrap --node ID [--xds-address HOST:PORT] [--token-file FILE] [--cluster NAME] [--admin-port PORT] [--grpc]',
    flags: {
      node: 'the node id the server sees (Envoy --service-node)',
      'xds-address': 'where nodes reach the xDS server (default: the API host, port 15010)',
      'token-file': 'a file holding the token the node authenticates with (default: the logged-in token)',
      cluster: 'node cluster (default strata)',
      'admin-port': 'Envoy admin port on 127.0.0.1 (default 9901)',
    },
    booleans: ['grpc'],
    configFlags: false,
    run: envoyBootstrapVerb,
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
    if (rest.length > operands.length) throw new UsageError(`unexpected argument "${rest[operands.length]}"`);
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
