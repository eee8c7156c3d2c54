// The policies that are not Algorithm 1: static (keep the initial size) and two industry baselines, a
// Senpai-like prober (Meta) and MoM-like occupancy rules (oVirt). Each runs at a fixed period of ci_min.
import type { Policy, PolicyContext, ValidMeasurement } from '../policy.js';
import { num, obj, type Json } from '../snapshot.js';
import { MiB } from '../../units.js';

export class StaticPolicy implements Policy {
  theta(): number[] { return []; }
  snapshot(): Json { return {}; }
  restore(v: unknown): void { obj('policy', v); }
  step(): string { return 'hold'; }
}

// Senpai-like: probe the limit down by a small step while pressure stays under target, back off (grow by up to
// 100 %) in proportion to the excess when it does not. Pressure here is the fraction of the interval's tasks that
// fell back to the disk tier because the share was full (the share's "memory stall").
export class SenpaiPolicy implements Policy {
  private backoff = 0;
  theta(): number[] { return []; }
  snapshot(): Json { return { backoff: this.backoff }; }
  restore(v: unknown): void { this.backoff = num('policy.backoff', obj('policy', v).backoff, { min: 0, max: 3, integer: true }); }
  step(ctx: PolicyContext, v: ValidMeasurement): string {
    ctx.ci = ctx.ciMin; // fixed period
    const arrivals = Math.max(1, v.arrivals);
    const pressure = (v.fullFallbacks ?? 0) / arrivals;
    const target = 0.1;
    const r = v.meanResponseTime;
    const slo = r !== null && r > ctx.reference;
    if (pressure > target || slo) {
      const excess = Math.min(1, Math.max(pressure - target, slo ? (r! - ctx.reference) / ctx.reference : 0) / target);
      ctx.m = ctx.m * (1 + Math.max(0.1, excess));
      this.backoff = 3;
      return 'backoff';
    }
    if (this.backoff > 0) { this.backoff--; return 'hold'; }
    ctx.m = ctx.m * 0.99;
    return 'probe';
  }
}

// MoM-like: fixed-period rules on share occupancy with a 5 % max step and a small deadband: grow when the share
// is nearly full, shrink when mostly free.
export class MomPolicy implements Policy {
  theta(): number[] { return []; }
  snapshot(): Json { return {}; }
  restore(v: unknown): void { obj('policy', v); }
  step(ctx: PolicyContext, v: ValidMeasurement): string {
    ctx.ci = ctx.ciMin;
    const occ = ctx.m > 0 ? v.shareUsedBytes / MiB / ctx.m : 1;
    if (occ > 0.9) { ctx.m *= 1.05; return 'grow'; }
    if (occ < 0.6) { ctx.m *= 0.95; return 'shrink'; }
    return 'hold';
  }
}
