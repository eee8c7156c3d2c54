// The closed-loop bench's goal verdicts with their noise (issue #9): per workload, bootstrap intervals (seeded, over
// the task list; paired by task index, since every scheme plays the same trace) of improved − aq on the share of
// tasks over the SLO and on p95, and of improved's and static-max's p95 minus the SLO. GB·h is one figure per run
// (sampled share size), not a per-task quantity, so it gets none.
import { bootstrap, bootstrapDiff, type BootstrapInterval, type BootstrapOptions } from './bootstrap.js';

export interface NoiseTask { i: number; responseS: number; code: number | null }

/**
 * Fewer tasks than this give no interval (null, "n/a" on the console): resampling a handful of tasks gives a
 * narrow interval that says nothing (one task: width 0), e.g. a loaded `--quick` run with 1 arrival per run.
 */
export const MIN_NOISE_TASKS = 10;

/** p95 by nearest rank, as the bench reports it. */
export function p95(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

export interface GoalNoise {
  /** improved − aq, share of tasks over the SLO (fraction; paired by task). */
  improvedMinusAqSloTaskFraction: BootstrapInterval | null;
  /** improved − aq, p95 (s; paired by task). */
  improvedMinusAqP95S: BootstrapInterval | null;
  /** improved's p95 − SLO (s). */
  improvedP95MinusSloS: BootstrapInterval | null;
  /** static-max's p95 − SLO (s). */
  staticMaxP95MinusSloS: BootstrapInterval | null;
  /** Tasks in the paired comparison (completed under both improved and aq). */
  pairedTasks: number;
  note: string;
}

const ok = (ts: readonly NoiseTask[]): NoiseTask[] => ts.filter((t) => t.code === 0);

export function goalNoise(
  runs: { staticMax?: readonly NoiseTask[]; aq?: readonly NoiseTask[]; improved?: readonly NoiseTask[] },
  sloS: number, o: BootstrapOptions = {},
): GoalNoise {
  const a: number[] = []; const b: number[] = [];
  if (runs.improved && runs.aq) {
    const byI = new Map(ok(runs.aq).map((t) => [t.i, t.responseS]));
    for (const t of ok(runs.improved)) {
      const r = byI.get(t.i);
      if (r !== undefined) { a.push(t.responseS); b.push(r); }
    }
  }
  const paired = a.length >= MIN_NOISE_TASKS;
  const over = (xs: readonly number[]): number => xs.filter((x) => x > sloS).length / xs.length;
  const vsSlo = (ts?: readonly NoiseTask[]): BootstrapInterval | null => {
    const xs = ts ? ok(ts).map((t) => t.responseS) : [];
    return xs.length >= MIN_NOISE_TASKS ? bootstrap(xs, (v) => p95(v) - sloS, o) : null;
  };
  return {
    improvedMinusAqSloTaskFraction: paired ? bootstrapDiff(a, b, over, { ...o, paired: true }) : null,
    improvedMinusAqP95S: paired ? bootstrapDiff(a, b, p95, { ...o, paired: true }) : null,
    improvedP95MinusSloS: vsSlo(runs.improved),
    staticMaxP95MinusSloS: vsSlo(runs.staticMax),
    pairedTasks: a.length,
    note: `percentile bootstrap, ${o.resamples ?? 2000} resamples of the task list, seed ${o.seed ?? 1}; `
      + `"within noise": the interval contains 0; none (null) with fewer than ${MIN_NOISE_TASKS} tasks`,
  };
}

/** One console line per workload: estimate [lo, hi] and "within noise" where the interval contains 0. */
export function formatGoalNoise(w: number, n: GoalNoise): string {
  const f = (x: BootstrapInterval | null, scale: number, unit: string, d: number): string => {
    if (!x) return `n/a (fewer than ${MIN_NOISE_TASKS} tasks)`;
    const s = (v: number): string => `${v * scale >= 0 ? '+' : ''}${(v * scale).toFixed(d)}`;
    return `${s(x.estimate)}${unit} [${Math.round(x.level * 100)} % ${s(x.lo)}, ${s(x.hi)}]${x.withinNoise ? ' within noise' : ''}`;
  };
  return `goal noise #${w} (${n.pairedTasks} paired tasks): improved − aq over SLO ${f(n.improvedMinusAqSloTaskFraction, 100, ' pts', 1)}, `
    + `p95 ${f(n.improvedMinusAqP95S, 1, ' s', 2)}; improved p95 − SLO ${f(n.improvedP95MinusSloS, 1, ' s', 2)}; `
    + `static-max p95 − SLO ${f(n.staticMaxP95MinusSloS, 1, ' s', 2)}`;
}
