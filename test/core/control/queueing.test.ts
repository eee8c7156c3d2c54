import { test } from 'node:test';
import assert from 'node:assert/strict';
import { psResponseTime, serviceTimeForResponse, ServiceModel, fitServiceModel, ArrivalRateEstimator } from '../../../src/core/control/queueing.js';

test('M/G/1-PS response time matches the closed form and saturates to Infinity', () => {
  assert.ok(Math.abs(psResponseTime(3.32, 1 / 8) - 3.32 / (1 - 3.32 / 8)) < 1e-12);
  assert.ok(Math.abs(psResponseTime(3.32, 1 / 8) - 5.675) < 1e-3); // FINDINGS: 5.7 s from memory
  assert.ok(Math.abs(psResponseTime(4.02, 1 / 8) - 8.0804) < 1e-3); // 8.1 s from disk
  assert.equal(psResponseTime(4, 0.25), Infinity); // rho = 1
  assert.equal(psResponseTime(4.02, 0.25), Infinity); // rho > 1
  assert.equal(psResponseTime(4, 0), 4);
  assert.throws(() => psResponseTime(-1, 0.1), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
  assert.throws(() => psResponseTime(1, NaN), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
  // inverse of Eq. 2
  const ex = serviceTimeForResponse(10, 1 / 8);
  assert.ok(Math.abs(psResponseTime(ex, 1 / 8) - 10) < 1e-9);
  assert.throws(() => serviceTimeForResponse(0, 1), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
});

test('service model a + b/(m + c) and its inverse', () => {
  const m = new ServiceModel({ a: 3.3, b: 50, c: 70 });
  assert.ok(Math.abs(m.meanService(30) - (3.3 + 50 / 100)) < 1e-12);
  for (const size of [0, 10, 100, 1000]) assert.ok(Math.abs(m.sizeForService(m.meanService(size)) - size) < 1e-9);
  assert.equal(m.sizeForService(3.3), Infinity); // the asymptote is never reached
  assert.equal(m.sizeForService(3.0), Infinity);
  assert.equal(m.sizeForService(10), 0); // even an empty share is fast enough
  assert.equal(m.sizeForResponse(10, 1), Infinity); // saturated at any size
  const target = m.sizeForResponse(6, 1 / 8);
  assert.ok(Math.abs(m.responseTime(target, 1 / 8) - 6) < 1e-9);
  assert.throws(() => new ServiceModel({ a: 1, b: 1, c: 0 }), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
});

test('least-squares fit recovers a known curve and rejects too few points', () => {
  const truth = new ServiceModel({ a: 3.2, b: 60, c: 80 });
  const pts = [0, 8, 16, 32, 64, 128, 256, 512].map((m) => ({ m, ex: truth.meanService(m) }));
  const fit = fitServiceModel(pts);
  assert.ok(fit.rmse < 1e-4, `rmse ${fit.rmse}`);
  assert.ok(Math.abs(fit.model.a - 3.2) < 0.01 && Math.abs(fit.model.c - 80) < 1);
  assert.throws(() => fitServiceModel([{ m: 1, ex: 1 }, { m: 1, ex: 2 }, { m: 2, ex: 1 }]), { code: 'HYLICS_ERR_CONTROL_FIT_FAILED' });
});

test('a fit with b < 0 (bigger share slower) is replaced by the best one with b >= 0, and says so', () => {
  // the calibration a quiet closed-loop run measured: E[X|m] rising with m (promotion copies into a larger share)
  const rising = [{ m: 8, ex: 1.682 }, { m: 40, ex: 1.856 }, { m: 80, ex: 1.882 }, { m: 160, ex: 1.891 }];
  const fit = fitServiceModel(rising);
  assert.ok(fit.unconstrained, 'the rejected unconstrained fit is reported');
  assert.ok(fit.unconstrained.b < 0);
  assert.equal(fit.model.b, 0, 'projected onto b = 0: flat');
  const mean = rising.reduce((a, p) => a + p.ex, 0) / rising.length;
  assert.ok(Math.abs(fit.model.a - mean) < 1e-12, 'flat at the mean (least squares with b = 0)');
  assert.ok(Math.abs(fit.r2) < 1e-12);
  for (const p of rising) assert.ok(fit.model.meanService(p.m) <= fit.model.meanService(0) + 1e-12, 'never slower with more share');
  // a falling curve with noise keeps its unconstrained fit
  const truth = new ServiceModel({ a: 2, b: 30, c: 20 });
  const noisy = [0, 16, 32, 64, 128].map((m, i) => ({ m, ex: truth.meanService(m) * (1 + (i % 2 ? 0.01 : -0.01)) }));
  const ok = fitServiceModel(noisy);
  assert.equal(ok.unconstrained, undefined);
  assert.ok(ok.model.b > 0);
});

test('arrival-rate estimate tracks a rate change and ignores empty intervals', () => {
  const e = new ArrivalRateEstimator({ halfLife: 30 });
  assert.equal(e.value, 0);
  e.observe(4, 32);
  assert.equal(e.value, 0.125);
  e.observe(0, 0); // no time: unchanged
  assert.equal(e.value, 0.125);
  for (let i = 0; i < 20; i++) e.observe(8, 32);
  assert.ok(Math.abs(e.value - 0.25) < 1e-3);
  assert.throws(() => new ArrivalRateEstimator({ halfLife: 0 }), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
});

test('knee of E[X|m]: the size that gets a fraction f of the attainable saving', () => {
  const m = new ServiceModel({ a: 3, b: 20, c: 10 });
  const knee = m.kneeSize(0.8);
  assert.ok(Math.abs(knee - 40) < 1e-9, String(knee));
  // by definition: (E[X|0] - E[X|knee]) / (E[X|0] - a) = f
  assert.ok(Math.abs((m.meanService(0) - m.meanService(knee)) / (m.meanService(0) - 3) - 0.8) < 1e-12);
  assert.equal(m.kneeSize(0), 0);
  assert.equal(new ServiceModel({ a: 3, b: 0, c: 10 }).kneeSize(0.8), 0);
});
