// Reply cache for idempotent ops: a retry of (op, request id, params) gets the first run's outcome instead of
// running again. The host keeps one per guest across reconnects, so a guest that lost its connection in the
// middle of an offload can ask again with the same id after it reconnects.
import { createHash } from 'node:crypto';
import type { WireError } from '../../core/protocol/index.js';

export type CachedOutcome = { ok: true; result: unknown } | { ok: false; error: WireError };

interface Entry {
  at: number;
  outcome?: CachedOutcome;
  running?: Promise<CachedOutcome>;
}

export class ReplyCache {
  private readonly entries = new Map<string, Entry>();
  constructor(readonly maxEntries = 1024, readonly ttlMs = 10 * 60 * 1000) {}

  static key(op: string, id: number, params: unknown): string {
    // params are part of the key so a restarted guest reusing an id for different work is never served a stale reply
    // ... hashed: params may be up to a frame (1 MiB) and a guest must not make the host keep 1024 of them
    const digest = createHash('sha256').update(JSON.stringify(params ?? null)).digest('base64');
    return `${op}\u0000${id}\u0000${digest}`;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The outcome (or the running promise) of an earlier request with this key, if any. */
  lookup(key: string, now = Date.now()): CachedOutcome | Promise<CachedOutcome> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.outcome && now - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.outcome ?? e.running;
  }

  /** Remember a running request; its outcome replaces the promise when it settles. */
  track(key: string, running: Promise<CachedOutcome>): void {
    this.entries.set(key, { at: Date.now(), running });
    void running.then((outcome) => {
      const e = this.entries.get(key);
      if (e && e.running === running) {
        this.entries.delete(key); // re-insert: newest last, for eviction order
        this.entries.set(key, { at: Date.now(), outcome });
      }
    });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
