// Counters of a guest's cgroup and of the host, read before and after each closed-loop run (docs/controller.md,
// "The simulator on workload #2"): what the guest's CPU quota, its memory limit and the rest of the host did to its
// per-task cost. The parsers and the difference are pure (test/bench/guest-stats.test.ts); snapshot() reads files and
// gives null for what it cannot read (another cgroup layout, a counter the kernel lacks).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Kernel clock ticks per second of /proc/stat (USER_HZ; 100 on Linux for every architecture Node runs on). */
export const USER_HZ = 100;
const CGROUP_ROOT = '/sys/fs/cgroup';

/** "key value" lines (cpu.stat, memory.stat, memory.events) as numbers; other lines skipped. */
export function parseKeyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(-?\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The host's CPU time from /proc/stat's "cpu" line (s): busy (all but idle and iowait) and stolen. */
export function parseProcStatCpu(text: string, hz = USER_HZ): { busyS: number; stealS: number } | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = v;
  return { busyS: (user + nice + system + irq + softirq + steal) / hz, stealS: steal / hz };
}

export interface StatsSnapshot {
  /** Wall clock (ms). */
  t: number;
  /** The guest cgroup's CPU time (s), CFS periods, throttled periods and throttled time (s). */
  guestCpuS: number | null;
  nrPeriods: number | null;
  nrThrottled: number | null;
  throttledS: number | null;
  /** Major page faults in the guest (pages read back from a file or swap), its memory peak (bytes) and how often
   * its memory limit was hit. */
  majorFaults: number | null;
  memoryPeakBytes: number | null;
  memoryLimitHits: number | null;
  /** The host's busy and stolen CPU time (s). */
  hostBusyS: number | null;
  hostStealS: number | null;
}

export interface RunStats {
  wallS: number;
  /** CPUs the guest used on average, and the rest of the host (daemon, bench, other load) on average. */
  guestCpus: number | null;
  othersCpus: number | null;
  /** Fraction of CFS periods in which the guest was throttled (its quota used up), and the time throttled (s). */
  throttledFraction: number | null;
  throttledS: number | null;
  majorFaults: number | null;
  memoryPeakMiB: number | null;
  memoryLimitHits: number | null;
  hostStealS: number | null;
}

const d = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);

/** What happened between two snapshots. */
export function runStats(a: StatsSnapshot, b: StatsSnapshot): RunStats {
  const wallS = (b.t - a.t) / 1000;
  const cpu = d(a.guestCpuS, b.guestCpuS);
  const busy = d(a.hostBusyS, b.hostBusyS);
  const periods = d(a.nrPeriods, b.nrPeriods);
  const thr = d(a.nrThrottled, b.nrThrottled);
  return {
    wallS,
    guestCpus: cpu === null || wallS <= 0 ? null : cpu / wallS,
    othersCpus: cpu === null || busy === null || wallS <= 0 ? null : Math.max(0, busy - cpu) / wallS,
    throttledFraction: periods === null || thr === null || periods <= 0 ? null : thr / periods,
    throttledS: d(a.throttledS, b.throttledS),
    majorFaults: d(a.majorFaults, b.majorFaults),
    memoryPeakMiB: b.memoryPeakBytes === null ? null : b.memoryPeakBytes / 1048576,
    memoryLimitHits: d(a.memoryLimitHits, b.memoryLimitHits),
    hostStealS: d(a.hostStealS, b.hostStealS),
  };
}

const read = (p: string): string | null => { try { return readFileSync(p, 'utf8'); } catch { return null; } };
const num = (s: string | null): number | null => (s === null || !/^\s*\d+\s*$/.test(s) ? null : Number(s));

/** The guest cgroup's and the host's counters now (cgroup v1: cpu, cpuacct, memory controllers; v2: one directory). */
export function snapshot(cgroup: string, version: 1 | 2): StatsSnapshot {
  const host = parseProcStatCpu(read('/proc/stat') ?? '');
  const base = { t: Date.now(), hostBusyS: host?.busyS ?? null, hostStealS: host?.stealS ?? null };
  if (version === 2) {
    const dir = join(CGROUP_ROOT, cgroup);
    const cpu = parseKeyValues(read(join(dir, 'cpu.stat')) ?? '');
    const mem = parseKeyValues(read(join(dir, 'memory.stat')) ?? '');
    const ev = parseKeyValues(read(join(dir, 'memory.events')) ?? '');
    return {
      ...base,
      guestCpuS: cpu.usage_usec !== undefined ? cpu.usage_usec / 1e6 : null,
      nrPeriods: cpu.nr_periods ?? null,
      nrThrottled: cpu.nr_throttled ?? null,
      throttledS: cpu.throttled_usec !== undefined ? cpu.throttled_usec / 1e6 : null,
      majorFaults: mem.pgmajfault ?? null,
      memoryPeakBytes: num(read(join(dir, 'memory.peak'))),
      memoryLimitHits: ev.max ?? null,
    };
  }
  const cpu = parseKeyValues(read(join(CGROUP_ROOT, 'cpu', cgroup, 'cpu.stat')) ?? '');
  const mem = parseKeyValues(read(join(CGROUP_ROOT, 'memory', cgroup, 'memory.stat')) ?? '');
  const usageNs = num(read(join(CGROUP_ROOT, 'cpuacct', cgroup, 'cpuacct.usage')));
  return {
    ...base,
    guestCpuS: usageNs === null ? null : usageNs / 1e9,
    nrPeriods: cpu.nr_periods ?? null,
    nrThrottled: cpu.nr_throttled ?? null,
    throttledS: cpu.throttled_time !== undefined ? cpu.throttled_time / 1e9 : null,
    majorFaults: mem.total_pgmajfault ?? mem.pgmajfault ?? null,
    memoryPeakBytes: num(read(join(CGROUP_ROOT, 'memory', cgroup, 'memory.max_usage_in_bytes'))),
    memoryLimitHits: num(read(join(CGROUP_ROOT, 'memory', cgroup, 'memory.failcnt'))),
  };
}

/** Start the memory peak afresh (v1: writing 0 resets max_usage and failcnt; v2's memory.peak cannot be reset
 * before Linux 6.12's per-opener reset, so it stays the peak since the guest started). Best effort. */
export function resetPeaks(cgroup: string, version: 1 | 2): void {
  if (version !== 1) return;
  for (const f of ['memory.max_usage_in_bytes', 'memory.failcnt']) {
    try { writeFileSync(join(CGROUP_ROOT, 'memory', cgroup, f), '0'); } catch { /* not writable: the peak is since start */ }
  }
}
