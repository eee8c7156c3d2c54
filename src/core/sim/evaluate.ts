// Evaluation drivers shared by `hylics sim` and bench/sim-table3.ts: Table 3 over seeds (mean and spread per
// scheme beside the paper's values) and single scenario runs. Pure: progress goes through a callback.
import type { ControllerConfig, Scheme } from '../control/controller.js';
import { calibrateServiceModel, type CalibrationOptions, PAPER_PEAK_MB, schemeConfig, TABLE3, type Table3Row } from './paper.js';
import { DEFAULT_SERVICE, defaultSimConfig, simulate, type ServiceConfig, type SimMetrics, type SimResult } from './simulator.js';
import { paperWorkload, type WorkloadSpec } from './workload.js';

export const PAPER_SCHEMES = ['adaptive', 'queue', 'aq'] as const;
export const ALL_SCHEMES: Scheme[] = ['adaptive', 'queue', 'aq', 'improved', 'static', 'senpai', 'mom'];

/** Share bounds used in every evaluation: 32 MiB floor, the paper's peak as the ceiling (245 / 388 MiB). */
export function evalBounds(workload: 1 | 2 | 'other'): { minMiB: number; maxMiB: number } {
  return { minMiB: 32, maxMiB: workload === 1 ? PAPER_PEAK_MB[1] : PAPER_PEAK_MB[2] };
}

export interface Stat { mean: number; std: number; min: number; max: number }
export function stat(xs: number[]): Stat {
  const n = xs.length;
  if (n === 0) return { mean: 0, std: 0, min: 0, max: 0 };
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, min: Math.min(...xs), max: Math.max(...xs) };
}

export type MetricStats = { [K in keyof SimMetrics]: Stat };

export function aggregate(ms: SimMetrics[]): MetricStats {
  const keys = Object.keys(ms[0] ?? {}) as (keyof SimMetrics)[];
  const out = {} as MetricStats;
  for (const k of keys) out[k] = stat(ms.map((m) => (m[k] ?? 0) as number));
  return out;
}

/**
 * Paired comparison of scheme A against scheme B on one metric over the same seeds (common random numbers: the
 * same tasks in both runs): mean of the per-seed differences A - B, its standard error, and a verdict: 'better'
 * (A lower by more than 2 SE), 'worse' (higher by more than 2 SE), otherwise 'tie' (the seeds cannot tell them
 * apart; identical runs give a difference of exactly 0).
 */
export interface Paired { diff: number; se: number; verdict: 'better' | 'tie' | 'worse' }
export function paired(a: SimMetrics[], b: SimMetrics[], key: keyof SimMetrics): Paired {
  const n = Math.min(a.length, b.length);
  const d: number[] = [];
  for (let i = 0; i < n; i++) d.push(((a[i]![key] ?? 0) as number) - ((b[i]![key] ?? 0) as number));
  const st = stat(d);
  const se = n > 1 ? st.std / Math.sqrt(n) : 0;
  const verdict = st.mean < -2 * se && st.mean < 0 ? 'better' : st.mean > 2 * se && st.mean > 0 ? 'worse' : 'tie';
  return { diff: st.mean, se, verdict };
}

/** The goal metrics of the improved scheme (lower is better for all). */
export const GOAL_METRICS = { error: 'error', p95: 'p95R', sloWindows: 'sloWindowFraction', sloTasks: 'sloTaskFraction', gbHours: 'gbHours' } as const satisfies Record<string, keyof SimMetrics>;

export function pairedGoals(a: SimMetrics[], b: SimMetrics[]): Record<keyof typeof GOAL_METRICS, Paired> {
  const out = {} as Record<keyof typeof GOAL_METRICS, Paired>;
  for (const [k, m] of Object.entries(GOAL_METRICS)) out[k as keyof typeof GOAL_METRICS] = paired(a, b, m);
  return out;
}

export interface SchemeSummary {
  /** Aggregated response-time error (s), its spread (sample std over seeds) and the peak share (MB = MiB). */
  error: number;
  errorStd: number;
  peakShareMB: number;
  metrics: MetricStats;
}

export interface Table3Result {
  seeds: number;
  rows: ({
    workload: 1 | 2; vcpus: number; ramGB: number; paper: Table3Row['paper'];
    /** aq's mean error below both adaptive's and queue's (means over seeds). */
    ordered: boolean;
    aqAtOrBelowPaper: boolean; aqPeakOk: boolean;
    /** improved's mean below aq's on each goal metric (means over seeds). */
    improvedBeatsAq: Record<string, boolean>;
    /**
     * Paired verdicts over the same seeds: aq vs adaptive and vs queue on the error; improved vs aq on each goal
     * metric.
     */
    paired: { aqVsAdaptive?: Paired; aqVsQueue?: Paired; improvedVsAq?: Record<string, Paired> };
    model: { a: number; b: number; c: number; r2: number };
  } & Record<string, unknown>)[];
  /** Wall-clock is not measured here (core is pure); the caller times the run. */
  runs: number;
}

export interface Table3Options {
  seeds?: number;
  schemes?: Scheme[];
  rows?: readonly Table3Row[];
  onProgress?: (done: number, total: number, label: string) => void;
  /** Adjust a scheme's controller configuration (experiments; the default is schemeConfig as documented). */
  configure?: (scheme: Scheme, cfg: ControllerConfig) => ControllerConfig;
  /** Guest model changes (e.g. serialFraction 0 = the paper's pure M/G/1-PS); calibration uses the same guest. */
  service?: Partial<ServiceConfig>;
  /** Share ceiling (MiB) instead of the paper's peak (245 / 388), e.g. to see where a scheme peaks by itself. */
  maxMiB?: number;
  /** Workload #2's phase length (s; 0 = the mean alternates per arrival). Default 600. */
  w2PhaseS?: number;
  /** Offline E[X|m] measurement (default LIGHT_CALIBRATION: response time at λ = 1/60, §5.2). */
  calibration?: CalibrationOptions;
}

export function runTable3(opts: Table3Options = {}): Table3Result {
  const seeds = opts.seeds ?? 10;
  const schemes = opts.schemes ?? ALL_SCHEMES;
  const rows = opts.rows ?? TABLE3;
  const total = rows.length * schemes.length;
  let done = 0;
  let runs = 0;
  const out: Table3Result['rows'] = [];
  for (const row of rows) {
    const service: ServiceConfig = { ...DEFAULT_SERVICE, ...opts.service };
    const cal = calibrateServiceModel({ vcpus: row.vcpus, ramGB: row.ramGB, service }, opts.calibration);
    const entry: Table3Result['rows'][number] = {
      workload: row.workload, vcpus: row.vcpus, ramGB: row.ramGB, paper: row.paper,
      ordered: false, aqAtOrBelowPaper: false, aqPeakOk: false, improvedBeatsAq: {}, paired: {},
      model: { ...cal.model.toJSON(), r2: cal.r2 },
    };
    const bounds = evalBounds(row.workload);
    if (opts.maxMiB !== undefined) bounds.maxMiB = opts.maxMiB;
    const perSeed: Record<string, SimMetrics[]> = {};
    for (const scheme of schemes) {
      const ms: SimMetrics[] = [];
      for (let s = 1; s <= seeds; s++) {
        const cfg = defaultSimConfig({
          seed: s * 7919 + row.vcpus * 101 + row.ramGB,
          vcpus: row.vcpus,
          ramGB: row.ramGB,
          service,
          workload: paperWorkload(row.workload, opts.w2PhaseS),
          controller: (opts.configure ?? ((_s, c) => c))(scheme, schemeConfig(scheme, cal.model, bounds)),
          record: false,
        });
        ms.push(simulate(cfg).metrics);
        runs++;
      }
      perSeed[scheme] = ms;
      const agg = aggregate(ms);
      const summary: SchemeSummary = {
        error: agg.error.mean,
        errorStd: agg.error.std,
        peakShareMB: agg.peakSizeMiB.max,
        metrics: agg,
      };
      entry[scheme] = summary;
      done++;
      opts.onProgress?.(done, total, `#${row.workload} ${row.vcpus} vCPU ${row.ramGB} GB ${scheme}`);
    }
    const g = (s: string): SchemeSummary | undefined => entry[s] as SchemeSummary | undefined;
    const aq = g('aq');
    if (aq && g('adaptive') && g('queue')) entry.ordered = aq.error < g('adaptive')!.error && aq.error < g('queue')!.error;
    if (aq) {
      entry.aqAtOrBelowPaper = aq.error <= row.paper.aq;
      entry.aqPeakOk = aq.peakShareMB <= PAPER_PEAK_MB[row.workload];
      const imp = g('improved');
      if (imp) entry.improvedBeatsAq = beats(imp.metrics, aq.metrics);
      if (perSeed.adaptive) entry.paired.aqVsAdaptive = paired(perSeed.aq!, perSeed.adaptive, 'error');
      if (perSeed.queue) entry.paired.aqVsQueue = paired(perSeed.aq!, perSeed.queue, 'error');
      if (perSeed.improved) entry.paired.improvedVsAq = pairedGoals(perSeed.improved, perSeed.aq!);
    }
    out.push(entry);
  }
  return { seeds, rows: out, runs };
}

/** Improved vs a reference on the four goal metrics (lower is better for all). */
export function beats(a: MetricStats, b: MetricStats): Record<string, boolean> {
  return {
    error: a.error.mean < b.error.mean || (a.error.mean === 0 && b.error.mean === 0),
    p95: a.p95R.mean < b.p95R.mean,
    sloWindows:
      a.sloWindowFraction.mean < b.sloWindowFraction.mean ||
      (a.sloWindowFraction.mean === 0 && b.sloWindowFraction.mean === 0),
    sloTasks:
      a.sloTaskFraction.mean < b.sloTaskFraction.mean || (a.sloTaskFraction.mean === 0 && b.sloTaskFraction.mean === 0),
    gbHours: a.gbHours.mean < b.gbHours.mean,
  };
}

export interface ScenarioOptions {
  workload: 1 | 2 | WorkloadSpec;
  scheme: Scheme;
  seed?: number;
  vcpus?: number;
  ramGB?: number;
  durationS?: number;
  record?: boolean;
  service?: Partial<ServiceConfig>;
  /** Workload #2's phase length (s; 0 = per arrival). Default 600. */
  w2PhaseS?: number;
  calibration?: CalibrationOptions;
}

// E[X|m] per (vCPUs, RAM): deterministic, so computed once per process
const calibrations = new Map<string, ReturnType<typeof calibrateServiceModel>>();

/** One run of one scheme on one workload (the paper's #1/#2 or any WorkloadSpec, e.g. a parsed trace). */
export function runScenario(o: ScenarioOptions): SimResult & { model: { a: number; b: number; c: number } } {
  const vcpus = o.vcpus ?? 4;
  const ramGB = o.ramGB ?? 16;
  const service: ServiceConfig = { ...DEFAULT_SERVICE, ...o.service };
  const key = `${vcpus}/${ramGB}/${JSON.stringify(service)}/${JSON.stringify(o.calibration ?? {})}`;
  let cal = calibrations.get(key);
  if (cal === undefined) {
    cal = calibrateServiceModel({ vcpus, ramGB, service }, o.calibration);
    calibrations.set(key, cal);
  }
  const w = typeof o.workload === 'number' ? paperWorkload(o.workload, o.w2PhaseS) : o.workload;
  const bounds = evalBounds(typeof o.workload === 'number' ? o.workload : 'other');
  let durationS = o.durationS ?? 3600;
  if (typeof o.workload !== 'number' && o.workload.kind === 'trace' && o.durationS === undefined) {
    const last = o.workload.arrivals[o.workload.arrivals.length - 1]?.time ?? 0;
    durationS = Math.max(60, Math.ceil(last + 60));
  }
  const r = simulate(
    defaultSimConfig({
      seed: o.seed ?? 1,
      vcpus,
      ramGB,
      durationS,
      service,
      workload: w,
      controller: schemeConfig(o.scheme, cal.model, bounds),
      record: o.record ?? true,
    }),
  );
  return { ...r, model: cal.model.toJSON() };
}

/** Harder workloads than the paper's, for the improved scheme: a step up and down, and on/off bursts. */
export const HARD_WORKLOADS: Record<string, WorkloadSpec> = {
  step: { kind: 'piecewise', phases: [{ durationS: 1200, meanInterarrival: 8 }, { durationS: 1200, meanInterarrival: 4 }, { durationS: 1200, meanInterarrival: 8 }] },
  bursty: { kind: 'bursty', calmMean: 9, burstMean: 2.5, calmS: 300, burstS: 60 },
};

export interface ComparisonRow {
  workload: string;
  vcpus: number;
  ramGB: number;
  schemes: Record<string, MetricStats>;
  perSeed: Record<string, SimMetrics[]>;
}

/** Every scheme on one workload spec over seeds (same seeds for every scheme: paired comparison). */
export function runComparison(
  name: string,
  w: WorkloadSpec,
  o: {
    vcpus: number;
    ramGB: number;
    seeds: number;
    schemes?: Scheme[];
    calibration?: CalibrationOptions;
    onProgress?: (label: string) => void;
  },
): ComparisonRow {
  const cal = calibrateServiceModel({ vcpus: o.vcpus, ramGB: o.ramGB }, o.calibration);
  const out: ComparisonRow = { workload: name, vcpus: o.vcpus, ramGB: o.ramGB, schemes: {}, perSeed: {} };
  for (const scheme of o.schemes ?? ALL_SCHEMES) {
    const ms: SimMetrics[] = [];
    for (let s = 1; s <= o.seeds; s++) {
      ms.push(
        simulate(
          defaultSimConfig({
            seed: s * 104729 + o.vcpus,
            vcpus: o.vcpus,
            ramGB: o.ramGB,
            workload: w,
            controller: schemeConfig(scheme, cal.model, evalBounds('other')),
            record: false,
          }),
        ).metrics,
      );
    }
    out.schemes[scheme] = aggregate(ms);
    out.perSeed[scheme] = ms;
    o.onProgress?.(`${name} ${o.vcpus} vCPU ${scheme}`);
  }
  return out;
}
