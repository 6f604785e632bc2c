/**
 * Marathon group verbs over `/v2/groups`: `strata group list|show|add|update|remove`.
 * Verbs that start a deployment take `--wait` (as the app verbs, `apps.ts`).
 */
import { readFile } from 'node:fs/promises';
import { UsageError, type ParsedArgs } from './args.ts';
import { waitFor, writeQuery } from './apps.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface ListedGroup {
  id: string;
  version: string;
  dependencies: string[];
  apps?: { id: string; instances: number }[];
  groups?: ListedGroup[];
}

type DeploymentRef = { deploymentId: string; version: string };

const operands = (args: ParsedArgs): string[] => args.words.slice(2);

/** `prod/web` or `/prod/web` → `/v2/groups/prod/web` (each element URL-encoded). */
export function groupPath(id: string): string {
  const elements = id.split('/').filter((e) => e !== '');
  if (elements.length === 0) throw new UsageError(`"${id}" is not a group id (the root group has no id to name)`);
  return `/v2/groups/${elements.map(encodeURIComponent).join('/')}`;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message}`);
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${file} must hold a JSON object (a Marathon group)`);
  return value as Record<string, unknown>;
}

/** Every group of the tree, depth first, with its apps counted. */
export function groupRows(root: ListedGroup): string[][] {
  const rows: string[][] = [];
  const walk = (g: ListedGroup): void => {
    rows.push([g.id, String(g.apps?.length ?? 0), String(g.groups?.length ?? 0), g.dependencies.join(',') || '-', g.version]);
    for (const sub of g.groups ?? []) walk(sub);
  };
  walk(root);
  return rows;
}

export async function groupList(args: ParsedArgs): Promise<number> {
  const root = await apiRequest<ListedGroup>(await loggedIn(), 'GET', '/v2/groups');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(root, null, 2));
    return 0;
  }
  console.log(table(['ID', 'APPS', 'GROUPS', 'DEPENDENCIES', 'VERSION'], groupRows(root)));
  return 0;
}

export async function groupShow(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const group = await apiRequest<ListedGroup>(await loggedIn(), 'GET', `${groupPath(id!)}?embed=group.apps&embed=group.groups&embed=group.apps.counts&embed=group.apps.deployments`);
  console.log(JSON.stringify(group, null, 2));
  return 0;
}

export async function groupAdd(args: ParsedArgs): Promise<number> {
  const [file] = operands(args);
  const body = await readJson(file!);
  const { deploymentId, version } = await apiRequest<DeploymentRef>(await loggedIn(), 'POST', `/v2/groups${writeQuery(args)}`, body);
  console.log(`Created group ${String(body['id'])} (version ${version}); deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}

export async function groupUpdate(args: ParsedArgs): Promise<number> {
  const [id, file] = operands(args);
  const scaleBy = args.values['scale-by'];
  const rollback = args.values['version'];
  if ([file, scaleBy, rollback].filter((x) => x !== undefined).length !== 1) throw new UsageError('give exactly one of FILE.json, --scale-by FACTOR and --version VERSION');
  let body: Record<string, unknown>;
  if (scaleBy !== undefined) {
    const n = Number(scaleBy);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--scale-by must be a positive number, not "${scaleBy}"`);
    body = { scaleBy: n };
  } else if (rollback !== undefined) body = { version: rollback };
  else body = await readJson(file!);
  const { deploymentId, version } = await apiRequest<DeploymentRef>(await loggedIn(), 'PUT', `${groupPath(id!)}${writeQuery(args)}`, body);
  console.log(`Updating group ${id} (version ${version}); deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}

export async function groupRemove(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const { deploymentId } = await apiRequest<DeploymentRef>(await loggedIn(), 'DELETE', `${groupPath(id!)}${writeQuery(args)}`);
  console.log(`Removing group ${id}; deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}
