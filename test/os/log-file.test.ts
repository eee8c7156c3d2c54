// Guest-written logs: tails read from the end (a 3 GiB console no longer has to fit in memory), rotation by
// copy-and-truncate under a writer that keeps appending (issue #12 item 5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, openSync, writeSync, closeSync, statSync, readFileSync, truncateSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capLog, tailBytes, tailLines } from '../../src/os/log-file.js';
import { logTail } from '../../src/os/virtiofsd.js';
import { guestLogTail } from '../../src/host/guest-logs.js';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'hylics-logs-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('tails of a 3 GiB console come from its end (whole-file reads cannot even hold it)', async (t) => {
  const d = tmp(t);
  const f = join(d, 'console.log');
  truncateSync(openAndClose(f), 3 * 1024 ** 3); // sparse: costs no disk
  appendFileSync(f, 'line-a\nline-b\nline-c\n');
  assert.deepEqual(await tailLines(f, 2), ['line-b', 'line-c']);
  assert.equal(await logTail(f, 2), 'line-b | line-c');
  assert.equal((await tailBytes(f, 7)).toString(), 'line-c\n');
  // asked for more lines than there are within the byte limit: what is in it, never the whole file
  const many = await tailLines(f, 10, 4096);
  assert.ok(many.length <= 4 && many.at(-1) === 'line-c');
});

function openAndClose(f: string): string {
  closeSync(openSync(f, 'w'));
  return f;
}

test('tailLines: short files, no trailing newline, lines across chunk borders, missing file', async (t) => {
  const d = tmp(t);
  const f = join(d, 'a.log');
  appendFileSync(f, 'one\ntwo');
  assert.deepEqual(await tailLines(f, 5), ['one', 'two']);
  const g = join(d, 'b.log');
  const lines = Array.from({ length: 50_000 }, (_, i) => `l${i}`);
  appendFileSync(g, lines.join('\n') + '\n');
  assert.deepEqual(await tailLines(g, 30_000), lines.slice(-30_000));
  assert.deepEqual(await tailLines(join(d, 'none.log'), 3), []);
});

test('capLog rotates by copy-and-truncate; an O_APPEND writer keeps writing at the new end; one rotated copy', async (t) => {
  const d = tmp(t);
  const f = join(d, 'console.log');
  const fd = openSync(f, 'a'); // like QEMU's chardev with append=on
  t.after(() => closeSync(fd));
  writeSync(fd, 'x'.repeat(3000) + '\nold-tail\n');
  assert.equal(await capLog(f, 10_000), false, 'under the cap: nothing');
  writeSync(fd, 'y'.repeat(9000) + '\nnewest\n');
  assert.equal(await capLog(f, 10_000), true);
  assert.equal(statSync(f).size, 0);
  assert.match(readFileSync(`${f}.1`, 'utf8'), /newest\n$/);
  writeSync(fd, 'after\n');
  assert.equal(readFileSync(f, 'utf8'), 'after\n', 'no hole, no stale offset');
  // the tail reaches into the rotated copy when the current file is short
  assert.equal(await guestLogTail(d, 2), '--- console.log\nnewest\nafter');
  // far past the cap (the daemon was down): the rotated copy keeps only the cap's worth
  writeSync(fd, 'z'.repeat(100_000) + '\nlast\n');
  assert.equal(await capLog(f, 10_000), true);
  assert.equal(statSync(`${f}.1`).size, 10_000);
  assert.match(readFileSync(`${f}.1`, 'utf8'), /last\n$/);
});
