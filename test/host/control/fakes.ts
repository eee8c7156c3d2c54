// Fakes for the control loop's unit tests: a clock whose timers fire only when the test advances it, a share
// that behaves like a tmpfs (a remount below usage is refused), and a guest tier manager that moves files.
import type { Clock } from '../../../src/host/control/loop.js';
import type { OrchestratorDeps } from '../../../src/host/control/orchestrator.js';
import { HylicsError } from '../../../src/core/errors/index.js';

export class FakeClock implements Clock {
  t = 1_700_000_000_000;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 1;
  now(): number { return this.t; }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimer(h: unknown): void { this.timers = this.timers.filter((x) => x.id !== h); }
  /** When the earliest timer is due (ms from now), or null. */
  due(): number | null {
    if (this.timers.length === 0) return null;
    return Math.min(...this.timers.map((x) => x.at)) - this.t;
  }
  /** Move to the next timer and fire it; returns its delay. */
  async fireNext(): Promise<number> {
    this.timers.sort((a, b) => a.at - b.at);
    const x = this.timers.shift();
    if (!x) throw new Error('no timer pending');
    const delay = x.at - this.t;
    this.t = x.at;
    x.fn();
    // the tick is async (it may write the decision log to disk): wait until it has scheduled the next one
    const until = Date.now() + 2000;
    while (this.timers.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
    return delay;
  }
}

export type TierAnswer = 'ack' | 'timeout' | 'unknown' | 'denied' | 'partial';

/** A share (tmpfs semantics) and a guest whose tier manager answers tier.shrink as told. */
export class FakeGuest implements OrchestratorDeps {
  size: number;
  used: number;
  connected = true;
  tierAnswer: TierAnswer = 'ack';
  /** Bytes a tier.shrink cannot move (files held open), for 'partial'. */
  pinned = 0;
  readonly calls: Array<{ op: string; params: unknown }> = [];
  readonly events: Array<{ event: string; data: unknown }> = [];
  readonly resizes: number[] = [];
  tierStats = {
    memoryFiles: 0,
    memoryBytes: 0,
    diskFiles: 0,
    diskBytes: 0,
    evictions: 0,
    promotions: 0,
    hits: 0,
    misses: 0,
  };

  constructor(size: number, used: number) {
    this.size = size;
    this.used = used;
  }

  async usage(): Promise<{ sizeBytes: number; usedBytes: number; freeBytes: number }> {
    return { sizeBytes: this.size, usedBytes: this.used, freeBytes: this.size - this.used };
  }
  async resize(_g: string, bytes: number): Promise<void> {
    if (bytes < this.used) throw new HylicsError('HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE', `${this.used} bytes in use`);
    this.size = bytes;
    this.resizes.push(bytes);
  }
  isConnected(): boolean {
    return this.connected;
  }
  async request(_g: string, op: string, params: unknown): Promise<unknown> {
    this.calls.push({ op, params });
    if (this.tierAnswer === 'unknown')
      throw new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} is not registered`, { op });
    if (this.tierAnswer === 'denied')
      throw new HylicsError('HYLICS_ERR_CHANNEL_OP_DENIED', `operation ${op} is not allowed on this channel`, { op });
    if (this.tierAnswer === 'timeout')
      throw new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: no reply within 22000 ms`);
    if (op === 'tier.stats') return { ...this.tierStats };
    const target = (params as { targetUsedBytes: number }).targetUsedBytes;
    const floor = this.tierAnswer === 'partial' ? Math.max(this.pinned, target) : target;
    const moved = Math.max(0, this.used - floor);
    this.used -= moved;
    this.tierStats.evictions += moved > 0 ? 1 : 0;
    return {
      usedBytes: this.used,
      movedFiles: moved > 0 ? 1 : 0,
      movedBytes: moved,
      ok: this.used <= target,
      ...(this.used > target ? { reason: 'files held open' } : {}),
    };
  }
  notify(_g: string, event: string, data: unknown): void {
    this.events.push({ event, data });
  }
}
