/**
 * `strata iam user|group|acl|serviceaccount ...`: the IAM API (/acs/api/v1)
 * from the command line. Passwords come from a file or the environment, never
 * from the command line (which other users can read in the process list).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { ApiError, apiRequest, loggedIn, table } from './client.ts';

interface UserView { uid: string; description: string; is_service: boolean; disabled?: boolean }
interface GroupView { gid: string; description: string }
interface AclView { rid: string; description: string }
interface Holders { users: { uid: string; actions: { name: string }[] }[]; groups: { gid: string; actions: { name: string }[] }[] }

const enc = encodeURIComponent;

function printJsonOr(args: ParsedArgs, value: unknown, render: () => string): number {
  console.log(args.booleans.has('json') ? JSON.stringify(value, null, 2) : render());
  return 0;
}

async function readSecretFile(flag: string, file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read --${flag} ${file}: ${err.message}`);
  });
  return text.replace(/\r?\n$/, '');
}

// Users --------------------------------------------------------------------

export async function userList(args: ParsedArgs): Promise<number> {
  const { array } = await apiRequest<{ array: UserView[] }>(await loggedIn(), 'GET', '/acs/api/v1/users');
  return printJsonOr(args, array, () =>
    table(['UID', 'KIND', 'DISABLED', 'DESCRIPTION'], array.map((u) => [u.uid, u.is_service ? 'service' : 'user', u.disabled ? 'yes' : 'no', u.description])),
  );
}

export async function userAdd(args: ParsedArgs): Promise<number> {
  const uid = args.words[3]!;
  const file = args.values['password-file'];
  const password = file ? await readSecretFile('password-file', file) : process.env.STRATA_USER_PASSWORD;
  if (!password) throw new UsageError('no password given: use --password-file FILE or STRATA_USER_PASSWORD');
  const description = args.values.description;
  await apiRequest(await loggedIn(), 'PUT', `/acs/api/v1/users/${enc(uid)}`, { password, ...(description === undefined ? {} : { description }) });
  console.log(`Created user ${uid}`);
  return 0;
}

export async function userRemove(args: ParsedArgs): Promise<number> {
  const uid = args.words[3]!;
  await apiRequest(await loggedIn(), 'DELETE', `/acs/api/v1/users/${enc(uid)}`);
  console.log(`Removed ${uid}; its tokens no longer work`);
  return 0;
}

async function setDisabled(args: ParsedArgs, disabled: boolean): Promise<number> {
  const uid = args.words[3]!;
  await apiRequest(await loggedIn(), 'PATCH', `/acs/api/v1/users/${enc(uid)}`, { disabled });
  console.log(disabled ? `Disabled ${uid}; its tokens no longer work` : `Enabled ${uid}; it may log in again`);
  return 0;
}
export const userDisable = (args: ParsedArgs): Promise<number> => setDisabled(args, true);
export const userEnable = (args: ParsedArgs): Promise<number> => setDisabled(args, false);

// Service accounts ------------------------------------------------------------

/**
 * `strata iam serviceaccount add UID --public-key FILE`, or
 * `--private-key-out FILE` to have a 2048-bit RSA key pair made here: the
 * private half goes to FILE (0600) and only the public half to the cluster.
 */
export async function serviceAccountAdd(args: ParsedArgs): Promise<number> {
  const uid = args.words[3]!;
  const publicFile = args.values['public-key'];
  const privateOut = args.values['private-key-out'];
  if ((publicFile === undefined) === (privateOut === undefined)) throw new UsageError('give exactly one of --public-key FILE or --private-key-out FILE');
  let publicKey: string;
  if (publicFile !== undefined) publicKey = `${await readSecretFile('public-key', publicFile)}\n`;
  else {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    publicKey = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(privateOut!, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' }).catch((err: Error) => {
      throw new UsageError(`cannot write --private-key-out ${privateOut}: ${err.message}`);
    });
  }
  const description = args.values.description;
  await apiRequest(await loggedIn(), 'PUT', `/acs/api/v1/users/${enc(uid)}`, { public_key: publicKey, ...(description === undefined ? {} : { description }) });
  console.log(`Created service account ${uid}${privateOut ? `; its private key is in ${privateOut}` : ''}`);
  console.log(`Log in with: strata auth login --service-account ${uid} --private-key ${privateOut ?? 'PRIVATE_KEY_FILE'}`);
  return 0;
}

// Groups -------------------------------------------------------------------

export async function groupList(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  const { array } = await apiRequest<{ array: GroupView[] }>(state, 'GET', '/acs/api/v1/groups');
  const members = await Promise.all(array.map(async (g) => (await apiRequest<{ array: { user: { uid: string } }[] }>(state, 'GET', `/acs/api/v1/groups/${enc(g.gid)}/users`)).array.map((m) => m.user.uid)));
  const rows = array.map((g, i) => ({ ...g, members: members[i]! }));
  return printJsonOr(args, rows, () => table(['GID', 'MEMBERS', 'DESCRIPTION'], rows.map((g) => [g.gid, g.members.join(',') || '-', g.description])));
}

export async function groupAdd(args: ParsedArgs): Promise<number> {
  const gid = args.words[3]!;
  const description = args.values.description;
  await apiRequest(await loggedIn(), 'PUT', `/acs/api/v1/groups/${enc(gid)}`, description === undefined ? {} : { description });
  console.log(`Created group ${gid}`);
  return 0;
}

export async function groupRemove(args: ParsedArgs): Promise<number> {
  const gid = args.words[3]!;
  await apiRequest(await loggedIn(), 'DELETE', `/acs/api/v1/groups/${enc(gid)}`);
  console.log(`Removed group ${gid} (its members left it)`);
  return 0;
}

export async function memberAdd(args: ParsedArgs): Promise<number> {
  const [gid, uid] = [args.words[4]!, args.words[5]!];
  await apiRequest(await loggedIn(), 'PUT', `/acs/api/v1/groups/${enc(gid)}/users/${enc(uid)}`);
  console.log(`${uid} is a member of ${gid}`);
  return 0;
}

export async function memberRemove(args: ParsedArgs): Promise<number> {
  const [gid, uid] = [args.words[4]!, args.words[5]!];
  await apiRequest(await loggedIn(), 'DELETE', `/acs/api/v1/groups/${enc(gid)}/users/${enc(uid)}`);
  console.log(`${uid} is no longer a member of ${gid}`);
  return 0;
}

// ACLs ---------------------------------------------------------------------

function grantee(args: ParsedArgs): string {
  const { user, group } = args.values;
  if ((user === undefined) === (group === undefined)) throw new UsageError('give exactly one of --user UID or --group GID');
  return user !== undefined ? `users/${enc(user)}` : `groups/${enc(group!)}`;
}

const ACTIONS = ['create', 'read', 'update', 'delete', 'full'];

function action(args: ParsedArgs): string {
  const a = args.words[4]!;
  if (!ACTIONS.includes(a)) throw new UsageError(`ACTION must be one of ${ACTIONS.join(', ')}, not "${a}"`);
  return a;
}

/** Grant: create the ACL when it does not exist yet (a 409 means it does, as DC/OS scripts do), then grant. */
export async function aclGrant(args: ParsedArgs): Promise<number> {
  const rid = args.words[3]!;
  const who = grantee(args);
  const what = action(args);
  const state = await loggedIn();
  try {
    await apiRequest(state, 'PUT', `/acs/api/v1/acls/${enc(rid)}`, { description: args.values.description ?? `created by strata iam acl grant` });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
  }
  await apiRequest(state, 'PUT', `/acs/api/v1/acls/${enc(rid)}/${who}/${what}`);
  console.log(`Granted ${what} on ${rid} to ${decodeURIComponent(who)}`);
  return 0;
}

export async function aclRevoke(args: ParsedArgs): Promise<number> {
  const rid = args.words[3]!;
  const who = grantee(args);
  const what = action(args);
  await apiRequest(await loggedIn(), 'DELETE', `/acs/api/v1/acls/${enc(rid)}/${who}/${what}`);
  console.log(`Revoked ${what} on ${rid} from ${decodeURIComponent(who)}`);
  return 0;
}

export async function aclList(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  const { array } = await apiRequest<{ array: AclView[] }>(state, 'GET', '/acs/api/v1/acls');
  const holders = await Promise.all(array.map((a) => apiRequest<Holders>(state, 'GET', `/acs/api/v1/acls/${enc(a.rid)}/permissions`)));
  const rows = array.map((a, i) => ({ ...a, ...holders[i]! }));
  const text = (h: Holders): string =>
    [...h.users.map((u) => `user:${u.uid}=${u.actions.map((x) => x.name).join('+')}`), ...h.groups.map((g) => `group:${g.gid}=${g.actions.map((x) => x.name).join('+')}`)].join(' ') || '-';
  return printJsonOr(args, rows, () => table(['RID', 'GRANTS', 'DESCRIPTION'], rows.map((r) => [r.rid, text(r), r.description])));
}
