// Arrival processes of the simulator: the paper's workload #1 (Poisson, mean inter-arrival 8 s) and #2 (mean
// alternating between 8 s and 4 s), piecewise-constant "step" loads, a two-state Markov-modulated "bursty" load,
// and replayed CSV traces (parsed here from text; reading the file is the CLI's job).
import { HylicsError } from '../errors/index.js';
import type { Rng } from './rng.js';

export interface TraceArrival { time: number; segment?: number }

export type WorkloadSpec =
  | { kind: 'poisson'; meanInterarrival: number }
  /** Piecewise-constant Poisson: phase i lasts phases[i].durationS with its mean; the list repeats if `repeat`. */
  | { kind: 'piecewise'; phases: { durationS: number; meanInterarrival: number }[]; repeat?: boolean }
  /** Two-state MMPP: calm mean / burst mean inter-arrival, exponential sojourns with the given means. */
  | { kind: 'bursty'; calmMean: number; burstMean: number; calmS: number; burstS: number }
  /** Per-arrival alternation: the i-th inter-arrival gap is exponential with mean means[i mod means.length]. */
  | { kind: 'alternating'; means: number[] }
  | { kind: 'trace'; arrivals: TraceArrival[] };

/**
 * The paper's workloads: #1 Poisson(8 s); #2 alternates mean 8 s and 4 s every `phaseS` seconds (the paper gives no
 * period; 600 s = 3 cycles per hour was the first reading), or per arrival when `phaseS` is 0.
 */
export function paperWorkload(n: 1 | 2, phaseS = 600): WorkloadSpec {
  if (n === 1) return { kind: 'poisson', meanInterarrival: 8 };
  if (phaseS === 0) return { kind: 'alternating', means: [8, 4] };
  return { kind: 'piecewise', phases: [{ durationS: phaseS, meanInterarrival: 8 }, { durationS: phaseS, meanInterarrival: 4 }], repeat: true };
}

/** A step load: mean `before` until `atS`, then `after`. */
export function stepWorkload(before: number, after: number, atS: number): WorkloadSpec {
  return { kind: 'piecewise', phases: [{ durationS: atS, meanInterarrival: before }, { durationS: 1e12, meanInterarrival: after }] };
}

const bad = (msg: string, details?: Record<string, unknown>): never => {
  throw new HylicsError('HYLICS_ERR_SIM_INVALID_CONFIG', msg, details);
};
const pos = (name: string, v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : bad(`workload ${name} must be a finite number > 0, got ${String(v)}`, { param: name }));

export function validateWorkload(w: WorkloadSpec): WorkloadSpec {
  if (typeof w !== 'object' || w === null) return bad('workload must be an object');
  switch (w.kind) {
    case 'poisson': pos('meanInterarrival', w.meanInterarrival); break;
    case 'piecewise':
      if (!Array.isArray(w.phases) || w.phases.length === 0) bad('workload phases must be a non-empty list');
      w.phases.forEach((p, i) => { pos(`phases[${i}].durationS`, p.durationS); pos(`phases[${i}].meanInterarrival`, p.meanInterarrival); });
      break;
    case 'bursty': pos('calmMean', w.calmMean); pos('burstMean', w.burstMean); pos('calmS', w.calmS); pos('burstS', w.burstS); break;
    case 'alternating':
      if (!Array.isArray(w.means) || w.means.length === 0) bad('workload means must be a non-empty list');
      w.means.forEach((m, i) => pos(`means[${i}]`, m));
      break;
    case 'trace': {
      if (!Array.isArray(w.arrivals)) bad('trace arrivals must be a list');
      let last = 0;
      w.arrivals.forEach((a, i) => {
        if (!(Number.isFinite(a.time) && a.time >= last)) bad(`trace arrival ${i}: time must be finite, >= 0 and non-decreasing, got ${a.time}`, { index: i });
        if (a.segment !== undefined && !(Number.isInteger(a.segment) && a.segment >= 0)) bad(`trace arrival ${i}: segment must be an integer >= 0`, { index: i });
        last = a.time;
      });
      break;
    }
    default: bad(`unknown workload kind ${String((w as { kind: unknown }).kind)}`);
  }
  return w;
}

/**
 * Times (s) at which the offered load changes (phase boundaries) up to `until`: settling time is measured from them.
 */
export function loadChangeTimes(w: WorkloadSpec, until: number): number[] {
  if (w.kind !== 'piecewise') return [];
  const out: number[] = [];
  let t = 0;
  for (let cycle = 0; t < until; cycle++) {
    for (const p of w.phases) {
      t += p.durationS;
      if (t < until) out.push(t); else break;
    }
    if (!w.repeat) break;
    if (cycle > 1e6) break;
  }
  return out;
}

/** Stateful arrival generator: next() gives the next arrival time (and a segment when the trace names one). */
export class ArrivalGenerator {
  private t = 0;
  private idx = 0;
  private phase = 0;
  private phaseEnd: number;
  private burst = false;
  private stateEnd = 0;

  constructor(private readonly w: WorkloadSpec, private readonly rng: Rng) {
    validateWorkload(w);
    this.phaseEnd = w.kind === 'piecewise' ? w.phases[0]!.durationS : Infinity;
    if (w.kind === 'bursty') this.stateEnd = rng.exponential(w.calmS);
  }

  next(): TraceArrival | null {
    const w = this.w;
    switch (w.kind) {
      case 'poisson':
        this.t += this.rng.exponential(w.meanInterarrival);
        return { time: this.t };
      case 'piecewise':
        for (;;) {
          const p = w.phases[this.phase];
          if (p === undefined) return null;
          const cand = this.t + this.rng.exponential(p.meanInterarrival);
          if (cand < this.phaseEnd) { this.t = cand; return { time: cand }; }
          // memoryless: restart the draw at the boundary with the next phase's rate
          this.t = this.phaseEnd;
          this.phase++;
          if (this.phase >= w.phases.length) { if (!w.repeat) return null; this.phase = 0; }
          this.phaseEnd += w.phases[this.phase]!.durationS;
        }
      case 'bursty':
        for (;;) {
          const cand = this.t + this.rng.exponential(this.burst ? w.burstMean : w.calmMean);
          if (cand < this.stateEnd) { this.t = cand; return { time: cand }; }
          this.t = this.stateEnd;
          this.burst = !this.burst;
          this.stateEnd += this.rng.exponential(this.burst ? w.burstS : w.calmS);
        }
      case 'alternating':
        this.t += this.rng.exponential(w.means[this.idx++ % w.means.length]!);
        return { time: this.t };
      case 'trace': {
        const a = w.arrivals[this.idx++];
        return a === undefined ? null : a;
      }
    }
  }
}

/** Materialise `durationS` seconds of a workload as a trace (for writing example CSV files). */
export function generateTrace(w: WorkloadSpec, durationS: number, rng: Rng): TraceArrival[] {
  const g = new ArrivalGenerator(w, rng);
  const out: TraceArrival[] = [];
  for (let a = g.next(); a !== null && a.time < durationS; a = g.next())
    out.push({ time: Math.round(a.time * 1000) / 1000 });
  return out;
}

/**
 * Parse an arrival trace in CSV: a header line naming a `time` column (seconds since start) and optionally a
 * `segment` column (catalogue index), then one arrival per line. Blank lines and lines starting with # are
 * skipped. Times must be finite, >= 0 and non-decreasing.
 */
export function parseArrivalTrace(text: string): TraceArrival[] {
  const badTrace = (line: number, msg: string): never => {
    throw new HylicsError('HYLICS_ERR_SIM_INVALID_TRACE', `trace line ${line}: ${msg}`, { line });
  };
  if (typeof text !== 'string') return badTrace(0, 'not text');
  const lines = text.split(/\r?\n/);
  let header: string[] | null = null;
  let timeCol = -1;
  let segCol = -1;
  const out: TraceArrival[] = [];
  let last = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const cells = raw.split(',').map((c) => c.trim());
    if (header === null) {
      header = cells.map((c) => c.toLowerCase().replace(/^"|"$/g, ''));
      timeCol = header.findIndex((h) => h === 'time' || h === 'time_s' || h === 't');
      segCol = header.findIndex((h) => h === 'segment' || h === 'seg');
      if (timeCol < 0) badTrace(i + 1, `the header must name a "time" column (seconds), got "${raw.slice(0, 80)}"`);
      continue;
    }
    if (cells.length !== header.length) badTrace(i + 1, `expected ${header.length} columns, got ${cells.length}`);
    const tCell = cells[timeCol]!;
    const t = /^[+]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(tCell) ? Number(tCell) : NaN;
    if (!Number.isFinite(t) || t < 0) badTrace(i + 1, `time "${tCell}" is not a finite number >= 0`);
    if (t < last) badTrace(i + 1, `time ${t} goes backwards (previous ${last})`);
    last = t;
    const a: TraceArrival = { time: t };
    if (segCol >= 0) {
      const sCell = cells[segCol]!;
      if (sCell !== '') {
        if (!/^\d+$/.test(sCell) || Number(sCell) > 1e9) badTrace(i + 1, `segment "${sCell}" is not an integer >= 0`);
        a.segment = Number(sCell);
      }
    }
    out.push(a);
  }
  if (header === null) badTrace(1, 'empty trace: expected a header line with a "time" column');
  if (out.length === 0) badTrace(lines.length, 'the trace has a header but no arrivals');
  return out;
}

export function formatArrivalTrace(arrivals: readonly TraceArrival[]): string {
  const withSeg = arrivals.some((a) => a.segment !== undefined);
  return (withSeg ? 'time,segment\n' : 'time\n') + arrivals.map((a) => (withSeg ? `${a.time},${a.segment ?? ''}` : `${a.time}`)).join('\n') + '\n';
}
