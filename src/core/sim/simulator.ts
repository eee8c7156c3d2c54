// Discrete-event simulator of one guest running the paper's §6.4 experiment: transcoding tasks on 10 s video
// segments arrive (a workload), each reads its segment from the share (memory tier) or from the guest's disk
// tier, and runs on the guest's vCPUs, which are shared processor-sharing style. A controller (or a fixed size)
// sets the share size at every control interval. Pure and seeded: same config + seed = same result.
import { HylicsError } from '../errors/index.js';
import { ShareController, type ControllerConfig, type Decision } from '../control/controller.js';
import { Rng, ZipfSampler } from './rng.js';
import { ArrivalGenerator, loadChangeTimes, validateWorkload, type WorkloadSpec } from './workload.js';

const MiB = 1024 * 1024;

export interface CatalogueConfig {
  /** Number of distinct segments. */
  segments: number;
  /** Zipf exponent of segment popularity (0 = uniform). */
  zipfAlpha: number;
  /** Mean segment size (MiB) and log-normal spread. */
  sizeMeanMiB: number;
  sizeSigma: number;
}

export interface ServiceConfig {
  /** Mean time of a task alone on the guest, segment in the share / on the disk tier (s). Paper: 3.32 / 4.02. */
  memS: number;
  diskS: number;
  /** Log-normal spread of a segment's content complexity (fixed per segment) and of each run. */
  complexitySigma: number;
  noiseSigma: number;
  /**
   * Amdahl serial fraction of one transcoding task. A task alone uses all the guest's vCPUs (threads=auto) at
   * speedup S(c) = 1/(s + (1 - s)/c); n concurrent tasks each get c/n vCPUs (S(k) = k below one vCPU).
   */
  serialFraction: number;
  /**
   * Most vCPUs one task can use (its threads' useful parallelism); 0 = all the guest's vCPUs (default). With a cap
   * p < vCPUs a task alone runs at S(p), and up to vCPUs/p tasks run side by side at full speed.
   */
  maxTaskVcpus?: number;
  /**
   * Self-interference of in-guest streaming: a segment that is not in the share is also streamed by the guest
   * itself (not offloaded), which slows every running task by 1/(1 + γ · d · 4/vCPUs), d = running disk-tier tasks.
   */
  streamInterference: number;
  /** Fraction of the mem/disk gap a guest page-cache hit still costs. */
  pageCacheCost: number;
}

export interface SimConfig {
  seed: number;
  durationS: number;
  vcpus: number;
  ramGB: number;
  workload: WorkloadSpec;
  catalogue: CatalogueConfig;
  service: ServiceConfig;
  /** A segment not requested for this long is evicted from the share to the disk tier. Paper: 60 s. */
  evictAfterS: number;
  /** SLO on the response time (s). Paper: 10. */
  sloS: number;
  /** Fixed windows (s) over which the aggregated error and window metrics are computed. */
  windowS: number;
  /** The controller in the loop, or null for a fixed share of fixedSizeBytes. */
  controller: ControllerConfig | null;
  fixedSizeBytes?: number;
  /** Record the per-decision and per-window time series (for plots). Default true. */
  record?: boolean;
}

export const DEFAULT_CATALOGUE: CatalogueConfig = { segments: 1000, zipfAlpha: 0.9, sizeMeanMiB: 10, sizeSigma: 0.25 };
export const DEFAULT_SERVICE: ServiceConfig = { memS: 3.32, diskS: 4.02, complexitySigma: 0.15, noiseSigma: 0.08, serialFraction: 0.1, streamInterference: 0, pageCacheCost: 0.3 };

export function defaultSimConfig(over: Partial<SimConfig> = {}): SimConfig {
  return {
    seed: 1,
    durationS: 3600,
    vcpus: 4,
    ramGB: 16,
    workload: { kind: 'poisson', meanInterarrival: 8 },
    catalogue: DEFAULT_CATALOGUE,
    service: DEFAULT_SERVICE,
    evictAfterS: 60,
    sloS: 10,
    windowS: 60,
    controller: null,
    fixedSizeBytes: 256 * MiB,
    ...over,
  };
}

/** Fraction of disk-tier reads that the guest's own page cache serves (grows with RAM; see docs/controller.md). */
export function pageCacheHitFraction(ramGB: number): number {
  return Math.min(0.5, Math.max(0, 0.05 * Math.log2(ramGB / 4)));
}

/**
 * Per-task speed (relative to running alone) when n tasks share the guest's c vCPUs (processor sharing): each
 * gets c/n vCPUs and a task's speed on k vCPUs is Amdahl's S(k) = 1/(s + (1 - s)/k) (k·S(1) below one vCPU).
 * With s = 0 this is exactly M/G/1-PS (1/n); larger s lets concurrent tasks use the vCPUs better.
 */
export function psRate(n: number, vcpus: number, serialFraction: number, maxTaskVcpus = 0): number {
  if (n <= 1) return 1;
  const p = maxTaskVcpus > 0 ? Math.min(maxTaskVcpus, vcpus) : vcpus;
  const S = (k: number): number => (k >= 1 ? 1 / (serialFraction + (1 - serialFraction) / k) : k);
  return S(Math.min(p, vcpus / n)) / S(p);
}

export interface DecisionPoint { t: number; sizeMiB: number; usedMiB: number; meanR: number | null; reason: string }
export interface WindowPoint { t: number; meanR: number | null; tasks: number; usedMiB: number; sizeMiB: number; arrivals: number }

export interface SimMetrics {
  tasks: number;
  /** Primary: Σ over fixed windows of max(0, mean R of the window - SLO) (s). */
  error: number;
  /** Alternatives (docs/controller.md): mean |R_w - τ| over windows, RMS of (R_w - τ), Σ excess over control intervals, mean per-task excess. */
  errorMeanAbs: number;
  errorRms: number;
  errorPerInterval: number;
  /** Two-sided: Σ over windows of |mean R - SLO| (the literal "as close to τ as possible"). */
  errorAbsSum: number;
  /**
   * Σ over windows of |mean R - SLO| counted only where the controller could have reduced it: above the SLO
   * (more memory), or below it while the share was above its floor (it could have released memory).
   */
  errorActionable: number;
  /** Σ over the controller's own intervals of |R(k) - τ| (its tracking error, y(k) of Eq. 3). */
  errorTrackInterval: number;
  errorPerTask: number;
  meanR: number;
  p50R: number;
  p95R: number;
  p99R: number;
  /** Fraction of windows whose mean R exceeds the SLO, and of tasks whose R does. */
  sloWindowFraction: number;
  sloTaskFraction: number;
  peakSizeMiB: number;
  meanSizeMiB: number;
  peakUsedMiB: number;
  meanUsedMiB: number;
  /** Share size integrated over time (GB·h, GB = 1024 MiB): what the host reserves. */
  gbHours: number;
  gbHoursUsed: number;
  /** Mean time (s) after each load change until the size stays within ±max(10 %, 8 MiB) of its phase-final value. */
  settlingS: number | null;
  actuations: number;
  decisions: number;
  memHitFraction: number;
  fullFallbackFraction: number;
  meanServiceS: number;
}

export interface SimResult {
  config: { seed: number; durationS: number; vcpus: number; ramGB: number; scheme: string };
  metrics: SimMetrics;
  decisions: DecisionPoint[];
  windows: WindowPoint[];
}

function checkConfig(c: SimConfig): void {
  const bad = (name: string, v: unknown, range: string): never => {
    throw new HylicsError('HYLICS_ERR_SIM_INVALID_CONFIG', `${name} must be ${range}, got ${String(v)}`, { param: name });
  };
  const fin = (name: string, v: unknown, min: number, max: number, excl = true): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || (excl ? v <= min : v < min) || v > max) bad(name, v, `a number ${excl ? '>' : '>='} ${min} and <= ${max}`);
  };
  fin('seed', c.seed, -1, 2 ** 32, false);
  fin('durationS', c.durationS, 0, 30 * 86400);
  fin('vcpus', c.vcpus, 0, 1024);
  fin('ramGB', c.ramGB, 0, 65536);
  fin('catalogue.segments', c.catalogue.segments, 0, 1e7);
  if (!Number.isInteger(c.catalogue.segments)) bad('catalogue.segments', c.catalogue.segments, 'an integer');
  fin('catalogue.zipfAlpha', c.catalogue.zipfAlpha, 0, 5, false);
  fin('catalogue.sizeMeanMiB', c.catalogue.sizeMeanMiB, 0, 1e6);
  fin('catalogue.sizeSigma', c.catalogue.sizeSigma, 0, 3, false);
  fin('service.memS', c.service.memS, 0, 1e5);
  fin('service.diskS', c.service.diskS, 0, 1e5);
  fin('service.complexitySigma', c.service.complexitySigma, 0, 3, false);
  fin('service.noiseSigma', c.service.noiseSigma, 0, 3, false);
  fin('service.serialFraction', c.service.serialFraction, 0, 1, false);
  fin('service.streamInterference', c.service.streamInterference, 0, 100, false);
  fin('service.pageCacheCost', c.service.pageCacheCost, 0, 1, false);
  if (c.service.maxTaskVcpus !== undefined) fin('service.maxTaskVcpus', c.service.maxTaskVcpus, 0, 1024, false);
  fin('evictAfterS', c.evictAfterS, 0, 1e7);
  fin('sloS', c.sloS, 0, 1e6);
  fin('windowS', c.windowS, 0, 1e6);
  if (c.controller === null) fin('fixedSizeBytes', c.fixedSizeBytes ?? NaN, 0, 2 ** 53, false);
  validateWorkload(c.workload);
}

/** Min-heap of (key, id) on parallel arrays: the processor-sharing finish order in virtual time. */
class Heap {
  private keys: number[] = [];
  private ids: number[] = [];
  get size(): number { return this.keys.length; }
  get minKey(): number { return this.keys[0]!; }
  push(k: number, id: number): void {
    const keys = this.keys, ids = this.ids;
    let i = keys.length;
    keys.push(k); ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p]! <= k) break;
      keys[i] = keys[p]!; ids[i] = ids[p]!; i = p;
    }
    keys[i] = k; ids[i] = id;
  }
  pop(): number {
    const keys = this.keys, ids = this.ids;
    const top = ids[0]!;
    const k = keys.pop()!, id = ids.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && keys[r]! < keys[l]! ? r : l;
        if (keys[c]! >= k) break;
        keys[i] = keys[c]!; ids[i] = ids[c]!; i = c;
      }
      keys[i] = k; ids[i] = id;
    }
    return top;
  }
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Run one simulation. */
export function simulate(cfg: SimConfig): SimResult {
  checkConfig(cfg);
  const record = cfg.record ?? true;
  // common random numbers: arrivals, segment choices and per-task service draws come from separate streams and
  // every task makes the same draws whatever tier serves it, so two schemes run with the same seed see exactly
  // the same tasks (paired comparisons; the difference between schemes is the controller, not the dice)
  const rng = new Rng(cfg.seed);
  const segRng = new Rng(cfg.seed ^ 0x2545f491);
  const svcRng = new Rng(cfg.seed ^ 0x68e31da4);
  const catRng = new Rng(cfg.seed ^ 0x5bd1e995);
  const svc = cfg.service;
  const cat = cfg.catalogue;
  // catalogue: sizes and content complexity per segment (ranked by popularity, then shuffled ids do not matter)
  let nSeg = cat.segments;
  if (cfg.workload.kind === 'trace') for (const a of cfg.workload.arrivals) if (a.segment !== undefined && a.segment + 1 > nSeg) nSeg = a.segment + 1;
  const segSize = new Float64Array(nSeg);
  const segCx = new Float64Array(nSeg);
  for (let i = 0; i < nSeg; i++) {
    segSize[i] = catRng.lognormalMean(cat.sizeMeanMiB, cat.sizeSigma);
    segCx[i] = catRng.lognormalMean(1, svc.complexitySigma);
  }
  const zipf = new ZipfSampler(cat.segments, cat.zipfAlpha);
  const inMem = new Uint8Array(nSeg);
  const lastReq = new Float64Array(nSeg).fill(-Infinity);
  const pins = new Int32Array(nSeg);
  const evQSeg: number[] = [];
  const evQT: number[] = [];
  let evHead = 0;
  let used = 0; // MiB
  const hitPC = pageCacheHitFraction(cfg.ramGB);
  const pcS = svc.memS + svc.pageCacheCost * (svc.diskS - svc.memS);

  // controller
  const ctl = cfg.controller ? new ShareController(cfg.controller) : null;
  let size = ctl ? ctl.sizeBytes / MiB : (cfg.fixedSizeBytes ?? 0) / MiB;
  let nextTick = ctl ? ctl.interval : Infinity;
  let lastTick = 0;

  // PS server state (virtual time: work each task has received since t = 0)
  const rateCache = new Float64Array(257);
  const cap = svc.maxTaskVcpus ?? 0;
  for (let n = 0; n <= 256; n++) rateCache[n] = psRate(n, cfg.vcpus, svc.serialFraction, cap);
  const gamma = (svc.streamInterference * 4) / cfg.vcpus;
  let nDisk = 0; // running tasks whose segment came from the disk tier (streamed by the guest itself)
  const rate = (n: number): number => (n <= 256 ? rateCache[n]! : psRate(n, cfg.vcpus, svc.serialFraction, cap)) / (1 + gamma * nDisk);
  const tDiskFlag: number[] = [];
  const heap = new Heap();
  let V = 0;
  let t = 0;
  const tArr: number[] = [];
  const tSeg: number[] = [];
  const tWork: number[] = [];
  const resp: number[] = [];

  // accumulators
  const nWin = Math.ceil(cfg.durationS / cfg.windowS);
  const winSum = new Float64Array(nWin);
  const winCnt = new Float64Array(nWin);
  const winArr = new Float64Array(nWin);
  const winUsed = new Float64Array(nWin);
  const winSize = new Float64Array(nWin);
  let ivSum = 0, ivCnt = 0, ivArr = 0, ivFull = 0;
  let errPerInterval = 0;
  let errTrackInterval = 0;
  const floorMiB = ctl ? cfg.controller!.minBytes / MiB : Infinity;
  let sizeInt = 0, usedInt = 0, peakSize = size, peakUsed = 0;
  let memHits = 0, fullFallbacks = 0, served = 0, workSum = 0;
  let actuations = 0, decisionsN = 0;
  const decisions: DecisionPoint[] = [];
  const sizeTimeline: { t: number; s: number }[] = [{ t: 0, s: size }];
  if (record) decisions.push({ t: 0, sizeMiB: size, usedMiB: 0, meanR: null, reason: 'initial' });

  const evict = (s: number): void => { inMem[s] = 0; used -= segSize[s]!; if (used < 1e-9) used = 0; };
  const sweep = (now: number): void => {
    const horizon = now - cfg.evictAfterS;
    while (evHead < evQSeg.length && evQT[evHead]! <= horizon) {
      const s = evQSeg[evHead]!;
      if (inMem[s] && lastReq[s] === evQT[evHead] && pins[s] === 0) evict(s);
      evHead++;
    }
    if (evHead > 4096 && evHead * 2 > evQSeg.length) { evQSeg.splice(0, evHead); evQT.splice(0, evHead); evHead = 0; }
  };
  // shrink below usage: move the least recently requested idle segments to the disk tier first
  const shrinkTo = (cap: number): void => {
    for (let i = evHead; i < evQSeg.length && used > cap; i++) {
      const s = evQSeg[i]!;
      if (inMem[s] && lastReq[s] === evQT[i] && pins[s] === 0) evict(s);
    }
  };

  const gen = new ArrivalGenerator(cfg.workload, rng);
  let nextArr = gen.next();
  const end = cfg.durationS;

  for (;;) {
    const n = heap.size;
    const r = rate(n);
    const tDep = n > 0 ? Math.max(t, t + (heap.minKey - V) / r) : Infinity;
    const tA = nextArr !== null ? nextArr.time : Infinity;
    let tNext = Math.min(tDep, tA, nextTick);
    if (tNext > end) tNext = end;
    // advance
    const dt = tNext - t;
    if (dt > 0) {
      V += r * dt;
      sizeInt += size * dt;
      usedInt += used * dt;
      const w = Math.min(nWin - 1, Math.floor(t / cfg.windowS));
      winUsed[w] += used * dt;
      winSize[w] += size * dt;
      t = tNext;
    }
    if (t >= end && !(tDep <= end && tDep === t)) break;
    if (tDep === t && n > 0) {
      const id = heap.pop();
      const R = t - tArr[id]!;
      resp.push(R);
      const s = tSeg[id]!;
      if (tDiskFlag[id]) nDisk--;
      pins[s]--;
      if (pins[s] === 0 && inMem[s] && t - lastReq[s]! >= cfg.evictAfterS) evict(s);
      const w = Math.min(nWin - 1, Math.floor(t / cfg.windowS));
      winSum[w] += R; winCnt[w]++;
      ivSum += R; ivCnt++;
      continue;
    }
    if (tA === t && nextArr !== null) {
      sweep(t);
      const s = nextArr.segment !== undefined ? nextArr.segment : zipf.sample(segRng);
      let base: number;
      let disk = 0;
      const pcCoin = svcRng.next();
      const noise = svcRng.lognormalMean(1, svc.noiseSigma);
      if (inMem[s]) { base = svc.memS; memHits++; }
      else if (used + segSize[s]! <= size) { inMem[s] = 1; used += segSize[s]!; base = svc.memS; memHits++; }
      else {
        fullFallbacks++; ivFull++; disk = 1; nDisk++;
        base = pcCoin < hitPC ? pcS : svc.diskS;
      }
      if (inMem[s]) { lastReq[s] = t; evQSeg.push(s); evQT.push(t); if (used > peakUsed) peakUsed = used; }
      pins[s]++;
      const work = base * segCx[s]! * noise;
      workSum += work; served++;
      const id = tArr.length;
      tArr.push(t); tSeg.push(s); tWork.push(work); tDiskFlag.push(disk);
      heap.push(V + work, id);
      const w = Math.min(nWin - 1, Math.floor(t / cfg.windowS));
      winArr[w]++;
      ivArr++;
      nextArr = gen.next();
      continue;
    }
    if (nextTick === t && ctl) {
      sweep(t);
      const meanR = ivCnt > 0 ? ivSum / ivCnt : null;
      if (meanR !== null && meanR > cfg.sloS) errPerInterval += meanR - cfg.sloS;
      if (meanR !== null) errTrackInterval += Math.abs(meanR - cfg.sloS);
      const d: Decision = ctl.step({ time: t, interval: t - lastTick, meanResponseTime: meanR, completions: ivCnt, arrivals: ivArr, shareUsedBytes: used * MiB, shareSizeBytes: size * MiB, fullFallbacks: ivFull });
      decisionsN++;
      const newSize = d.sizeBytes / MiB;
      if (d.actuated) actuations++;
      if (newSize !== size) {
        size = newSize;
        if (used > size) shrinkTo(size);
        sizeTimeline.push({ t, s: size });
        if (size > peakSize) peakSize = size;
      }
      if (record) decisions.push({ t, sizeMiB: size, usedMiB: used, meanR, reason: d.reason });
      ivSum = 0; ivCnt = 0; ivArr = 0; ivFull = 0;
      lastTick = t;
      nextTick = t + d.nextIntervalS;
      continue;
    }
    if (t >= end) break;
  }
  // per-window time averages (events split at their start window: exact enough at second-scale events)
  for (let w = 0; w < nWin; w++) { winSize[w]! /= cfg.windowS; winUsed[w]! /= cfg.windowS; }

  const sorted = Float64Array.from(resp).sort();
  const nResp = sorted.length;
  let sumR = 0, excessTasks = 0, overTasks = 0;
  for (const R of resp) { sumR += R; if (R > cfg.sloS) { overTasks++; excessTasks += R - cfg.sloS; } }
  let err = 0, abs = 0, sq = 0, winsWith = 0, winsOver = 0, actionable = 0;
  const windows: WindowPoint[] = [];
  for (let w = 0; w < nWin; w++) {
    const m = winCnt[w]! > 0 ? winSum[w]! / winCnt[w]! : null;
    if (m !== null) {
      winsWith++;
      const e = m - cfg.sloS;
      if (e > 0) { err += e; winsOver++; actionable += e; }
      else if (winSize[w]! > floorMiB + 0.5) actionable -= e;
      abs += Math.abs(e); sq += e * e;
    }
    if (record) windows.push({ t: (w + 1) * cfg.windowS, meanR: m, tasks: winCnt[w]!, usedMiB: winUsed[w]!, sizeMiB: winSize[w]!, arrivals: winArr[w]! });
  }
  const metrics: SimMetrics = {
    tasks: nResp,
    error: err,
    errorMeanAbs: winsWith ? abs / winsWith : 0,
    errorRms: winsWith ? Math.sqrt(sq / winsWith) : 0,
    errorPerInterval: errPerInterval,
    errorAbsSum: abs,
    errorActionable: actionable,
    errorTrackInterval: errTrackInterval,
    errorPerTask: nResp ? excessTasks / nResp : 0,
    meanR: nResp ? sumR / nResp : 0,
    p50R: quantile(sorted, 0.5),
    p95R: quantile(sorted, 0.95),
    p99R: quantile(sorted, 0.99),
    sloWindowFraction: winsWith ? winsOver / winsWith : 0,
    sloTaskFraction: nResp ? overTasks / nResp : 0,
    peakSizeMiB: peakSize,
    meanSizeMiB: sizeInt / Math.max(1e-9, t),
    peakUsedMiB: peakUsed,
    meanUsedMiB: usedInt / Math.max(1e-9, t),
    gbHours: sizeInt / 1024 / 3600,
    gbHoursUsed: usedInt / 1024 / 3600,
    settlingS: settling(sizeTimeline, loadChangeTimes(cfg.workload, cfg.durationS), cfg.durationS),
    actuations,
    decisions: decisionsN,
    memHitFraction: served ? memHits / served : 0,
    fullFallbackFraction: served ? fullFallbacks / served : 0,
    meanServiceS: served ? workSum / served : 0,
  };
  return {
    config: { seed: cfg.seed, durationS: cfg.durationS, vcpus: cfg.vcpus, ramGB: cfg.ramGB, scheme: cfg.controller ? cfg.controller.scheme : 'fixed' },
    metrics,
    decisions,
    windows,
  };
}

function sizeAt(tl: { t: number; s: number }[], t: number): number {
  let s = tl[0]!.s;
  for (const p of tl) { if (p.t > t) break; s = p.s; }
  return s;
}

/**
 * Mean settling time over load changes (null when the workload has none): for each change, the time until the
 * share size first comes within ±max(10 %, 8 MiB) of the time-weighted median size over the rest of that phase
 * (the level the controller operates at after the change). A size that never gets there counts the whole phase.
 */
function settling(tl: { t: number; s: number }[], changes: number[], end: number): number | null {
  if (changes.length === 0) return null;
  let total = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const e = changes[i + 1] ?? end;
    // piecewise-constant size over [c, e): segments (start, size)
    const segs: { t: number; s: number }[] = [{ t: c, s: sizeAt(tl, c) }];
    for (const p of tl) if (p.t > c && p.t < e) segs.push(p);
    const weighted = segs.map((p, k) => ({ s: p.s, w: (segs[k + 1]?.t ?? e) - p.t })).sort((a, b) => a.s - b.s);
    const half = (e - c) / 2;
    let acc = 0;
    let median = weighted[weighted.length - 1]!.s;
    for (const x of weighted) { acc += x.w; if (acc >= half) { median = x.s; break; } }
    const band = Math.max(0.1 * median, 8);
    const hit = segs.find((p) => Math.abs(p.s - median) <= band);
    total += (hit ? hit.t : e) - c;
  }
  return total / changes.length;
}
