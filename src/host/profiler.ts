// The host profiler's task view: what guests report through track() / `hylics task run` (task start and end,
// response time, which tier served the input) becomes per-guest, per-task statistics: a sliding window for
// `guest show`, and per-interval aggregates that the control loop drains every control interval (arrivals,
// completions, mean and p95 response time, memory-tier hits and disk-tier misses). A guest is hostile: absurd
// times are rejected and counted, floods are rate-limited and counted, task names are bounded.
import type { TaskStats } from '../core/api.js';

export interface TaskReport {
  name: string;
  /** Response time in milliseconds (end - start as the guest measured it). */
  responseMs: number;
  ok: boolean;
  /** Host receive time (ms since epoch). */
  at: number;
  /** Which tier the task's input came from, when the guest said so. */
  tier?: 'memory' | 'disk';
}

/** One task event as the channel delivers it (unchecked: it comes from the guest). */
export interface RawTaskEvent { kind?: unknown; name?: unknown; responseMs?: unknown; ok?: unknown; tier?: unknown }

export const MAX_TASK_NAMES = 256;
const WINDOW = 1024; // reports kept per task, enough for a p95 over any control interval
/** A task longer than a day is a broken clock or a lie, not a measurement. */
export const MAX_TASK_MS = 86_400_000;
/** Token bucket per guest: sustained task events per second, and the burst it may send at once. */
export const REPORT_RATE_PER_S = 500;
export const REPORT_BURST = 2000;
/** Response times kept per task and interval for its p95 (beyond: the mean still counts every task). */
const INTERVAL_SAMPLES = 4096;

export type RejectReason = 'absurd' | 'rate' | 'names';

class TaskWindow {
  count = 0;
  failed = 0;
  sum = 0;
  last = 0;
  readonly recent: TaskReport[] = [];
  add(r: TaskReport): void {
    this.count++;
    if (!r.ok) this.failed++;
    this.sum += r.responseMs;
    this.last = r.responseMs;
    this.recent.push(r);
    if (this.recent.length > WINDOW) this.recent.shift();
  }
}

/** What happened to one task name in one control interval. */
export interface IntervalTask {
  arrivals: number;
  completions: number;
  sumMs: number;
  samples: number[];
  /** Completions whose input came from the memory tier (the share) / the disk tier. */
  memory: number;
  disk: number;
  /** Summed response times (ms) of those memory-tier / disk-tier completions. */
  memorySumMs: number;
  diskSumMs: number;
}

export interface IntervalStats {
  arrivals: number;
  completions: number;
  meanMs: number | null;
  p95Ms: number | null;
  memory: number;
  disk: number;
  /** Mean response time (ms) of the memory-tier / disk-tier completions; null without any. */
  memoryMeanMs: number | null;
  diskMeanMs: number | null;
  /** Hit ratio of the tier reports (memory / (memory + disk)); null without tier reports. */
  hitRatio: number | null;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

interface GuestTasks {
  tasks: Map<string, TaskWindow>;
  interval: Map<string, IntervalTask>;
  tokens: number;
  refilledAt: number;
  rejected: Record<RejectReason, number>;
  /** Task names the guest sends start events for (their arrivals are the starts, else the completions). */
  starters: Set<string>;
}

const emptyInterval = (): IntervalTask =>
  ({ arrivals: 0, completions: 0, sumMs: 0, samples: [], memory: 0, disk: 0, memorySumMs: 0, diskSumMs: 0 });

export class Profiler {
  private readonly guests = new Map<string, GuestTasks>();
  private readonly listeners: Array<(guest: string, r: TaskReport) => void> = [];
  private readonly rejectListeners: Array<(guest: string, reason: RejectReason) => void> = [];

  constructor(private readonly now: () => number = Date.now) {}

  onReport(fn: (guest: string, r: TaskReport) => void): void {
    this.listeners.push(fn);
  }

  onReject(fn: (guest: string, reason: RejectReason) => void): void {
    this.rejectListeners.push(fn);
  }

  private guest(guest: string): GuestTasks {
    let g = this.guests.get(guest);
    if (!g)
      this.guests.set(
        guest,
        (g = {
          tasks: new Map(),
          interval: new Map(),
          tokens: REPORT_BURST,
          refilledAt: this.now(),
          rejected: { absurd: 0, rate: 0, names: 0 },
          starters: new Set(),
        }),
      );
    return g;
  }

  private reject(guest: string, g: GuestTasks, reason: RejectReason): false {
    g.rejected[reason]++;
    for (const fn of this.rejectListeners) fn(guest, reason);
    return false;
  }

  /**
   * One task event from a guest (start or end), checked: false when it was refused (flood over the token bucket,
   * absurd time: negative, NaN, infinite or over a day; a new name past MAX_TASK_NAMES) and counted as such.
   */
  ingest(guest: string, ev: RawTaskEvent): boolean {
    const g = this.guest(guest);
    const now = this.now();
    g.tokens = Math.min(REPORT_BURST, g.tokens + ((now - g.refilledAt) / 1000) * REPORT_RATE_PER_S);
    g.refilledAt = now;
    if (g.tokens < 1) return this.reject(guest, g, 'rate');
    g.tokens -= 1;
    const name = typeof ev.name === 'string' && ev.name.length > 0 ? ev.name.slice(0, 64) : 'task';
    if (ev.kind === 'start') {
      const it = this.intervalOf(g, name);
      if (!it) return this.reject(guest, g, 'names');
      g.starters.add(name);
      it.arrivals++;
      return true;
    }
    const ms = typeof ev.responseMs === 'number' ? ev.responseMs : NaN;
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TASK_MS) return this.reject(guest, g, 'absurd');
    const r: TaskReport = { name, responseMs: ms, ok: ev.ok !== false, at: now };
    if (ev.tier === 'memory' || ev.tier === 'disk') r.tier = ev.tier;
    return this.record(guest, r) || this.reject(guest, g, 'names');
  }

  private intervalOf(g: GuestTasks, name: string): IntervalTask | undefined {
    let it = g.interval.get(name);
    if (!it) {
      if (!g.tasks.has(name) && g.tasks.size >= MAX_TASK_NAMES) return undefined;
      if (!g.tasks.has(name)) g.tasks.set(name, new TaskWindow());
      g.interval.set(name, (it = emptyInterval()));
    }
    return it;
  }

  /** false when the report was refused (the guest already has MAX_TASK_NAMES task names). */
  record(guest: string, r: TaskReport): boolean {
    const g = this.guest(guest);
    let w = g.tasks.get(r.name);
    if (!w) {
      // a hostile guest cannot grow host memory with endless task names
      if (g.tasks.size >= MAX_TASK_NAMES) return false;
      g.tasks.set(r.name, (w = new TaskWindow()));
    }
    w.add(r);
    const it = this.intervalOf(g, r.name)!;
    it.completions++;
    it.sumMs += r.responseMs;
    if (it.samples.length < INTERVAL_SAMPLES) it.samples.push(r.responseMs);
    if (r.tier === 'memory') { it.memory++; it.memorySumMs += r.responseMs; }
    else if (r.tier === 'disk') { it.disk++; it.diskSumMs += r.responseMs; }
    for (const fn of this.listeners) fn(guest, r);
    return true;
  }

  taskNames(guest: string): string[] {
    return [...(this.guests.get(guest)?.tasks.keys() ?? [])];
  }

  hasTask(guest: string, name: string): boolean {
    return this.guests.get(guest)?.tasks.has(name) ?? false;
  }

  rejected(guest: string): Record<RejectReason, number> {
    return { ...(this.guests.get(guest)?.rejected ?? { absurd: 0, rate: 0, names: 0 }) };
  }

  stats(guest: string): TaskStats[] {
    const g = this.guests.get(guest);
    if (!g) return [];
    return [...g.tasks.entries()].map(([name, w]) => {
      const sorted = w.recent.map((r) => r.responseMs).sort((a, b) => a - b);
      return {
        name,
        count: w.count,
        failed: w.failed,
        meanMs: w.count ? w.sum / w.count : 0,
        p95Ms: percentile(sorted, 0.95),
        lastMs: w.last,
      };
    });
  }

  /** Reports of one guest received since `sinceMs`. */
  since(guest: string, sinceMs: number): TaskReport[] {
    const g = this.guests.get(guest);
    if (!g) return [];
    return [...g.tasks.values()].flatMap((w) => w.recent.filter((r) => r.at >= sinceMs));
  }

  /**
   * The interval that just ended, for one task name (or all tasks with `task` null), and start a new one. Per task
   * the arrivals are its start events, or its completions when the guest reports only ends.
   */
  drain(guest: string, task: string | null): { all: IntervalStats; perTask: Map<string, IntervalStats> } {
    const g = this.guests.get(guest);
    const perTask = new Map<string, IntervalStats>();
    const sel: IntervalTask[] = [];
    for (const [name, it] of g?.interval ?? []) {
      const counted = g!.starters.has(name) ? it : { ...it, arrivals: it.completions };
      perTask.set(name, summarize([counted]));
      if (task === null || name === task) sel.push(counted);
    }
    g?.interval.clear();
    return { all: summarize(sel), perTask };
  }

  forget(guest: string): void {
    this.guests.delete(guest);
  }
}

function summarize(its: IntervalTask[]): IntervalStats {
  let arrivals = 0, completions = 0, sumMs = 0, memory = 0, disk = 0, memorySumMs = 0, diskSumMs = 0;
  const samples: number[] = [];
  for (const it of its) {
    arrivals += it.arrivals;
    completions += it.completions;
    sumMs += it.sumMs;
    memory += it.memory;
    disk += it.disk;
    memorySumMs += it.memorySumMs;
    diskSumMs += it.diskSumMs;
    for (const s of it.samples) samples.push(s);
  }
  samples.sort((a, b) => a - b);
  return {
    arrivals, completions,
    meanMs: completions > 0 ? sumMs / completions : null,
    p95Ms: samples.length > 0 ? percentile(samples, 0.95) : null,
    memory, disk,
    memoryMeanMs: memory > 0 ? memorySumMs / memory : null,
    diskMeanMs: disk > 0 ? diskSumMs / disk : null,
    hitRatio: memory + disk > 0 ? memory / (memory + disk) : null,
  };
}
