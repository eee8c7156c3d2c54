// The daemon's command logic with fake backends (shares, channel, driver), in milliseconds and without root, the
// way Firecracker tests its devices with test_utils: guest lifecycle, the controller commands (bad input changes
// nothing, settings persist, the loop decides from task reports, calibration), and a restart that resumes the
// loop on a re-adopted guest. The real end-to-end tests (daemon.test.ts, control-e2e.test.ts) stay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Daemon, type DaemonOptions } from '../../src/host/daemon.js';
import { SocketOffload } from '../../src/host/offload/socket.js';
import { reasonOf } from '../../src/guest/offload.js';
import type { ChannelBackend, ShareBackend } from '../../src/host/backends.js';
import type { GuestDriver } from '../../src/host/drivers/types.js';
import type { ControlView, DecisionEntry, ProfilePoint, CalibrationResult } from '../../src/core/control-api.js';
import type { GuestView } from '../../src/core/api.js';
import { HylicsError } from '../../src/core/errors/index.js';
import { FakeClock } from './control/fakes.js';

const MiB = 1024 * 1024;
const log = pino({ level: 'silent' });

class FakeShares implements ShareBackend {
  readonly shares = new Map<string, { size: number; used: number }>();
  constructor(private readonly dir: string) {}
  path(name: string): string { return join(this.dir, 'guests', name, 'share'); }
  async isMounted(name: string): Promise<boolean> { return this.shares.has(name); }
  async create(name: string, size: number): Promise<void> { this.shares.set(name, { size, used: 0 }); }
  async resize(name: string, size: number): Promise<void> {
    const s = this.shares.get(name)!;
    if (size < s.used) throw new HylicsError('HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE', `${s.used} bytes in use`);
    s.size = size;
  }
  async usage(name: string) {
    const s = this.shares.get(name);
    if (!s) throw new HylicsError('HYLICS_ERR_SHARE_NOT_FOUND', name);
    return { sizeBytes: s.size, usedBytes: s.used, freeBytes: s.size - s.used, mounted: true };
  }
  async destroy(name: string): Promise<void> { this.shares.delete(name); }
  async reconcile(): Promise<void> {}
}

class FakeChannels implements ChannelBackend {
  readonly attached = new Set<string>();
  readonly handled = new Map<string, (guest: string, p: unknown) => Promise<unknown>>();
  readonly sent: Array<{ guest: string; event: string; data: unknown }> = [];
  readonly requests: Array<{ guest: string; op: string }> = [];
  private events: Array<(g: string, e: string, p: unknown) => void> = [];
  /** How long `exec` takes in the guest, from the share size (for calibration). */
  execMs: (sizeBytes: number) => number = () => 1;
  sizeOf: (guest: string) => number = () => 0;
  async attach(name: string): Promise<void> { this.attached.add(name); }
  async detach(name: string): Promise<void> { this.attached.delete(name); }
  isConnected(name: string): boolean { return this.attached.has(name); }
  async waitConnected(): Promise<void> {}
  async request(guest: string, op: string): Promise<unknown> {
    this.requests.push({ guest, op });
    if (op === 'exec') {
      await new Promise((r) => setTimeout(r, this.execMs(this.sizeOf(guest))));
      return { exitCode: 0, signal: null, stdout: '', stderr: '' };
    }
    if (op === 'shutdown') return { ok: true };
    throw new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} is not registered`, { op });
  }
  onEvent(fn: (g: string, e: string, p: unknown) => void): void { this.events.push(fn); }
  onConnection(): void {}
  handle(op: string, fn: (guest: string, p: unknown) => Promise<unknown>): void { this.handled.set(op, fn); }
  notify(guest: string, event: string, data: unknown): boolean { this.sent.push({ guest, event, data }); return true; }
  async close(): Promise<void> {}
  /** The guest reports tasks, as its agent would forward them. */
  report(guest: string, n: number, responseMs: number, tier: 'memory' | 'disk'): void {
    for (let i = 0; i < n; i++) {
      for (const fn of this.events) fn(guest, 'task.report', { kind: 'start', name: 'work' });
      for (const fn of this.events) fn(guest, 'task.report', { kind: 'end', name: 'work', responseMs, ok: true, tier });
    }
  }
}

function fakeDriver(alive: { value: boolean }): GuestDriver {
  return {
    kind: 'sandbox',
    preflight: async () => {},
    start: async () => ({ pid: 1 }),
    alive: async () => alive.value,
    watch: () => () => {},
    stop: async () => {},
    cleanup: async () => {},
    channel: (ctx) => ({ mode: 'listen', path: join(ctx.paths.run, 'channel.sock') }),
    describe: () => ({}),
    cpuSeconds: async () => 1.5,
  };
}

async function rig(dir: string, opts: { budget?: number; clock?: FakeClock; extra?: Partial<DaemonOptions> } = {}) {
  const shares = new FakeShares(dir);
  const channels = new FakeChannels();
  channels.sizeOf = (g) => shares.shares.get(g)?.size ?? 0;
  const alive = { value: true };
  const clock = opts.clock ?? new FakeClock();
  const daemon = new Daemon({
    stateDir: dir, log, shares, channels, drivers: { sandbox: fakeDriver(alive) }, requireRoot: false, clock,
    ...(opts.budget !== undefined ? { shareBudgetBytes: opts.budget } : {}),
    ...opts.extra,
  });
  await daemon.start();
  return { daemon, shares, channels, clock, alive };
}

test('daemon commands with fake backends: control set/show/log/profile, bad input, the loop, restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-fakes-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { daemon, shares, channels, clock } = await rig(dir, { budget: 512 * MiB });
  const g = await daemon.execute({ op: 'guest.create', body: { name: 'alpha', shareSize: '32M', memory: '256M' } }) as GuestView;
  assert.equal(g.status, 'running');
  assert.equal(g.share.sizeBytes, 32 * MiB);

  await t.test('no control is reachable from the guest: only module ops are channel ops', () => {
    assert.deepEqual([...channels.handled.keys()].sort(), ['module.list', 'module.start', 'module.stop']);
  });

  await t.test('bad settings: stable codes and nothing changed', async () => {
    await assert.rejects(daemon.execute({ op: 'control.show', name: 'alpha' }), { code: 'HYLICS_ERR_CONTROL_NOT_SET' });
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ slo: '10s', min: '128M', max: '64M' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
      [{ slo: 0 }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
      [{ slo: '10s', scheme: 'psychic' }, 'HYLICS_ERR_CONTROL_INVALID_PARAM'],
      [{ slo: '10s', task: 'work' }, 'HYLICS_ERR_CONTROL_UNKNOWN_TASK'],
      [{ slo: '10s', max: '1G' }, 'HYLICS_ERR_CONTROL_BUDGET'],
    ];
    for (const [body, code] of bad) await assert.rejects(daemon.execute({ op: 'control.set', name: 'alpha', body: body as never }), { code }, JSON.stringify(body));
    await assert.rejects(daemon.execute({ op: 'control.set', name: 'nobody', body: { slo: '10s' } }), { code: 'HYLICS_ERR_GUEST_NOT_FOUND' });
    await assert.rejects(daemon.execute({ op: 'control.show', name: 'alpha' }), { code: 'HYLICS_ERR_CONTROL_NOT_SET' });
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
    assert.equal(state.guests.alpha.control, undefined, 'nothing persisted');
  });

  await t.test('settings persist; task reports drive the loop; the log and the profile show every input', async () => {
    channels.report('alpha', 2, 500, 'memory'); // the task is known now
    const v = await daemon.execute({ op: 'control.set', name: 'alpha', body: { slo: '10s', task: 'work', min: '32M', max: '256M', intervalMin: '1s', intervalMax: '4s' } }) as ControlView;
    assert.equal(v.scheme, 'improved');
    assert.equal(v.sloMs, 10_000);
    assert.equal(v.calibrated, false);
    assert.equal(v.budgetBytes, 512 * MiB);
    assert.equal(v.nextDecisionAt, clock.now() + 1000);
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));
    assert.equal(state.guests.alpha.control.settings.sloMs, 10_000);
    shares.shares.get('alpha')!.used = 31 * MiB;
    for (let i = 0; i < 3; i++) { channels.report('alpha', 4, 30_000, 'disk'); await clock.fireNext(); }
    assert.ok(shares.shares.get('alpha')!.size > 32 * MiB, 'grew under load');
    assert.ok(channels.sent.some((s) => s.event === 'share.resized'));
    const { decisions } = await daemon.execute({ op: 'control.log', name: 'alpha', limit: 10 }) as { decisions: DecisionEntry[] };
    assert.ok(decisions.length >= 3);
    assert.ok(decisions.some((d) => d.action === 'grow'));
    assert.equal(decisions.at(-1)!.responseMeanMs, 30_000);
    const { points } = await daemon.execute({ op: 'control.profile', name: 'alpha', since: 0 }) as { points: ProfilePoint[] };
    assert.ok(points.length >= 3);
    assert.equal(points.at(-1)!.cpuSeconds, 1.5);
    assert.equal(points.at(-1)!.hitRatio, 0);
    const shown = await daemon.execute({ op: 'guest.show', name: 'alpha' }) as GuestView;
    assert.equal(shown.share.sizeBytes, shares.shares.get('alpha')!.size, 'the spec follows the controller');
  });

  await t.test('absurd task reports are refused and counted, not profiled', async () => {
    const before = daemon.profiler.stats('alpha')[0]!.count;
    channels.report('alpha', 1, -5, 'memory');
    channels.report('alpha', 1, 1e12, 'memory');
    assert.equal(daemon.profiler.stats('alpha')[0]!.count, before);
    assert.equal(daemon.profiler.rejected('alpha').absurd, 2);
    assert.match(await daemon.metrics.registry.metrics(), /hylics_task_reports_rejected_total\{guest="alpha",reason="absurd"\} 2/);
  });

  await t.test('a guest flooding task reports is rate-limited, the excess refused and counted', async () => {
    const before = daemon.profiler.stats('alpha')[0]!.count;
    channels.report('alpha', 3000, 100, 'memory'); // 6000 events at once, far over the burst
    const rejected = daemon.profiler.rejected('alpha').rate;
    assert.ok(rejected >= 6000 - 2 * 2000, `${rejected} refused`);
    assert.ok(daemon.profiler.stats('alpha')[0]!.count - before < 2000, 'the excess is not profiled');
    assert.match(await daemon.metrics.registry.metrics(), new RegExp(`hylics_task_reports_rejected_total\\{guest="alpha",reason="rate"\\} ${rejected}`));
  });

  await t.test('a restarted daemon re-adopts the guest and resumes its loop', async () => {
    const learnedInterval = (await daemon.execute({ op: 'control.show', name: 'alpha' }) as ControlView).intervalMs;
    await daemon.close();
    const clock2 = new FakeClock();
    const r2 = await rig(dir, { budget: 512 * MiB, clock: clock2 });
    for (const [k, v] of shares.shares) r2.shares.shares.set(k, v); // the mounts survive a daemon restart
    const v = await r2.daemon.execute({ op: 'control.show', name: 'alpha' }) as ControlView;
    assert.equal(v.sloMs, 10_000);
    assert.equal(v.nextDecisionAt, clock2.now() + learnedInterval, 'the next decision after the learned interval');
    await clock2.fireNext();
    const { decisions } = await r2.daemon.execute({ op: 'control.log', name: 'alpha', limit: 100 }) as { decisions: DecisionEntry[] };
    assert.match(decisions.at(-1)!.reason, /resumed after a daemon restart/);
    assert.ok(decisions.length >= 4, 'the log from before the restart is kept');
    assert.match(decisions.at(-1)!.reason, /resumed the learned state saved/, 'the controller went on from what it had learned');
    // the task the guest reported before the restart is still known (the profiler of this daemon has seen nothing)
    const again = await r2.daemon.execute({ op: 'control.set', name: 'alpha', body: { slo: '8s', task: 'work', intervalMin: '1s', intervalMax: '4s' } }) as ControlView;
    assert.equal(again.task, 'work');
    await assert.rejects(r2.daemon.execute({ op: 'control.set', name: 'alpha', body: { slo: '8s', task: 'other' } }), { code: 'HYLICS_ERR_CONTROL_UNKNOWN_TASK' });
    await r2.daemon.execute({ op: 'guest.remove', name: 'alpha' });
    assert.equal(clock2.due(), null, 'no loop left for a removed guest');
    await r2.daemon.close();
  });
});

test('calibration measures E[X|m] at several sizes through guest exec, fits and stores it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-fakes-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { daemon, shares, channels } = await rig(dir);
  await daemon.execute({ op: 'guest.create', body: { name: 'beta', shareSize: '64M', memory: '256M' } });
  channels.execMs = (size) => 20 + 2000 / (size / MiB + 8); // a + b/(m + c) with a = 20 ms, b = 2 s·MiB, c = 8 MiB
  shares.shares.get('beta')!.used = 20 * MiB;
  const r = await daemon.execute({ op: 'control.calibrate', name: 'beta', body: { task: 'work', argv: ['true'], sizes: ['16M', '32M', '64M', '128M', '256M'], repeat: 2 } }) as CalibrationResult;
  assert.deepEqual(r.skipped.map((s) => s.sizeBytes), [16 * MiB], 'a size below usage is skipped, not forced');
  assert.equal(r.points.length, 4);
  assert.ok(r.points.every((p) => p.runs === 2 && p.sdS >= 0 && p.minS <= p.meanS && p.meanS <= p.maxS));
  assert.ok(r.points[0]!.meanS > r.points[3]!.meanS, 'more share, faster task');
  assert.ok(r.model.b > 0);
  assert.equal(shares.shares.get('beta')!.size, 64 * MiB, 'the share went back to its size');
  const v = await daemon.execute({ op: 'control.set', name: 'beta', body: { slo: '1s', task: 'work' } }) as ControlView;
  assert.equal(v.calibrated, true, 'a calibrated task is known even before it ran');
  assert.deepEqual(v.model, r.model);
  // fewer than 3 sizes above usage: nothing to fit, nothing stored, the share back as it was
  await assert.rejects(daemon.execute({ op: 'control.calibrate', name: 'beta', body: { task: 'other', argv: ['true'], sizes: ['4M', '8M', '16M'] } }), { code: 'HYLICS_ERR_CONTROL_CALIBRATION_FAILED' });
  assert.equal(shares.shares.get('beta')!.size, 64 * MiB);
  assert.deepEqual(r.warnings, [], 'a falling E[X|m] is not suspect');
  // a task that gets slower with a larger share: warned, stored with b >= 0 (flat), never with b < 0
  channels.execMs = (size) => 20 + size / MiB;
  const up = await daemon.execute({ op: 'control.calibrate', name: 'beta', body: { task: 'rising', argv: ['true'], sizes: ['32M', '64M', '128M'], repeat: 1 } }) as CalibrationResult;
  assert.equal(up.warnings.length, 1);
  assert.match(up.warnings[0]!, /rose with the share size/);
  assert.equal(up.model.b, 0);
  await daemon.close();
});

test('socket offload ops from a guest go through the per-guest handoff rate (begin and handoff), like module start/stop', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-fakes-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socketOffload = new SocketOffload({ log });
  const { daemon, channels } = await rig(dir, { extra: { socketOffload, handoffRate: { burst: 3, perMinute: 1 } } });
  await daemon.execute({ op: 'guest.create', body: { name: 'alpha', shareSize: '32M', memory: '256M' } });
  await daemon.execute({ op: 'guest.create', body: { name: 'beta', shareSize: '32M', memory: '256M' } });
  const begin = channels.handled.get('offload.socket.begin')!;
  // another guest's address: refused by the offload itself (or unavailable without root), after the rate check
  const p = { localAddr: '192.0.2.1', localPort: 80, remoteAddr: '192.0.2.2', remotePort: 4000, path: 'f', offset: 0, mode: 'return' };
  const codes: string[] = [];
  for (let i = 0; i < 4; i++) codes.push(await begin('alpha', p).then(() => 'ok', (e: HylicsError) => e.code));
  assert.ok(codes.slice(0, 3).every((c) => c === 'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW' || c === 'HYLICS_ERR_OFFLOAD_UNAVAILABLE'), codes.join());
  assert.equal(codes[3], 'HYLICS_ERR_CHANNEL_BUSY', 'over the rate: refused before any host work');
  assert.notEqual(await begin('beta', p).then(() => 'ok', (e: HylicsError) => e.code), 'HYLICS_ERR_CHANNEL_BUSY', 'another guest is not affected');
  // the one-round-trip handoff op starts a handoff too: same bucket (alpha's is empty), the documented code, and
  // the guest library's fallback for it is counted as `budget`
  const handoff = channels.handled.get('offload.socket.handoff')!;
  const flood: string[] = [];
  for (let i = 0; i < 50; i++) flood.push(await handoff('alpha', { ...p, state: {} }).then(() => 'ok', (e: HylicsError) => e.code));
  assert.deepEqual(new Set(flood), new Set(['HYLICS_ERR_CHANNEL_BUSY']), 'a flood of handoff requests is refused');
  const busy = await handoff('alpha', { ...p, state: {} }).catch((e: HylicsError) => e);
  assert.ok(busy instanceof HylicsError);
  assert.equal(reasonOf(busy), 'budget');
  const before = socketOffload.stats('alpha').fallbacks.budget ?? 0;
  assert.deepEqual(await channels.handled.get('offload.socket.fallback')!('alpha', { reason: reasonOf(busy) }), { counted: true });
  assert.equal(socketOffload.stats('alpha').fallbacks.budget, before + 1, 'the refusal counted as a budget fallback');
  // a fresh guest's burst is shared between both ops
  const gamma: string[] = [];
  await daemon.execute({ op: 'guest.create', body: { name: 'gamma', shareSize: '32M', memory: '256M' } });
  for (let i = 0; i < 2; i++) gamma.push(await handoff('gamma', { ...p, state: {} }).then(() => 'ok', (e: HylicsError) => e.code));
  for (let i = 0; i < 2; i++) gamma.push(await begin('gamma', p).then(() => 'ok', (e: HylicsError) => e.code));
  assert.deepEqual(gamma.map((c) => c === 'HYLICS_ERR_CHANNEL_BUSY'), [false, false, false, true], gamma.join());
  // release/fallback are not rate-limited (bounded by begin; a counter)
  assert.deepEqual(await channels.handled.get('offload.socket.release')!('alpha', { handoff: 'h1' }), { released: false });
  assert.deepEqual(await channels.handled.get('offload.socket.fallback')!('alpha', { reason: 'budget' }), { counted: true });
  await daemon.close();
  await socketOffload.close();
});
