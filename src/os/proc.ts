// Process facts from /proc: start times (to tell a live process from a reused pid), parents, namespaces.
import { readFileSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/pid/stat), or undefined if it is gone. */
export async function processStartTime(pid: number): Promise<number | undefined> {
  const st = await readStat(pid);
  return st?.startTime;
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  startTime: number;
}

export async function readStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try { text = await readFile(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const close = text.lastIndexOf(')'); // comm may contain spaces and parens
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return {
    pid,
    comm,
    state: f[0]!,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    startTime: Number(f[19]),
  };
}

/** Is `pid` running (not a zombie) and, when given, the same process that started at `startTime`? */
export async function isProcessAlive(pid: number, startTime?: number): Promise<boolean> {
  const st = await readStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** The first 8 hex digits of this boot's id (/proc/sys/kernel/random/boot_id), or '0' when unreadable. */
let bootCache: string | undefined;
export function bootTag(): string {
  if (bootCache === undefined) {
    try { bootCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/[^0-9a-f]/g, '').slice(0, 8) || '0'; } catch { bootCache = '0'; }
  }
  return bootCache;
}

/** This process as a name part that a reused pid does not match: `<pid>.<start time in ticks>.<boot tag>`, read once
 * (synchronously: callers make file names with it). */
let selfTag: string | undefined;
export function processTag(): string {
  if (selfTag === undefined) {
    let start = 0;
    try {
      const text = readFileSync('/proc/self/stat', 'utf8');
      start = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]) || 0;
    } catch { /* no /proc: start 0, the pid and boot still tell most apart */ }
    selfTag = `${process.pid}.${start}.${bootTag()}`;
  }
  return selfTag;
}

/** Whether the process a processTag() names is running: same boot, same pid, same start time (a pid reused by
 * another process has a later start time). A bare pid (names from before the tag) is checked by pid alone;
 * anything else is not a live process. */
export async function processTagAlive(tag: string): Promise<boolean> {
  if (tag === processTag()) return true;
  if (/^\d+$/.test(tag)) return isProcessAlive(Number(tag));
  const m = /^(\d+)\.(\d+)\.([0-9a-f]+)$/.exec(tag);
  if (!m || m[3] !== bootTag()) return false;
  return isProcessAlive(Number(m[1]), Number(m[2]));
}

/** Kernel clock ticks per second in /proc/pid/stat (USER_HZ: 100 on every Linux architecture Hylics runs on). */
export const USER_HZ = 100;

/** CPU time (user + system, s) a process has used, or undefined if it is gone (fields 14 and 15 of /proc/pid/stat). */
export async function processCpuSeconds(pid: number): Promise<number | undefined> {
  let text: string;
  try { text = await readFile(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
  return (Number(f[11]) + Number(f[12])) / USER_HZ;
}

/** Pids whose parent is `ppid` (no /proc/pid/task/tid/children on every kernel, so scan /proc). */
export async function childrenOf(ppid: number): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = await readStat(Number(e));
    if (st && st.ppid === ppid) out.push(st.pid);
  }
  return out;
}

/** The pid of `pid` in each nested pid namespace, outermost first (NSpid line of /proc/pid/status). */
export async function nsPids(pid: number): Promise<number[] | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^NSpid:\s+(.*)$/m.exec(status);
    return m ? m[1]!.trim().split(/\s+/).map(Number) : [pid];
  } catch { return undefined; }
}

/** Namespace identity (e.g. "net:[4026531840]") of a process, or undefined. */
export async function namespaceOf(pid: number | 'self', kind: 'net' | 'mnt' | 'pid' | 'pid_for_children' | 'cgroup'): Promise<string | undefined> {
  try { return await readlink(`/proc/${pid}/ns/${kind}`); } catch { return undefined; }
}

/** The command line of `pid` with its arguments joined by spaces, or undefined if it is gone. */
export async function processCmdline(pid: number): Promise<string | undefined> {
  try { return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' '); } catch { return undefined; }
}

/** Does this kernel give this process pid and network namespaces? */
export async function hasPidAndNetNamespaces(): Promise<boolean> {
  return (await namespaceOf('self', 'pid')) !== undefined && (await namespaceOf('self', 'net')) !== undefined;
}

/** Send a signal; false when the process does not exist. */
export function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try { process.kill(pid, sig); return true; } catch { return false; }
}

/**
 * The pid of a process that listens on the Unix socket bound at `path` (the socket's inode from /proc/net/unix,
 * then the process holding `socket:[inode]` among its fds, as `ss -xlp` finds it), or undefined. Used to find the
 * QEMU of a VM that another manager (libvirt) started, through the channel socket it binds.
 */
export async function unixListenerPid(path: string): Promise<number | undefined> {
  let table: string;
  try { table = await readFile('/proc/net/unix', 'utf8'); } catch { return undefined; }
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; St 01 = listening
    if (f.length >= 8 && f.slice(7).join(' ') === path && f[5] === '01') inodes.add(f[6]!);
  }
  if (inodes.size === 0) return undefined;
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let fds: string[];
    try { fds = await readdir(`/proc/${e}/fd`); } catch { continue; }
    for (const fd of fds) {
      const target = await readlink(`/proc/${e}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return Number(e);
    }
  }
  return undefined;
}
