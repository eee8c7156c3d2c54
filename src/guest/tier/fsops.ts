// The durable file operations of the tiered store. A file changes tier by copy + fsync + rename (a link that never
// replaces) + directory fsync, then the source is removed if it is still the file copied: at every instant the name
// has at least one complete copy, so a reader finds the old or the new place (never a torn file), a put racing the
// move keeps its version, and an agent killed at any step loses nothing (recovery removes the temporary copy or the
// duplicate, see TierStore.recover).
import { constants as C, type BigIntStats } from 'node:fs';
import { link, lstat, mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { processTag } from '../../os/proc.js';
import { ASIDE_PREFIX, TMP_PREFIX } from './names.js';

const COPY_CHUNK_BYTES = 1024 * 1024;

/** Test points of a move, in order (tests kill the process at each one); 'put-placed' is a put's, after its new
 * file has its name and before the other tier's copy it replaced is removed. */
export type MoveStep = 'begin' | 'tmp-partial' | 'copied' | 'checked' | 'renamed' | 'unlinking' | 'aside' | 'unlinked' | 'put-placed';
export type MoveHook = (step: MoveStep, info: { src: string; dst: string; tmp: string }) => void | Promise<void>;

export type MoveOutcome = 'moved' | 'kept' | 'changed' | 'exists' | 'gone' | 'aborted';

/** Thrown inside a copy whose `aborted()` said yes (caught by moveFile: the temporary copy is removed). */
class CopyAborted extends Error {}

export const tmpName = (): string => `${TMP_PREFIX}${processTag()}-${randomBytes(6).toString('hex')}`;
const asideName = (): string => `${ASIDE_PREFIX}${processTag()}-${randomBytes(6).toString('hex')}`;

/** What a store-owned entry is (a temporary copy or an aside directory) and its owner's processTag (checked with
 * processTagAlive), or undefined for any other name. */
export function ownEntry(entry: string): { kind: 'tmp' | 'aside'; owner: string } | undefined {
  for (const [kind, prefix] of [['tmp', TMP_PREFIX], ['aside', ASIDE_PREFIX]] as const) {
    if (entry.startsWith(prefix)) return { kind, owner: entry.slice(prefix.length).split('-')[0]! };
  }
  return undefined;
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try { return await lstat(path, { bigint: true }); } catch (e) { if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined; throw e; }
}

/** fsync a directory so a rename or unlink in it is durable (a no-op success on tmpfs). */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, C.O_RDONLY | C.O_DIRECTORY);
  try { await h.sync(); } catch (e) { if (errno(e) !== 'EINVAL' && errno(e) !== 'ENOTSUP') throw e; } finally { await h.close(); }
}

/** mkdir -p of `parts` below `root`, refusing a symlink or non-directory on the way (TIER_SYMLINK). */
export async function ensureDirs(root: string, parts: string[], name: string): Promise<string> {
  let cur = root;
  for (const p of parts) {
    cur = join(cur, p);
    const st = await lstatOrUndefined(cur);
    if (!st) {
      try { await mkdir(cur, { mode: 0o755 }); } catch (e) { if (errno(e) !== 'EEXIST') throw e; }
      const again = await lstat(cur);
      if (!again.isDirectory()) throw symlinkError(name, cur);
    } else if (!st.isDirectory()) {
      throw symlinkError(name, cur);
    }
  }
  return cur;
}

/** A directory held open, named through /proc/self/fd: paths below `path` act on that directory whatever its name
 * or its parents became since it was opened (a link put in its place later is never followed). */
export interface PinnedDir {
  path: string;
  close: () => Promise<void>;
}

const PROC_FD = '/proc/self/fd';
let procFdWorks: boolean | undefined;

/**
 * Open `root`/`parts` one component at a time, each with O_DIRECTORY | O_NOFOLLOW relative to the one before
 * (through /proc/self/fd/N), creating missing ones when `create`: a symlink or non-directory on the way ->
 * TIER_SYMLINK, a missing one -> ENOENT. Without /proc (never in a Hylics guest) the plain path is returned after
 * the lstat walk of ensureDirs, as before.
 */
export async function pinDir(root: string, parts: string[], name: string, create: boolean): Promise<PinnedDir> {
  procFdWorks ??= await lstat(PROC_FD).then((st) => st.isDirectory(), () => false);
  if (!procFdWorks) {
    const path = create ? await ensureDirs(root, parts, name) : join(root, ...parts);
    return { path, close: async () => {} };
  }
  let fh = await open(root, C.O_RDONLY | C.O_DIRECTORY);
  try {
    let shown = root;
    for (const p of parts) {
      shown = join(shown, p);
      const at = `${PROC_FD}/${fh.fd}/${p}`;
      if (create) {
        try { await mkdir(at, { mode: 0o755 }); } catch (e) { if (errno(e) !== 'EEXIST') throw e; }
      }
      let next: import('node:fs/promises').FileHandle;
      try {
        next = await open(at, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      } catch (e) {
        if (errno(e) === 'ELOOP' || errno(e) === 'ENOTDIR') throw symlinkError(name, shown);
        throw e;
      }
      await fh.close();
      fh = next;
    }
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
  const held = fh;
  return { path: `${PROC_FD}/${held.fd}`, close: () => held.close() };
}

export function symlinkError(name: string, at: string): HylicsError {
  return new HylicsError('HYLICS_ERR_TIER_SYMLINK', `tier name ${JSON.stringify(name)}: ${at} is a symlink or not a directory/regular file; the store never follows links`, { name });
}

/** Open for reading without following a final link, without touching atime where allowed (the store keeps the
 * last use in atime itself). */
export async function openSource(path: string): Promise<import('node:fs/promises').FileHandle> {
  try { return await open(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NOATIME); } catch (e) {
    if (errno(e) !== 'EPERM' && errno(e) !== 'EINVAL') throw e;
    return open(path, C.O_RDONLY | C.O_NOFOLLOW);
  }
}

/** How far an mtime set through utimes (seconds as a double, truncated to ns by libuv) may be from the one meant:
 * 10 µs (measured up to 1.2 µs off). A write moves mtime by at least a tick of the kernel's coarse clock (ms). */
export const UTIMES_PRECISION_NS = 10_000n;
const absDiff = (a: bigint, b: bigint): bigint => (a > b ? a - b : b - a);
export const closeMtime = (a: bigint, b: bigint): boolean => absDiff(a, b) <= UTIMES_PRECISION_NS;

/** Same file, same content as far as stat tells: inode, device, size and mtime (within UTIMES_PRECISION_NS: the
 * store's own last-use updates rewrite mtime through utimes). */
export function sameContentStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && closeMtime(a.mtimeNs, b.mtimeNs);
}

/**
 * Write a complete, fsync'ed copy of `src` as a temporary file in `dstDir` with src's mode, owner, atime and mtime.
 * Returns its path. ENOSPC / EDQUOT -> HYLICS_ERR_TIER_FULL (the partial copy removed).
 */
export async function copyToTemp(src: string, srcStat: BigIntStats, dstDir: string, hook?: MoveHook, dstForHook = '', aborted?: () => boolean): Promise<string> {
  const tmp = join(dstDir, tmpName());
  const input = await openSource(src);
  let out: import('node:fs/promises').FileHandle | undefined;
  try {
    const st = await input.stat({ bigint: true });
    if (st.ino !== srcStat.ino || st.dev !== srcStat.dev) throw new HylicsError('HYLICS_ERR_TIER_NOT_FOUND', `${src} changed while opening`, { path: src });
    out = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, Number(srcStat.mode & 0o7777n));
    const buf = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
    let first = true;
    for (;;) {
      if (aborted?.()) throw new CopyAborted(`copy of ${src} aborted`);
      const { bytesRead } = await input.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      let off = 0;
      while (off < bytesRead) off += (await out.write(buf, off, bytesRead - off)).bytesWritten;
      if (first) { first = false; await hook?.('tmp-partial', { src, dst: dstForHook, tmp }); }
    }
    try { await out.chown(Number(srcStat.uid), Number(srcStat.gid)); } catch { /* not root: keeps ours */ }
    await out.chmod(Number(srcStat.mode & 0o7777n));
    await out.utimes(Number(srcStat.atimeNs) / 1e9, Number(srcStat.mtimeNs) / 1e9);
    await out.sync();
    await out.close();
    out = undefined;
    return tmp;
  } catch (e) {
    if (out) await out.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (errno(e) === 'ENOSPC' || errno(e) === 'EDQUOT') throw new HylicsError('HYLICS_ERR_TIER_FULL', `no room for ${src} in ${dstDir}`, { path: src, dir: dstDir });
    throw e;
  } finally {
    await input.close().catch(() => {});
  }
}

/**
 * Move `src` to `dst` (another file system): copy to a temporary file beside dst, fsync, rename to dst, fsync
 * dst's directory, unlink src, fsync src's directory. `dst`'s parent must exist.
 * - 'changed': src was written (or replaced) during the copy; nothing moved (src stays, the copy is removed).
 * - 'exists': dst exists already (a newer put or an interrupted move): nothing moved; the caller resolves it.
 * - 'gone': src vanished.
 * - 'aborted': `aborted()` said yes during the copy or just before the rename; nothing moved (the copy is removed).
 * - 'kept' (keepSource() said yes once dst was in place): dst is complete and in place, src is left for the
 *   caller to remove later (`finishMove`) — a reader handed src's path a moment ago can still open it.
 * dst is never replaced (a file that appears there during the move is newer: 'exists'), and src is removed only
 * while it is still the file copied (removeIfSame): a put racing the move keeps its version.
 * `stillMovable` is asked after the copy, just before the rename (e.g. "no writer opened it meanwhile").
 * `onSourceStat` gets the source's stat the copy was made from (for finishMove).
 */
export async function moveFile(
  src: string,
  dst: string,
  opts: {
    hook?: MoveHook;
    stillMovable?: () => Promise<boolean>;
    aborted?: () => boolean;
    keepSource?: () => boolean;
    onSourceStat?: (st: BigIntStats) => void;
  } = {},
): Promise<MoveOutcome> {
  await opts.hook?.('begin', { src, dst, tmp: '' });
  const st0 = await lstatOrUndefined(src);
  if (!st0) return 'gone';
  if (!st0.isFile()) throw new HylicsError('HYLICS_ERR_TIER_SYMLINK', `${src} is not a regular file`, { path: src });
  if (await lstatOrUndefined(dst)) return 'exists';
  opts.onSourceStat?.(st0);
  const dstDir = dirname(dst);
  let tmp: string;
  try {
    tmp = await copyToTemp(src, st0, dstDir, opts.hook, dst, opts.aborted);
  } catch (e) {
    if (e instanceof CopyAborted) return 'aborted';
    throw e;
  }
  const drop = async (): Promise<void> => {
    await unlink(tmp).catch(() => {});
  };
  await opts.hook?.('copied', { src, dst, tmp });
  if (opts.aborted?.()) {
    await drop();
    return 'aborted';
  }
  const st1 = await lstatOrUndefined(src);
  if (!st1) {
    await drop();
    return 'gone';
  }
  if (!sameContentStat(st0, st1) || (opts.stillMovable && !(await opts.stillMovable()))) {
    await drop();
    return 'changed';
  }
  const mine = await lstat(tmp, { bigint: true });
  await opts.hook?.('checked', { src, dst, tmp });
  // never over a file that appeared at dst since the check (a put, an app writing that path): that one is newer
  if (!(await commitNoReplace(tmp, dst))) return 'exists';
  await fsyncDir(dstDir);
  await opts.hook?.('renamed', { src, dst, tmp });
  // a put that replaced src (or an in-place write) after our check: the new version stays, our copy goes
  const st2 = await lstatOrUndefined(src);
  if (!st2) return 'moved'; // someone else removed the source: our complete copy is the file now
  if (!sameContentStat(st0, st2)) {
    await removeIfSame(dst, mine).catch(() => {});
    return 'changed';
  }
  if (opts.keepSource?.()) return 'kept';
  await opts.hook?.('unlinking', { src, dst, tmp });
  const removed = await removeIfSame(src, st0, (aside) => opts.hook?.('aside', { src, dst, tmp: aside }));
  if (removed === 'differs') {
    // replaced between the check and the removal: that version stays (put back), our copy goes
    await removeIfSame(dst, mine).catch(() => {});
    return 'changed';
  }
  await opts.hook?.('unlinked', { src, dst, tmp });
  return 'moved';
}

/** Errors of link(2) on a file system without hard links (then: check, rename). */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK', 'EXDEV']);

/**
 * Give the complete file `tmp` the name `dst` unless a file has that name already: link(2) never replaces, so a
 * file put at dst after the caller's checks is never overwritten by an older copy; then the temporary name goes.
 * False (tmp removed) when dst exists. A file system without hard links falls back to check + rename.
 */
export async function commitNoReplace(tmp: string, dst: string): Promise<boolean> {
  try {
    await link(tmp, dst);
  } catch (e) {
    if (errno(e) === 'EEXIST') {
      await unlink(tmp).catch(() => {});
      return false;
    }
    if (!NO_LINKS.has(errno(e) ?? '')) throw e;
    if (await lstatOrUndefined(dst)) {
      await unlink(tmp).catch(() => {});
      return false;
    }
    await rename(tmp, dst);
    return true;
  }
  await unlink(tmp);
  return true;
}

/**
 * Remove `path` only while it is the file `expect` describes (sameContentStat): it is renamed aside first (atomic:
 * a file put at `path` after the caller's check is never the one removed), into a fresh directory
 * `.hylics-aside-<owner>-<random>/` beside it under its own base name, checked there, then unlinked. A different
 * file found aside is given its name back (giveBack: the newer one wins if a file took the name meanwhile). A
 * process killed while a file is aside leaves it there under its name: recovery gives it back (TierStore.recover).
 */
export async function removeIfSame(path: string, expect: BigIntStats, onAside?: (aside: string) => void | Promise<void>): Promise<'removed' | 'gone' | 'differs'> {
  const dir = dirname(path);
  const asideDir = join(dir, asideName());
  await mkdir(asideDir, { mode: 0o700 });
  const aside = join(asideDir, basename(path));
  try {
    try {
      await rename(path, aside);
    } catch (e) {
      if (errno(e) === 'ENOENT') return 'gone';
      throw e;
    }
    await onAside?.(aside);
    const st = await lstat(aside, { bigint: true });
    if (sameContentStat(expect, st)) {
      await unlink(aside);
      return 'removed';
    }
    await giveBack(aside, path);
    return 'differs';
  } finally {
    // fails while something is still aside (an error on the way): recovery gives that back
    await rmdir(asideDir).catch(() => {});
    await fsyncDir(dir).catch(() => {});
  }
}

/**
 * Give the file renamed aside to `aside` its name `path` back. The name free -> it gets it (link, never replacing);
 * the name taken by the same file (a give-back interrupted between link and unlink) -> the aside name goes; taken by
 * another file -> the newer mtime (ns) keeps the name, the other goes. A directory at `path` -> the file stays aside
 * ('kept'). Returns whether `aside`'s file has the name now.
 */
export async function giveBack(aside: string, path: string): Promise<'restored' | 'dropped' | 'kept'> {
  const a = await lstat(aside, { bigint: true });
  for (let tries = 0; tries < 3; tries++) {
    if (a.isFile()) {
      try {
        await link(aside, path);
        await unlink(aside);
        return 'restored';
      } catch (e) {
        if (errno(e) !== 'EEXIST' && !NO_LINKS.has(errno(e) ?? '')) throw e;
      }
    }
    const cur = await lstatOrUndefined(path);
    if (!cur) {
      if (!a.isFile() || tries === 2) { await rename(aside, path); return 'restored'; }
      continue; // gone since the link failed: link again
    }
    if (cur.ino === a.ino && cur.dev === a.dev) {
      await unlink(aside);
      return 'restored';
    }
    if (cur.isDirectory()) return 'kept';
    if (!cur.isFile() || a.mtimeNs > cur.mtimeNs) {
      await rename(aside, path); // the newer version (or a file over a link an app left there)
      return 'restored';
    }
    await unlink(aside);
    return 'dropped';
  }
  return 'kept';
}

/**
 * The last step of a move made with keepSource: unlink `src` only while it is still the file the copy was made
 * from (`st0`: same inode, size, mtime) and `dst` still exists with its size — never the only copy. Returns
 * whether src was removed ('unlinked' hook point after it).
 */
export async function finishMove(src: string, dst: string, st0: BigIntStats, hook?: MoveHook): Promise<boolean> {
  const st = await lstatOrUndefined(src);
  if (!st || !sameContentStat(st0, st)) return false;
  const d = await lstatOrUndefined(dst);
  if (!d?.isFile() || d.size !== st0.size) return false;
  if ((await removeIfSame(src, st0)) !== 'removed') return false;
  await hook?.('unlinked', { src, dst, tmp: '' });
  return true;
}
