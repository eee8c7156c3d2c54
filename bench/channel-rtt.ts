// bench/channel-rtt: control-channel round-trip latency (p50/p99) and messages per second over a Unix socket,
// side by side in one run. The serving end runs in a separate process (this script with --serve), like the
// agent does, so every figure crosses a real process boundary:
//   raw socket echo   - the same bytes with no protocol (the floor)
//   ping              - framing + JSON, no schema, no handler
//   request (small)   - op with schema checks on both ends and a handler (the path every control op takes)
//   request (4 KiB)   - the same with a 4 KiB string payload
//   agent health      - the real guest agent process answering `health` through ChannelServer
// Throughput: requests with 1 / 16 / 64 in flight. Ratios are against the raw socket.
// CPU per round trip (both processes' user+system CPU over sequential round trips) of the socket-offload op as
// hylicsd's direct offload socket serves it (ChannelServer, multi, its handler table the allow-list, budget meter
// on): `offload.socket.handoff` with a realistic TcpState, the reply carrying a state whose send queue holds
// --queue-kib KiB (the host hands back with up to 64 KiB unacknowledged).
//   npx tsx bench/channel-rtt.ts [--samples 5000] [--seconds 2] [--queue-kib 0,64]
//   npx tsx bench/channel-rtt.ts --cpu-only [--samples 5000]   (only the CPU-per-round-trip figures, JSON on stdout)
// Writes bench/results/channel-rtt.{json,svg} (not with --cpu-only).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { renderSvg, groupedBarChart, type BarPoint, type VegaLiteSpec } from '../src/core/plot.js';
import { OPS, defineOp } from '../src/core/protocol/index.js';
import '../src/core/protocol/ops/offload.js';
import type { OffloadHandoffParamsT, OffloadHandoffResultT, TcpStateT } from '../src/core/protocol/ops/offload.js';
import { ChannelPeer, connectUnix, listenUnix } from '../src/os/channel/index.js';
import { ChannelServer } from '../src/host/channel/index.js';
import { entryArgv, NODE_BIN } from '../src/os/self.js';
import { resultPath } from './lib/results.js';
import { pct } from './lib/measure.js';

const argOf = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SAMPLES = Number(argOf('samples', '5000'));
const SECONDS = Number(argOf('seconds', '2'));
const QUEUE_KIB = argOf('queue-kib', '0,64').split(',').map(Number);
const say = (m: string): void => { process.stderr.write(`[channel-rtt] ${m}\n`); };
if (process.argv.includes('--help')) {
  process.stdout.write('channel-rtt [--samples N] [--seconds S] [--queue-kib 0,64] [--cpu-only]\n' +
    '  latency/throughput of the control channel over a Unix socket, and CPU per offload.socket.handoff round trip\n');
  process.exit(0);
}

OPS.register(defineOp({ name: 'bench.echo', server: 'host', params: Type.Object({ s: Type.String() }), result: Type.Object({ s: Type.String() }), doc: 'benchmark echo' }));
OPS.register(defineOp({ name: 'bench.cpu', server: 'host', params: Type.Object({}), result: Type.Object({ cpuMs: Type.Number() }), doc: 'benchmark: the serving process\'s CPU time so far' }));
OPS.register(defineOp({ name: 'bench.queue', server: 'host', params: Type.Object({ kib: Type.Integer({ minimum: 0, maximum: 256 }) }), result: Type.Object({}), doc: 'benchmark: send-queue size of the handoff replies' }));

const cpuMsNow = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** A TcpState as the guest library sends it (a quiesced socket: empty queues) or the host hands back. */
function tcpState(sendQueueBytes: number): TcpStateT {
  return {
    localAddr: '10.200.3.2', localPort: 8080, remoteAddr: '10.200.0.1', remotePort: 51234,
    sendSeq: 3_000_000_000, recvSeq: 123_456_789,
    sendQueue: Buffer.alloc(sendQueueBytes, 0x5a).toString('base64'), unsentBytes: 0, recvQueue: '',
    mss: 65483, timestamp: 987_654_321, options: 7, sndWscale: 7, rcvWscale: 7,
    window: { sndWl1: 123_456_789, sndWnd: 3_145_728, maxWindow: 3_145_728, rcvWnd: 65_536, rcvWup: 123_456_789 },
  };
}
const HANDOFF_PARAMS: OffloadHandoffParamsT = {
  localAddr: '10.200.3.2', localPort: 8080, remoteAddr: '10.200.0.1', remotePort: 51234,
  path: 'files/1m.bin', offset: 0, count: 1_048_576, mode: 'return', state: tcpState(0),
  holdUntilRelease: true, autoRelease: true,
};

// ---- serving process ----
if (process.argv.includes('--serve')) {
  const dir = argOf('serve', '');
  const raw = createServer((s: Socket) => s.pipe(s));
  raw.listen(join(dir, 'raw.sock'));
  await listenUnix(join(dir, 'rpc.sock'), (s) => {
    s.on('error', () => {});
    new ChannelPeer(s, { role: 'host', handlers: { 'bench.echo': (p: { s: string }) => p }, maxInFlight: 256 });
  });
  // hylicsd's direct offload socket: multi, only the handled ops allowed, the budget meter on (no limits: a bench
  // must not be throttled, the metering work is the same)
  const direct = new ChannelServer({ multi: true, allowHandledOnly: true, budget: false });
  let reply: OffloadHandoffResultT = { handoff: 'h-1', count: 1_048_576, bytes: 1_048_575, outcome: 'returned', state: tcpState(0) };
  let n = 0;
  direct.handle('offload.socket.handoff', (_g: string, p: OffloadHandoffParamsT) => ({ ...reply, handoff: `h-${++n}`, count: p.count ?? 0 }));
  direct.handle('bench.cpu', () => ({ cpuMs: cpuMsNow() }));
  direct.handle('bench.queue', (_g: string, p: { kib: number }) => {
    reply = { ...reply, state: tcpState(p.kib * 1024) };
    return {};
  });
  await direct.addGuest('bench', { mode: 'listen', path: join(dir, 'offload.sock') });
  process.stdout.write('ready\n');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else if (process.argv.includes('--cpu-only')) {
  await cpuOnly();
} else {
  await main();
}

interface CpuPerRtt {
  config: string; queueKiB: number; inFlight: number; roundTrips: number;
  clientUs: number; serverUs: number; wallUs: number;
}

/** CPU of both processes per offload.socket.handoff round trip on the direct offload socket. */
async function measureHandoffCpu(dir: string): Promise<CpuPerRtt[]> {
  const peer = new ChannelPeer(await connectUnix(join(dir, 'offload.sock')), { role: 'guest', maxPending: 4096 });
  await peer.ready;
  const once = (): Promise<unknown> => peer.request('offload.socket.handoff', HANDOFF_PARAMS, { timeoutMs: 30_000 });
  const out: CpuPerRtt[] = [];
  try {
    for (const kib of QUEUE_KIB) {
      await peer.request('bench.queue', { kib });
      for (const inFlight of [1, 16]) {
        for (let i = 0; i < Math.max(500, SAMPLES / 5); i++) await once(); // warm-up: let TurboFan compile the path
        const s0 = ((await peer.request('bench.cpu', {})) as { cpuMs: number }).cpuMs;
        const c0 = cpuMsNow();
        const t0 = performance.now();
        let left = SAMPLES;
        await Promise.all(Array.from({ length: inFlight }, async () => { while (left-- > 0) await once(); }));
        const wall = performance.now() - t0;
        const c1 = cpuMsNow();
        const s1 = ((await peer.request('bench.cpu', {})) as { cpuMs: number }).cpuMs;
        const r: CpuPerRtt = {
          config: 'offload.socket.handoff (direct socket)', queueKiB: kib, inFlight, roundTrips: SAMPLES,
          clientUs: +(((c1 - c0) * 1000) / SAMPLES).toFixed(1),
          serverUs: +(((s1 - s0) * 1000) / SAMPLES).toFixed(1),
          wallUs: +((wall * 1000) / SAMPLES).toFixed(1),
        };
        say(`handoff, reply queue ${kib} KiB, ${inFlight} in flight: CPU per round trip client ${r.clientUs} us, server ${r.serverUs} us (wall ${r.wallUs} us)`);
        out.push(r);
      }
    }
  } finally {
    peer.close();
  }
  return out;
}

async function withServer<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `hylics-bench-rtt-${process.pid}-`));
  // CHANNEL_RTT_SERVE_NODE_ARGS: extra node flags for the serving process (e.g. --cpu-prof)
  const extra = (process.env.CHANNEL_RTT_SERVE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const srv = spawn(NODE_BIN, [...extra, ...entryArgv('../bench/channel-rtt'), '--serve', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((r) => srv.stdout!.once('data', () => r()));
    return await fn(dir);
  } finally {
    srv.stdin!.end(); // the server exits at the end of its stdin (and writes its profile, if any)
    await new Promise<void>((r) => { if (srv.exitCode !== null) r(); else srv.once('exit', () => r()); setTimeout(r, 5000).unref(); });
    srv.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cpuOnly(): Promise<void> {
  const cpu = await withServer(measureHandoffCpu);
  console.log(JSON.stringify({ samples: SAMPLES, cpuPerRoundTrip: cpu }, null, 2));
}

interface Latency { config: string; p50Us: number; p99Us: number; meanUs: number; samples: number }
interface Throughput { config: string; inFlight: number; msgsPerSec: number }

async function measureRtt(config: string, once: () => Promise<unknown>): Promise<Latency> {
  for (let i = 0; i < Math.min(500, SAMPLES / 10); i++) await once(); // warm-up (JIT, buffers)
  const xs: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    xs.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  xs.sort((a, b) => a - b);
  const r = {
    config,
    p50Us: pct(xs, 0.5),
    p99Us: pct(xs, 0.99),
    meanUs: xs.reduce((a, b) => a + b, 0) / xs.length,
    samples: xs.length,
  };
  say(`${config}: p50 ${r.p50Us.toFixed(1)} us, p99 ${r.p99Us.toFixed(1)} us`);
  return r;
}

async function measureThroughput(config: string, inFlight: number, once: () => Promise<unknown>): Promise<Throughput> {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < end) { await once(); n++; }
  }));
  const r = { config, inFlight, msgsPerSec: Math.round(n / ((performance.now() - t0) / 1000)) };
  say(`${config} x${inFlight}: ${r.msgsPerSec} msgs/s`);
  return r;
}

/** One outstanding echo at a time over a plain socket: write n bytes, wait for n bytes back. */
function rawEcho(s: Socket, size: number): () => Promise<void> {
  const buf = Buffer.alloc(size, 0x61);
  let want = 0;
  let done: (() => void) | undefined;
  s.on('data', (c: Buffer) => { want -= c.length; if (want <= 0 && done) { const d = done; done = undefined; d(); } });
  return () => new Promise<void>((r) => { want = size; done = r; s.write(buf); });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `hylics-bench-rtt-${process.pid}-`));
  const children: ChildProcess[] = [];
  const server = new ChannelServer();
  try {
    const srv = spawn(NODE_BIN, [...entryArgv('../bench/channel-rtt'), '--serve', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(srv);
    await new Promise<void>((r) => srv.stdout!.once('data', () => r()));
    const rawSock = await connectUnix(join(dir, 'raw.sock'));
    const peer = new ChannelPeer(await connectUnix(join(dir, 'rpc.sock')), { role: 'guest', maxPending: 4096 });
    await peer.ready;
    const small = { s: 'hello' };
    const big = { s: 'x'.repeat(4096) };
    // the request frame of the small echo is about this big: the raw baseline sends the same number of bytes
    const smallFrameBytes = 10 + JSON.stringify({ op: 'bench.echo', params: small, deadlineMs: 30000 }).length;

    // the real agent, as a sandbox guest would run it (no namespaces: only the channel is measured)
    const chan = join(dir, 'channel.sock');
    await server.addGuest('bench', { mode: 'listen', path: chan });
    const agent = spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', 'bench', '--channel-unix', chan, '--app-socket', 'none', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(agent);
    await server.waitConnected('bench', 30_000);

    say(`${SAMPLES} sequential round trips per configuration, ${SECONDS} s per throughput point, ${cpus().length} CPUs`);
    const lat: Latency[] = [];
    lat.push(await measureRtt('raw socket echo', rawEcho(rawSock, smallFrameBytes)));
    lat.push(await measureRtt('ping', () => peer.ping()));
    lat.push(await measureRtt('request (small)', () => peer.request('bench.echo', small)));
    lat.push(await measureRtt('request (4 KiB)', () => peer.request('bench.echo', big)));
    lat.push(await measureRtt('agent health', () => server.request('bench', 'health', {})));

    const cpu = await measureHandoffCpu(dir);

    const thr: Throughput[] = [];
    for (const k of [1, 16, 64]) thr.push(await measureThroughput('request (small)', k, () => peer.request('bench.echo', small)));
    for (const k of [1, 16, 64]) thr.push(await measureThroughput('agent health', k, () => server.request('bench', 'health', {})));

    const base = lat[0]!;
    const ratios = Object.fromEntries(
      lat.map((l) => [
        l.config,
        { p50VsRaw: +(l.p50Us / base.p50Us).toFixed(2), p99VsRaw: +(l.p99Us / base.p99Us).toFixed(2) },
      ]),
    );
    const pipelining = Object.fromEntries(['request (small)', 'agent health'].map((c) => {
      const one = thr.find((x) => x.config === c && x.inFlight === 1)!.msgsPerSec;
      return [c, Object.fromEntries(thr.filter((x) => x.config === c).map((x) => [`x${x.inFlight}`, +(x.msgsPerSec / one).toFixed(2)]))];
    }));
    const out = {
      bench: 'channel-rtt',
      date: new Date().toISOString(),
      host: { cpus: cpus().length, node: process.version },
      samples: SAMPLES,
      secondsPerThroughputPoint: SECONDS,
      latency: lat,
      throughput: thr,
      cpuPerRoundTrip: cpu,
      ratios: { latencyVsRawSocket: ratios, throughputVsOneInFlight: pipelining },
      notes: 'Both ends are separate processes on one 2-core machine shared with other work; p99 includes scheduler noise.',
    };
    writeFileSync(resultPath('channel-rtt.json'), JSON.stringify(out, null, 2) + '\n');
    const latPoints: BarPoint[] = lat.flatMap((l) => [{ group: l.config, bar: 'p50', value: +l.p50Us.toFixed(1) }, { group: l.config, bar: 'p99', value: +l.p99Us.toFixed(1) }]);
    const thrPoints: BarPoint[] = thr.map((x) => ({ group: x.config, bar: `${x.inFlight} in flight`, value: x.msgsPerSec }));
    const strip = (s: VegaLiteSpec) => {
      const c = { ...(s as unknown as Record<string, unknown>) };
      delete c.$schema;
      return c;
    };
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Control channel over a Unix socket (two processes)',
      vconcat: [
        strip(groupedBarChart('Round trip (µs)', latPoints, 'µs')),
        strip(groupedBarChart('Requests per second', thrPoints, 'msgs/s')),
      ],
    } as unknown as VegaLiteSpec;
    writeFileSync(resultPath('channel-rtt.svg'), await renderSvg(spec));
    say('wrote bench/results/channel-rtt.json and .svg');
    console.log(
      JSON.stringify(
        {
          latency: lat.map((l) => ({ config: l.config, p50Us: +l.p50Us.toFixed(1), p99Us: +l.p99Us.toFixed(1) })),
          throughput: thr,
          cpuPerRoundTrip: cpu,
          ratios: out.ratios,
        },
        null,
        2,
      ),
    );
    peer.close();
    rawSock.destroy();
  } finally {
    await server.close();
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
