// Algorithm 1 of the paper (§5.1) and the other share-size policies, behind one per-interval interface that the
// daemon and the simulator both drive: feed a Measurement when the control interval expires, get a Decision
// (next share size in bytes, next interval in seconds). Sizes are bytes at the interface and MiB inside (the
// RLS input Δm is in MiB so its gain is well scaled).
import { HylicsError } from '../errors/index.js';
import { ArrivalRateEstimator, ServiceModel, serviceTimeForResponse, type ServiceModelParams } from './queueing.js';
import { Rls, type RlsOptions } from './rls.js';
import { checkNumber, clamp } from './validate.js';

export const SCHEMES = ['static', 'adaptive', 'queue', 'aq', 'improved', 'senpai', 'mom'] as const;
export type Scheme = (typeof SCHEMES)[number];

const MiB = 1024 * 1024;

export interface Measurement {
  /** Seconds since the controller started (monotonic, non-decreasing). */
  time: number;
  /** Seconds this measurement covers; default: time since the previous measurement (or since 0). */
  interval?: number;
  /** Mean response time (s) of the tasks that completed in the interval; null (or NaN) if none did. */
  meanResponseTime: number | null;
  /** Tasks completed in the interval (informational; 0 with meanResponseTime null). */
  completions?: number;
  /** Tasks that arrived in the interval. */
  arrivals: number;
  /** Bytes in use in the share at the end of the interval. */
  shareUsedBytes: number;
  /** Current share size (limit) in bytes. */
  shareSizeBytes: number;
  /** Tasks that had to use the disk tier because the share was full (optional; improved/senpai use it). */
  fullFallbacks?: number;
}

export interface Decision {
  /** Next share size in bytes: always finite, within [minBytes, min(maxBytes, budget)]. */
  sizeBytes: number;
  /** Seconds until the next measurement is due (within [ciMin, ciMax], or the scheme's own period). */
  nextIntervalS: number;
  /** Whether this step changed the size by at least the actuation threshold. */
  actuated: boolean;
  /** What moved the size: 'hold', 'queue', 'rls', 'queue+rls', 'feedforward', 'probe', 'backoff', ... */
  reason: string;
  /** Current arrival-rate estimate (tasks/s). */
  lambda: number;
}

export interface ImprovedOptions {
  /** Set point for the mean response time as a fraction of the reference (margin for the tail). */
  setPointFraction?: number;
  /** Headroom over the observed share usage peak (fraction). */
  usageHeadroom?: number;
  /** Largest shrink per step as a fraction of the current size (rate limit). */
  maxShrinkFraction?: number;
  /** Deadband on the response-time error (s): inside it the RLS correction does not act. */
  deadband?: number;
  /** Half-life (s) of the fast arrival-rate estimate used for feed-forward. */
  fastHalfLife?: number;
  /** Longest control interval (s) of the improved scheme (the eviction window is 60 s). */
  ciMax?: number;
  /** The orchestrator's idle-eviction window (s): a segment stays in the share this long after its last request. */
  evictAfterS?: number;
  /** No shrinking for this long (s) after a growth. */
  dwellS?: number;
  /**
   * While tasks arrive, hold at least the "knee" of E[X|m]: the size that gets this fraction of the service time an
   * unbounded share could save, m = c·f/(1 − f) for a + b/(m + c) (0 = off).
   */
  kneeFraction?: number;
}

export interface ControllerConfig {
  scheme: Scheme;
  /** Reference delay τ (s): the SLO the mean response time is regulated to. Paper: 10. */
  reference?: number;
  minBytes: number;
  maxBytes: number;
  /** Starting size (default: minBytes; the static scheme keeps it). */
  initialBytes?: number;
  /** Host-wide budget for this guest (bytes); can be changed later with setBudget. */
  budgetBytes?: number;
  /** R_thresh (s): a change in R at least this large triggers the queueing re-prediction (default 2.5, docs/controller.md). */
  rThresh?: number;
  /** m_thresh (bytes): smaller adjustments are not applied and the interval doubles (default 10 MiB, one segment). */
  mThreshBytes?: number;
  /** ci_min / ci_max (s). Paper: 30 / 240. */
  ciMin?: number;
  ciMax?: number;
  /** First control interval (s); default ciMin. */
  ciInitial?: number;
  /** E[X|m] = a + b/(m + c), m in MiB (required by queue, aq, improved). */
  serviceModel?: ServiceModelParams;
  rls?: RlsOptions;
  /** Half-life (s) of the arrival-rate estimate (default 120). */
  arrivalHalfLife?: number;
  improved?: ImprovedOptions;
}

export interface ControllerState {
  scheme: Scheme;
  sizeBytes: number;
  ci: number;
  lambda: number;
  theta: number[];
  actuations: number;
  steps: number;
}

export class ShareController {
  readonly scheme: Scheme;
  readonly reference: number;
  readonly minMiB: number;
  readonly maxMiB: number;
  readonly rThresh: number;
  readonly mThresh: number;
  readonly ciMin: number;
  readonly ciMax: number;
  readonly model: ServiceModel | null;
  readonly rls: Rls | null;
  private readonly lambdaEst: ArrivalRateEstimator;
  private readonly fastLambda: ArrivalRateEstimator;
  private readonly imp: Required<ImprovedOptions>;
  private budgetMiB: number;
  private m: number; // current size, MiB
  private ci: number;
  private lastTime = 0;
  private lastR: number | null = null;
  private usagePeak: number[] = [];
  private senpaiBackoff = 0;
  private offset = 0;
  private offsetKnown = false;
  private lastFastLambda = 0;
  private perArrival: number | null = null;
  private lastGrowAt = -Infinity;
  actuations = 0;
  steps = 0;

  constructor(cfg: ControllerConfig) {
    if (!SCHEMES.includes(cfg.scheme)) {
      throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `scheme must be one of ${SCHEMES.join(', ')}, got ${String(cfg.scheme)}`, { param: 'scheme', value: String(cfg.scheme) });
    }
    this.scheme = cfg.scheme;
    this.reference = checkNumber('reference', cfg.reference ?? 10, { min: 0, minExclusive: true, max: 1e6 });
    const minB = checkNumber('minBytes', cfg.minBytes, { min: 0, minExclusive: true, max: 2 ** 53 });
    const maxB = checkNumber('maxBytes', cfg.maxBytes, { min: minB, max: 2 ** 53 });
    this.minMiB = minB / MiB;
    this.maxMiB = maxB / MiB;
    this.budgetMiB = cfg.budgetBytes === undefined ? Infinity : checkNumber('budgetBytes', cfg.budgetBytes, { min: 0, minExclusive: true }) / MiB;
    this.rThresh = checkNumber('rThresh', cfg.rThresh ?? 2.5, { min: 0 });
    this.mThresh = checkNumber('mThreshBytes', cfg.mThreshBytes ?? 10 * MiB, { min: 0 }) / MiB;
    this.ciMin = checkNumber('ciMin', cfg.ciMin ?? 30, { min: 0, minExclusive: true, max: 86400 });
    this.ciMax = checkNumber('ciMax', cfg.ciMax ?? 240, { min: 0, minExclusive: true, max: 86400 });
    if (this.ciMin > this.ciMax) {
      throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `ciMin (${this.ciMin} s) must not exceed ciMax (${this.ciMax} s)`, { param: 'ciMin', ciMin: this.ciMin, ciMax: this.ciMax });
    }
    this.ci = clamp(checkNumber('ciInitial', cfg.ciInitial ?? this.ciMin, { min: 0, minExclusive: true }), this.ciMin, this.ciMax);
    const needsModel = this.scheme === 'queue' || this.scheme === 'aq' || this.scheme === 'improved';
    if (needsModel && cfg.serviceModel === undefined) {
      throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `scheme ${this.scheme} needs serviceModel {a, b, c} (E[X|m] = a + b/(m + c), m in MiB)`, { param: 'serviceModel' });
    }
    this.model = cfg.serviceModel ? new ServiceModel(cfg.serviceModel) : null;
    const imp = cfg.improved ?? {};
    this.imp = {
      setPointFraction: checkNumber('improved.setPointFraction', imp.setPointFraction ?? 0.85, { min: 0.05, max: 1 }),
      usageHeadroom: checkNumber('improved.usageHeadroom', imp.usageHeadroom ?? 0, { min: 0, max: 10 }),
      maxShrinkFraction: checkNumber('improved.maxShrinkFraction', imp.maxShrinkFraction ?? 0.4, { min: 0, max: 1 }),
      deadband: checkNumber('improved.deadband', imp.deadband ?? 1, { min: 0 }),
      fastHalfLife: checkNumber('improved.fastHalfLife', imp.fastHalfLife ?? 30, { min: 0, minExclusive: true }),
      ciMax: checkNumber('improved.ciMax', imp.ciMax ?? 60, { min: 0, minExclusive: true }),
      evictAfterS: checkNumber('improved.evictAfterS', imp.evictAfterS ?? 60, { min: 0 }),
      dwellS: checkNumber('improved.dwellS', imp.dwellS ?? 60, { min: 0 }),
      kneeFraction: checkNumber('improved.kneeFraction', imp.kneeFraction ?? 0.8, { min: 0, max: 0.99 }),
    };
    if (this.scheme === 'adaptive' || this.scheme === 'aq') this.rls = new Rls(cfg.rls);
    else if (this.scheme === 'improved') this.rls = new Rls({ forgetting: 0.95, resetOnError: this.reference, maxTrace: 1e5, gainSign: -1, minGain: 1e-3, ...cfg.rls });
    else this.rls = null;
    this.lambdaEst = new ArrivalRateEstimator({ halfLife: cfg.arrivalHalfLife ?? 60 });
    this.fastLambda = new ArrivalRateEstimator({ halfLife: this.imp.fastHalfLife });
    this.m = this.bound(cfg.initialBytes === undefined ? this.minMiB : checkNumber('initialBytes', cfg.initialBytes, { min: 0 }) / MiB);
  }

  get sizeBytes(): number { return Math.round(this.m * MiB); }
  get interval(): number { return this.ci; }
  get lambda(): number { return this.lambdaEst.value; }

  /** Change the host budget for this guest; the size is clamped on the next step (and returned now). */
  setBudget(bytes: number): number {
    this.budgetMiB = checkNumber('budgetBytes', bytes, { min: 0, minExclusive: true }) / MiB;
    this.m = this.bound(this.m);
    return this.sizeBytes;
  }

  state(): ControllerState {
    return { scheme: this.scheme, sizeBytes: this.sizeBytes, ci: this.ci, lambda: this.lambda, theta: this.rls ? [...this.rls.theta] : [], actuations: this.actuations, steps: this.steps };
  }

  private bound(m: number): number {
    const cap = Math.min(this.maxMiB, this.budgetMiB);
    const lo = Math.min(this.minMiB, cap);
    if (Number.isNaN(m)) return clamp(this.m ?? lo, lo, cap);
    return clamp(m, lo, cap);
  }

  /** One control step: the measurement of the interval that just ended -> the next size and interval. */
  step(meas: Measurement): Decision {
    const v = validateMeasurement(meas, this.lastTime);
    const dt = v.interval;
    this.lastTime = v.time;
    this.steps++;
    this.lambdaEst.observe(v.arrivals, dt);
    this.fastLambda.observe(v.arrivals, dt);
    // the real size may differ from our last decision (the orchestrator could not shrink, someone resized)
    if (Math.abs(v.shareSizeBytes / MiB - this.m) > Math.max(1, this.mThresh)) this.m = this.bound(v.shareSizeBytes / MiB);
    const before = this.m;
    let reason = 'hold';
    let actuated = false;
    switch (this.scheme) {
      case 'static':
        break;
      case 'queue':
      case 'adaptive':
      case 'aq': {
        const r = v.meanResponseTime;
        const useQueue = this.scheme !== 'adaptive';
        const useRls = this.scheme !== 'queue';
        let queueMoved = false;
        // lines 6-10: queueing re-prediction on a large change in R (and at the first measurement)
        if (useQueue && r !== null && (this.lastR === null || Math.abs(r - this.lastR) >= this.rThresh)) {
          // line 7: update λ (done above, every interval) and the queueing model (offset from this measurement)
          this.updateModelOffset(r, this.lambdaEst.value);
          const mhat = this.predictSize(this.reference, this.lambdaEst.value);
          if (Math.abs(mhat - this.m) > 1e-9) { this.m = mhat; queueMoved = true; reason = 'queue'; }
        }
        let dm = 0;
        if (useRls && r !== null) {
          // lines 11-13: RLS on the residual y(k) = R(k) - τ, then Δm from θᵀφ(k) = 0
          this.rls!.update(r - this.reference);
          const u = this.rls!.solveInput(0);
          dm = u === null ? 0 : u;
        }
        // lines 14-19: apply Δm only if it is large enough; halve ci on an actuation, double it otherwise
        if (useRls) {
          // m <- m + Δm within the bounds: a Δm the bounds swallow is no actuation (the interval grows)
          const applied = this.bound(this.m + dm) - this.m;
          if (Math.abs(applied) >= this.mThresh && applied !== 0) {
            this.m = this.bound(this.m + dm);
            reason = queueMoved ? 'queue+rls' : 'rls';
            this.ci = Math.max(this.ci / 2, this.ciMin);
          } else if (queueMoved && Math.abs(this.m - before) >= this.mThresh) {
            // the re-prediction itself changed the size by at least m_thresh (line 9): that is an actuation too,
            // the same rule as the queue-only scheme below (watch closely after any size change)
            this.ci = Math.max(this.ci / 2, this.ciMin);
          } else this.ci = Math.min(this.ci * 2, this.ciMax);
          if (r !== null) this.rls!.commit(this.m - before);
        } else {
          // queue only: the re-prediction is the actuation
          if (queueMoved && Math.abs(this.m - before) >= this.mThresh) this.ci = Math.max(this.ci / 2, this.ciMin);
          else this.ci = Math.min(this.ci * 2, this.ciMax);
        }
        if (r !== null) this.lastR = r;
        break;
      }
      case 'improved':
        reason = this.stepImproved(v);
        break;
      case 'senpai':
        reason = this.stepSenpai(v);
        break;
      case 'mom':
        reason = this.stepMom(v);
        break;
    }
    this.m = this.bound(this.m);
    // an actuation is any change of the size (the baselines move in steps smaller than m_thresh)
    actuated = Math.abs(this.m - before) > 1e-6;
    if (actuated) this.actuations++;
    return { sizeBytes: this.sizeBytes, nextIntervalS: this.ci, actuated, reason: actuated ? reason : 'hold', lambda: this.lambdaEst.value };
  }

  /**
   * Online update of the queueing model (Algorithm 1, line 7): the service time the measurement implies,
   * X = R / (1 + λR) (Eq. 2 solved for E[X]), minus the offline E[X|m] at the current size, is kept as an
   * additive offset (smoothed, bounded to ±50 % of E[X|m]) so the prediction tracks interference and load the
   * offline fit did not see.
   */
  private updateModelOffset(r: number, lambda: number): void {
    if (!(r > 0) || !Number.isFinite(r)) return;
    const implied = r / (1 + lambda * r);
    const ex = this.model!.meanService(this.m);
    const d = clamp(implied - ex, -0.5 * ex, 0.5 * ex);
    this.offset = this.offsetKnown ? this.offset + 0.5 * (d - this.offset) : d;
    this.offsetKnown = true;
  }

  /** Solve Eq. 2 for m at rate λ (with the online offset); saturation or an unreachable target gives the largest allowed size. */
  private predictSize(target: number, lambda: number): number {
    const ex = serviceTimeForResponse(target, lambda) - this.offset;
    const m = this.model!.sizeForService(ex);
    return this.bound(Number.isFinite(m) ? m : Infinity);
  }

  // Improved scheme: the smallest share that keeps the predicted mean response time at a set point below τ
  // (margin for the tail), from the inverted predictor at a fast arrival-rate estimate (feed-forward: it acts on
  // a load change before the response time shows it) with the online model offset; capped by the working set
  // (memory the 60 s eviction window cannot fill is wasted), unless tasks fell back to disk because the share
  // was full; an SLO guard that grows while R is above the set point (RLS with forgetting, covariance reset and
  // b0 < 0 enforced proposes the step, at least +50 % when the share was full); deadband (m_thresh), shrink rate
  // limit, interval halving/doubling capped at ciMaxImproved, ci_min at once on a load jump.
  private stepImproved(v: ValidMeasurement): string {
    const imp = this.imp;
    const fast = this.fastLambda.value;
    const slow = this.lambdaEst.value;
    // the more pessimistic of the two rates (a noise-gated variant, fast only when above slow by 2 sd of Poisson
    // noise, saved ~3 MiB on workload #1 but lost more on the SLO metrics: docs/controller.md)
    const lam = Math.max(fast, slow);
    const setPoint = this.reference * imp.setPointFraction;
    const usedMiB = v.shareUsedBytes / MiB;
    this.usagePeak.push(usedMiB);
    if (this.usagePeak.length > 3) this.usagePeak.shift();
    const fell = (v.fullFallbacks ?? 0) > 0;
    const r = v.meanResponseTime;
    if (r !== null) this.updateModelOffset(r, slow > 0 ? slow : lam);
    // working-set demand: (MiB per arrival) · λ · (eviction window + R), the MiB per arrival learned while the
    // share was not full (then usage is the real demand, not the limit)
    const hold = imp.evictAfterS + (r ?? this.reference);
    if (slow > 0 && usedMiB > 0) {
      const sample = usedMiB / (slow * hold);
      // not full: usage is the demand (average it); full: usage is only a lower bound of the demand
      if (!fell) this.perArrival = this.perArrival === null ? sample : this.perArrival + 0.3 * (sample - this.perArrival);
      else if (this.perArrival === null || sample > this.perArrival) this.perArrival = this.perArrival === null ? sample : this.perArrival + 0.3 * (sample - this.perArrival);
    }
    const peakUsed = Math.max(...this.usagePeak);
    const demand = this.perArrival === null ? (fell ? peakUsed * 1.5 : peakUsed) : Math.max(this.perArrival * lam * hold, fell ? 0 : peakUsed);
    const wsNeed = demand * (1 + imp.usageHeadroom);
    // feed-forward: the predictor (only a pessimistic online offset is trusted) says how much memory the set point
    // needs at the fast λ; more than the working set can never help, so cap there
    const savedOffset = this.offset;
    this.offset = Math.max(0, this.offset);
    const mq = this.predictSize(setPoint, lam);
    this.offset = savedOffset;
    let target = Math.min(mq, wsNeed);
    let reason = mq <= wsNeed ? 'feedforward' : 'working-set';
    if (imp.kneeFraction > 0 && v.arrivals > 0) {
      const knee = Math.min(wsNeed, this.model!.kneeSize(imp.kneeFraction));
      if (knee > target) { target = knee; reason = 'knee'; }
    }
    // feedback: above the set point with tasks falling back to disk, the predictor was optimistic: give the
    // working set (the RLS, b0 < 0 enforced, proposes the step when it asks for more); without fallbacks a bigger
    // share cannot help, so hold
    if (r !== null && this.rls) {
      const err = r - setPoint;
      this.rls.update(err);
      if (err > imp.deadband && fell) {
        const u = this.rls.solveInput(0);
        const up = Math.max(wsNeed, u !== null && u > 0 ? Math.min(this.m + u, wsNeed * 1.5) : this.m);
        if (up > target) { target = up; reason = 'slo-guard'; }
      }
    }
    target = this.bound(target);
    if (target < this.m && v.time - this.lastGrowAt < imp.dwellS) target = this.m;
    const next = target < this.m ? Math.max(target, this.m * (1 - imp.maxShrinkFraction)) : target;
    // deadband m_thresh, except that a return to the floor is always allowed (idle memory is pure cost)
    const toFloor = next < this.m && next <= this.bound(0) + 1e-9;
    const dm = Math.abs(next - this.m) >= this.mThresh || toFloor ? next - this.m : 0;
    if (dm > 0) this.lastGrowAt = v.time;
    const jump = this.lastFastLambda > 0 && fast > 1.3 * this.lastFastLambda;
    this.lastFastLambda = fast;
    if (dm !== 0) {
      this.m = next;
      this.ci = Math.max(this.ci / 2, this.ciMin);
    } else this.ci = Math.min(this.ci * 2, this.ciMax, imp.ciMax);
    if (jump) this.ci = this.ciMin;
    if (this.rls && r !== null) this.rls.commit(dm);
    return reason;
  }

  // Senpai-like (Meta): probe the limit down by a small step while pressure stays under target, back off
  // (grow by up to 100 %) in proportion to the excess when it does not. Pressure here is the fraction of the
  // interval's tasks that fell back to the disk tier because the share was full (the share's "memory stall").
  private stepSenpai(v: ValidMeasurement): string {
    this.ci = this.ciMin; // fixed period
    const arrivals = Math.max(1, v.arrivals);
    const pressure = (v.fullFallbacks ?? 0) / arrivals;
    const target = 0.1;
    const r = v.meanResponseTime;
    const slo = r !== null && r > this.reference;
    if (pressure > target || slo) {
      const excess = Math.min(1, Math.max(pressure - target, slo ? (r! - this.reference) / this.reference : 0) / target);
      this.m = this.m * (1 + Math.max(0.1, excess));
      this.senpaiBackoff = 3;
      return 'backoff';
    }
    if (this.senpaiBackoff > 0) { this.senpaiBackoff--; return 'hold'; }
    this.m = this.m * 0.99;
    return 'probe';
  }

  // MoM-like (oVirt): fixed-period rules on share occupancy with a 5 % max step and a small deadband: grow when
  // the share is nearly full, shrink when mostly free.
  private stepMom(v: ValidMeasurement): string {
    this.ci = this.ciMin;
    const occ = this.m > 0 ? v.shareUsedBytes / MiB / this.m : 1;
    if (occ > 0.9) { this.m *= 1.05; return 'grow'; }
    if (occ < 0.6) { this.m *= 0.95; return 'shrink'; }
    return 'hold';
  }
}

interface ValidMeasurement {
  time: number;
  interval: number;
  meanResponseTime: number | null;
  arrivals: number;
  shareUsedBytes: number;
  shareSizeBytes: number;
  fullFallbacks?: number;
}

function validateMeasurement(m: Measurement, lastTime: number): ValidMeasurement {
  const bad = (field: string, value: unknown, why: string): never => {
    throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_MEASUREMENT', `measurement.${field} ${why}, got ${String(value)}`, { field, value: String(value) });
  };
  if (typeof m !== 'object' || m === null) bad('', m, 'must be an object');
  const num = (field: keyof Measurement, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return bad(field, v, 'must be a finite number >= 0');
    return v;
  };
  const time = num('time', m.time);
  if (time < lastTime) bad('time', time, `must not go backwards (previous ${lastTime})`);
  const interval = m.interval === undefined ? time - lastTime : num('interval', m.interval);
  const r = m.meanResponseTime;
  let meanResponseTime: number | null = null;
  if (r !== null && r !== undefined && !Number.isNaN(r)) {
    if (typeof r !== 'number' || r < 0) bad('meanResponseTime', r, 'must be null or a number >= 0');
    // +Infinity is a saturated profiler reading: keep it finite and large (3x the busiest plausible value)
    meanResponseTime = Number.isFinite(r) ? r : 1e6;
  }
  if (m.completions !== undefined && m.completions === 0) meanResponseTime = null;
  const out: ValidMeasurement = {
    time,
    interval,
    meanResponseTime,
    arrivals: num('arrivals', m.arrivals),
    shareUsedBytes: num('shareUsedBytes', m.shareUsedBytes),
    shareSizeBytes: num('shareSizeBytes', m.shareSizeBytes),
  };
  if (m.fullFallbacks !== undefined) out.fullFallbacks = num('fullFallbacks', m.fullFallbacks);
  return out;
}
