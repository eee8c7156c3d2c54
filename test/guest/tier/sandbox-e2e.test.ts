// The guest side of #9 end to end on a real sandbox guest, through the real daemon and CLI: the in-guest
// `hylics` is on PATH, `hylics tier put/path/ls` work in the guest, `hylics task run` reports reach the host
// profiler (guest show --json tasks, /metrics), and the host's tier.shrink over the real channel (driven by a
// static controller whose size is below the usage) moves files to the guest's disk tier with every sha256 unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../../helpers/cli.js';
import type { GuestView } from '../../../src/core/api.js';

const skip = process.getuid?.() !== 0 ? 'needs root (daemon: tmpfs mounts, namespaces, cgroups)' : false;
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function getText(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('sandbox guest: hylics on PATH, tier put/path/ls, task run reports reach the profiler, tier.shrink over the channel keeps every sha256', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-tier-e2e-');
  const name = `tier${process.pid % 100000}`;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const { cli, inGuest } = stateDirCli(dir);
  const api = (path: string): Promise<string> => getText(join(dir, 'hylicsd.sock'), path);
  t.after(async () => {
    if (daemon) { await cli('guest', 'rm', name); await stopDaemon(daemon); daemon = undefined; }
    await rm(dir, { recursive: true, force: true });
  });
  // no idle eviction (--tier-idle 0; the store is there all the same): the shrink below must find the segments in the
  // share, and on a loaded machine the steps before it can outlast the 60 s default idle time
  const g = await cli('guest', 'create', name, '--share-size', '8M', '--memory', '256M', '--tier-idle', '0', '--json');
  assert.equal(g.code, 0, g.stderr + g.stdout);

  // the agent writes the launcher at start; it is on the PATH of what the agent runs
  assert.equal(await inGuest(name, 'command -v hylics'), '/run/hylics/bin/hylics\n');

  // a catalogue put through the store: six 1 MiB segments fill most of the 8 MiB share
  const sums = async (): Promise<Record<string, string>> => {
    const out = await inGuest(name, 'for i in 1 2 3 4 5 6; do sha256sum "$(hylics tier path --no-promote seg$i)"; done');
    return Object.fromEntries(out.trim().split('\n').map((l) => { const [h, p] = l.split(/\s+/); return [p!.split('/').pop()!, h!]; }));
  };
  await inGuest(name, 'for i in 1 2 3 4 5 6; do head -c 1048576 /dev/urandom | hylics tier put seg$i - || exit 1; done');
  const before = await sums();
  assert.equal(Object.keys(before).length, 6);
  const ls0 = JSON.parse(await inGuest(name, 'hylics tier ls --json')) as Array<{ name: string; tier: string }>;
  assert.deepEqual(ls0.map((e) => e.tier), Array(6).fill('memory'));
  // escape attempts from inside the guest: stable codes
  const bad = await cli('guest', 'exec', name, '--', 'hylics', 'tier', 'path', '../../etc/passwd');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error HYLICS_ERR_TIER_ESCAPE/);

  // tasks from any program: exit codes pass through, reports reach the host profiler
  await inGuest(name, 'for i in 1 2 3; do hylics task run encode --tier-hit -- sh -c \'sha256sum "$(hylics tier path seg1)" >/dev/null\' || exit 1; done');
  const failed = await cli('guest', 'exec', name, '--', 'hylics', 'task', 'run', 'encode', '--tier-miss', '--', 'sh', '-c', 'echo out; exit 7');
  assert.deepEqual([failed.code, failed.stdout], [7, 'out\n']);
  let task: GuestView['tasks'][number] | undefined;
  for (const until = Date.now() + 30_000; Date.now() < until;) {
    const v = JSON.parse((await cli('guest', 'show', name, '--json')).stdout) as GuestView;
    task = v.tasks.find((x) => x.name === 'encode');
    if (task && task.count >= 4) break;
    await sleep(500);
  }
  assert.ok(task && task.count === 4 && task.failed === 1, JSON.stringify(task));
  const metrics = await api('/metrics');
  assert.match(metrics, new RegExp(`hylics_tasks_total\\{[^}]*guest="${name}"[^}]*task="encode"[^}]*\\} 3`));

  // the host shrinks the share below the usage: a static controller at 3 MiB; the orchestrator asks the guest's
  // tier manager (tier.shrink over the channel) to move files to the disk tier first
  const set = await cli('control', 'set', name, '--scheme', 'static', '--slo', '1s', '--min', '3M', '--max', '3M', '--interval-min', '1s', '--interval-max', '1s');
  assert.equal(set.code, 0, set.stderr + set.stdout);
  let view: GuestView | undefined;
  for (const until = Date.now() + 120_000; Date.now() < until;) {
    view = JSON.parse((await cli('guest', 'show', name, '--json')).stdout) as GuestView;
    if (view.share.sizeBytes <= 3 * MiB) break;
    await sleep(1000);
  }
  assert.ok(
    view && view.share.sizeBytes <= 3 * MiB && view.share.usedBytes <= view.share.sizeBytes,
    JSON.stringify(view?.share),
  );
  const log = JSON.parse(await api(`/v1/guests/${name}/control/log?limit=100`)) as { decisions: Array<{ reason: string }> };
  assert.ok(log.decisions.some((d) => /tier\.shrink moved [1-9]/.test(d.reason)), JSON.stringify(log.decisions.map((d) => d.reason)));
  const ls1 = JSON.parse(await inGuest(name, 'hylics tier ls --json')) as Array<{ name: string; tier: string }>;
  assert.ok(ls1.filter((e) => e.tier === 'disk').length >= 4, JSON.stringify(ls1));
  // the sandbox's disk tier lives in the guest's directory on the host's disk
  const hostDisk = join(dir, 'guests', name, 'disk-tier');
  assert.ok(existsSync(hostDisk));
  assert.ok((await readdir(hostDisk)).filter((f) => f.startsWith('seg')).length >= 4);
  assert.deepEqual(await sums(), before, 'every segment unchanged after the moves');
});
