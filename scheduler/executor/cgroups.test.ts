/**
 * The cgroup v1 manager against a directory laid out like /sys/fs/cgroup
 * (file writes checked), then, where this host has writable cgroup v1
 * memory and cpu hierarchies, against the kernel with a real task.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cgroupValues, CgroupV1Manager, detectCgroups } from './cgroups.ts';
import { Executor } from './executor.ts';
import { sandboxName } from './spec.ts';
import { reap, taskSpec, tempDir } from './test-helpers.ts';

test('limit values follow the Mesos isolators (shares 1024/cpu, CFS 100 ms period, 32 MB memory floor)', (t) => {
  t.deepEqual(cgroupValues({ cpus: 1.5, memMb: 256 }, true), { memoryBytes: 256 * 2 ** 20, cpuShares: 1536, cfsQuotaUs: 150_000 });
  t.deepEqual(cgroupValues({ cpus: 0.001, memMb: 1 }, true), { memoryBytes: 32 * 2 ** 20, cpuShares: 2, cfsQuotaUs: 1_000 });
  t.deepEqual(cgroupValues({ cpus: 2, memMb: 64 }, false), { memoryBytes: 64 * 2 ** 20, cpuShares: 2048 });
});

test('v1 manager on a directory tree: groups nested under our own group, limits and pid written, missing hierarchy reported', async (t) => {
  const root = await tempDir(t);
  for (const c of ['memory', 'cpu']) {
    await mkdir(join(root, c), { recursive: true });
    await writeFile(join(root, c, 'cgroup.procs'), '');
  }
  const self = join(root, 'self-cgroup');
  await writeFile(self, '4:memory:/agents/a1\n2:cpu,cpuacct:/\n0::/\n');
  const manager = await CgroupV1Manager.detect({ mountRoot: root, selfCgroupFile: self });
  t.deepEqual(manager.parents, { memory: join(root, 'memory/agents/a1/strata'), cpu: join(root, 'cpu/strata') });
  const prepared = await manager.prepare('t1', { cpus: 0.5, memMb: 100 });
  t.true(prepared.applied, prepared.detail);
  t.is(readFileSync(join(root, 'memory/agents/a1/strata/t1/memory.limit_in_bytes'), 'utf8'), String(100 * 2 ** 20));
  t.is(readFileSync(join(root, 'cpu/strata/t1/cpu.shares'), 'utf8'), '512');
  t.is(readFileSync(join(root, 'cpu/strata/t1/cpu.cfs_quota_us'), 'utf8'), '50000');
  t.is(readFileSync(join(root, 'cpu/strata/t1/cpu.cfs_period_us'), 'utf8'), '100000');
  t.true(manager.attach('t1', 4242).applied);
  t.is(readFileSync(join(root, 'memory/agents/a1/strata/t1/cgroup.procs'), 'utf8'), '4242');
  t.deepEqual(await manager.pids('t1'), [4242]);
  await writeFile(join(root, 'memory/agents/a1/strata/t1/memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
  t.true(await manager.memoryLimitHit('t1'));

  const partial = await mkdir(join(root, 'only-cpu', 'cpu'), { recursive: true }).then(async () => {
    await writeFile(join(root, 'only-cpu', 'cpu', 'cgroup.procs'), '');
    return CgroupV1Manager.detect({ mountRoot: join(root, 'only-cpu'), nestUnderSelf: false });
  });
  t.deepEqual(Object.keys(partial.parents), ['cpu']);
  const result = await partial.prepare('t2', { cpus: 1, memMb: 64 });
  t.false(result.applied);
  t.regex(result.detail, /cpu.shares 1024/);
  t.regex(result.detail, /cgroups unavailable \(memory: no cgroup v1 hierarchy/);

  const none = await detectCgroups({ mountRoot: join(root, 'nothing') });
  const nothing = await none.prepare('t3', { cpus: 1, memMb: 64 });
  t.false(nothing.applied);
  t.regex(nothing.detail, /running without limits/);
});

// The kernel: only where this host has writable v1 memory and cpu hierarchies (otherwise it says so and passes).
test('kernel cgroups: the task runs in strata/<task> with its limits; OOM is FAILED with the memory reason', async (t) => {
  const kernel = await CgroupV1Manager.detect({ groupName: `strata-test-${process.pid}` });
  t.teardown(async () => {
    for (const dir of Object.values(kernel.parents)) {
      // A removed child group can keep its parent busy for a moment.
      for (let i = 0; i < 50 && existsSync(dir); i++) await rmdir(dir).catch(() => new Promise((r) => setTimeout(r, 40)));
      if (existsSync(dir)) throw new Error(`could not remove ${dir}`);
    }
  });
  if (kernel.parents.memory === undefined || kernel.parents.cpu === undefined) {
    t.log(`no writable cgroup v1 memory and cpu here (${kernel.unavailable}): not checked against the kernel`);
    t.truthy(kernel.unavailable, 'detection says why cgroups cannot be used');
    return;
  }
  const ex = new Executor({ workDir: join(await tempDir(t), 'work'), cgroups: kernel });
  reap(t, ex);
  const handle = ex.launch(taskSpec({ cmd: 'echo ready; sleep 300', resources: { cpus: 0.25, memMb: 48, diskMb: 0, gpus: 0 } }));
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (handle.state !== 'STAGING' && handle.state !== 'STARTING') resolve();
    };
    handle.on('status', check);
    check();
  });
  t.is(handle.state, 'RUNNING', handle.status.message);
  const name = sandboxName(handle.taskId);
  const memDir = join(kernel.parents.memory!, name);
  const cpuDir = join(kernel.parents.cpu!, name);
  const procCgroups = await readFile(`/proc/${handle.pid}/cgroup`, 'utf8');
  t.regex(procCgroups, new RegExp(`:memory:.*/strata-test-${process.pid}/${name.replace(/\./g, '\\.')}\\n`));
  t.regex(procCgroups, new RegExp(`:cpu(,cpuacct)?:.*/strata-test-${process.pid}/${name.replace(/\./g, '\\.')}\\n`));
  t.is(readFileSync(join(memDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(48 * 2 ** 20));
  t.is(readFileSync(join(cpuDir, 'cpu.shares'), 'utf8').trim(), '256');
  t.is(readFileSync(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8').trim(), '25000');
  t.is((await handle.kill(5)).state, 'KILLED');
  t.false(existsSync(memDir), 'the task group is removed when it ends');
  t.false(existsSync(cpuDir));

  // The shell holds 200 MB in a variable: over the 32 MB limit, so the kernel kills it.
  const oom = ex.launch(taskSpec({ cmd: "v=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", resources: { cpus: 1, memMb: 32, diskMb: 0, gpus: 0 } }));
  const end = await oom.terminated;
  t.like(end, { state: 'FAILED', reason: 'REASON_CONTAINER_LIMITATION_MEMORY' }, end.message);
});
