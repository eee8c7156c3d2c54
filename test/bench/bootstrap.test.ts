import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrap, bootstrapDiff } from '../../bench/lib/bootstrap.js';
import { formatGoalNoise, goalNoise } from '../../bench/lib/goal-noise.js';

const fracOver = (slo: number) => (xs: readonly number[]): number => xs.filter((x) => x > slo).length / xs.length;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test('bootstrapDiff: one task of 45 is within noise; a large paired shift is not; seeded and reproducible', () => {
  // 45 tasks, improved over the SLO on 3, aq on 2 (the quiet run's #1): the plain verdict flips on one task
  const aq = Array.from({ length: 45 }, (_, k) => (k < 2 ? 4 : 2));
  const im = Array.from({ length: 45 }, (_, k) => (k < 3 ? 4 : 2));
  const d = bootstrapDiff(im, aq, fracOver(3.36));
  assert.ok(Math.abs(d.estimate - 1 / 45) < 1e-12);
  assert.ok(d.lo <= 0 && d.hi >= 0 && d.withinNoise, JSON.stringify(d));
  assert.equal(d.resamples, 2000);
  assert.equal(d.level, 0.9);
  assert.deepEqual(bootstrapDiff(im, aq, fracOver(3.36)), d, 'same seed, same interval');
  // paired: every task 1 s slower under one scheme, with a wide spread across tasks: the difference is exactly 1
  const base = Array.from({ length: 45 }, (_, k) => 1 + (k % 9));
  const slow = base.map((x) => x + 1);
  const p = bootstrapDiff(slow, base, mean);
  assert.ok(Math.abs(p.lo - 1) < 1e-9 && Math.abs(p.hi - 1) < 1e-9 && !p.withinNoise, JSON.stringify(p));
  // unpaired the same data is noisier (the spread of each list counts) but the interval still brackets 1
  const u = bootstrapDiff(slow, base, mean, { paired: false });
  assert.ok(u.lo < 1 && u.hi > 1 && u.hi - u.lo > 0.5, JSON.stringify(u));
  // different lengths: resampled independently; paired demanded with different lengths: refused
  assert.ok(Number.isFinite(bootstrapDiff(slow, base.slice(1), mean).lo));
  assert.throws(() => bootstrapDiff(slow, base.slice(1), mean, { paired: true }), RangeError);
  assert.throws(() => bootstrapDiff(slow, base, mean, { level: 1 }), RangeError);
  assert.throws(() => bootstrapDiff(slow, base, mean, { resamples: 0 }), RangeError);
});

test('bootstrap: interval of one statistic (p95 minus the SLO), and empty data gives NaN, not a throw', () => {
  const xs = Array.from({ length: 100 }, (_, k) => k / 10); // 0 .. 9.9
  const p95 = (v: readonly number[]): number => [...v].sort((a, b) => a - b)[Math.ceil(0.95 * v.length) - 1]!;
  const b = bootstrap(xs, (v) => p95(v) - 5, { seed: 7 });
  assert.ok(b.estimate > 4 && b.lo > 0 && !b.withinNoise, JSON.stringify(b));
  assert.ok(b.lo <= b.estimate && b.estimate <= b.hi);
  const e = bootstrap([], mean);
  assert.ok(Number.isNaN(e.estimate) && Number.isNaN(e.lo));
});

test('goalNoise: pairs tasks by index (failed ones dropped), and gives no interval for fewer than 10 tasks', () => {
  const run = (n: number, r: (k: number) => number, failed = -1) =>
    Array.from({ length: n }, (_, k) => ({ i: k, responseS: r(k), code: k === failed ? 1 : 0 }));
  const aq = run(45, (k) => (k < 2 ? 4 : 2));
  const im = run(45, (k) => (k < 3 ? 4 : 2), 40);
  const n = goalNoise({ aq, improved: im, staticMax: run(45, () => 1) }, 3.36);
  assert.equal(n.pairedTasks, 44);
  assert.ok(n.improvedMinusAqSloTaskFraction!.withinNoise);
  assert.ok(n.staticMaxP95MinusSloS!.hi < 0 && !n.staticMaxP95MinusSloS!.withinNoise);
  assert.match(formatGoalNoise(1, n), /improved − aq over SLO \+2\.3 pts \[90 % .*\] within noise/);
  // one arrival per run (a loaded --quick run): nothing to resample
  const one = goalNoise({ aq: run(1, () => 2), improved: run(1, () => 3) }, 3.36);
  assert.equal(one.improvedMinusAqSloTaskFraction, null);
  assert.equal(one.improvedP95MinusSloS, null);
  assert.match(formatGoalNoise(1, one), /n\/a \(fewer than 10 tasks\)/);
});
