// bench/tier-promote: what a first touch of a disk-tier file costs an app with each promotion mode of the guest's
// tiered store (docs/tier.md "Promotion"). A TierStore on a real tmpfs (the memory tier) and a directory on the real
// disk (the disk tier); per round and mode, the file is put, moved to the disk tier, its pages dropped
// (vmtouch -e), then timed:
//   lookup  = tier path's own time (TierStore.lookup: in sync mode it includes the copy into the share);
//   task    = lookup + reading the whole file at the path it answered (what a task pays before its work);
//   settled = until the background copy and the removal of the disk copy are done (background mode only).
// Mode off (no promotion: the disk-tier read alone) is the reference for what the background copy costs the reader.
// The disk tier's reads can be throttled like the closed-loop bench's (cgroup v1 blkio, this process only).
//   node dist/bench/tier-promote.js [--mib 4] [--rounds 5] [--read-mbps 12|0] [--dir /var/tmp]
// Writes bench/results/tier-promote.json. Needs root (tmpfs mount, blkio cgroup) and vmtouch.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { mountTmpfs, umountTmpfs } from '../src/os/tmpfs.js';
import { TierStore, type PromoteMode } from '../src/guest/tier/store.js';
import { resultPath } from './lib/results.js';
import { arg, argStr, benchLog } from './lib/args.js';
import { MiB } from '../src/core/units.js';

if (process.argv.includes('--help')) {
  process.stdout.write('node dist/bench/tier-promote.js [--mib 4] [--rounds 5] [--read-mbps 12|0] [--dir /var/tmp]\n');
  process.exit(0);
}
const SIZE_MIB = arg('mib', 4);
const ROUNDS = arg('rounds', 5);
const READ_MBPS = arg('read-mbps', 12);
const DIR = argStr('dir', '/var/tmp');
/** How long the background promotion keeps the disk copy after the lookup (the agent's default is 30 s). */
const KEEP_MS = 2000;
const log = benchLog('tier-promote');
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  const base = mkdtempSync(join(DIR, 'hylics-tier-promote-'));
  const mem = join(base, 'share');
  const disk = join(base, 'disk');
  mkdirSync(mem);
  mkdirSync(disk);
  await mountTmpfs(mem, { sizeBytes: (SIZE_MIB * 4 + 8) * MiB, mode: 0o755 });
  let cg: string | undefined;
  try {
    let throttle = 'none';
    if (READ_MBPS > 0) {
      const rdev = statSync(disk).dev;
      const majMin = `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
      const blkio = '/sys/fs/cgroup/blkio';
      if (!existsSync(join(blkio, 'blkio.throttle.read_bps_device'))) throw new Error('needs cgroup v1 blkio (or --read-mbps 0)');
      cg = join(blkio, `hylics-tier-promote-${process.pid}`);
      mkdirSync(cg);
      writeFileSync(join(cg, 'blkio.throttle.read_bps_device'), `${majMin} ${Math.round(READ_MBPS * 1e6)}`);
      writeFileSync(join(cg, 'cgroup.procs'), String(process.pid));
      throttle = `blkio.throttle.read_bps_device ${majMin} ${READ_MBPS} MB/s (this process)`;
    }
    log(`share: tmpfs ${mem}; disk tier: ${disk}; file ${SIZE_MIB} MiB; disk-tier reads throttled: ${throttle}`);
    const data = randomBytes(SIZE_MIB * MiB);
    const want = createHash('sha256').update(data).digest('hex');
    const res: Record<string, { lookupMs: number[]; taskMs: number[]; settledMs: number[] }> = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of ['sync', 'background', 'off'] as PromoteMode[]) {
        const s = await new TierStore({
          memoryDir: mem, diskDir: disk, promote: mode, idleMs: 0, keepSourceMs: KEEP_MS,
        }).open();
        await s.put('seg.mp4', Readable.from([data]));
        await s.shrink(0, 60_000);
        if ((await s.locate('seg.mp4'))?.tier !== 'disk') throw new Error('the file did not move to the disk tier');
        execFileSync('vmtouch', ['-qe', join(disk, 'seg.mp4')]);
        const t0 = process.hrtime.bigint();
        const e = await s.lookup('seg.mp4');
        const lookupMs = ms(t0);
        const got = createHash('sha256').update(readFileSync(e.path)).digest('hex');
        const taskMs = ms(t0);
        await s.promotionsSettled();
        const settledMs = ms(t0);
        if (got !== want) throw new Error(`${mode}: read a different file`);
        const where = await s.locate('seg.mp4');
        if (where?.tier !== (mode === 'off' ? 'disk' : 'memory')) throw new Error(`${mode}: in the ${where?.tier} tier`);
        (res[mode] ??= { lookupMs: [], taskMs: [], settledMs: [] });
        res[mode].lookupMs.push(lookupMs);
        res[mode].taskMs.push(taskMs);
        if (mode === 'background') res[mode].settledMs.push(settledMs);
        const after = mode === 'background' ? `, copy + disk copy removed ${settledMs.toFixed(0)} ms` : '';
        log(`round ${r + 1} ${mode.padEnd(10)} answered ${e.tier} in ${lookupMs.toFixed(1)} ms, +read ${taskMs.toFixed(1)} ms${after}`);
        await s.remove('seg.mp4');
      }
    }
    const summary = Object.fromEntries(Object.entries(res).map(([m, v]) => [m, {
      lookupMs: mean(v.lookupMs),
      taskMs: mean(v.taskMs),
      ...(v.settledMs.length ? { settledMs: mean(v.settledMs) } : {}),
      runs: v,
    }]));
    for (const [m, v] of Object.entries(summary)) {
      log(`${m}: tier path ${v.lookupMs.toFixed(1)} ms, lookup + read ${v.taskMs.toFixed(1)} ms (means of ${ROUNDS})`);
    }
    const out = resultPath('tier-promote.json');
    writeFileSync(out, `${JSON.stringify({
      bench: 'tier-promote', date: new Date().toISOString(), command: `node dist/bench/tier-promote.js ${process.argv.slice(2).join(' ')}`.trim(),
      loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), sizeMiB: SIZE_MIB, rounds: ROUNDS, throttle, summary,
      note: 'background lookup + read includes the concurrent background copy sharing the throttled read bandwidth; settledMs includes the 2 s the disk copy is kept here (keepSourceMs; the agent default is 30 s)',
    }, null, 1)}\n`);
    log(`wrote ${out}`);
  } finally {
    if (cg) {
      writeFileSync('/sys/fs/cgroup/blkio/cgroup.procs', String(process.pid));
      rmdirSync(cg);
    }
    await umountTmpfs(mem, { lazy: true }).catch(() => {});
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
