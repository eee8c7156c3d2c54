// Algorithm 1 of the paper (§5.1): the queueing re-prediction (queue), the RLS adaptive loop (adaptive), and both
// (aq, the paper's scheme). One policy with two switches, as the paper's pseudo-code is one loop.
import { Rls, type RlsOptions } from '../rls.js';
import type { Policy, PolicyContext, ValidMeasurement } from '../policy.js';
import { badSnapshot, nullableNum, obj, type Json } from '../snapshot.js';

export class Algorithm1Policy implements Policy {
  private lastR: number | null = null;
  private readonly rls: Rls | null;

  constructor(private readonly useQueue: boolean, useRls: boolean, rls: RlsOptions | undefined) {
    this.rls = useRls ? new Rls(rls) : null;
  }

  theta(): number[] { return this.rls ? [...this.rls.theta] : []; }

  snapshot(): Json { return { lastR: this.lastR, rls: this.rls ? (this.rls.snapshot() as unknown as Json) : null }; }
  restore(v: unknown): void {
    const o = obj('policy', v);
    const lastR = nullableNum('policy.lastR', o.lastR, { min: 0 });
    if (this.rls) this.rls.restore(o.rls); else if (o.rls !== null) badSnapshot('policy.rls', o.rls);
    this.lastR = lastR;
  }

  step(ctx: PolicyContext, v: ValidMeasurement): string {
    const r = v.meanResponseTime;
    const before = ctx.m;
    let reason = 'hold';
    let queueMoved = false;
    // lines 6-10: queueing re-prediction on a large change in R (and at the first measurement)
    if (this.useQueue && r !== null && (this.lastR === null || Math.abs(r - this.lastR) >= ctx.rThresh)) {
      // line 7: update λ (done by the controller, every interval) and the queueing model (offset from this measurement)
      ctx.model!.update(r, ctx.lambda, ctx.m);
      const mhat = ctx.bound(ctx.model!.predictSize(ctx.reference, ctx.lambda));
      if (Math.abs(mhat - ctx.m) > 1e-9) { ctx.m = mhat; queueMoved = true; reason = 'queue'; }
    }
    let dm = 0;
    if (this.rls && r !== null) {
      // lines 11-13: RLS on the residual y(k) = R(k) - τ, then Δm from θᵀφ(k) = 0
      this.rls.update(r - ctx.reference);
      const u = this.rls.solveInput(0);
      dm = u === null ? 0 : u;
    }
    // lines 14-19: apply Δm only if it is large enough; halve ci on an actuation, double it otherwise
    if (this.rls) {
      // m <- m + Δm within the bounds: a Δm the bounds swallow is no actuation (the interval grows)
      const applied = ctx.bound(ctx.m + dm) - ctx.m;
      if (Math.abs(applied) >= ctx.mThresh && applied !== 0) {
        ctx.m = ctx.bound(ctx.m + dm);
        reason = queueMoved ? 'queue+rls' : 'rls';
        ctx.ci = Math.max(ctx.ci / 2, ctx.ciMin);
      } else if (queueMoved && Math.abs(ctx.m - before) >= ctx.mThresh) {
        // the re-prediction itself changed the size by at least m_thresh (line 9): that is an actuation too,
        // the same rule as the queue-only scheme below (watch closely after any size change)
        ctx.ci = Math.max(ctx.ci / 2, ctx.ciMin);
      } else ctx.ci = Math.min(ctx.ci * 2, ctx.ciMax);
      if (r !== null) this.rls.commit(ctx.m - before);
    } else {
      // queue only: the re-prediction is the actuation
      if (queueMoved && Math.abs(ctx.m - before) >= ctx.mThresh) ctx.ci = Math.max(ctx.ci / 2, ctx.ciMin);
      else ctx.ci = Math.min(ctx.ci * 2, ctx.ciMax);
    }
    if (r !== null) this.lastR = r;
    return reason;
  }
}
