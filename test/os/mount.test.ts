import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMountpoint, mountAt, mountsUnder, parseMountinfo, mount, umount } from '../../src/os/mount.js';
import { isHylicsError } from '../../src/core/errors/index.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts)' : false;

test('parseMountinfo reads optional fields and octal escapes', () => {
  const text = [
    '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    '90 27 0:50 / /tmp/with\\040space rw master:3 shared:9 - tmpfs my\\040src rw,size=4k',
  ].join('\n');
  const m = parseMountinfo(text);
  assert.equal(m.length, 3);
  assert.equal(m[0]!.fsType, 'ext4');
  assert.equal(m[1]!.mountPoint, '/sys/fs/cgroup/unified');
  assert.equal(m[2]!.mountPoint, '/tmp/with space');
  assert.equal(m[2]!.source, 'my src');
  assert.equal(m[2]!.fsType, 'tmpfs');
  assert.deepEqual(m[2]!.superOptions, ['rw', 'size=4k']);
});

test('isMountpoint, mountsUnder (deepest first) and umount of stacked/busy mounts', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), `hylics-mnt-${process.pid}-`));
  t.after(async () => {
    for (const m of await mountsUnder(dir)) await umount(m.mountPoint, { lazy: true });
    await rm(dir, { recursive: true, force: true });
  });
  assert.equal(await isMountpoint(dir), false);
  assert.equal(await isMountpoint('/proc'), true);
  await mount(['-t', 'tmpfs', '-o', 'size=1m', 'hylics-test', dir]);
  await mkdir(join(dir, 'inner'));
  await mount(['-t', 'tmpfs', '-o', 'size=1m', 'hylics-test-inner', join(dir, 'inner')]);
  assert.equal((await mountAt(dir))?.source, 'hylics-test');
  assert.deepEqual((await mountsUnder(dir)).map((m) => m.source), ['hylics-test-inner', 'hylics-test']);
  await assert.rejects(umount(dir), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SHARE_BUSY');
  await umount(join(dir, 'inner'));
  await umount(dir);
  await umount(dir, { ifMounted: true }); // no-op
  assert.equal(await isMountpoint(dir), false);
  await assert.rejects(mount(['-t', 'tmpfs', '-o', 'size=bogus', 'x', dir]), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_OS_COMMAND_FAILED');
});
