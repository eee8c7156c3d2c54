// bench/sim-table3: the paper's Table 3 in the simulator (12 rows x every scheme, mean ± sd over seeds, beside
// the published values), the improved scheme against aq on the paper's and on harder (step, bursty) workloads,
// and the simulator's speed (wall time per simulated hour per scheme). Writes bench/results/sim-table3.{json,svg}.
//   npx tsx bench/sim-table3.ts [--seeds 20]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderSvg, type VegaLiteSpec } from '../src/core/plot.js';
import type { Scheme } from '../src/core/control/controller.js';
import { ALL_SCHEMES, HARD_WORKLOADS, evalBounds, runComparison, runScenario, runTable3, beats, type SchemeSummary, type MetricStats } from '../src/core/sim/evaluate.js';
import { calibrateServiceModel, schemeConfig } from '../src/core/sim/paper.js';
import { defaultSimConfig, simulate } from '../src/core/sim/simulator.js';
import { paperWorkload } from '../src/core/sim/workload.js';
import { scenarioPlot } from '../src/cli/commands/sim.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SEEDS = arg('seeds', 20);
const log = (m: string): void => { process.stderr.write(`[sim-table3] ${m}\n`); };

// 1. speed: one simulated hour of one scheme (workload #2, 4 vCPU), median of 30 runs after warm-up
log('speed: wall time per simulated hour (workload #2, 4 vCPU, 16 GB; E[X|m] calibrated once beforehand)');
const speed: Record<string, { medianMs: number; p90Ms: number; maxMs: number }> = {};
const tc = process.hrtime.bigint();
const cal = calibrateServiceModel({ vcpus: 4, ramGB: 16 });
const calibrationMs = Number(process.hrtime.bigint() - tc) / 1e6;
log(`  calibration of E[X|m] (11 sizes x 4 simulated hours): ${calibrationMs.toFixed(1)} ms`);
for (const scheme of ALL_SCHEMES) {
  const cfg = (seed: number) => defaultSimConfig({ seed, vcpus: 4, ramGB: 16, workload: paperWorkload(2), controller: schemeConfig(scheme, cal.model, evalBounds(2)), record: true });
  for (let i = 0; i < 5; i++) simulate(cfg(1000 + i));
  const ts: number[] = [];
  for (let i = 0; i < 40; i++) {
    const c = cfg(2000 + i);
    const t0 = process.hrtime.bigint();
    simulate(c);
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ts.sort((a, b) => a - b);
  speed[scheme] = { medianMs: ts[20]!, p90Ms: ts[36]!, maxMs: ts[39]! };
  log(`  ${scheme}: median ${ts[20]!.toFixed(2)} ms, p90 ${ts[36]!.toFixed(2)} ms, max ${ts[39]!.toFixed(2)} ms per simulated hour (with time series recorded)`);
}

// 2. Table 3
log(`Table 3: 12 rows x ${ALL_SCHEMES.length} schemes x ${SEEDS} seeds`);
const t0 = Date.now();
const table = runTable3({ seeds: SEEDS, onProgress: (d, n, l) => { if (d % 7 === 0) log(`  [${d}/${n}] ${l}`); } });
const tableMs = Date.now() - t0;
const S = (row: Record<string, unknown>, s: string): SchemeSummary => row[s] as SchemeSummary;
const lines: string[] = [];
let ordered = 0, aqLe = 0, aqPeak = 0;
const sums: Record<string, { error: number; p95: number; sloW: number; sloT: number; gbh: number }> = {};
for (const r of table.rows) {
  if (r.ordered) ordered++;
  if (r.aqAtOrBelowPaper) aqLe++;
  if (r.aqPeakOk) aqPeak++;
  for (const s of ALL_SCHEMES) {
    const m = S(r, s).metrics;
    const acc = (sums[s] ??= { error: 0, p95: 0, sloW: 0, sloT: 0, gbh: 0 });
    acc.error += m.error.mean; acc.p95 += m.p95R.mean / 12; acc.sloW += m.sloWindowFraction.mean / 12; acc.sloT += m.sloTaskFraction.mean / 12; acc.gbh += m.gbHours.mean;
  }
  const f = (s: string): string => `${S(r, s).error.toFixed(1)}±${S(r, s).errorStd.toFixed(1)} (${S(r, s).peakShareMB.toFixed(0)} MB)`;
  lines.push(`#${r.workload} ${r.vcpus} vCPU ${String(r.ramGB).padStart(2)} GB | paper ${r.paper.adaptive}/${r.paper.queue}/${r.paper.aq} | adaptive ${f('adaptive')} | queue ${f('queue')} | aq ${f('aq')} | improved ${f('improved')} | order ${r.ordered ? 'yes' : 'no'} aq<=paper ${r.aqAtOrBelowPaper ? 'yes' : 'no'} | improved beats aq: ${Object.entries(r.improvedBeatsAq).filter(([, v]) => v).map(([k]) => k).join(',')}`);
}
for (const l of lines) log(l);
log(`ordering aq < adaptive, queue: ${ordered}/12 rows; aq <= paper A+Q: ${aqLe}/12; aq peak <= 245/388 MB: ${aqPeak}/12; ${table.runs} simulated hours in ${(tableMs / 1000).toFixed(1)} s`);
for (const [s, v] of Object.entries(sums)) log(`  totals ${s.padEnd(9)} error Σ ${v.error.toFixed(1)} s, mean p95 ${v.p95.toFixed(2)} s, SLO minutes ${(100 * v.sloW).toFixed(2)} %, SLO tasks ${(100 * v.sloT).toFixed(2)} %, memory Σ ${v.gbh.toFixed(3)} GB·h`);

// 3. harder workloads
log('harder workloads: step (8 s -> 4 s -> 8 s, 20 min each) and bursty (MMPP 9 s / 2.5 s, 300 s / 60 s)');
const hard = [];
for (const [name, w] of Object.entries(HARD_WORKLOADS)) {
  for (const vcpus of [4, 8]) {
    const c = runComparison(name, w, { vcpus, ramGB: 16, seeds: SEEDS });
    const imp = c.schemes.improved!, aq = c.schemes.aq!;
    const ratio = (k: keyof MetricStats): number => (aq[k].mean === 0 ? (imp[k].mean === 0 ? 1 : Infinity) : imp[k].mean / aq[k].mean);
    const entry = { workload: name, vcpus, ramGB: 16, beats: beats(imp, aq), improvedOverAq: { error: ratio('error'), p95: ratio('p95R'), sloWindows: ratio('sloWindowFraction'), sloTasks: ratio('sloTaskFraction'), gbHours: ratio('gbHours') }, schemes: Object.fromEntries(Object.entries(c.schemes).map(([s, m]) => [s, { error: m.error.mean, errorStd: m.error.std, p95: m.p95R.mean, sloWindows: m.sloWindowFraction.mean, sloTasks: m.sloTaskFraction.mean, gbHours: m.gbHours.mean, peakMB: m.peakSizeMiB.max, actuations: m.actuations.mean }])) };
    hard.push(entry);
    log(`  ${name} ${vcpus} vCPU: improved/aq error ${entry.improvedOverAq.error.toFixed(2)}, p95 ${entry.improvedOverAq.p95.toFixed(2)}, SLO minutes ${entry.improvedOverAq.sloWindows.toFixed(2)}, SLO tasks ${entry.improvedOverAq.sloTasks.toFixed(2)}, GB·h ${entry.improvedOverAq.gbHours.toFixed(2)} (aq error ${aq.error.mean.toFixed(1)} s, improved ${imp.error.mean.toFixed(1)} s)`);
  }
}

// 4. results
const out = {
  generatedBy: 'npx tsx bench/sim-table3.ts',
  seeds: SEEDS,
  errorDefinition: 'sum over the 60 fixed one-minute windows of the hour of max(0, mean response time of the tasks completed in the window - 10 s) (docs/controller.md)',
  speed: { calibrationMs, perSimulatedHour: speed },
  table3: { rows: table.rows, wallMs: tableMs, simulatedHours: table.runs, ordered, aqAtOrBelowPaper: aqLe, aqPeakOk: aqPeak, totals: sums },
  hard,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'sim-table3.json'), JSON.stringify(out, null, 2) + '\n');

const bars: { row: string; scheme: string; value: number }[] = [];
for (const r of table.rows) {
  const row = `#${r.workload} ${r.vcpus}v ${r.ramGB}G`;
  bars.push({ row, scheme: 'paper A+Q', value: r.paper.aq });
  for (const s of ['adaptive', 'queue', 'aq', 'improved'] as Scheme[]) bars.push({ row, scheme: s, value: S(r, s).error });
}
const hardBars: { row: string; metric: string; value: number }[] = [];
for (const h of hard) for (const [k, v] of Object.entries(h.improvedOverAq)) hardBars.push({ row: `${h.workload} ${h.vcpus}v`, metric: k, value: Number.isFinite(v) ? v : 0 });
const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  vconcat: [
    {
      title: `Table 3 in the simulator: aggregated response-time error (s), mean over ${SEEDS} seeds (log scale)`,
      data: { values: bars.map((b) => ({ ...b, value: Math.max(0.01, b.value) })) },
      mark: 'bar',
      width: { step: 9 },
      height: 240,
      encoding: {
        column: { field: 'row', type: 'nominal', title: null, sort: null, header: { labelAngle: -45, labelAlign: 'right' } },
        x: { field: 'scheme', type: 'nominal', axis: null, sort: ['paper A+Q', 'adaptive', 'queue', 'aq', 'improved'] },
        y: { field: 'value', type: 'quantitative', title: 'error (s)', scale: { type: 'log' } },
        color: { field: 'scheme', type: 'nominal', title: null, sort: ['paper A+Q', 'adaptive', 'queue', 'aq', 'improved'] },
      },
    },
    {
      title: 'improved / aq on harder workloads (below 1 = improved better)',
      data: { values: hardBars },
      mark: 'bar',
      width: { step: 12 },
      height: 200,
      encoding: {
        column: { field: 'row', type: 'nominal', title: null },
        x: { field: 'metric', type: 'nominal', axis: null },
        y: { field: 'value', type: 'quantitative', title: 'ratio improved / aq' },
        color: { field: 'metric', type: 'nominal', title: null },
      },
    },
  ],
} as unknown as VegaLiteSpec;
writeFileSync(join(here, 'results', 'sim-table3.svg'), await renderSvg(spec));
for (const w of [1, 2] as const) {
  const r = runScenario({ workload: w, scheme: 'aq', seed: 1 });
  const ri = runScenario({ workload: w, scheme: 'improved', seed: 1 });
  const a = scenarioPlot(r, `workload #${w}, aq (seed 1)`) as unknown as { vconcat: unknown[] };
  const b = scenarioPlot(ri, `workload #${w}, improved (seed 1)`) as unknown as { vconcat: unknown[] };
  writeFileSync(join(here, 'results', `sim-fig${21 + w}.svg`), await renderSvg({ $schema: 'https://vega.github.io/schema/vega-lite/v5.json', hconcat: [{ vconcat: a.vconcat }, { vconcat: b.vconcat }] } as unknown as VegaLiteSpec));
}
log(`wrote bench/results/sim-table3.json, sim-table3.svg, sim-fig22.svg, sim-fig23.svg`);
