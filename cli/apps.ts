/**
 * Marathon app, task and deployment verbs over `/v2`: `strata app
 * add|update|scale|restart|list|show|remove`, `strata task list|kill`,
 * `strata deployment list|rollback`. Each verb's positional arguments follow
 * its two verb words (`strata app show /web`). Verbs that start a deployment
 * take `--wait` (poll `/v2/deployments` until it is gone, printing each
 * step it reaches; `--timeout SECONDS`, default 600).
 */
import { readFile } from 'node:fs/promises';
import type { Deployment } from '../control-plane/model/schemas.ts';
import { UsageError, type ParsedArgs } from './args.ts';
import type { CliState } from './auth.ts';
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

/**
 * The query of a write that starts a deployment: `?force=true`, and Strata's
 * deadline (`--deadline SECONDS` → `deadlineSeconds`, `--rollback-on-failure`
 * → `rollbackOnFailure=true`).
 */
export function writeQuery(args: ParsedArgs): string {
  const q = new URLSearchParams();
  if (args.booleans.has('force')) q.set('force', 'true');
  const deadline = args.values['deadline'];
  if (deadline !== undefined) {
    if (!/^[1-9]\d*$/.test(deadline)) throw new UsageError(`--deadline must be a whole number of seconds, not "${deadline}"`);
    q.set('deadlineSeconds', deadline);
  }
  if (args.booleans.has('rollback-on-failure')) {
    if (deadline === undefined) throw new UsageError('--rollback-on-failure needs --deadline SECONDS');
    q.set('rollbackOnFailure', 'true');
  }
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
}

/** The lines `--wait` and `deployment list` print for a deployment's wait reasons. */
export function describeWaits(d: Deployment): string[] {
  const lines = (d.waitReasons ?? []).map((r) => `  waiting: ${r.app} ${r.reason}: ${r.message}`);
  if (d.state === 'failed') lines.unshift(`  FAILED: ${d.failureMessage ?? 'failed'}${d.rollbackOnFailure ? ' (rolling back)' : ''}`);
  return lines;
}

/** Options a test or caller may tune: how often `--wait` polls. */
export const waitOptions = { pollMs: Number(process.env['STRATA_CLI_POLL_MS'] ?? 500) };

function timeoutSeconds(args: ParsedArgs): number {
  const raw = args.values['timeout'];
  if (raw === undefined) return 600;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${raw}"`);
  return n;
}

function describeStep(d: Deployment): string {
  const step = d.steps[Math.min(d.currentStep, d.steps.length - 1)];
  const actions = step ? step.actions.map((a) => `${a.action} ${a.app}`).join(' + ') : '';
  return `${d.state}, step ${d.currentStep}/${d.totalSteps}${actions ? ` (${actions})` : ''}`;
}

/**
 * How a deployment ended, from the event stream (`deployment_failed`,
 * `deployment_success`): polling alone can miss a failure followed at once
 * by its automatic rollback. Best effort: a stream that cannot be opened
 * leaves the answer to polling.
 */
function watchOutcome(state: CliState, deploymentId: string): { outcome: () => 'failed' | 'succeeded' | undefined; close: () => void } {
  let outcome: 'failed' | 'succeeded' | undefined;
  const abort = new AbortController();
  void (async () => {
    const res = await fetch(`${state.url}/v2/events?event_type=deployment_failed&event_type=deployment_success`, {
      headers: { authorization: `token=${state.token}`, accept: 'text/event-stream' },
      signal: abort.signal,
    });
    if (!res.ok || !res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (data === undefined) continue;
        const event = JSON.parse(data) as { eventType?: string; id?: string };
        if (event.id !== deploymentId) continue;
        if (event.eventType === 'deployment_failed') outcome = 'failed';
        else if (event.eventType === 'deployment_success' && outcome === undefined) outcome = 'succeeded';
      }
    }
  })().catch(() => undefined);
  return { outcome: () => outcome, close: () => abort.abort() };
}

/**
 * With `--wait`: poll `/v2/deployments` until `deploymentId` is gone,
 * printing a line whenever its state, step or wait reasons change. Returns
 * the exit code: 1 on timeout, and when the deployment failed (its deadline
 * passed; it may be rolling back).
 */
export async function waitFor(args: ParsedArgs, deploymentId: string | undefined): Promise<number> {
  if (!args.booleans.has('wait') || deploymentId === undefined) return 0;
  const state = await loggedIn();
  const events = watchOutcome(state, deploymentId);
  try {
    const deadline = Date.now() + timeoutSeconds(args) * 1000;
    let last = '';
    let failed = false;
    for (;;) {
      const deployments = await apiRequest<Deployment[]>(state, 'GET', '/v2/deployments');
      const d = deployments.find((x) => x.id === deploymentId);
      if (!d) {
        // The event of its end may still be on its way: give it a moment.
        for (let i = 0; i < 10 && events.outcome() === undefined && !failed; i++) await new Promise((r) => setTimeout(r, 50));
        const rollback = deployments.find((x) => x.rollbackOf === deploymentId);
        if (failed || rollback || events.outcome() === 'failed') {
          console.error(`strata: deployment ${deploymentId} failed (its deadline passed)${rollback ? `; rolling back in deployment ${rollback.id}` : '; it was rolled back or removed'}`);
          return 1;
        }
        console.log(`Deployment ${deploymentId} finished`);
        return 0;
      }
      const line = [describeStep(d), ...describeWaits(d)].join('\n');
      if (line !== last) {
        console.log(`Deployment ${deploymentId}: ${line}`);
        last = line;
      }
      if (d.state === 'failed') {
        failed = true;
        if (!d.rollbackOnFailure) {
          console.error(`strata: deployment ${deploymentId} failed: ${d.failureMessage ?? ''} (roll back with \`strata deployment rollback ${deploymentId}\`)`);
          return 1;
        }
      }
      if (Date.now() >= deadline) {
        console.error(`strata: deployment ${deploymentId} still ${describeStep(d)} after ${timeoutSeconds(args)}s (--timeout); it goes on in the cluster: \`strata deployment list\``);
        return 1;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitOptions.pollMs, Math.max(0, deadline - Date.now()))));
    }
  } finally {
    events.close();
  }
}

async function readDefinition(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message}`);
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${(err as Error).message}`);
  }
}

type DeploymentRef = { deploymentId: string; version: string };

export async function appUpdate(args: ParsedArgs): Promise<number> {
  const [id, file] = operands(args);
  const definition = await readDefinition(file!);
  const { deploymentId, version } = await apiRequest<DeploymentRef>(await loggedIn(), 'PUT', `${appPath(id!)}${writeQuery(args)}`, definition);
  console.log(`Updating app ${id} to version ${version}; deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}

export async function appScale(args: ParsedArgs): Promise<number> {
  const [id, count] = operands(args);
  if (!/^\d+$/.test(count!)) throw new UsageError(`N must be a whole number of instances, not "${count}"`);
  const { deploymentId, version } = await apiRequest<DeploymentRef>(await loggedIn(), 'PUT', `${appPath(id!)}${writeQuery(args)}`, { instances: Number(count) });
  console.log(`Scaling app ${id} to ${count} instances (version ${version}); deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}

export async function appRestart(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const { deploymentId, version } = await apiRequest<DeploymentRef>(await loggedIn(), 'POST', `${appPath(id!)}/restart${writeQuery(args)}`);
  console.log(`Restarting app ${id} (version ${version}); deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
}

interface ListedTask {
  id: string;
  appId: string;
  host: string;
  state: string;
  version: string;
  ports: number[];
  stagedAt: string;
}

export async function taskList(args: ParsedArgs): Promise<number> {
  const app = args.values['app'];
  const { tasks } = await apiRequest<{ tasks: ListedTask[] }>(await loggedIn(), 'GET', app === undefined ? '/v2/tasks' : `${appPath(app)}/tasks`);
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(tasks, null, 2));
    return 0;
  }
  const rows = tasks.map((x) => [x.id, x.appId, x.host, x.state, x.ports.join(',') || '-', x.version]);
  console.log(table(['ID', 'APP', 'HOST', 'STATE', 'PORTS', 'VERSION'], rows));
  return 0;
}

/** `?scale=true&wipe=true` from the verb's booleans (and `--host`). */
function killQuery(args: ParsedArgs): string {
  const q = new URLSearchParams();
  if (args.booleans.has('scale')) q.set('scale', 'true');
  if (args.booleans.has('wipe')) q.set('wipe', 'true');
  const host = args.values['host'];
  if (host !== undefined) q.set('host', host);
  const text = q.toString();
  return text ? `?${text}` : '';
}

export async function taskKill(args: ParsedArgs): Promise<number> {
  const [taskId] = operands(args);
  const result = await apiRequest<{ tasks?: ListedTask[]; deploymentId?: string }>(await loggedIn(), 'POST', `/v2/tasks/delete${killQuery(args)}`, { ids: [taskId] });
  if (result.deploymentId !== undefined) console.log(`Killing task ${taskId} and scaling its app down; deployment ${result.deploymentId}`);
  else console.log(`Killing task ${taskId} (${result.tasks?.[0]?.state ?? 'TASK_KILLING'}); its app replaces it`);
  return 0;
}

/** `strata app kill ID [--host HOST] [--scale] [--wipe]`: Marathon's DELETE /v2/apps/ID/tasks. */
export async function appKill(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const result = await apiRequest<{ tasks?: ListedTask[]; deploymentId?: string }>(await loggedIn(), 'DELETE', `${appPath(id!)}/tasks${killQuery(args)}`);
  if (result.deploymentId !== undefined) {
    console.log(`Killing the tasks of ${id} and scaling it down; deployment ${result.deploymentId}`);
    return waitFor(args, result.deploymentId);
  }
  const killed = result.tasks ?? [];
  console.log(killed.length === 0 ? `No live task of ${id} to kill` : `Killing ${killed.length} task(s) of ${id}; the app replaces them:\n${killed.map((x) => `  ${x.id}`).join('\n')}`);
  return 0;
}

export async function deploymentRollback(args: ParsedArgs): Promise<number> {
  const [id] = operands(args);
  const path = `/v2/deployments/${encodeURIComponent(id!)}${force(args)}`;
  const result = await apiRequest<DeploymentRef | undefined>(await loggedIn(), 'DELETE', path);
  if (result?.deploymentId) console.log(`Rolling deployment ${id} back; deployment ${result.deploymentId}`);
  else console.log(`Removed deployment ${id} (forced: its apps stay as they are now)`);
  return waitFor(args, result?.deploymentId);
}

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
  const app = await apiRequest<ListedApp>(await loggedIn(), 'POST', `/v2/apps${writeQuery(args)}`, definition);
  console.log(`Created app ${app.id} (version ${app.version}); deployment ${app.deployments[0]?.id ?? 'none (nothing to do)'}`);
  return waitFor(args, app.deployments[0]?.id);
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
  const { deploymentId } = await apiRequest<{ deploymentId: string; version: string }>(await loggedIn(), 'DELETE', `${appPath(id!)}${writeQuery(args)}`);
  console.log(`Removing app ${id}; deployment ${deploymentId}`);
  return waitFor(args, deploymentId);
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
    [...new Set((d.waitReasons ?? []).map((r) => `${r.app} ${r.reason}`))].join(', ') || '-',
  ]);
  console.log(table(['ID', 'APPS', 'STEPS', 'STEP', 'STATE', 'CREATED', 'WAITING ON'], rows));
  // Each deployment's reasons in full, under the table.
  for (const d of deployments) {
    const waits = describeWaits(d);
    if (waits.length > 0) console.log(`\n${d.id}:\n${waits.join('\n')}`);
  }
  return 0;
}
