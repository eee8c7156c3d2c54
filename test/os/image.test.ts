// The guest image: module closure order, the agent argv encoding /init decodes, /init's syntax, and a real build
// (apt-get download of the kernel package, dpkg -x, depmod, cpio) with its cache keyed by the inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moduleClosure } from '../../src/os/image/kernel.js';
import { encodeAgentArgv, renderInit } from '../../src/os/image/init.js';
import { buildImage, imagesDir } from '../../src/os/image/build.js';
import { run } from '../../src/os/image/run.js';
import { isHylicsError } from '../../src/core/errors/index.js';

// These tests build and probe from scratch in their own state dir, not in the run's shared cache.
delete process.env.HYLICS_CACHE_DIR;

test('moduleClosure orders every module after its dependencies and skips built-ins', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-mods-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'modules.dep'), [
    'kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko',
    'kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko',
    'kernel/drivers/virtio/virtio.ko:',
    'kernel/fs/fuse/fuse.ko:',
    'kernel/net/vsock.ko:',
  ].join('\n') + '\n');
  await writeFile(join(dir, 'modules.builtin'), 'kernel/fs/ext4/ext4.ko\n');
  const mods = (await moduleClosure(dir, ['virtiofs', 'ext4'], ['vsock', 'not_there'])).map((m) => m.name);
  assert.deepEqual(mods, ['virtio', 'virtio_ring', 'fuse', 'virtiofs', 'vsock']);
  await assert.rejects(moduleClosure(dir, ['not_there']), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_MICROVM_IMAGE_BUILD');
});

test('the agent argv survives the kernel command line and /init decoding it', async () => {
  const argv = ['/usr/bin/node', '--import', 'file:///a b/tsx.mjs', "it's", '$HOME', '`x`', '--name', 'web1'];
  const b64 = encodeAgentArgv(argv);
  assert.match(b64, /^[A-Za-z0-9+/=]+$/); // one kernel parameter, no spaces or quotes
  const r = await run('/bin/busybox', ['sh', '-c', `eval "set -- $(echo "${b64}" | base64 -d)"; for a in "$@"; do printf '%s\\n' "$a"; done`]);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), argv);
});

test('/init is valid busybox sh and loads modules in the given order', async (t) => {
  const text = renderInit(['virtio', 'virtio_ring', 'virtiofs']);
  assert.match(text, /for m in virtio virtio_ring virtiofs; do/);
  for (const marker of ['HYLICS-PROBE-OK', 'HYLICS-INIT-OK', 'HYLICS-AGENT-START', 'mount -t virtiofs hylics /mnt/hylics', 'mount -t virtiofs -o ro hostroot /sysroot']) assert.ok(text.includes(marker), marker);
  const dir = await mkdtemp(join(tmpdir(), 'hylics-init-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'init'), text);
  await run('/bin/busybox', ['sh', '-n', join(dir, 'init')]);
});

test('buildImage builds from Debian packages, then reuses the cached image', { timeout: 300_000 }, async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'hylics-image-'));
  t.after(() => rm(stateDir, { recursive: true, force: true }));
  const progress: string[] = [];
  let img;
  try {
    img = await buildImage({ stateDir, onProgress: (m) => progress.push(m) });
  } catch (e) {
    if (isHylicsError(e) && e.code === 'HYLICS_ERR_MICROVM_KERNEL_UNAVAILABLE') { t.skip(`no kernel package reachable: ${e.message}`); return; }
    throw e;
  }
  assert.equal(img.built, true);
  assert.match(img.kernelPackage, /^linux-image-\d.*-cloud-amd64$/);
  assert.ok(progress.some((m) => m.includes('dpkg -x')), progress.join('\n'));
  assert.ok(existsSync(img.kernel) && existsSync(img.initrd));
  assert.equal(readlinkSync(join(imagesDir(stateDir), 'current')), img.hash);
  for (const m of ['virtio_pci', 'virtiofs', 'virtio_console', 'virtio_net', 'virtio_blk', 'fuse']) assert.ok(img.modules.includes(m), m);
  assert.ok(img.modules.indexOf('fuse') < img.modules.indexOf('virtiofs'));
  const list = await run('bash', ['-c', 'zcat "$1" | cpio -t --quiet', 'bash', img.initrd]);
  const files = new Set(list.stdout.split('\n'));
  for (const f of ['init', 'bin/busybox', 'dev/console', 'lib/modules/hylics/virtiofs.ko']) assert.ok(files.has(f), f);

  const again = await buildImage({ stateDir });
  assert.equal(again.built, false);
  assert.equal(again.hash, img.hash);
  const forced = await buildImage({ stateDir, force: true });
  assert.equal(forced.built, true);
  assert.equal(forced.hash, img.hash);
  await mkdir(join(imagesDir(stateDir), '0123456789abcdef'));
  await buildImage({ stateDir, force: true });
  assert.equal(existsSync(join(imagesDir(stateDir), '0123456789abcdef')), false, 'older images are pruned');
});
