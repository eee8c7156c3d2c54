import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rls } from '../../../src/core/control/rls.js';
import { Rng } from '../../../src/core/sim/rng.js';

test('RLS converges to the parameters of a known system (nA=1, nB=0, d=1)', () => {
  // y(k) = 0.6 y(k-1) - 0.05 u(k-1) + noise  =>  theta = [0.6, -0.05]
  const rls = new Rls({ nA: 1, nB: 0, d: 1, f0: 1000, b0Init: -0.01 });
  const rng = new Rng(7);
  let y = 0;
  let u = 0;
  for (let k = 0; k < 400; k++) {
    y = 0.6 * y - 0.05 * u + 0.01 * rng.normal();
    rls.update(y);
    u = 20 * rng.normal(); // white-noise input, as the paper identifies the model
    rls.commit(u);
  }
  assert.ok(Math.abs(rls.theta[0]! - 0.6) < 0.02, `a ${rls.theta[0]}`);
  assert.ok(Math.abs(rls.theta[1]! + 0.05) < 0.002, `b0 ${rls.theta[1]}`);
});

test('RLS with nA=2, nB=1, d=2 identifies a higher-order delayed system', () => {
  // y(k) = 0.5 y(k-2) - 0.2 y(k-3) + 0.3 u(k-2) + 0.1 u(k-3)
  const rls = new Rls({ nA: 2, nB: 1, d: 2, f0: 1000, b0Init: 0.1 });
  const rng = new Rng(3);
  const ys: number[] = [0, 0, 0, 0];
  const us: number[] = [0, 0, 0, 0];
  for (let k = 0; k < 600; k++) {
    const y = 0.5 * ys[1]! - 0.2 * ys[2]! + 0.3 * us[1]! + 0.1 * us[2]! + 0.001 * rng.normal();
    ys.unshift(y); ys.length = 4;
    rls.update(y);
    const u = rng.normal();
    us.unshift(u); us.length = 4;
    rls.commit(u);
  }
  const want = [0.5, -0.2, 0.3, 0.1];
  rls.theta.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 0.02, `theta[${i}] = ${v}`));
});

test('control law solves theta^T phi = 0 and refuses a near-zero gain', () => {
  const rls = new Rls({ theta0: [0.5, -0.1], f0: 1 });
  rls.update(4); // y(k) = 4, no update yet (no phi)
  const u = rls.solveInput(0);
  assert.ok(u !== null && Math.abs(0.5 * 4 - 0.1 * u) < 1e-12);
  assert.ok(Math.abs(rls.predict(u!)) < 1e-12);
  const flat = new Rls({ theta0: [0.5, 0], minGain: 1e-6 });
  flat.update(3);
  assert.equal(flat.solveInput(0), null);
});

test('forgetting, covariance reset and the sign constraint', () => {
  const rls = new Rls({ forgetting: 0.9, resetOnError: 5, gainSign: -1, minGain: 0.01, f0: 10, b0Init: -0.05 });
  rls.update(0); rls.commit(1);
  rls.update(100); // huge error -> reset
  assert.ok(rls.resets >= 1);
  assert.ok(rls.b0 <= -0.01);
  for (let i = 0; i < 50; i++) { rls.update(i % 2 ? 1 : -1); rls.commit(1); }
  assert.ok(rls.b0 <= -0.01 && rls.theta.every(Number.isFinite));
});

test('bad RLS parameters get clear errors', () => {
  for (const o of [
    { nA: -1 },
    { nA: 9 },
    { nB: 1.5 },
    { d: 0 },
    { f0: 0 },
    { f0: -1 },
    { forgetting: 0 },
    { forgetting: 1.2 },
    { theta0: [1] },
  ]) {
    assert.throws(() => new Rls(o), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' }, JSON.stringify(o));
  }
});
