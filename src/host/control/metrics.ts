// Prometheus series of the profiler and the control loop (names in docs/operations.md and /work/CONTRACTS.md).
// Counters of the guest's cumulative numbers (tier.stats, CPU time) advance by the delta since the last sample,
// so an agent or guest restart (counts back at 0) never makes a counter go down.
import { Counter, Gauge, type Registry } from 'prom-client';

export class ControlMetrics {
  readonly arrivalRate: Gauge<'guest' | 'task'>;
  readonly tierHits: Counter<'guest'>;
  readonly tierMisses: Counter<'guest'>;
  readonly tierEvictions: Counter<'guest'>;
  readonly tierPromotions: Counter<'guest'>;
  readonly targetBytes: Gauge<'guest'>;
  readonly sloSeconds: Gauge<'guest'>;
  readonly decisions: Counter<'guest' | 'action'>;
  readonly cpuSeconds: Counter<'guest'>;
  readonly rejectedReports: Counter<'guest' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.arrivalRate = new Gauge({ name: 'hylics_task_arrival_rate', help: 'Task arrival rate (1/s), the estimator of Algorithm 1, per guest and task', labelNames: ['guest', 'task'], registers });
    this.tierHits = new Counter({ name: 'hylics_tier_hits_total', help: 'Tasks whose input came from the memory tier (the share)', labelNames: ['guest'], registers });
    this.tierMisses = new Counter({ name: 'hylics_tier_misses_total', help: 'Tasks whose input came from the guest\'s disk tier', labelNames: ['guest'], registers });
    this.tierEvictions = new Counter({ name: 'hylics_tier_evictions_total', help: 'Files the guest moved from the share to its disk tier', labelNames: ['guest'], registers });
    this.tierPromotions = new Counter({ name: 'hylics_tier_promotions_total', help: 'Files the guest moved from its disk tier back to the share', labelNames: ['guest'], registers });
    this.targetBytes = new Gauge({ name: 'hylics_control_target_bytes', help: 'Share size the controller asked for at its last decision', labelNames: ['guest'], registers });
    this.sloSeconds = new Gauge({ name: 'hylics_control_slo_seconds', help: 'The guest\'s response-time SLO (the reference τ)', labelNames: ['guest'], registers });
    this.decisions = new Counter({ name: 'hylics_control_decisions_total', help: 'Control decisions by action (grow, shrink, hold, clamped, refused)', labelNames: ['guest', 'action'], registers });
    this.cpuSeconds = new Counter({ name: 'hylics_guest_cpu_seconds_total', help: 'CPU time used by the guest (sandbox: its cgroup; microVM: the QEMU process)', labelNames: ['guest'], registers });
    this.rejectedReports = new Counter({ name: 'hylics_task_reports_rejected_total', help: 'Task reports refused: absurd times (negative, NaN, over a day), floods over the rate limit, too many task names', labelNames: ['guest', 'reason'], registers });
  }

  forget(guest: string, tasks: string[]): void {
    for (const task of tasks) this.arrivalRate.remove({ guest, task });
    for (const m of [
      this.tierHits,
      this.tierMisses,
      this.tierEvictions,
      this.tierPromotions,
      this.targetBytes,
      this.sloSeconds,
      this.cpuSeconds,
    ])
      m.remove({ guest });
    for (const action of ['grow', 'shrink', 'hold', 'clamped', 'refused']) this.decisions.remove({ guest, action });
    for (const reason of ['absurd', 'rate', 'names']) this.rejectedReports.remove({ guest, reason });
  }
}
