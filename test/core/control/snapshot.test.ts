// A controller's snapshot (what it learned: λ, the online E[X|m] offset, RLS θ and F, the improved scheme's working
// set, the interval and its clock) survives JSON, and a controller restored from it decides exactly as the original
// would have; a cold one does not. Malformed snapshots are refused and change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShareController, SCHEMES, type ControllerConfig, type Measurement, type Decision } from '../../../src/core/control/controller.js';
import { Rng } from '../../../src/core/sim/rng.js';

const MiB = 1024 * 1024;
const cfg = (scheme: ControllerConfig['scheme']): ControllerConfig => ({
  scheme, reference: 10, minBytes: 32 * MiB, maxBytes: 388 * MiB, initialBytes: 64 * MiB, mThreshBytes: 4 * MiB,
  ciMin: 30, ciMax: 240, serviceModel: { a: 3, b: 65, c: 67 }, rls: { nA: 1, nB: 0, d: 1, f0: 10, b0Init: -0.05 },
});

/** A load that rises then falls; R and usage depend on the size the controller chose. */
function drive(
  c: ShareController,
  rng: Rng,
  steps: number,
  t0: number,
  size0: number,
): { out: Decision[]; t: number; size: number } {
  const out: Decision[] = [];
  let t = t0,
    size = size0;
  for (let k = 0; k < steps; k++) {
    const dt = c.interval;
    t += dt;
    const rate = k % 20 < 10 ? 0.4 : 0.1;
    const arrivals = Math.round(rate * dt * (0.8 + 0.4 * rng.next()));
    const r = arrivals === 0 ? null : 3 + (65 / (size / MiB + 67)) * (1 + rate * 8) * (0.9 + 0.2 * rng.next());
    const m: Measurement = {
      time: t,
      meanResponseTime: r,
      arrivals,
      completions: arrivals,
      shareUsedBytes: Math.min(size, 40 * MiB * rate * 10),
      shareSizeBytes: size,
      fullFallbacks: size < 100 * MiB ? Math.round(arrivals / 3) : 0,
    };
    const d = c.step(m);
    out.push(d);
    size = d.sizeBytes;
  }
  return { out, t, size };
}

for (const scheme of SCHEMES) {
  test(`${scheme}: a controller restored from a JSON snapshot decides exactly as the original`, () => {
    const a = new ShareController(cfg(scheme));
    const first = drive(a, new Rng(7), 25, 0, 64 * MiB);
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as unknown;
    const b = new ShareController(cfg(scheme));
    b.restore(snap);
    assert.equal(b.sizeBytes, a.sizeBytes);
    assert.equal(b.interval, a.interval);
    assert.equal(b.lambda, a.lambda);
    assert.deepEqual(b.state(), a.state());
    const rest = drive(a, new Rng(9), 25, first.t, first.size);
    const resumed = drive(b, new Rng(9), 25, first.t, first.size);
    assert.deepEqual(resumed.out, rest.out);
    if (scheme === 'improved' || scheme === 'aq' || scheme === 'adaptive') {
      const cold = new ShareController({ ...cfg(scheme), initialBytes: first.size });
      const coldRun = drive(cold, new Rng(9), 25, 0, first.size);
      assert.notDeepEqual(coldRun.out, rest.out, 'a cold controller decides differently (what was learned matters)');
    }
  });
}

test('malformed or foreign snapshots are refused with a code and change nothing', () => {
  const a = new ShareController(cfg('improved'));
  drive(a, new Rng(3), 10, 0, 64 * MiB);
  const good = a.snapshot();
  const bads: unknown[] = [
    null,
    42,
    { ...good, v: 99 },
    { ...good, scheme: 'aq' },
    { ...good, ci: 'soon' },
    { ...good, lambda: -1 },
    { ...good, model: { offset: NaN, known: true } },
    { ...good, policy: { ...(good.policy as object), rls: { theta: [1] } } },
    { ...good, policy: { ...(good.policy as object), usagePeak: [1, 2, 3, 4, 5] } },
    { ...good, time: -5 },
  ];
  for (const bad of bads) {
    const c = new ShareController(cfg('improved'));
    const before = JSON.stringify(c.snapshot());
    assert.throws(() => c.restore(bad), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' }, JSON.stringify(bad)?.slice(0, 100));
    assert.equal(JSON.stringify(c.snapshot()), before, 'unchanged');
  }
  const q = new ShareController(cfg('queue'));
  assert.throws(() => q.restore(a.snapshot()), { code: 'HYLICS_ERR_CONTROL_INVALID_PARAM' });
});
