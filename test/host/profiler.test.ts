import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Profiler, percentile } from '../../src/host/profiler.js';

test('percentile picks the nearest-rank value', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 0.95), 95);
  assert.equal(percentile(xs, 0.5), 50);
  assert.equal(percentile([], 0.95), 0);
});

test('task statistics per guest and per task, and the window since a time', () => {
  const p = new Profiler();
  const seen: string[] = [];
  p.onReport((g, r) => seen.push(`${g}:${r.name}`));
  for (let i = 1; i <= 20; i++) p.record('a', { name: 'compress', responseMs: i * 10, ok: i !== 3, at: 1000 + i });
  p.record('b', { name: 'deliver', responseMs: 5, ok: true, at: 5000 });
  const [s] = p.stats('a');
  assert.equal(s!.name, 'compress');
  assert.equal(s!.count, 20);
  assert.equal(s!.failed, 1);
  assert.equal(s!.meanMs, 105);
  assert.equal(s!.p95Ms, 190);
  assert.equal(s!.lastMs, 200);
  assert.equal(p.since('a', 1015).length, 6);
  assert.equal(p.stats('b')[0]!.count, 1);
  assert.equal(seen.length, 21);
  p.forget('a');
  assert.deepEqual(p.stats('a'), []);
});

test('a guest cannot grow host memory with endless task names', () => {
  const p = new Profiler();
  let accepted = 0;
  for (let i = 0; i < 1000; i++) if (p.record('evil', { name: `t${i}`, responseMs: 1, ok: true, at: i })) accepted++;
  assert.equal(p.stats('evil').length, 256);
  assert.equal(accepted, 256, 'refused reports are reported as refused (so no metric series is made for them)');
  assert.equal(p.record('evil', { name: 't0', responseMs: 1, ok: true, at: 0 }), true, 'known names still count');
});
