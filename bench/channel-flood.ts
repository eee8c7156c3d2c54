// bench/channel-flood: API latency while a guest floods its control channel (issue #12 item 4), with the
// per-guest channel budget off (HYLICS_CHANNEL_BUDGET=off: what hylicsd did before) and on (the default), side by
// side in one run. Each side: its own daemon and a sandbox guest (0.5 CPU); API latency (GET /v1/guests/NAME over
// the Unix socket, one request at a time) first idle, then while root in the guest runs the flooder
// (test/helpers/channel-flooder.ts: valid task.report frames as fast as the socket takes them, reconnecting when
// cut off) after stopping the guest's agent (SIGSTOP: it would take the channel back). Also the daemon's CPU share and
// the bytes the daemon took in versus the bytes the flooder wrote.
//   npm run bench -- channel-flood [--seconds 15] [--idle-seconds 5]
// Writes bench/results/channel-flood.{json,svg}. Needs root.
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { renderSvg, groupedBarChart, type BarPoint, type VegaLiteSpec } from '../src/core/plot.js';
import type { GuestView } from '../src/core/api.js';
import { benchSession } from './lib/session.js';
import { arg, benchLog } from './lib/args.js';
import { resultPath } from './lib/results.js';
import { pct } from './lib/measure.js';
import { flooderArgv, type FloodResult } from '../test/helpers/channel-flooder.js';

const SECONDS = arg('seconds', 15);
const IDLE_SECONDS = arg('idle-seconds', 5);
const GUEST = 'flood1';
const log = benchLog('channel-flood');

function get(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, timeout: 60_000 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => { b += c.toString(); });
      res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`${path}: HTTP ${res.statusCode} ${b}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Daemon CPU seconds (utime + stime) from /proc. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ is 100 on Linux
}

interface Row { budget: 'off' | 'on'; phase: 'idle' | 'flood'; requests: number; p50Ms: number; p99Ms: number; maxMs: number; daemonCpuPct: number }

async function latency(sock: string, seconds: number, pid: number): Promise<Omit<Row, 'budget' | 'phase'>> {
  const xs: number[] = [];
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (performance.now() < until) {
    const s = performance.now();
    await get(sock, `/v1/guests/${GUEST}`);
    xs.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 20));
  }
  const wall = (performance.now() - t0) / 1000;
  xs.sort((a, b) => a - b);
  return {
    requests: xs.length,
    p50Ms: pct(xs, 0.5),
    p99Ms: pct(xs, 0.99),
    maxMs: xs[xs.length - 1]!,
    daemonCpuPct: (100 * (cpuSeconds(pid) - c0)) / wall,
  };
}

async function side(budget: 'off' | 'on'): Promise<{ rows: Row[]; flood: FloodResult; daemonReceivedBytes: number; disconnects: number }> {
  if (budget === 'off') process.env.HYLICS_CHANNEL_BUDGET = 'off'; else delete process.env.HYLICS_CHANNEL_BUDGET;
  const s = await benchSession(`hylics-bench-flood-${budget}-`, log);
  try {
    await s.start();
    const pid = s.daemon().pid!;
    const sock = join(s.dir, 'hylicsd.sock');
    log(`budget ${budget}: creating sandbox guest ${GUEST} (0.5 CPU)`);
    const g = await s.createGuest<GuestView>(GUEST, ['--driver', 'sandbox', '--share-size', '16M', '--cpus', '0.5', '--memory', '256M']);
    const idle = await latency(sock, IDLE_SECONDS, pid);
    log(`budget ${budget}: idle p50 ${idle.p50Ms.toFixed(1)} ms p99 ${idle.p99Ms.toFixed(1)} ms`);
    // root in the guest stops its agent (so it does not take the channel back) and floods the channel socket itself
    const argv = flooderArgv(['--socket', '/run/hylics/channel.sock', '--seconds', String(SECONDS), '--out', '/mnt/hylics/flood.json']);
    await s.gexec(GUEST, `nohup sh -c "sleep 1; pkill -STOP -f '[g]uest/agent-main'; exec ${argv.map((a) => `'${a}'`).join(' ')}" >/dev/null 2>&1 &`);
    await new Promise((r) => setTimeout(r, 1000));
    log(`budget ${budget}: flooding for ${SECONDS} s`);
    const flood = await latency(sock, SECONDS, pid);
    log(`budget ${budget}: under flood p50 ${flood.p50Ms.toFixed(1)} ms p99 ${flood.p99Ms.toFixed(1)} ms, daemon CPU ${flood.daemonCpuPct.toFixed(0)} %`);
    const out = join(g.share.path, 'flood.json');
    for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 200));
    const fr = JSON.parse(readFileSync(out, 'utf8')) as FloodResult;
    const metrics = await get(sock, '/metrics');
    const num = (name: string): number => Number(new RegExp(`^${name}\\{guest="${GUEST}"\\} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN);
    return {
      rows: [{ budget, phase: 'idle', ...idle }, { budget, phase: 'flood', ...flood }],
      flood: fr,
      daemonReceivedBytes: num('hylics_channel_received_bytes_total'),
      disconnects: num('hylics_channel_budget_disconnects_total'),
    };
  } finally {
    await s.cleanup();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (it runs hylicsd and a sandbox guest)');
  const off = await side('off');
  const on = await side('on');
  const rows = [...off.rows, ...on.rows];
  const ratio = (b: Row[], phase: string) => b.find((r) => r.phase === phase)!;
  const out = {
    bench: 'channel-flood',
    when: new Date().toISOString(),
    seconds: SECONDS,
    guest: 'sandbox, 0.5 CPU; flooder = test/helpers/channel-flooder.ts as root in the guest',
    rows,
    flood: {
      off: { ...off.flood, daemonReceivedBytes: off.daemonReceivedBytes },
      on: { ...on.flood, daemonReceivedBytes: on.daemonReceivedBytes, budgetDisconnects: on.disconnects },
    },
    p99UnderFloodOffOverOn: ratio(off.rows, 'flood').p99Ms / ratio(on.rows, 'flood').p99Ms,
  };
  writeFileSync(resultPath('channel-flood.json'), JSON.stringify(out, null, 2) + '\n');
  const points: BarPoint[] = rows.flatMap((r) => [
    { group: `budget ${r.budget}`, bar: `${r.phase} p50`, value: r.p50Ms },
    { group: `budget ${r.budget}`, bar: `${r.phase} p99`, value: r.p99Ms },
  ]);
  const spec: VegaLiteSpec = groupedBarChart(`API latency (GET /v1/guests/NAME) while a guest floods its channel, ${SECONDS} s`, points, 'ms');
  writeFileSync(resultPath('channel-flood.svg'), await renderSvg(spec));
  for (const r of rows) log(`${r.budget.padEnd(3)} ${r.phase.padEnd(5)} n=${r.requests} p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms max ${r.maxMs.toFixed(1)} ms daemon CPU ${r.daemonCpuPct.toFixed(0)} %`);
  log(`flooder wrote ${(off.flood.bytes / 2 ** 20).toFixed(0)} MiB (budget off) / ${(on.flood.bytes / 2 ** 20).toFixed(0)} MiB (on); daemon took in ${(off.daemonReceivedBytes / 2 ** 20).toFixed(0)} / ${(on.daemonReceivedBytes / 2 ** 20).toFixed(0)} MiB; budget disconnects ${on.disconnects}`);
  log(`wrote ${resultPath('channel-flood.json')} and .svg`);
}

await main();
