// Files the host reads from a guest's share on the guest's behalf (socket offload's sends) count as uses in the
// guest's tiered store, as host modules' served files do (module.event stats): otherwise the store would move a
// file the app keeps serving to the disk tier after the idle time, and the app's next open would fail. Names are
// collected per guest (deduplicated, at most TIER_USED_MAX_FILES per flush) and sent once a second as the event
// `tier.used`; the guest's agent checks each name itself (a name that is no tier name or not in the memory tier is
// skipped), so nothing here trusts or interprets them.
import { TIER_USED_MAX_FILES } from '../core/protocol/index.js';

/** How often collected names go to their guest; a use reaches the guest within about this. */
export const TIER_USES_FLUSH_MS = 1000;

export interface TierUsesSink {
  isConnected(guest: string): boolean;
  notify?(guest: string, event: string, data: unknown): boolean;
}

export class TierUses {
  private readonly pending = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  /** Names left out because a guest's batch was full (counted, for tests and the debug log). */
  dropped = 0;

  constructor(private readonly sink: TierUsesSink, private readonly flushMs = TIER_USES_FLUSH_MS) {}

  /** The host used `path` (share-relative) of `guest`'s share. */
  note(guest: string, path: string): void {
    let s = this.pending.get(guest);
    if (!s) { s = new Set(); this.pending.set(guest, s); }
    if (s.size >= TIER_USED_MAX_FILES && !s.has(path)) { this.dropped++; return; }
    s.add(path);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Send every guest's names now (a guest without a channel loses them: its agent is away and cannot evict). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [guest, names] of this.pending) {
      if (this.sink.isConnected(guest)) this.sink.notify?.(guest, 'tier.used', { source: 'socket-offload', files: [...names] });
    }
    this.pending.clear();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}
