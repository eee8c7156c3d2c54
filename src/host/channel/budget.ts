// What one guest may cost the daemon through its control channel. hylicsd is one event loop: every byte a guest
// sends is decoded, validated and handled on it, so a guest flooding valid frames (issue #12: 400 MiB of
// task.report in 12 s) took a full core and the API's latency from 3-7 ms to 250 ms. Each guest gets token
// buckets for bytes, frames and event-loop time (decode + validation + handler, measured around the peer's
// processing of each chunk). Over budget, its stream is paused until the debt is repaid (the guest's writes block:
// backpressure through the socket, QEMU's chardev or the virtio-serial queue); a guest that stays throttled for
// long is disconnected and refused for a while. Buckets live per guest, so reconnecting does not refill them.
import type { Socket } from 'node:net';
import { MiB } from '../../core/units.js';

export interface ChannelBudgetOptions {
  /** Sustained bytes per second a guest may send, and the burst above it. */
  bytesPerSec: number;
  bytesBurst: number;
  /** Sustained frames per second, and the burst. */
  framesPerSec: number;
  framesBurst: number;
  /** Event-loop milliseconds per second the daemon spends on the guest's frames, and the burst (ms). */
  loopMsPerSec: number;
  loopBurstMs: number;
  /** Disconnect a guest that was throttled this long within the last `windowMs`. */
  disconnectAfterMs: number;
  windowMs: number;
  /** After such a disconnect, refuse the guest's connections for this long. */
  penaltyMs: number;
}

/**
 * Defaults: far above what an agent sends (batches of 200 task events, one in flight at a time, exec replies of at
 * most one 1 MiB frame), far below a flood: 2 MiB/s of frames cost about 6 % of a core in the measurement.
 */
export const DEFAULT_CHANNEL_BUDGET: ChannelBudgetOptions = {
  bytesPerSec: 2 * MiB,
  bytesBurst: 16 * MiB,
  framesPerSec: 2000,
  framesBurst: 10_000,
  loopMsPerSec: 100, // a tenth of a core
  loopBurstMs: 1000,
  disconnectAfterMs: 10_000,
  windowMs: 30_000,
  penaltyMs: 30_000,
};

/** No limits (HYLICS_CHANNEL_BUDGET=off, for measurements): the meter still counts what each guest costs. */
export const UNLIMITED_CHANNEL_BUDGET: ChannelBudgetOptions = {
  bytesPerSec: 1e15, bytesBurst: 1e15, framesPerSec: 1e15, framesBurst: 1e15, loopMsPerSec: 1e15, loopBurstMs: 1e15,
  disconnectAfterMs: Infinity, windowMs: 1, penaltyMs: 0,
};

/** CPU time of the whole process (user + system), ms. */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Tokens refill at `rate` per second up to `burst`; taking may run into debt, which the guest waits out. */
class Bucket {
  private level: number;
  private at: number;
  constructor(private readonly rate: number, private readonly burst: number, now: number) {
    this.level = burst;
    this.at = now;
  }
  take(n: number, now: number): void {
    this.level = Math.min(this.burst, this.level + ((now - this.at) / 1000) * this.rate) - n;
    this.at = now;
  }
  has(n: number): boolean {
    return this.level >= n;
  }
  /** Milliseconds until the level is back to zero (0 when not in debt). */
  waitMs(): number {
    return this.level >= 0 ? 0 : Math.ceil((-this.level / this.rate) * 1000);
  }
}

export interface BudgetStats {
  /** Bytes and frames received from the guest (all its connections). */
  bytes: number;
  frames: number;
  /** Event-loop time spent on its frames, ms (CPU: the smaller of wall and process CPU time per chunk). */
  loopMs: number;
  /** Time its stream was paused for being over budget, ms. */
  throttledMs: number;
  throttles: number;
  /** Connections closed for staying over budget. */
  disconnects: number;
}

export type Overrun = 'bytes' | 'frames' | 'loop time';

export interface MeterHooks {
  /** Frames the peer has decoded so far on this connection (read after each chunk). */
  framesIn(): number;
  /** The stream was paused for `ms` for being over this budget. */
  onThrottle(reason: Overrun, ms: number): void;
  /** Throttled too long: the caller closes the connection. */
  onAbuse(throttledMs: number): void;
}

/** One guest's budget, shared by all its connections over time. */
export class GuestBudget {
  readonly stats: BudgetStats = { bytes: 0, frames: 0, loopMs: 0, throttledMs: 0, throttles: 0, disconnects: 0 };
  private readonly bytes: Bucket;
  private readonly frames: Bucket;
  private readonly loop: Bucket;
  /** Pauses in the current window: [start, ms]. */
  private pauses: Array<[number, number]> = [];
  private penaltyUntil = 0;

  constructor(
    readonly opts: ChannelBudgetOptions = DEFAULT_CHANNEL_BUDGET,
    private readonly now: () => number = Date.now,
  ) {
    const t = now();
    this.bytes = new Bucket(opts.bytesPerSec, opts.bytesBurst, t);
    this.frames = new Bucket(opts.framesPerSec, opts.framesBurst, t);
    this.loop = new Bucket(opts.loopMsPerSec, opts.loopBurstMs, t);
  }

  /** Milliseconds the guest is still refused after an abuse disconnect (0: it may connect). */
  penaltyMs(): number {
    return Math.max(0, this.penaltyUntil - this.now());
  }

  /**
   * Meter a connection. Call before the peer attaches its 'data' listener; call the returned function right after
   * (so the two listeners bracket the peer's processing of each chunk). Returns a detach function from the second.
   */
  meter(stream: Socket): (hooks: MeterHooks) => () => void {
    let t0 = 0;
    let c0 = 0;
    const before = (): void => {
      t0 = performance.now();
      c0 = processCpuMs();
    };
    stream.on('data', before);
    return (hooks) => {
      let frames = hooks.framesIn();
      let resumeTimer: NodeJS.Timeout | undefined;
      let closed = false;
      const after = (chunk: Buffer): void => {
        // the event loop's CPU for this chunk is at most its wall time and at most the process's CPU time: the
        // smaller, so a guest is not charged for time the daemon sat descheduled on a loaded host (a well-behaved
        // guest was throttled for that at load ~11)
        const spent = Math.min(performance.now() - t0, processCpuMs() - c0);
        const now = this.now();
        const f = hooks.framesIn();
        this.stats.bytes += chunk.length;
        this.stats.frames += f - frames;
        this.stats.loopMs += spent;
        this.bytes.take(chunk.length, now);
        this.frames.take(f - frames, now);
        this.loop.take(spent, now);
        frames = f;
        if (closed || resumeTimer) return;
        const waits: Array<[Overrun, number]> = [
          ['bytes', this.bytes.waitMs()],
          ['frames', this.frames.waitMs()],
          ['loop time', this.loop.waitMs()],
        ];
        const [reason, ms] = waits.reduce((a, b) => (b[1] > a[1] ? b : a));
        if (ms <= 0) return;
        this.pauses = this.pauses.filter(([s, d]) => s + d > now - this.opts.windowMs);
        this.pauses.push([now, ms]);
        const throttled = this.pauses.reduce((a, [, d]) => a + d, 0);
        this.stats.throttledMs += ms;
        this.stats.throttles++;
        if (throttled > this.opts.disconnectAfterMs) {
          this.stats.disconnects++;
          this.penaltyUntil = now + this.opts.penaltyMs;
          this.pauses = [];
          closed = true;
          stream.pause();
          hooks.onAbuse(throttled);
          return;
        }
        stream.pause();
        hooks.onThrottle(reason, ms);
        resumeTimer = setTimeout(() => {
          resumeTimer = undefined;
          if (!closed) stream.resume();
        }, ms);
        resumeTimer.unref();
      };
      stream.on('data', after);
      return () => {
        closed = true;
        clearTimeout(resumeTimer);
        stream.off('data', before);
        stream.off('data', after);
      };
    };
  }
}

/**
 * Per-key rate of an expensive op (a guest's module.start/stop spawns processes and runs nft outside its CPU
 * quota): `burst` at once, then `perMinute`. take() is false when the key is out of tokens.
 */
export class OpRateLimit {
  private readonly buckets = new Map<string, Bucket>();
  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}
  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = new Bucket(this.perMinute / 60, this.burst, t);
      this.buckets.set(key, b);
    }
    b.take(0, t);
    if (b.waitMs() > 0 || !b.has(1)) return false;
    b.take(1, t);
    return true;
  }
  forget(key: string): void {
    this.buckets.delete(key);
  }
}

/** Say something at most once per `everyMs` (per key), counting what was held back. */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly everyMs = 60_000, private readonly now: () => number = Date.now) {}
  /** Calls `say(suppressed)` when allowed; `suppressed` is how many were held back since the last one. */
  maybe(key: string, say: (suppressed: number) => void): void {
    const t = this.now();
    const e = this.last.get(key);
    if (e && t - e.at < this.everyMs) { e.suppressed++; return; }
    this.last.set(key, { at: t, suppressed: 0 });
    say(e?.suppressed ?? 0);
  }
  forget(prefix: string): void {
    for (const k of this.last.keys()) if (k.startsWith(prefix)) this.last.delete(k);
  }
}
