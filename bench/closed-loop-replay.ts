// bench/closed-loop-replay: the simulator replaying the arrival traces a real closed-loop run recorded (issue #9).
// Reads bench/results/closed-loop.json (or --file F): for every recorded run, the same arrivals (times and segments),
// the measured alone times (memS / promoteS / diskS), the serial fraction from the pairs, the calibrated E[X|m], the
// SLO, windows and control bounds of that run; runs simulate() for each scheme asked (default: those recorded plus
// aq and improved) and prints mean, p95, tasks over the SLO, GB·h (milli) and actuations beside the real figures.
// Offline and quick (no guest, no root): the tool to judge a controller change against the recorded traces.
//   node dist/bench/closed-loop-replay.js [--file bench/results/closed-loop.json] [--schemes aq,improved]
//     [--seeds 1] [--decisions] [--json] [--improved '{"tierMinTasks":0}'] [--device on|off] [--service alone|in-run]
//     [--serial-fraction recorded|S]
// --seeds N replays each trace with N simulator seeds (service noise, segment sizes) and prints means over them.
// The guest's promotion mode is the recorded one (setup.alone.promotion; sync when absent), as the bench fed it.
// --device on (default): the disk tier's device shared by all reads in flight (service.device), its bandwidth and
// operation limit parsed from the recorded throttle (setup.diskTier.throttle); off: every read independent (the model
// before). --service in-run: every recorded run replayed on its own alone times, the bench's memS / diskS / promoteS
// scaled by that run's uncontended tasks (those that overlapped no other task: response / the alone figure of its
// tier, mean over them): what the simulator says if it knew the guest's cost during the run (docs/controller.md);
// --service F (a number): every alone time times F (the sensitivity of the mean to the guest's cost).
// With aq and improved both replayed, also the paired per-seed difference improved − aq (mean ± standard error) on
// tasks over the SLO, p95 and mGB·h; and the recorded real runs' goal noise (bench/lib/goal-noise.ts: bootstrap
// intervals of improved − aq and of p95 − SLO over their task lists).
import { readFileSync } from 'node:fs';
import { DEFAULT_SERVICE, simulate, type DeviceMetrics, type SimConfig, type SimMetrics } from '../src/core/sim/simulator.js';
import type { DeviceConfig } from '../src/core/sim/disk-device.js';
import { loneCostScale } from '../src/core/sim/lone-tasks.js';
import type { ControllerConfig, ImprovedOptions } from '../src/core/control/controller.js';
import { actuationThreshold } from '../src/host/control/loop.js';
import { resultPath } from './lib/results.js';
import { arg, argStr } from './lib/args.js';
import { formatGoalNoise, goalNoise, type GoalNoise } from './lib/goal-noise.js';
import { MiB } from '../src/core/units.js';

const FILE = argStr('file', resultPath('closed-loop.json'));
const SEEDS = arg('seeds', 1);
const SHOW_DECISIONS = process.argv.includes('--decisions');
const JSON_OUT = process.argv.includes('--json');
/** Options of the improved scheme as JSON, e.g. '{"tierMinTasks":0}' (docs/controller.md, "Improved scheme"). */
const IMPROVED = JSON.parse(argStr('improved', '{}')) as ImprovedOptions;
const DEVICE = argStr('device', 'on');
/** The Amdahl serial fraction: `recorded` (default, the bench's from the pairs) or a number (0 = pure PS). */
const SERIAL = argStr('serial-fraction', 'recorded');
const SERVICE = argStr('service', 'alone');
if (DEVICE !== 'on' && DEVICE !== 'off') throw new Error(`--device must be on or off, got ${DEVICE}`);
const FIXED_SCALE = SERVICE === 'alone' || SERVICE === 'in-run' ? null : Number(SERVICE);
if (FIXED_SCALE !== null && !(FIXED_SCALE > 0)) throw new Error(`--service must be alone, in-run or a factor > 0, got ${SERVICE}`);

interface Recorded {
  setup: {
    alone: { memS: number; promoteS?: number; firstTouchS?: number; diskS: number; serialFractionFromPairs: number; promotion?: 'background' | 'sync' };
    diskTier?: { throttle?: string };
    compression: { sloS: number; windowS: number };
    catalogue: { segments: number; totalMiB: number; zipfAlpha: number };
    control: {
      minMiB: number; maxMiB: number; initialMiB: number; smallMiB: number;
      intervalMinS: number; intervalMaxS: number; tierIdleS: number;
    };
    calibration: { model: { a: number; b: number; c: number } };
    guest: { cpus: number };
  };
  runs: {
    workload: number; scheme: string; durationS: number; meanS: number; p95S: number; sloTaskFraction: number;
    gbHours: number; actuations: number;
    tasksDetail: {
      i: number; seg: string; arrivalS: number; responseS: number; found: string; tier: string; code: number | null;
    }[];
  }[];
}

const rec = JSON.parse(readFileSync(FILE, 'utf8')) as Recorded;
const { alone, compression, catalogue, control, calibration, guest } = rec.setup;
const promotion = alone.promotion ?? 'sync';
const promoteS = alone.promoteS ?? alone.firstTouchS ?? alone.memS;

/** The device the bench throttled, from its recorded throttle line (cgroup v1 blkio or v2 io.max). */
function recordedDevice(): DeviceConfig | null {
  const line = rec.setup.diskTier?.throttle ?? '';
  const bps = /read_bps_device \S+ (\d+)/.exec(line)?.[1] ?? /rbps=(\d+)/.exec(line)?.[1];
  const iops = /read_iops_device (\d+)/.exec(line)?.[1] ?? /riops=(\d+)/.exec(line)?.[1];
  return bps ? { readBytesPerS: Number(bps), readIops: iops ? Number(iops) : 0 } : null;
}
const device = DEVICE === 'on' ? recordedDevice() : null;
if (DEVICE === 'on' && !device && !JSON_OUT) console.log('(no throttle recorded: every read independent)');

/** A run's cost relative to the alone figures: its tasks that overlapped no other, response / the alone time of the
 * path they took (memory; disk tier with the promotion behind it, when the share had room; disk tier). */
function inRunScale(run: Recorded['runs'][number]): { scale: number; n: number } {
  const T = run.tasksDetail.filter((t) => t.code === 0);
  const fixedMiB = run.scheme === 'static-max' ? control.maxMiB : undefined;
  const base = (t: (typeof T)[number]): number =>
    t.tier === 'memory' ? (promotion === 'sync' && t.found === 'disk' ? promoteS : alone.memS)
      : fixedMiB !== undefined && promotion === 'background' ? promoteS : alone.diskS;
  return loneCostScale(T, base);
}
const workloads = [...new Set(rec.runs.map((r) => r.workload))];
const recorded = [...new Set([...rec.runs.map((r) => r.scheme), 'aq', 'improved'])].join(',');
const schemes = argStr('schemes', recorded).split(',').filter(Boolean);

type Arrivals = { time: number; segment: number }[];
function config(scheme: string, arrivals: Arrivals, durationS: number, seed: number, scale = 1): SimConfig {
  const fixedMiB = scheme === 'static-max' ? control.maxMiB : scheme === 'static-small' ? control.smallMiB : undefined;
  const ctl: ControllerConfig | null = fixedMiB !== undefined ? null : {
    scheme: scheme as ControllerConfig['scheme'],
    reference: compression.sloS,
    minBytes: control.minMiB * MiB,
    maxBytes: control.maxMiB * MiB,
    initialBytes: control.initialMiB * MiB,
    ciMin: control.intervalMinS,
    ciMax: control.intervalMaxS,
    ciInitial: control.intervalMinS,
    mThreshBytes: actuationThreshold(control.maxMiB * MiB),
    serviceModel: calibration.model,
    improved: { ciMax: Math.max(control.intervalMinS, Math.min(60, control.intervalMaxS)), ...IMPROVED },
  };
  return {
    seed,
    durationS: durationS + Math.max(60, 20 * alone.diskS),
    vcpus: guest.cpus,
    ramGB: 4,
    workload: { kind: 'trace', arrivals },
    catalogue: {
      segments: catalogue.segments, zipfAlpha: catalogue.zipfAlpha,
      sizeMeanMiB: catalogue.totalMiB / catalogue.segments, sizeSigma: 0.05,
    },
    service: {
      ...DEFAULT_SERVICE, memS: scale * alone.memS, diskS: scale * alone.diskS, promoteS: scale * promoteS,
      promotion, serialFraction: SERIAL === 'recorded' ? alone.serialFractionFromPairs : Number(SERIAL), pageCacheCost: 0,
      ...(device ? { device } : {}),
    },
    evictAfterS: control.tierIdleS,
    sloS: compression.sloS,
    windowS: compression.windowS,
    controller: ctl,
    ...(fixedMiB !== undefined ? { fixedSizeBytes: fixedMiB * MiB } : {}),
    record: SHOW_DECISIONS,
  };
}

const rows: Record<string, unknown>[] = [];
const perSeed = new Map<string, SimMetrics[]>();
const paired: Record<string, unknown>[] = [];
/** Mean and standard error of per-seed differences. */
function meanSe(d: number[]): { mean: number; se: number } {
  const m = d.reduce((a, x) => a + x, 0) / d.length;
  const v = d.length > 1 ? d.reduce((a, x) => a + (x - m) ** 2, 0) / (d.length - 1) : 0;
  return { mean: m, se: Math.sqrt(v / d.length) };
}
for (const w of workloads) {
  // every run of a workload played the same seeded trace: take it from any of them
  const run = rec.runs.find((r) => r.workload === w)!;
  const arrivals = [...run.tasksDetail].sort((a, b) => a.i - b.i)
    .map((t) => ({ time: t.arrivalS, segment: Number(/(\d+)/.exec(t.seg)![1]) }));
  for (const scheme of schemes) {
    const ms: SimMetrics[] = [];
    const dev: DeviceMetrics[] = [];
    const own = rec.runs.find((r) => r.workload === w && r.scheme === scheme);
    const sc = FIXED_SCALE !== null ? { scale: FIXED_SCALE, n: 0 } : SERVICE === 'in-run' && own ? inRunScale(own) : { scale: 1, n: 0 };
    for (let s = 1; s <= SEEDS; s++) {
      const res = simulate(config(scheme, arrivals, run.durationS, s, sc.scale));
      ms.push(res.metrics);
      if (res.device) dev.push(res.device);
      if (SHOW_DECISIONS && s === 1 && !JSON_OUT)
        for (const d of res.decisions)
          console.log(`    #${w} ${scheme} t=${d.t.toFixed(1)} size ${d.sizeMiB.toFixed(1)} used ${d.usedMiB.toFixed(1)} `
            + `R ${d.meanR === null ? '-' : d.meanR.toFixed(2)} ${d.reason}`);
    }
    perSeed.set(`${w}/${scheme}`, ms);
    const avg = (f: (m: typeof ms[number]) => number): number => ms.reduce((a, m) => a + f(m), 0) / ms.length;
    const real = rec.runs.find((r) => r.workload === w && r.scheme === scheme);
    const davg = (f: (d: DeviceMetrics) => number): number | null =>
      (dev.length ? dev.reduce((a, d) => a + f(d), 0) / dev.length : null);
    const row = {
      workload: w, scheme, seeds: SEEDS, serviceScale: sc.scale, serviceScaleTasks: sc.n,
      device: device ? {
        ...device, busyFraction: davg((d) => d.busyFraction), meanWaitS: davg((d) => d.meanWaitS),
        readMiB: davg((d) => d.readMiB),
      } : null,
      sim: {
        meanS: avg((m) => m.meanR), p95S: avg((m) => m.p95R), sloTaskFraction: avg((m) => m.sloTaskFraction),
        mGBh: 1000 * avg((m) => m.gbHours), actuations: avg((m) => m.actuations),
        meanSizeMiB: avg((m) => m.meanSizeMiB), memHit: avg((m) => m.memHitFraction),
      },
      real: real ? {
        meanS: real.meanS, p95S: real.p95S, sloTaskFraction: real.sloTaskFraction, mGBh: 1000 * real.gbHours,
        actuations: real.actuations,
      } : null,
    };
    rows.push(row);
    const diffPct = row.real ? (row.sim.meanS / row.real.meanS - 1) * 100 : null;
    Object.assign(row, { diffMeanPct: diffPct });
    if (!JSON_OUT) {
      const s = row.sim;
      console.log(`#${w} ${scheme.padEnd(12)} sim: mean ${s.meanS.toFixed(2)} s p95 ${s.p95S.toFixed(2)} s `
        + `over SLO ${(100 * s.sloTaskFraction).toFixed(1)} % `
        + `${s.mGBh.toFixed(3)} mGB·h (mean ${s.meanSizeMiB.toFixed(1)} MiB, from memory ${(100 * s.memHit).toFixed(0)} %) `
        + `actuations ${s.actuations.toFixed(1)}`
        + (row.real ? ` | real: mean ${row.real.meanS.toFixed(2)} p95 ${row.real.p95S.toFixed(2)} `
          + `over ${(100 * row.real.sloTaskFraction).toFixed(1)} % ${row.real.mGBh.toFixed(3)} mGB·h act ${row.real.actuations}` : '')
        + (diffPct !== null ? ` | sim/real mean ${diffPct >= 0 ? '+' : ''}${diffPct.toFixed(1)} %` : '')
        + (SERVICE !== 'alone' ? ` | service x${sc.scale.toFixed(3)} (${sc.n} lone tasks)` : '')
        + (row.device ? ` | device busy ${(100 * row.device.busyFraction!).toFixed(0)} %, read wait ${row.device.meanWaitS!.toFixed(3)} s/task` : ''));
    }
  }
}
for (const w of workloads) {
  const im = perSeed.get(`${w}/improved`); const aq = perSeed.get(`${w}/aq`);
  if (!im || !aq) continue;
  const diff = (f: (m: SimMetrics) => number): { mean: number; se: number } =>
    meanSe(im.map((m, k) => f(m) - f(aq[k]!)));
  const p = {
    workload: w, seeds: SEEDS,
    sloTaskFractionPts: diff((m) => 100 * m.sloTaskFraction), p95S: diff((m) => m.p95R),
    mGBh: diff((m) => 1000 * m.gbHours),
  };
  paired.push(p);
  if (!JSON_OUT) {
    const f = (x: { mean: number; se: number }, d: number): string => `${x.mean >= 0 ? '+' : ''}${x.mean.toFixed(d)} ± ${x.se.toFixed(d)}`;
    console.log(`#${w} improved − aq, paired over ${SEEDS} seeds (mean ± se): over SLO ${f(p.sloTaskFractionPts, 2)} pts, `
      + `p95 ${f(p.p95S, 3)} s, ${f(p.mGBh, 3)} mGB·h`);
  }
}
const realNoise: ({ workload: number } & GoalNoise)[] = [];
for (const w of workloads) {
  const t = (s: string): Recorded['runs'][number]['tasksDetail'] | undefined =>
    rec.runs.find((r) => r.workload === w && r.scheme === s)?.tasksDetail;
  const n = goalNoise({ staticMax: t('static-max'), aq: t('aq'), improved: t('improved') }, compression.sloS);
  realNoise.push({ workload: w, ...n });
  if (!JSON_OUT) console.log(`recorded real runs: ${formatGoalNoise(w, n)}`);
}
if (JSON_OUT) {
  const out = {
    file: FILE, seeds: SEEDS, sloS: compression.sloS, promotion, device, service: SERVICE, rows, paired, realNoise,
  };
  console.log(JSON.stringify(out, null, 1));
}
