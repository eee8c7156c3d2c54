import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShareController, SCHEMES, type ControllerConfig, type Measurement } from '../../../src/core/control/controller.js';
import { arbitrateBudget } from '../../../src/core/control/budget.js';
import { Rng } from '../../../src/core/sim/rng.js';

const MiB = 1024 * 1024;
const model = { a: 3.0, b: 65, c: 67 };
const base = (scheme: ControllerConfig['scheme'], over: Partial<ControllerConfig> = {}): ControllerConfig => ({
  scheme,
  reference: 10,
  minBytes: 32 * MiB,
  maxBytes: 388 * MiB,
  initialBytes: 64 * MiB,
  rThresh: 2,
  mThreshBytes: 4 * MiB,
  ciMin: 30,
  ciMax: 240,
  serviceModel: model,
  rls: { nA: 1, nB: 0, d: 1, f0: 10, b0Init: -0.05 },
  ...over,
});
const meas = (time: number, r: number | null, size: number, arrivals = 4): Measurement => ({
  time,
  meanResponseTime: r,
  arrivals,
  shareUsedBytes: size / 2,
  shareSizeBytes: size,
});

test('Algorithm 1 (adaptive): interval halves on an actuation and doubles otherwise, within [ci_min, ci_max]', () => {
  const c = new ShareController(base('adaptive', { ciInitial: 120, rls: { theta0: [0, -0.05], f0: 1e-9 } }));
  // theta fixed (f0 ~ 0): y = R - 10; Δm = -(a*y)/b0 with a = 0 -> Δm = 0: no actuation, ci doubles
  let d = c.step(meas(120, 9, c.sizeBytes));
  assert.equal(d.actuated, false);
  assert.equal(d.nextIntervalS, 240);
  d = c.step(meas(360, 9, c.sizeBytes));
  assert.equal(d.nextIntervalS, 240); // capped at ci_max
  // a = 1: Δm = -(1 * 5)/(-0.05) = +100 MiB >= m_thresh: actuation, ci halves
  const c2 = new ShareController(base('adaptive', { ciInitial: 240, rls: { theta0: [1, -0.05], f0: 1e-9 } }));
  d = c2.step(meas(240, 15, c2.sizeBytes));
  assert.equal(d.actuated, true);
  assert.equal(d.nextIntervalS, 120);
  assert.equal(d.sizeBytes, 164 * MiB);
  d = c2.step(meas(360, 15, d.sizeBytes));
  assert.equal(d.nextIntervalS, 60);
  d = c2.step(meas(420, 15, d.sizeBytes));
  assert.equal(d.nextIntervalS, 30);
  d = c2.step(meas(450, 15, d.sizeBytes));
  assert.equal(d.nextIntervalS, 30); // floored at ci_min
  assert.equal(d.sizeBytes, 388 * MiB); // clamped at the max bound
  // m_thresh: a small Δm is not applied
  const c3 = new ShareController(base('adaptive', { mThreshBytes: 50 * MiB, rls: { theta0: [0.1, -0.05], f0: 1e-9 } }));
  d = c3.step(meas(30, 12, c3.sizeBytes)); // Δm = 0.2/0.05 = 4 MiB < 50
  assert.equal(d.actuated, false);
  assert.equal(d.sizeBytes, 64 * MiB);
});

test('Algorithm 1 (queue): re-prediction only on a change in R of at least R_thresh', () => {
  const c = new ShareController(base('queue', { rThresh: 3 }));
  // first measurement predicts: λ = 4/30; target E[X] = 10/(1 + 10λ) = 4.29 > E[X|0] -> the smallest size
  let d = c.step(meas(30, 9, c.sizeBytes, 4));
  assert.equal(d.sizeBytes, 32 * MiB);
  assert.equal(d.reason, 'queue');
  // same R at a much higher load: |ΔR| < R_thresh -> no re-prediction even though λ rose
  d = c.step(meas(60, 10, d.sizeBytes, 12));
  assert.equal(d.sizeBytes, 32 * MiB);
  // large change in R: re-predicts with the higher λ and the measured offset -> grows
  d = c.step(meas(90, 25, d.sizeBytes, 12));
  assert.ok(d.sizeBytes > 32 * MiB, `${d.sizeBytes / MiB}`);
});

test('aq combines both: prediction on a spike, RLS otherwise', () => {
  const c = new ShareController(base('aq'));
  const d1 = c.step(meas(30, 8, c.sizeBytes, 4));
  assert.ok(d1.reason.startsWith('queue') || d1.reason === 'hold' || d1.reason === 'rls');
  const d2 = c.step(meas(60, 30, d1.sizeBytes, 8));
  assert.ok(d2.sizeBytes > d1.sizeBytes);
});

test('aq: a re-prediction that moves the size by m_thresh halves ci even when the RLS step is small', () => {
  // θ fixed with a = 0: the RLS proposes Δm = 0, so only the queueing jump (line 9) moves the size
  const c = new ShareController(base('aq', { ciInitial: 240, rThresh: 2, rls: { theta0: [0, -0.05], f0: 1e-9 } }));
  let d = c.step(meas(240, 8, c.sizeBytes, 32)); // first measurement: re-predicts; λ = 4/30 s⁻¹ -> the floor
  assert.equal(d.sizeBytes, 32 * MiB);
  assert.equal(d.nextIntervalS, 120); // 64 -> 32 MiB is >= m_thresh (4 MiB): an actuation
  d = c.step(meas(360, 8.5, d.sizeBytes, 16)); // |ΔR| < R_thresh: no re-prediction, RLS Δm = 0 -> ci doubles
  assert.equal(d.sizeBytes, 32 * MiB);
  assert.equal(d.nextIntervalS, 240);
  d = c.step(meas(600, 40, d.sizeBytes, 96)); // spike at λ = 0.4: target unreachable -> the ceiling, ci halves
  assert.equal(d.sizeBytes, 388 * MiB);
  assert.equal(d.nextIntervalS, 120);
});

test('static keeps its size; bad parameters and measurements get codes', () => {
  const s = new ShareController(base('static', { initialBytes: 100 * MiB }));
  assert.equal(s.step(meas(30, 50, 100 * MiB)).sizeBytes, 100 * MiB);
  const bad: Partial<ControllerConfig>[] = [{ minBytes: 0 }, { minBytes: -5 }, { maxBytes: 1 }, { ciMin: 300, ciMax: 30 }, { ciMin: 0 }, { reference: 0 }, { rls: { f0: 0 } }, { rls: { nA: 99 } }, { rls: { d: 0 } }, { rThresh: -1 }, { scheme: 'nope' as never }];
  for (const o of bad) assert.throws(() => new ShareController(base('aq', o)), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' }, JSON.stringify(o));
  assert.throws(() => new ShareController({ scheme: 'queue', minBytes: MiB, maxBytes: 2 * MiB }), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
  const c = new ShareController(base('aq'));
  for (const m of [
    { ...meas(30, 5, MiB), time: NaN },
    { ...meas(30, 5, MiB), arrivals: -1 },
    { ...meas(30, 5, MiB), shareSizeBytes: Infinity },
    { ...meas(30, -2, MiB) },
  ]) {
    assert.throws(() => c.step(m), { code: 'HYLICS_ERR_CONTROL_INVALID_MEASUREMENT' });
  }
  c.step(meas(60, 5, 64 * MiB));
  assert.throws(() => c.step(meas(30, 5, 64 * MiB)), { code: 'HYLICS_ERR_CONTROL_INVALID_MEASUREMENT' }); // time backwards
});

test('property: whatever it measures, every scheme proposes a finite size within bounds and budget', () => {
  const rng = new Rng(2024);
  for (const scheme of SCHEMES) {
    for (let trial = 0; trial < 30; trial++) {
      const minB = (1 + rng.int(64)) * MiB;
      const maxB = minB + rng.int(1024) * MiB;
      const c = new ShareController(
        base(scheme, {
          minBytes: minB,
          maxBytes: maxB,
          initialBytes: rng.int(2048) * MiB,
          rls: {
            nA: rng.int(4),
            nB: rng.int(3),
            d: 1 + rng.int(3),
            f0: 10 ** (rng.next() * 8 - 2),
            b0Init: -rng.next(),
          },
        }),
      );
      let budget = Infinity;
      let t = 0;
      for (let k = 0; k < 60; k++) {
        if (rng.next() < 0.1) { budget = (1 + rng.int(600)) * MiB; c.setBudget(budget); }
        t += rng.next() < 0.05 ? 0 : 1 + rng.next() * 300;
        const pick = rng.next();
        const r = pick < 0.1 ? null : pick < 0.15 ? Infinity : pick < 0.2 ? 0 : pick < 0.25 ? 1e9 : rng.exponential(12);
        const d = c.step({
          time: t,
          meanResponseTime: r,
          arrivals: rng.next() < 0.2 ? 0 : rng.int(500),
          shareUsedBytes: rng.int(4096) * MiB,
          shareSizeBytes: rng.next() < 0.5 ? c.sizeBytes : rng.int(4096) * MiB,
          fullFallbacks: rng.int(10),
        });
        const cap = Math.min(maxB, budget);
        assert.ok(Number.isFinite(d.sizeBytes), `${scheme}: NaN/inf size`);
        assert.ok(d.sizeBytes <= cap + 1, `${scheme}: ${d.sizeBytes} > cap ${cap}`);
        assert.ok(d.sizeBytes >= Math.min(minB, cap) - 1, `${scheme}: ${d.sizeBytes} < min ${minB}`);
        assert.ok(Number.isFinite(d.nextIntervalS) && d.nextIntervalS >= 30 && d.nextIntervalS <= 240, `${scheme}: ci ${d.nextIntervalS}`);
        assert.ok(Number.isFinite(d.lambda) && d.lambda >= 0);
      }
    }
  }
});

test('budget arbitration: minimums first, water-filling, never above the budget', () => {
  const g = arbitrateBudget([{ id: 'a', wantBytes: 100, minBytes: 10 }, { id: 'b', wantBytes: 500, minBytes: 10 }, { id: 'c', wantBytes: 5, minBytes: 5 }], 300);
  assert.equal(g.get('a'), 100);
  assert.equal(g.get('c'), 5);
  assert.equal(g.get('b'), 195);
  assert.throws(() => arbitrateBudget([{ id: 'a', wantBytes: 10, minBytes: 200 }], 100), { code: 'HYLICS_ERR_CONTROL_BUDGET' });
  const rng = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const reqs = Array.from({ length: 1 + rng.int(6) }, (_, j) => ({ id: `g${j}`, wantBytes: rng.int(1000), minBytes: rng.int(50), weight: 0.5 + rng.next() }));
    const budget = reqs.reduce((s, r) => s + r.minBytes, 0) + rng.int(2000);
    const out = arbitrateBudget(reqs, budget);
    let sum = 0;
    for (const r of reqs) {
      const v = out.get(r.id)!;
      sum += v;
      assert.ok(v >= r.minBytes && v <= Math.max(r.minBytes, r.wantBytes));
    }
    assert.ok(sum <= budget);
  }
});

test('improved: while tasks arrive it holds at least the knee of E[X|m] (c·f/(1 − f)), and releases it when idle', () => {
  // E[X|m] = 3 + 20/(m + 10): the knee at f = 0.8 is 4c = 40 MiB; the SLO is never at stake (R = 4 s)
  const cfg = (f: number): ControllerConfig => base('improved', { minBytes: 16 * MiB, initialBytes: 128 * MiB, serviceModel: { a: 3, b: 20, c: 10 }, improved: { kneeFraction: f } });
  const run = (c: ShareController, from: number, steps: number, arrivals: number): number => {
    let size = c.sizeBytes;
    for (let k = 0; k < steps; k++) {
      // 80 MiB of working set (learned while the share is bigger); a smaller share is full and some tasks fall back
      const d = c.step({
        time: from + 30 * (k + 1),
        interval: 30,
        meanResponseTime: arrivals > 0 ? 4 : null,
        completions: arrivals,
        arrivals,
        shareUsedBytes: Math.min(80 * MiB, size),
        shareSizeBytes: size,
        fullFallbacks: arrivals > 0 && size < 80 * MiB ? 1 : 0,
      });
      size = d.sizeBytes;
      assert.ok(size >= 16 * MiB && size <= 388 * MiB);
    }
    return size;
  };
  const withKnee = new ShareController(cfg(0.8));
  const busy = run(withKnee, 0, 20, 4);
  assert.ok(Math.abs(busy - 40 * MiB) < 1, `holds the knee under load: ${busy / MiB} MiB`);
  const idle = run(withKnee, 600, 20, 0);
  assert.equal(idle, 16 * MiB, 'no arrivals: back to the floor');
  const noKnee = new ShareController(cfg(0));
  assert.equal(run(noKnee, 0, 20, 4), 16 * MiB, 'kneeFraction 0: the SLO is met, so the floor');
  assert.throws(() => new ShareController(cfg(1)), /HYLICS_ERR_CONTROL_INVALID_PARAM|kneeFraction/);
});

test('improved: holds memory only while the memory tier is measured faster; a knee beyond the largest share is none', () => {
  // E[X|m] = 3 + 20/(m + 10): knee 40 MiB; 80 MiB of working set; the SLO is never at stake (R = 4 s)
  const cfg = (over: Partial<ControllerConfig> = {}): ControllerConfig =>
    base('improved', { minBytes: 16 * MiB, initialBytes: 128 * MiB, serviceModel: { a: 3, b: 20, c: 10 }, ...over });
  const reasons: string[] = [];
  const run = (c: ShareController, memS: number, diskS: number, steps = 20): number => {
    let size = c.sizeBytes;
    reasons.length = 0;
    for (let k = 0; k < steps; k++) {
      const d = c.step({
        time: 30 * (k + 1), interval: 30, meanResponseTime: 4, completions: 4, arrivals: 4,
        shareUsedBytes: Math.min(80 * MiB, size), shareSizeBytes: size, fullFallbacks: size < 80 * MiB ? 1 : 0,
        memoryTierTasks: 2, memoryTierMeanS: memS, diskTierTasks: 2, diskTierMeanS: diskS,
      });
      size = d.sizeBytes;
      reasons.push(d.reason);
    }
    return size;
  };
  // a cold start's first decision goes to its target at once (128 -> the 40 MiB knee), later shrinks by 40 % a step
  assert.ok(Math.abs(run(new ShareController(cfg()), 3.3, 4.0, 1) - 40 * MiB) < 1, 'first decision: no shrink limit');
  // memory tier 20 % faster: the knee is held as before
  assert.ok(Math.abs(run(new ShareController(cfg()), 3.3, 4.0) - 40 * MiB) < 1, 'memory faster: the knee');
  // memory tier no faster (e.g. a promotion copy on the task's path): the floor, and the log says why
  const slow = new ShareController(cfg());
  assert.equal(run(slow, 4.2, 4.0), 16 * MiB, 'memory no faster: the floor');
  assert.ok(reasons.some((r) => /^no-tier-gain \(memory\/disk 1\.05\)$/.test(r)), reasons.join(', '));
  // tierMinTasks 0: the measurement is ignored (model only)
  assert.ok(Math.abs(run(new ShareController(cfg({ improved: { tierMinTasks: 0 } })), 4.2, 4.0) - 40 * MiB) < 1);
  // a degenerate fit whose knee (4c) lies far beyond the largest share: no knee, so the floor (SLO met)
  const flat = new ShareController(cfg({ serviceModel: { a: -26, b: 541228, c: 19384 } }));
  assert.equal(run(flat, 3.3, 4.0), 16 * MiB, 'knee beyond the range: none');
  // the 40 % shrink limit never makes a step below m_thresh: from 20 MiB (40 % = 8) with m_thresh 10 it still shrinks
  const small = new ShareController(
    cfg({ minBytes: 8 * MiB, initialBytes: 20 * MiB, mThreshBytes: 10 * MiB, improved: { kneeFraction: 0 } }));
  assert.equal(run(small, 4.2, 4.0, 4), 8 * MiB, 'not frozen by the shrink limit under the deadband');
});

test('improved: feed-forward and working-set growth only while the SLO is at risk (measured mean or p95, or the model) or memory measurably pays', () => {
  // τ 10 s: at risk when R >= 8.5 s (0.85 τ), p95 >= 9 s (0.9 τ), or the model at the current size predicts R >= 8.5 s.
  // 80 MiB of working set learned while the share is bigger; the pessimistic feed-forward asks for ~370 MiB at λ 0.2 /s
  const cfg = (over: Partial<ControllerConfig['improved']> = {}): ControllerConfig =>
    base('improved', { minBytes: 32 * MiB, initialBytes: 128 * MiB, improved: { kneeFraction: 0, ...over } });
  const reasons: string[] = [];
  let clock = 0;
  const step = (c: ShareController, o: { r: number; p95?: number; arrivals?: number; memS?: number }): number => {
    clock += 30; // the fake clock: one 30 s interval per step
    const size = c.sizeBytes;
    const d = c.step({
      time: clock, interval: 30, meanResponseTime: o.r, p95ResponseTime: o.p95 ?? null, completions: 6,
      arrivals: o.arrivals ?? 6, shareUsedBytes: Math.min(80 * MiB, size), shareSizeBytes: size,
      fullFallbacks: size < 80 * MiB ? 1 : 0,
      ...(o.memS !== undefined
        ? { memoryTierTasks: 2, memoryTierMeanS: o.memS, diskTierTasks: 2, diskTierMeanS: 4 } : {}),
    });
    reasons.push(d.reason);
    return d.sizeBytes / MiB;
  };
  // R 4 s, p95 6 s: no risk, so the share goes to what the model as measured asks for (the floor), no growth
  const c = new ShareController(cfg());
  const sizes = [1, 2, 3, 4, 5, 6].map(() => step(c, { r: 4, p95: 6 }));
  assert.equal(sizes.at(-1), 32, `no risk: the floor (${sizes.join(', ')})`);
  assert.ok(sizes.every((s, k) => k === 0 || s <= sizes[k - 1]!), `never grows without risk: ${sizes.join(', ')}`);
  assert.ok(reasons.includes('no-slo-risk'), reasons.join(', '));
  // p95 at 0.9 τ: at risk, grows to the working set
  assert.ok(step(c, { r: 4, p95: 9.2 }) > 60, 'p95 near the SLO: grows');
  assert.equal(reasons.at(-1), 'working-set');
  // the mean at the set point (no p95 measured): at risk
  clock = 0;
  const m = new ShareController(cfg());
  for (let k = 0; k < 6; k++) step(m, { r: 4 });
  assert.equal(m.sizeBytes, 32 * MiB);
  assert.ok(step(m, { r: 8.6 }) > 60, 'mean at 0.85 τ: grows');
  // the model predicts a miss (λ 0.35 /s saturates the current size), before any measurement shows it: grows
  clock = 0;
  const f = new ShareController(cfg());
  for (let k = 0; k < 6; k++) step(f, { r: 4 });
  assert.ok(step(f, { r: 4, p95: 6, arrivals: 20 }) > 60, 'feed-forward on a predicted miss');
  // riskMeanFraction 0: always at risk, the behaviour before (holds the working set on the model alone)
  clock = 0;
  const old = new ShareController(cfg({ riskMeanFraction: 0 }));
  for (let k = 0; k < 6; k++) step(old, { r: 4, p95: 6 });
  assert.ok(old.sizeBytes > 60 * MiB, `gate off: the working set (${old.sizeBytes / MiB} MiB)`);
  // the memory tier measured 20 % faster than the disk tier (>= 10 %, over 3+ paired tasks): memory pays, so the
  // model alone grows as before; measured only 5 % faster: not enough, the gate holds
  clock = 0;
  const pays = new ShareController(cfg());
  for (let k = 0; k < 6; k++) step(pays, { r: 4, p95: 6, memS: 3.2 });
  assert.ok(pays.sizeBytes > 60 * MiB, `memory pays: the working set (${pays.sizeBytes / MiB} MiB)`);
  clock = 0;
  const marginal = new ShareController(cfg());
  for (let k = 0; k < 6; k++) step(marginal, { r: 4, p95: 6, memS: 3.8 });
  assert.equal(marginal.sizeBytes, 32 * MiB, 'memory only 5 % faster: no growth without risk');
  // a p95 that is negative or not a number is refused like the mean
  assert.throws(() => new ShareController(cfg()).step({ ...meas(30, 4, 64 * MiB), p95ResponseTime: -1 }),
    /HYLICS_ERR_CONTROL_INVALID_MEASUREMENT|p95ResponseTime/);
});
