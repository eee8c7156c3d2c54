// What a share-size policy sees of its controller and what it may change: the controller (controller.ts) owns
// validation, the bounds, the interval bounds and the arrival-rate estimate; each scheme is one Policy in the
// table of ./policies/index.ts and holds only its own state.
import { clamp } from './validate.js';
import { psResponseTime, serviceTimeForResponse, type ServiceModel } from './queueing.js';
import { badSnapshot, num, obj, type Json } from './snapshot.js';

/** A measurement after validation (controller.ts): finite, non-negative, time never going backwards. */
export interface ValidMeasurement {
  time: number;
  interval: number;
  meanResponseTime: number | null;
  /** 95th percentile (s) of the interval's response times, when measured and tasks completed. */
  p95ResponseTime?: number;
  arrivals: number;
  shareUsedBytes: number;
  shareSizeBytes: number;
  fullFallbacks?: number;
  /** Completions per tier and their mean response time (s), both present or both absent. */
  memoryTierTasks?: number;
  memoryTierMeanS?: number;
  diskTierTasks?: number;
  diskTierMeanS?: number;
}

/** The controller's state a policy reads and moves (sizes in MiB, times in s). */
export interface PolicyContext {
  readonly reference: number;
  readonly rThresh: number;
  readonly mThresh: number;
  readonly ciMin: number;
  readonly ciMax: number;
  /** The queueing predictor with its online offset; null for schemes without a service model. */
  readonly model: OnlineModel | null;
  /** Slow arrival-rate estimate (tasks/s), updated before the policy runs. */
  readonly lambda: number;
  /** Current size (MiB); the policy sets the next one, the controller bounds it afterwards. */
  m: number;
  /** Next control interval (s). */
  ci: number;
  /** Clamp a size to [min, min(max, budget)]. */
  bound(m: number): number;
}

export interface Policy {
  /** One interval: move ctx.m and ctx.ci; return what moved the size (the decision's reason if it actuated). */
  step(ctx: PolicyContext, v: ValidMeasurement): string;
  /** The RLS parameter vector, for state() (empty without RLS). */
  theta(): number[];
  /** What the policy learned, as JSON (controller snapshots); restore() checks it all before changing anything. */
  snapshot(): Json;
  restore(v: unknown): void;
}

/**
 * E[X|m] with Algorithm 1's online update (line 7): the service time a measurement implies, X = R / (1 + λR)
 * (Eq. 2 solved for E[X]), minus the offline E[X|m] at the current size, kept as an additive offset (smoothed,
 * bounded to ±50 % of E[X|m]) so the prediction tracks interference and load the offline fit did not see.
 */
export class OnlineModel {
  offset = 0;
  private known = false;
  constructor(readonly model: ServiceModel) {}

  snapshot(): { offset: number; known: boolean } { return { offset: this.offset, known: this.known }; }
  restore(v: unknown): void {
    const o = obj('model', v);
    const offset = num('model.offset', o.offset);
    if (typeof o.known !== 'boolean') badSnapshot('model.known', o.known);
    this.offset = offset;
    this.known = o.known as boolean;
  }

  update(r: number, lambda: number, mMiB: number): void {
    if (!(r > 0) || !Number.isFinite(r)) return;
    const implied = r / (1 + lambda * r);
    const ex = this.model.meanService(mMiB);
    const d = clamp(implied - ex, -0.5 * ex, 0.5 * ex);
    this.offset = this.known ? this.offset + 0.5 * (d - this.offset) : d;
    this.known = true;
  }

  /**
   * The mean response time Eq. 2 predicts at size m (MiB) and rate λ, with the online offset as measured (signed:
   * the model corrected by what the guest delivered, not the pessimistic reading used for sizing); +Infinity when
   * saturated.
   */
  predictResponse(mMiB: number, lambda: number): number {
    const ex = Math.max(0, this.model.meanService(mMiB) + this.offset);
    return psResponseTime(ex, lambda);
  }

  /**
   * Solve Eq. 2 for m at rate λ with the online offset (only its pessimistic part with `pessimistic`); saturation
   * or an unreachable target gives +Infinity (the caller bounds it to the largest allowed size).
   */
  predictSize(target: number, lambda: number, opts: { pessimistic?: boolean } = {}): number {
    const off = opts.pessimistic ? Math.max(0, this.offset) : this.offset;
    const m = this.model.sizeForService(serviceTimeForResponse(target, lambda) - off);
    return Number.isFinite(m) ? m : Infinity;
  }
}
