// The host profiler's task view: what guests report through track() (task start/end, response time) becomes
// per-guest, per-task statistics over a sliding window, the input the controller will read each interval.
import type { TaskStats } from '../core/api.js';

export interface TaskReport {
  name: string;
  /** Response time in milliseconds (end - start as the guest measured it). */
  responseMs: number;
  ok: boolean;
  /** Host receive time (ms since epoch). */
  at: number;
}

export const MAX_TASK_NAMES = 256;
const WINDOW = 1024; // reports kept per task, enough for a p95 over any control interval

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

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

export class Profiler {
  private readonly guests = new Map<string, Map<string, TaskWindow>>();
  private readonly listeners: Array<(guest: string, r: TaskReport) => void> = [];

  onReport(fn: (guest: string, r: TaskReport) => void): void {
    this.listeners.push(fn);
  }

  /** false when the report was refused (the guest already has MAX_TASK_NAMES task names). */
  record(guest: string, r: TaskReport): boolean {
    let tasks = this.guests.get(guest);
    if (!tasks) this.guests.set(guest, (tasks = new Map()));
    let w = tasks.get(r.name);
    if (!w) {
      if (tasks.size >= MAX_TASK_NAMES) return false; // a hostile guest cannot grow host memory with endless task names
      tasks.set(r.name, (w = new TaskWindow()));
    }
    w.add(r);
    for (const fn of this.listeners) fn(guest, r);
    return true;
  }

  taskNames(guest: string): string[] {
    return [...(this.guests.get(guest)?.keys() ?? [])];
  }

  stats(guest: string): TaskStats[] {
    const tasks = this.guests.get(guest);
    if (!tasks) return [];
    return [...tasks.entries()].map(([name, w]) => {
      const sorted = w.recent.map((r) => r.responseMs).sort((a, b) => a - b);
      return { name, count: w.count, failed: w.failed, meanMs: w.count ? w.sum / w.count : 0, p95Ms: percentile(sorted, 0.95), lastMs: w.last };
    });
  }

  /** Reports of one guest received since `sinceMs` (for a control interval). */
  since(guest: string, sinceMs: number): TaskReport[] {
    const tasks = this.guests.get(guest);
    if (!tasks) return [];
    return [...tasks.values()].flatMap((w) => w.recent.filter((r) => r.at >= sinceMs));
  }

  forget(guest: string): void {
    this.guests.delete(guest);
  }
}
