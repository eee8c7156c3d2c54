// Bootstrap intervals for the benches' verdicts (pure, seeded): with a few dozen tasks per run, "improved at or
// below aq" can flip by one task, so a goal's plain verdict is shown beside the percentile interval of the
// difference over resamples of the task list, and "within noise" when that interval contains 0.
import { Rng } from '../../src/core/sim/rng.js';

/** Default resamples of the task list. */
export const BOOTSTRAP_RESAMPLES = 2000;
/** Default two-sided level of the interval (90 %). */
export const BOOTSTRAP_LEVEL = 0.9;
/** Default seed: the same data always gives the same interval. */
export const BOOTSTRAP_SEED = 1;

export interface BootstrapOptions {
  resamples?: number;
  level?: number;
  seed?: number;
}

export interface BootstrapInterval {
  /** The statistic on the data as given (the plain figure). */
  estimate: number;
  /** Percentile interval over the resamples at `level`. */
  lo: number;
  hi: number;
  level: number;
  resamples: number;
  /** The interval contains 0: the sign of the estimate is not established. */
  withinNoise: boolean;
}

function opts(o: BootstrapOptions): Required<BootstrapOptions> {
  const resamples = Math.trunc(o.resamples ?? BOOTSTRAP_RESAMPLES);
  const level = o.level ?? BOOTSTRAP_LEVEL;
  if (!(resamples >= 1)) throw new RangeError(`resamples must be >= 1, got ${o.resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${o.level}`);
  return { resamples, level, seed: o.seed ?? BOOTSTRAP_SEED };
}

function interval(estimate: number, stats: number[], o: Required<BootstrapOptions>): BootstrapInterval {
  const s = stats.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const at = (q: number): number =>
    (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.floor(q * s.length)))]!);
  const lo = at((1 - o.level) / 2);
  const hi = at(1 - (1 - o.level) / 2);
  return { estimate, lo, hi, level: o.level, resamples: o.resamples, withinNoise: !(lo > 0 || hi < 0) };
}

/** Interval of stat(xs) by resampling xs with replacement. */
export function bootstrap(
  xs: readonly number[], stat: (xs: readonly number[]) => number, o: BootstrapOptions = {},
): BootstrapInterval {
  const p = opts(o);
  const rng = new Rng(p.seed);
  const n = xs.length;
  const buf = new Array<number>(n);
  const stats: number[] = [];
  for (let r = 0; r < p.resamples && n > 0; r++) {
    for (let k = 0; k < n; k++) buf[k] = xs[Math.floor(rng.next() * n)]!;
    stats.push(stat(buf));
  }
  return interval(n > 0 ? stat(xs) : NaN, stats, p);
}

/**
 * Interval of stat(a) − stat(b). Paired (the default when both have the same length: a[k] and b[k] are the same
 * task, e.g. the same trace's k-th arrival under two schemes) resamples task indices once for both; otherwise each
 * list is resampled on its own.
 */
export function bootstrapDiff(
  a: readonly number[], b: readonly number[], stat: (xs: readonly number[]) => number,
  o: BootstrapOptions & { paired?: boolean } = {},
): BootstrapInterval {
  const p = opts(o);
  const paired = o.paired ?? a.length === b.length;
  if (paired && a.length !== b.length) throw new RangeError(`paired lists differ in length: ${a.length} vs ${b.length}`);
  const rng = new Rng(p.seed);
  const ba = new Array<number>(a.length);
  const bb = new Array<number>(b.length);
  const stats: number[] = [];
  for (let r = 0; r < p.resamples && a.length > 0 && b.length > 0; r++) {
    if (paired) {
      for (let k = 0; k < a.length; k++) { const j = Math.floor(rng.next() * a.length); ba[k] = a[j]!; bb[k] = b[j]!; }
    } else {
      for (let k = 0; k < a.length; k++) ba[k] = a[Math.floor(rng.next() * a.length)]!;
      for (let k = 0; k < b.length; k++) bb[k] = b[Math.floor(rng.next() * b.length)]!;
    }
    stats.push(stat(ba) - stat(bb));
  }
  return interval(a.length > 0 && b.length > 0 ? stat(a) - stat(b) : NaN, stats, p);
}
