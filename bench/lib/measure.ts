// Small measurement helpers shared by the benchmarks that run real guests.
import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** The p-quantile (0..1) of an ascending array: the element at floor(p * n), NaN for none. */
export const pct = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** CPU seconds a guest's cgroup (path relative to the hierarchy root) has used so far: v1 cpuacct or v2 cpu.stat. */
export function cgroupCpuSeconds(cgroup: string): number {
  const v1 = `/sys/fs/cgroup/cpuacct/${cgroup}/cpuacct.usage`;
  if (existsSync(v1)) return Number(readFileSync(v1, 'utf8')) / 1e9;
  const v2 = `/sys/fs/cgroup/${cgroup}/cpu.stat`;
  if (existsSync(v2)) return Number(/usage_usec (\d+)/.exec(readFileSync(v2, 'utf8'))?.[1] ?? 0) / 1e6;
  return NaN;
}

/** The cgroup.procs file of a guest's cgroup (v1 cpu, v2, or v2 under unified), or '' when none is found. */
export function cgroupProcsFile(cgroup: string): string {
  return [`/sys/fs/cgroup/cpu/${cgroup}/cgroup.procs`, `/sys/fs/cgroup/${cgroup}/cgroup.procs`, `/sys/fs/cgroup/unified/${cgroup}/cgroup.procs`].find((f) => existsSync(f)) ?? '';
}

/** Pids in `procsFile` and in the cgroup.procs of every cgroup below it (a guest exec runs in a child cgroup). */
export function cgroupPids(procsFile: string): string[] {
  const pids: string[] = [];
  const walk = (dir: string): void => {
    try { pids.push(...readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)); } catch { return; }
    let kids: string[] = [];
    try {
      kids = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch { return; }
    for (const k of kids) walk(`${dir}/${k}`);
  };
  walk(procsFile.replace(/\/cgroup\.procs$/, ''));
  return pids;
}

/** Context switches so far (voluntary + involuntary) of every thread of every process in the cgroup of `procsFile`
 *  and the cgroups below it. */
export function ctxSwitches(procsFile: string): number {
  let n = 0;
  const pids = cgroupPids(procsFile);
  if (pids.length === 0) return 0;
  for (const pid of pids) {
    let tids: string[] = [];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        n += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(s)?.[1] ?? 0) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(s)?.[1] ?? 0);
      } catch { /* exited */ }
    }
  }
  return n;
}

/** Busy and total CPU time of the whole host so far (/proc/stat, seconds): busy = all but idle and iowait. */
/** Busy and total seconds of each CPU from /proc/stat (cpu0, cpu1, ...; busy = all but idle and iowait). */
export function perCpuSeconds(): Array<{ busy: number; total: number }> {
  const out: Array<{ busy: number; total: number }> = [];
  for (const m of readFileSync('/proc/stat', 'utf8').matchAll(/^cpu(\d+)\s+(.*)$/gm)) {
    const f = m[2]!.trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    out[Number(m[1])] = { busy: (total - f[3]! - f[4]!) / 100, total: total / 100 };
  }
  return out;
}

export function hostCpuSeconds(): { busy: number; total: number } {
  const f = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
  const ticks = 100; // USER_HZ: /proc/stat counts in clock ticks of 1/100 s on Linux
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  return { busy: (total - f[3]! - f[4]!) / ticks, total: total / ticks };
}
