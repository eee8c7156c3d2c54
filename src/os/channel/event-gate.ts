// Events the remote sends us: a rate limit in fixed one-second windows (a guest must not be able to flood the
// daemon with events), the allow-list, and a check against the event's schema. What fails is dropped and logged.
import type { OpRegistry } from '../../core/protocol/index.js';
import type { PeerLogger, PeerStats } from './peer-options.js';

const WINDOW_MS = 1000;

export class EventGate {
  private window = { start: 0, count: 0 };

  constructor(
    private readonly o: {
      registry: OpRegistry;
      allowEvents: Set<string> | undefined;
      maxPerSec: number;
      log: PeerLogger;
      stats: PeerStats;
    },
  ) {}

  /** May this event be delivered? Counts drops over the rate in stats.eventsDropped. */
  admit(event: string, data: unknown): boolean {
    const now = Date.now();
    if (now - this.window.start >= WINDOW_MS) this.window = { start: now, count: 0 };
    if (++this.window.count > this.o.maxPerSec) {
      this.o.stats.eventsDropped++;
      if (this.window.count === this.o.maxPerSec + 1)
        this.o.log.warn(
          { limit: this.o.maxPerSec },
          'channel: event rate limit reached; dropping events for the rest of this second',
        );
      return false;
    }
    if (this.o.allowEvents && !this.o.allowEvents.has(event)) {
      this.o.log.warn({ event }, 'channel: event not allowed on this channel dropped');
      return false;
    }
    try {
      this.o.registry.checkEvent(event, data);
    } catch (e) {
      this.o.log.warn({ event, err: (e as Error).message }, 'channel: invalid event dropped');
      return false;
    }
    return true;
  }
}
