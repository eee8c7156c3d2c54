// module-engine auto, by traffic (issue #11): which server a guest's http modules should run on, from the responses
// they actually serve. lighttpd is the cheaper engine for small responses (4 KiB: 0.95x throughput, 1.07x CPU per GB of
// the guest's own lighttpd, nginx 0.78x, 1.36x), nginx for large ones (16 MiB: 1.05-1.10x throughput, lower CPU per GB
// and p99; in the hybrid bench module offload 1.03-1.27x of delivery alone on nginx, 0.77-1.14x on lighttpd, whose 256
// KiB writes with TCP_NODELAY leave ~25% more packets per byte): docs/modules.md, "Which engine a guest gets". The
// evidence is the access counters hylicsd already reads (stats.ts): requests and body bytes sent, once a second per
// http module (the manager records them here). The measure is the mean response size over a sliding window (bytes /
// requests): with a cost per request that favours lighttpd and a cost per byte that favours nginx, which one costs less
// overall is decided by that ratio. Hysteresis and a dwell time keep switches rare: a switch restarts every module of
// the guest and cuts its clients' transfers in flight (guest-engine.ts switchKind). Pure: the clock is passed in.
import { HylicsError } from '../../core/errors/index.js';
import { formatSize } from '../../core/units.js';
import type { EngineKind } from './engine-api.js';

/**
 * Mean response size (body bytes sent per request over the window) from which a guest on lighttpd goes to nginx.
 * Above 1 MiB: at 1 MiB lighttpd met every http-delivery goal in each run (1.00-1.22x) while nginx ranged
 * 0.89-1.12x; from 16 MiB on (and the hybrid bench's 200 MiB) nginx is the better one (docs/modules.md).
 */
export const ENGINE_TO_NGINX_MEAN_BYTES = 4 * 1024 * 1024;
/** Mean response size below which a guest its traffic moved to nginx goes back to lighttpd (hysteresis). */
export const ENGINE_TO_LIGHTTPD_MEAN_BYTES = 512 * 1024;
/** The sliding window of traffic the mean is taken over. */
export const ENGINE_WINDOW_MS = 5 * 60_000;
/** Buckets the window is kept in (its resolution: window / buckets, 10 s by default). */
const WINDOW_BUCKETS = 30;
/** Minimum evidence: requests in the window before any decision. */
export const ENGINE_MIN_REQUESTS = 64;
/**
 * Minimum evidence: how long the guest's traffic has been watched (since its first module started) before the
 * first decision, so a short burst right after the start does not decide it.
 */
export const ENGINE_MIN_EVIDENCE_MS = 60_000;
/**
 * Minimum time from a guest's last engine switch (of either kind) to a switch by traffic; a stream module's own switch
 * is never delayed.
 */
export const ENGINE_MIN_DWELL_MS = 10 * 60_000;

export interface EngineChoiceOptions {
  toNginxMeanBytes: number;
  toLighttpdMeanBytes: number;
  windowMs: number;
  minRequests: number;
  minEvidenceMs: number;
  dwellMs: number;
}

export const DEFAULT_ENGINE_CHOICE: EngineChoiceOptions = {
  toNginxMeanBytes: ENGINE_TO_NGINX_MEAN_BYTES,
  toLighttpdMeanBytes: ENGINE_TO_LIGHTTPD_MEAN_BYTES,
  windowMs: ENGINE_WINDOW_MS,
  minRequests: ENGINE_MIN_REQUESTS,
  minEvidenceMs: ENGINE_MIN_EVIDENCE_MS,
  dwellMs: ENGINE_MIN_DWELL_MS,
};

/** The traffic in the window as the choice sees it (module list JSON: engine.traffic). */
export interface TrafficView {
  windowSeconds: number;
  requests: number;
  bytes: number;
  /** bytes / requests (0 without requests). */
  meanBytes: number;
  /** Enough evidence for a decision (ENGINE_MIN_REQUESTS in the window, watched ENGINE_MIN_EVIDENCE_MS). */
  evidence: boolean;
  /** The requests the window must hold for evidence, and the seconds until the guest was watched long enough. */
  minRequests: number;
  waitSeconds: number;
  /** The server the traffic calls for now (with the hysteresis; the choice itself may wait for the dwell time). */
  wants: EngineKind;
}

interface Bucket { slot: number; requests: number; bytes: number }

/** Fill an EngineChoiceOptions from a partial one; thresholds the wrong way round are refused. */
export function engineChoiceOptions(o: Partial<EngineChoiceOptions> = {}): EngineChoiceOptions {
  const c = { ...DEFAULT_ENGINE_CHOICE, ...o };
  for (const [k, v] of Object.entries(c))
    if (!Number.isFinite(v) || v < 0)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `engine choice ${k} must be a number >= 0, got ${v}`, { [k]: v });
  if (c.toLighttpdMeanBytes > c.toNginxMeanBytes || c.windowMs <= 0)
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'engine choice: windowMs > 0 and toLighttpdMeanBytes <= toNginxMeanBytes', { ...c });
  return c;
}

/** One guest's traffic-based preference: lighttpd until its traffic says otherwise. */
export class EngineChoice {
  private readonly buckets: Bucket[] = [];
  private readonly bucketMs: number;
  private pref: EngineKind = 'lighttpd';
  private why: string;
  private prev: { kind: EngineKind; reason: string } | undefined;

  constructor(readonly o: EngineChoiceOptions, private readonly watchedSince: number) {
    this.bucketMs = Math.max(1, Math.ceil(o.windowMs / WINDOW_BUCKETS));
    this.why = `no traffic evidence yet (nginx from a mean response of ${formatSize(o.toNginxMeanBytes)} over the last ${span(o.windowMs)})`;
  }

  /** The server the guest's traffic calls for (adopted: a switch to it was made or needed none). */
  get preferred(): EngineKind {
    return this.pref;
  }

  /** Why `preferred`. */
  get reason(): string {
    return this.why;
  }

  /** Count `requests` responses of `bytes` body bytes in all, served at `now` (ms). */
  record(now: number, requests: number, bytes: number): void {
    if (requests <= 0) return;
    const slot = Math.floor(now / this.bucketMs);
    const last = this.buckets.at(-1);
    if (last && last.slot === slot) {
      last.requests += requests;
      last.bytes += bytes;
    } else this.buckets.push({ slot, requests, bytes });
    this.prune(now);
  }

  /** The window's traffic and what it calls for at `now`. */
  traffic(now: number): TrafficView {
    this.prune(now);
    let requests = 0;
    let bytes = 0;
    for (const b of this.buckets) {
      requests += b.requests;
      bytes += b.bytes;
    }
    const meanBytes = requests > 0 ? bytes / requests : 0;
    const evidence = requests >= this.o.minRequests && requests > 0 && now - this.watchedSince >= this.o.minEvidenceMs;
    let wants = this.pref;
    if (evidence) {
      if (this.pref === 'lighttpd' && meanBytes >= this.o.toNginxMeanBytes) wants = 'nginx';
      else if (this.pref === 'nginx' && meanBytes < this.o.toLighttpdMeanBytes) wants = 'lighttpd';
    }
    return {
      windowSeconds: this.o.windowMs / 1000,
      requests,
      bytes,
      meanBytes,
      evidence,
      minRequests: this.o.minRequests,
      waitSeconds: Math.max(0, this.o.minEvidenceMs - (now - this.watchedSince)) / 1000,
      wants,
    };
  }

  /** A change of preference the traffic calls for at `now`, with its reason; undefined when none. */
  next(now: number): { kind: EngineKind; reason: string } | undefined {
    const t = this.traffic(now);
    if (t.wants === this.pref) return undefined;
    return {
      kind: t.wants,
      reason: `mean response ${formatSize(Math.round(t.meanBytes))} over ${t.requests} requests in the last ${span(this.o.windowMs)} (${t.wants === 'nginx' ? `>= ${formatSize(this.o.toNginxMeanBytes)}` : `< ${formatSize(this.o.toLighttpdMeanBytes)}`})`,
    };
  }

  /** Take the preference `next()` gave. */
  adopt(n: { kind: EngineKind; reason: string }): void {
    this.prev = { kind: this.pref, reason: this.why };
    this.pref = n.kind;
    this.why = n.reason;
  }

  /** Back to the preference before the last adopt() (the switch it called for failed). */
  revert(): void {
    if (!this.prev) return;
    this.pref = this.prev.kind;
    this.why = this.prev.reason;
    this.prev = undefined;
  }

  private prune(now: number): void {
    const first = Math.floor((now - this.o.windowMs) / this.bucketMs);
    let k = 0;
    while (k < this.buckets.length && this.buckets[k]!.slot <= first) k++;
    if (k > 0) this.buckets.splice(0, k);
  }
}

/** A duration for a reason string: `5 min`, `30 s`, `250 ms`. */
function span(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${+(ms / 1000).toFixed(1)} s`;
  return `${ms} ms`;
}
