// bench/hybrid: the paper's compression + delivery experiment (§6.3, Fig. 19/20) with a real Hylics sandbox guest
// capped at 0.5 CPU. The guest's share holds a ~200 MiB file to deliver and a ~100 MiB compressible file to
// compress; a client in a client network namespace (routed through the host) downloads the big file from the
// guest's address over and over (--client: splice, the default, or curl; see CLIENT below). Five configurations
// side by side in one run, rotated over rounds:
//   (1) delivery alone: lighttpd (sendfile backend) running inside the guest (`hylics guest exec`)
//   (2) compression alone: `pigz -p 2` in the guest, timed inside the guest
//   (3) interference: both at once in the guest
//   (4) module offload: pigz in the guest while the host `http` module delivers the same file from the share
//   (5) socket offload: pigz in the guest while the example file server in the guest (`hylics example file-server
//       --offload socket`) keeps its HTTP but hands each body's send to the host (docs/offload-socket.md)
// Reports delivery throughput (MB/s), compression time (s), the host CPU seconds the module worker spends per GB
// delivered (utime+stime from /proc/<pid>/stat; the worker is the daemon's child running as uid 65534), the same
// figure for the in-guest lighttpd, hylicsd's CPU per GB under socket offload, the guest cgroup's CPU and context
// switches per second (all threads of its processes), and the ratios to (1)/(2) and socket/module.
// Placement (as in the paper's Fig. 19/20 setup, where the VM has vCPUs of its own and the hypervisor-level module
// runs on other cores): the guest's processes are pinned to CPU 0 (its 0.5-CPU quota stays), the module engine
// (nginx master + worker, or the module's lighttpd) and hylicsd (the socket-offload engine) to the other CPUs, and
// the client to CPU 0 in every scheme (--client-cpu; why: CLIENT_CPUS below). Each cell reports each CPU's busy
// fraction and the client's CPU.
// --placement shared pins nothing but the client (--client-cpu; not pinned by default there): pigz in the guest
// then competes with the module engine for the same cores (the host's scheduler, not the module, decides what that
// costs). Each cell also reports how busy the whole host was.
// Writes bench/results/hybrid.{json,svg}.
//   npx tsx bench/hybrid.ts [--rounds 2] [--deliver-mib 200] [--compress-mib 100] [--alone-seconds 8]
//                           [--placement split|shared] [--client-cpu 0|1|none] [--client splice|curl]
//                           [--configs alone,compression,interference,module,socket] (a subset: only these cells)
//                           [--daemon-cgroup own|session] [--module-engine auto|nginx|lighttpd] (the daemon's setting)
//                           [--socket-copy auto|repair] (the daemon's socket-offload-copy: the descriptor copy or the
//                           TCP_REPAIR handoff for the socket-offload cell)
//                           [--module-congctl reno] (the module's replies to the client take a route with this
//                           congestion control: the per-route recipe of docs/modules.md; the host's default stays)
// Needs root (the daemon: namespaces, cgroups, nftables), lighttpd, pigz, curl (warm-up requests), python3 >= 3.10
// (the splice client).
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { groupedBarChart, renderSvg, type BarPoint, type VegaLiteSpec } from '../src/core/plot.js';
import { benchSession } from './lib/session.js';
import { RESULTS_DIR } from './lib/results.js';
import { cgroupCpuSeconds, cgroupPids, cgroupProcsFile, ctxSwitches, hostCpuSeconds, median, perCpuSeconds } from './lib/measure.js';
import { arg, argStr, benchLog } from './lib/args.js';
import { SpliceClient } from './lib/splice-client.js';
import { NODE_BIN, entryArgv } from '../src/os/self.js';

const ROUNDS = arg('rounds', 2);
const DELIVER_MIB = arg('deliver-mib', 200);
const COMPRESS_MIB = arg('compress-mib', 100);
const ALONE_SECONDS = arg('alone-seconds', 8); // delivery alone: this long or ALONE_MAX downloads, whichever first
const ALONE_MAX = 40;
/** --configs: which of the five configurations run (all by default); a subset for a quick A/B of two rows. */
const CONFIG_KEYS = ['alone', 'compression', 'interference', 'module', 'socket'] as const;
const CONFIGS = argStr('configs', CONFIG_KEYS.join(',')).split(',').map((x) => x.trim()).filter(Boolean);
for (const k of CONFIGS) if (!(CONFIG_KEYS as readonly string[]).includes(k)) throw new Error(`--configs: a list of ${CONFIG_KEYS.join(', ')}`);
const CPUS = 0.5;
const PORT = 8080;
/** The in-guest example file server of the socket-offload configuration. */
const SOCKET_PORT = 8090;
const HOST_CPUS = Number(execFileSync('nproc').toString().trim());
/** split: the guest on CPU 0, the module engine on the others (the paper's setup); shared: nothing pinned. */
const PLACEMENT = argStr('placement', 'split');
if (PLACEMENT !== 'split' && PLACEMENT !== 'shared') throw new Error('--placement: split or shared');
const SPLIT = PLACEMENT === 'split' && HOST_CPUS >= 2;
const GUEST_CPUS = '0';
const MODULE_CPUS = HOST_CPUS > 2 ? `1-${HOST_CPUS - 1}` : '1';
/**
 * Where the client (--client, the stand-in for the paper's remote client machine) runs, the same in every scheme.
 * split: CPU 0, the guest's core, in the half of it the guest's 0.5-CPU quota leaves: the only capacity that is no
 * scheme's server's (the guest may never use it, the module engine and hylicsd are on the other CPUs), so the
 * client takes nothing the guest or the engine is entitled to in any scheme. On CPU 1 it would share the engine's
 * core in the offload schemes only (the in-guest server of the alone case never runs there). `none`: not pinned.
 */
const CLIENT_CPUS = argStr('client-cpu', SPLIT ? GUEST_CPUS : 'none');
if (CLIENT_CPUS !== 'none' && !/^\d+(-\d+)?$/.test(CLIENT_CPUS)) throw new Error('--client-cpu: a CPU list (taskset -c) or none');
/**
 * The measuring client. splice (bench/lib/splice-client.py): GET, status 200 and Content-Length checked, the body
 * moved socket -> pipe -> /dev/null by splice(2) and its length checked; one python3 per cell, start-up not billed.
 * curl: `curl -o /dev/null` per download (its receive copies every byte to user space and back into /dev/null).
 * Default splice: see docs/modules.md (hybrid section) for the measured client CPU per GB of each.
 */
const CLIENT = argStr('client', 'splice');
if (CLIENT !== 'splice' && CLIENT !== 'curl') throw new Error('--client: splice or curl');
/**
 * --daemon-cgroup own (default): hylicsd runs in a cpu cgroup of its own (cgroup v1 `cpu`, created and removed by
 * the bench), as a service manager runs it (hylicsd.service) and as the module engine runs (nginx is in the guest's
 * module cgroup). `session`: left where the bench started it, in the bench's session. Why: with the kernel's
 * autogroup scheduling (kernel.sched_autogroup_enabled=1, this host's default), a task of the root cgroup is
 * scheduled in its session's group, one CPU share for the whole session, while a task in another cgroup (the
 * module's nginx) is a group of its own; so on a CPU the bench shares with other work, the socket scheme's sender
 * thread (the addon's I/O thread in hylicsd) had to split one share with hylicsd's event loop and the bench itself,
 * and the module's nginx worker did not.
 */
const DAEMON_CGROUP = argStr('daemon-cgroup', 'own');
/** --module-engine auto|nginx|lighttpd: the daemon's module engine (default: the daemon's own default, auto). */
const MODULE_ENGINE = argStr('module-engine', '');
/** --socket-copy auto|repair: the daemon's socket-offload-copy (auto: the descriptor copy for this sandbox guest). */
const SOCKET_COPY = argStr('socket-copy', '');
if (SOCKET_COPY !== '' && SOCKET_COPY !== 'auto' && SOCKET_COPY !== 'repair') throw new Error('--socket-copy: auto or repair');
/**
 * --module-congctl NAME: a policy rule for the module's source address (the host end of the guest's link) selects a
 * table whose route to the client carries `congctl NAME` (docs/modules.md, "a per-route congctl"): the module's
 * sockets get NAME, every other socket the host's default. Rule and table are this run's, removed after it.
 */
const MODULE_CC = argStr('module-congctl', '');
if (MODULE_CC !== '' && !/^[a-z0-9_]+$/.test(MODULE_CC)) throw new Error('--module-congctl: a congestion control name');
const CC_TABLE = 21000 + (process.pid % 1000);
if (DAEMON_CGROUP !== 'own' && DAEMON_CGROUP !== 'session') throw new Error('--daemon-cgroup: own or session');
const CPU_CGROUP_V1 = '/sys/fs/cgroup/cpu';
/** Where hylicsd ran (the JSON's setup.daemonCgroup): the cgroup made for it, or the bench's session. */
let daemonCgroupUsed = 'session (autogroup of the bench)';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const log = benchLog('hybrid');

function run(
  cmd: string,
  args: string[],
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });
}

/** utime+stime (all threads) of a process, in seconds; 0 when it is gone. */
function procCpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime (14), stime (15)
  } catch { return 0; }
}

function procStatus(pid: string): { ppid: number; uid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { ppid: Number(/^PPid:\s+(\d+)/m.exec(s)?.[1]), uid: Number(/^Uid:\s+(\d+)/m.exec(s)?.[1]) };
  } catch { return undefined; }
}

/**
 * The module engine's process that serves (uid 65534, a descendant of the daemon): nginx's worker (daemon > unshare >
 * master > worker) or, under `module-engine: auto|lighttpd`, the module's own lighttpd (it drops to 65534 after its
 * chroot). Found by a scan of /proc: the daemon's engine report (ModuleManager.engineReport(): masterPid, each
 * module's pid) would name it, but no API of hylicsd exposes that report (module ls gives no pid), so a bench that
 * talks to hylicsd through the CLI cannot ask it.
 */
function findWorker(daemonPid: number): { pid: number; engine: 'nginx' | 'lighttpd' } | undefined {
  const descends = (pid: string): boolean => {
    for (let p = procStatus(pid), hops = 0; p && hops < 4; p = procStatus(String(p.ppid)), hops++)
      if (p.ppid === daemonPid) return true;
    return false;
  };
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const st = procStatus(p);
    if (!st || st.uid !== 65534) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const engine = cmd.startsWith('nginx: worker process') ? 'nginx' : readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'lighttpd' ? 'lighttpd' : undefined;
      if (engine && descends(p)) return { pid: Number(p), engine };
    } catch { /* gone */ }
  }
  return undefined;
}

/** Host pids of the processes named `comm` in the guest's cgroup (e.g. lighttpd). */
function findInCgroup(cgroup: string, comm: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== comm) continue;
      if (readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`/${cgroup}\n`)) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/** A figure for the console: '—' for one not measured (a configuration --configs left out). */
function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

/** Pin every thread of `pids` to `cpus` (taskset); processes they start later inherit it. */
function pin(pids: Array<number | string>, cpus: string): void {
  for (const p of pids) {
    try { execFileSync('taskset', ['-a', '-p', '-c', cpus, String(p)], { stdio: 'ignore' }); } catch { /* exited */ }
  }
}

/** The client's network namespace, routed through the host (set in main): every configuration is downloaded over
 *  the same path. (A client on the host itself is not used: see docs/offload-socket.md.) */
let clientNetns = '';
const clientPin = (): string[] => (CLIENT_CPUS === 'none' ? [] : ['taskset', '-c', CLIENT_CPUS]);
const curl = (args: string[], timeoutMs?: number): ReturnType<typeof run> =>
  run('ip', ['netns', 'exec', clientNetns, ...clientPin(), 'curl', ...args], timeoutMs);
/** curl and the CPU it used (the shell's `times`: its children's user + system seconds). */
async function timedCurl(
  args: string[],
  timeoutMs?: number,
): Promise<{ code: number; stdout: string; stderr: string; cpu: number }> {
  const r = await run('ip', ['netns', 'exec', clientNetns, ...clientPin(), 'sh', '-c', 'curl "$@"; s=$?; echo; times; exit $s', 'curl', ...args], timeoutMs);
  const lines = r.stdout.trimEnd().split('\n');
  const sec = (v: string): number => { const m = /^(\d+)m([\d.]+)s$/.exec(v); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; };
  const [u, sy] = (lines.at(-1) ?? '').trim().split(/\s+/);
  return { ...r, stdout: lines.slice(0, -2).join('\n'), cpu: sec(u ?? '') + sec(sy ?? '') };
}

interface Delivery {
  downloads: number; bytes: number; seconds: number; mbps: number;
  /** The client's user + system CPU over the downloads (curl: with its start-up; splice: without), and per GB. */
  clientCpuSeconds: number; clientCpuPerGB: number;
  /** splice client only: connect to the first body bytes per download (the server's request handling and, with
   *  socket offload, the handoff's set-up), median and max in ms; and the throughput over the body alone (first
   *  body bytes to last), MB/s. */
  firstByteMs?: { p50: number; max: number }; bodyMBps?: number;
}

/** One full download with curl: bytes, seconds (curl's time_total) and curl's CPU. */
async function curlDownload(url: string): Promise<{ bytes: number; seconds: number; cpuSeconds: number }> {
  const r = await timedCurl(['-sS', '--max-time', '60', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', url], 70_000);
  const [code, size, time] = r.stdout.trim().split(' ');
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${url}: exit ${r.code} http ${code} ${r.stderr.trim()}`);
  return { bytes: Number(size), seconds: Number(time), cpuSeconds: r.cpu };
}

/** Sequential downloads of `url` with the --client until `stop()` says so (checked between downloads; at least one). */
async function deliver(url: string, stop: (n: number, elapsedMs: number) => boolean): Promise<Delivery> {
  let bytes = 0; let seconds = 0; let n = 0; let cpu = 0; let body = 0;
  const firsts: number[] = [];
  const splice = CLIENT === 'splice' ? SpliceClient.start(['ip', 'netns', 'exec', clientNetns, ...clientPin()]) : undefined;
  try {
    const start = Date.now();
    do {
      const r = splice ? await splice.get(url) : await curlDownload(url);
      bytes += r.bytes; seconds += r.seconds; n++; cpu += r.cpuSeconds;
      const f = (r as { firstSeconds?: number }).firstSeconds;
      if (f !== undefined) { firsts.push(f * 1000); body += r.seconds - f; }
    } while (!stop(n, Date.now() - start));
  } finally { await splice?.close(); }
  return { downloads: n, bytes, seconds, mbps: bytes / seconds / 1e6, clientCpuSeconds: cpu,
    clientCpuPerGB: cpu / (bytes / 1e9),
    ...(firsts.length > 0
      ? { firstByteMs: { p50: median(firsts), max: Math.max(...firsts) }, bodyMBps: bytes / body / 1e6 }
      : {}) };
}

/** What `hylics module ls --json` says of the guest's module engine (src/host/modules guest-engine.ts EngineView). */
interface ModuleEngineView {
  kind?: 'nginx' | 'lighttpd'; setting: string; reason: string; switches: number; switchedAt?: string;
  traffic?: {
    requests: number; meanBytes: number; evidence: boolean; minRequests: number; waitSeconds: number; wants: string;
    settled: boolean;
  };
}
/** module-engine auto: how long the warm-up may wait for the guest's engine to settle (default evidence: 60 s). */
const SETTLE_MAX_MS = 240_000;
/** Warm-up downloads between two looks at the engine while the window lacks requests. */
const SETTLE_BATCH = 8;

interface Cell {
  round: number; config: string;
  /** module offload: the engine the cell measured, why, and the warm-up that let module-engine auto settle on it. */
  moduleEngine?: { kind?: string; reason: string; switches: number; warmupDownloads: number; warmupSeconds: number };
  delivery?: Delivery; compressSeconds?: number;
  serverCpuSeconds?: number; serverCpuPerGB?: number; guestCpuSeconds: number; wallSeconds: number;
  /** Context switches per second of all threads in the guest's cgroup. */
  guestCtxPerSec?: number;
  /** CPUs' worth of the whole host busy during the cell (of hostCpus): near hostCpus means the host was saturated. */
  hostCpusBusy?: number;
  /** Busy fraction of each CPU during the cell (index = CPU): which core limited the cell. */
  cpuBusy?: number[];
}


async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { process.stderr.write('bench/hybrid needs root (the daemon: namespaces, cgroups, nftables)\n'); process.exit(2); }
  for (const bin of ['lighttpd', 'pigz', 'curl', ...(CLIENT === 'splice' ? ['python3'] : [])]) execFileSync('which', [bin], { stdio: 'ignore' });

  const guest = `hyb${process.pid % 100000}`;
  const session = await benchSession('hylics-bench-hybrid-', log, {
    daemonArgs: [
      ...(MODULE_ENGINE ? ['--module-engine', MODULE_ENGINE] : []), ...(SOCKET_COPY ? ['--socket-offload-copy', SOCKET_COPY] : []),
    ],
  });
  const { cli, cleanup } = session;
  let lighttpd: Promise<unknown> | undefined;
  session.afterStop.push(async () => lighttpd);
  clientNetns = `hylics-hybw-${process.pid % 100000}`;
  const wHost = `hhyb${process.pid % 100000}`;
  session.afterStop.push(async () => {
    // the client namespace is this run's own: whatever still runs in it (a curl or splice client of a cell a signal
    // cut short) is ours, and would keep the namespace alive after its name is deleted
    const pids = (await run('ip', ['netns', 'pids', clientNetns])).stdout.split('\n').filter((l) => /^\d+$/.test(l.trim()));
    for (const pid of pids) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* exited */ }
    await run('ip', ['link', 'delete', wHost]);
    await run('ip', ['netns', 'delete', clientNetns]);
  });
  const gexec = (sh: string, timeoutMs = 120_000) => session.gexec(guest, sh, timeoutMs);

  try {
    await session.start();
    const daemonPid = session.daemon().pid!;
    if (DAEMON_CGROUP === 'own') {
      const dir = join(CPU_CGROUP_V1, `hylics-bench-hybrid-${process.pid}`);
      try {
        mkdirSync(dir);
        writeFileSync(join(dir, 'cgroup.procs'), String(daemonPid)); // the whole process (all its threads)
        // after the daemon stopped: whatever it left in there (its short-lived children) back to the root, then rmdir
        session.afterStop.push(async () => {
          try { for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) try { writeFileSync(join(CPU_CGROUP_V1, 'cgroup.procs'), p); } catch { /* exited */ } } catch { /* gone */ }
          try { rmdirSync(dir); } catch (e) { log(`could not remove ${dir}: ${(e as Error).message}`); }
        });
        daemonCgroupUsed = `own: ${dir} (cpu.shares 1024)`;
        log(`hylicsd in cpu cgroup ${dir} (--daemon-cgroup own)`);
      } catch (e) { log(`--daemon-cgroup own: no cgroup v1 cpu controller to use (${(e as Error).message}); hylicsd stays in the bench's session`); }
    }
    log(`creating sandbox guest ${guest} (--cpus ${CPUS}, share 512M, memory 1G)`);
    const g = await session.createGuest<{ address: string; share: { path: string }; driverInfo: { cgroup: string } }>(guest, ['--share-size', '512M', '--cpus', String(CPUS), '--memory', '1G']);
    const addr = g.address; const cgroup = g.driverInfo.cgroup;
    log(`client namespace ${clientNetns} (10.251.79.2, routed through the host)`);
    for (const c of [['netns', 'add', clientNetns], ['link', 'add', wHost, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNetns], ['addr', 'add', '10.251.79.1/30', 'dev', wHost],
      ['link', 'set', wHost, 'up'], ['-n', clientNetns, 'link', 'set', 'lo', 'up'], ['-n', clientNetns, 'addr', 'add', '10.251.79.2/30', 'dev', 'eth0'],
      ['-n', clientNetns, 'link', 'set', 'eth0', 'up'], ['-n', clientNetns, 'route', 'add', 'default', 'via', '10.251.79.1']]) {
      // a signal's cleanup deletes the namespace once: none may be made after it began
      if (session.closing()) throw new Error('interrupted: the bench is cleaning up');
      const r = await run('ip', c);
      if (r.code !== 0) throw new Error(`ip ${c.join(' ')}: ${r.stderr}`);
    }

    let congctlSeen = '';
    // the host end of the guest's link: the module's listen address (DNAT brings the client there)
    const hostAddr = addr.replace(/\.\d+$/, '.1');
    if (MODULE_CC) {
      if (!(await run('ip', ['-o', 'addr', 'show'])).stdout.includes(` ${hostAddr}/`)) throw new Error(`--module-congctl: no host address ${hostAddr}`);
      session.afterStop.push(async () => {
        await run('ip', ['rule', 'del', 'pref', String(CC_TABLE), 'from', hostAddr, 'lookup', String(CC_TABLE)]);
        await run('ip', ['route', 'flush', 'table', String(CC_TABLE)]);
      });
      for (const c of [['route', 'add', 'table', String(CC_TABLE), '10.251.79.0/30', 'dev', wHost, 'congctl', MODULE_CC],
        ['rule', 'add', 'pref', String(CC_TABLE), 'from', hostAddr, 'lookup', String(CC_TABLE)]]) {
        const r = await run('ip', c);
        if (r.code !== 0) throw new Error(`ip ${c.join(' ')}: ${r.stderr}`);
      }
      log(`module replies from ${hostAddr} take a route with congctl ${MODULE_CC}: ${(await run('ip', ['route', 'get', '10.251.79.2', 'from', hostAddr])).stdout.trim()}`);
    }

    log(`the guest writes ${DELIVER_MIB} MiB to deliver (random) and ${COMPRESS_MIB} MiB to compress (base64 text) into its share`);
    // both written by the guest itself (under its 0.5 CPU), so the share's pages are the guest's
    await gexec(`mkdir -p /mnt/hylics/www /mnt/hylics/work /mnt/hylics/run && head -c ${DELIVER_MIB}M /dev/urandom > /mnt/hylics/www/deliver.bin`
      + ` && head -c ${Math.round(COMPRESS_MIB * 3 / 4)}M /dev/urandom | base64 > /mnt/hylics/work/input.txt && ls -l /mnt/hylics/www /mnt/hylics/work`);
    const deliverBytes = DELIVER_MIB * 1024 * 1024;
    const compressBytes = Number((await gexec('stat -c %s /mnt/hylics/work/input.txt')).stdout.trim());
    const url = `http://${addr}:${PORT}/deliver.bin`;

    // ---- the in-guest server: lighttpd -D as a long-running guest exec (a guest exec's children die with it)
    // lighttpd's config, written into the share by the guest (outside www/, which the module serves) before each
    // start: the guest's tiered store moves a share file idle for 60 s to its disk tier (docs/tier.md), and a config
    // written once was gone by round 2 of a loaded run
    const writeLighttpdConf = () => gexec(`cat > /mnt/hylics/run/lighttpd.conf <<'EOF'
server.document-root = "/mnt/hylics/www"
server.port = ${PORT}
server.bind = "0.0.0.0"
server.pid-file = "/mnt/hylics/run/lighttpd.pid"
server.max-keep-alive-requests = 1000
server.network-backend = "sendfile"
mimetype.assign = ( ".bin" => "application/octet-stream" )
EOF`);
    const startLighttpd = async (): Promise<void> => {
      await writeLighttpdConf();
      lighttpd = cli(['guest', 'exec', guest, '--timeout', '900000', '--', 'lighttpd', '-D', '-f', '/mnt/hylics/run/lighttpd.conf'], 910_000).catch((e: Error) => { if (!session.closing()) log(`lighttpd ended: ${e.message.slice(0, 300)}`); });
      for (let i = 0; i < 100; i++) {
        const r = await curl(['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', '-r', '0-0', url]);
        if (r.stdout === '206') return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error('lighttpd in the guest did not answer');
    };
    const stopLighttpd = async (): Promise<void> => {
      await gexec('kill $(cat /mnt/hylics/run/lighttpd.pid)');
      await lighttpd; lighttpd = undefined;
    };
    const compress = async (): Promise<number> => {
      // timed inside the guest: no exec round trip in the figure
      const r = await gexec('s=$(date +%s.%N); pigz -p 2 -c /mnt/hylics/work/input.txt > /dev/null; e=$(date +%s.%N); echo "$s $e"', 300_000);
      const [s, e] = r.stdout.trim().split(/\s+/).map(Number);
      return e! - s!;
    };

    const procsFile = cgroupProcsFile(cgroup);
    // the guest's processes (its init and agent: everything it runs later is their child) on CPU 0
    if (SPLIT) {
      pin(cgroupPids(procsFile), GUEST_CPUS);
      pin([daemonPid], MODULE_CPUS); // hylicsd: the socket-offload scheme's engine, and the module engine's parent
      log(`placement: guest on CPU ${GUEST_CPUS}, module engine and hylicsd on CPU ${MODULE_CPUS}, client (${CLIENT}) on CPU ${CLIENT_CPUS}`);
    }
    const socketUrl = `http://${addr}:${SOCKET_PORT}/deliver.bin`;
    let socketServer = false;
    const startSocketServer = async (): Promise<void> => {
      if (socketServer) return;
      const cliCmd = [NODE_BIN, ...entryArgv('cli/main')].join(' ');
      await gexec(`setsid ${cliCmd} example file-server --root /mnt/hylics/www --port ${SOCKET_PORT} --offload socket > /mnt/hylics/run/file-server.log 2>&1 < /dev/null &`);
      for (let i = 0; ; i++) {
        const r = await curl(['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', '-r', '0-0', socketUrl]);
        if (r.stdout === '206') break;
        if (i > 150) throw new Error('the example file server in the guest did not answer');
        await new Promise((res) => setTimeout(res, 200));
      }
      socketServer = true;
    };
    const cells: Cell[] = [];
    let moduleId: string | undefined;
    let moduleEngine: 'nginx' | 'lighttpd' | undefined;
    const engineView = async (): Promise<ModuleEngineView | undefined> =>
      ((await cli(['module', 'ls', guest, '--json'])).json as Array<{ engine?: ModuleEngineView }>)[0]?.engine;
    /**
     * module-engine auto picks a guest's engine from its traffic (docs/modules.md): download the file until the
     * engine is the one that traffic settles on (engine.traffic.settled: enough evidence, no switch waiting), so
     * the measured downloads run on that engine and no switch cuts one of them. Warm-up downloads a switch cuts
     * are not counted. A fixed module-engine has nothing to settle.
     */
    type Settled = { view: ModuleEngineView | undefined; downloads: number; seconds: number };
    const settleEngine = async (): Promise<Settled> => {
      const t0 = Date.now();
      let downloads = 0;
      for (;;) {
        const e = await engineView();
        if (!e?.traffic || e.traffic.settled) return { view: e, downloads, seconds: (Date.now() - t0) / 1000 };
        if (Date.now() - t0 > SETTLE_MAX_MS) throw new Error(`the module engine did not settle in ${SETTLE_MAX_MS / 1000} s: ${JSON.stringify(e)}`);
        if (e.traffic.requests < e.traffic.minRequests) {
          try { downloads += (await deliver(url, (n) => n >= SETTLE_BATCH)).downloads; } catch (err) { log(`warm-up download: ${(err as Error).message}`); }
        } else await new Promise((res) => setTimeout(res, 1000)); // enough requests: until watched long enough
      }
    };
    type Config = { key: (typeof CONFIG_KEYS)[number]; name: string; runCell: (round: number) => Promise<Cell> };
    const allConfigs: Config[] = [
      { key: 'alone', name: 'delivery alone (in-guest lighttpd)', runCell: async (round) => {
        await startLighttpd();
        const [pid] = findInCgroup(cgroup, 'lighttpd');
        const c0 = pid ? procCpuSeconds(pid) : NaN; const g0 = cgroupCpuSeconds(cgroup); const w0 = Date.now();
        const d = await deliver(url, (n, ms) => n >= ALONE_MAX || ms >= ALONE_SECONDS * 1000);
        const cpu = pid ? procCpuSeconds(pid) - c0 : NaN;
        const cell: Cell = { round, config: 'alone', delivery: d, serverCpuSeconds: cpu, serverCpuPerGB: cpu / (d.bytes / 1e9), guestCpuSeconds: cgroupCpuSeconds(cgroup) - g0, wallSeconds: (Date.now() - w0) / 1000 };
        await stopLighttpd();
        return cell;
      } },
      { key: 'compression', name: 'compression alone (pigz -p 2 in the guest)', runCell: async (round) => {
        const g0 = cgroupCpuSeconds(cgroup); const w0 = Date.now();
        const s = await compress();
        return { round, config: 'compression alone', compressSeconds: s, guestCpuSeconds: cgroupCpuSeconds(cgroup) - g0, wallSeconds: (Date.now() - w0) / 1000 };
      } },
      { key: 'interference', name: 'interference (pigz + lighttpd in the guest)', runCell: async (round) => {
        await startLighttpd();
        const [pid] = findInCgroup(cgroup, 'lighttpd');
        const c0 = pid ? procCpuSeconds(pid) : NaN; const g0 = cgroupCpuSeconds(cgroup); const w0 = Date.now();
        let done = false;
        const comp = compress().finally(() => { done = true; });
        const d = await deliver(url, () => done);
        const s = await comp;
        const cpu = pid ? procCpuSeconds(pid) - c0 : NaN;
        const cell: Cell = { round, config: 'interference', delivery: d, compressSeconds: s, serverCpuSeconds: cpu, serverCpuPerGB: cpu / (d.bytes / 1e9), guestCpuSeconds: cgroupCpuSeconds(cgroup) - g0, wallSeconds: (Date.now() - w0) / 1000 };
        await stopLighttpd();
        return cell;
      } },
      { key: 'module', name: 'module offload (pigz in the guest, host http module delivers)', runCell: async (round) => {
        const m = (await cli(['module', 'start', guest, '--kind', 'http', '--root', 'www', '--port', String(PORT), '--json'])).json as { id: string };
        moduleId = m.id;
        const settled = await settleEngine();
        if (settled.downloads > 0) log(`module engine settled on ${settled.view?.kind} after ${settled.downloads} warm-up downloads, ${settled.seconds.toFixed(0)} s: ${settled.view?.reason}`);
        // the engine the module start or a switch started may still be coming up: a few seconds for its process
        let w = findWorker(daemonPid);
        for (let i = 0; !w && i < 50; i++) {
          await new Promise((res) => setTimeout(res, 200));
          w = findWorker(daemonPid);
        }
        if (!w) throw new Error('module engine process not found (nginx worker or lighttpd, uid 65534, below the daemon)');
        const pid = w.pid;
        moduleEngine = w.engine;
        // nginx: worker and master; lighttpd: its one process per module
        if (SPLIT) pin(w.engine === 'nginx' ? [pid, procStatus(String(pid))!.ppid] : [pid], MODULE_CPUS);
        // warm-up range requests so the worker's start-up CPU is not billed to delivery; until a 206, since a file
        // the guest's tier moved to its disk tier is a 404 until the agent moves it back (docs/modules.md)
        for (let i = 0; i < 50 && (await curl(['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', '-r', '0-0', url])).stdout !== '206'; i++) {
          await new Promise((res) => setTimeout(res, 200));
        }
        const c0 = procCpuSeconds(pid); const g0 = cgroupCpuSeconds(cgroup); const w0 = Date.now();
        let done = false;
        const comp = compress().finally(() => { done = true; });
        if (MODULE_CC && !congctlSeen) {
          // the congestion control of the module's sockets while the first downloads run (polled: ss in the host's
          // namespace, the connection from the module's address)
          const check = (tries: number): void => {
            const out = execFileSync('ss', ['-tinH', 'src', hostAddr]).toString();
            congctlSeen = /\b(reno|cubic|bbr|bbr2|dctcp|htcp|vegas|westwood)\b/.exec(out)?.[1] ?? '';
            if (congctlSeen) log(`the module's connection runs congestion control ${congctlSeen}`);
            else if (tries > 0) setTimeout(() => check(tries - 1), 100);
          };
          setTimeout(() => check(50), 100);
        }
        const d = await deliver(url, () => done);
        const s = await comp;
        const cpu = procCpuSeconds(pid) - c0;
        const after = await engineView();
        if (after && settled.view && after.switches !== settled.view.switches) throw new Error(`the module engine switched during the measured downloads: ${JSON.stringify(after)}`);
        const cell: Cell = { round, config: 'module offload', delivery: d, compressSeconds: s, serverCpuSeconds: cpu, serverCpuPerGB: cpu / (d.bytes / 1e9), guestCpuSeconds: cgroupCpuSeconds(cgroup) - g0, wallSeconds: (Date.now() - w0) / 1000,
          moduleEngine: { kind: w.engine, reason: after?.reason ?? '', switches: after?.switches ?? 0, warmupDownloads: settled.downloads, warmupSeconds: settled.seconds } };
        await cli(['module', 'stop', guest, m.id]); moduleId = undefined;
        return cell;
      } },
      { key: 'socket', name: 'socket offload (pigz in the guest, its file server hands each send to the host)', runCell: async (round) => {
        await startSocketServer();
        const c0 = procCpuSeconds(daemonPid); const g0 = cgroupCpuSeconds(cgroup); const w0 = Date.now();
        let done = false;
        const comp = compress().finally(() => { done = true; });
        const d = await deliver(socketUrl, () => done);
        const s = await comp;
        const cpu = procCpuSeconds(daemonPid) - c0;
        return { round, config: 'socket offload', delivery: d, compressSeconds: s, serverCpuSeconds: cpu, serverCpuPerGB: cpu / (d.bytes / 1e9), guestCpuSeconds: cgroupCpuSeconds(cgroup) - g0, wallSeconds: (Date.now() - w0) / 1000 };
      } },
    ];

    const configs = allConfigs.filter((c) => CONFIGS.includes(c.key));
    for (let round = 0; round < ROUNDS; round++) {
      // rotate the order each round so slow drifts of this shared host do not favour one configuration
      for (let k = 0; k < configs.length; k++) {
        const c = configs[(k + round) % configs.length]!;
        log(`round ${round + 1}/${ROUNDS}: ${c.name} ...`);
        const x0 = ctxSwitches(procsFile); const t0 = Date.now();
        const h0 = hostCpuSeconds(); const p0 = perCpuSeconds();
        const cell = await c.runCell(round);
        const h1 = hostCpuSeconds(); const p1 = perCpuSeconds();
        cell.cpuBusy = p1.map((b, i) => (b.busy - p0[i]!.busy) / (b.total - p0[i]!.total));
        cell.guestCtxPerSec = (ctxSwitches(procsFile) - x0) / ((Date.now() - t0) / 1000);
        cell.hostCpusBusy = ((h1.busy - h0.busy) / (h1.total - h0.total)) * HOST_CPUS;
        cells.push(cell);
        const parts = [
          cell.delivery ? `delivery ${cell.delivery.mbps.toFixed(0)} MB/s (${cell.delivery.downloads} x ${DELIVER_MIB} MiB)` : '',
          cell.compressSeconds !== undefined ? `compression ${cell.compressSeconds.toFixed(2)} s` : '',
          cell.serverCpuPerGB !== undefined ? `server CPU ${cell.serverCpuPerGB.toFixed(3)} s/GB` : '',
          `guest CPU ${cell.guestCpuSeconds.toFixed(1)} s in ${cell.wallSeconds.toFixed(1)} s, ${cell.guestCtxPerSec?.toFixed(0)} guest ctx/s`,
          `host ${cell.hostCpusBusy?.toFixed(2)} of ${HOST_CPUS} CPUs busy (${cell.cpuBusy?.map((b, i) => `cpu${i} ${b.toFixed(2)}`).join(' ')})`,
          cell.delivery ? `client ${cell.delivery.clientCpuPerGB.toFixed(3)} CPU s/GB` : '',
          cell.delivery?.firstByteMs ? `first body byte p50 ${cell.delivery.firstByteMs.p50.toFixed(1)} ms (max ${cell.delivery.firstByteMs.max.toFixed(0)}), body alone ${cell.delivery.bodyMBps!.toFixed(0)} MB/s` : '',
        ].filter(Boolean);
        log(`  ${parts.join(', ')}`);
      }
    }
    void moduleId;

    // a configuration --configs left out (or a figure none of its cells has) is null: '—' on the console, null in
    // the JSON, no bar in the plot (never NaN)
    const of = (config: string, f: (c: Cell) => number | undefined): number | null => {
      const xs = cells.filter((c) => c.config === config).map(f)
        .filter((v): v is number => v !== undefined && Number.isFinite(v));
      return xs.length > 0 ? median(xs) : null;
    };
    const ratio = (a: number | null, b: number | null): number | null =>
      (a === null || b === null || !Number.isFinite(a / b) ? null : a / b);
    const summary = {
      deliveryMBps: { alone: of('alone', (c) => c.delivery?.mbps), interference: of('interference', (c) => c.delivery?.mbps), moduleOffload: of('module offload', (c) => c.delivery?.mbps), socketOffload: of('socket offload', (c) => c.delivery?.mbps) },
      /** splice client: connect to the first body bytes (ms, median of the cells' medians) and the rate over the
       *  bodies alone: what the per-download set-up costs against the send itself. */
      firstByteMs: { alone: of('alone', (c) => c.delivery?.firstByteMs?.p50), interference: of('interference', (c) => c.delivery?.firstByteMs?.p50), moduleOffload: of('module offload', (c) => c.delivery?.firstByteMs?.p50), socketOffload: of('socket offload', (c) => c.delivery?.firstByteMs?.p50) },
      bodyMBps: { alone: of('alone', (c) => c.delivery?.bodyMBps), interference: of('interference', (c) => c.delivery?.bodyMBps), moduleOffload: of('module offload', (c) => c.delivery?.bodyMBps), socketOffload: of('socket offload', (c) => c.delivery?.bodyMBps) },
      compressionSeconds: { alone: of('compression alone', (c) => c.compressSeconds), interference: of('interference', (c) => c.compressSeconds), moduleOffload: of('module offload', (c) => c.compressSeconds), socketOffload: of('socket offload', (c) => c.compressSeconds) },
      serverCpuSecondsPerGB: { lighttpdInGuestAlone: of('alone', (c) => c.serverCpuPerGB), lighttpdInGuestInterference: of('interference', (c) => c.serverCpuPerGB), moduleWorkerOnHost: of('module offload', (c) => c.serverCpuPerGB), hylicsdSocketOffload: of('socket offload', (c) => c.serverCpuPerGB) },
      hostCpusBusy: { deliveryAlone: of('alone', (c) => c.hostCpusBusy), interference: of('interference', (c) => c.hostCpusBusy), moduleOffload: of('module offload', (c) => c.hostCpusBusy), socketOffload: of('socket offload', (c) => c.hostCpusBusy), compressionAlone: of('compression alone', (c) => c.hostCpusBusy) },
      clientCpuSecondsPerGB: { alone: of('alone', (c) => c.delivery?.clientCpuPerGB), interference: of('interference', (c) => c.delivery?.clientCpuPerGB), moduleOffload: of('module offload', (c) => c.delivery?.clientCpuPerGB), socketOffload: of('socket offload', (c) => c.delivery?.clientCpuPerGB) },
      cpuBusy: Object.fromEntries(['alone', 'compression alone', 'interference', 'module offload', 'socket offload'].map((k) =>
        [k, Array.from({ length: HOST_CPUS }, (_, i) => of(k, (c) => c.cpuBusy?.[i]))])),
      guestCtxPerSec: { deliveryAlone: of('alone', (c) => c.guestCtxPerSec), interference: of('interference', (c) => c.guestCtxPerSec), moduleOffload: of('module offload', (c) => c.guestCtxPerSec), socketOffload: of('socket offload', (c) => c.guestCtxPerSec), compressionAlone: of('compression alone', (c) => c.guestCtxPerSec) },
    };
    const ratios = {
      deliveryInterferenceVsAlone: ratio(summary.deliveryMBps.interference, summary.deliveryMBps.alone),
      deliveryModuleVsAlone: ratio(summary.deliveryMBps.moduleOffload, summary.deliveryMBps.alone),
      compressionInterferenceVsAlone: ratio(summary.compressionSeconds.interference, summary.compressionSeconds.alone),
      compressionModuleVsAlone: ratio(summary.compressionSeconds.moduleOffload, summary.compressionSeconds.alone),
      deliverySocketVsAlone: ratio(summary.deliveryMBps.socketOffload, summary.deliveryMBps.alone),
      compressionSocketVsAlone: ratio(summary.compressionSeconds.socketOffload, summary.compressionSeconds.alone),
      /** The issue's goal: socket offload delivers at >= 0.9x of module offload. */
      deliverySocketVsModule: ratio(summary.deliveryMBps.socketOffload, summary.deliveryMBps.moduleOffload),
    };
    const f = fmt;
    log(`delivery (median): alone ${f(summary.deliveryMBps.alone, 0)} MB/s, interference ${f(summary.deliveryMBps.interference, 0)} MB/s (${f(ratios.deliveryInterferenceVsAlone, 2)}x), module offload ${f(summary.deliveryMBps.moduleOffload, 0)} MB/s (${f(ratios.deliveryModuleVsAlone, 2)}x)`);
    log(`compression (median): alone ${f(summary.compressionSeconds.alone, 2)} s, interference ${f(summary.compressionSeconds.interference, 2)} s (${f(ratios.compressionInterferenceVsAlone, 2)}x), module offload ${f(summary.compressionSeconds.moduleOffload, 2)} s (${f(ratios.compressionModuleVsAlone, 2)}x)`);
    const socketGoal = ratios.deliverySocketVsModule === null ? '—' : ratios.deliverySocketVsModule >= 0.9 ? 'met' : 'NOT met';
    log(`socket offload: delivery ${f(summary.deliveryMBps.socketOffload, 0)} MB/s (${f(ratios.deliverySocketVsModule, 2)}x module offload; goal >= 0.9x: ${socketGoal}), compression ${f(summary.compressionSeconds.socketOffload, 2)} s (${f(ratios.compressionSocketVsAlone, 2)}x alone), hylicsd ${f(summary.serverCpuSecondsPerGB.hylicsdSocketOffload, 3)} CPU s/GB`);
    log(`guest context switches/s: lighttpd alone ${f(summary.guestCtxPerSec.deliveryAlone, 0)}, interference ${f(summary.guestCtxPerSec.interference, 0)}, socket offload ${f(summary.guestCtxPerSec.socketOffload, 0)}, module offload ${f(summary.guestCtxPerSec.moduleOffload, 0)} (pigz alone ${f(summary.guestCtxPerSec.compressionAlone, 0)})`);
    log(`server CPU per GB delivered: module worker (host) ${f(summary.serverCpuSecondsPerGB.moduleWorkerOnHost, 3)} s/GB, lighttpd in the guest ${f(summary.serverCpuSecondsPerGB.lighttpdInGuestAlone, 3)} s/GB alone / ${f(summary.serverCpuSecondsPerGB.lighttpdInGuestInterference, 3)} s/GB beside pigz`);

    if (CLIENT === 'splice') log(`first body byte p50 (ms) / body-only rate (MB/s): module offload ${f(summary.firstByteMs.moduleOffload, 1)} / ${f(summary.bodyMBps.moduleOffload, 0)}, socket offload ${f(summary.firstByteMs.socketOffload, 1)} / ${f(summary.bodyMBps.socketOffload, 0)}`);
    const cc = summary.clientCpuSecondsPerGB;
    log(`client (${CLIENT} on CPU ${CLIENT_CPUS}) CPU per GB: alone ${f(cc.alone, 3)}, interference ${f(cc.interference, 3)}, module offload ${f(cc.moduleOffload, 3)}, socket offload ${f(cc.socketOffload, 3)} s/GB`);

    const outDir = RESULTS_DIR;
    mkdirSync(outDir, { recursive: true });
    const result = {
      bench: 'hybrid', date: new Date().toISOString(), command: `npx tsx bench/hybrid.ts ${process.argv.slice(2).join(' ')}`.trim(),
      setup: {
        guest: { driver: 'sandbox', cpus: CPUS, memory: '1G', share: '512M (tmpfs)' },
        deliverFile: { bytes: deliverBytes, content: 'random' }, compressFile: { bytes: compressBytes, content: 'base64 of random bytes' },
        inGuestServer: 'lighttpd -D (network-backend sendfile) started with hylics guest exec, port 8080',
        moduleServer: `hylics module start --kind http --root www --port 8080 (the guest's module engine on the host, uid 65534, sendfile): ${moduleEngine ?? 'not run'}`,
        socketServer: `hylics example file-server --root /mnt/hylics/www --port ${SOCKET_PORT} --offload socket in the guest (its HTTP; each body sent by hylicsd after a TCP_REPAIR handoff); server CPU = hylicsd's`,
        guestCtx: 'voluntary + involuntary context switches of all threads of the guest cgroup\'s processes (/proc/PID/task/TID/status) over the cell',
        compression: 'pigz -p 2 -c input.txt > /dev/null in the guest, timed in the guest',
        client: `${CLIENT === 'splice' ? 'bench/lib/splice-client.py (HTTP/1.1 GET, 200 + Content-Length checked, body spliced socket -> pipe -> /dev/null, length checked)' : 'curl -o /dev/null'}`
          + ' in a client network namespace routed through the host, sequential full downloads of the file from the guest address; alone: '
          + `${ALONE_SECONDS} s or ${ALONE_MAX} downloads; with compression: until pigz ends (the download in flight then completes and counts)`,
        placement: SPLIT
          ? `split (as the paper's Fig. 19/20 setup: the VM's vCPUs are its own): the guest's processes pinned to CPU ${GUEST_CPUS} (quota ${CPUS} CPU), the module engine (nginx master + worker, or the module's lighttpd) and hylicsd to CPU ${MODULE_CPUS}; client (${CLIENT}) on CPU ${CLIENT_CPUS} in every scheme`
          : `shared: nothing pinned (the guest's pigz threads and the module engine share every host core); client on CPU ${CLIENT_CPUS}`,
        clientCpus: CLIENT_CPUS, clientProgram: CLIENT, daemonCgroup: daemonCgroupUsed,
        socketCopy: SOCKET_COPY || 'the daemon default (auto: the descriptor copy)',
        moduleCongctl: MODULE_CC ? `${MODULE_CC} (route; seen on the module's socket: ${congctlSeen || 'not checked'})` : `host default (${readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim()})`,
        hostCpusBusy: 'CPUs\' worth of the whole host busy during the cell (/proc/stat: all but idle and iowait)',
        rounds: ROUNDS, hostCpus: HOST_CPUS, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
      },
      summary, ratios, cells,
    };
    writeFileSync(join(outDir, 'hybrid.json'), JSON.stringify(result, null, 2) + '\n');
    // a group only when its reference (alone) ran, a bar only for a configuration that ran
    const group = (name: string, alone: number | null, r: Array<[string, number | null]>): BarPoint[] =>
      (alone === null ? [] : [['(1)/(2) alone', 1] as [string, number | null], ...r]
        .filter((x): x is [string, number] => x[1] !== null).map(([bar, value]) => ({ group: name, bar, value })));
    const bars: BarPoint[] = [
      ...group('delivery throughput', summary.deliveryMBps.alone, [['(3) interference', ratios.deliveryInterferenceVsAlone],
        ['(4) module offload', ratios.deliveryModuleVsAlone], ['(5) socket offload', ratios.deliverySocketVsAlone]]),
      ...group('compression time', summary.compressionSeconds.alone, [['(3) interference', ratios.compressionInterferenceVsAlone],
        ['(4) module offload', ratios.compressionModuleVsAlone], ['(5) socket offload', ratios.compressionSocketVsAlone]]),
    ];
    const spec = groupedBarChart(`Compression + delivery in a ${CPUS}-CPU sandbox guest (relative to alone; delivery alone `
      + `${f(summary.deliveryMBps.alone, 0)} MB/s, compression alone ${f(summary.compressionSeconds.alone, 1)} s)`, bars, 'relative to alone (x)');
    (spec as { width?: unknown }).width = { step: 40 };
    writeFileSync(join(outDir, 'hybrid.svg'), await renderSvg(spec as VegaLiteSpec));
    log(`wrote ${join(outDir, 'hybrid.json')} and hybrid.svg`);
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/hybrid failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
