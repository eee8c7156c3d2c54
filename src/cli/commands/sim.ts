// `hylics sim`: the share-size controller in the discrete-event simulator (docs/controller.md).
//   hylics sim table3 [--seeds N] [--json]
//   hylics sim run --workload 1|2|FILE --scheme S [--seed N] [--vcpus N] [--ram GB] [--json] [--plot FILE.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { HylicsError } from '../../core/errors/index.js';
import { parseNumber } from '../../core/units.js';
import { DEFAULT_SCHEME, SCHEMES, type Scheme } from '../../core/control/controller.js';
import { runScenario, runTable3, type SchemeSummary } from '../../core/sim/evaluate.js';
import { parseArrivalTrace } from '../../core/sim/workload.js';
import { calibrationOptions, type CalibrationOptions } from '../../core/sim/paper.js';
import type { ServiceConfig, SimResult } from '../../core/sim/simulator.js';
import { renderSvg, lineChart, type VegaLiteSpec } from '../../core/plot.js';
import { printJson } from '../output.js';

const int = (name: string, v: string, min: number, max: number): number =>
  parseNumber(`--${name}`, v, { integer: true, min, max });

const frac = (name: string, v: string): number => parseNumber(`--${name}`, v, { min: 0, max: 1 });

/** Guest-model options shared by table3 and run (docs/controller.md, "vCPUs"). */
function serviceOptions(o: { serialFraction?: string; maxTaskVcpus?: string }): Partial<ServiceConfig> {
  const svc: Partial<ServiceConfig> = {};
  if (o.serialFraction !== undefined) svc.serialFraction = frac('serial-fraction', o.serialFraction);
  if (o.maxTaskVcpus !== undefined) svc.maxTaskVcpus = int('max-task-vcpus', o.maxTaskVcpus, 0, 1024);
  return svc;
}

/** Workload #2 period and E[X|m] calibration, shared by table3 and run (docs/controller.md). */
function readingOptions(o: { w2Phase?: string; calibration?: string }): {
  w2PhaseS?: number;
  calibration?: CalibrationOptions;
} {
  const out: { w2PhaseS?: number; calibration?: CalibrationOptions } = {};
  if (o.w2Phase !== undefined) out.w2PhaseS = int('w2-phase', o.w2Phase, 0, 86400);
  if (o.calibration !== undefined) {
    if (o.calibration !== 'light' && o.calibration !== 'operating')
      throw new HylicsError(
        'HYLICS_ERR_INVALID_ARGUMENT',
        `--calibration must be light or operating, got "${o.calibration}"`,
        { param: 'calibration', value: o.calibration },
      );
    out.calibration = calibrationOptions(o.calibration);
  }
  return out;
}

/** Response time and share size over time (the paper's Figs. 22-23), stacked. */
export function scenarioPlot(r: SimResult, title: string): VegaLiteSpec {
  const rPts = r.windows.filter((w) => w.meanR !== null).map((w) => ({ x: w.t / 60, y: w.meanR!, series: 'mean R per minute' }));
  const slo = r.windows.map((w) => ({ x: w.t / 60, y: 10, series: 'SLO 10 s' }));
  const sPts = r.decisions.map((d) => ({ x: d.t / 60, y: d.sizeMiB, series: 'share size' }));
  const uPts = r.windows.map((w) => ({ x: w.t / 60, y: w.usedMiB, series: 'share used (minute mean)' }));
  const a = lineChart(`${title}: response time`, [...rPts, ...slo], 'time (min)', 'response time (s)', { height: 220 }) as unknown as Record<string, unknown>;
  const b = lineChart(`${title}: share size`, [...sPts, ...uPts], 'time (min)', 'MiB', { height: 220 }) as unknown as Record<string, unknown>;
  delete a.$schema; delete b.$schema;
  return { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', vconcat: [a, b], resolve: { scale: { color: 'independent' } } } as unknown as VegaLiteSpec;
}

/** What modelOptions adds, as commander hands it over (with --json). */
interface ModelOpts {
  serialFraction?: string;
  maxTaskVcpus?: string;
  w2Phase?: string;
  calibration?: string;
  json?: boolean;
}

/** The guest-model and reading options table3 and run share (serviceOptions, readingOptions). */
function modelOptions(c: Command): Command {
  return c
    .option('--serial-fraction <s>', "guest model: Amdahl serial fraction of one task (0 = the paper's pure M/G/1-PS; default 0.1)")
    .option('--max-task-vcpus <n>', 'guest model: most vCPUs one task can use (0 = all)')
    .option('--w2-phase <s>', 'workload #2: seconds per 8 s / 4 s phase (0 = the mean alternates per arrival; default 600)')
    .option(
      '--calibration <mode>',
      'E[X|m] offline fit: light (response time at 1 task/min, §5.2; default) or operating (service demand at λ = 1/8, the earlier default)',
    );
}

export function register(program: Command): void {
  const sim = program.command('sim').description('simulate the share-size controller (paper §6.4, Table 3)');

  modelOptions(sim
    .command('table3')
    .description('the 12 rows of Table 3 x every scheme, mean and spread over seeds, beside the paper')
    .option('--seeds <n>', 'seeds per row and scheme', '10'))
    .option('--json', 'print JSON instead of text')
    .action(
      (o: ModelOpts & { seeds: string }) => {
        const seeds = int('seeds', o.seeds, 1, 1000);
        const service = serviceOptions(o);
        const t0 = Date.now();
        const res = runTable3({
          seeds,
          service,
          ...readingOptions(o),
          onProgress: (done, total, label) => {
            if (process.stderr.isTTY || seeds >= 5) process.stderr.write(`\r[${done}/${total}] ${label}`.padEnd(60));
          },
        });
        process.stderr.write('\n');
        const wallMs = Date.now() - t0;
        if (o.json) return printJson({ ...res, wallMs });
        const f = (x: unknown): string => {
          const s = x as SchemeSummary;
          return `${s.error.toFixed(1).padStart(6)} ±${s.errorStd.toFixed(1).padEnd(5)} ${s.peakShareMB.toFixed(0).padStart(4)}`;
        };
        const v = (p?: { verdict: string }): string => (p ? p.verdict : '?').padEnd(6);
        const lines = [
          'workload vCPU RAM | paper A / Q / A+Q   | adaptive err ±sd peakMB | queue            | aq               | improved         | aq vs A, vs Q (paired) | aq<=paper | improved vs aq: error p95 SLO-min SLO-tasks GB·h',
        ];
        for (const r of res.rows) {
          const iv = r.paired.improvedVsAq
            ? Object.values(r.paired.improvedVsAq)
                .map((p) => p.verdict)
                .join(' ')
            : '';
          lines.push(
            `#${r.workload}       ${String(r.vcpus).padStart(4)} ${String(r.ramGB).padStart(3)} | ${r.paper.adaptive.toFixed(1).padStart(4)} / ${r.paper.queue.toFixed(1).padStart(4)} / ${r.paper.aq.toFixed(1).padStart(4)} | ${f(r.adaptive)} | ${f(r.queue)} | ${f(r.aq)} | ${f(r.improved)} | ${v(r.paired.aqVsAdaptive)} ${v(r.paired.aqVsQueue)}          | ${r.aqAtOrBelowPaper ? 'yes' : 'no '}       | ${iv}`,
          );
        }
        lines.push(
          `${res.runs} simulated hours in ${(wallMs / 1000).toFixed(1)} s; error = Σ over 1-min windows of max(0, mean R - 10 s); verdicts: paired over the same seeds, 'tie' = within 2 standard errors (docs/controller.md)`,
        );
        process.stdout.write(lines.join('\n') + '\n');
      },
    );

  modelOptions(sim
    .command('run')
    .description('one simulated run: response time and share size over time (Figs. 22-23)')
    .requiredOption('--workload <w>', '1, 2, or a CSV arrival trace file (header with a "time" column)')
    .option('--scheme <s>', `one of ${SCHEMES.join(', ')}`, DEFAULT_SCHEME)
    .option('--seed <n>', 'random seed', '1')
    .option('--vcpus <n>', 'guest vCPUs', '4')
    .option('--ram <gb>', 'guest RAM in GB', '16')
    .option('--duration <s>', 'simulated seconds (default: 3600, or the trace length + 60 s)')
    .option('--plot <file.svg>', 'write the time series as an SVG chart'))
    .option('--json', 'print JSON instead of text')
    .action(
      async (o: {
        workload: string;
        scheme: string;
        seed: string;
        vcpus: string;
        ram: string;
        duration?: string;
        plot?: string;
      } & ModelOpts) => {
        if (!(SCHEMES as readonly string[]).includes(o.scheme))
          throw new HylicsError(
            'HYLICS_ERR_INVALID_ARGUMENT',
            `--scheme must be one of ${SCHEMES.join(', ')}, got "${o.scheme}"`,
            { param: 'scheme', value: o.scheme },
          );
        let workload: Parameters<typeof runScenario>[0]['workload'];
        if (o.workload === '1' || o.workload === '2') workload = Number(o.workload) as 1 | 2;
        else {
          let text: string;
          try {
            text = readFileSync(o.workload, 'utf8');
          } catch (e) {
            throw new HylicsError(
              'HYLICS_ERR_INVALID_ARGUMENT',
              `--workload: cannot read trace file ${o.workload}: ${(e as Error).message}`,
              { param: 'workload', value: o.workload },
            );
          }
          workload = { kind: 'trace', arrivals: parseArrivalTrace(text) };
        }
        const opts: Parameters<typeof runScenario>[0] = {
          workload,
          scheme: o.scheme as Scheme,
          seed: int('seed', o.seed, 0, 2 ** 31),
          vcpus: int('vcpus', o.vcpus, 1, 1024),
          ramGB: int('ram', o.ram, 1, 65536),
          service: serviceOptions(o),
          ...readingOptions(o),
        };
        if (o.duration !== undefined) opts.durationS = int('duration', o.duration, 1, 30 * 86400);
        const t0 = process.hrtime.bigint();
        const r = runScenario(opts);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (o.plot) writeFileSync(o.plot, await renderSvg(scenarioPlot(r, `workload ${o.workload}, ${o.scheme}`)));
        if (o.json) return printJson({ ...r, wallMs: ms });
        const m = r.metrics;
        process.stdout.write(
          [
            `scheme ${o.scheme}, workload ${o.workload}, ${opts.vcpus} vCPU ${opts.ramGB} GB, seed ${opts.seed}: ${m.tasks} tasks in ${r.config.durationS} s (wall time ${ms.toFixed(1)} ms, including the E[X|m] calibration)`,
            `aggregated error ${m.error.toFixed(1)} s  (alternatives: Σ|R-τ| ${m.errorAbsSum.toFixed(1)} s, actionable ${m.errorActionable.toFixed(1)} s, per-interval |R-τ| ${m.errorTrackInterval.toFixed(1)} s, per-interval excess ${m.errorPerInterval.toFixed(1)} s, mean |R-τ| ${m.errorMeanAbs.toFixed(2)} s, RMS ${m.errorRms.toFixed(2)} s, per-task ${m.errorPerTask.toFixed(3)} s)`,
            `response time mean ${m.meanR.toFixed(2)} s, p50 ${m.p50R.toFixed(2)}, p95 ${m.p95R.toFixed(2)}, p99 ${m.p99R.toFixed(2)}; over SLO: ${(100 * m.sloWindowFraction).toFixed(1)} % of minutes, ${(100 * m.sloTaskFraction).toFixed(1)} % of tasks`,
            `share size peak ${m.peakSizeMiB.toFixed(0)} MiB, mean ${m.meanSizeMiB.toFixed(0)} MiB, used peak ${m.peakUsedMiB.toFixed(0)} MiB; ${m.gbHours.toFixed(3)} GB·h reserved, ${m.gbHoursUsed.toFixed(3)} GB·h used`,
            `actuations ${m.actuations} of ${m.decisions} decisions; settling ${m.settlingS === null ? 'n/a (no load change)' : `${m.settlingS.toFixed(0)} s`}; memory-tier hits ${(100 * m.memHitFraction).toFixed(1)} %`,
          ].join('\n') + '\n',
        );
        if (o.plot) process.stdout.write(`plot written to ${o.plot}\n`);
      },
    );
}
