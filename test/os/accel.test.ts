// Accelerator choice: HYLICS_ACCEL forcing, the marker boot under TCG, and the cached KVM probe (on a PVM host
// the KVM boot hangs and TCG is chosen; on a working KVM host KVM is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccel, probeBoot } from '../../src/os/accel.js';
import { buildImage, cacheRoot, type GuestImage } from '../../src/os/image/build.js';
import { isHylicsError } from '../../src/core/errors/index.js';

// These tests build and probe from scratch in their own state dir, not in the run's shared cache.
delete process.env.HYLICS_CACHE_DIR;

const noQemu = existsSync('/usr/bin/qemu-system-x86_64') ? false : 'needs qemu-system-x86';

async function withEnv<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = process.env.HYLICS_ACCEL;
  if (value === undefined) delete process.env.HYLICS_ACCEL; else process.env.HYLICS_ACCEL = value;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env.HYLICS_ACCEL;
    else process.env.HYLICS_ACCEL = old;
  }
}

const fakeImage = { hash: 'x', kernel: '/nonexistent', initrd: '/nonexistent' } as GuestImage;

test('HYLICS_ACCEL forces the accelerator (and is checked)', async () => {
  const c = await withEnv('tcg', () => chooseAccel({ stateDir: '/nonexistent', image: fakeImage }));
  assert.deepEqual([c.accel, c.cached], ['tcg', false]);
  await withEnv('xen', () => assert.rejects(chooseAccel({ stateDir: '/nonexistent', image: fakeImage }), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_INVALID_ARGUMENT'));
  if (!existsSync('/dev/kvm')) {
    await withEnv('kvm', () => assert.rejects(chooseAccel({ stateDir: '/nonexistent', image: fakeImage }), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_MICROVM_KVM_UNAVAILABLE'));
  }
});

test('probe boot under TCG reaches the marker; the KVM probe result is cached', { skip: noQemu, timeout: 300_000 }, async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'hylics-accel-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  let image: GuestImage;
  try {
    image = await buildImage({ stateDir });
  } catch (e) {
    if (isHylicsError(e) && e.code === 'HYLICS_ERR_MICROVM_KERNEL_UNAVAILABLE') { t.skip(e.message); return; }
    throw e;
  }
  const tcg = await probeBoot(image, 'tcg', 60_000);
  assert.equal(tcg.ok, true, tcg.detail);
  t.diagnostic(`TCG probe boot reached userspace in ${tcg.ms} ms`);

  const first = await withEnv(undefined, () => chooseAccel({ stateDir, image, probeTimeoutMs: 15_000 }));
  t.diagnostic(`chosen: ${first.accel} (${first.reason})`);
  assert.ok(first.accel === 'kvm' || first.accel === 'tcg');
  if (!existsSync('/dev/kvm')) return; // no probe without /dev/kvm
  assert.equal(first.cached, false);
  const cache = JSON.parse(await readFile(join(cacheRoot(stateDir), 'accel.json'), 'utf8')) as { accel: string; key: string };
  assert.equal(cache.accel, first.accel);
  assert.ok(cache.key.includes(image.hash));
  const second = await withEnv(undefined, () => chooseAccel({ stateDir, image }));
  assert.deepEqual([second.accel, second.cached], [first.accel, true]);
});
