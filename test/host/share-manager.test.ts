import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShareManager } from '../../src/host/share-manager.js';
import { isHylicsError } from '../../src/core/errors/index.js';
import { isMountpoint } from '../../src/os/mount.js';
import { umountTmpfs } from '../../src/os/tmpfs.js';
import { MiB } from '../../src/core/units.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts)' : false;

async function withManager(t: { after: (fn: () => Promise<void>) => void }): Promise<ShareManager> {
  const dir = await mkdtemp(join(tmpdir(), `hylics-share-${process.pid}-`));
  const sm = new ShareManager({ stateDir: dir });
  t.after(async () => {
    for (const n of await sm.list()) await sm.destroy(n).catch(() => umountTmpfs(sm.path(n), { lazy: true }));
    await rm(dir, { recursive: true, force: true });
  });
  return sm;
}

function hasCode(code: string) {
  return (e: unknown) => isHylicsError(e) && e.code === code;
}

test('create, usage, write, destroy', { skip }, async (t) => {
  const sm = await withManager(t);
  const u = await sm.create('alpha', 8 * MiB);
  assert.equal(u.sizeBytes, 8 * MiB);
  assert.equal(u.path, sm.path('alpha'));
  assert.ok(await isMountpoint(sm.path('alpha')));
  await writeFile(join(sm.path('alpha'), 'f'), Buffer.alloc(2 * MiB, 1));
  const u2 = await sm.usage('alpha');
  assert.ok(u2.usedBytes >= 2 * MiB, `used ${u2.usedBytes}`);
  assert.equal(u2.freeBytes, u2.sizeBytes - u2.usedBytes);
  assert.ok(u2.inodesUsed >= 2);
  await assert.rejects(sm.create('alpha', 8 * MiB), hasCode('HYLICS_ERR_SHARE_EXISTS'));
  await sm.destroy('alpha');
  assert.equal(await isMountpoint(sm.path('alpha')), false);
  await assert.rejects(sm.usage('alpha'), hasCode('HYLICS_ERR_SHARE_NOT_FOUND'));
  await sm.destroy('alpha'); // idempotent
});

test('bad names and sizes are refused before anything is mounted', { skip }, async (t) => {
  const sm = await withManager(t);
  await assert.rejects(sm.create('Bad Name', 8 * MiB), hasCode('HYLICS_ERR_INVALID_NAME'));
  await assert.rejects(sm.create('ok', 0), hasCode('HYLICS_ERR_INVALID_SIZE'));
  await assert.rejects(sm.create('ok', 1.5), hasCode('HYLICS_ERR_INVALID_SIZE'));
  assert.deepEqual(await sm.list(), []);
});

test('resize grows and shrinks in use; shrinking below usage is refused with data intact', { skip }, async (t) => {
  const sm = await withManager(t);
  await sm.create('beta', 8 * MiB);
  const file = join(sm.path('beta'), 'data.bin');
  const payload = Buffer.alloc(6 * MiB, 7);
  await writeFile(file, payload);
  assert.equal((await sm.resize('beta', 32 * MiB)).sizeBytes, 32 * MiB);
  await writeFile(join(sm.path('beta'), 'more.bin'), Buffer.alloc(10 * MiB, 3)); // only fits after the grow
  const err = await sm.resize('beta', 4 * MiB).then(() => undefined, (e: unknown) => e);
  assert.ok(isHylicsError(err) && err.code === 'HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE', String(err));
  assert.equal(err.details?.requestedBytes, 4 * MiB);
  assert.ok((err.details?.usedBytes as number) >= 16 * MiB);
  const after = await sm.usage('beta');
  assert.equal(after.sizeBytes, 32 * MiB);
  assert.deepEqual(await readFile(file), payload);
  await rm(join(sm.path('beta'), 'more.bin'));
  assert.equal((await sm.resize('beta', 7 * MiB)).sizeBytes, 7 * MiB);
  assert.deepEqual(await readFile(file), payload);
});

test('a full share gives ENOSPC', { skip }, async (t) => {
  const sm = await withManager(t);
  await sm.create('gamma', 1 * MiB);
  await assert.rejects(writeFile(join(sm.path('gamma'), 'big'), Buffer.alloc(2 * MiB)), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC');
});

test('reconcile adopts mounted shares with their data, re-mounts missing ones, reports orphans', { skip }, async (t) => {
  const sm = await withManager(t);
  await sm.create('keep', 4 * MiB);
  await writeFile(join(sm.path('keep'), 'x'), 'still here');
  await sm.create('lost', 6 * MiB);
  await umountTmpfs(sm.path('lost')); // as after a host reboot
  await sm.create('stray', 4 * MiB);
  // a daemon restart: a new manager on the same state dir
  const sm2 = new ShareManager({ stateDir: sm.stateDir });
  const report = await sm2.reconcile(['keep', 'lost', 'never']);
  const by = Object.fromEntries(report.map((r) => [r.name, r]));
  assert.equal(by.keep?.outcome, 'present');
  assert.equal(await readFile(join(sm.path('keep'), 'x'), 'utf8'), 'still here');
  assert.equal(by.lost?.outcome, 'remounted');
  assert.equal((await sm2.usage('lost')).sizeBytes, 6 * MiB); // size remembered in share.json
  assert.equal(by.never?.outcome, 'remounted'); // no share.json: the fallback size
  assert.equal(by.stray?.outcome, 'orphan');
  assert.ok(await sm2.isMounted('stray'));
});

test('destroy refuses while a process holds the share open (busy) and leaves it mounted', { skip }, async (t) => {
  const sm = await withManager(t);
  await sm.create('held', 4 * MiB);
  await mkdir(join(sm.path('held'), 'd'));
  const { open } = await import('node:fs/promises');
  const fh = await open(join(sm.path('held'), 'd', 'f'), 'w');
  try {
    await assert.rejects(sm.destroy('held'), hasCode('HYLICS_ERR_SHARE_BUSY'));
    assert.ok(await sm.isMounted('held'));
  } finally {
    await fh.close();
  }
  await sm.destroy('held');
});
