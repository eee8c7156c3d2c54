// What a simulation run measures: response times, fixed windows (the aggregated error and the window metrics),
// share size and usage integrated over time, and the controller's decisions; turned into SimMetrics at the end.
import type { DecisionPoint, SimMetrics, WindowPoint } from './simulator.js';

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export class SimRecorder {
  readonly decisions: DecisionPoint[] = [];
  readonly sizeTimeline: { t: number; s: number }[];
  private readonly nWin: number;
  private readonly winSum: Float64Array;
  private readonly winCnt: Float64Array;
  private readonly winArr: Float64Array;
  private readonly winUsed: Float64Array;
  private readonly winSize: Float64Array;
  private readonly resp: number[] = [];
  private sizeInt = 0;
  private usedInt = 0;
  private peakSize: number;
  errPerInterval = 0;
  errTrackInterval = 0;
  memHits = 0;
  fullFallbacks = 0;
  served = 0;
  workSum = 0;
  actuations = 0;
  decisionsN = 0;

  constructor(
    private readonly durationS: number,
    private readonly windowS: number,
    private readonly sloS: number,
    size: number,
    private readonly record: boolean,
  ) {
    this.nWin = Math.ceil(durationS / windowS);
    this.winSum = new Float64Array(this.nWin);
    this.winCnt = new Float64Array(this.nWin);
    this.winArr = new Float64Array(this.nWin);
    this.winUsed = new Float64Array(this.nWin);
    this.winSize = new Float64Array(this.nWin);
    this.peakSize = size;
    this.sizeTimeline = [{ t: 0, s: size }];
    if (record) this.decisions.push({ t: 0, sizeMiB: size, usedMiB: 0, meanR: null, reason: 'initial' });
  }

  private win(t: number): number {
    return Math.min(this.nWin - 1, Math.floor(t / this.windowS));
  }

  /** Time passes from t for dt at this size and usage (MiB). */
  advance(t: number, dt: number, size: number, used: number): void {
    this.sizeInt += size * dt;
    this.usedInt += used * dt;
    const w = this.win(t);
    this.winUsed[w] += used * dt;
    this.winSize[w] += size * dt;
  }

  completion(t: number, r: number): void {
    this.resp.push(r);
    const w = this.win(t);
    this.winSum[w] += r;
    this.winCnt[w]++;
  }

  arrival(t: number, work: number, hit: boolean): void {
    this.workSum += work;
    this.served++;
    if (hit) this.memHits++;
    else this.fullFallbacks++;
    this.winArr[this.win(t)]++;
  }

  /** A control interval ended with this mean response time (null: no task completed). */
  interval(meanR: number | null): void {
    if (meanR !== null && meanR > this.sloS) this.errPerInterval += meanR - this.sloS;
    if (meanR !== null) this.errTrackInterval += Math.abs(meanR - this.sloS);
  }

  decision(
    t: number,
    size: number,
    resized: boolean,
    used: number,
    meanR: number | null,
    reason: string,
    actuated: boolean,
  ): void {
    this.decisionsN++;
    if (actuated) this.actuations++;
    if (resized) {
      this.sizeTimeline.push({ t, s: size });
      if (size > this.peakSize) this.peakSize = size;
    }
    if (this.record) this.decisions.push({ t, sizeMiB: size, usedMiB: used, meanR, reason });
  }

  /** Metrics over the run that ended at t; floorMiB: the controller's floor (Infinity without one). */
  finish(
    t: number,
    floorMiB: number,
    peakUsed: number,
    settlingS: number | null,
  ): { metrics: SimMetrics; windows: WindowPoint[] } {
    const { nWin, windowS, sloS } = this;
    // per-window time averages (events split at their start window: exact enough at second-scale events)
    for (let w = 0; w < nWin; w++) {
      this.winSize[w]! /= windowS;
      this.winUsed[w]! /= windowS;
    }
    const resp = this.resp;
    const sorted = Float64Array.from(resp).sort();
    const nResp = sorted.length;
    let sumR = 0,
      excessTasks = 0,
      overTasks = 0;
    for (const R of resp) {
      sumR += R;
      if (R > sloS) {
        overTasks++;
        excessTasks += R - sloS;
      }
    }
    let err = 0,
      abs = 0,
      sq = 0,
      winsWith = 0,
      winsOver = 0,
      actionable = 0;
    const windows: WindowPoint[] = [];
    for (let w = 0; w < nWin; w++) {
      const m = this.winCnt[w]! > 0 ? this.winSum[w]! / this.winCnt[w]! : null;
      if (m !== null) {
        winsWith++;
        const e = m - sloS;
        if (e > 0) {
          err += e;
          winsOver++;
          actionable += e;
        } else if (this.winSize[w]! > floorMiB + 0.5) actionable -= e;
        abs += Math.abs(e);
        sq += e * e;
      }
      if (this.record)
        windows.push({
          t: (w + 1) * windowS,
          meanR: m,
          tasks: this.winCnt[w]!,
          usedMiB: this.winUsed[w]!,
          sizeMiB: this.winSize[w]!,
          arrivals: this.winArr[w]!,
        });
    }
    const served = this.served;
    return {
      windows,
      metrics: {
        tasks: nResp,
        error: err,
        errorMeanAbs: winsWith ? abs / winsWith : 0,
        errorRms: winsWith ? Math.sqrt(sq / winsWith) : 0,
        errorPerInterval: this.errPerInterval,
        errorAbsSum: abs,
        errorActionable: actionable,
        errorTrackInterval: this.errTrackInterval,
        errorPerTask: nResp ? excessTasks / nResp : 0,
        meanR: nResp ? sumR / nResp : 0,
        p50R: quantile(sorted, 0.5),
        p95R: quantile(sorted, 0.95),
        p99R: quantile(sorted, 0.99),
        sloWindowFraction: winsWith ? winsOver / winsWith : 0,
        sloTaskFraction: nResp ? overTasks / nResp : 0,
        peakSizeMiB: this.peakSize,
        meanSizeMiB: this.sizeInt / Math.max(1e-9, t),
        peakUsedMiB: peakUsed,
        meanUsedMiB: this.usedInt / Math.max(1e-9, t),
        gbHours: this.sizeInt / 1024 / 3600,
        gbHoursUsed: this.usedInt / 1024 / 3600,
        settlingS,
        actuations: this.actuations,
        decisions: this.decisionsN,
        memHitFraction: served ? this.memHits / served : 0,
        fullFallbackFraction: served ? this.fullFallbacks / served : 0,
        meanServiceS: served ? this.workSum / served : 0,
      },
    };
  }
}

function sizeAt(tl: { t: number; s: number }[], t: number): number {
  let s = tl[0]!.s;
  for (const p of tl) { if (p.t > t) break; s = p.s; }
  return s;
}

/**
 * Mean settling time over load changes (null when the workload has none): for each change, the time until the
 * share size first comes within ±max(10 %, 8 MiB) of the time-weighted median size over the rest of that phase
 * (the level the controller operates at after the change). A size that never gets there counts the whole phase.
 */
export function settling(tl: { t: number; s: number }[], changes: number[], end: number): number | null {
  if (changes.length === 0) return null;
  let total = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const e = changes[i + 1] ?? end;
    // piecewise-constant size over [c, e): segments (start, size)
    const segs: { t: number; s: number }[] = [{ t: c, s: sizeAt(tl, c) }];
    for (const p of tl) if (p.t > c && p.t < e) segs.push(p);
    const weighted = segs.map((p, k) => ({ s: p.s, w: (segs[k + 1]?.t ?? e) - p.t })).sort((a, b) => a.s - b.s);
    const half = (e - c) / 2;
    let acc = 0;
    let median = weighted[weighted.length - 1]!.s;
    for (const x of weighted) { acc += x.w; if (acc >= half) { median = x.s; break; } }
    const band = Math.max(0.1 * median, 8);
    const hit = segs.find((p) => Math.abs(p.s - median) <= band);
    total += (hit ? hit.t : e) - c;
  }
  return total / changes.length;
}
