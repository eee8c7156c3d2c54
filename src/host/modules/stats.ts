// Per-module stats (daemon side): once a second, each module's access log (access-log.ts) is drained into the
// module metrics, the module's totals and a `stats` event, and each guest's module cgroup memory into its gauge. The
// module manager (manager.ts) owns the guests and the metrics (registered there, in their order) and calls flush()
// itself when a module stops or its engine is switched, so that the last lines count.
import type { Counter, Gauge } from 'prom-client';
import type { Cgroup } from '../../os/cgroup.js';
import type { AccessLog, AccessTotals } from './access-log.js';
import type { ModuleEvent, ModuleInfo, ModuleStartOptions } from './types.js';

const STATS_INTERVAL_MS = 1000;

/** What of a module the stats read and update (its totals). */
export interface StatsModule {
  info: ModuleInfo;
  opts: ModuleStartOptions;
  log: AccessLog;
}

/** What of a guest the stats read (the manager's guest state, live: guests and modules come and go). */
export interface StatsGuest {
  guest: { name: string };
  modules: ReadonlyMap<string, StatsModule>;
  /** The guest's engine (guest-engine.ts): its module cgroup, null while there is none. */
  engine: { readonly cgroup: Cgroup | null };
}

export interface ModuleStatsOptions {
  metrics: { requests: Counter; bytes: Counter; errors: Counter; latency: Counter; memory: Gauge };
  guests: () => Iterable<StatsGuest>;
  emit: (e: ModuleEvent) => void;
  log: (msg: string) => void;
  /** Requests and body bytes a module of the guest served, as drained (the engine choice by traffic counts them). */
  counted?: (guestName: string, mod: StatsModule, requests: number, bytes: number) => void;
  /** After each once-a-second drain of every guest. */
  ticked?: () => void;
}

export class ModuleStats {
  private readonly timer: NodeJS.Timeout;
  private lastTick = Date.now();
  /** CPU seconds this process spent reading each guest's access logs into counters (see cpuSeconds). */
  private readonly logCpuSec = new Map<string, number>();

  constructor(private readonly o: ModuleStatsOptions) {
    this.timer = setInterval(() => {
      void this.tick();
    }, STATS_INTERVAL_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** CPU seconds spent reading this guest's access logs (ModuleManager.accessLogCpuSeconds). */
  cpuSeconds(guestName: string): number {
    return this.logCpuSec.get(guestName) ?? 0;
  }

  /** The guest went away. */
  forget(guestName: string): void {
    this.logCpuSec.delete(guestName);
  }

  /** Drain the module's access log into its metrics, totals and a stats event (none when it served nothing). */
  flush(guestName: string, mod: StatsModule, intervalMs: number): void {
    const c0 = process.cpuUsage();
    try {
      this.flushOf(guestName, mod, intervalMs);
    } finally {
      const c = process.cpuUsage(c0);
      this.logCpuSec.set(guestName, (this.logCpuSec.get(guestName) ?? 0) + (c.user + c.system) / 1e6);
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const interval = now - this.lastTick;
    this.lastTick = now;
    for (const st of this.o.guests()) {
      for (const mod of st.modules.values()) this.flush(st.guest.name, mod, interval);
      if (st.engine.cgroup) {
        try {
          this.o.metrics.memory.set({ guest: st.guest.name }, (await st.engine.cgroup.stats()).memoryBytes);
        } catch {
          /* being removed */
        }
      }
    }
    this.o.ticked?.();
  }

  private flushOf(g: string, mod: StatsModule, intervalMs: number): void {
    let t: AccessTotals;
    try {
      t = mod.log.drain();
    } catch (e) {
      this.o.log(`reading the access log of ${mod.info.id}: ${(e as Error).message}`);
      return;
    }
    if (t.requests === 0) return;
    const m = this.o.metrics;
    const labels = { guest: g, module: mod.info.id, kind: mod.info.kind };
    // a typed array's numeric sort: a third of the CPU of sort((a, b) => a - b) on the 10,000 samples of a busy second
    const lat = Float64Array.from(t.latenciesMs).sort();
    const sum = lat.reduce((a, b) => a + b, 0);
    const latency = {
      meanMs: lat.length ? sum / lat.length : 0,
      p50Ms: percentile(lat, 0.5),
      p99Ms: percentile(lat, 0.99),
      maxMs: lat.length ? lat[lat.length - 1]! : 0,
    };
    this.o.counted?.(g, mod, t.requests, t.bytes);
    m.requests.inc(labels, t.requests);
    m.bytes.inc(labels, t.bytes);
    m.errors.inc(labels, t.errors);
    m.latency.inc(labels, (latency.meanMs * t.requests) / 1000);
    mod.info.totals.requests += t.requests;
    mod.info.totals.bytes += t.bytes;
    mod.info.totals.errors += t.errors;
    // request paths -> names in the share (the module root is a checked share-relative path, '' = the share root)
    const names = (uris: Set<string>): string[] =>
      [...uris].filter((u) => !u.endsWith('/')).map((u) => (mod.opts.root ? `${mod.opts.root}${u}` : u.slice(1)));
    const files = names(t.served),
      missing = names(t.missing);
    this.o.emit({
      type: 'stats',
      guest: g,
      id: mod.info.id,
      kind: mod.info.kind,
      intervalMs,
      requests: t.requests,
      bytes: t.bytes,
      errors: t.errors,
      latency,
      ...(files.length ? { files } : {}),
      ...(missing.length ? { missing } : {}),
    });
  }
}

function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
