import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { childrenOf, isProcessAlive, namespaceOf, nsPids, processStartTime, readStat } from '../../src/os/proc.js';

test('start time, liveness with start time, children, ns pids', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid!;
  try {
    const st = await processStartTime(pid);
    assert.ok(st !== undefined && st > 0);
    assert.ok(await isProcessAlive(pid, st));
    assert.equal(await isProcessAlive(pid, st + 1), false); // a reused pid is another process
    assert.ok((await childrenOf(process.pid)).includes(pid));
    assert.deepEqual(await nsPids(pid), [pid]);
    assert.equal((await readStat(pid))?.comm, 'sleep');
    assert.match((await namespaceOf('self', 'net'))!, /^net:\[\d+\]$/);
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
  }
  assert.equal(await isProcessAlive(pid), false);
  assert.equal(await processStartTime(2 ** 22 + 7), undefined);
});
