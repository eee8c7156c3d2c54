// bench/control-overhead: what the profiler and the control loop cost hylicsd for many guests (issue #9 goal:
// < 1 % of one core for 100 guests). In one process, with the daemon's own code: every guest's task reports go
// through Profiler.ingest and the task metrics (as Daemon.onGuestEvent does), and the ControlLoop runs core's
// ShareController per guest with the orchestrator, the budget rule and the decision log (kept in memory). Shares
// and guests are in-memory fakes (no statfs, no channel): this measures the host's logic, not the kernel or the
// socket. Time is simulated; the figure is CPU seconds used / simulated seconds, i.e. the share of one core
// hylicsd would need to keep up in real time. Configurations side by side: reports only (profiler), reports +
// loop at the paper's interval bounds (30 s .. 4 min), and reports + loop at the 1 s test interval.
// Each configuration runs once to warm up, then --repeats times; the median run is reported with the spread.
//   npx tsx bench/control-overhead.ts [--guests 100] [--rate 1] [--seconds 600] [--repeats 3]
// Writes bench/results/control-overhead.{json,svg}.
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { renderSvg, groupedBarChart, type BarPoint } from '../src/core/plot.js';
import { ControlLoop, type Clock } from '../src/host/control/loop.js';
import { ControlMetrics } from '../src/host/control/metrics.js';
import { parseControlBody } from '../src/host/control/settings.js';
import { DaemonMetrics } from '../src/host/metrics.js';
import { Profiler } from '../src/host/profiler.js';
import { arg, benchLog } from './lib/args.js';
import { resultPath } from './lib/results.js';
import { MiB } from '../src/core/units.js';

const GUESTS = arg('guests', 100);
const RATE = arg('rate', 1); // tasks per second per guest
const SECONDS = arg('seconds', 600);
const REPEATS = arg('repeats', 3);
const say = benchLog('control-overhead');

class SimClock implements Clock {
  t = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  private id = 0;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.id;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  due(): Array<() => void> {
    const out: Array<() => void> = [];
    for (const [id, x] of this.timers)
      if (x.at <= this.t) {
        out.push(x.fn);
        this.timers.delete(id);
      }
    return out;
  }
}

interface Row {
  config: string;
  cpuSeconds: number;
  simulatedSeconds: number;
  percentOfOneCore: number;
  reports: number;
  decisions: number;
  spreadPercent?: [number, number];
}

async function run(config: string, loopOn: boolean, intervalMin: string, intervalMax: string): Promise<Row> {
  const clock = new SimClock();
  const profiler = new Profiler(() => clock.now());
  const registry = new Registry();
  const dm = new DaemonMetrics({ guestsSnapshot: async () => [] }, registry);
  const shares = new Map<string, { size: number; used: number }>();
  const loop = new ControlLoop({
    clock, profiler, log: pino({ level: 'silent' }), metrics: new ControlMetrics(registry), budgetBytes: GUESTS * 64 * MiB,
    usage: async (g) => { const s = shares.get(g)!; return { sizeBytes: s.size, usedBytes: s.used }; },
    resize: async (g, b) => { const s = shares.get(g)!; if (b >= s.used) s.size = b; },
    isConnected: () => true,
    request: async (g, op, p) => {
      const s = shares.get(g)!;
      if (op === 'tier.shrink') { s.used = Math.min(s.used, (p as { targetUsedBytes: number }).targetUsedBytes); return { usedBytes: s.used, movedFiles: 1, movedBytes: 0, ok: true }; }
      return {
        memoryFiles: 1,
        memoryBytes: s.used,
        diskFiles: 0,
        diskBytes: 0,
        evictions: 0,
        promotions: 0,
        hits: 0,
        misses: 0,
      };
    },
    notify: () => {},
    cpuSeconds: async () => clock.now() / 1000,
  });
  const names = Array.from({ length: GUESTS }, (_, i) => `g${i}`);
  const settings = parseControlBody(
    { slo: '10s', task: 'work', min: '32M', max: '256M', intervalMin, intervalMax },
    {
      guestMemoryBytes: 512 * MiB,
      hostMemoryBytes: 1024 * 1024 * MiB,
      budgetBytes: GUESTS * 64 * MiB,
      othersMinBytes: 0,
      knowsTask: () => true,
    },
  );
  for (const g of names) {
    shares.set(g, { size: 64 * MiB, used: 40 * MiB });
    if (loopOn) await loop.attach(g, { settings });
  }
  let reports = 0;
  let carry = 0;
  const cpu0 = process.cpuUsage();
  for (let s = 0; s < SECONDS; s++) {
    clock.t = s * 1000;
    carry += RATE;
    const n = Math.floor(carry);
    carry -= n;
    for (const g of names) {
      // a load that moves: responses around the SLO, some from the disk tier
      for (let i = 0; i < n; i++) {
        const responseMs = 6000 + 6000 * Math.sin((s + g.length) / 60) + i * 37;
        for (const p of [{ kind: 'start', name: 'work' }, { kind: 'end', name: 'work', responseMs, ok: true, tier: i % 3 === 0 ? 'disk' : 'memory' }]) {
          reports++;
          if (!profiler.ingest(g, p) || p.kind === 'start') continue;
          dm.taskResponse.observe({ guest: g, task: 'work' }, responseMs / 1000);
          dm.tasks.inc({ guest: g, task: 'work', result: 'ok' });
        }
      }
    }
    if (loopOn) for (const fn of clock.due()) fn();
    await new Promise((r) => setImmediate(r)); // the ticks are async: let them finish within the simulated second
  }
  const used = process.cpuUsage(cpu0);
  const decisions = names.reduce((a, g) => a + loop.decisions(g, 1000).length, 0);
  loop.close();
  const cpuSeconds = (used.user + used.system) / 1e6;
  return {
    config,
    cpuSeconds,
    simulatedSeconds: SECONDS,
    percentOfOneCore: (100 * cpuSeconds) / SECONDS,
    reports,
    decisions,
  };
}

say(`${GUESTS} guests, ${RATE} task/s each (start + end reports), ${SECONDS} simulated seconds per configuration`);
const rows: Row[] = [];
for (const [config, on, lo, hi] of [
  ['reports only (profiler + task metrics)', false, '30s', '4m'],
  ['reports + loop, interval 30 s .. 4 min', true, '30s', '4m'],
  ['reports + loop, interval 1 s .. 2 s', true, '1s', '2s'],
] as const) {
  await run(config, on, lo, hi); // warm-up (JIT)
  const reps: Row[] = [];
  for (let i = 0; i < REPEATS; i++) reps.push(await run(config, on, lo, hi));
  const r = reps.sort((a, b) => a.cpuSeconds - b.cpuSeconds)[Math.floor(REPEATS / 2)]!; // the median run
  rows.push({ ...r, spreadPercent: [reps[0]!.percentOfOneCore, reps.at(-1)!.percentOfOneCore] } as Row);
  say(`${config}: ${r.cpuSeconds.toFixed(3)} CPU s for ${r.simulatedSeconds} s = ${r.percentOfOneCore.toFixed(3)} % of one core (median of ${REPEATS}, spread ${reps[0]!.percentOfOneCore.toFixed(3)}-${reps.at(-1)!.percentOfOneCore.toFixed(3)} %; ${r.reports} reports, ${r.decisions} decisions)`);
}
const base = rows[0]!.percentOfOneCore;
const out = {
  bench: 'control-overhead', guests: GUESTS, tasksPerSecondPerGuest: RATE, simulatedSeconds: SECONDS, node: process.version,
  goal: 'controller + profiler < 1 % of one core for 100 guests (issue #9)',
  rows: rows.map((r) => ({ ...r, ratioToReportsOnly: r.percentOfOneCore / base })),
  note: 'fakes for shares and channel: host logic only (profiler, metrics, ShareController, orchestrator, budget rule, decision log); statfs and channel round trips not included',
};
writeFileSync(resultPath('control-overhead.json'), JSON.stringify(out, null, 2) + '\n');
const points: BarPoint[] = rows.map((r) => ({ group: `${GUESTS} guests`, bar: r.config, value: r.percentOfOneCore }));
writeFileSync(resultPath('control-overhead.svg'), await renderSvg(groupedBarChart(`Profiler + control loop in hylicsd: % of one core (${GUESTS} guests, ${RATE} task/s each; goal < 1 %)`, points, '% of one core')));
say(`wrote bench/results/control-overhead.{json,svg}`);
