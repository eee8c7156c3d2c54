// Discrete-event simulator of one guest running the paper's §6.4 experiment: transcoding tasks on 10 s video
// segments arrive (a workload), each reads its segment from the share (memory tier) or from the guest's disk
// tier, and runs on the guest's vCPUs, which are shared processor-sharing style. A controller (or a fixed size)
// sets the share size at every control interval. Pure and seeded: same config + seed = same result.
import { HylicsError } from '../errors/index.js';
import { ShareController, type ControllerConfig, type Decision } from '../control/controller.js';
import { Rng, ZipfSampler } from './rng.js';
import { PsServer, type Finished } from './ps-server.js';
import { DiskDevice, type DeviceConfig } from './disk-device.js';
import { ShareTier } from './share-tier.js';
import { SimRecorder, settling } from './metrics.js';
import { ArrivalGenerator, loadChangeTimes, validateWorkload, type WorkloadSpec } from './workload.js';
import { MiB } from '../units.js';

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
  /**
   * Alone time of a task whose segment enters the share at its request (it was on the disk tier and there is room)
   * under promotion 'sync': a guest tier that copies it in before the task reads it (the real guest's tier.path with
   * `--tier-promote sync`) pays the copy here. Default memS: the paper counts such a task as a memory-tier one, with
   * no copy cost. Unused under 'background'.
   */
  promoteS?: number;
  /**
   * How a segment that enters the share at its request is served: 'sync' (default: the copy is on the task's path,
   * the task costs promoteS, or memS, and counts as served from memory) or 'background' (the real guest's default
   * `--tier-promote background`: the task reads the disk tier — diskS, or the page cache — while the segment is
   * copied into the share for the next request; the copy's own time is not modelled).
   */
  promotion?: 'sync' | 'background';
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
  /**
   * The disk tier's device, shared by all reads in flight (docs/controller.md, "The disk-tier device"). Unset (the
   * default, and the paper's model): every disk-tier read is independent, its cost is in diskS. Set: a task served
   * from the disk tier also reads its segment (the segment's size) through the device, and completes when both its
   * CPU work (diskS, as before) and that read are done; a background promotion's copy is the same read (the task
   * and the copy read the same file, its pages dropped: one device read, the task waits for it); under 'sync' the
   * copy is a read the task waits for as well. A page-cache hit reads nothing. Alone, a read of a segment takes
   * size / bandwidth (0.3 s for 4 MiB at 12 MB/s), below diskS: the device only adds time when reads queue on it.
   */
  device?: DeviceConfig;
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
export const DEFAULT_SERVICE: ServiceConfig = {
  memS: 3.32,
  diskS: 4.02,
  complexitySigma: 0.15,
  noiseSigma: 0.08,
  serialFraction: 0.1,
  streamInterference: 0,
  pageCacheCost: 0.3,
};

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

export interface DecisionPoint { t: number; sizeMiB: number; usedMiB: number; meanR: number | null; reason: string }
export interface WindowPoint {
  t: number;
  meanR: number | null;
  tasks: number;
  usedMiB: number;
  sizeMiB: number;
  arrivals: number;
}

export interface SimMetrics {
  tasks: number;
  /** Primary: Σ over fixed windows of max(0, mean R of the window - SLO) (s). */
  error: number;
  /**
   * Alternatives (docs/controller.md): mean |R_w - τ| over windows, RMS of (R_w - τ), Σ excess over control intervals,
   * mean per-task excess.
   */
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

/** With a device: the fraction of the run with a read in flight, the mean time (s) a completed task waited on its
 * read after its CPU work was done, and the MiB read. */
export interface DeviceMetrics { busyFraction: number; meanWaitS: number; readMiB: number }

export interface SimResult {
  config: { seed: number; durationS: number; vcpus: number; ramGB: number; scheme: string };
  metrics: SimMetrics;
  decisions: DecisionPoint[];
  windows: WindowPoint[];
  device?: DeviceMetrics;
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
  if (c.service.promoteS !== undefined) fin('service.promoteS', c.service.promoteS, 0, 1e5);
  if (c.service.promotion !== undefined && c.service.promotion !== 'sync' && c.service.promotion !== 'background') {
    bad('service.promotion', c.service.promotion, 'sync or background');
  }
  fin('service.complexitySigma', c.service.complexitySigma, 0, 3, false);
  fin('service.noiseSigma', c.service.noiseSigma, 0, 3, false);
  fin('service.serialFraction', c.service.serialFraction, 0, 1, false);
  fin('service.streamInterference', c.service.streamInterference, 0, 100, false);
  fin('service.pageCacheCost', c.service.pageCacheCost, 0, 1, false);
  if (c.service.maxTaskVcpus !== undefined) fin('service.maxTaskVcpus', c.service.maxTaskVcpus, 0, 1024, false);
  if (c.service.device !== undefined) {
    fin('service.device.readBytesPerS', c.service.device.readBytesPerS, 0, 1e13);
    fin('service.device.readIops', c.service.device.readIops, 0, 1e9, false);
    if (c.service.device.requestBytes !== undefined) fin('service.device.requestBytes', c.service.device.requestBytes, 0, 2 ** 31);
  }
  fin('evictAfterS', c.evictAfterS, 0, 1e7);
  fin('sloS', c.sloS, 0, 1e6);
  fin('windowS', c.windowS, 0, 1e6);
  if (c.controller === null) fin('fixedSizeBytes', c.fixedSizeBytes ?? NaN, 0, 2 ** 53, false);
  validateWorkload(c.workload);
}

/** Run one simulation: arrivals, the share tier, the PS server and the controller as one event loop. */
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
  let nSeg = cat.segments;
  if (cfg.workload.kind === 'trace') for (const a of cfg.workload.arrivals) if (a.segment !== undefined && a.segment + 1 > nSeg) nSeg = a.segment + 1;
  const ctl = cfg.controller ? new ShareController(cfg.controller) : null;
  const tier = new ShareTier(
    cat,
    nSeg,
    svc.complexitySigma,
    catRng,
    ctl ? ctl.sizeBytes / MiB : (cfg.fixedSizeBytes ?? 0) / MiB,
    cfg.evictAfterS,
  );
  const zipf = new ZipfSampler(cat.segments, cat.zipfAlpha);
  const hitPC = pageCacheHitFraction(cfg.ramGB);
  const pcS = svc.memS + svc.pageCacheCost * (svc.diskS - svc.memS);
  const server = new PsServer(cfg.vcpus, svc.serialFraction, svc.maxTaskVcpus ?? 0, svc.streamInterference);
  const rec = new SimRecorder(cfg.durationS, cfg.windowS, cfg.sloS, tier.size, record);
  const device = svc.device ? new DiskDevice(svc.device) : null;
  // tasks whose device read is in flight (by id), and those whose CPU work ended first, waiting for their read
  const reading = new Set<number>();
  const waiting = new Map<number, { f: Finished; since: number }>();
  let waitSum = 0;
  const floorMiB = ctl ? cfg.controller!.minBytes / MiB : Infinity;
  let nextTick = ctl ? ctl.interval : Infinity;
  let lastTick = 0;
  // the controller's measurement of the current interval
  let ivSum = 0, ivCnt = 0, ivArr = 0, ivFull = 0;
  // the interval's completions per tier (what `hylics task run --tier-hit|--tier-miss` reports on a real guest)
  let ivDiskSum = 0, ivDiskCnt = 0;
  let t = 0;

  const gen = new ArrivalGenerator(cfg.workload, rng);
  let nextArr = gen.next();
  const end = cfg.durationS;

  const complete = (f: Finished): void => {
    const R = t - f.arrivedAt;
    tier.release(f.segment, t);
    rec.completion(t, R);
    ivSum += R; ivCnt++;
    if (f.disk) { ivDiskSum += R; ivDiskCnt++; }
  };

  for (;;) {
    const r = server.rate();
    const tDep = server.nextDeparture(t, r);
    const tDev = device ? device.nextDone(t) : Infinity;
    const tA = nextArr !== null ? nextArr.time : Infinity;
    let tNext = Math.min(tDep, tDev, tA, nextTick);
    if (tNext > end) tNext = end;
    const dt = tNext - t;
    if (dt > 0) {
      server.advance(r, dt);
      device?.advance(dt);
      rec.advance(t, dt, tier.size, tier.used);
      t = tNext;
    }
    if (t >= end && !(tDep <= end && tDep === t) && !(tDev <= end && tDev === t)) break;
    if (device && tDev === t && device.active > 0) {
      const id = device.pop();
      reading.delete(id);
      const w = waiting.get(id);
      if (w) { waiting.delete(id); waitSum += t - w.since; complete(w.f); }
      continue;
    }
    if (tDep === t && server.running > 0) {
      const f = server.pop();
      // its CPU work is done; a task whose read is still queued on the device waits for it (using no CPU)
      if (reading.has(f.id)) waiting.set(f.id, { f, since: t });
      else complete(f);
      continue;
    }
    if (tA === t && nextArr !== null) {
      tier.sweep(t);
      const s = nextArr.segment !== undefined ? nextArr.segment : zipf.sample(segRng);
      const pcCoin = svcRng.next();
      const noise = svcRng.lognormalMean(1, svc.noiseSigma);
      const hit = tier.request(s, t);
      if (!hit) ivFull++;
      // served from the share: there already, or copied in on the way (sync); a background promotion's task reads
      // the disk tier while its segment enters the share
      const fromMem = hit && !(tier.entered && svc.promotion === 'background');
      const base = fromMem ? (tier.entered ? svc.promoteS ?? svc.memS : svc.memS) : pcCoin < hitPC ? pcS : svc.diskS;
      const work = base * tier.segCx[s]! * noise;
      const id = server.add(t, s, work, !fromMem);
      // the device read: a disk-tier task's own (not a page-cache hit), or the promotion copy it waits for
      const reads = device !== null && (tier.entered || !fromMem) && !(!fromMem && pcCoin < hitPC);
      if (reads) { device.add(id, tier.segSize[s]! * MiB); reading.add(id); }
      rec.arrival(t, work, fromMem);
      ivArr++;
      nextArr = gen.next();
      continue;
    }
    if (nextTick === t && ctl) {
      tier.sweep(t);
      const meanR = ivCnt > 0 ? ivSum / ivCnt : null;
      rec.interval(meanR);
      const d: Decision = ctl.step({
        time: t,
        interval: t - lastTick,
        meanResponseTime: meanR,
        completions: ivCnt,
        arrivals: ivArr,
        shareUsedBytes: tier.used * MiB,
        shareSizeBytes: tier.size * MiB,
        fullFallbacks: ivFull,
        memoryTierTasks: ivCnt - ivDiskCnt,
        memoryTierMeanS: ivCnt > ivDiskCnt ? (ivSum - ivDiskSum) / (ivCnt - ivDiskCnt) : null,
        diskTierTasks: ivDiskCnt,
        diskTierMeanS: ivDiskCnt > 0 ? ivDiskSum / ivDiskCnt : null,
      });
      const newSize = d.sizeBytes / MiB;
      const resized = newSize !== tier.size;
      if (resized) tier.resize(newSize);
      rec.decision(t, tier.size, resized, tier.used, meanR, d.reason, d.actuated);
      ivSum = 0; ivCnt = 0; ivArr = 0; ivFull = 0; ivDiskSum = 0; ivDiskCnt = 0;
      lastTick = t;
      nextTick = t + d.nextIntervalS;
      continue;
    }
    if (t >= end) break;
  }
  const settlingS = settling(rec.sizeTimeline, loadChangeTimes(cfg.workload, cfg.durationS), cfg.durationS);
  const { metrics, windows } = rec.finish(t, floorMiB, tier.peakUsed, settlingS);

  return {
    config: { seed: cfg.seed, durationS: cfg.durationS, vcpus: cfg.vcpus, ramGB: cfg.ramGB, scheme: cfg.controller ? cfg.controller.scheme : 'fixed' },
    metrics,
    decisions: rec.decisions,
    windows,
    ...(device ? {
      device: {
        busyFraction: t > 0 ? device.busyS / t : 0,
        meanWaitS: metrics.tasks > 0 ? waitSum / metrics.tasks : 0,
        readMiB: device.bytesRead / MiB,
      },
    } : {}),
  };
}

export { psRate } from './ps-server.js';
