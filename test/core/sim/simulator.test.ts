import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulate, defaultSimConfig, psRate, DEFAULT_SERVICE } from '../../../src/core/sim/simulator.js';
import { serialFractionForRate } from '../../../src/core/sim/ps-server.js';
import { Rng, ZipfSampler } from '../../../src/core/sim/rng.js';
import { parseArrivalTrace, formatArrivalTrace, generateTrace, ArrivalGenerator, paperWorkload, loadChangeTimes } from '../../../src/core/sim/workload.js';
import { calibrateServiceModel, calibrationOptions, schemeConfig } from '../../../src/core/sim/paper.js';
import { paired } from '../../../src/core/sim/evaluate.js';
import { psResponseTime } from '../../../src/core/control/queueing.js';

const MiB = 1024 * 1024;

test('without the controller the simulator matches M/G/1-PS theory on a long run', () => {
  // pure processor sharing (serial fraction 0, no streaming interference), every task from the disk tier
  // (a share too small for any segment), no page cache (4 GB RAM): R = E[X] / (1 - λ E[X]) for any service law
  for (const meanIa of [8, 6]) {
    const r = simulate(
      defaultSimConfig({
        seed: 99,
        durationS: 400 * 3600,
        ramGB: 4,
        workload: { kind: 'poisson', meanInterarrival: meanIa },
        service: { ...DEFAULT_SERVICE, serialFraction: 0, streamInterference: 0 },
        controller: null,
        fixedSizeBytes: 1,
        record: false,
      }),
    );
    const theory = psResponseTime(r.metrics.meanServiceS, 1 / meanIa);
    const rel = Math.abs(r.metrics.meanR - theory) / theory;
    assert.ok(rel < 0.04, `mean ${r.metrics.meanR.toFixed(3)} vs theory ${theory.toFixed(3)} (${(rel * 100).toFixed(1)} %)`);
    assert.ok(Math.abs(r.metrics.meanServiceS - 4.02) < 0.2, `E[X] ${r.metrics.meanServiceS}`); // per-segment complexity makes the popular segments weigh in
  }
});

test('processor-sharing rate: pure PS at s = 0, better concurrency with s > 0, per-task vCPU cap', () => {
  assert.equal(psRate(1, 4, 0.2), 1);
  assert.ok(Math.abs(psRate(3, 4, 0) - 1 / 3) < 1e-12);
  assert.ok(psRate(2, 4, 0.15) > 0.5 && psRate(2, 8, 0.15) > psRate(2, 4, 0.15));
  // a task that can use at most 4 vCPUs: two of them run side by side at full speed on 8 vCPUs, three share
  assert.equal(psRate(2, 8, 0, 4), 1);
  assert.ok(Math.abs(psRate(4, 8, 0, 4) - 0.5) < 1e-12);
  assert.equal(psRate(3, 8, 0.1, 0), psRate(3, 8, 0.1, 8)); // 0 = all the guest's vCPUs
  assert.throws(() => simulate(defaultSimConfig({ service: { ...DEFAULT_SERVICE, maxTaskVcpus: -1 } })), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' });
});

test('paired verdicts: identical runs tie at exactly 0, a consistent difference is better/worse', () => {
  const base = simulate(
    defaultSimConfig({ seed: 2, durationS: 600, controller: null, fixedSizeBytes: 64 * MiB, record: false }),
  ).metrics;
  const xs = [0, 1, 2, 3, 4, 5].map((i) => ({ ...base, error: 10 + i, gbHours: 1 }));
  const lower = xs.map((m, i) => ({ ...m, error: m.error - 1 - (i % 2) * 0.1, gbHours: 1 }));
  assert.deepEqual(paired(xs, xs, 'error'), { diff: 0, se: 0, verdict: 'tie' });
  assert.equal(paired(lower, xs, 'error').verdict, 'better');
  assert.equal(paired(xs, lower, 'error').verdict, 'worse');
  assert.equal(paired(lower, xs, 'gbHours').verdict, 'tie');
  const noisy = xs.map((m, i) => ({ ...m, error: m.error + (i % 2 === 0 ? 3 : -3.2) }));
  assert.equal(paired(noisy, xs, 'error').verdict, 'tie');
});

test('a run is a pure function of its seed', () => {
  const cfg = (seed: number) => {
    const cal = calibrateServiceModel({}, { durationS: 3600 });
    return defaultSimConfig({ seed, workload: paperWorkload(2), controller: schemeConfig('aq', cal.model, { maxMiB: 388, minMiB: 32 }) });
  };
  const a = simulate(cfg(5));
  const b = simulate(cfg(5));
  const c = simulate(cfg(6));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.metrics, c.metrics);
});

test('common random numbers: with one seed every share size sees the same tasks (paired comparisons)', () => {
  const run = (m: number) =>
    simulate(defaultSimConfig({ seed: 11, workload: paperWorkload(2), controller: null, fixedSizeBytes: m * MiB }));
  const a = run(16);
  const b = run(400);
  assert.deepEqual(a.windows.map((w) => w.arrivals), b.windows.map((w) => w.arrivals));
  assert.ok(b.metrics.meanServiceS < a.metrics.meanServiceS); // only the tier differs
});

test('the share is a memory tier: bigger shares give more memory hits and never exceed their size', () => {
  const run = (m: number) =>
    simulate(
      defaultSimConfig({ seed: 3, durationS: 4 * 3600, controller: null, fixedSizeBytes: m * MiB, record: false }),
    ).metrics;
  const small = run(16);
  const big = run(512);
  assert.ok(big.memHitFraction > small.memHitFraction);
  assert.ok(big.meanServiceS < small.meanServiceS);
  assert.ok(small.peakUsedMiB <= 16 + 1e-9);
  assert.ok(big.peakUsedMiB < 512); // 60 s eviction bounds the working set
});

test('promoteS: a task whose segment is copied into the share on the way pays it, a repeat request does not', () => {
  // one task at a time (no queueing), no spread: each task's response is its alone time
  const arrivals = [0, 20, 40, 60].map((time, i) => ({ time, segment: i < 2 ? 1 : 2 }));
  const run = (promoteS?: number) => simulate(defaultSimConfig({
    durationS: 100, workload: { kind: 'trace', arrivals }, controller: null, fixedSizeBytes: 512 * MiB, record: false,
    service: {
      ...DEFAULT_SERVICE, complexitySigma: 0, noiseSigma: 0, memS: 2, diskS: 3,
      ...(promoteS !== undefined ? { promoteS } : {}),
    },
  })).metrics;
  assert.ok(Math.abs(run().meanR - 2) < 1e-9, 'default: a first touch costs memS (the paper)');
  assert.ok(Math.abs(run(5).meanR - (5 + 2 + 5 + 2) / 4) < 1e-9, 'first touches at promoteS, repeats at memS');
  assert.throws(() => run(-1), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' });
});

test('promotion background: a first touch reads the disk tier (diskS) while its segment enters the share, a repeat request is served from memory', () => {
  const arrivals = [0, 20, 40, 60].map((time, i) => ({ time, segment: i < 2 ? 1 : 2 }));
  const run = (promotion?: 'sync' | 'background', promoteS = 5) => simulate(defaultSimConfig({
    durationS: 100, workload: { kind: 'trace', arrivals }, controller: null, fixedSizeBytes: 512 * MiB, record: false,
    ramGB: 4, // no page cache hits at 4 GB: a disk-tier read costs diskS
    service: {
      ...DEFAULT_SERVICE, complexitySigma: 0, noiseSigma: 0, memS: 2, diskS: 3, promoteS,
      ...(promotion ? { promotion } : {}),
    },
  })).metrics;
  assert.ok(Math.abs(run('background').meanR - (3 + 2 + 3 + 2) / 4) < 1e-9, 'first touches at diskS, promoteS unused');
  assert.ok(Math.abs(run('sync').meanR - (5 + 2 + 5 + 2) / 4) < 1e-9, 'sync: the old model');
  assert.equal(run().meanR, run('sync').meanR, 'sync is the default');
  assert.throws(() => run('later' as 'sync'), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' });
});

test('serial fraction from a measured "two at once" speed inverts psRate and clamps', () => {
  for (const s of [0.05, 0.22, 0.6]) {
    const fit = serialFractionForRate(psRate(2, 1.5, s), 2, 1.5);
    assert.ok(Math.abs(fit.s - s) < 1e-9 && !fit.clamped, `s ${s} -> ${fit.s}`);
  }
  assert.deepEqual(serialFractionForRate(0.4, 2, 1.5), { s: 0, clamped: true }); // slower than pure PS
  assert.deepEqual(serialFractionForRate(0.9, 2, 1.5), { s: 1, clamped: true });
});

test('controller in the loop: every scheme stays within its bounds and reports all metrics', () => {
  const cal = calibrateServiceModel({}, { durationS: 3600 });
  for (const scheme of ['adaptive', 'queue', 'aq', 'improved', 'static', 'senpai', 'mom'] as const) {
    const r = simulate(
      defaultSimConfig({
        seed: 1,
        workload: paperWorkload(2),
        controller: schemeConfig(scheme, cal.model, { minMiB: 32, maxMiB: 388 }),
      }),
    );
    const m = r.metrics;
    assert.ok(m.peakSizeMiB <= 388 + 1e-6, scheme);
    for (const d of r.decisions) assert.ok(d.sizeMiB >= 32 - 1e-6 && d.sizeMiB <= 388 + 1e-6, `${scheme} ${d.sizeMiB}`);
    for (const [k, v] of Object.entries(m)) assert.ok(v === null || Number.isFinite(v), `${scheme} ${k}`);
    assert.ok(m.settlingS !== null && m.settlingS >= 0, `${scheme} settling`);
    assert.ok(m.tasks > 100, `${scheme} tasks ${m.tasks}`);
  }
});

test('workloads: #2 alternates its rate; traces round-trip; bad traces and configs get codes', () => {
  assert.deepEqual(loadChangeTimes(paperWorkload(2), 3600), [600, 1200, 1800, 2400, 3000]);
  const g = new ArrivalGenerator(paperWorkload(2), new Rng(1));
  let slow = 0, fast = 0;
  for (let a = g.next(); a && a.time < 36000; a = g.next()) {
    if (Math.floor(a.time / 600) % 2 === 0) slow++;
    else fast++;
  }
  assert.ok(fast / slow > 1.8 && fast / slow < 2.2, `${fast / slow}`);
  const tr = generateTrace({ kind: 'bursty', calmMean: 10, burstMean: 2, calmS: 300, burstS: 60 }, 3600, new Rng(2));
  assert.deepEqual(parseArrivalTrace(formatArrivalTrace(tr)), tr);
  assert.deepEqual(parseArrivalTrace('# comment\ntime,segment\n0.5,3\n\n1.5,\n'), [{ time: 0.5, segment: 3 }, { time: 1.5 }]);
  for (const bad of ['', 'when\n1\n', 'time\n1\n0.5\n', 'time\nabc\n', 'time\n-1\n', 'time,segment\n1,x\n', 'time,segment\n1\n', 'time\n']) {
    assert.throws(() => parseArrivalTrace(bad), { code: 'HYLICS_ERR_SIM_INVALID_TRACE' }, JSON.stringify(bad));
  }
  for (const over of [{ vcpus: 0 }, { ramGB: -1 }, { durationS: 0 }, { workload: { kind: 'poisson' as const, meanInterarrival: 0 } }, { fixedSizeBytes: -1 }]) {
    assert.throws(() => simulate(defaultSimConfig({ ...over, controller: null })), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' }, JSON.stringify(over));
  }
});

test('Zipf sampler follows its law', () => {
  const z = new ZipfSampler(100, 1);
  const rng = new Rng(11);
  const counts = new Array<number>(100).fill(0);
  for (let i = 0; i < 200000; i++) counts[z.sample(rng)]!++;
  assert.ok(Math.abs(counts[0]! / 200000 - z.probability(0)) < 0.005);
  assert.ok(Math.abs(counts[9]! / 200000 - z.probability(9)) < 0.003);
});

test('workload #2 read as a per-arrival alternation: gaps alternate means 8 s and 4 s (average rate 1/6 s⁻¹)', () => {
  const w = paperWorkload(2, 0);
  assert.deepEqual(w, { kind: 'alternating', means: [8, 4] });
  const g = new ArrivalGenerator(w, new Rng(5));
  let prev = 0; const gaps: number[][] = [[], []];
  for (let i = 0; i < 40000; i++) { const a = g.next()!; gaps[i % 2]!.push(a.time - prev); prev = a.time; }
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean(gaps[0]!) - 8) < 0.25 && Math.abs(mean(gaps[1]!) - 4) < 0.12, `${mean(gaps[0]!)} ${mean(gaps[1]!)}`);
  assert.throws(() => new ArrivalGenerator({ kind: 'alternating', means: [] }, new Rng(1)), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' });
  assert.throws(() => new ArrivalGenerator({ kind: 'alternating', means: [8, 0] }, new Rng(1)), { code: 'HYLICS_ERR_SIM_INVALID_CONFIG' });
});

test('E[X|m] from a light load (§5.2) saturates at a few segments; at λ = 1/8 it keeps falling to the working set', () => {
  const light = calibrateServiceModel({}, calibrationOptions('light'));
  const op = calibrateServiceModel({}, calibrationOptions('operating'));
  const at = (pts: { m: number; ex: number }[], m: number): number => pts.find((p) => p.m === m)!.ex;
  // one task a minute keeps a few segments within the 60 s eviction window: 64 MiB is as good as 256 MiB
  assert.ok(at(light.points, 64) - at(light.points, 256) < 0.01, JSON.stringify(light.points));
  assert.ok(at(op.points, 64) - at(op.points, 256) > 0.2, JSON.stringify(op.points));
  for (const c of [light, op]) for (const p of c.points) assert.ok(Number.isFinite(p.ex) && p.ex > 3 && p.ex < 5);
});
