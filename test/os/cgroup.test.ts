import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { Cgroup, cgroupV2Layout, detectCgroupLayout, parseKeyValues } from '../../src/os/cgroup.js';
import { readMounts } from '../../src/os/mount.js';
import { isHylicsError } from '../../src/core/errors/index.js';
import { MiB } from '../../src/core/units.js';

const skip = process.getuid?.() !== 0 ? 'needs root (cgroups)' : false;

function sleeper() {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  return c;
}

test('parseKeyValues', () => {
  assert.deepEqual(parseKeyValues('nr_periods 4\nnr_throttled 2\n'), { nr_periods: 4, nr_throttled: 2 });
});

test('cgroup of the detected layout: create, limits (fractional cpus), add, stats, kill all, remove', { skip }, async (t) => {
  const cg = await Cgroup.open(`hylics-test-${process.pid}/c`);
  const parent = await Cgroup.open(`hylics-test-${process.pid}`);
  t.after(async () => { await cg.remove().catch(() => undefined); await parent.remove().catch(() => undefined); });
  await cg.create();
  assert.ok(await cg.exists());
  await cg.setCpus(0.25);
  await cg.setMemory(64 * MiB);
  assert.deepEqual(await cg.limits(), { cpus: 0.25, quotaUs: 25000, periodUs: 100000, memoryBytes: 64 * MiB });
  await cg.setCpus(undefined);
  assert.equal((await cg.limits()).cpus, undefined);
  const a = sleeper();
  const b = sleeper();
  await cg.addProcess(a.pid!);
  await cg.addProcess(b.pid!);
  assert.deepEqual((await cg.pids()).sort(), [a.pid, b.pid].sort());
  const st = await cg.stats();
  assert.equal(st.pids, 2);
  assert.ok(st.memoryBytes >= 0 && st.cpuUsageNs >= 0 && st.nrThrottled >= 0);
  const exits = Promise.all([a, b].map((c) => new Promise((r) => c.on('exit', (_code, sig) => r(sig)))));
  await cg.killAll();
  assert.deepEqual(await exits, ['SIGKILL', 'SIGKILL']);
  await cg.remove();
  assert.equal(await cg.exists(), false);
  await cg.remove(); // idempotent
});

test('cgroup v2 code paths on a real cgroup2 hierarchy (limits need its cpu/memory controllers)', { skip }, async (t) => {
  const v2 = (await readMounts()).find((m) => m.fsType === 'cgroup2');
  if (!v2) { t.skip('no cgroup2 mount on this host'); return; }
  const layout = await cgroupV2Layout(v2.mountPoint);
  const cg = await Cgroup.open(`hylics-test-v2-${process.pid}/c`, layout);
  const parent = await Cgroup.open(`hylics-test-v2-${process.pid}`, layout);
  t.after(async () => { await cg.remove().catch(() => undefined); await parent.remove().catch(() => undefined); });
  await cg.create();
  await access(cg.dir()!);
  const hasCpu = layout.version === 2 && layout.controllers.includes('cpu');
  if (hasCpu) {
    await cg.setCpus(1.5);
    assert.equal((await cg.limits()).cpus, 1.5);
  } else {
    await assert.rejects(cg.setCpus(1), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_CGROUP_UNSUPPORTED');
  }
  const a = sleeper();
  await cg.addProcess(a.pid!);
  assert.deepEqual(await cg.pids(), [a.pid]);
  assert.ok((await cg.stats()).cpuUsageNs >= 0);
  const exited = new Promise((r) => a.on('exit', (_c, s) => r(s)));
  await cg.killAll(); // cgroup.kill where the kernel has it
  assert.equal(await exited, 'SIGKILL');
  await cg.remove();
  assert.equal(await cg.exists(), false);
});

test('detectCgroupLayout finds cpu and memory', { skip }, async () => {
  const l = await detectCgroupLayout();
  if (l.version === 1) assert.ok(l.hierarchies.cpu && l.hierarchies.memory);
  else assert.ok(l.controllers.includes('cpu') && l.controllers.includes('memory'));
});
