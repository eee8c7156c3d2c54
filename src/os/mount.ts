// Reading the mount table (/proc/self/mountinfo) and plain mount/umount.
import { readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { runRaw, commandFailed } from './exec.js';

export interface MountEntry {
  id: number;
  parentId: number;
  /** major:minor of the file system */
  device: string;
  /** Path inside the file system that is mounted (a bind mount of a subdir has root != '/'). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse /proc/<pid>/mountinfo text (see proc(5)). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2]!,
      root: unescapeOctal(f[3]!),
      mountPoint: unescapeOctal(f[4]!),
      mountOptions: f[5]!.split(','),
      fsType: f[sep + 1]!,
      source: unescapeOctal(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

/** The mount table of this process' mount namespace (or of `pid`'s). */
export async function readMounts(pid: number | 'self' = 'self'): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
}

async function canonical(path: string): Promise<string> {
  try { return await realpath(path); } catch { return resolve(path); }
}

/** The mount whose mount point is exactly `path` (the topmost one if stacked), or undefined. */
export async function mountAt(path: string, mounts?: MountEntry[]): Promise<MountEntry | undefined> {
  const p = await canonical(path);
  const all = mounts ?? (await readMounts());
  let found: MountEntry | undefined;
  for (const m of all) if (m.mountPoint === p) found = m; // later lines are mounted on top
  return found;
}

export async function isMountpoint(path: string, mounts?: MountEntry[]): Promise<boolean> {
  return (await mountAt(path, mounts)) !== undefined;
}

/** Mounts at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string, mounts?: MountEntry[]): Promise<MountEntry[]> {
  const d = await canonical(dir);
  const all = mounts ?? (await readMounts());
  const prefix = d.endsWith('/') ? d : `${d}/`;
  return all.filter((m) => m.mountPoint === d || m.mountPoint.startsWith(prefix)).reverse();
}

/**
 * `mount` with the given args; failures become `code` (default HYLICS_ERR_OS_COMMAND_FAILED) with the kernel's words.
 */
export async function mount(args: string[], code: 'HYLICS_ERR_OS_COMMAND_FAILED' | 'HYLICS_ERR_SHARE_MOUNT_FAILED' = 'HYLICS_ERR_OS_COMMAND_FAILED'): Promise<void> {
  const r = await runRaw('mount', args);
  if (r.code !== 0) {
    const e = commandFailed('mount', args, r);
    throw code === 'HYLICS_ERR_OS_COMMAND_FAILED' ? e : new HylicsError(code, e.message, e.details);
  }
}

export interface UmountOptions { lazy?: boolean }

/** Unmount `path`. Busy -> HYLICS_ERR_SHARE_BUSY; not mounted -> no-op when `ifMounted`. */
export async function umount(path: string, opts: UmountOptions & { ifMounted?: boolean } = {}): Promise<void> {
  if (opts.ifMounted && !(await isMountpoint(path))) return;
  const args = opts.lazy ? ['-l', path] : [path];
  const r = await runRaw('umount', args);
  if (r.code === 0) return;
  if (/busy/i.test(r.stderr)) {
    throw new HylicsError('HYLICS_ERR_SHARE_BUSY', `cannot unmount ${path}: it is in use (${r.stderr.trim()})`, { path });
  }
  if (opts.ifMounted && /not mounted/i.test(r.stderr)) return;
  throw commandFailed('umount', args, r);
}
