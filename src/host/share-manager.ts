// Per-guest shared in-memory file systems: a tmpfs at <state-dir>/guests/<name>/share with a size limit that
// can change while the guest uses it. The kernel's mount table is the truth about what exists: a daemon
// restart leaves the mounts (and their data) alone and `reconcile` adopts them. A small share.json beside each
// share remembers its size so a share that did vanish (host reboot, someone's umount) can be re-made.
import { mkdir, readFile, realpath, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { HylicsError } from '../core/errors/index.js';
import { MiB, validateGuestName } from '../core/units.js';
import { requireRoot } from '../os/exec.js';
import { mountsUnder, readMounts } from '../os/mount.js';
import { defaultInodes, fsUsage, isTmpfsMounted, mountTmpfs, pageRound, remountTmpfs, umountTmpfs, PAGE_SIZE, type FsUsage } from '../os/tmpfs.js';

export interface ShareUsage extends FsUsage {
  mounted: true;
  path: string;
}

export interface ShareMeta {
  sizeBytes: number;
  nrInodes: number;
  createdAt: string;
}

export type ReconcileOutcome =
  /** mounted and adopted as it is; data intact */
  | 'present'
  /** was not mounted: an empty tmpfs was mounted in its place (earlier contents are gone) */
  | 'remounted'
  /** not mounted and could not be re-made (the error says why) */
  | 'failed'
  /** a share tmpfs under the state dir that no name asked for; left mounted for the operator */
  | 'orphan';

export interface ReconcileEntry {
  name: string;
  outcome: ReconcileOutcome;
  sizeBytes?: number;
  error?: string;
}

export interface ShareManagerOptions {
  stateDir: string;
  log?: Logger;
  /** Size used by `reconcile` for a missing share whose share.json is also gone. Default 64 MiB. */
  fallbackSizeBytes?: number;
}

function checkSize(sizeBytes: number): number {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < PAGE_SIZE) {
    throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `share size must be a whole number of bytes >= ${PAGE_SIZE}, got ${sizeBytes}`, { sizeBytes });
  }
  return pageRound(sizeBytes);
}

export class ShareManager {
  readonly stateDir: string;
  private readonly log: Logger | undefined;
  private readonly fallbackSizeBytes: number;

  constructor(opts: ShareManagerOptions) {
    this.stateDir = opts.stateDir;
    this.log = opts.log;
    this.fallbackSizeBytes = opts.fallbackSizeBytes ?? 64 * MiB;
  }

  /** The share's mount point on the host: <state-dir>/guests/<name>/share. */
  path(name: string): string {
    return join(this.stateDir, 'guests', validateGuestName(name), 'share');
  }

  private metaPath(name: string): string {
    return join(dirname(this.path(name)), 'share.json');
  }

  async isMounted(name: string): Promise<boolean> {
    return isTmpfsMounted(this.path(name));
  }

  /** Mount a new, empty tmpfs share of `sizeBytes` (rounded up to pages). HYLICS_ERR_SHARE_EXISTS if mounted. */
  async create(name: string, sizeBytes: number): Promise<ShareUsage> {
    requireRoot('creating a share (mount)');
    const size = checkSize(sizeBytes);
    const p = this.path(name);
    if (await isTmpfsMounted(p)) throw new HylicsError('HYLICS_ERR_SHARE_EXISTS', `guest ${name} already has a share mounted at ${p}`, { name, path: p });
    const existed = await mkdir(p, { recursive: true, mode: 0o755 }).then((first) => first === undefined);
    const nrInodes = defaultInodes(size);
    try {
      await mountTmpfs(p, { sizeBytes: size, mode: 0o755, nrInodes }, `hylics-share-${name}`);
    } catch (e) {
      if (!existed) await rmdir(p).catch(() => undefined);
      throw e;
    }
    await this.writeMeta(name, { sizeBytes: size, nrInodes, createdAt: new Date().toISOString() });
    this.log?.info({ guest: name, path: p, sizeBytes: size }, 'share mounted');
    return this.usage(name);
  }

  /**
   * Change the size of a mounted share in place (remount), files and open handles untouched. Shrinking below
   * the bytes or inodes in use throws HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE and changes nothing.
   */
  async resize(name: string, sizeBytes: number): Promise<ShareUsage> {
    requireRoot('resizing a share (mount -o remount)');
    const size = checkSize(sizeBytes);
    const p = this.path(name);
    const before = await this.usage(name);
    const nrInodes = defaultInodes(size);
    const refuse = (reason: string): HylicsError =>
      new HylicsError(
        'HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE',
        `cannot resize the share of ${name} to ${size} bytes: ${reason}; delete or evict files first (the share is unchanged)`,
        {
          name,
          requestedBytes: size,
          usedBytes: before.usedBytes,
          sizeBytes: before.sizeBytes,
          requestedInodes: nrInodes,
          inodesUsed: before.inodesUsed,
        },
      );
    if (before.usedBytes > size) throw refuse(`${before.usedBytes} bytes are in use`);
    if (before.inodesUsed > nrInodes) throw refuse(`${before.inodesUsed} inodes are in use (limit would be ${nrInodes})`);
    try {
      await remountTmpfs(p, { sizeBytes: size, nrInodes });
    } catch (e) {
      // files grew between our check and the remount: the kernel refused, nothing changed
      const now = await fsUsage(p).catch(() => before);
      if (size < before.sizeBytes && now.usedBytes > size) throw refuse(`${now.usedBytes} bytes are in use`);
      throw e;
    }
    const meta = await this.readMeta(name);
    await this.writeMeta(name, { sizeBytes: size, nrInodes, createdAt: meta?.createdAt ?? new Date().toISOString() });
    this.log?.info({ guest: name, fromBytes: before.sizeBytes, toBytes: size }, 'share resized');
    return this.usage(name);
  }

  /** Size, used and free bytes and inodes of a mounted share (statfs). HYLICS_ERR_SHARE_NOT_FOUND if not mounted. */
  async usage(name: string): Promise<ShareUsage> {
    const p = this.path(name);
    if (!(await isTmpfsMounted(p))) throw new HylicsError('HYLICS_ERR_SHARE_NOT_FOUND', `guest ${name} has no share mounted at ${p}`, { name, path: p });
    return { mounted: true, path: p, ...(await fsUsage(p)) };
  }

  /**
   * Unmount the share (its data is gone) and remove its mount point and share.json. Idempotent. A running
   * sandbox guest holds its own copy of the mount, so stop the guest first or its memory stays in use.
   */
  async destroy(name: string): Promise<void> {
    requireRoot('destroying a share (umount)');
    const p = this.path(name);
    // stacked mounts (someone mounted twice): take them all off
    for (const m of await mountsUnder(p)) await umountTmpfs(m.mountPoint);
    await rmdir(p).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    await rm(this.metaPath(name), { force: true });
    this.log?.info({ guest: name, path: p }, 'share destroyed');
  }

  /** Names of guests whose share is mounted now (from the mount table). */
  async list(): Promise<string[]> {
    const dir = join(this.stateDir, 'guests');
    const base = await realpath(dir).catch(() => dir); // the mount table has canonical paths
    const out = new Set<string>();
    for (const m of await mountsUnder(base, await readMounts())) {
      const rel = m.mountPoint.slice(base.length + 1).split('/');
      if (rel.length === 2 && rel[1] === 'share' && m.fsType === 'tmpfs') out.add(rel[0]!);
    }
    return [...out].sort();
  }

  /**
   * After a daemon restart: adopt the shares of `names` that are still mounted (their data is intact: a daemon
   * restart does not unmount), mount an empty tmpfs for each one that is missing (its old contents are gone:
   * logged as a warning), and report share mounts no name asked for (left alone).
   */
  async reconcile(names: string[]): Promise<ReconcileEntry[]> {
    const out: ReconcileEntry[] = [];
    const mounted = new Set(await this.list());
    for (const name of names) {
      if (mounted.has(name)) {
        const u = await this.usage(name);
        out.push({ name, outcome: 'present', sizeBytes: u.sizeBytes });
        this.log?.info({ guest: name, sizeBytes: u.sizeBytes, usedBytes: u.usedBytes }, 'share still mounted: adopted with its data');
        continue;
      }
      const meta = await this.readMeta(name);
      const size = meta?.sizeBytes ?? this.fallbackSizeBytes;
      try {
        await this.create(name, size);
        out.push({ name, outcome: 'remounted', sizeBytes: size });
        this.log?.warn({ guest: name, sizeBytes: size }, 'share was not mounted (host reboot or manual umount?): mounted an empty one; its previous contents are lost');
      } catch (e) {
        out.push({ name, outcome: 'failed', error: (e as Error).message });
        this.log?.error({ guest: name, err: (e as Error).message }, 'share was not mounted and could not be re-mounted');
      }
    }
    for (const name of mounted) {
      if (!names.includes(name)) {
        out.push({ name, outcome: 'orphan' });
        this.log?.warn({ guest: name, path: this.path(name) }, 'a share is mounted for a guest the registry does not know: left in place');
      }
    }
    return out;
  }

  private async readMeta(name: string): Promise<ShareMeta | undefined> {
    try {
      const m = JSON.parse(await readFile(this.metaPath(name), 'utf8')) as ShareMeta;
      return typeof m.sizeBytes === 'number' ? m : undefined;
    } catch { return undefined; }
  }

  private async writeMeta(name: string, meta: ShareMeta): Promise<void> {
    const f = this.metaPath(name);
    const tmp = `${f}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(meta) + '\n', { mode: 0o600 });
    await rename(tmp, f);
  }
}
