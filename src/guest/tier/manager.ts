// The agent's tier manager: recovers the store at start, evicts idle files on a timer, serves the host's
// tier.shrink / tier.stats and the apps' tier.path, and moves recently used files back after the share grew
// (host event share.resized), and counts the files the host's offload modules served (module.event) and the files
// socket offload sent (tier.used) as uses.
import type { PeerLogger } from '../../os/channel/index.js';
import { SILENT } from '../../os/channel/index.js';
import type { ParamsOf } from '../../core/protocol/index.js';
import type { Agent } from '../agent.js';
import type { TierStore } from './store.js';

/** How often idle files are looked for, when not given: a quarter of the idle time, at most this. */
export const MAX_SWEEP_MS = 15_000;

export interface TierManagerOptions {
  /** Idle sweep period; default min(idleMs / 4, 15 s). 0 = no sweep. */
  sweepMs: number;
  log?: PeerLogger;
}

export class TierManager {
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly log: PeerLogger;

  constructor(readonly store: TierStore, private readonly opts: TierManagerOptions) {
    this.log = opts.log ?? SILENT;
  }

  /** Register the ops on the agent (before agent.start()). */
  attach(agent: Agent): this {
    agent.handle('tier.shrink', (p: ParamsOf<'tier.shrink'>) => this.shrink(p));
    agent.handle('tier.stats', () => this.store.stats());
    agent.handle('tier.path', async (p: ParamsOf<'tier.path'>) => {
      const e = await this.store.lookup(p.name, p.promote === undefined ? {} : { promote: p.promote });
      return {
        name: e.name,
        path: e.path,
        tier: e.tier,
        foundIn: e.foundIn,
        sizeBytes: e.sizeBytes,
        lastUseMs: e.lastUseMs,
        ...(e.promoting !== undefined ? { promoting: e.promoting } : {}),
      };
    });
    agent.on('host-event', (name: string, data: unknown) => {
      if (name === 'module.event') { this.moduleUses(data); return; }
      if (name === 'tier.used') { this.hostUses(data); return; }
      if (name !== 'share.resized') return;
      void this.store.promoteRecent()
        .then((s) => { if (s.movedFiles > 0) this.log.info({ files: s.movedFiles, bytes: s.movedBytes }, 'tier: share resized: promoted recently used files'); })
        .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'tier: promotion after share.resized failed'));
    });
    return this;
  }

  /** Files a host module served (or could not find) count as uses: see TierStore.hostUsed. */
  private moduleUses(data: unknown): void {
    const ev = (data ?? {}) as { type?: unknown; files?: unknown; missing?: unknown };
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    if (ev.type !== 'stats') return;
    const served = list(ev.files), missing = list(ev.missing);
    if (served.length === 0 && missing.length === 0) return;
    this.log.debug({ served: served.length, missing: missing.length }, 'tier: host module uses');
    void this.store.hostUsed(served, missing)
      .then((r) => { if (r.promoted > 0) this.log.info({ files: r.promoted }, 'tier: files a host module asked for moved back to the share'); })
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'tier: recording host module uses failed'));
  }

  /** Files the host sent for the guest by socket offload (event tier.used) count as uses like a module's. */
  private hostUses(data: unknown): void {
    const files = (data as { files?: unknown } | null)?.files;
    const served = Array.isArray(files) ? files.filter((x): x is string => typeof x === 'string') : [];
    if (served.length === 0) return;
    void this.store.hostUsed(served, [])
      .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'tier: recording the host\'s uses failed'));
  }

  private async shrink(p: ParamsOf<'tier.shrink'>): ReturnType<TierStore['shrink']> {
    const r = await this.store.shrink(p.targetUsedBytes, p.deadlineMs);
    this.log.info({ target: p.targetUsedBytes, ...r }, 'tier: shrink request');
    return r;
  }

  /** Recover from an interrupted move, then start the idle sweep. */
  async start(): Promise<void> {
    await this.store.open();
    const rep = await this.store.recover();
    if (rep.tempsRemoved || rep.asidesRestored || rep.duplicatesResolved) this.log.warn({ ...rep }, 'tier: recovered from an interrupted move');
    if (this.opts.sweepMs > 0) {
      this.timer = setInterval(() => void this.sweep(), this.opts.sweepMs);
      this.timer.unref();
    }
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      // names left by a put or move in another process that died (a CLI put killed while a file was aside)
      const rep = await this.store.recoverOwnNames();
      if (rep.tempsRemoved || rep.asidesRestored) this.log.warn({ ...rep }, 'tier: recovered names of a process that died');
      const s = await this.store.evictIdle();
      if (s.movedFiles > 0) this.log.info({ files: s.movedFiles, bytes: s.movedBytes, skippedOpen: s.skippedOpen }, 'tier: idle files moved to the disk tier');
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'tier: idle sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
