// Socket offload (paper §4.2, second scheme; docs/offload-socket.md): a sandbox guest runs the example file server
// (`hylics example file-server`); a client network namespace behind the host downloads with wrk. Side by side in one
// run, per file size: the guest sending itself (--offload none), socket offload (--offload socket: `socket`, the
// library's default here: the descriptor copy below FD_COPY_MAX_BYTES (4 MiB), the handoff from it; `socket-repair`,
// the same forced to the TCP_REPAIR handoff), the http module (module offload), and a plain host socket on the same
// path (the same server as a host process, reached through the host's link to the client namespace). Reports
// throughput, the host-side handoff latency (p50/p99 from `guest show`), the guest's context switches per second (all
// threads of its cgroup's processes, from /proc) and CPU seconds per GB in the guest's cgroup and on the host (hylicsd
// and its module workers, or the host server). Writes bench/results/socket-offload.{json,svg}.
//   npm run bench -- socket-offload [--duration 5] [--connections 4] [--sizes 1,16,64] (MiB)
//   [--schemes socket,host] (only these rows) [--warmup 1] (unmeasured seconds of wrk per row first; 0: none)
//   [--head on|off] (socket row: the response headers in the handoff, sent by the host with the body (on, the
//   default), or written by the guest's server first (off): the example server's --offload-head, for A/B)
// (HYLICS_OFFLOAD_NETLINK=0 in the environment: the daemon changes steering sets through nft instead of netlink;
// HYLICS_OFFLOAD_TRACE=1: the guest's per-step times and the daemon's per-handoff lines go to TRACE_FILE;
// HYLICS_BENCH_GUEST_NODE_ARGS='--perf-basic-prof': node's arguments for the guest's socket-offload server, e.g. for
// `perf record -g -p PID` of it (PID: `pgrep -n -f '^/usr/bin/node --perf-basic-prof .*--port 8080'`); copy its map
// out by hand before it exits, `cp /proc/PID/root/tmp/perf-NSPID.map /tmp/perf-PID.map` (NSPID: the last NSpid in
// /proc/PID/status); with any such arguments the server's output (e.g. of --trace-deopt) is copied out as
// GUEST_LOG_FILE at the end)
// Each row first runs wrk unmeasured for --warmup seconds (WARMUP_SEC; the same for every scheme, the host row's
// server is Node too): the usual JIT-benchmark practice, so the measured run sees optimized code, not V8 compiling.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestView } from '../src/core/api.js';
import { renderSvg, type VegaLiteSpec } from '../src/core/plot.js';
import { runRaw } from '../src/os/exec.js';
import { NODE_BIN, entryArgv } from '../src/os/self.js';
import { clientNetns } from '../test/helpers/net-probe.js';
import { arg, argStr, benchLog } from './lib/args.js';
import { cgroupCpuSeconds, cgroupProcsFile, ctxSwitches } from './lib/measure.js';
import { RESULTS_DIR } from './lib/results.js';
import { benchSession } from './lib/session.js';

const log = benchLog('socket-offload');
const DURATION = arg('duration', 5);
/** Unmeasured wrk per row before the measured run (s): V8 optimizes the servers' hot code meanwhile. */
const WARMUP_SEC = 1;
const WARMUP = arg('warmup', WARMUP_SEC);
const CONNECTIONS = arg('connections', 4);
const SIZES = argStr('sizes', '1,16,64').split(',').map(Number);
/** socket: the guest library's default on this sandbox guest (the descriptor copy below 4 MiB, FD_COPY_MAX_BYTES,
 *  the TCP_REPAIR handoff from it); socket-repair: the same server
 *  forced to the TCP_REPAIR handoff (HYLICS_OFFLOAD_COPY=repair), as microVM guests always do. */
const ALL_SCHEMES = ['guest', 'socket', 'socket-repair', 'module', 'host'] as const;
/** --schemes socket,host: run only these rows (ratios need socket and host; a quick look at one path). */
const SCHEMES = argStr('schemes', ALL_SCHEMES.join(',')).split(',') as Scheme[];
/** --head off: the socket row's server writes its headers itself (the older way), for an A/B in one build. */
const HEAD = argStr('head', 'on');
if (HEAD !== 'on' && HEAD !== 'off') throw new Error(`--head must be on or off, got ${HEAD}`);
const MiB = 1024 * 1024;
const CLK_TCK = 100;
const TRACE_FILE = join(tmpdir(), 'hylics-socket-offload-trace.txt');
/** The guest's socket-offload server's stdout/stderr, copied out when HYLICS_BENCH_GUEST_NODE_ARGS is set. */
const GUEST_LOG_FILE = join(tmpdir(), 'hylics-socket-offload-guest.log');

type Scheme = (typeof ALL_SCHEMES)[number];
interface Row {
  scheme: Scheme;
  sizeMiB: number;
  MBps: number;
  requests: number;
  ctxPerSec: number;
  guestCpuSecPerGB: number;
  hostCpuSecPerGB: number;
  errors: string;
  /** wrk's largest request latency (ms): a handoff stalled on retransmission timeouts shows here */
  latencyMaxMs?: number;
}

/** wrk's duration text ("812.34us", "7.10s", "1.20m") in ms. */
function wrkMs(t: string | undefined): number | undefined {
  const m = t === undefined ? null : /^([\d.]+)(us|ms|s|m)$/.exec(t);
  if (!m) return undefined;
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as 'us' | 'ms' | 's' | 'm'];
}

/** utime+stime (s) of a process and all its descendants alive now. */
function treeCpu(root: number): number {
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').slice(readFileSync(`/proc/${p}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / CLK_TCK;
    } catch { /* gone */ }
    stack.push(...(kids.get(p) ?? []));
  }
  return total;
}

async function main(): Promise<void> {
  // the daemon's per-handoff debug lines only when tracing (they are read back below)
  const s = await benchSession('hylics-bench-sock-', log, { logLevel: process.env.HYLICS_OFFLOAD_TRACE === '1' ? 'debug' : undefined });
  const tag = `${process.pid % 100000}`;
  const w = clientNetns({ name: `hylics-sobw-${tag}`, hostIf: `hsob${tag}`, hostAddr: '10.251.77.1', addr: '10.251.77.2' });
  const { name: W, hostAddr: wHostAddr } = w;
  let hostServer: ChildProcess | undefined;
  s.afterStop.push(async () => { hostServer?.kill('SIGTERM'); await w.remove(); });
  try {
    await s.start();
    const g = `sob${tag}`;
    const maxMiB = Math.max(...SIZES);
    const v = await s.createGuest<GuestView>(g, ['--share-size', `${SIZES.reduce((a, b) => a + b, 0) + 16}M`, '--memory', '512M', '--cpus', '1']);
    const cg = String((v.driverInfo as { cgroup: string }).cgroup);
    const procsFile = cgroupProcsFile(cg);
    log(`guest ${g} at ${v.address}, cgroup ${cg}; files ${SIZES.join(', ')} MiB (max ${maxMiB})`);
    for (const m of SIZES) execFileSync('dd', ['if=/dev/urandom', `of=${join(v.share.path, `f${m}`)}`, 'bs=1M', `count=${m}`, 'status=none']);
    await w.create();

    const cli = [NODE_BIN, ...entryArgv('cli/main')].join(' ');
    const trace = process.env.HYLICS_OFFLOAD_TRACE === '1' ? 'HYLICS_OFFLOAD_TRACE=1 ' : '';
    // HYLICS_BENCH_GUEST_NODE_ARGS (e.g. --perf-basic-prof, for `perf record -p` of the guest's app): node's own
    // arguments for the socket-offload server in the guest
    const gargs = process.env.HYLICS_BENCH_GUEST_NODE_ARGS ?? '';
    const gcli = [NODE_BIN, ...(gargs ? gargs.split(' ') : []), ...entryArgv('cli/main')].join(' ');
    await s.gexec(g, `${trace}setsid ${gcli} example file-server --root /mnt/hylics --port 8080 --offload socket --offload-head ${HEAD} > /run/hylics/fs-socket.log 2>&1 < /dev/null &`);
    await s.gexec(g, `${trace}HYLICS_OFFLOAD_COPY=repair setsid ${gcli} example file-server --root /mnt/hylics --port 8084 --offload socket --offload-head ${HEAD} > /run/hylics/fs-socket-repair.log 2>&1 < /dev/null &`);
    await s.gexec(g, `setsid ${cli} example file-server --root /mnt/hylics --port 8081 --offload none > /run/hylics/fs-none.log 2>&1 < /dev/null &`);
    await s.cli(['module', 'start', g, '--kind', 'http', '--root', '/', '--port', '8082']);
    hostServer = spawn(NODE_BIN, [...entryArgv('cli/main'), 'example', 'file-server', '--root', v.share.path, '--port', '8083', '--host', wHostAddr, '--offload', 'none'], { stdio: 'ignore' });
    const url: Record<Scheme, (m: number) => string> = {
      socket: (m) => `http://${v.address}:8080/f${m}`, guest: (m) => `http://${v.address}:8081/f${m}`,
      module: (m) => `http://${v.address}:8082/f${m}`, host: (m) => `http://${wHostAddr}:8083/f${m}`,
      'socket-repair': (m) => `http://${v.address}:8084/f${m}`,
    };
    for (const sc of Object.keys(url) as Scheme[]) {
      for (let i = 0; ; i++) {
        const r = await runRaw('ip', ['netns', 'exec', W, 'curl', '-sf', '-o', '/dev/null', url[sc](SIZES[0]!)]);
        if (r.code === 0) break;
        if (i > 150) throw new Error(`${sc} server did not come up`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    const daemonPid = s.daemon().pid!;
    const rows: Row[] = [];
    for (const m of SIZES) {
      for (const sc of ALL_SCHEMES.filter((x) => SCHEMES.includes(x))) {
        if (WARMUP > 0) await runRaw('ip', ['netns', 'exec', W, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${WARMUP}s`, '--timeout', '30s', url[sc](m)]);
        const c0 = ctxSwitches(procsFile);
        const g0 = cgroupCpuSeconds(cg);
        const h0 = sc === 'host' ? treeCpu(hostServer.pid!) : treeCpu(daemonPid);
        const t0 = performance.now();
        const r = await runRaw('ip', ['netns', 'exec', W, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--timeout', '30s', url[sc](m)]);
        const secs = (performance.now() - t0) / 1000;
        const out = r.stdout;
        const reqs = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
        const gb = (reqs * m * MiB) / 1e9;
        const row: Row = {
          scheme: sc, sizeMiB: m, requests: reqs, MBps: (reqs * m * MiB) / 1e6 / secs,
          ctxPerSec: (ctxSwitches(procsFile) - c0) / secs,
          guestCpuSecPerGB: gb > 0 ? (cgroupCpuSeconds(cg) - g0) / gb : 0,
          hostCpuSecPerGB: gb > 0 ? ((sc === 'host' ? treeCpu(hostServer.pid!) : treeCpu(daemonPid)) - h0) / gb : 0,
          errors: [/Non-2xx.*$/m.exec(out)?.[0], /Socket errors.*$/m.exec(out)?.[0]].filter(Boolean).join('; '),
          latencyMaxMs: wrkMs(/^\s*Latency\s+\S+\s+\S+\s+(\S+)/m.exec(out)?.[1]),
        };
        rows.push(row);
        log(`${String(m).padStart(3)} MiB ${sc.padEnd(9)} ${row.MBps.toFixed(0).padStart(6)} MB/s  ${row.ctxPerSec.toFixed(0).padStart(7)} guest ctx/s  guest ${row.guestCpuSecPerGB.toFixed(2)} / host ${row.hostCpuSecPerGB.toFixed(2)} CPU s/GB, max latency ${row.latencyMaxMs?.toFixed(0) ?? '?'} ms ${row.errors}`);
      }
    }
    if (trace) {
      // the guest's per-step lines (HYLICS_OFFLOAD_TRACE) and the daemon's per-handoff debug lines, kept for reading
      const guestLines = (await s.gexec(g, 'cat /run/hylics/fs-socket.log')).stdout;
      const hostLines = readFileSync(join(s.dir, 'hylicsd.log'), 'utf8').split('\n').filter((l) => l.includes('socket offload'));
      writeFileSync(TRACE_FILE, `${guestLines}\n${hostLines.join('\n')}\n`);
      log(`trace: ${TRACE_FILE}`);
    }
    if (gargs) {
      writeFileSync(GUEST_LOG_FILE, (await s.gexec(g, 'cat /run/hylics/fs-socket.log')).stdout);
      log(`guest server's output: ${GUEST_LOG_FILE}`);
    }
    const off = ((await s.cli(['guest', 'show', g, '--json'])).json as GuestView).offload?.socket;
    const ratios = SIZES.map((m) => {
      const mb = (sc: Scheme): number => rows.find((r) => r.scheme === sc && r.sizeMiB === m)?.MBps ?? NaN;
      return { sizeMiB: m, socketVsHost: mb('socket') / mb('host'), socketRepairVsHost: mb('socket-repair') / mb('host'), socketVsModule: mb('socket') / mb('module'), socketVsGuest: mb('socket') / mb('guest') };
    });
    for (const q of ratios) log(`${q.sizeMiB} MiB: socket/host ${q.socketVsHost.toFixed(2)}x (the library's default), socket-repair/host ${q.socketRepairVsHost.toFixed(2)}x (TCP_REPAIR), socket/module ${q.socketVsModule.toFixed(2)}x, socket/guest ${q.socketVsGuest.toFixed(2)}x`);
    log(`handoff latency (host side) p50 ${off?.latencyMs.p50?.toFixed(1)} ms, p99 ${off?.latencyMs.p99?.toFixed(1)} ms over ${off?.latencyMs.count}; by copy ${JSON.stringify(off?.byCopy)}; fd copies refused ${JSON.stringify(off?.fdRefused)}; fallbacks ${JSON.stringify(off?.fallbacks)}`);
    const goal = ratios.every((q) => q.socketVsHost >= 0.9);
    log(`goal (socket >= 0.9x a plain host socket for >= 1 MiB): ${goal ? 'met' : 'NOT met'}`);
    const result = {
      bench: 'socket-offload', date: new Date().toISOString(), durationSec: DURATION, warmupSec: WARMUP, connections: CONNECTIONS, head: HEAD,
      loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
      machine: { cpus: Number(execFileSync('nproc').toString().trim()), kernel: execFileSync('uname', ['-r']).toString().trim() },
      note: 'wrk -t1 in a client netns routed through the host; guest = sandbox guest capped at 1 CPU. ctx/s: all threads of the guest cgroup\'s processes (/proc). Host CPU: hylicsd + module workers (guest/socket/module rows; the guest row includes only the daemon\'s idle work) or the host server process. Handoff latency: host-side takeover + hand-back without the send. No RAPL: energy only as CPU time.',
      rows, ratios, handoff: off, goalMet: goal,
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(join(RESULTS_DIR, 'socket-offload.json'), JSON.stringify(result, null, 2) + '\n');
    const bars = (field: keyof Row, title: string, yTitle: string, logScale = false): Record<string, unknown> => ({
      title, data: { values: rows.map((r) => ({ group: `${r.sizeMiB} MiB`, bar: r.scheme, value: r[field] })) }, mark: 'bar', width: { step: 16 }, height: 180,
      encoding: {
        column: { field: 'group', type: 'nominal', title: null }, x: { field: 'bar', type: 'nominal', axis: null },
        y: { field: 'value', type: 'quantitative', title: yTitle, ...(logScale ? { scale: { type: 'symlog' } } : {}) }, color: { field: 'bar', type: 'nominal', title: null },
      },
    });
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `Socket offload vs in-guest send, module offload and a host socket (wrk, ${CONNECTIONS} connections)`,
      vconcat: [bars('MBps', 'Throughput', 'MB/s'), bars('ctxPerSec', 'Guest context switches per second', 'ctx/s', true), bars('hostCpuSecPerGB', 'Host CPU per GB', 'CPU s / GB'), bars('guestCpuSecPerGB', 'Guest CPU per GB', 'CPU s / GB')],
    } as unknown as VegaLiteSpec;
    writeFileSync(join(RESULTS_DIR, 'socket-offload.svg'), await renderSvg(spec));
    log(`wrote ${join(RESULTS_DIR, 'socket-offload.json')} and .svg`);
  } finally {
    await s.cleanup();
  }
}

await main();
