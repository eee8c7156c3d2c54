// `hylics image build`: the guest image is a Debian kernel plus a small initramfs (static busybox, the needed
// modules, our /init). It lives in <state>/images/<hash>/ where the hash covers every input (kernel package
// version, busybox binary, init text, module list), so a changed input gives a new image and an unchanged one is
// reused. Builds go to a temporary directory and are renamed into place, so a failed build leaves nothing behind.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { renderInit } from './init.js';
import { fetchKernelPackage, GUEST_MODULES, moduleClosure, OPTIONAL_MODULES, unpackKernel } from './kernel.js';
import { run } from './run.js';
import { MiB } from '../../core/units.js';

/** Bump when the layout of the image changes in a way the other inputs do not capture. */
const IMAGE_FORMAT = 1;
export const BUSYBOX = '/bin/busybox';

export interface GuestImage {
  hash: string;
  dir: string;
  kernel: string;
  initrd: string;
  kernelPackage: string;
  kernelVersion: string;
  kernelRelease: string;
  modules: string[];
  builtAt: string;
  /** true when this call built it, false when it came from the cache. */
  built: boolean;
  sizeBytes: { kernel: number; initrd: number };
}

export interface BuildOptions {
  stateDir: string;
  onProgress?: (msg: string) => void;
  /** Rebuild even if an image with the same inputs exists. */
  force?: boolean;
}

/** Where images (and the KVM probe's answer) are cached: $HYLICS_CACHE_DIR when set, so that several state dirs
 * (the demo's temporary one, tests) share one kernel download and one probe; else the state dir. */
export const cacheRoot = (stateDir: string): string => process.env.HYLICS_CACHE_DIR || stateDir;
export const imagesDir = (stateDir: string): string => join(cacheRoot(stateDir), 'images');

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function checkBusybox(): Promise<void> {
  if (!existsSync(BUSYBOX)) throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${BUSYBOX} is missing: apt-get install busybox-static`, { package: 'busybox-static' });
  const r = await run('file', ['-b', BUSYBOX], { allowFail: true }).catch(() => undefined);
  if (r && r.code === 0 && !/statically linked|static-pie/.test(r.stdout)) {
    throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${BUSYBOX} is not statically linked: apt-get install busybox-static`, { package: 'busybox-static' });
  }
}

/** Build the guest image if needed and return it (cached under <state>/images/<hash>). */
export async function buildImage(opts: BuildOptions): Promise<GuestImage> {
  const progress = opts.onProgress ?? (() => {});
  const root = imagesDir(opts.stateDir);
  const cacheDir = join(root, 'cache');
  await mkdir(root, { recursive: true });
  for (const tool of [['dpkg', 'dpkg'], ['depmod', 'kmod'], ['cpio', 'cpio'], ['gzip', 'gzip']] as const) {
    await run('sh', ['-c', `command -v ${tool[0]}`]).catch(() => {
      throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${tool[0]} is missing: apt-get install ${tool[1]}`, { package: tool[1] });
    });
  }
  await checkBusybox();

  progress('resolving the kernel package');
  const pkg = await fetchKernelPackage(cacheDir, progress);
  const debStat = await stat(pkg.deb);
  const busyboxHash = await sha256File(BUSYBOX);
  const initTemplate = renderInit(['@MODULES@']);
  const hash = createHash('sha256')
    .update(
      JSON.stringify({
        IMAGE_FORMAT,
        deb: pkg.name,
        version: pkg.version,
        debSize: debStat.size,
        busyboxHash,
        initTemplate,
        GUEST_MODULES,
        OPTIONAL_MODULES,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = join(root, hash);
  const manifest = join(dir, 'image.json');
  if (!opts.force && existsSync(manifest)) {
    const img = JSON.parse(await readFile(manifest, 'utf8')) as GuestImage;
    progress(`image ${hash} is up to date (${img.kernelPackage} ${img.kernelVersion})`);
    await pointCurrent(root, hash);
    return { ...img, dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), built: false };
  }

  const tmp = join(root, `.build-${hash}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    progress(`unpacking ${pkg.name} ${pkg.version} (dpkg -x) and running depmod`);
    const k = await unpackKernel(pkg, join(tmp, 'kernel'));
    const mods = await moduleClosure(k.modulesDir, GUEST_MODULES, OPTIONAL_MODULES);
    progress(`initramfs: busybox + ${mods.length} modules (${mods.map((m) => m.name).join(' ')})`);
    const stage = join(tmp, 'initramfs');
    await mkdir(join(stage, 'bin'), { recursive: true });
    await mkdir(join(stage, 'lib', 'modules', 'hylics'), { recursive: true });
    await mkdir(join(stage, 'dev'), { recursive: true });
    await copyFile(BUSYBOX, join(stage, 'bin', 'busybox'));
    await chmod(join(stage, 'bin', 'busybox'), 0o755);
    for (const m of mods) await copyFile(m.path, join(stage, 'lib', 'modules', 'hylics', `${m.name}.ko`));
    await writeFile(join(stage, 'init'), renderInit(mods.map((m) => m.name)), { mode: 0o755 });
    // /dev/console must exist before /init runs or init has no stdout (the kernel opens it for PID 1)
    await run('mknod', ['-m', '600', join(stage, 'dev', 'console'), 'c', '5', '1'], { allowFail: true });
    const out = join(tmp, 'out');
    await mkdir(out);
    await run('bash', ['-c', 'set -o pipefail; find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -n -6 > "$1"', 'bash', join(out, 'initrd.img')], { cwd: stage, code: 'HYLICS_ERR_MICROVM_IMAGE_BUILD' });
    await copyFile(k.vmlinuz, join(out, 'vmlinuz'));
    const [ks, is] = await Promise.all([stat(join(out, 'vmlinuz')), stat(join(out, 'initrd.img'))]);
    const img: GuestImage = {
      hash, dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'),
      kernelPackage: pkg.name, kernelVersion: pkg.version, kernelRelease: k.release,
      modules: mods.map((m) => m.name), builtAt: new Date().toISOString(), built: true,
      sizeBytes: { kernel: ks.size, initrd: is.size },
    };
    await writeFile(join(out, 'image.json'), JSON.stringify(img, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(out, dir);
    progress(`image ${hash} built: kernel ${k.release} (${(ks.size / MiB).toFixed(1)} MiB), initramfs ${(is.size / MiB).toFixed(1)} MiB`);
    await pruneOldImages(root, hash);
    await pointCurrent(root, hash);
    return img;
  } catch (e) {
    throw e instanceof HylicsError ? e : toHylicsError(e, 'HYLICS_ERR_MICROVM_IMAGE_BUILD');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** <images>/current -> the newest image, for tools that need a path without building (libvirt XML). */
async function pointCurrent(root: string, hash: string): Promise<void> {
  const link = join(root, 'current');
  const tmp = join(root, `.current-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(hash, tmp);
  await rename(tmp, link);
}

/** Keep the current image and the cache; drop other built images (guests boot from a copy-free path, so an
 * image in use by a running QEMU stays readable after unlink). */
async function pruneOldImages(root: string, keep: string): Promise<void> {
  for (const e of await readdir(root)) {
    if (e === keep || e === 'cache' || e === 'current' || e.startsWith('.')) continue;
    if (/^[0-9a-f]{16}$/.test(e)) await rm(join(root, e), { recursive: true, force: true });
  }
}
