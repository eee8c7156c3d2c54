// bench/transcode-model: grounds the simulator's guest model (docs/controller.md "The simulator": the guest is a
// processor-sharing server with c vCPUs; a task alone gets all c with Amdahl speedup S(k) = 1/(s + (1-s)/k), n
// concurrent tasks get c/n each: psRate(n, vcpus, serialFraction) in src/core/sim/simulator.ts) in a real
// measurement with the paper's task: a 10 s 1280x720 30 fps segment transcoded to 854x480 with FFmpeg/x264
// (-preset medium, decode and encode threads = T), run inside a real Hylics sandbox guest and timed inside it.
// Per guest CPU cap (default 2 = this whole machine, and 1):
//   alone at T=1 and T=2 -> measured S(2) = t1/t2 and the fitted serial fraction s = 2/S(2) - 1
//   n = 2..N tasks at T=2 started together -> mean per-task completion time, beside two model predictions:
//     pure M/G/1-PS:  n * t2
//     Amdahl-PS:      t2 / psRate(n, cpus, s, 2)   (the simulator's own formula, S(k) = k below one vCPU)
//   and the ratios measured/model.
// Configurations are rotated over rounds so slow drifts of the shared host do not favour one; a run during which
// the rest of this machine took CPU the guest could have used (/proc/stat) is marked contended and rerun.
// Writes bench/results/transcode-model.{json,svg}.
//   npx tsx bench/transcode-model.ts [--rounds 2] [--max-n 4] [--cpus 2,1] [--one-cpu-rounds 1] [--one-cpu-max-n 2]
//     [--retries 2] [--max-retries 4] [--contended-cpu 0.25] [--quiet-wait 20]
// Needs root (the daemon: namespaces, cgroups) and ffmpeg with libx264.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderSvg, type VegaLiteSpec } from '../src/core/plot.js';
import { psRate } from '../src/core/sim/simulator.js';
import { RESULTS_DIR } from './lib/results.js';
import { benchSession } from './lib/session.js';
import { cgroupCpuSeconds, median } from './lib/measure.js';
import { arg, argStr, benchLog } from './lib/args.js';

const ROUNDS = arg('rounds', 2);
const MAX_N = arg('max-n', 4);
const CPU_CAPS = argStr('cpus', '2,1').split(',').map(Number).filter((c) => c > 0);
// the 1-CPU guest is the cheap side check (both models coincide there: c/n < 1 vCPU for every n >= 2)
const ONE_CPU_ROUNDS = arg('one-cpu-rounds', 1);
const ONE_CPU_MAX_N = arg('one-cpu-max-n', 2);
const RETRIES = arg('retries', 2); // reruns of a contended cell
const MAX_RETRIES = arg('max-retries', 4); // reruns in all (keeps the run's length bounded on a busy host)
const CONTENDED_CPU = arg('contended-cpu', 0.25); // others' CPUs beyond the ones the guest leaves free mark a run contended
const HOST_CPUS = Number(execFileSync('nproc').toString().trim());
// a guest capped below the machine leaves CPUs free; others using most of them still slow it (shared caches, memory
// bandwidth, its threads' placement: a 1-CPU guest was 7% slower with 1.1 CPU busy beside it), hence the - 0.5
const contendedAbove = (cpus: number): number => Math.max(0, HOST_CPUS - cpus - 0.5) + CONTENDED_CPU;
const QUIET_WAIT_S = arg('quiet-wait', 20); // before each run, wait up to this long for the rest of the machine to be quiet
const T_CONC = 2; // threads of each concurrent task (the paper: threads = vCPUs)
const SHARE = '/mnt/hylics';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const log = benchLog('transcode-model');
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;


/** This machine's CPU counters (jiffies): busy (user..softirq) and steal, from /proc/stat. */
function hostCpu(): { busy: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return { busy: user! + nice! + system! + irq! + softirq!, steal: steal! };
}

/** One run of n tasks started together, each with T threads. `othersCpu`: CPUs (average over the run) this machine
 * spent outside the guest, plus steal; the host is shared, so a run where others took a real share is `contended`. */
interface Cell {
  cpus: number;
  round: number;
  n: number;
  threads: number;
  taskSeconds: number[];
  meanSeconds: number;
  makespanSeconds: number;
  guestCpuSeconds: number;
  wallSeconds: number;
  othersCpu: number;
  contended: boolean;
}

/** The sh script run in the guest: n background transcodes, each timed with date +%s.%N around it; prints
 * "i start end" per task. Output goes to the share. */
function script(n: number, threads: number): string {
  const one = (i: number): string => `(s=$(date +%s.%N); ffmpeg -nostdin -hide_banner -loglevel error -y -threads ${threads} -i ${SHARE}/seg.mp4`
    + ` -c:v libx264 -preset medium -threads ${threads} -s 854x480 -f mp4 ${SHARE}/out/out${i}.mp4 || echo "FAIL ${i}";`
    + ` e=$(date +%s.%N); echo "${i} $s $e") > ${SHARE}/out/t${i}.txt 2>&1 &`;
  // `;` (not `&&`) before the tasks: an `a && b &` list would put the rm in the background, racing the tasks' files
  return `mkdir -p ${SHARE}/out && rm -f ${SHARE}/out/*; ${Array.from({ length: n }, (_, i) => one(i)).join(' ')} wait; cat ${SHARE}/out/t*.txt`;
}

interface CapResult {
  cpus: number;
  rounds: number;
  maxN: number;
  alone: { t1: number[]; t2: number[]; t1Median: number; t2Median: number; speedupS2: number; serialFraction: number };
  table: Array<{
    n: number;
    measuredMeanSeconds: number;
    measuredRuns: number[];
    contendedOnly: boolean;
    pureMg1Ps: number;
    amdahlPs: number;
    ratioVsPurePs: number;
    ratioVsAmdahlPs: number;
    guestCpuSecondsPerRun: number;
  }>;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { process.stderr.write('bench/transcode-model needs root (the daemon: namespaces, cgroups)\n'); process.exit(2); }
  execFileSync('which', ['ffmpeg'], { stdio: 'ignore' });
  if (!execFileSync('ffmpeg', ['-hide_banner', '-encoders']).toString().includes('libx264')) throw new Error('ffmpeg has no libx264 encoder');

  const session = await benchSession('hylics-bench-transcode-', log);
  const { dir, cleanup } = session;
  const gexec = (guest: string, sh: string, timeoutMs = 300_000) => session.gexec(guest, sh, timeoutMs);

  const caps: CapResult[] = [];
  let retries = 0;
  const cells: Cell[] = [];
  try {
    log('making the 10 s 1280x720 30 fps input segment on the host (lavfi testsrc2 + temporal noise, x264 veryfast 5 Mb/s)');
    const segPath = join(dir, 'seg.mp4');
    execFileSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t',
      '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '5M', '-pix_fmt', 'yuv420p', segPath]);
    const segment = { bytes: statSync(segPath).size, probe: execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries',
      'stream=width,height,r_frame_rate,nb_frames,codec_name', '-of', 'csv=p=0', segPath]).toString().trim() };
    log(`  seg.mp4 ${(segment.bytes / 1e6).toFixed(1)} MB (${segment.probe})`);
    await session.start();

    for (const cpus of CPU_CAPS) {
      const oneCpu = cpus <= 1;
      const rounds = oneCpu ? ONE_CPU_ROUNDS : ROUNDS;
      const maxN = oneCpu ? Math.min(ONE_CPU_MAX_N, MAX_N) : MAX_N;
      const guest = `tcm${process.pid % 100000}c${String(cpus).replace('.', '_')}`;
      log(`creating sandbox guest ${guest} (--cpus ${cpus}, share 256M, memory 2G)`);
      const g = await session.createGuest<{ share: { path: string }; driverInfo: { cgroup: string } }>(guest, ['--share-size', '256M', '--cpus', String(cpus), '--memory', '2G']);
      const cgroup = g.driverInfo.cgroup;

      // the input segment (made once, on the host), copied into the guest's share
      await copyFile(segPath, join(g.share.path, 'seg.mp4'));
      const seen = (await gexec(guest, `stat -c %s ${SHARE}/seg.mp4`)).stdout.trim();
      if (Number(seen) !== segment.bytes) throw new Error(`the guest sees seg.mp4 with ${seen} bytes, not ${segment.bytes}`);

      const runCell = async (round: number, n: number, threads: number): Promise<Cell> => {
        // the guest is idle between runs: what this machine does now is others' load; wait (bounded) for it to pass
        for (const until = Date.now() + QUIET_WAIT_S * 1000; ;) {
          const a = hostCpu(); await new Promise((res) => setTimeout(res, 500)); const b = hostCpu();
          const busy = (b.busy - a.busy + b.steal - a.steal) / CLK_TCK / 0.5;
          if (busy <= contendedAbove(cpus) || Date.now() >= until) break;
          log(`  (machine busy: ${busy.toFixed(2)} CPU outside the guest, waiting)`);
          await new Promise((res) => setTimeout(res, 2000));
        }
        const g0 = cgroupCpuSeconds(cgroup); const h0 = hostCpu(); const w0 = performance.now();
        const out = (await gexec(guest, script(n, threads))).stdout;
        const guestCpuSeconds = cgroupCpuSeconds(cgroup) - g0;
        const h1 = hostCpu();
        const wallSeconds = (performance.now() - w0) / 1000;
        const othersCpu = ((h1.busy - h0.busy + h1.steal - h0.steal) / CLK_TCK - guestCpuSeconds) / wallSeconds;
        if (/FAIL/.test(out)) throw new Error(`a transcode failed in the guest: ${out.slice(0, 2000)}`);
        const rows = out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter((r) => r.length === 3 && r.every(Number.isFinite));
        if (rows.length !== n) throw new Error(`expected ${n} timings, got: ${out.slice(0, 2000)}`);
        const taskSeconds = rows.map(([, s, e]) => e! - s!);
        const start = Math.min(...rows.map((r) => r[1]!)); const end = Math.max(...rows.map((r) => r[2]!));
        return {
          cpus,
          round,
          n,
          threads,
          taskSeconds,
          meanSeconds: mean(taskSeconds),
          makespanSeconds: end - start,
          guestCpuSeconds,
          wallSeconds,
          othersCpu,
          contended: othersCpu > contendedAbove(cpus),
        };
      };

      // warm-up (page cache, ffmpeg's libraries), not counted
      log('  warm-up transcode (not counted)');
      const w = await runCell(-1, 1, T_CONC);
      log(`  warm-up: ${w.taskSeconds[0]!.toFixed(2)} s in the guest, ${w.wallSeconds.toFixed(2)} s exec wall, others ${w.othersCpu.toFixed(2)} CPU`);

      const configs: Array<{ n: number; threads: number }> = [{ n: 1, threads: 1 }, { n: 1, threads: T_CONC }];
      for (let n = 2; n <= maxN; n++) configs.push({ n, threads: T_CONC });
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < configs.length; k++) {
          const c = configs[(k + round) % configs.length]!;
          for (let attempt = 0; ; attempt++) {
            const cell = await runCell(round, c.n, c.threads);
            cells.push(cell);
            log(`  cpus ${cpus} round ${round + 1}/${rounds}: n=${c.n} T=${c.threads}: per task ${cell.taskSeconds.map((x) => x.toFixed(2)).join(' ')} s`
              + ` (mean ${cell.meanSeconds.toFixed(2)} s, guest CPU ${cell.guestCpuSeconds.toFixed(1)} s, others ${cell.othersCpu.toFixed(2)} CPU)`
              + (cell.contended ? (attempt < RETRIES && retries < MAX_RETRIES ? ' CONTENDED, again' : ' CONTENDED, kept') : ''));
            if (!cell.contended || attempt >= RETRIES || retries >= MAX_RETRIES) break;
            retries++;
          }
        }
      }

      // medians over the uncontended runs of a configuration; over all of them when every run was contended
      const all = cells.filter((c) => c.cpus === cpus);
      const mine = all.filter(
        (c) => !c.contended || all.every((d) => d.n !== c.n || d.threads !== c.threads || d.contended),
      );
      const t1 = mine.filter((c) => c.n === 1 && c.threads === 1).map((c) => c.meanSeconds);
      const t2 = mine.filter((c) => c.n === 1 && c.threads === T_CONC).map((c) => c.meanSeconds);
      const t1Median = median(t1); const t2Median = median(t2);
      const speedupS2 = t1Median / t2Median;
      // Amdahl through the two points: 1/S(2) = s + (1-s)/2  =>  s = 2/S(2) - 1 (clamped to [0, 1] for the model)
      const serialFraction = 2 / speedupS2 - 1;
      const sModel = Math.min(1, Math.max(0, serialFraction));
      const table: CapResult['table'] = [];
      for (let n = 1; n <= maxN; n++) {
        const runs = mine.filter((c) => c.n === n && c.threads === T_CONC);
        const measured = median(runs.map((c) => c.meanSeconds));
        const pure = n * t2Median;
        const amdahl = t2Median / psRate(n, cpus, sModel, T_CONC);
        table.push({
          n,
          measuredMeanSeconds: measured,
          measuredRuns: runs.map((c) => c.meanSeconds),
          contendedOnly: runs.some((c) => c.contended),
          pureMg1Ps: pure,
          amdahlPs: amdahl,
          ratioVsPurePs: measured / pure,
          ratioVsAmdahlPs: measured / amdahl,
          guestCpuSecondsPerRun: median(runs.map((c) => c.guestCpuSeconds)),
        });
      }
      caps.push({ cpus, rounds, maxN, alone: { t1, t2, t1Median, t2Median, speedupS2, serialFraction }, table });
      log(`cpus ${cpus}: alone T=1 ${t1Median.toFixed(2)} s, T=2 ${t2Median.toFixed(2)} s -> S(2) = ${speedupS2.toFixed(3)}, s = ${serialFraction.toFixed(3)}`);
      log('   n  measured  pure-PS (ratio)   Amdahl-PS (ratio)');
      for (const r of table) {
        log(`  ${String(r.n).padStart(2)}  ${r.measuredMeanSeconds.toFixed(2).padStart(7)} s  ${r.pureMg1Ps.toFixed(2).padStart(6)} s (${r.ratioVsPurePs.toFixed(3)})`
          + `  ${r.amdahlPs.toFixed(2).padStart(6)} s (${r.ratioVsAmdahlPs.toFixed(3)})${r.contendedOnly ? '  (contended runs only)' : ''}`);
      }
      await session.removeGuest(guest);
    }

    const outDir = RESULTS_DIR;
    mkdirSync(outDir, { recursive: true });
    const result = {
      bench: 'transcode-model', date: new Date().toISOString(), command: `npx tsx bench/transcode-model.ts ${process.argv.slice(2).join(' ')}`.trim(),
      setup: {
        guest: { driver: 'sandbox', cpus: CPU_CAPS, memory: '2G', share: '256M (tmpfs)' },
        input: { ...segment, made: 'ffmpeg -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t" -t 10 -c:v libx264 -preset veryfast -b:v 5M -pix_fmt yuv420p seg.mp4 (once, on the host; copied into each guest share)' },
        task: 'ffmpeg -threads T -i seg.mp4 -c:v libx264 -preset medium -threads T -s 854x480 -f mp4 out.mp4 (in the guest, output to the share), timed in the guest with date +%s.%N',
        contention: `a run is contended when this machine spent more than max(0, host CPUs - guest CPUs - 0.5) + ${CONTENDED_CPU} CPU (average, busy + steal from /proc/stat) `
          + `outside the guest's cgroup; it is rerun up to ${RETRIES} times (${MAX_RETRIES} reruns in all) and medians use the uncontended runs (all runs when none was)`,
        reruns: retries,
        concurrent: `n tasks at T=${T_CONC} started together by one sh in one hylics guest exec; measured = mean of their completion times (median over rounds)`,
        models: {
          pureMg1Ps: 'n * t2 (t2 = median alone time at T=2)',
          amdahlPs: `t2 / psRate(n, cpus, s, ${T_CONC}) (src/core/sim/simulator.ts; S(k) = 1/(s + (1-s)/k), S(k) = k below one vCPU), s fitted from t1/t2`,
        },
        hostCpus: HOST_CPUS, ffmpeg: execFileSync('ffmpeg', ['-version']).toString().split('\n')[0],
        loadavgAtEnd: readFileSync('/proc/loadavg', 'utf8').trim(),
      },
      caps, cells,
    };
    writeFileSync(join(outDir, 'transcode-model.json'), JSON.stringify(result, null, 2) + '\n');

    const points: Array<{ n: number; seconds: number; series: string; guest: string }> = [];
    for (const c of caps) {
      const guestLabel = `${c.cpus}-CPU guest (S(2) = ${c.alone.speedupS2.toFixed(2)}, s = ${c.alone.serialFraction.toFixed(2)})`;
      for (const r of c.table) {
        points.push({ n: r.n, seconds: r.measuredMeanSeconds, series: 'measured (mean per task)', guest: guestLabel });
        points.push({ n: r.n, seconds: r.pureMg1Ps, series: 'pure M/G/1-PS: n x t(T=2)', guest: guestLabel });
        points.push({ n: r.n, seconds: r.amdahlPs, series: 'Amdahl-PS: simulator psRate, fitted s', guest: guestLabel });
      }
    }
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'x264 720p->480p transcode of a 10 s segment in a sandbox guest: per-task time vs concurrent tasks (T=2 each)',
      data: { values: points },
      facet: { column: { field: 'guest', type: 'nominal', title: null, sort: null } },
      spec: {
        width: 300, height: 260,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'n', type: 'quantitative', title: 'concurrent tasks n', axis: { tickMinStep: 1 } },
          y: { field: 'seconds', type: 'quantitative', title: 'completion time per task (s)' },
          color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400, orient: 'bottom' } },
          strokeDash: { field: 'series', type: 'nominal', title: null },
        },
      },
      resolve: { scale: { x: 'independent' } },
    } as unknown as VegaLiteSpec;
    writeFileSync(join(outDir, 'transcode-model.svg'), await renderSvg(spec));
    log(`wrote ${join(outDir, 'transcode-model.json')} and transcode-model.svg`);
  } finally {
    await cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/transcode-model failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
