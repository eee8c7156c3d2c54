// The share-size controller: one per-interval interface that the daemon and the simulator both drive (feed a
// Measurement when the control interval expires, get a Decision: next share size in bytes, next interval in
// seconds) in front of a table of policies, one per scheme (./policies/index.ts: Algorithm 1 of the paper §5.1
// and the others). The controller validates, estimates λ, keeps the bounds and counts; the policy decides.
// Sizes are bytes at the interface and MiB inside (the RLS input Δm is in MiB so its gain is well scaled).
import { HylicsError } from '../errors/index.js';
import { ArrivalRateEstimator, ServiceModel, type ServiceModelParams } from './queueing.js';
import type { RlsOptions } from './rls.js';
import { checkNumber, clamp } from './validate.js';
import { OnlineModel, type Policy, type PolicyContext, type ValidMeasurement } from './policy.js';
import { POLICIES, SCHEMES, improvedOptions, type ImprovedOptions, type Scheme } from './policies/index.js';
import { badSnapshot, nullableNum, num, obj, type Json } from './snapshot.js';
import { MiB } from '../units.js';

export { DEFAULT_SCHEME } from './policies/index.js';
export { SCHEMES, POLICIES, type Scheme, type ImprovedOptions };

/** The controller's arrival-rate half-life (s): a minute, two ci_min intervals of the paper. */
export const DEFAULT_ARRIVAL_HALF_LIFE_S = 60;

export interface Measurement {
  /** Seconds since the controller started (monotonic, non-decreasing). */
  time: number;
  /** Seconds this measurement covers; default: time since the previous measurement (or since 0). */
  interval?: number;
  /** Mean response time (s) of the tasks that completed in the interval; null (or NaN) if none did. */
  meanResponseTime: number | null;
  /**
   * 95th percentile (s) of the response times of the tasks that completed in the interval; null (or absent) if
   * none did or it is not measured (the improved scheme then judges the SLO risk from the mean and the model).
   */
  p95ResponseTime?: number | null;
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
  /**
   * The interval's completions served from the memory tier (the share) and from the disk tier, with their mean
   * response times (s; null when none): the improved scheme learns from them whether the share is faster at all.
   */
  memoryTierTasks?: number;
  memoryTierMeanS?: number | null;
  diskTierTasks?: number;
  diskTierMeanS?: number | null;
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
  /**
   * R_thresh (s): a change in R at least this large triggers the queueing re-prediction (default 2.5,
   * docs/controller.md).
   */
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
  /** Half-life (s) of the arrival-rate estimate (default DEFAULT_ARRIVAL_HALF_LIFE_S, 60). */
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

/** Bumped when the snapshot's shape changes: an older one is refused (the controller then starts cold). */
export const SNAPSHOT_VERSION = 1;

export interface ControllerSnapshot {
  v: number;
  scheme: Scheme;
  /** The size (MiB, unrounded: some policies move in fractions of a MiB). */
  sizeMiB: number;
  ci: number;
  /** The controller's clock (s) at its last step. */
  time: number;
  actuations: number;
  steps: number;
  lambda: number | null;
  model: { offset: number; known: boolean } | null;
  policy: Json;
}

export class ShareController implements PolicyContext {
  readonly scheme: Scheme;
  readonly reference: number;
  readonly minMiB: number;
  readonly maxMiB: number;
  readonly rThresh: number;
  readonly mThresh: number;
  readonly ciMin: number;
  readonly ciMax: number;
  readonly model: OnlineModel | null;
  private readonly policy: Policy;
  private readonly lambdaEst: ArrivalRateEstimator;
  private budgetMiB: number;
  /** Current size (MiB); moved by the policy within a step. */
  m: number;
  /** Next control interval (s); moved by the policy within a step. */
  ci: number;
  private lastTime = 0;
  actuations = 0;
  steps = 0;

  constructor(cfg: ControllerConfig) {
    const scheme = cfg.scheme;
    if (!(SCHEMES as readonly string[]).includes(scheme)) {
      throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `scheme must be one of ${SCHEMES.join(', ')}, got ${String(scheme)}`, { param: 'scheme', value: String(scheme) });
    }
    this.scheme = scheme;
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
    const spec = POLICIES[scheme];
    if (spec.needsModel && cfg.serviceModel === undefined) {
      throw new HylicsError('HYLICS_ERR_CONTROL_INVALID_PARAM', `scheme ${scheme} needs serviceModel {a, b, c} (E[X|m] = a + b/(m + c), m in MiB)`, { param: 'serviceModel' });
    }
    this.model = cfg.serviceModel ? new OnlineModel(new ServiceModel(cfg.serviceModel)) : null;
    const improved = improvedOptions(cfg.improved);
    this.policy = spec.create({ reference: this.reference, improved, ...(cfg.rls ? { rls: cfg.rls } : {}) });
    this.lambdaEst = new ArrivalRateEstimator({ halfLife: cfg.arrivalHalfLife ?? DEFAULT_ARRIVAL_HALF_LIFE_S });
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
    return {
      scheme: this.scheme,
      sizeBytes: this.sizeBytes,
      ci: this.ci,
      lambda: this.lambda,
      theta: this.policy.theta(),
      actuations: this.actuations,
      steps: this.steps,
    };
  }

  /**
   * What this controller has learned (λ, the online E[X|m] offset, the policy's state: RLS θ and F, working set,
   * ...), its size, interval and clock, as JSON; `restore` on a controller built from the same config resumes it.
   */
  snapshot(): ControllerSnapshot {
    return {
      v: SNAPSHOT_VERSION,
      scheme: this.scheme,
      sizeMiB: this.m,
      ci: this.ci,
      time: this.lastTime,
      actuations: this.actuations,
      steps: this.steps,
      lambda: this.lambdaEst.snapshot(),
      model: this.model ? this.model.snapshot() : null,
      policy: this.policy.snapshot(),
    };
  }

  /**
   * Resume from a snapshot of a controller of the same scheme: the next measurement's time must be at or after
   * its `time`. Every field is checked first; on a malformed or foreign snapshot this throws
   * HYLICS_ERR_CONTROL_INVALID_PARAM and the controller stays as it was (cold).
   */
  restore(snap: unknown): void {
    const o = obj('', snap);
    if (o.v !== SNAPSHOT_VERSION) badSnapshot('v', o.v);
    if (o.scheme !== this.scheme) badSnapshot('scheme', o.scheme);
    const size = num('sizeMiB', o.sizeMiB, { min: 0 });
    const ci = num('ci', o.ci, { min: 0 });
    const time = num('time', o.time, { min: 0 });
    const actuations = num('actuations', o.actuations, { min: 0, integer: true });
    const steps = num('steps', o.steps, { min: 0, integer: true });
    const lambda = nullableNum('lambda', o.lambda, { min: 0 });
    if (this.model === null && o.model !== null) badSnapshot('model', o.model);
    // the parts that can still refuse, each undone if a later one does
    const before = { model: this.model?.snapshot(), policy: this.policy.snapshot() };
    try {
      if (this.model) this.model.restore(o.model);
      this.policy.restore(o.policy);
    } catch (e) {
      if (this.model && before.model) this.model.restore(before.model);
      this.policy.restore(before.policy);
      throw e;
    }
    this.lambdaEst.restore(lambda);
    this.m = this.bound(size);
    this.ci = clamp(ci, this.ciMin, this.ciMax);
    this.lastTime = time;
    this.actuations = actuations;
    this.steps = steps;
  }

  bound(m: number): number {
    const cap = Math.min(this.maxMiB, this.budgetMiB);
    const lo = Math.min(this.minMiB, cap);
    if (Number.isNaN(m)) return clamp(this.m ?? lo, lo, cap);
    return clamp(m, lo, cap);
  }

  /** One control step: the measurement of the interval that just ended -> the next size and interval. */
  step(meas: Measurement): Decision {
    const v = validateMeasurement(meas, this.lastTime);
    this.lastTime = v.time;
    this.steps++;
    this.lambdaEst.observe(v.arrivals, v.interval);
    // the real size may differ from our last decision (the orchestrator could not shrink, someone resized)
    if (Math.abs(v.shareSizeBytes / MiB - this.m) > Math.max(1, this.mThresh))
      this.m = this.bound(v.shareSizeBytes / MiB);
    const before = this.m;
    const reason = this.policy.step(this, v);
    this.m = this.bound(this.m);
    // an actuation is any change of the size (the baselines move in steps smaller than m_thresh)
    const actuated = Math.abs(this.m - before) > 1e-6;
    if (actuated) this.actuations++;
    return { sizeBytes: this.sizeBytes, nextIntervalS: this.ci, actuated, reason: actuated ? reason : 'hold', lambda: this.lambdaEst.value };
  }
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
  let p95ResponseTime: number | null = null;
  const p = m.p95ResponseTime;
  if (p !== null && p !== undefined && !Number.isNaN(p)) {
    if (typeof p !== 'number' || p < 0) bad('p95ResponseTime', p, 'must be null or a number >= 0');
    p95ResponseTime = Number.isFinite(p) ? p : 1e6;
  }
  if (m.completions !== undefined && m.completions === 0) { meanResponseTime = null; p95ResponseTime = null; }
  const out: ValidMeasurement = {
    time,
    interval,
    meanResponseTime,
    arrivals: num('arrivals', m.arrivals),
    shareUsedBytes: num('shareUsedBytes', m.shareUsedBytes),
    shareSizeBytes: num('shareSizeBytes', m.shareSizeBytes),
  };
  if (p95ResponseTime !== null) out.p95ResponseTime = p95ResponseTime;
  if (m.fullFallbacks !== undefined) out.fullFallbacks = num('fullFallbacks', m.fullFallbacks);
  for (const t of ['memory', 'disk'] as const) {
    const n = m[`${t}TierTasks`];
    const s = m[`${t}TierMeanS`];
    if (n === undefined || n === 0 || s === undefined || s === null) continue;
    out[`${t}TierTasks`] = num(`${t}TierTasks`, n);
    out[`${t}TierMeanS`] = num(`${t}TierMeanS`, s);
  }
  return out;
}
