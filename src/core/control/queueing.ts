// The queueing-model predictor of §5.1: a guest is an M/G/1 processor-sharing queue, so its mean response time
// is R = E[X|m] / (1 - λ E[X|m]) (Eq. 1-2), independent of the service-time distribution beyond its mean.
// E[X|m], the mean service time with a share of m MiB, is fitted offline to the paper's "extended inversely
// proportional function" a + b / (m + c), which can be inverted in closed form.
import { HylicsError } from '../errors/index.js';
import { checkNumber } from './validate.js';

/**
 * Mean response time of an M/G/1-PS queue. At and beyond saturation (λ·E[X] >= 1) the queue has no steady
 * state: the mean grows without bound, so this returns +Infinity (never NaN or a negative number).
 */
export function psResponseTime(meanService: number, lambda: number): number {
  checkNumber('meanService', meanService, { min: 0 });
  checkNumber('lambda', lambda, { min: 0 });
  const rho = lambda * meanService;
  if (rho >= 1) return Infinity;
  return meanService / (1 - rho);
}

/** The mean service time that gives mean response time `target` at arrival rate λ: E[X] = τ / (1 + λτ). */
export function serviceTimeForResponse(target: number, lambda: number): number {
  checkNumber('target', target, { min: 0, minExclusive: true });
  checkNumber('lambda', lambda, { min: 0 });
  return target / (1 + lambda * target);
}

/** E[X|m] = a + b / (m + c), m in MiB, times in seconds. b > 0 means more memory gives shorter service. */
export interface ServiceModelParams { a: number; b: number; c: number }

export class ServiceModel {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  constructor(p: ServiceModelParams) {
    this.a = checkNumber('service model a', p.a);
    this.b = checkNumber('service model b', p.b);
    this.c = checkNumber('service model c', p.c, { min: 0, minExclusive: true });
  }

  /** Mean service time (s) with a share of m MiB (m < 0 is treated as 0). */
  meanService(m: number): number {
    const mm = Number.isFinite(m) && m > 0 ? m : 0;
    return this.a + this.b / (mm + this.c);
  }

  /**
   * The smallest share (MiB) that gets the fraction `f` (0 <= f < 1) of the service time an unbounded share saves:
   * (E[X|0] − E[X|m]) / (E[X|0] − a) = m/(m + c) = f, so m = c·f/(1 − f). 0 when memory does not help (b <= 0).
   */
  kneeSize(f: number): number {
    if (this.b <= 0 || !(f > 0)) return 0;
    return (this.c * Math.min(f, 0.99)) / (1 - Math.min(f, 0.99));
  }

  /**
   * The share size (MiB) whose mean service time is `ex`. Returns 0 when even an empty share is fast enough,
   * +Infinity when no finite share reaches it (ex at or beyond the asymptote a), never NaN.
   */
  sizeForService(ex: number): number {
    if (!Number.isFinite(ex)) return ex > 0 ? 0 : Infinity;
    if (this.b === 0) return ex >= this.a ? 0 : Infinity;
    if (this.b > 0) {
      if (ex <= this.a) return Infinity;
      const m = this.b / (ex - this.a) - this.c;
      return m > 0 ? m : 0;
    }
    // b < 0: service grows with memory (not a physical case here); the smallest share is the best one.
    return ex >= this.meanService(0) ? 0 : Infinity;
  }

  /** Predicted mean response time with m MiB at arrival rate λ (Infinity at saturation). */
  responseTime(m: number, lambda: number): number {
    return psResponseTime(this.meanService(m), lambda);
  }

  /** The share (MiB) that gives mean response time `target` at rate λ (0 if any size does, Infinity if none). */
  sizeForResponse(target: number, lambda: number): number {
    return this.sizeForService(serviceTimeForResponse(target, lambda));
  }

  toJSON(): ServiceModelParams { return { a: this.a, b: this.b, c: this.c }; }
}

export interface FitPoint { m: number; ex: number }
export interface FitResult {
  model: ServiceModel;
  rmse: number;
  r2: number;
  /**
   * Set when the unconstrained least-squares fit had b < 0 (a bigger share slower): the model is then the best fit
   * with b >= 0 (projected least squares), and this is the rejected unconstrained one, so callers can warn.
   */
  unconstrained?: ServiceModelParams;
}

/**
 * Least-squares fit of a + b/(m + c) with b >= 0 (memory never makes the task slower): for a fixed c the problem
 * is linear in (a, b) and, under the constraint, its optimum is the unconstrained one when that has b >= 0 and
 * otherwise b = 0, a = the mean (projected least squares on one bound); c is found by a golden-section search on
 * log c (the residual is smooth and, in practice, unimodal in c). A measurement whose best unconstrained fit
 * rises with m (a loaded machine, or a per-task cost that grows with the share) thus becomes a flat model — "the
 * share does not help" —, never one that tells the controller to shrink for speed; `unconstrained` says so.
 */
export function fitServiceModel(points: readonly FitPoint[]): FitResult {
  const pts = points.filter((p) => Number.isFinite(p.m) && Number.isFinite(p.ex) && p.m >= 0 && p.ex > 0);
  const distinct = new Set(pts.map((p) => p.m)).size;
  if (pts.length < 3 || distinct < 3) {
    throw new HylicsError('HYLICS_ERR_CONTROL_FIT_FAILED', `need at least 3 points with distinct sizes and finite positive times, got ${pts.length} usable (${distinct} distinct sizes)`, { points: pts.length, distinct });
  }
  const mean = pts.reduce((s, p) => s + p.ex, 0) / pts.length;
  const sst = pts.reduce((s, p) => s + (p.ex - mean) ** 2, 0);
  const solve = (c: number, constrained: boolean): { a: number; b: number; sse: number } => {
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    const n = pts.length;
    for (const p of pts) { const x = 1 / (p.m + c); sx += x; sy += p.ex; sxx += x * x; sxy += x * p.ex; }
    const den = n * sxx - sx * sx;
    let b = Math.abs(den) < 1e-300 ? 0 : (n * sxy - sx * sy) / den;
    if (constrained && b < 0) b = 0;
    const a = (sy - b * sx) / n;
    let sse = 0;
    for (const p of pts) sse += (p.ex - a - b / (p.m + c)) ** 2;
    return { a, b, sse };
  };
  const maxM = Math.max(...pts.map((p) => p.m));
  const search = (constrained: boolean): { a: number; b: number; c: number; sse: number } => {
    let lo = Math.log(1e-3 * Math.max(1, maxM));
    let hi = Math.log(100 * Math.max(1, maxM));
    // coarse scan first (guards against a non-unimodal residual), then golden section around the best cell
    const N = 60;
    let best = 0;
    let bestSse = Infinity;
    for (let i = 0; i <= N; i++) {
      const sse = solve(Math.exp(lo + ((hi - lo) * i) / N), constrained).sse;
      if (sse < bestSse) { bestSse = sse; best = i; }
    }
    const step = (hi - lo) / N;
    const center = lo + step * best;
    lo = center - step; hi = center + step;
    const g = (Math.sqrt(5) - 1) / 2;
    let x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo);
    let f1 = solve(Math.exp(x1), constrained).sse, f2 = solve(Math.exp(x2), constrained).sse;
    for (let i = 0; i < 80; i++) {
      if (f1 < f2) { hi = x2; x2 = x1; f2 = f1; x1 = hi - g * (hi - lo); f1 = solve(Math.exp(x1), constrained).sse; }
      else { lo = x1; x1 = x2; f1 = f2; x2 = lo + g * (hi - lo); f2 = solve(Math.exp(x2), constrained).sse; }
    }
    const c = Math.exp((lo + hi) / 2);
    return { ...solve(c, constrained), c };
  };
  const free = search(false);
  const fit = free.b >= 0 ? free : search(true);
  return {
    model: new ServiceModel({ a: fit.a, b: fit.b, c: fit.c }),
    rmse: Math.sqrt(fit.sse / pts.length),
    r2: sst > 0 ? 1 - fit.sse / sst : 1,
    ...(free.b < 0 ? { unconstrained: { a: free.a, b: free.b, c: free.c } } : {}),
  };
}

/**
 * Online arrival-rate estimate: an exponentially weighted mean of per-interval rates, weighted by interval
 * length (half-life in seconds), so short and long control intervals count for the time they cover.
 */
export class ArrivalRateEstimator {
  private rate: number | null;
  readonly halfLife: number;

  constructor(opts: { halfLife?: number; initialRate?: number } = {}) {
    this.halfLife = checkNumber('arrival halfLife', opts.halfLife ?? 120, { min: 0, minExclusive: true });
    this.rate = opts.initialRate === undefined ? null : checkNumber('initialRate', opts.initialRate, { min: 0 });
  }

  /** Add `arrivals` tasks seen over `seconds`; returns the new estimate (tasks per second). */
  observe(arrivals: number, seconds: number): number {
    if (!(seconds > 0) || !Number.isFinite(seconds) || !(arrivals >= 0) || !Number.isFinite(arrivals))
      return this.value;
    const r = arrivals / seconds;
    if (this.rate === null) this.rate = r;
    else {
      const w = 1 - Math.pow(0.5, seconds / this.halfLife);
      this.rate += w * (r - this.rate);
    }
    return this.rate;
  }

  get value(): number { return this.rate ?? 0; }
  get known(): boolean { return this.rate !== null; }

  /** The estimate as JSON (null before the first observation), and back (controller snapshots). */
  snapshot(): number | null { return this.rate; }
  restore(rate: number | null): void {
    this.rate = rate === null ? null : checkNumber('arrival rate', rate, { min: 0 });
  }
}
