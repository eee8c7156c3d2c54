// CLI latency: wall time of `hylics` invocations, hyperfine-style (warm-up runs, then N timed runs; p50, p95,
// min; the cases interleaved), against a running daemon. `--before DIR` times a second checkout (built) in the same
// run, side by side, so a change can be judged under the same machine load. Node's own start-up (`node -e 0`) is
// the floor. `hylics CMD` runs bin/hylics.js as an installed `hylics` does, through its first line (which starts
// Node without NODE_EXTRA_CA_CERTS); `node bin/hylics.js CMD` starts it with Node's environment as it is. The rows
// `unbundled` run the same commands from the ES module files (dist/src/cli/main.js) instead of bin/hylics.js's
// CommonJS bundle. When NODE_EXTRA_CA_CERTS is set, a second floor row runs without it: Node 20 (not 22/24) parses
// that certificate file at every start. The environment (Node version, NODE_EXTRA_CA_CERTS, load) is in the output.
//   npm run bench -- cli-latency [--runs 30] [--warmup 3] [--before /path/to/other/checkout]
// Writes bench/results/cli-latency.json and .svg. Needs root (it starts a daemon on a temporary state dir).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { groupedBarChart, renderSvg } from '../src/core/plot.js';
import { NODE_BIN, PACKAGE_ROOT } from '../src/os/self.js';
import { hylics, stopDaemon, tempStateDir } from '../test/helpers/cli.js';
import { arg, argStr, benchLog } from './lib/args.js';
import { resultPath } from './lib/results.js';
import { pct } from './lib/measure.js';

/** The goal of issue #14 for `guest ls` and `status` against a running daemon. */
const GOAL_MS = 150;
const NS_PER_MS = 1e6;

const runs = arg('runs', 30);
const warmup = arg('warmup', 3);
const before = argStr('before', '');
const log = benchLog('cli-latency');

interface Case { name: string; argv: (root: string, stateDir: string) => string[]; env?: NodeJS.ProcessEnv }
const { NODE_EXTRA_CA_CERTS: extraCa, ...envWithoutExtraCa } = process.env;
const main = (root: string): string => join(root, 'dist', 'src', 'cli', 'main.js');
const bin = (root: string): string => join(root, 'bin', 'hylics.js');
const CASES: Case[] = [
  { name: 'node -e 0 (floor)', argv: () => [NODE_BIN, '-e', '0'] },
  ...(extraCa ? [{ name: 'node -e 0, no NODE_EXTRA_CA_CERTS', argv: () => [NODE_BIN, '-e', '0'], env: envWithoutExtraCa }] : []),
  { name: 'hylics --version', argv: (root) => [bin(root), '--version'] },
  { name: './hylics --version', argv: (root) => [join(root, 'hylics'), '--version'] },
  { name: 'hylics status', argv: (root, d) => [bin(root), 'status', '--state-dir', d] },
  { name: 'hylics guest ls', argv: (root, d) => [bin(root), 'guest', 'ls', '--state-dir', d] },
  { name: './hylics guest ls', argv: (root, d) => [join(root, 'hylics'), 'guest', 'ls', '--state-dir', d] },
  { name: 'node bin/hylics.js status', argv: (root, d) => [NODE_BIN, bin(root), 'status', '--state-dir', d] },
  { name: 'node bin/hylics.js guest ls', argv: (root, d) => [NODE_BIN, bin(root), 'guest', 'ls', '--state-dir', d] },
  { name: 'status, unbundled', argv: (root, d) => [NODE_BIN, main(root), 'status', '--state-dir', d] },
  { name: 'guest ls, unbundled', argv: (root, d) => [NODE_BIN, main(root), 'guest', 'ls', '--state-dir', d] },
];

// CPU time (user + system) of the child, from GNU time when installed: unlike wall time it hardly moves when other
// processes load the machine, so it shows what the command itself costs.
const GNU_TIME = '/usr/bin/time';
const hasTime = existsSync(GNU_TIME);

function timeOnce(argv: string[], env?: NodeJS.ProcessEnv): { wallMs: number; cpuMs: number | undefined } {
  const full = hasTime ? [GNU_TIME, '-f', 'HYLICS_CPU %U %S', ...argv] : argv;
  const t0 = process.hrtime.bigint();
  // `hylics` and ./hylics start the `node` on PATH: this bench's Node first, so a run on Node 22 or 24 times that one
  const e = env ?? process.env;
  const r = spawnSync(full[0]!, full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...e, PATH: `${dirname(NODE_BIN)}:${e.PATH ?? ''}` } });
  const wallMs = Number(process.hrtime.bigint() - t0) / NS_PER_MS;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(0, 300)}`);
  const m = /HYLICS_CPU ([\d.]+) ([\d.]+)/.exec(r.stderr.toString());
  return { wallMs, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : undefined };
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').trim();

if (process.getuid?.() !== 0) { console.error('cli-latency needs root (it starts hylicsd)'); process.exit(1); }
const checkouts: Array<{ label: string; root: string }> = [{ label: 'this checkout', root: PACKAGE_ROOT }];
if (before) {
  if (!existsSync(join(before, 'dist', 'src', 'cli', 'main.js'))) { console.error(`--before ${before}: not a built checkout`); process.exit(2); }
  checkouts.unshift({ label: 'before', root: before });
}

const stateDir = await tempStateDir('hylics-bench-cli-');
const logFd = openSync(join(stateDir, 'hylicsd.log'), 'a');
const daemon = spawn(NODE_BIN, [join(PACKAGE_ROOT, 'bin', 'hylics.js'), 'daemon', '--state-dir', stateDir, '--no-guest-firewall'], { stdio: ['ignore', logFd, logFd] });
closeSync(logFd);
const rows: Array<{
  checkout: string;
  case: string;
  p50Ms: number;
  p95Ms: number;
  minMs: number;
  meanMs: number;
  cpuP50Ms: number | undefined;
  runs: number;
}> = [];
try {
  for (let i = 0; ; i++) {
    if ((await hylics(['status', '--state-dir', stateDir])).code === 0) break;
    if (i > 120 || daemon.exitCode !== null) throw new Error(`daemon did not come up; see ${stateDir}/hylicsd.log`);
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`daemon up on ${stateDir}; ${warmup} warm-up + ${runs} timed runs per case, cases interleaved`);
  log(`environment: node ${process.version} (${NODE_BIN}), NODE_EXTRA_CA_CERTS ${extraCa ? `set (${extraCa})` : 'not set'}, load ${loadavg()}`);
  // every case once per round, round after round: a change in the machine's load hits all rows alike
  const series = CASES.flatMap((c) => checkouts
    .filter((co) => !c.name.startsWith('node -e') || co === checkouts[0])
    .map((co) => ({ c, co, argv: c.argv(co.root, stateDir), t: [] as number[], cpu: [] as number[] })));
  for (let i = 0; i < warmup + runs; i++) {
    for (const s of series) {
      const r = timeOnce(s.argv, s.c.env);
      if (i < warmup) continue;
      s.t.push(r.wallMs);
      if (r.cpuMs !== undefined) s.cpu.push(r.cpuMs);
    }
    if (i >= warmup && (i - warmup + 1) % 5 === 0) log(`round ${i - warmup + 1}/${runs}`);
  }
  log(`load at the end: ${loadavg()}`);
  for (const { c, co, t, cpu } of series) {
    t.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    const row = { checkout: c.name.startsWith('node -e') ? 'both' : co.label, case: c.name, p50Ms: pct(t, 0.5), p95Ms: pct(t, 0.95), minMs: t[0]!, meanMs: t.reduce((a, b) => a + b, 0) / t.length, cpuP50Ms: cpu.length ? pct(cpu, 0.5) : undefined, runs };
    rows.push(row);
    log(`${row.case.padEnd(34)} ${row.checkout.padEnd(14)} wall p50 ${row.p50Ms.toFixed(0).padStart(5)} ms  p95 ${row.p95Ms.toFixed(0).padStart(5)} ms  min ${row.minMs.toFixed(0).padStart(5)} ms  cpu p50 ${row.cpuP50Ms?.toFixed(0) ?? '-'} ms`);
  }
} finally {
  await stopDaemon(daemon);
  await rm(stateDir, { recursive: true, force: true });
}

const mine = (name: string): number | undefined => rows.find((r) => r.case === name && r.checkout === 'this checkout')?.p50Ms;
const summary = {
  goalMs: GOAL_MS,
  floorP50Ms: rows.find((r) => r.case.startsWith('node -e'))?.p50Ms,
  floorWithoutExtraCaP50Ms: rows.find((r) => r.case.includes('NODE_EXTRA_CA_CERTS'))?.p50Ms,
  guestLsP50Ms: mine('hylics guest ls'),
  statusP50Ms: mine('hylics status'),
  guestLsNodeBinP50Ms: mine('node bin/hylics.js guest ls'),
  statusNodeBinP50Ms: mine('node bin/hylics.js status'),
  guestLsUnbundledP50Ms: mine('guest ls, unbundled'),
  statusUnbundledP50Ms: mine('status, unbundled'),
  meetsGoal: (mine('hylics guest ls') ?? Infinity) <= GOAL_MS && (mine('hylics status') ?? Infinity) <= GOAL_MS,
  node: process.version,
  nodeExtraCaCerts: extraCa ?? null,
  loadavg: loadavg(),
  note: 'wall time includes waiting for a CPU: on a loaded machine compare with the floor (node -e 0) and with cpuP50Ms',
};
await writeFile(resultPath('cli-latency.json'), JSON.stringify({ summary, rows }, null, 2) + '\n');
await writeFile(resultPath('cli-latency.svg'), await renderSvg(groupedBarChart(`hylics CLI wall time, p50 of ${runs} runs (goal ${GOAL_MS} ms for status / guest ls)`,
  rows.map((r) => ({ group: r.case, bar: r.checkout, value: r.p50Ms })), 'ms')));
console.log(JSON.stringify(summary, null, 2));
