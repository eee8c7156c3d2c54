// Which files below a directory some process holds open, and whether for writing: a walk of /proc/<pid>/fd
// (links to the open files, as the owning process names them) and /proc/<pid>/fdinfo (the open flags). It sees
// the processes of this pid namespace (all of a sandbox guest's, all of a microVM's), which is what the guest's
// tiered store needs: a file open for writing must never be moved, and moving a file open for reading frees no
// share memory until the reader closes it.
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface OpenFileUse {
  readers: number;
  writers: number;
}

const O_ACCMODE = 0o3;
const DELETED = ' (deleted)';

/** Open files whose path starts with `root` + '/', keyed by that path. Processes that vanish mid-walk, or whose
 * fds we may not read, are skipped. */
export async function openFilesUnder(root: string, procRoot = '/proc'): Promise<Map<string, OpenFileUse>> {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const out = new Map<string, OpenFileUse>();
  let pids: string[];
  try { pids = (await readdir(procRoot)).filter((p) => /^\d+$/.test(p)); } catch { return out; }
  for (const pid of pids) {
    let fds: string[];
    try { fds = await readdir(`${procRoot}/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let target: string;
      try { target = await readlink(`${procRoot}/${pid}/fd/${fd}`); } catch { continue; }
      if (!target.startsWith(prefix) || target.endsWith(DELETED)) continue;
      let write = true; // unknown flags count as a writer: the safe side (never moved)
      try {
        const info = await readFile(`${procRoot}/${pid}/fdinfo/${fd}`, 'utf8');
        const m = /^flags:\s*([0-7]+)/m.exec(info);
        if (m) write = (parseInt(m[1]!, 8) & O_ACCMODE) !== 0;
      } catch { /* fd closed meanwhile: keep the safe answer */ }
      const use = out.get(target) ?? { readers: 0, writers: 0 };
      if (write) use.writers++; else use.readers++;
      out.set(target, use);
    }
  }
  return out;
}
