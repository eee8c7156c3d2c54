// Which files below a directory some process holds open, and whether for writing: a walk of /proc/<pid>/fd
// (links to the open files, as the owning process names them) and /proc/<pid>/fdinfo (the open flags). It sees
// the processes of this pid namespace (all of a sandbox guest's, all of a microVM's), which is what the guest's
// tiered store needs: a file open for writing must never be moved, and moving a file open for reading frees no
// share memory until the reader closes it.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface OpenFileUse {
  readers: number;
  writers: number;
}

const O_ACCMODE = 0o3;
const DELETED = ' (deleted)';

/**
 * Open files whose path starts with `root` + '/', keyed by that path. Processes that vanish mid-walk, or whose
 * fds we may not read, are skipped. Synchronous on purpose: thousands of tiny /proc reads cost far less in one
 * go than as promise round trips (a few ms in a guest; tens of ms on a busy host).
 */
export async function openFilesUnder(root: string, procRoot = '/proc'): Promise<Map<string, OpenFileUse>> {
  return openFilesUnderSync(root, procRoot);
}

export function openFilesUnderSync(root: string, procRoot = '/proc'): Map<string, OpenFileUse> {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const out = new Map<string, OpenFileUse>();
  let pids: string[];
  try { pids = readdirSync(procRoot).filter((p) => /^\d+$/.test(p)); } catch { return out; }
  for (const pid of pids) {
    const fdDir = `${procRoot}/${pid}/fd`;
    let fds: string[];
    try { fds = readdirSync(fdDir); } catch { continue; }
    for (const fd of fds) {
      let target: string;
      try { target = readlinkSync(`${fdDir}/${fd}`); } catch { continue; }
      if (!target.startsWith(prefix) || target.endsWith(DELETED)) continue;
      let write = true; // unknown flags count as a writer: the safe side (never moved)
      try {
        const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`${procRoot}/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) write = (parseInt(m[1]!, 8) & O_ACCMODE) !== 0;
      } catch { /* fd closed meanwhile: keep the safe answer */ }
      const use = out.get(target) ?? { readers: 0, writers: 0 };
      if (write) use.writers++; else use.readers++;
      out.set(target, use);
    }
  }
  return out;
}
