/**
 * The `strata` command: one verb table, each verb with its summary, usage,
 * flags and `--help`. Verbs that run a process share the configuration
 * flags of control-plane/config (every setting is also a flag).
 */
import { isStrataError } from '../common/errors.ts';
import { configFlags } from '../control-plane/config/load.ts';
import { appAdd, appKill, appList, appRemove, appRestart, appScale, appShow, appUpdate, deploymentList, deploymentRollback, taskKill, taskList } from './apps.ts';
import { parseArgs, UsageError, type ParsedArgs } from './args.ts';
import { authLogin, authLogout, authToken } from './auth.ts';
import { gatewayStatus } from './gateway.ts';
import { showUi } from './ui.ts';
import { caCert, caInfo, caList, caRevoke, caRootKeyExport, caSign } from './ca.ts';
import { secretCreate, secretDelete, secretGet, secretList, secretRotateKey, secretUpdate } from './secrets.ts';
import { mtlsCertShow, mtlsRenew, mtlsStatus } from './mtls.ts';
import { ApiError } from './client.ts';
import { aclGrant, aclList, aclRevoke, groupAdd as iamGroupAdd, groupList as iamGroupList, groupRemove as iamGroupRemove, memberAdd, memberRemove, serviceAccountAdd, userAdd, userDisable, userEnable, userList, userRemove } from './iam.ts';
import { ldapConfigRemove, ldapConfigSet, ldapConfigShow, ldapConfigTest, ldapImportGroup, ldapImportUser, oidcAdd, oidcList, oidcRemove, providerLogin, samlAdd, samlList, samlRemove } from './idp.ts';
import { listAgents, showLeader } from './cluster.ts';
import { groupAdd, groupList, groupRemove, groupShow, groupUpdate } from './groups.ts';
import { dnsLookup } from './dns.ts';
import { runAgent, runMaster, runUp } from './processes.ts';
import { vipList, vipShow, vipWatch } from './vips.ts';
import { policyAdd, policyExplain, policyList, policyRemove, policyRuleset, policyShow } from './policies.ts';
import { networkAdd, networkLease, networkLeases, networkList, networkRemove, networkShow } from './networks.ts';
import { queueList, queueReset } from './queue.ts';
import { taskLog } from './task-log.ts';
import { taskShow } from './task-show.ts';
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
    usage: 'strata agent --agent-master-url URL[,URL...] --agent-token-file FILE [config flags]',
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
    name: 'task show',
    summary: 'Show one task: state, agent host, its container IP on a virtual network (or host networking), ports, last message; TASK may be part of an id',
    usage: 'strata task show TASK [--json]',
    flags: {},
    booleans: ['json'],
    operands: ['TASK'],
    configFlags: false,
    run: taskShow,
  },
  {
    name: 'task log',
    summary: 'Print the last lines of a task\'s stdout (or --stderr), read from its agent through the master, as `dcos task log`; --follow keeps printing until the task ends; TASK may be part of an id',
    usage: 'strata task log TASK [--stderr] [--lines N] [--follow]',
    flags: { lines: 'how many of the last lines to print first (default 10)' },
    booleans: ['stderr', 'follow'],
    operands: ['TASK'],
    configFlags: false,
    run: taskLog,
  },
  {
    name: 'task kill',
    summary: 'Kill a task (its app replaces it); --scale also lowers the app\'s instances so it is not replaced',
    usage: 'strata task kill TASK_ID [--scale] [--wipe]',
    flags: {},
    booleans: ['scale', 'wipe'],
    operands: ['TASK_ID'],
    configFlags: false,
    run: taskKill,
  },
  {
    name: 'app kill',
    summary: `Kill an app's tasks (all, or those on --host; DELETE /v2/apps/ID/tasks): the app replaces them, unless --scale lowers its instances; --wipe also expunges their records.${WAIT_HELP}`,
    usage: 'strata app kill ID [--host HOST] [--scale [--wait [--timeout SECONDS]]] [--wipe]',
    flags: { host: 'only the tasks on this agent host name', ...WAIT_FLAGS },
    booleans: ['scale', 'wipe', 'wait'],
    operands: ['ID'],
    configFlags: false,
    run: appKill,
  },
  {
    name: 'queue list',
    summary: 'List the apps waiting for instances to launch, with their restart backoff (GET /v2/queue)',
    usage: 'strata queue list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: queueList,
  },
  {
    name: 'queue reset',
    summary: 'Reset an app\'s restart backoff so it launches again now (DELETE /v2/queue/ID/delay)',
    usage: 'strata queue reset ID',
    flags: {},
    operands: ['ID'],
    configFlags: false,
    run: queueReset,
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
    name: 'vip watch',
    summary: 'Follow the VIP delta feed agents follow: every VIP first, then each VIP as it changes (backends, addresses) or goes',
    usage: 'strata vip watch [--count N] [--json]',
    flags: { count: 'stop after N replies with changes' },
    booleans: ['json'],
    configFlags: false,
    run: vipWatch,
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
    name: 'policy list',
    summary: 'List the network policies: what each applies to, its rules, default and version',
    usage: 'strata policy list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: policyList,
  },
  {
    name: 'policy show',
    summary: 'Show one network policy as JSON',
    usage: 'strata policy show NAME',
    flags: {},
    operands: ['NAME'],
    configFlags: false,
    run: policyShow,
  },
  {
    name: 'policy add',
    summary: 'Add or replace a network policy from a JSON file ({name, to, rules, defaultAction})',
    usage: 'strata policy add FILE.json',
    flags: {},
    operands: ['FILE.json'],
    configFlags: false,
    run: policyAdd,
  },
  {
    name: 'policy remove',
    summary: 'Remove a network policy',
    usage: 'strata policy remove NAME',
    flags: {},
    operands: ['NAME'],
    configFlags: false,
    run: policyRemove,
  },
  {
    name: 'policy explain',
    summary: 'Say which policy and rule decide a flow: SRC and DST are app ids, task ids or IPs; PORT is 80, 53/udp or icmp',
    usage: 'strata policy explain SRC DST PORT [--json]',
    flags: {},
    booleans: ['json'],
    operands: ['SRC', 'DST', 'PORT'],
    configFlags: false,
    run: policyExplain,
  },
  {
    name: 'policy ruleset',
    summary: 'Show what every agent enforces now: per policy its destinations and nftables rules (--nft: the whole table as agents load it)',
    usage: 'strata policy ruleset [--nft] [--json]',
    flags: {},
    booleans: ['nft', 'json'],
    configFlags: false,
    run: policyRuleset,
  },
  {
    name: 'dns lookup',
    summary: 'Ask this node\'s DNS server for NAME (TYPE: A, AAAA, SRV, PTR, NS, SOA, TXT, CNAME, ANY; default A)',
    usage: 'strata dns lookup NAME [TYPE] [--server IP:PORT] [--json] [config flags, e.g. --dns-udp-port]',
    flags: { server: 'the DNS server to ask (default: the config\'s dns.host:dns.udpPort)' },
    booleans: ['json'],
    operands: ['NAME'],
    optionalOperands: ['TYPE'],
    configFlags: true,
    run: dnsLookup,
  },
  {
    name: 'envoy bootstrap',
    summary: 'Print an Envoy bootstrap (JSON; --grpc: a proxyless gRPC bootstrap) that points a node at the xDS server with its node id and a token',
    usage: 'strata envoy bootstrap --node ID [--xds-address HOST:PORT] [--token-file FILE] [--cluster NAME] [--admin-port PORT] [--mtls-dir DIR] [--grpc]',
    flags: {
      node: 'the node id the server sees (Envoy --service-node)',
      'xds-address': 'where nodes reach the xDS server (default: the API host, port 15010)',
      'token-file': 'a file holding the token the node authenticates with (default: the logged-in token)',
      cluster: 'node cluster (default strata)',
      'admin-port': 'Envoy admin port on 127.0.0.1 (default 9901)',
      'mtls-dir': 'reach the xDS mTLS port (default 15012) with key.pem, chain.pem and ca.pem from `strata ca cert --out-dir DIR`',
    },
    booleans: ['grpc'],
    configFlags: false,
    run: envoyBootstrapVerb,
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
    usage: 'strata auth login [--url URL] [--uid UID] [--password-file FILE]   (or STRATA_PASSWORD in the environment)\n       strata auth login [--url URL] --service-account UID --private-key FILE\n       strata auth login --url https://HOST:8443 (--ca-fingerprint SHA256 | --ca-file FILE) ...   (through the gateway)\n       strata auth login [--url URL] --provider ID [--timeout S]   (OIDC/SAML in a browser: prints the URL, waits on a loopback port)',
    flags: {
      url: 'API address (default http://127.0.0.1:8080, or the last one logged in to)',
      uid: 'user id (default: the uid in --password-file when it is a bootstrap credentials file)',
      'password-file': 'file holding the password, or a bootstrap-credentials.json written by `strata up`',
      'service-account': 'log in as this service account (with --private-key): signs a 5-minute login token',
      'private-key': 'PEM private key of the service account (RSA or EC P-256)',
      'ca-file': 'https (the gateway): trust this cluster root CA (PEM)',
      'ca-fingerprint': 'https (the gateway): fetch /ca/dcos-ca.crt and trust it only if its SHA-256 fingerprint is this (strata up prints it)',
      provider: 'log in at this OIDC or SAML provider: open the printed URL in a browser on this machine; the CLI waits on 127.0.0.1 for the redirect',
      timeout: 'with --provider: give up after this many seconds (default 300)',
    },
    configFlags: false,
    run: (args) => (args.values.provider !== undefined ? providerLogin(args) : authLogin(args)),
  },
  {
    name: 'iam ldap config set',
    summary: 'Set the LDAP configuration from a DC/OS LDAPConfiguration JSON file (host, port, enforce-starttls, use-ldaps, dntemplate or lookup-dn/lookup-password/user-search, group-search, ca-certs)',
    usage: 'strata iam ldap config set FILE.json',
    flags: {},
    operands: ['FILE.json'],
    configFlags: false,
    run: ldapConfigSet,
  },
  {
    name: 'iam ldap config show',
    summary: 'Show the LDAP configuration (without the lookup password)',
    usage: 'strata iam ldap config show',
    flags: {},
    configFlags: false,
    run: ldapConfigShow,
  },
  {
    name: 'iam ldap config test',
    summary: 'Bind to the directory as UID with its password (exit 1 unless TEST_PASSED)',
    usage: 'strata iam ldap config test UID [--password-file FILE]   (or STRATA_LDAP_PASSWORD)',
    flags: { 'password-file': 'file holding the directory password' },
    operands: ['UID'],
    configFlags: false,
    run: ldapConfigTest,
  },
  {
    name: 'iam ldap config remove',
    summary: 'Remove the LDAP configuration (LDAP users can no longer log in)',
    usage: 'strata iam ldap config remove',
    flags: {},
    configFlags: false,
    run: ldapConfigRemove,
  },
  {
    name: 'iam ldap import-user',
    summary: 'Import a directory user; it logs in with `strata auth login --uid NAME` and its directory password',
    usage: 'strata iam ldap import-user USERNAME',
    flags: {},
    operands: ['USERNAME'],
    configFlags: false,
    run: ldapImportUser,
  },
  {
    name: 'iam ldap import-group',
    summary: 'Import a directory group and its members (needs group-search in the configuration)',
    usage: 'strata iam ldap import-group GROUPNAME',
    flags: {},
    operands: ['GROUPNAME'],
    configFlags: false,
    run: ldapImportGroup,
  },
  {
    name: 'iam oidc add',
    summary: 'Add or replace an OIDC provider (authorization code flow with PKCE); prints the redirect URI to register',
    usage: 'strata iam oidc add ID --issuer URL --base-url URL --client-id ID --client-secret-file FILE [--uid-claim CLAIM] [--ca-certs FILE] [--insecure-skip-verify] [--description TEXT]',
    flags: {
      issuer: 'the provider\'s issuer URL (discovery at <issuer>/.well-known/openid-configuration)',
      'base-url': 'this cluster\'s URL as browsers reach it',
      'client-id': 'the client id registered at the provider',
      'client-secret-file': 'file holding the client secret',
      'uid-claim': 'the claim naming the Strata uid on first login (default email)',
      'ca-certs': 'PEM file of CA certificates for the provider\'s TLS',
      description: 'shown on the login page',
    },
    booleans: ['insecure-skip-verify'],
    operands: ['ID'],
    configFlags: false,
    run: oidcAdd,
  },
  {
    name: 'iam oidc list',
    summary: 'List the OIDC providers',
    usage: 'strata iam oidc list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: oidcList,
  },
  {
    name: 'iam oidc remove',
    summary: 'Remove an OIDC provider',
    usage: 'strata iam oidc remove ID',
    flags: {},
    operands: ['ID'],
    configFlags: false,
    run: oidcRemove,
  },
  {
    name: 'iam saml add',
    summary: 'Add or replace a SAML 2.0 provider from its IdP metadata; prints the SP entity id and ACS URL to register',
    usage: 'strata iam saml add ID --idp-metadata FILE.xml --sp-base-url URL [--uid-attribute NAME] [--description TEXT]',
    flags: {
      'idp-metadata': 'the IdP\'s metadata XML file',
      'sp-base-url': 'this cluster\'s URL as browsers reach it',
      'uid-attribute': 'the attribute naming the Strata uid (default: the NameID)',
      description: 'shown on the login page',
    },
    operands: ['ID'],
    configFlags: false,
    run: samlAdd,
  },
  {
    name: 'iam saml list',
    summary: 'List the SAML providers',
    usage: 'strata iam saml list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: samlList,
  },
  {
    name: 'iam saml remove',
    summary: 'Remove a SAML provider',
    usage: 'strata iam saml remove ID',
    flags: {},
    operands: ['ID'],
    configFlags: false,
    run: samlRemove,
  },
  {
    name: 'ui',
    summary: 'Print the web UI\'s URL (the master or gateway you logged in to serves it at /; log in there with your password or a provider)',
    usage: 'strata ui [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: showUi,
  },
  {
    name: 'gateway status',
    summary: 'Show the gateway you logged in through: its address, certificate, upstream API and app endpoints (/service/<app-id>/)',
    usage: 'strata gateway status [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: gatewayStatus,
  },
  {
    name: 'iam user list',
    summary: 'List users and service accounts',
    usage: 'strata iam user list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: userList,
  },
  {
    name: 'iam user add',
    summary: 'Create a user (password from --password-file or STRATA_USER_PASSWORD; at least 8 characters)',
    usage: 'strata iam user add UID [--password-file FILE] [--description TEXT]',
    flags: { 'password-file': 'file holding the new password', description: 'what the user is for' },
    operands: ['UID'],
    configFlags: false,
    run: userAdd,
  },
  {
    name: 'iam user remove',
    summary: 'Delete a user or service account; its tokens stop working at once',
    usage: 'strata iam user remove UID',
    flags: {},
    operands: ['UID'],
    configFlags: false,
    run: userRemove,
  },
  {
    name: 'iam user disable',
    summary: 'Disable a user or service account: it cannot log in and every token it holds stops working',
    usage: 'strata iam user disable UID',
    flags: {},
    operands: ['UID'],
    configFlags: false,
    run: userDisable,
  },
  {
    name: 'iam user enable',
    summary: 'Enable a disabled user or service account again (its old tokens stay revoked)',
    usage: 'strata iam user enable UID',
    flags: {},
    operands: ['UID'],
    configFlags: false,
    run: userEnable,
  },
  {
    name: 'iam serviceaccount add',
    summary: 'Create a service account from a public key, or make a key pair here (--private-key-out)',
    usage: 'strata iam serviceaccount add UID (--public-key FILE | --private-key-out FILE) [--description TEXT]',
    flags: {
      'public-key': 'PEM public key (RSA 2048+ bits or EC P-256)',
      'private-key-out': 'make a 2048-bit RSA key pair: write the private key here (0600), register the public key',
      description: 'what the account is for',
    },
    operands: ['UID'],
    configFlags: false,
    run: serviceAccountAdd,
  },
  {
    name: 'iam group list',
    summary: 'List IAM groups and their members',
    usage: 'strata iam group list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: iamGroupList,
  },
  {
    name: 'iam group add',
    summary: 'Create an IAM group (its permissions apply to every member)',
    usage: 'strata iam group add GID [--description TEXT]',
    flags: { description: 'what the group is for' },
    operands: ['GID'],
    configFlags: false,
    run: iamGroupAdd,
  },
  {
    name: 'iam group remove',
    summary: 'Delete an IAM group (its members leave it)',
    usage: 'strata iam group remove GID',
    flags: {},
    operands: ['GID'],
    configFlags: false,
    run: iamGroupRemove,
  },
  {
    name: 'iam group member add',
    summary: 'Add a user or service account to an IAM group',
    usage: 'strata iam group member add GID UID',
    flags: {},
    operands: ['GID', 'UID'],
    configFlags: false,
    run: memberAdd,
  },
  {
    name: 'iam group member remove',
    summary: 'Remove a member from an IAM group',
    usage: 'strata iam group member remove GID UID',
    flags: {},
    operands: ['GID', 'UID'],
    configFlags: false,
    run: memberRemove,
  },
  {
    name: 'iam acl list',
    summary: 'List ACLs (resource ids) with who holds which actions on each',
    usage: 'strata iam acl list [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: aclList,
  },
  {
    name: 'iam acl grant',
    summary: 'Grant an action (create|read|update|delete|full) on a resource id to a user or group; creates the ACL if needed',
    usage: 'strata iam acl grant RID ACTION (--user UID | --group GID) [--description TEXT]',
    flags: { user: 'grant to this user or service account', group: 'grant to this group', description: 'the ACL\'s description, when it is created' },
    operands: ['RID', 'ACTION'],
    configFlags: false,
    run: aclGrant,
  },
  {
    name: 'iam acl revoke',
    summary: 'Take an action on a resource id back from a user or group',
    usage: 'strata iam acl revoke RID ACTION (--user UID | --group GID)',
    flags: { user: 'revoke from this user or service account', group: 'revoke from this group' },
    operands: ['RID', 'ACTION'],
    configFlags: false,
    run: aclRevoke,
  },
  {
    name: 'ca info',
    summary: 'Show the cluster CA: trust domain, leaf usages, longest leaf lifetime and the root certificate',
    usage: 'strata ca info [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: caInfo,
  },
  {
    name: 'ca cert',
    summary: 'Get a key and certificate for yourself (spiffe://<trust domain>/<user|sa>/<uid>) into a directory',
    usage: 'strata ca cert --out-dir DIR [--key ecdsa|rsa] [--ttl SECONDS]',
    flags: { 'out-dir': 'directory for key.pem (0600), cert.pem, chain.pem and ca.pem', key: 'ecdsa (P-256, default) or rsa (2048)', ttl: 'lifetime in seconds (at most the CA\'s maximum, 72 h by default)' },
    configFlags: false,
    run: caCert,
  },
  {
    name: 'ca sign',
    summary: 'Sign a CSR (PEM) for yourself: the certificate names only your SPIFFE id',
    usage: 'strata ca sign CSR_FILE [--out FILE] [--ttl SECONDS]',
    flags: { out: 'write the certificate chain here instead of printing it', ttl: 'lifetime in seconds' },
    operands: ['CSR_FILE'],
    configFlags: false,
    run: caSign,
  },
  {
    name: 'ca revoke',
    summary: 'Revoke a certificate by serial; it is on the CRL (/ca/api/v2/crl) until it expires',
    usage: 'strata ca revoke SERIAL [--reason keyCompromise|superseded|affiliationChanged|cessationOfOperation|unspecified]',
    flags: { reason: 'why (default unspecified)' },
    operands: ['SERIAL'],
    configFlags: false,
    run: caRevoke,
  },
  {
    name: 'ca list',
    summary: 'List the certificates the CA issued that have not expired (--expired: those too)',
    usage: 'strata ca list [--expired] [--json]',
    flags: {},
    booleans: ['json', 'expired'],
    configFlags: false,
    run: caList,
  },
  {
    name: 'ca root-key export',
    summary: 'Take the CA root key offline: write it (encrypted) to a file and remove it from the cluster; once only',
    usage: 'strata ca root-key export --out FILE',
    flags: { out: 'file for the encrypted root key (0600; must not exist)' },
    configFlags: false,
    run: caRootKeyExport,
  },
  {
    name: 'secret create',
    summary: 'Create a secret (encrypted at rest); the value comes from a file, standard input or STRATA_SECRET_VALUE, never an argument',
    usage: 'strata secret create PATH (--value-file FILE | --value-file - | STRATA_SECRET_VALUE=...) [--description TEXT]',
    flags: { 'value-file': 'file holding the value (- = standard input; one trailing newline is dropped)', description: 'what the secret is for' },
    operands: ['PATH'],
    configFlags: false,
    run: secretCreate,
  },
  {
    name: 'secret update',
    summary: 'Replace a secret\'s value',
    usage: 'strata secret update PATH (--value-file FILE | --value-file - | STRATA_SECRET_VALUE=...) [--description TEXT]',
    flags: { 'value-file': 'file holding the value (- = standard input)', description: 'what the secret is for' },
    operands: ['PATH'],
    configFlags: false,
    run: secretUpdate,
  },
  {
    name: 'secret get',
    summary: 'Print a secret\'s value (needs read on dcos:secrets:default:/PATH)',
    usage: 'strata secret get PATH [--json]',
    flags: {},
    booleans: ['json'],
    operands: ['PATH'],
    configFlags: false,
    run: secretGet,
  },
  {
    name: 'secret delete',
    summary: 'Delete a secret',
    usage: 'strata secret delete PATH',
    flags: {},
    operands: ['PATH'],
    configFlags: false,
    run: secretDelete,
  },
  {
    name: 'secret list',
    summary: 'List the secret paths under PATH (all without one)',
    usage: 'strata secret list [PATH] [--json]',
    flags: {},
    booleans: ['json'],
    optionalOperands: ['PATH'],
    configFlags: false,
    run: secretList,
  },
  {
    name: 'secret rotate-key',
    summary: 'Rotate the key-encryption key: a new version becomes current and every data key is re-wrapped in the background, reads working throughout',
    usage: 'strata secret rotate-key [--from-file] [--wait] [--status] [--json]',
    flags: {},
    booleans: ['from-file', 'wait', 'status', 'json'],
    configFlags: false,
    run: secretRotateKey,
  },
  {
    name: 'mtls status',
    summary: 'mTLS between components: the mode, this master\'s certificate and CRL, the agent and master certificates issued',
    usage: 'strata mtls status [--json]',
    flags: {},
    booleans: ['json'],
    configFlags: false,
    run: mtlsStatus,
  },
  {
    name: 'mtls renew',
    summary: 'Renew the mTLS certificate of the master you are logged in to, now',
    usage: 'strata mtls renew',
    flags: {},
    configFlags: false,
    run: mtlsRenew,
  },
  {
    name: 'mtls cert show',
    summary: 'Show a node\'s mTLS certificate (SPIFFE id, serial, validity, renewal window) from its data directory or a file',
    usage: 'strata mtls cert show [--dir DATA_DIR/tls | --file CERT.pem]',
    flags: { dir: 'the node\'s tls directory (default .strata/tls)', file: 'a certificate chain file (PEM)' },
    configFlags: false,
    run: mtlsCertShow,
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
    summary: 'Revoke the kept token on the server and forget it',
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
  const width = Math.max(...VERBS.map((v) => v.name.length));
  for (const v of VERBS) lines.push(`  ${v.name.padEnd(width)}  ${v.summary}`);
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
