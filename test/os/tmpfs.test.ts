import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultInodes, fsUsage, isTmpfsMounted, mountTmpfs, pageRound, remountTmpfs, umountTmpfs } from '../../src/os/tmpfs.js';
import { mountAt } from '../../src/os/mount.js';
import { isHylicsError } from '../../src/core/errors/index.js';
import { MiB } from '../../src/core/units.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts)' : false;

test('pageRound and defaultInodes', () => {
  assert.equal(pageRound(1), 4096);
  assert.equal(pageRound(8192), 8192);
  assert.equal(defaultInodes(MiB), 1024);
  assert.equal(defaultInodes(64 * MiB), 16384);
});

test('tmpfs mount, usage, remount both ways, kernel refuses shrinking below use, umount', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), `hylics-tmpfs-${process.pid}-`));
  t.after(async () => {
    await umountTmpfs(dir, { lazy: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await mountTmpfs(dir, { sizeBytes: 4 * MiB, mode: 0o750, nrInodes: 100 });
  assert.ok(await isTmpfsMounted(dir));
  const m = await mountAt(dir);
  assert.ok(m!.superOptions.includes('nr_inodes=100'));
  assert.ok(m!.superOptions.includes('mode=750'));
  let u = await fsUsage(dir);
  assert.equal(u.sizeBytes, 4 * MiB);
  assert.equal(u.inodes, 100);
  await writeFile(join(dir, 'a'), Buffer.alloc(3 * MiB, 1));
  u = await fsUsage(dir);
  assert.ok(u.usedBytes >= 3 * MiB && u.freeBytes <= MiB);
  await remountTmpfs(dir, { sizeBytes: 16 * MiB });
  assert.equal((await fsUsage(dir)).sizeBytes, 16 * MiB);
  // the kernel itself refuses to go below what is in use
  await assert.rejects(remountTmpfs(dir, { sizeBytes: 1 * MiB }), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_SHARE_MOUNT_FAILED');
  assert.equal((await fsUsage(dir)).sizeBytes, 16 * MiB);
  assert.equal((await readFile(join(dir, 'a'))).length, 3 * MiB);
  await umountTmpfs(dir);
  assert.equal(await isTmpfsMounted(dir), false);
  await umountTmpfs(dir); // idempotent
});
