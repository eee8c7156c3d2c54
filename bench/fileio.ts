// bench/fileio: the paper's Figs. 12-16 in a microVM guest. Inside one guest: sequential and random read and
// write throughput (fio, psync, O_DIRECT so that the guest's page cache is out of the picture, as the paper
// "disabled the operating system block cache") at several block sizes on the share (virtio-fs over a host tmpfs)
// and on the virtual disk (virtio-blk, cache=none, ext4), plus `dd if=/dev/zero ... conv=fsync` writes; then
// the same on a host tmpfs (Figs. 15-16, "at the hypervisor level"). One run, side by side, ratios share/disk.
// The accelerator is recorded: under TCG (software emulation) every in-guest figure is labelled emulated.
//   npx tsx bench/fileio.ts [--runtime 1] [--size 64] [--bs 4k,64k,1m] [--cache-dir /var/tmp/hylics-bench-cache]
// The guest image and the accelerator choice are cached in --cache-dir between runs (a cache, not guest state).
// Needs root, qemu-system-x86, fio (scripts/debian-packages.txt). Writes bench/results/fileio.{json,svg}.
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { groupedBarChart, renderSvg, type BarPoint } from '../src/core/plot.js';
import { MicrovmDriver, type MicrovmState } from '../src/host/drivers/microvm.js';
import type { DriverContext, DriverState } from '../src/host/drivers/types.js';
import { run } from '../src/os/image/run.js';
import { guestExec, waitForGuestShell } from '../src/os/qemu.js';
import { resultPath } from './lib/results.js';
import { MiB } from '../src/core/units.js';

const argOf = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const RUNTIME = Number(argOf('runtime', '1'));
const SIZE_MB = Number(argOf('size', '64'));
const BLOCKS = argOf('bs', '4k,64k,1m').split(',');
const PATTERNS = ['read', 'randread', 'write', 'randwrite'] as const;
const DD_TOTAL_MB = 32;
const say = (m: string): void => { process.stderr.write(`[fileio] ${m}\n`); };

if (process.getuid?.() !== 0) { console.error('bench/fileio needs root (tmpfs, tap, QEMU)'); process.exit(1); }

type Target = 'guest share (virtio-fs)' | 'guest disk (virtio-blk)' | 'host tmpfs';
interface Result { target: Target; test: string; bs: string; MBps: number; direct: boolean }
const results: Result[] = [];

function fioArgs(file: string, rw: string, bs: string, direct: boolean): string[] {
  return ['--name=hy', `--filename=${file}`, `--size=${SIZE_MB}m`, `--bs=${bs}`, `--rw=${rw}`, '--ioengine=psync', `--direct=${direct ? 1 : 0}`,
    `--runtime=${RUNTIME}`, '--time_based', '--invalidate=1', '--output-format=json'];
}

function parseFio(out: string, rw: string): number {
  const j = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { read: { bw_bytes: number }; write: { bw_bytes: number } }[] };
  const job = j.jobs[0]!;
  return (rw.includes('read') ? job.read.bw_bytes : job.write.bw_bytes) / 1e6;
}

function parseDd(out: string): number {
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(out);
  if (!m) throw new Error(`cannot parse dd output: ${out}`);
  return Number(m[1]) / Number(m[2]) / 1e6;
}

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function inGuest(shell: string, argv: string[], timeoutMs = 120_000): Promise<{ out: string; code: number }> {
  // fio and coreutils dd come from the host's read-only view (chroot), like the agent's node. Absolute paths:
  // busybox's chroot prefers its own applets (it would run busybox dd) for bare names.
  const bin = argv[0]!.startsWith('/') ? argv[0]! : (await run('sh', ['-c', `command -v ${argv[0]}`])).stdout.trim();
  const r = await guestExec(shell, `LANG=C chroot /sysroot ${[bin, ...argv.slice(1)].map(sh).join(' ')}`, timeoutMs);
  return { out: r.stdout, code: r.code };
}

async function onHost(argv: string[]): Promise<{ out: string; code: number }> {
  const r = await run(argv[0]!, argv.slice(1), { allowFail: true, env: { ...process.env, LANG: 'C' } });
  return { out: r.stdout + r.stderr, code: r.code };
}

interface Place {
  target: Target;
  dir: string;
  exec: (argv: string[]) => Promise<{ out: string; code: number }>;
  direct: boolean;
}

async function fioOn(p: Place, rw: string, bs: string): Promise<void> {
  const file = join(p.dir, 'fio.dat');
  let r = await p.exec(['fio', ...fioArgs(file, rw, bs, p.direct)]);
  if (r.code !== 0 && p.direct) {
    say(`${p.target}: O_DIRECT refused (${r.out.trim().split('\n').pop()}); using buffered I/O there`);
    p.direct = false;
    r = await p.exec(['fio', ...fioArgs(file, rw, bs, p.direct)]);
  }
  if (r.code !== 0) throw new Error(`fio ${rw} ${bs} on ${p.target} failed: ${r.out.slice(-400)}`);
  const MBps = parseFio(r.out, rw);
  results.push({ target: p.target, test: rw, bs, MBps, direct: p.direct });
  say(`${p.target.padEnd(24)} ${rw.padEnd(9)} bs=${bs.padEnd(4)} ${MBps.toFixed(1).padStart(8)} MB/s${p.direct ? '' : ' (buffered)'}`);
}

async function ddOn(p: Place, bs: string): Promise<void> {
  const bytes = Number.parseInt(bs, 10) * (bs.endsWith('m') ? MiB : 1024);
  const count = Math.max(1, Math.round((DD_TOTAL_MB * MiB) / bytes));
  const out = join(p.dir, 'dd.dat');
  const r = await p.exec(['dd', 'if=/dev/zero', `of=${out}`, `bs=${bs.toUpperCase()}`, `count=${count}`, 'conv=fsync']);
  if (r.code !== 0) throw new Error(`dd on ${p.target} failed: ${r.out}`);
  const MBps = parseDd(r.out);
  results.push({ target: p.target, test: 'dd conv=fsync', bs, MBps, direct: false });
  say(`${p.target.padEnd(24)} dd fsync  bs=${bs.padEnd(4)} ${MBps.toFixed(1).padStart(8)} MB/s`);
  await p.exec(['rm', '-f', out]);
}

/** Every (test, block size) runs on all places back to back, in alternating order, so that load from others on
 * this shared machine hits the configurations alike and the ratios stay meaningful. */
async function interleaved(places: Place[]): Promise<void> {
  let n = 0;
  const order = (): Place[] => (n++ % 2 === 0 ? places : [...places].reverse());
  for (const rw of PATTERNS) for (const bs of BLOCKS) for (const p of order()) await fioOn(p, rw, bs);
  for (const p of places) await p.exec(['rm', '-f', join(p.dir, 'fio.dat')]);
  for (const bs of BLOCKS) for (const p of order()) await ddOn(p, bs);
}

const stateDir = await mkdtemp(join(tmpdir(), 'hyfio-'));
const log = pino({ level: 'silent' });
const name = 'fio';
const dir = join(stateDir, 'guests', name);
const ctx: DriverContext = {
  spec: { name, driver: 'microvm', shareSizeBytes: 256 * MiB, cpus: 2, memoryBytes: 1024 * MiB },
  paths: { dir, share: join(dir, 'share'), run: join(dir, 'run'), logs: join(dir, 'logs') },
  network: { index: 245, hostIf: 'hyb245', guestIf: 'hyc245', hostAddr: '10.213.245.1', guestAddr: '10.213.245.2', prefixLen: 24, netns: 'unused' },
  stateDir, log,
};
const cacheDir = argOf('cache-dir', '/var/tmp/hylics-bench-cache');
const driver = new MicrovmDriver({
  stateDir: cacheDir,
  log,
  diskBytes: 1024 * MiB,
  agentArgv: false,
  onProgress: (m) => say(m),
});
const hostTmpfs = join(stateDir, 'host-tmpfs');
let state: DriverState | undefined;
let boot: Record<string, number> = {};
let accel = 'unknown';
let accelReason = '';
try {
  await mkdir(ctx.paths.share, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'hylics-fileio', ctx.paths.share]);
  await driver.ensureImage();
  await driver.chooseAccel(); // the KVM probe (first run on a host) is not part of the boot time
  const t0 = Date.now();
  state = await driver.start(ctx);
  const tStarted = Date.now() - t0;
  const s = state as unknown as MicrovmState;
  accel = s.accel;
  accelReason = s.accelReason;
  for (;;) {
    const c = await readFile(join(ctx.paths.logs, 'console.log'), 'utf8').catch(() => '');
    if (c.includes('HYLICS-INIT-OK')) break;
    if (Date.now() - t0 > 180_000) throw new Error('guest did not boot');
    await new Promise((r) => setTimeout(r, 100));
  }
  const tInit = Date.now() - t0;
  await waitForGuestShell(s.shellSocket, 60_000);
  const tShell = Date.now() - t0;
  boot = { processesStartedMs: tStarted, initDoneMs: tInit, shellMs: tShell };
  say(`accelerator ${accel}${accel === 'tcg' ? ' (EMULATED: guest figures are software emulation)' : ''}; boot: QEMU up ${tStarted} ms, /init done ${tInit} ms, shell ${tShell} ms`);

  await mkdir(hostTmpfs, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'hylics-fileio-host', hostTmpfs]);
  await interleaved([
    { target: 'guest share (virtio-fs)', dir: '/mnt/hylics', exec: (a) => inGuest(s.shellSocket, a), direct: true },
    { target: 'guest disk (virtio-blk)', dir: '/mnt/disk', exec: (a) => inGuest(s.shellSocket, a), direct: true },
    { target: 'host tmpfs', dir: hostTmpfs, exec: onHost, direct: true },
  ]);
  const t1 = Date.now();
  await driver.stop(ctx, state, 30_000);
  boot.stopMs = Date.now() - t1;
} finally {
  await driver.cleanup(ctx, state).catch(() => undefined);
  await run('umount', ['-l', hostTmpfs], { allowFail: true });
  await run('umount', ['-l', ctx.paths.share], { allowFail: true });
  await rm(stateDir, { recursive: true, force: true });
}

const get = (target: Target, test: string, bs: string): number =>
  results.find((r) => r.target === target && r.test === test && r.bs === bs)?.MBps ?? NaN;
const ratios = [...PATTERNS, 'dd conv=fsync'].flatMap((test) => BLOCKS.map((bs) => ({
  test, bs,
  shareOverDisk: get('guest share (virtio-fs)', test, bs) / get('guest disk (virtio-blk)', test, bs),
  hostTmpfsOverShare: get('host tmpfs', test, bs) / get('guest share (virtio-fs)', test, bs),
})));
say('ratios (share / disk in the guest; host tmpfs / guest share):');
for (const r of ratios) say(`  ${r.test.padEnd(14)} bs=${r.bs.padEnd(4)} share/disk ${r.shareOverDisk.toFixed(2).padStart(6)}x   host/share ${r.hostTmpfsOverShare.toFixed(2).padStart(7)}x`);

const emulated = accel === 'tcg';
const out = {
  bench: 'fileio',
  date: new Date().toISOString(),
  accelerator: accel,
  emulated,
  accelReason,
  note: emulated ? 'guest figures were measured under TCG software emulation: absolute guest numbers are CPU-bound emulation, compare ratios only' : 'KVM',
  config: { runtimeSecondsPerTest: RUNTIME, fileMiB: SIZE_MB, blockSizes: BLOCKS, ddTotalMiB: DD_TOTAL_MB, vcpus: 2, guestMemoryMiB: 1024, shareCache: 'none', diskCache: 'none (O_DIRECT on the host)', fio: 'psync, iodepth 1, O_DIRECT where the file system takes it' },
  boot,
  results,
  ratios,
};
writeFileSync(resultPath('fileio.json'), JSON.stringify(out, null, 2) + '\n');
const points: BarPoint[] = results.map((r) => ({ group: `${r.test} ${r.bs}`, bar: r.target, value: Math.round(r.MBps * 10) / 10 }));
const svg = await renderSvg(groupedBarChart(`File I/O: guest share vs guest disk vs host tmpfs (MB/s)${emulated ? ' — guest under TCG (emulated)' : ' — KVM'}`, points, 'MB/s'));
writeFileSync(resultPath('fileio.svg'), svg);
say(`wrote bench/results/fileio.json and .svg`);
