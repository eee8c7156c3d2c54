// bench/closed-loop-replay: the simulator replaying the arrival traces a real closed-loop run recorded (issue #9).
// Reads bench/results/closed-loop.json (or --file F): for every recorded run, the same arrivals (times and segments),
// the measured alone times (memS / promoteS / diskS), the serial fraction from the pairs, the calibrated E[X|m], the
// SLO, windows and control bounds of that run; runs simulate() for each scheme asked (default: those recorded plus
// aq and improved) and prints mean, p95, tasks over the SLO, GB·h (milli) and actuations beside the real figures.
// Offline and quick (no guest, no root): the tool to judge a controller change against the recorded traces.
//   node dist/bench/closed-loop-replay.js [--file bench/results/closed-loop.json] [--schemes aq,improved]
//     [--seeds 1] [--decisions] [--json] [--improved '{"tierMinTasks":0}']
// --seeds N replays each trace with N simulator seeds (service noise, segment sizes) and prints means over them.
import { readFileSync } from 'node:fs';
import { DEFAULT_SERVICE, simulate, type SimConfig, type SimMetrics } from '../src/core/sim/simulator.js';
import type { ControllerConfig, ImprovedOptions } from '../src/core/control/controller.js';
import { actuationThreshold } from '../src/host/control/loop.js';
import { resultPath } from './lib/results.js';
import { arg, argStr } from './lib/args.js';

const MiB = 1024 * 1024;
const FILE = argStr('file', resultPath('closed-loop.json'));
const SEEDS = arg('seeds', 1);
const SHOW_DECISIONS = process.argv.includes('--decisions');
const JSON_OUT = process.argv.includes('--json');
/** Options of the improved scheme as JSON, e.g. '{"tierMinTasks":0}' (docs/controller.md, "Improved scheme"). */
const IMPROVED = JSON.parse(argStr('improved', '{}')) as ImprovedOptions;

interface Recorded {
  setup: {
    alone: { memS: number; promoteS: number; diskS: number; serialFractionFromPairs: number };
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
    gbHours: number; actuations: number; tasksDetail: { i: number; seg: string; arrivalS: number }[];
  }[];
}

const rec = JSON.parse(readFileSync(FILE, 'utf8')) as Recorded;
const { alone, compression, catalogue, control, calibration, guest } = rec.setup;
const workloads = [...new Set(rec.runs.map((r) => r.workload))];
const recorded = [...new Set([...rec.runs.map((r) => r.scheme), 'aq', 'improved'])].join(',');
const schemes = argStr('schemes', recorded).split(',').filter(Boolean);

type Arrivals = { time: number; segment: number }[];
function config(scheme: string, arrivals: Arrivals, durationS: number, seed: number): SimConfig {
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
      ...DEFAULT_SERVICE, memS: alone.memS, diskS: alone.diskS, promoteS: alone.promoteS,
      serialFraction: alone.serialFractionFromPairs, pageCacheCost: 0,
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
for (const w of workloads) {
  // every run of a workload played the same seeded trace: take it from any of them
  const run = rec.runs.find((r) => r.workload === w)!;
  const arrivals = [...run.tasksDetail].sort((a, b) => a.i - b.i)
    .map((t) => ({ time: t.arrivalS, segment: Number(/(\d+)/.exec(t.seg)![1]) }));
  for (const scheme of schemes) {
    const ms: SimMetrics[] = [];
    for (let s = 1; s <= SEEDS; s++) {
      const res = simulate(config(scheme, arrivals, run.durationS, s));
      ms.push(res.metrics);
      if (SHOW_DECISIONS && s === 1 && !JSON_OUT)
        for (const d of res.decisions)
          console.log(`    #${w} ${scheme} t=${d.t.toFixed(1)} size ${d.sizeMiB.toFixed(1)} used ${d.usedMiB.toFixed(1)} `
            + `R ${d.meanR === null ? '-' : d.meanR.toFixed(2)} ${d.reason}`);
    }
    const avg = (f: (m: typeof ms[number]) => number): number => ms.reduce((a, m) => a + f(m), 0) / ms.length;
    const real = rec.runs.find((r) => r.workload === w && r.scheme === scheme);
    const row = {
      workload: w, scheme, seeds: SEEDS,
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
    if (!JSON_OUT) {
      const s = row.sim;
      console.log(`#${w} ${scheme.padEnd(12)} sim: mean ${s.meanS.toFixed(2)} s p95 ${s.p95S.toFixed(2)} s `
        + `over SLO ${(100 * s.sloTaskFraction).toFixed(1)} % `
        + `${s.mGBh.toFixed(3)} mGB·h (mean ${s.meanSizeMiB.toFixed(1)} MiB, from memory ${(100 * s.memHit).toFixed(0)} %) `
        + `actuations ${s.actuations.toFixed(1)}`
        + (row.real ? ` | real: mean ${row.real.meanS.toFixed(2)} p95 ${row.real.p95S.toFixed(2)} `
          + `over ${(100 * row.real.sloTaskFraction).toFixed(1)} % ${row.real.mGBh.toFixed(3)} mGB·h act ${row.real.actuations}` : ''));
    }
  }
}
if (JSON_OUT) console.log(JSON.stringify({ file: FILE, seeds: SEEDS, sloS: compression.sloS, rows }, null, 1));
