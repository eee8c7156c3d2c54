// The guest's tier settings given from the host (#9): `guest create --tier-idle 2s --tier-promote off` reaches the
// agent of a real sandbox guest (a file put through the store moves to the disk tier within seconds, not after the
// agent's default 60 s; a disk-tier file looked up stays there), bad settings are refused with a stable code and
// create nothing, and the settings persist: after a daemon restart and a guest stop/start they hold again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { errorCode, startDaemon, stateDirCli, stopDaemon, tempStateDir } from '../../helpers/cli.js';
import type { GuestView } from '../../../src/core/api.js';

const skip = process.getuid?.() !== 0 ? 'needs root (daemon: tmpfs mounts, namespaces, cgroups)' : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Well under the agent's default idle time (60 s; the clock starts after the put's exec returned, so 15 s are left
 * for that exec): a move before this is the host's 2 s setting at work. As much as that allows for a 2 s idle time
 * and a 500 ms sweep on a loaded machine (was 30 s). */
const MOVED_WITHIN_MS = 45_000;

test('sandbox guest: tier idle and promotion set at guest create take effect in the agent and persist', { skip, timeout: 600_000 }, async (t) => {
  const dir = await tempStateDir('hylics-tierset-');
  const name = `tset${process.pid % 100000}`;
  let daemon: ChildProcess | undefined = await startDaemon(dir);
  const { cli, inGuest } = stateDirCli(dir);
  t.after(async () => {
    if (daemon) { await cli('guest', 'rm', name); await stopDaemon(daemon); daemon = undefined; }
    await rm(dir, { recursive: true, force: true });
  });

  // bad settings: a stable code, nothing created
  for (const flags of [['--tier-idle', '100ms'], ['--tier-idle', '-1s'], ['--disk-tier', '/srv/tier'], ['--disk-tier', '../x'], ['--tier-promote', 'maybe']]) {
    const r = await cli('guest', 'create', name, '--share-size', '8M', '--memory', '256M', ...flags);
    assert.equal(r.code, 1, `${flags.join(' ')}: ${r.stdout}`);
    assert.equal(errorCode(r), 'HYLICS_ERR_TIER_INVALID_SETTING', `${flags.join(' ')}: ${r.stderr}`);
  }
  assert.deepEqual(JSON.parse((await cli('guest', 'ls', '--json')).stdout), [], 'no guest was created');

  const c = await cli('guest', 'create', name, '--share-size', '8M', '--memory', '256M', '--tier-idle', '2s', '--tier-promote', 'off', '--json');
  assert.equal(c.code, 0, c.stderr + c.stdout);
  assert.deepEqual((JSON.parse(c.stdout) as GuestView).tier, { idleMs: 2000, promote: 'off', diskDir: '/var/lib/hylics-tier' });

  const tierOf = async (file: string): Promise<string | undefined> => {
    const ls = JSON.parse(await inGuest(name, 'hylics tier ls --json')) as Array<{ name: string; tier: string }>;
    return ls.find((e) => e.name === file)?.tier;
  };
  /** Put `file` through the store and wait until the idle sweep moved it; the time it took. */
  const putAndWaitEvicted = async (file: string): Promise<number> => {
    const put = JSON.parse(await inGuest(name, `head -c 65536 /dev/urandom | hylics tier put --json ${file} -`)) as { tier: string };
    const t0 = Date.now();
    assert.equal(put.tier, 'memory', 'it lands in the share');
    for (;;) {
      if ((await tierOf(file)) === 'disk') return Date.now() - t0;
      assert.ok(Date.now() - t0 < MOVED_WITHIN_MS, `${file} still in the share after ${MOVED_WITHIN_MS} ms (the agent kept its 60 s default?)`);
      await sleep(500);
    }
  };
  const took = await putAndWaitEvicted('a1');
  t.diagnostic(`a1 moved to the disk tier ${took} ms after the put (idle 2 s)`);
  // promotion off: a lookup finds it in the disk tier and leaves it there, although the share has room
  const p = JSON.parse(await inGuest(name, 'hylics tier path --json a1')) as { tier: string; foundIn: string };
  assert.deepEqual([p.foundIn, p.tier], ['disk', 'disk']);
  const agentArgv = await inGuest(name, 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -o -- "--tier-idle [^ ]* --tier-promote [^ ]*" | head -1');
  assert.equal(agentArgv.trim(), '--tier-idle 2000ms --tier-promote off');

  // persisted in the guest's record; a new daemon and a fresh agent (guest stop/start) keep them
  const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { guests: Record<string, { spec: { tier?: unknown } }> };
  assert.deepEqual(state.guests[name]?.spec.tier, { idleMs: 2000, promote: 'off', diskDir: '/var/lib/hylics-tier' });
  await stopDaemon(daemon);
  daemon = await startDaemon(dir);
  for (const verb of ['stop', 'start']) {
    const r = await cli('guest', verb, name);
    assert.equal(r.code, 0, `${verb}: ${r.stderr}`);
  }
  for (const until = Date.now() + 60_000; !(JSON.parse((await cli('guest', 'show', name, '--json')).stdout) as GuestView).agentConnected;) {
    assert.ok(Date.now() < until, 'agent connected after guest start');
    await sleep(500);
  }
  const took2 = await putAndWaitEvicted('a2');
  t.diagnostic(`after a daemon restart and guest stop/start, a2 moved ${took2} ms after the put`);
  assert.equal(await tierOf('a1'), 'disk', 'a1 still in the disk tier');
});
