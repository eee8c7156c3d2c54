// A daemon restart in the middle of the loop (fake clock, fake share and guest): the resumed controller continues
// from what it had learned (λ, RLS, interval) instead of starting cold, the task names the guest reported are still
// known to the unknown-task check, and a learned state that does not fit (other settings, torn file) starts cold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlLoop } from '../../../src/host/control/loop.js';
import { loadLearned, saveLearned } from '../../../src/host/control/learned-store.js';
import { parseControlBody, type ControlRecord, type SettingsContext } from '../../../src/host/control/settings.js';
import { Profiler } from '../../../src/host/profiler.js';
import type { DecisionEntry } from '../../../src/core/control-api.js';
import { FakeClock, FakeGuest } from './fakes.js';
import { MiB } from '../../../src/core/units.js';

const log = pino({ level: 'silent' });
const ctx: SettingsContext = {
  guestMemoryBytes: 512 * MiB,
  hostMemoryBytes: 64 * 1024 * MiB,
  budgetBytes: null,
  othersMinBytes: 0,
  knowsTask: () => true,
};
const settings = (over: Record<string, unknown> = {}) => parseControlBody({ slo: '10s', task: 'transcode', min: '32M', max: '256M', intervalMin: '1s', intervalMax: '16s', ...over }, ctx);

/** One daemon's loop over a state dir (the real learned-state file), with its own clock and profiler. */
function daemon(dir: string, guest: FakeGuest, clock = new FakeClock(), persist = true) {
  const profiler = new Profiler(() => clock.now());
  const logs = new Map<string, DecisionEntry[]>();
  const loop = new ControlLoop({
    clock,
    profiler,
    log,
    budgetBytes: null,
    usage: () => guest.usage(),
    resize: (n, b) => guest.resize(n, b),
    isConnected: () => guest.isConnected(),
    request: (n, op, p) => guest.request(n, op, p),
    notify: (n, e, d) => guest.notify(n, e, d),
    cpuSeconds: async () => null,
    saveLog: async (n, e) => {
      logs.set(n, [...e]);
    },
    ...(persist
      ? {
          saveLearned: (n: string, s: Parameters<typeof saveLearned>[1]) => saveLearned(join(dir, n), s),
          loadLearned: (n: string) => loadLearned(join(dir, n)),
        }
      : {}),
  });
  const load = (n: number, ms: number, tier: 'memory' | 'disk'): void => {
    for (let i = 0; i < n; i++) {
      profiler.ingest('a', { kind: 'start', name: 'transcode' });
      profiler.ingest('a', { kind: 'end', name: 'transcode', responseMs: ms, ok: true, tier });
    }
  };
  return { clock, profiler, loop, load };
}

/** Run a loop under a steady load (2 tasks/s at 8 s, some from the disk tier) for `n` decisions. */
async function run(d: ReturnType<typeof daemon>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const due = d.clock.due()!;
    d.load(Math.max(1, Math.round((2 * due) / 1000)), 8000, i % 2 ? 'memory' : 'disk');
    await d.clock.fireNext();
  }
}

test('a restarted daemon resumes the learned controller state; a cold start and other settings do not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-resume-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'a'));
  const guest = new FakeGuest(64 * MiB, 40 * MiB);
  const rec: ControlRecord = { settings: settings() };

  const d1 = daemon(dir, guest);
  await d1.loop.attach('a', rec);
  await run(d1, 12);
  const before = d1.loop.decisions('a', 1)[0]!;
  const intervalBefore = d1.loop.view('a', rec).intervalMs;
  assert.ok(before.lambda > 1.5 && before.lambda < 2.5, `λ learned: ${before.lambda}`);
  assert.ok(intervalBefore > 1000, `the interval grew past ci_min while steady: ${intervalBefore}`);
  d1.loop.close();

  // the daemon comes back 30 s later: a new loop, a new profiler that has seen nothing yet
  const c2 = new FakeClock();
  c2.t = d1.clock.now() + 30_000;
  const d2 = daemon(dir, guest, c2);
  assert.equal(d2.loop.knowsTask('a', 'transcode'), false, 'not attached yet');
  await d2.loop.attach('a', rec, { resumed: true });
  assert.equal(d2.loop.knowsTask('a', 'transcode'), true, 'a task reported before the restart is still known');
  assert.equal(d2.loop.knowsTask('a', 'never'), false);
  assert.equal(c2.due(), intervalBefore, 'the first decision after the learned interval, not after ci_min');
  assert.equal(d2.loop.view('a', rec).intervalMs, intervalBefore);
  d2.load(Math.round((2 * intervalBefore) / 1000), 8000, 'memory');
  await c2.fireNext();
  const first = d2.loop.decisions('a', 1)[0]!;
  assert.match(first.reason, /resumed after a daemon restart; .*resumed the learned state saved 30 s before \(λ/);
  assert.ok(Math.abs(first.lambda - before.lambda) < 0.3, `λ continues: ${before.lambda} -> ${first.lambda}`);

  // the same restart without the learned state: cold (λ from one interval, interval from ci_min)
  const c3 = new FakeClock();
  const d3 = daemon(dir, guest, c3, false);
  await d3.loop.attach('a', rec, { resumed: true });
  assert.equal(c3.due(), 1000, 'cold: the first decision after ci_min');
  d3.loop.close();

  // other settings after the restart: the old state does not apply
  d2.loop.close();
  const d4 = daemon(dir, guest, new FakeClock());
  const other: ControlRecord = { settings: settings({ slo: '5s' }) };
  await d4.loop.attach('a', other, { resumed: true });
  assert.equal(d4.clock.due(), 1000);
  d4.load(2, 8000, 'memory');
  await d4.clock.fireNext();
  assert.match(d4.loop.decisions('a', 1)[0]!.reason, /learned state not resumed \(the settings or the model changed\): starting cold/);
  assert.equal(d4.loop.knowsTask('a', 'transcode'), true, 'task names are kept whatever the settings');
  d4.loop.close();

  // a torn file: cold, no error
  await writeFile(join(dir, 'a', 'control-learned.json'), '{"v":1,"savedAt":');
  const d5 = daemon(dir, guest, new FakeClock());
  await d5.loop.attach('a', rec, { resumed: true });
  assert.equal(d5.clock.due(), 1000);
  d5.loop.close();
});

test('a guest without settings: the task names it reports are persisted for the unknown-task check after a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-resume-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'a'));
  const guest = new FakeGuest(64 * MiB, 1 * MiB);
  const d1 = daemon(dir, guest);
  await d1.loop.attach('a', undefined);
  d1.load(1, 100, 'memory');
  await d1.clock.fireNext(); // the profiling period
  d1.loop.close();
  const d2 = daemon(dir, guest);
  await d2.loop.attach('a', undefined, { resumed: true });
  assert.equal(d2.loop.knowsTask('a', 'transcode'), true);
  d2.loop.close();
});
