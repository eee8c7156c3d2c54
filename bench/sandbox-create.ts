// Time to create, start and destroy a sandbox guest, phase by phase, side by side:
//   sleep  - the smallest possible guest program (`sleep infinity`): the cost of the sandbox itself
//   node   - a Node.js TCP server, timed until it answers on the guest's veth address (what an agent costs)
//   (both as crun containers, the default isolation) and node-namespaces: the node guest in the earlier
//   namespaces-only isolation (what the container boundary costs at start).
// Run: npx tsx bench/sandbox-create.ts [N]   (default N=15 per configuration; needs root)
// Writes bench/results/sandbox-create.json and .svg.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SandboxDriver, type SandboxIsolation } from '../src/host/drivers/sandbox.js';
import type { DriverContext } from '../src/host/drivers/types.js';
import { ShareManager } from '../src/host/share-manager.js';
import { groupedBarChart, renderSvg, type BarPoint } from '../src/core/plot.js';
import { resultPath } from './lib/results.js';
import { MiB } from '../src/core/units.js';

const N = Number(process.argv[2] ?? process.env.N ?? 15);
const PORT = 7000;
const log = pino({ level: 'silent' });

if (process.getuid?.() !== 0) { console.error('sandbox-create needs root'); process.exit(1); }

const NODE_SERVER = [process.execPath, '-e', `require('net').createServer((s) => s.end('ok')).listen(${PORT})`];
const configs: Record<string, { command: string[]; isolation: SandboxIsolation }> = {
  sleep: { command: ['sleep', 'infinity'], isolation: 'container' },
  node: { command: NODE_SERVER, isolation: 'container' },
  'node-namespaces': { command: NODE_SERVER, isolation: 'namespaces' },
};
const PHASES = ['share create', 'start', 'ready', 'stop', 'cleanup', 'share destroy', 'total'] as const;
type Phase = typeof PHASES[number];

function tcpOnce(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port: PORT });
    s.on('data', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'hylics-bench-sbx-'));
  const sm = new ShareManager({ stateDir });
  const samples: Record<string, Record<Phase, number[]>> = {};
  const oct = (process.pid % 200) + 20;
  let k = 0;
  try {
    for (let i = 0; i < N; i++) {
      for (const [cfg, { command, isolation }] of Object.entries(configs)) {
        samples[cfg] ??= Object.fromEntries(PHASES.map((p) => [p, []])) as unknown as Record<Phase, number[]>;
        const s = samples[cfg]!;
        const name = `bench${k}`;
        const tag = `${process.pid % 10000}${k % 60}`;
        k++;
        const dir = join(stateDir, 'guests', name);
        const ctx: DriverContext = {
          spec: { name, driver: 'sandbox', shareSizeBytes: 16 * MiB, cpus: 1, memoryBytes: 256 * MiB },
          paths: { dir, share: sm.path(name), run: join(dir, 'run'), logs: join(dir, 'logs') },
          network: { index: k, hostIf: `hybh${tag}`, guestIf: `hybg${tag}`, hostAddr: `10.253.${oct}.1`, guestAddr: `10.253.${oct}.2`, prefixLen: 30, netns: `hylics-bench-${tag}` },
          stateDir, log,
        };
        const driver = new SandboxDriver({ command: () => command, isolation });
        const t0 = performance.now();
        await sm.create(name, 16 * MiB);
        const t1 = performance.now();
        let state;
        try {
          state = await driver.start(ctx);
          const t2 = performance.now();
          if (cfg !== 'sleep') { while (!(await tcpOnce(ctx.network.guestAddr))) await new Promise((r) => setTimeout(r, 5)); }
          const t3 = performance.now();
          await driver.stop(ctx, state, 5000);
          const t4 = performance.now();
          await driver.cleanup(ctx, state);
          const t5 = performance.now();
          await sm.destroy(name);
          const t6 = performance.now();
          await rm(dir, { recursive: true, force: true });
          s['share create'].push(t1 - t0); s.start.push(t2 - t1); s.ready.push(t3 - t2); s.stop.push(t4 - t3);
          s.cleanup.push(t5 - t4); s['share destroy'].push(t6 - t5); s.total.push(t6 - t0);
        } finally {
          await driver.cleanup(ctx, state).catch(() => undefined);
          await sm.destroy(name).catch(() => undefined);
        }
      }
      process.stdout.write(`\r${i + 1}/${N} rounds: sleep total ${samples.sleep!.total.at(-1)!.toFixed(0)} ms, node total ${samples.node!.total.at(-1)!.toFixed(0)} ms, node-namespaces total ${samples['node-namespaces']!.total.at(-1)!.toFixed(0)} ms   `);
    }
    process.stdout.write('\n');
  } finally {
    await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
  }

  const summary: Record<string, Record<string, { p50: number; p95: number; mean: number }>> = {};
  const points: BarPoint[] = [];
  for (const [cfg, s] of Object.entries(samples)) {
    summary[cfg] = {};
    for (const p of PHASES) {
      const xs = s[p];
      const v = { p50: pct(xs, 50), p95: pct(xs, 95), mean: xs.reduce((a, b) => a + b, 0) / xs.length };
      summary[cfg]![p] = v;
      points.push({ group: p, bar: `${cfg} p50`, value: Number(v.p50.toFixed(2)) }, { group: p, bar: `${cfg} p95`, value: Number(v.p95.toFixed(2)) });
    }
  }
  // 'ready' is ~0 for sleep (nothing to wait for): no ratio there
  const ratio = Object.fromEntries(
    PHASES.map((p) => [
      p,
      summary.sleep![p].p50 < 0.5 ? null : Number((summary.node![p].p50 / summary.sleep![p].p50).toFixed(2)),
    ]),
  );
  const ratioIso = Object.fromEntries(PHASES.map((p) => [p, summary['node-namespaces']![p].p50 < 0.5 ? null : Number((summary.node![p].p50 / summary['node-namespaces']![p].p50).toFixed(2))]));
  const result = {
    bench: 'sandbox-create', date: new Date().toISOString(), n: N, unit: 'ms',
    configurations: { sleep: 'sleep infinity (container)', node: 'node -e <tcp server> (container), ready = answers on the guest address', 'node-namespaces': 'the same node guest, isolation namespaces' },
    summary, ratioNodeToSleepP50: ratio, ratioContainerToNamespacesNodeP50: ratioIso, samples,
  };
  await writeFile(resultPath('sandbox-create.json'), JSON.stringify(result, null, 2) + '\n');
  await writeFile(resultPath('sandbox-create.svg'), await renderSvg(groupedBarChart(`Sandbox guest create/start/destroy (N=${N}, ms)`, points, 'milliseconds')));
  console.log('phase           sleep p50/p95 (ms)   node p50/p95 (ms)   node-ns p50/p95 (ms)  node/sleep  container/ns (node p50)');
  for (const p of PHASES) {
    const a = summary.sleep![p]; const b = summary.node![p]; const c = summary['node-namespaces']![p];
    console.log(`${p.padEnd(15)} ${a.p50.toFixed(1).padStart(8)} / ${a.p95.toFixed(1).padEnd(8)} ${b.p50.toFixed(1).padStart(8)} / ${b.p95.toFixed(1).padEnd(8)} ${c.p50.toFixed(1).padStart(8)} / ${c.p95.toFixed(1).padEnd(8)} ${String(ratio[p]).padEnd(11)} ${ratioIso[p]}`);
  }
  console.log('wrote bench/results/sandbox-create.json and .svg');
}

await main();
