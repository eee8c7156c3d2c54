// A sandbox guest's root file system, an image of two layers: a read-only base shared by the daemon's guests
// (<state-dir>/images/sandbox-base-vN: the directory skeleton, a minimal /etc, the usr-merge links; the system's
// programs come from the host's /usr, bound read-only by the container config) and a writable layer per guest
// (overlayfs at ROOTFS_RUN_DIR/<key>, upper and work dirs on a small tmpfs, so what the guest writes outside its share
// costs its own memory cgroup, never the host's disk, and is gone when it stops). Nothing else of the host is in it.
import { chmod, copyFile, lchown, lstat, mkdir, readdir, readlink, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mount, umount } from './mount.js';
import { MiB } from '../core/units.js';

/** Bump when the base's content changes: a new directory is built, the old one stays for running guests. */
export const BASE_IMAGE_VERSION = 1;
/** The writable layer's size: room for /tmp scratch and config edits; the share is where data goes. */
export const ROOTFS_RW_BYTES = 256 * MiB;

/** Top-level usr-merge links (bin -> usr/bin, ...) replicated from the host when it has them. */
const USRMERGE_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** Empty directories of the base (mount points and scratch). [path, mode] */
const BASE_DIRS: Array<[string, number]> = [['usr', 0o755], ['etc', 0o755], ['proc', 0o555], ['sys', 0o555], ['dev', 0o755],
  ['tmp', 0o1777], ['var', 0o755], ['var/tmp', 0o1777], ['var/lib', 0o755], ['root', 0o700], ['home', 0o755], ['run', 0o755],
  ['mnt', 0o755]];
/** Directories of the base that guest root must own (copied up into its writable layer, chowned there). */
export const GUEST_OWNED_DIRS = ['.', 'tmp', 'var/tmp', 'root', 'home', 'run', 'etc', 'var/lib', 'mnt'];

const ETC_FILES: Record<string, string> = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
  group: 'root:x:0:\nnogroup:x:65534:\n',
  hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
  'nsswitch.conf': 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n',
};
/** Public host files copied into the base: the dynamic linker's cache, the alternatives links (awk, ...). */
const ETC_COPIED = ['ld.so.cache', 'ld.so.conf'];

export function baseImageDir(stateDir: string): string {
  return join(stateDir, 'images', `sandbox-base-v${BASE_IMAGE_VERSION}`);
}

async function exists(p: string): Promise<boolean> {
  try { await lstat(p); return true; } catch { return false; }
}

/** Build the base image once (into a temporary dir renamed into place, so a crash leaves no half image). */
export async function ensureBaseImage(stateDir: string): Promise<string> {
  const dir = baseImageDir(stateDir);
  if (await exists(join(dir, 'etc', 'passwd'))) return dir;
  await mkdir(join(stateDir, 'images'), { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { mode: 0o755 });
  for (const [d, mode] of BASE_DIRS) await mkdir(join(tmp, d), { mode });
  for (const l of USRMERGE_LINKS) {
    const st = await lstat(join('/', l)).catch(() => undefined);
    if (st?.isSymbolicLink()) await symlink(await readlink(join('/', l)), join(tmp, l));
  }
  for (const [f, text] of Object.entries(ETC_FILES)) await writeFile(join(tmp, 'etc', f), text, { mode: 0o644 });
  for (const f of ETC_COPIED) if (await exists(join('/etc', f))) await copyFile(join('/etc', f), join(tmp, 'etc', f));
  if (await exists('/etc/alternatives')) {
    await mkdir(join(tmp, 'etc', 'alternatives'), { mode: 0o755 });
    for (const a of await readdir('/etc/alternatives')) {
      const st = await lstat(join('/etc/alternatives', a));
      if (st.isSymbolicLink()) await symlink(await readlink(join('/etc/alternatives', a)), join(tmp, 'etc', 'alternatives', a));
    }
  }
  try { await rename(tmp, dir); } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (!(await exists(join(dir, 'etc', 'passwd')))) throw e; // else another daemon process built it first
  }
  return dir;
}

/** Where guests' root file systems are mounted: crun enters the guest's user namespace before it uses the root,
 * so every directory above it must be searchable by the guest's (unmapped) uid, which a 0700 state dir is not.
 * Host-wide (under /run: gone with a reboot, like the containers); one directory per host-wide network index. */
export const ROOTFS_RUN_DIR = '/run/hylics-rootfs';

export interface RootfsPaths {
  /** ROOTFS_RUN_DIR/<key>: holds rw (the tmpfs with upper/ and work/) and root (the merged view). */
  dir: string;
  rw: string;
  root: string;
}

/** `key` is unique on the host (the guest's network index and name). */
export function rootfsPaths(key: string): RootfsPaths {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(key)) throw new RangeError(`bad rootfs key ${JSON.stringify(key)}`);
  const dir = join(ROOTFS_RUN_DIR, key);
  return { dir, rw: join(dir, 'rw'), root: join(dir, 'root') };
}

/** Mount the guest's root: overlay(base, tmpfs upper) at paths.root, with the guest-owned dirs given to `hostId`. */
export async function mountRootfs(base: string, p: RootfsPaths, hostId: number, name: string): Promise<void> {
  await mkdir(ROOTFS_RUN_DIR, { recursive: true, mode: 0o711 });
  await chmod(ROOTFS_RUN_DIR, 0o711);
  await mkdir(p.dir, { recursive: true, mode: 0o711 });
  await mkdir(p.rw, { recursive: true, mode: 0o700 });
  await mkdir(p.root, { recursive: true, mode: 0o755 });
  await mount(['-t', 'tmpfs', '-o', `size=${ROOTFS_RW_BYTES},mode=0700,nosuid,nodev`, `hylics-rootfs-${name}`, p.rw]);
  await mkdir(join(p.rw, 'upper'), { mode: 0o755 });
  await mkdir(join(p.rw, 'work'), { mode: 0o700 });
  await mount(['-t', 'overlay', '-o', `lowerdir=${base},upperdir=${join(p.rw, 'upper')},workdir=${join(p.rw, 'work')}`, `hylics-root-${name}`, p.root]);
  for (const d of GUEST_OWNED_DIRS) await lchown(join(p.root, d), hostId, hostId);
}

/** Unmount the guest's root and its writable layer (what it wrote there is gone); missing is fine. */
export async function umountRootfs(p: RootfsPaths): Promise<void> {
  await umount(p.root, { ifMounted: true, lazy: true });
  await umount(p.rw, { ifMounted: true, lazy: true });
  for (const d of [p.root, p.rw, p.dir]) await rmdir(d).catch(() => undefined);
}
