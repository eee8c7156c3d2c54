// The paper's §6.4 setting as simulator presets: Table 3's twelve rows with the published errors, the offline
// calibration of E[X|m] (as §5.2 does it: a light workload, several fixed share sizes, then a least-squares
// fit of a + b/(m + c)), and the controller configuration of each scheme.
import type { ControllerConfig, Scheme } from '../control/controller.js';
import { fitServiceModel, type FitResult } from '../control/queueing.js';
import { defaultSimConfig, simulate, type SimConfig } from './simulator.js';
import { paperWorkload } from './workload.js';
import { MiB } from '../units.js';

export interface Table3Row {
  workload: 1 | 2;
  vcpus: 4 | 8;
  ramGB: 16 | 32 | 64;
  /** Published aggregated response-time error (s): adaptive / queue / A+Q. */
  paper: { adaptive: number; queue: number; aq: number };
}

export const TABLE3: readonly Table3Row[] = [
  { workload: 1, vcpus: 4, ramGB: 16, paper: { adaptive: 14.2, queue: 27.3, aq: 8.8 } },
  { workload: 1, vcpus: 4, ramGB: 32, paper: { adaptive: 10.2, queue: 21.4, aq: 7.5 } },
  { workload: 1, vcpus: 4, ramGB: 64, paper: { adaptive: 20.4, queue: 25.9, aq: 9.4 } },
  { workload: 1, vcpus: 8, ramGB: 16, paper: { adaptive: 10.1, queue: 28.5, aq: 7.6 } },
  { workload: 1, vcpus: 8, ramGB: 32, paper: { adaptive: 18.2, queue: 31.3, aq: 5.1 } },
  { workload: 1, vcpus: 8, ramGB: 64, paper: { adaptive: 15.7, queue: 40.5, aq: 8.4 } },
  { workload: 2, vcpus: 4, ramGB: 16, paper: { adaptive: 26.0, queue: 34.9, aq: 12.3 } },
  { workload: 2, vcpus: 4, ramGB: 32, paper: { adaptive: 22.1, queue: 33.5, aq: 15.4 } },
  { workload: 2, vcpus: 4, ramGB: 64, paper: { adaptive: 18.8, queue: 45.8, aq: 14.9 } },
  { workload: 2, vcpus: 8, ramGB: 16, paper: { adaptive: 28.1, queue: 37.5, aq: 12.1 } },
  { workload: 2, vcpus: 8, ramGB: 32, paper: { adaptive: 21.1, queue: 33.2, aq: 11.4 } },
  { workload: 2, vcpus: 8, ramGB: 64, paper: { adaptive: 32.1, queue: 41.5, aq: 16.0 } },
];

/** Peak share memory the paper reports (MB) per workload. */
export const PAPER_PEAK_MB: Record<1 | 2, number> = { 1: 245, 2: 388 };

export interface CalibrationOptions {
  /** Arrival rate of the light calibration workload (tasks/s). */
  lambda?: number;
  sizesMiB?: number[];
  durationS?: number;
  seed?: number;
  /**
   * What is averaged per size: 'service' (the tasks' service demand, exact for the simulator) or 'response' (the
   * tasks' response time, what §5.2 measured on the real VM: "the measured average response time approximates the
   * average service time since there is no queueing delay").
   */
  measure?: 'service' | 'response';
}

/**
 * §5.2's offline measurement read literally (the default): "we first initiated a lightweight workload on the VM
 * ... measured the response time. The measured average response time approximates the average service time since
 * there is no queueing delay". One task a minute (ρ ≈ 0.06-0.07: almost no queueing), response times averaged per
 * fixed share size. At that load the 60 s eviction window holds about one segment, so the fit knows nothing of the
 * working set a heavier load keeps: a gap between predictor and system that RLS has to correct online.
 */
export const LIGHT_CALIBRATION: Required<Pick<CalibrationOptions, 'lambda' | 'measure' | 'durationS'>> = { lambda: 1 / 60, measure: 'response', durationS: 8 * 3600 };
/** The earlier calibration (selectable): service demand measured at workload #1's own load, λ = 1/8 s⁻¹. */
export const OPERATING_CALIBRATION: Required<Pick<CalibrationOptions, 'lambda' | 'measure' | 'durationS'>> = { lambda: 1 / 8, measure: 'service', durationS: 4 * 3600 };
export type CalibrationMode = 'light' | 'operating';
export function calibrationOptions(mode: CalibrationMode): CalibrationOptions {
  return mode === 'light' ? { ...LIGHT_CALIBRATION } : { ...OPERATING_CALIBRATION };
}

/**
 * Offline measurement of E[X|m]: for each fixed share size run a Poisson workload (default LIGHT_CALIBRATION) and
 * average the tasks' response times (or service demands), then fit a + b/(m + c).
 */
export function calibrateServiceModel(
  base: Partial<SimConfig>,
  opts: CalibrationOptions = {},
): FitResult & { points: { m: number; ex: number }[] } {
  const lambda = opts.lambda ?? LIGHT_CALIBRATION.lambda;
  const measure = opts.measure ?? LIGHT_CALIBRATION.measure;
  const sizes = opts.sizesMiB ?? [1, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256];
  const points = sizes.map((m) => {
    const r = simulate(
      defaultSimConfig({
        ...base,
        seed: opts.seed ?? 12345,
        durationS: opts.durationS ?? LIGHT_CALIBRATION.durationS,
        workload: { kind: 'poisson', meanInterarrival: 1 / lambda },
        controller: null,
        fixedSizeBytes: Math.max(1, Math.round(m * MiB)),
        record: false,
      }),
    );
    return { m, ex: measure === 'response' ? r.metrics.meanR : r.metrics.meanServiceS };
  });
  return { ...fitServiceModel(points), points };
}

export interface SchemeOptions {
  minMiB?: number;
  maxMiB?: number;
  initialMiB?: number;
  staticMiB?: number;
}

/** Controller configuration of a scheme with the paper's parameters (τ = 10 s, ci 30 s .. 4 min, nA=1 nB=0 d=1). */
export function schemeConfig(scheme: Scheme, model: FitResult['model'], o: SchemeOptions = {}): ControllerConfig {
  const minMiB = o.minMiB ?? 16;
  const maxMiB = o.maxMiB ?? 512;
  const base: ControllerConfig = {
    scheme,
    reference: 10,
    minBytes: minMiB * MiB,
    maxBytes: maxMiB * MiB,
    initialBytes: (scheme === 'static' ? (o.staticMiB ?? 128) : (o.initialMiB ?? 64)) * MiB,
    // R_thresh, m_thresh, f0 and θ(0) are not given in the paper (docs/controller.md, "Algorithm 1's parameters"):
    // R_thresh = 2.5 s is a "large spike" (§5.2): the 90th percentile of |R(k) - R(k-1)| between 30 s intervals on
    // the stationary workload #1, so noise alone re-predicts in about one interval in ten; m_thresh = 10 MiB is one
    // mean segment (a smaller change cannot change which segments fit); f0 = 1, θ(0) = [0, -0.2 s/MiB] (results
    // are insensitive to them: docs). The same values serve adaptive, queue and aq.
    rThresh: 2.5,
    mThreshBytes: 10 * MiB,
    ciMin: 30,
    ciMax: 240,
    serviceModel: model.toJSON(),
    rls: { nA: 1, nB: 0, d: 1, f0: 1, b0Init: -0.2 },
  };
  return base;
}

export function paperSimConfig(
  row: { workload: 1 | 2; vcpus: number; ramGB: number },
  seed: number,
  controller: ControllerConfig | null,
): SimConfig {
  return defaultSimConfig({
    seed,
    vcpus: row.vcpus,
    ramGB: row.ramGB,
    workload: paperWorkload(row.workload),
    controller,
    record: false,
  });
}
