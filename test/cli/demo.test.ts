// The README's main job, end to end: `hylics demo` on its default (sandbox) guest must work and clean up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hylics } from '../helpers/cli.js';

test('hylics demo runs the whole job on a sandbox guest and leaves nothing behind', { skip: process.getuid?.() !== 0 ? 'needs root (the demo mounts a tmpfs and creates namespaces)' : false, timeout: 600_000 }, async () => {
  const r = await hylics(['demo', '--json', '--data-size', '8M']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as {
    stateDir: string; shareRoundTrip: string;
    compression: { inBytes: number; outBytes: number };
    delivery: { offloaded: { mbPerSecond?: number; error?: string }; inGuest: { mbPerSecond?: number } };
    tasks: Array<{ name: string; count: number }>;
  };
  assert.equal(s.shareRoundTrip, 'ok');
  assert.equal(s.compression.inBytes, 8 * 1024 * 1024);
  assert.ok(s.compression.outBytes > 0 && s.compression.outBytes < s.compression.inBytes);
  assert.ok(s.delivery.offloaded.mbPerSecond! > 0, `offloaded delivery: ${s.delivery.offloaded.error}`);
  assert.ok(s.delivery.inGuest.mbPerSecond! > 0);
  assert.deepEqual(s.tasks.map((t) => t.name).sort(), ['compress', 'deliver'], 'both tasks reached the host profiler through track()');
  assert.match(r.stderr, /\[7\/7\]/, 'progress is shown');
  assert.equal(existsSync(s.stateDir), false, 'the temporary state dir is gone');
  assert.ok(!(await readFile('/proc/self/mountinfo', 'utf8')).includes(s.stateDir), 'no mount left');
});
