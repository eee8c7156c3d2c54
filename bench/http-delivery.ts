// bench/http-delivery: the `http` module (its nginx engine, as hylicsd runs it: unprivileged, own mount namespace,
// module cgroup) vs lighttpd (the paper's delivery server), serving the same files from the same tmpfs, loaded by
// wrk, in one run; plus the engine with `disable_symlinks off` to measure what that guarantee costs, and the module
// on its lighttpd engine (module-engine: lighttpd; chrooted, as hylicsd runs it). Throughput,
// latency (wrk p50/p99) and server CPU seconds per GB delivered (utime+stime of every server process from
// /proc/<pid>/stat). Then 1,000 keep-alive clients and 10,000 idle connections: requests/s and server memory.
// Writes bench/results/http-delivery.{json,svg} (with --cc NAME: http-delivery-NAME.{json,svg}).
//   npx tsx bench/http-delivery.ts [--duration 3] [--rounds 3] [--no-pin] [--connections 16] [--sizes 4k,64k,1m,16m]
//                                  [--no-scale] [--cc reno] [--module-congctl reno]
// Needs root (tmpfs mount), nginx, lighttpd and wrk (scripts/debian-packages.txt).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSvg, type VegaLiteSpec } from '../src/core/plot.js';
import { ModuleManager } from '../src/host/modules/index.js';
import type { EngineKind } from '../src/host/modules/engine-api.js';
import { DEFAULT_ENGINE_CHOICE, EngineChoice } from '../src/host/modules/engine-choice.js';
import { RESULTS_DIR } from './lib/results.js';
import { arg, argStr } from './lib/args.js';

const USAGE = `bench http-delivery: the http module (nginx engine) vs lighttpd from one tmpfs, wrk on loopback
  --duration S       seconds per wrk cell (3)
  --rounds N         rounds, server order rotated each round (3)
  --connections N    wrk connections (16)
  --sizes LIST       file sizes to run, of 4k,64k,1m,16m (all)
  --no-pin           do not pin wrk to CPU 0 and the servers to CPU 1
  --no-scale         skip the 1,000 keep-alive clients / 10,000 idle connections runs
  --no-lighttpd-engine  skip the module on its lighttpd engine (module (lighttpd))
  --cc NAME          run servers and wrk in a network namespace of their own whose TCP congestion control is NAME
                     (e.g. reno: no pacing); results in http-delivery-NAME.{json,svg}. Default: the host's own
                     (sysctl net.ipv4.tcp_congestion_control; bbr paces every socket, see docs/modules.md)
  --module-congctl NAME  a network namespace of its own keeping the host's congestion control, where the third
                     server is the module engine (symlinks checked) on 127.0.0.3 whose replies take a route with
                     congctl NAME (policy rule from 127.0.0.3; lighttpd and the other engine keep the default):
                     the per-route recipe of docs/modules.md; results in http-delivery-congctl-NAME.{json,svg}
Needs root, nginx, lighttpd, wrk.`;
if (process.argv.includes('--help')) { process.stdout.write(`${USAGE}\n`); process.exit(0); }

const DURATION = arg('duration', 3);
const CONNECTIONS = arg('connections', 16);
const ROUNDS = arg('rounds', 3);
// wrk on CPU 0, every server (all its threads) on CPU 1: the same one core for each server, and the client
// never competes with the server it measures (other tenants of this host still can: hence rotated rounds)
const PIN = !process.argv.includes('--no-pin') && Number(execFileSync('nproc').toString().trim()) >= 2;
const ALL_FILES = [
  { key: '4k', name: '4k.bin', label: '4 KiB', size: 4096 },
  { key: '64k', name: '64k.bin', label: '64 KiB', size: 64 * 1024 },
  { key: '1m', name: '1m.bin', label: '1 MiB', size: 1024 * 1024 },
  { key: '16m', name: '16m.bin', label: '16 MiB', size: 16 * 1024 * 1024 },
];
const SIZES = argStr('sizes', ALL_FILES.map((f) => f.key).join(',')).toLowerCase().split(',');
const FILES = ALL_FILES.filter((f) => SIZES.includes(f.key));
if (FILES.length === 0) throw new Error(`--sizes: none of ${SIZES.join(',')} is one of ${ALL_FILES.map((f) => f.key).join(',')}`);

/**
 * The engine `module-engine: auto` settles on, with the default thresholds (engine-choice.ts), for an http-only guest
 * whose responses are all `size` bytes: the choice fed the minimum evidence of such responses. Each module server of
 * this bench names its engine (auto would start on lighttpd and switch after minutes of evidence): this says which
 * of the two module rows a guest serving files of that size ends up measuring.
 */
function autoEngineFor(size: number): EngineKind {
  const c = new EngineChoice(DEFAULT_ENGINE_CHOICE, 0);
  const t = DEFAULT_ENGINE_CHOICE.minEvidenceMs;
  c.record(t, DEFAULT_ENGINE_CHOICE.minRequests, DEFAULT_ENGINE_CHOICE.minRequests * size);
  return c.next(t)?.kind ?? c.preferred;
}
const SCALE = !process.argv.includes('--no-scale');
/** The module on its lighttpd engine (module-engine: lighttpd) as a fourth server. */
const LIGHTTPD_ENGINE = !process.argv.includes('--no-lighttpd-engine');
const LT_MODULE = 'module (lighttpd)';
/** --cc NAME: the bench re-runs itself in a network namespace of its own with that TCP congestion control. */
const CC = argStr('cc', '');
/** --module-congctl NAME: one module engine's replies take a route with that congestion control (RTAX_CC_ALGO). */
const MODULE_CC = argStr('module-congctl', '');
if (CC !== '' && MODULE_CC !== '') throw new Error('--cc and --module-congctl: one or the other');
/** The address of the engine whose replies get MODULE_CC, and the policy routing table that holds that route. */
const CC_ADDR = '127.0.0.3';
const CC_TABLE = 100;
const THIRD = MODULE_CC ? `module (nginx, route congctl ${MODULE_CC})` : 'module (nginx, symlinks not checked)';
/** Set on the re-run inside that namespace. */
const IN_NETNS = process.env.HYLICS_BENCH_NETNS ?? '';
/** The TCP congestion control every socket of this run gets (the namespace's default: wrk, lighttpd, nginx). */
const tcpCongestionControl = (): string =>
  readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim();
const servers: Server[] = [];
const log = (m: string): void => { process.stderr.write(`[http-delivery] ${m}\n`); };

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  return (Number(f[11]) + Number(f[12])) / ticks; // utime, stime (fields 14, 15)
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

function fetchSha(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve(h.digest('hex')));
      res.on('error', reject);
    }).on('error', reject);
  });
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  clientCpuSec: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
}

/**
 * wrk, and the CPU it used (the shell's `times`: children's user and system time). On loopback the receiving
 * side's TCP work runs in softirq on whichever of the two is on the CPU, so a server's CPU alone can move to
 * the client and back with send patterns; server + client per GB is the figure that cannot.
 */
function runWrk(url: string, connections: number): { out: string; clientCpuSec: number } {
  const pin = PIN ? 'taskset -c 0 ' : '';
  const text = execFileSync('sh', ['-c', `${pin}wrk -t1 -c${connections} -d${DURATION}s --latency "$1"; times`, 'wrk', url], { maxBuffer: 1 << 20 }).toString();
  const lines = text.trimEnd().split('\n');
  const sec = (v: string): number => { const m = /^(\d+)m([\d.]+)s$/.exec(v); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; };
  const [u, sy] = (lines.pop() ?? '').trim().split(/\s+/).map(sec);
  lines.pop(); // the shell's own times
  return { out: lines.join('\n'), clientCpuSec: u! + sy! };
}

function wrk(url: string): WrkResult {
  const { out, clientCpuSec } = runWrk(url, CONNECTIONS);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99Ms: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    requests: num(/(\d+) requests in/),
    errors: (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (Number.isNaN(non2xx) ? 0 : non2xx),
    clientCpuSec,
  };
}

interface Server {
  name: string;
  pids: () => number[];
  /** The module's: CPU seconds hylicsd (here, this process) spent so far reading its engine's access log. */
  daemonCpu?: () => number;
  base: string;
  stop: () => Promise<void>;
  memoryBytes: () => Promise<number>;
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

async function startLighttpd(root: string, work: string): Promise<Server> {
  const port = await freePort();
  const conf = join(work, 'lighttpd.conf');
  writeFileSync(conf, [
    `server.document-root = "${root}"`,
    `server.port = ${port}`,
    'server.bind = "127.0.0.1"',
    'server.username = "nobody"',
    'server.groupname = "nogroup"',
    'server.max-keep-alive-requests = 1000000',
    'server.max-connections = 16384',
    'server.max-fds = 32768',
    'server.network-backend = "sendfile"',
    'mimetype.assign = ( ".bin" => "application/octet-stream" )',
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('lighttpd', ['-D', '-f', conf], { stdio: 'inherit' });
  await waitHttp(`http://127.0.0.1:${port}/4k.bin`);
  return {
    name: 'lighttpd', pids: () => [child.pid!], base: `http://127.0.0.1:${port}`,
    stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM'); }),
    memoryBytes: () => Promise.resolve(rssBytes(child.pid!)),
  };
}

/** The module engine: nginx master + its worker (the cgroup's memory is what hylicsd reports for the guest). */
async function startModule(share: string, name: string, disableSymlinks: boolean, addr = '127.0.0.1', engine: EngineKind = 'nginx'): Promise<Server> {
  // as hylicsd runs it, with room for the 10,000-connection run (the default is 1024 per module)
  const manager = new ModuleManager({ steer: false, disableSymlinks, engine, limits: { maxConnections: 12_000 } });
  const guest = `bench-${servers.length}-${process.pid}`;
  const info = await manager.start({ name: guest, sharePath: share, guestAddr: addr, hostAddr: addr }, { kind: 'http', root: '/', port: 80 });
  const base = `http://${addr}:${info.listen.port}`;
  await waitHttp(`${base}/4k.bin`);
  const pids = (): number[] => {
    const master = manager.workerPid(guest)!;
    const kids = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [master, ...kids];
  };
  return {
    name,
    pids,
    daemonCpu: () => manager.accessLogCpuSeconds(guest),
    base,
    stop: () => manager.close(),
    memoryBytes: async () =>
      (await manager.engineReport(guest)).cgroup?.memoryBytes ?? pids().reduce((a, p) => a + rssBytes(p), 0),
  };
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try { await fetchSha(url); return; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  throw new Error(`${url} did not answer`);
}

interface Row {
  server: string;
  file: string;
  size: number;
  rps: number;
  MBps: number;
  p50Ms: number;
  p99Ms: number;
  cpuSec: number;
  cpuSecPerGB: number;
  /** Of cpuSecPerGB: hylicsd reading the module's access log (0 for lighttpd, which logs nothing). */
  daemonCpuSecPerGB: number;
  /** Server + wrk CPU per GB (see runWrk). */
  totalCpuSecPerGB: number;
  errors: number;
}

const LOAD0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

/** wrk with its own connection count (the 1,000 keep-alive clients run). */
function wrkConns(url: string, connections: number): WrkResult {
  const { out, clientCpuSec } = runWrk(url, connections);
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/), p50Ms: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? ''), p99Ms: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    requests: num(/(\d+) requests in/), errors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0, clientCpuSec,
  };
}

const IDLE = 10_000;
/** After a module's cell: nginx flushes its access log within 1 s, the manager reads it once a second. */
const LOG_SETTLE_MS = 2200;
const KEEPALIVE_CLIENTS = 1000;

/** Open `n` connections that each make one request and then stay open idle (keep-alive); resolves with them. */
async function openIdle(base: string, n: number): Promise<{ sockets: Socket[]; answered: number }> {
  const { hostname, port } = new URL(base);
  const out: Socket[] = [];
  let ok = 0;
  for (let i = 0; i < n; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => new Promise<void>((resolve) => {
      const s = connect(Number(port), hostname, () => s.write('GET /4k.bin HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.once('data', () => { ok++; resolve(); });
      s.on('error', () => resolve());
      s.once('close', () => resolve());
      out.push(s);
    })));
  }
  log(`  ${ok}/${n} idle keep-alive connections answered`);
  return { sockets: out, answered: ok };
}

/** 1,000 keep-alive clients (wrk) and 10,000 idle connections: throughput and server memory. */
async function scaleRuns(list: Server[]): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const s of list) {
    const m0 = await s.memoryBytes();
    const w = wrkConns(`${s.base}/4k.bin`, KEEPALIVE_CLIENTS);
    const m1 = await s.memoryBytes();
    const idle = await openIdle(s.base, IDLE);
    const m2 = await s.memoryBytes();
    for (const c of idle.sockets) c.destroy();
    const row = {
      server: s.name,
      idleMemoryBytes: m0,
      keepAliveClients: KEEPALIVE_CLIENTS,
      keepAliveRps: w.rps,
      keepAliveP99Ms: w.p99Ms,
      keepAliveErrors: w.errors,
      memoryAfterKeepAliveBytes: m1,
      idleConnections: IDLE,
      idleConnectionsAnswered: idle.answered,
      memoryWithIdleBytes: m2,
    };
    log(`${s.name.padEnd(16)} ${KEEPALIVE_CLIENTS} keep-alive clients: ${w.rps.toFixed(0)} req/s p99 ${w.p99Ms.toFixed(1)} ms; memory ${(m0 / 1048576).toFixed(1)} MB idle, ${(m1 / 1048576).toFixed(1)} MB after, ${(m2 / 1048576).toFixed(1)} MB with ${IDLE} idle connections`);
    out.push(row);
    await new Promise((r) => setTimeout(r, 500));
  }
  return out;
}

/**
 * --cc NAME: run this bench again inside a network namespace of its own whose default TCP congestion control is
 * NAME (only its loopback; the host's setting is untouched). Returns the exit status of that run.
 */
function rerunInNetns(cc: string): number {
  // (--module-congctl passes the host's own: the namespace then differs from the host only by its routing rules)
  const ns = `hylics-bench-http-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv4.tcp_congestion_control=${cc}`]);
    log(`in network namespace ${ns}, TCP congestion control ${cc} (the host's: ${tcpCongestionControl()})`);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, HYLICS_BENCH_NETNS: ns },
    });
    return r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'delete', ns]);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (tmpfs mount)');
  if (CC !== '' && IN_NETNS === '') { process.exitCode = rerunInNetns(CC); return; }
  if (MODULE_CC !== '' && IN_NETNS === '') { process.exitCode = rerunInNetns(tcpCongestionControl()); return; }
  if (MODULE_CC !== '') {
    // the engine on CC_ADDR answers by a route with congctl MODULE_CC: a rule for its source address ahead of the
    // local table (in this namespace only: loopback replies otherwise go by the local table, at preference 0)
    for (const c of [
      ['rule', 'add', 'pref', '100', 'from', CC_ADDR, 'lookup', String(CC_TABLE)],
      ['route', 'add', 'table', String(CC_TABLE), 'local', '127.0.0.0/8', 'dev', 'lo', 'congctl', MODULE_CC],
      ['rule', 'del', 'pref', '0'], ['rule', 'add', 'pref', '200', 'lookup', 'local'],
    ]) execFileSync('ip', c);
    log(`replies from ${CC_ADDR} take a route with congctl ${MODULE_CC}: ${execFileSync('ip', ['route', 'get', '127.0.0.1', 'from', CC_ADDR]).toString().trim()}`);
  }
  for (const bin of ['lighttpd', 'wrk', 'nginx']) execFileSync('which', [bin], { stdio: 'ignore' });
  const work = mkdtempSync(join(tmpdir(), 'hylics-bench-http-'));
  const share = join(work, 'share');
  execFileSync('chmod', ['0755', work]); // lighttpd runs as nobody and needs to traverse it
  mkdirSync(share);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0755', 'tmpfs', share]);
  try {
    const hashes = new Map<string, string>();
    for (const f of ALL_FILES) { // all of them: the scale runs use 4k.bin whatever --sizes says
      const data = randomBytes(f.size);
      writeFileSync(join(share, f.name), data, { mode: 0o644 });
      hashes.set(f.name, createHash('sha256').update(data).digest('hex'));
    }
    log('starting lighttpd and the http module engine (nginx; disable_symlinks on, and off to measure its cost)');
    servers.push(await startLighttpd(share, work));
    servers.push(await startModule(share, 'module (nginx)', true));
    servers.push(MODULE_CC ? await startModule(share, THIRD, true, CC_ADDR) : await startModule(share, THIRD, false));
    if (LIGHTTPD_ENGINE) servers.push(await startModule(share, LT_MODULE, true, '127.0.0.1', 'lighttpd'));
    if (PIN) for (const s of servers) for (const pid of s.pids()) execFileSync('taskset', ['-a', '-p', '-c', '1', String(pid)], { stdio: 'ignore' });
    const cpuOf = (s: Server): number => s.pids().reduce((a, p) => a + cpuSeconds(p), 0);
    let congctlSeen = '';
    if (MODULE_CC) {
      // which congestion control the engine's accepted sockets really got (ss -ti shows it per socket)
      const third = servers.find((s) => s.name === THIRD)!;
      const { hostname, port } = new URL(third.base);
      const sock = await new Promise<Socket>((resolve) => {
        const c = connect(Number(port), hostname, () => resolve(c));
      });
      congctlSeen = execFileSync('ss', ['-tinH', 'src', `${CC_ADDR}:${port}`]).toString().split(/\s+/)
        .find((w) => ['reno', 'cubic', 'bbr', 'dctcp', 'htcp', 'vegas', MODULE_CC].includes(w)) ?? '?';
      sock.destroy();
      log(`the engine on ${CC_ADDR} accepted a connection with congestion control ${congctlSeen} (host default ${tcpCongestionControl()})`);
      if (congctlSeen !== MODULE_CC) throw new Error(`the route's congctl ${MODULE_CC} did not apply (${congctlSeen})`);
    }
    for (const s of servers) for (const f of FILES) {
      if (await fetchSha(`${s.base}/${f.name}`) !== hashes.get(f.name)) throw new Error(`${s.name} served wrong bytes for ${f.name}`);
    }
    const rows: Row[] = [];
    for (const f of FILES) {
      // rounds with the order rotated, so a noisy neighbour on this shared host hits every server alike
      const acc = new Map<
        string,
        {
          rps: number[]; p50: number[]; p99: number[]; cpu: number; daemonCpu: number; clientCpu: number; bytes: number;
          errors: number;
        }
      >();
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + round) % servers.length]!;
          const c0 = cpuOf(s);
          const d0 = s.daemonCpu?.() ?? 0;
          const w = wrk(`${s.base}/${f.name}`);
          const cpu = cpuOf(s) - c0;
          // this process's event loop was blocked while wrk ran: let nginx flush its log buffer (flush=1s) and the
          // manager read it (once a second) before taking hylicsd's share of this cell
          if (s.daemonCpu) await new Promise((r) => setTimeout(r, LOG_SETTLE_MS));
          const daemon = (s.daemonCpu?.() ?? 0) - d0;
          const a = acc.get(s.name)
            ?? { rps: [], p50: [], p99: [], cpu: 0, daemonCpu: 0, clientCpu: 0, bytes: 0, errors: 0 };
          a.rps.push(w.rps);
          a.p50.push(w.p50Ms);
          a.p99.push(w.p99Ms);
          a.cpu += cpu + daemon;
          a.daemonCpu += daemon;
          a.clientCpu += w.clientCpuSec;
          a.bytes += w.requests * f.size;
          a.errors += w.errors;
          acc.set(s.name, a);
        }
      }
      const mean = (v: number[]): number => v.reduce((x, y) => x + y, 0) / v.length;
      for (const s of servers) {
        const a = acc.get(s.name)!;
        const row: Row = {
          server: s.name,
          file: f.label,
          size: f.size,
          rps: mean(a.rps),
          MBps: (mean(a.rps) * f.size) / 1e6,
          p50Ms: mean(a.p50),
          p99Ms: mean(a.p99),
          cpuSec: a.cpu,
          cpuSecPerGB: a.bytes > 0 ? a.cpu / (a.bytes / 1e9) : NaN,
          daemonCpuSecPerGB: a.bytes > 0 ? a.daemonCpu / (a.bytes / 1e9) : NaN,
          totalCpuSecPerGB: a.bytes > 0 ? (a.cpu + a.clientCpu) / (a.bytes / 1e9) : NaN,
          errors: a.errors,
        };
        rows.push(row);
        log(`${f.label.padEnd(7)} ${s.name.padEnd(31)} ${row.rps.toFixed(0).padStart(7)} req/s ${row.MBps.toFixed(0).padStart(6)} MB/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms  ${row.cpuSecPerGB.toFixed(3)} CPU s/GB (+wrk ${row.totalCpuSecPerGB.toFixed(3)}${s.daemonCpu ? `; hylicsd's log reading ${row.daemonCpuSecPerGB.toFixed(3)} of it` : ''})${a.errors ? `  errors ${a.errors}` : ''}`);
      }
    }
    const ratios = FILES.map((f) => {
      const by = (name: string): Row => rows.find((r) => r.file === f.label && r.server === name)!;
      const l = by('lighttpd');
      const n = by('module (nginx)');
      const o = by(THIRD);
      const lt = LIGHTTPD_ENGINE ? by(LT_MODULE) : undefined;
      const autoEngine = autoEngineFor(f.size);
      // auto's row: the module row of the engine auto settles on (when that row ran)
      const au = autoEngine === 'nginx' ? n : lt;
      return {
        autoEngine,
        ...(au ? {
          autoVsLighttpdThroughput: au.rps / l.rps,
          autoVsLighttpdCpuPerGB: au.cpuSecPerGB / l.cpuSecPerGB,
          autoVsLighttpdP99: au.p99Ms / l.p99Ms,
        } : {}),
        ...(lt ? {
          lighttpdModuleVsLighttpdThroughput: lt.rps / l.rps,
          lighttpdModuleVsLighttpdCpuPerGB: lt.cpuSecPerGB / l.cpuSecPerGB,
          lighttpdModuleVsLighttpdCpuPerGBWithClient: lt.totalCpuSecPerGB / l.totalCpuSecPerGB,
          lighttpdModuleVsLighttpdP99: lt.p99Ms / l.p99Ms,
        } : {}),
        ...(MODULE_CC ? {
          congctlModuleVsLighttpdThroughput: o.rps / l.rps,
          congctlModuleVsLighttpdCpuPerGB: o.cpuSecPerGB / l.cpuSecPerGB,
          congctlModuleVsLighttpdCpuPerGBWithClient: o.totalCpuSecPerGB / l.totalCpuSecPerGB,
          congctlModuleVsLighttpdP99: o.p99Ms / l.p99Ms,
        } : {}),
        file: f.label,
        moduleVsLighttpdThroughput: n.rps / l.rps,
        moduleVsLighttpdCpuPerGB: n.cpuSecPerGB / l.cpuSecPerGB,
        moduleVsLighttpdCpuPerGBWithClient: n.totalCpuSecPerGB / l.totalCpuSecPerGB,
        moduleVsLighttpdP99: n.p99Ms / l.p99Ms,
        ...(MODULE_CC ? {} : { symlinkCheckCost: n.rps / o.rps }),
      };
    });
    for (const r of ratios) {
      log(`${r.file.padEnd(7)} module/lighttpd throughput ${r.moduleVsLighttpdThroughput.toFixed(2)}x, CPU/GB ${r.moduleVsLighttpdCpuPerGB.toFixed(2)}x (with wrk's ${r.moduleVsLighttpdCpuPerGBWithClient.toFixed(2)}x), p99 ${r.moduleVsLighttpdP99.toFixed(2)}x; `
        + (r.congctlModuleVsLighttpdThroughput !== undefined
          ? `with route congctl ${MODULE_CC}: throughput ${r.congctlModuleVsLighttpdThroughput.toFixed(2)}x, CPU/GB ${r.congctlModuleVsLighttpdCpuPerGB!.toFixed(2)}x (with wrk's ${r.congctlModuleVsLighttpdCpuPerGBWithClient!.toFixed(2)}x), p99 ${r.congctlModuleVsLighttpdP99!.toFixed(2)}x`
          : `disable_symlinks on/off throughput ${r.symlinkCheckCost!.toFixed(2)}x`));
      if (r.lighttpdModuleVsLighttpdThroughput !== undefined)
        log(`${r.file.padEnd(7)} module (lighttpd)/lighttpd throughput ${r.lighttpdModuleVsLighttpdThroughput.toFixed(2)}x, CPU/GB ${r.lighttpdModuleVsLighttpdCpuPerGB!.toFixed(2)}x (with wrk's ${r.lighttpdModuleVsLighttpdCpuPerGBWithClient!.toFixed(2)}x), p99 ${r.lighttpdModuleVsLighttpdP99!.toFixed(2)}x`);
      log(`${r.file.padEnd(7)} module-engine auto settles on ${r.autoEngine} (default thresholds)`
        + (r.autoVsLighttpdThroughput !== undefined
          ? `: throughput ${r.autoVsLighttpdThroughput.toFixed(2)}x, CPU/GB ${r.autoVsLighttpdCpuPerGB!.toFixed(2)}x, p99 ${r.autoVsLighttpdP99!.toFixed(2)}x`
          : ''));
    }
    const target = ratios.every(
      (r) => r.moduleVsLighttpdThroughput >= 0.95 && r.moduleVsLighttpdCpuPerGB <= 1.1 && r.moduleVsLighttpdP99 <= 1.2,
    );
    log(`goals (>= 0.95x throughput, <= 1.1x CPU/GB, <= 1.2x p99 vs lighttpd, every size), module (nginx): ${target ? 'met' : 'NOT met'}`);
    const targetLighttpd = LIGHTTPD_ENGINE ? ratios.every(
      (r) => r.lighttpdModuleVsLighttpdThroughput! >= 0.95 && r.lighttpdModuleVsLighttpdCpuPerGB! <= 1.1
        && r.lighttpdModuleVsLighttpdP99! <= 1.2,
    ) : undefined;
    if (targetLighttpd !== undefined) log(`goals, module (lighttpd): ${targetLighttpd ? 'met' : 'NOT met'}`);
    // the engine auto settles on at each size (its row's ratios, when every size's row ran)
    const targetAuto = ratios.every((r) => r.autoVsLighttpdThroughput !== undefined)
      ? ratios.every((r) => r.autoVsLighttpdThroughput! >= 0.95 && r.autoVsLighttpdCpuPerGB! <= 1.1
        && r.autoVsLighttpdP99! <= 1.2)
      : undefined;
    if (targetAuto !== undefined) log(`goals, module-engine auto (the engine it settles on per size): ${targetAuto ? 'met' : 'NOT met'}`);
    const scale = SCALE ? await scaleRuns(servers.filter((s) => s.name !== THIRD)) : [];
    const result = {
      bench: 'http-delivery', date: new Date().toISOString(), durationSec: DURATION, rounds: ROUNDS, connections: CONNECTIONS, pinned: PIN,
      loadAverageAtStart: LOAD0, loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
      machine: { cpus: Number(execFileSync('nproc').toString().trim()), kernel: execFileSync('uname', ['-r']).toString().trim() },
      // bbr paces every socket itself (an hrtimer per paced burst): on loopback that is most of a server's CPU
      tcpCongestionControl: tcpCongestionControl(), ...(IN_NETNS ? { netns: MODULE_CC ? 'own (--module-congctl)' : 'own (--cc)' } : {}),
      ...(MODULE_CC ? { moduleCongctl: { name: MODULE_CC, seenOnAcceptedSocket: congctlSeen, server: THIRD, address: CC_ADDR, rule: `from ${CC_ADDR} lookup ${CC_TABLE} (pref 100, before the local table moved to pref 200)`, route: `local 127.0.0.0/8 dev lo congctl ${MODULE_CC} table ${CC_TABLE}` } } : {}),
      command: `npm run bench -- http-delivery ${process.argv.slice(2).join(' ')}`.trim(),
      note: 'wrk -t1 on loopback against servers on the same host (wrk pinned to CPU 0, servers to CPU 1 unless --no-pin); CPU = utime+stime of the server processes (lighttpd; nginx master + worker; the lighttpd engine\'s lighttpd) during the run, for the module plus hylicsd\'s CPU reading its access log (daemonCpuSecPerGB, part of cpuSecPerGB); totalCpuSecPerGB adds wrk\'s own CPU (loopback receive work is billed to whichever side is on the CPU). The module writes its access log (its counters), lighttpd none. No RAPL here: energy only as CPU time.',
      rows, ratios, goalsMet: target, scale,
      ...(targetLighttpd !== undefined ? { goalsMetLighttpdEngine: targetLighttpd } : {}),
      ...(targetAuto !== undefined ? { goalsMetAutoEngine: targetAuto } : {}),
      autoEngineChoice: DEFAULT_ENGINE_CHOICE,
    };
    const outDir = RESULTS_DIR;
    mkdirSync(outDir, { recursive: true });
    const base = join(outDir, CC ? `http-delivery-${CC}` : MODULE_CC ? `http-delivery-congctl-${MODULE_CC}` : 'http-delivery');
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
    const bars = (field: keyof Row, title: string, yTitle: string): Record<string, unknown> => ({
      title, data: { values: rows.map((r) => ({ group: r.file, bar: r.server, value: r[field] })) }, mark: 'bar', width: { step: 16 }, height: 200,
      encoding: {
        column: { field: 'group', type: 'nominal', title: null, sort: FILES.map((f) => f.label) },
        x: { field: 'bar', type: 'nominal', axis: null },
        y: { field: 'value', type: 'quantitative', title: yTitle, scale: { type: field === 'rps' ? 'log' : 'linear' } },
        color: { field: 'bar', type: 'nominal', title: null },
      },
      resolve: { scale: { y: 'independent' } },
    });
    const scaleBars = (title: string, fields: Array<[string, string]>, k = 1): Record<string, unknown> => ({
      title,
      data: {
        values: scale.flatMap((r) =>
          fields.map(([f, label]) => ({ group: label, bar: r.server, value: Number(r[f]) * k })),
        ),
      },
      mark: 'bar',
      width: { step: 16 },
      height: 160,
      encoding: {
        column: { field: 'group', type: 'nominal', title: null, sort: fields.map(([, l]) => l) },
        x: { field: 'bar', type: 'nominal', axis: null },
        y: { field: 'value', type: 'quantitative', title: null },
        color: { field: 'bar', type: 'nominal', title: null },
      },
      resolve: { scale: { y: 'independent' } },
    });
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `HTTP delivery from a tmpfs share: http module vs lighttpd (wrk, ${CONNECTIONS} connections, TCP ${tcpCongestionControl()})`,
      vconcat: [
        bars('MBps', 'Throughput', 'MB/s'), bars('cpuSecPerGB', 'Server CPU per GB delivered', 'CPU s / GB'),
        bars('totalCpuSecPerGB', 'Server + wrk CPU per GB delivered', 'CPU s / GB'), bars('p99Ms', 'Latency p99', 'ms'),
        ...(scale.length === 0 ? [] : [
          scaleBars(`${KEEPALIVE_CLIENTS} keep-alive clients (4 KiB): throughput and p99`, [['keepAliveRps', 'req/s'], ['keepAliveP99Ms', 'p99 ms']]),
          scaleBars(`Server memory (MB): idle, after ${KEEPALIVE_CLIENTS} keep-alive clients, with ${IDLE} idle connections`,
            [['idleMemoryBytes', 'idle'], ['memoryAfterKeepAliveBytes', `after ${KEEPALIVE_CLIENTS} clients`], ['memoryWithIdleBytes', `${IDLE} idle conns`]], 1 / 1048576),
        ]),
      ],
    } as unknown as VegaLiteSpec;
    writeFileSync(`${base}.svg`, await renderSvg(spec));
    log(`wrote ${base}.json and .svg`);
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    try { execFileSync('umount', ['-l', share]); } catch { /* already gone */ }
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
