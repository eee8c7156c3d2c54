// Guest-written log files (a microVM's serial console, a sandbox's init/agent output, QEMU's and virtiofsd's
// messages): a guest decides how much goes into them, so they are read from the end only (never whole: a console
// can be gigabytes) and kept under a size cap by rotation. Writers hold them open with O_APPEND (QEMU's chardev
// with append=on, the sandbox's and virtiofsd's stdio), so rotation is copy-then-truncate, as logrotate's
// copytruncate: the writer's next write lands at the new end. At most one rotated file (NAME.1) is kept.
import { constants as FS } from 'node:fs';
import { open, rename, stat, copyFile, truncate, rm } from 'node:fs/promises';
import { MiB } from '../core/units.js';

/** Default cap of one guest log file (the rotated copy adds as much again). */
export const GUEST_LOG_MAX_BYTES = 8 * MiB;
/** A tail never reads more than this from one file, however many lines are asked for. */
export const TAIL_MAX_BYTES = MiB;
const CHUNK = 64 * 1024;

/** The last `bytes` bytes of a file (fewer when it is smaller), read from the end; '' when it does not exist. */
export async function tailBytes(path: string, bytes: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return Buffer.alloc(0);
    const n = Math.min(bytes, st.size);
    const buf = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await fh.read(buf, got, n - got, st.size - n + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/**
 * The last `lines` lines of a file, read backwards in chunks until enough newlines (or TAIL_MAX_BYTES) are in.
 * Returns them without a trailing empty line; a first line cut by the byte limit is dropped.
 */
export async function tailLines(path: string, lines: number, maxBytes = TAIL_MAX_BYTES): Promise<string[]> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return [];
    size = st.size;
  } catch {
    return [];
  }
  let want = Math.min(CHUNK, size, maxBytes);
  for (;;) {
    const buf = await tailBytes(path, want);
    const text = buf.toString('utf8').replace(/\n$/, '');
    const all = text.split('\n');
    const complete = want >= size; // the whole file is in: the first line is whole too
    if (all.length > lines || complete || want >= maxBytes) {
      const usable = complete || all.length > lines ? all : all.slice(1);
      return usable.slice(-lines);
    }
    want = Math.min(want * 4, size, maxBytes);
  }
}

/**
 * Keep `path` under `maxBytes`: when it is larger, copy it to `path.1` (replacing the older rotation) and
 * truncate it. True when it rotated. A missing file is fine.
 */
export async function capLog(path: string, maxBytes = GUEST_LOG_MAX_BYTES): Promise<boolean> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    size = st.size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  const rotated = `${path}.1`;
  const tmp = `${rotated}.tmp`;
  await rm(tmp, { force: true });
  // a copy of at most the last maxBytes: a file that grew far past the cap (the daemon was down) is not copied whole
  if (size <= 2 * maxBytes) {
    await copyFile(path, tmp);
  } else {
    const fh = await open(tmp, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
    try { await fh.writeFile(await tailBytes(path, maxBytes)); } finally { await fh.close(); }
  }
  await rename(tmp, rotated);
  await truncate(path, 0);
  return true;
}
