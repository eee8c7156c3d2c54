// The control loop with a fake clock, a fake share and a fake guest: decisions from profiler intervals, Algorithm
// 1's adaptive interval, the decision log with its inputs, shrink through the guest's tier, the budget rule, a
// resume after restart, and bad settings changing nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ControlLoop, PROFILE_PERIOD_MS } from '../../../src/host/control/loop.js';
import { ControlMetrics } from '../../../src/host/control/metrics.js';
import { parseControlBody, provisionalModel, type ControlRecord, type SettingsContext } from '../../../src/host/control/settings.js';
import { shareBudget, deficitWeight } from '../../../src/host/control/budget-rule.js';
import { Profiler } from '../../../src/host/profiler.js';
import type { DecisionEntry } from '../../../src/core/control-api.js';
import { FakeClock, FakeGuest } from './fakes.js';
import { MiB } from '../../../src/core/units.js';

const log = pino({ level: 'silent' });
const ctx: SettingsContext = { guestMemoryBytes: 512 * MiB, hostMemoryBytes: 64 * 1024 * MiB, budgetBytes: null, othersMinBytes: 0, knowsTask: (t) => t === 'transcode' };
const settings = (over: Record<string, unknown> = {}) => parseControlBody({ slo: '10s', task: 'transcode', min: '32M', max: '256M', intervalMin: '1s', intervalMax: '8s', ...over }, ctx);

function rig(guests: Record<string, FakeGuest>, budgetBytes: number | null = null) {
  const clock = new FakeClock();
  const profiler = new Profiler(() => clock.now());
  const registry = new Registry();
  const saved = new Map<string, DecisionEntry[]>();
  const g = (n: string): FakeGuest => guests[n]!;
  const loop = new ControlLoop({
    clock, profiler, log, metrics: new ControlMetrics(registry), budgetBytes,
    usage: (n) => g(n).usage(), resize: (n, b) => g(n).resize(n, b), isConnected: (n) => g(n).isConnected(),
    request: (n, op, p) => g(n).request(n, op, p), notify: (n, e, d) => g(n).notify(n, e, d),
    cpuSeconds: async () => clock.now() / 1e6,
    saveLog: async (n, e) => { saved.set(n, [...e]); },
    loadLog: async (n) => saved.get(n) ?? [],
  });
  /** n tasks of `ms` each, served from `tier`, in the current interval. */
  const load = (guest: string, n: number, ms: number, tier: 'memory' | 'disk'): void => {
    for (let i = 0; i < n; i++) {
      profiler.ingest(guest, { kind: 'start', name: 'transcode' });
      profiler.ingest(guest, { kind: 'end', name: 'transcode', responseMs: ms, ok: true, tier });
    }
  };
  return { clock, profiler, loop, registry, saved, load };
}

test('under load the share grows; idle, the guest moves files to its disk tier and the share shrinks to min', async () => {
  const guest = new FakeGuest(32 * MiB, 30 * MiB);
  const { clock, loop, load, registry } = rig({ a: guest });
  await loop.attach('a', { settings: settings() });
  assert.equal(clock.due(), 1000, 'first decision after ci_min');
  // overloaded: responses far above the SLO, tasks falling back to the disk tier because the share is full
  for (let i = 0; i < 3; i++) { load('a', 4, 25_000, 'disk'); await clock.fireNext(); }
  const grown = loop.decisions('a', 10);
  assert.ok(grown.some((d) => d.action === 'grow'), JSON.stringify(grown.map((d) => [d.action, d.reason])));
  assert.ok(guest.size > 32 * MiB);
  const g = grown.find((d) => d.action === 'grow')!;
  assert.equal(g.responseMeanMs, 25_000);
  assert.equal(g.tasks, 4);
  assert.ok(g.lambda > 0);
  assert.ok(g.appliedBytes > g.sizeBytes && g.appliedBytes >= g.targetBytes && g.appliedBytes - g.targetBytes < 4096, 'the target, page-rounded');
  assert.match(grown[0]!.reason, /started; uncalibrated/);
  assert.deepEqual(guest.events.at(-1), { event: 'share.resized', data: { sizeBytes: guest.size } });
  // idle: no task arrives; the share comes down (after the dwell time) through tier.shrink, never below usage
  guest.used = guest.size - 2 * MiB;
  for (let i = 0; i < 60 && guest.size > 32 * MiB; i++) await clock.fireNext();
  assert.equal(guest.size, 32 * MiB, JSON.stringify(loop.decisions('a', 5)));
  assert.ok(guest.calls.some((c) => c.op === 'tier.shrink'));
  assert.ok(guest.used <= 32 * MiB);
  const shrink = loop.decisions('a', 500).filter((d) => d.action === 'shrink');
  assert.ok(shrink.length > 0 && shrink.every((d) => /tier\.shrink moved/.test(d.reason)));
  await clock.fireNext(); // the next interval reads the guest's tier counters after the move
  const text = await registry.metrics();
  assert.match(text, /hylics_control_decisions_total\{guest="a",action="grow"\} [1-9]/);
  assert.match(text, /hylics_task_arrival_rate\{guest="a",task="transcode"\}/);
  assert.match(text, /hylics_tier_misses_total\{guest="a"\} 12/);
  assert.match(text, /hylics_control_slo_seconds\{guest="a"\} 10/);
  assert.match(text, /hylics_tier_evictions_total\{guest="a"\} [1-9]/);
  assert.match(text, /hylics_guest_cpu_seconds_total\{guest="a"\} 0\.\d*[1-9]/, "CPU time advances by the delta since the first sample");
  const prof = loop.profile('a', 0);
  assert.ok(prof.length >= 4);
  assert.ok(prof.every((p) => p.sizeBytes >= p.usedBytes && p.freeBytes === p.sizeBytes - p.usedBytes));
  assert.equal(prof[0]!.hitRatio, 0);
});

test('Algorithm 1\'s interval: halves after an actuation down to ci_min, doubles while holding up to its max', async () => {
  const guest = new FakeGuest(64 * MiB, 1 * MiB);
  const { clock, loop, load } = rig({ a: guest });
  await loop.attach('a', { settings: settings({ scheme: 'aq' }) });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) delays.push(await clock.fireNext());
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000]);
  assert.ok(loop.decisions('a', 10).every((d) => d.action === 'hold'));
  assert.equal(loop.view('a', { settings: settings({ scheme: 'aq' }) }).intervalMs, 8000);
  // an actuation halves it: a large response time re-predicts (queue) and grows the share
  load('a', 8, 60_000, 'disk');
  await clock.fireNext();
  assert.notEqual(loop.decisions('a', 1)[0]!.action, 'hold', 'the re-prediction actuated');
  assert.equal(clock.due(), 4000, 'halved after the actuation');
});

test('a guest without settings (or scheme off) is profiled, never resized', async () => {
  const guest = new FakeGuest(64 * MiB, 1 * MiB);
  const { clock, loop, load } = rig({ a: guest });
  await loop.attach('a', undefined);
  load('a', 3, 100, 'memory');
  assert.equal(await clock.fireNext(), PROFILE_PERIOD_MS);
  assert.equal(loop.profile('a', 0)[0]!.tasks, 3);
  assert.equal(loop.profile('a', 0)[0]!.hitRatio, 1);
  assert.equal(loop.decisions('a', 10).length, 0);
  assert.deepEqual(guest.resizes, []);
  assert.throws(() => loop.view('a', undefined), { code: 'HYLICS_ERR_CONTROL_NOT_SET' });
});

test('a loop resumed after a restart keeps its log and says it resumed', async () => {
  const guest = new FakeGuest(32 * MiB, 1 * MiB);
  const { clock, loop, saved } = rig({ a: guest });
  const rec: ControlRecord = { settings: settings() };
  await loop.attach('a', rec);
  await clock.fireNext();
  assert.equal(saved.get('a')!.length, 1);
  loop.detach('a');
  assert.equal(clock.due(), null, 'no timer left');
  await loop.attach('a', rec, { resumed: true });
  await clock.fireNext();
  const log2 = loop.decisions('a', 10);
  assert.equal(log2.length, 2, 'the log survived');
  assert.match(log2[1]!.reason, /resumed after a daemon restart/);
});

test('calibrated E[X|m] is used and said so; uncalibrated, a provisional model scaled to the SLO', () => {
  const s = settings();
  const { loop } = rig({ a: new FakeGuest(32 * MiB, 0) });
  const model = { a: 3, b: 20, c: 10 };
  const v = loop.view('a', { settings: s, calibration: { transcode: { model, r2: 0.9, at: '', points: [] } } });
  assert.equal(v.calibrated, true);
  assert.deepEqual(v.model, model);
  const u = loop.view('a', { settings: s });
  assert.equal(u.calibrated, false);
  assert.equal(u.modelSource, 'provisional');
  assert.deepEqual(u.model, provisionalModel(10_000));
});

test('bad settings: stable codes, nothing returned to apply', () => {
  const cases: Array<[Record<string, unknown>, string, Partial<SettingsContext>?]> = [
    [{ min: '512M', max: '64M' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ slo: '0s' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ slo: -5 }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ slo: 'soon' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ scheme: 'magic' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ task: 'nope' }, 'HYLICS_ERR_CONTROL_UNKNOWN_TASK'],
    [{ intervalMin: '100ms' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ intervalMin: '10s', intervalMax: '2s' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
    [{ max: '1G' }, 'HYLICS_ERR_CONTROL_BUDGET', { budgetBytes: 512 * MiB }],
    [{ min: '300M' }, 'HYLICS_ERR_CONTROL_BUDGET', { budgetBytes: 512 * MiB, othersMinBytes: 256 * MiB }],
    [{ max: '128T' }, 'HYLICS_ERR_INVALID_SIZE'],
    [{ min: 'lots' }, 'HYLICS_ERR_INVALID_SIZE'],
  ];
  for (const [over, code, c] of cases) {
    assert.throws(() => parseControlBody({ slo: '10s', ...over } as never, { ...ctx, ...c }), { code }, JSON.stringify(over));
  }
  const ok = parseControlBody({ slo: 2500 }, ctx);
  assert.deepEqual(ok, { scheme: 'improved', sloMs: 2500, task: null, minBytes: 32 * MiB, maxBytes: 512 * MiB, intervalMinMs: 30_000, intervalMaxMs: 240_000 });
});

test('host budget: wishes over it are shared by predicted SLO deficit, never below a guest\'s min, and the log says so', async () => {
  const model = { a: 2, b: 80, c: 10 };
  // a guest far from its SLO at its min gets more weight than one near it
  const hot = { guest: 'hot', wantBytes: 200 * MiB, minBytes: 32 * MiB, sloMs: 5000, lambda: 0.3, model };
  const warm = { guest: 'warm', wantBytes: 200 * MiB, minBytes: 32 * MiB, sloMs: 20_000, lambda: 0.05, model };
  assert.ok(deficitWeight(hot) > deficitWeight(warm));
  const grants = shareBudget([hot, warm], 160 * MiB);
  const gh = grants.get('hot')!.grantBytes, gw = grants.get('warm')!.grantBytes;
  assert.ok(gh + gw <= 160 * MiB && gh > gw && gw >= 32 * MiB, `${gh / MiB} ${gw / MiB}`);
  assert.equal(grants.get('hot')!.limited, true);
  // under the budget nobody is limited
  assert.equal(shareBudget([hot, warm], 1024 * MiB).get('hot')!.limited, false);

  const a = new FakeGuest(32 * MiB, 31 * MiB), b = new FakeGuest(32 * MiB, 31 * MiB);
  const { clock, loop, load } = rig({ a, b }, 80 * MiB);
  await loop.attach('a', { settings: settings() });
  await loop.attach('b', { settings: settings() });
  for (let i = 0; i < 6; i++) { load('a', 4, 30_000, 'disk'); load('b', 4, 30_000, 'disk'); await clock.fireNext(); }
  assert.ok(a.size + b.size <= 80 * MiB, `${a.size / MiB} + ${b.size / MiB}`);
  assert.ok(a.size >= 32 * MiB && b.size >= 32 * MiB);
  const all = [...loop.decisions('a', 50), ...loop.decisions('b', 50)];
  assert.ok(all.some((d) => d.action === 'clamped' && /host budget .* SLO-deficit weight/.test(d.reason)), JSON.stringify(all.map((d) => d.reason)));
});

test('profiler: absurd times and floods are refused and counted; arrivals are the starts', () => {
  let t = 0;
  const p = new Profiler(() => t);
  for (const responseMs of [-1, NaN, 1e12, Infinity, '5' as unknown as number]) assert.equal(p.ingest('g', { kind: 'end', name: 'x', responseMs }), false);
  assert.equal(p.rejected('g').absurd, 5);
  let accepted = 0;
  for (let i = 0; i < 5000; i++) if (p.ingest('g', { kind: 'end', name: 'x', responseMs: 1 })) accepted++;
  assert.ok(accepted < 2100 && accepted > 1900, `${accepted}`);
  assert.equal(p.rejected('g').rate, 5000 - accepted);
  t += 1000; // a second later the bucket has refilled by REPORT_RATE_PER_S
  assert.equal(p.ingest('g', { kind: 'start', name: 'x' }), true);
  p.drain('g', null);
  p.ingest('g', { kind: 'start', name: 'x' });
  p.ingest('g', { kind: 'start', name: 'x' });
  p.ingest('g', { kind: 'end', name: 'x', responseMs: 100, tier: 'memory' });
  p.ingest('g', { kind: 'end', name: 'y', responseMs: 300, tier: 'disk' });
  const { all, perTask } = p.drain('g', null);
  assert.equal(perTask.get('x')!.arrivals, 2, 'x sends starts: its arrivals are its starts');
  assert.equal(perTask.get('y')!.arrivals, 1, 'y sends only ends: its arrivals are its completions');
  assert.deepEqual(
    { ...all },
    { arrivals: 3, completions: 2, meanMs: 200, p95Ms: 300, memory: 1, disk: 1, memoryMeanMs: 100, diskMeanMs: 300,
      hitRatio: 0.5 },
  );
  assert.equal(p.drain('g', 'x').all.completions, 0, 'a drained interval starts empty');
});
