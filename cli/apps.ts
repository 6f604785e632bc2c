/**
 * Marathon app and deployment verbs over `/v2`: `strata app add|list|show|remove`,
 * `strata deployment list`. Each verb's positional arguments follow its two
 * verb words (`strata app show /web`).
 */
import { readFile } from 'node:fs/promises';
import type { Deployment } from '../control-plane/model/schemas.ts';
import { UsageError, type ParsedArgs } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface ListedApp {
  id: string;
  instances: number;
  cpus: number;
  mem: number;
  version: string;
  tasksRunning: number;
  deployments: { id: string }[];
}

/** The positional arguments after the verb's words. */
function operands(args: ParsedArgs): string[] {
  return args.words.slice(2);
}

/** `web` or `/web` → `/v2/apps/web` (each path element URL-encoded). */
export function appPath(id: string): string {
  const elements = id.split('/').filter((e) => e !== '');
  if (elements.length === 0) throw new UsageError(`"${id}" is not an app id`);
  return `/v2/apps/${elements.map(encodeURIComponent).join('/')}`;
}

const force = (args: ParsedArgs): string => (args.booleans.has('force') ? '?force=true' : '');

export async function appAdd(args: ParsedArgs): Promise<number> {
  const [file] = operands(args);
  const text = await readFile(file!, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message}`);
  });
  let definition: unknown;
  try {
    definition = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
  const app = await apiRequest<ListedApp>(await loggedIn(), 'POST', `/v2/apps${force(args)}`, definition);
  console.log(`Created app ${app.id} (version ${app.version}); deployment ${app.deployments[0]?.id ?? 'none (nothing to do)'}`);
  return 0;
}

export async function appList(args: ParsedArgs): Promise<number> {
  const { apps } = await apiRequest<{ apps: ListedApp[] }>(await loggedIn(), 'GET', '/v2/apps');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(apps, null, 2));
    return 0;
  }
  const rows = apps.map((a) => [a.id, `${a.tasksRunning}/${a.instances}`, String(a.cpus), String(a.mem), a.version, a.deployments.map((d) => d.id).join(',') || '-']);
  console.log(table(['ID', 'RUNNING', 'CPUS', 'MEM', 'VERSION', 'DEPLOYMENTS'], rows));
  return 0;
}

export async function appShow(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const { app } = await apiRequest<{ app: unknown }>(await loggedIn(), 'GET', appPath(id!));
  console.log(JSON.stringify(app, null, 2));
  return 0;
}

export async function appRemove(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const { deploymentId } = await apiRequest<{ deploymentId: string; version: string }>(await loggedIn(), 'DELETE', `${appPath(id!)}${force(args)}`);
  console.log(`Removing app ${id}; deployment ${deploymentId}`);
  return 0;
}

export async function deploymentList(args: ParsedArgs): Promise<number> {
  const deployments = await apiRequest<Deployment[]>(await loggedIn(), 'GET', '/v2/deployments');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(deployments, null, 2));
    return 0;
  }
  const rows = deployments.map((d) => [
    d.id,
    d.affectedApps.join(','),
    d.steps.map((s) => s.actions.map((a) => `${a.action.replace('Application', '')} ${a.app}`).join(' + ')).join(' > '),
    `${d.currentStep}/${d.totalSteps}`,
    d.state,
    d.createdAt,
  ]);
  console.log(table(['ID', 'APPS', 'STEPS', 'STEP', 'STATE', 'CREATED'], rows));
  return 0;
}
