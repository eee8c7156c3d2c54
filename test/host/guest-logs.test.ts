// Issue #12 items 5 and 7: `guest console` of a sandbox guest shows what its driver writes (sandbox.log; it used
// to look for console.log/agent.log/init.log only and came back empty), and a guest that floods its log cannot
// fill the host disk: the daemon keeps every guest log under its cap, with one rotated copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hylics, startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { GUEST_LOG_MAX_BYTES } from '../../src/os/log-file.js';
import { LOG_CAP_INTERVAL_MS } from '../../src/host/guest-logs.js';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root (daemon, sandbox guest)' : false;

test('sandbox guest: console shows sandbox.log; a 40 MB log flood is capped and rotated', { skip: NOT_ROOT, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir('hylics-glogs-');
  const daemon = await startDaemon(dir);
  const guest = `logs${process.pid % 10000}`;
  t.after(async () => {
    await hylics(['guest', 'rm', guest, '--state-dir', dir]);
    await stopDaemon(daemon);
    await rm(dir, { recursive: true, force: true });
  });
  const made = await hylics(['guest', 'create', guest, '--state-dir', dir, '--share-size', '16M', '--cpus', '1', '--memory', '256M']);
  assert.equal(made.code, 0, made.stderr);
  const marker = `hello-from-${guest}`;
  // the agent's stdout is the log the sandbox driver writes (its init's too)
  let r = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--', 'sh', '-c', `echo ${marker} >> /proc/$(pgrep -nf "[g]uest/agent-main")/fd/1`]);
  assert.equal(r.code, 0, r.stderr);
  r = await hylics(['guest', 'console', guest, '--state-dir', dir, '-n', '20']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /--- sandbox\.log/);
  assert.match(r.stdout, new RegExp(marker));

  // the flood: 40 MB into the log as root in the guest
  const log = join(dir, 'guests', guest, 'logs', 'sandbox.log');
  r = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--timeout', '120000', '--', 'sh', '-c', 'head -c 40000000 /dev/zero | tr "\\0" "x" >> /proc/$(pgrep -nf "[g]uest/agent-main")/fd/1; echo flood-end >> /proc/$(pgrep -nf "[g]uest/agent-main")/fd/1']);
  assert.equal(r.code, 0, r.stderr);
  const deadline = Date.now() + 10 * LOG_CAP_INTERVAL_MS;
  while (statSync(log).size > GUEST_LOG_MAX_BYTES && Date.now() < deadline)
    await new Promise((res) => setTimeout(res, 200));
  assert.ok(statSync(log).size <= GUEST_LOG_MAX_BYTES, `sandbox.log is ${statSync(log).size} bytes`);
  assert.ok(existsSync(`${log}.1`), 'rotated');
  assert.ok(statSync(`${log}.1`).size <= 2 * GUEST_LOG_MAX_BYTES, `one rotated copy, bounded: ${statSync(`${log}.1`).size}`);
  assert.ok(!existsSync(`${log}.2`));
  // the writer goes on at the new end (copy-and-truncate: a line written between copy and truncate may be lost)
  r = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--', 'sh', '-c', 'echo after-flood >> /proc/$(pgrep -nf "[g]uest/agent-main")/fd/1']);
  r = await hylics(['guest', 'console', guest, '--state-dir', dir, '-n', '3']);
  assert.match(r.stdout, /after-flood/);
  assert.ok(statSync(log).size < 4096, 'no hole left by the old offset');
  r = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--', 'echo', 'alive']);
  assert.equal(r.stdout.trim(), 'alive');
});
