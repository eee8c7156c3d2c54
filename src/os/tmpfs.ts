// tmpfs mounts with a size limit: mount, resize in place (remount), usage (statfs), unmount.
import { statfs } from 'node:fs/promises';
import { HylicsError } from '../core/errors/index.js';
import { mount, mountAt, umount } from './mount.js';

export const TMPFS_MAGIC = 0x01021994;
export const PAGE_SIZE = 4096;

export interface TmpfsOptions {
  sizeBytes: number;
  /** Octal mode of the root dir, default 0o755. */
  mode?: number;
  /** Inode limit (each file costs one and about 1 KiB of unaccounted kernel memory); default `defaultInodes(size)`. */
  nrInodes?: number;
}

export interface FsUsage {
  sizeBytes: number;
  usedBytes: number;
  freeBytes: number;
  inodes: number;
  inodesUsed: number;
  inodesFree: number;
}

/** One inode per 4 KiB of size, at least 1024: enough for real files, not enough for an inode-exhaustion attack. */
export function defaultInodes(sizeBytes: number): number {
  return Math.max(1024, Math.floor(sizeBytes / 4096));
}

/** Round a size up to whole pages (what tmpfs does itself). */
export function pageRound(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

/**
 * Mount a tmpfs. `strictatime`: every read updates the atime, whoever reads (the guest, the host's offload
 * modules through their bind mount of the share, virtiofsd): the guest's tiered store takes atime as a file's last
 * use, and under the default `relatime` a file read only by a host module would look idle and leave the share
 * (docs/tier.md). Bind mounts and later remounts keep the flag. Costs an in-memory inode update per read.
 */
export async function mountTmpfs(path: string, opts: TmpfsOptions, source = 'tmpfs'): Promise<void> {
  const o = [`size=${pageRound(opts.sizeBytes)}`, `mode=${(opts.mode ?? 0o755).toString(8).padStart(4, '0')}`, `nr_inodes=${opts.nrInodes ?? defaultInodes(opts.sizeBytes)}`];
  await mount(['-t', 'tmpfs', '-o', `${o.join(',')},nodev,nosuid,strictatime`, source, path], 'HYLICS_ERR_SHARE_MOUNT_FAILED');
}

/**
 * Change the size (and inode limit) of a mounted tmpfs in place; the kernel refuses to go below what is in use.
 * `strictatime` again: a share mounted by an older hylicsd (relatime) gets it at its first resize.
 */
export async function remountTmpfs(path: string, opts: { sizeBytes: number; nrInodes?: number }): Promise<void> {
  const o = [`size=${pageRound(opts.sizeBytes)}`, 'strictatime'];
  if (opts.nrInodes !== undefined) o.push(`nr_inodes=${opts.nrInodes}`);
  await mount(['-o', `remount,${o.join(',')}`, path], 'HYLICS_ERR_SHARE_MOUNT_FAILED');
}

export async function umountTmpfs(path: string, opts: { lazy?: boolean } = {}): Promise<void> {
  await umount(path, { lazy: opts.lazy ?? false, ifMounted: true });
}

/** Space and inodes of the file system at `path` (statfs). */
export async function fsUsage(path: string): Promise<FsUsage> {
  const s = await statfs(path);
  return {
    sizeBytes: s.blocks * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    freeBytes: s.bavail * s.bsize,
    inodes: s.files,
    inodesUsed: s.files - s.ffree,
    inodesFree: s.ffree,
  };
}

/** Is a tmpfs mounted exactly at `path`? */
export async function isTmpfsMounted(path: string): Promise<boolean> {
  const m = await mountAt(path);
  return m !== undefined && m.fsType === 'tmpfs';
}

/** Throws HYLICS_ERR_SHARE_NOT_FOUND unless a tmpfs is mounted at `path`. */
export async function requireTmpfs(path: string, what = path): Promise<void> {
  if (!(await isTmpfsMounted(path))) throw new HylicsError('HYLICS_ERR_SHARE_NOT_FOUND', `no tmpfs is mounted at ${path} (${what})`, { path });
}
