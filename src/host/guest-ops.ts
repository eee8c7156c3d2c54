// What a guest may ask of hylicsd over its channel besides reports: its own offload modules (module.start, list,
// stop) and socket offload's handoffs. The guest is always the channel's, never a name in the message; each of
// these costs host work outside the guest's CPU quota, so each is rate-limited per guest (the operator's API
// calls are not).
import type { Command, CommandOp, CommandResult, ModuleStartBody } from '../core/api.js';
import type { ParamsOf } from '../core/protocol/index.js';
import { HylicsError } from '../core/errors/index.js';
import type { ChannelBackend } from './backends.js';
import { OpRateLimit } from './channel/budget.js';
import type { GuestOffloadInfo, SocketOffload } from './offload/socket.js';

/** Module starts/stops a guest may ask for over its channel: a burst, then this many per minute. */
const GUEST_MODULE_OPS_BURST = 20;
const GUEST_MODULE_OPS_PER_MINUTE = 30;
/** Socket handoffs a guest may begin over its channel (each costs host work outside its CPU quota: nft set
 *  changes, a restore, a send): a burst, then this many per minute; beyond, the guest library sends itself.
 *  1,000/s: a handoff costs the host ~2 ms of CPU since the fast path, so one guest can take at most ~2 cores;
 *  12,000/min (200/s) was below what one guest's wrk run reaches on a quiet 2-core host. */
export const GUEST_HANDOFFS_BURST = 2000;
export const GUEST_HANDOFFS_PER_MINUTE = 60_000;
/** The ops that start a handoff (three-step begin, one-round-trip handoff, the descriptor copy): one rate per guest
 *  for all. */
const HANDOFF_STARTS: ReadonlySet<string> = new Set(['offload.socket.begin', 'offload.socket.handoff', 'offload.socket.sendfd']);

export interface GuestOpsDeps {
  channels: ChannelBackend;
  /** The daemon's one command entry (its per-guest lock included). */
  execute: <K extends CommandOp>(cmd: Command<K>) => Promise<CommandResult<K>>;
  socketOffload?: SocketOffload;
  /** Handoffs a guest may begin: burst, then per minute (default GUEST_HANDOFFS_BURST / _PER_MINUTE). */
  handoffRate?: { burst: number; perMinute: number };
  /** The guest's own address and share, for socket offload's checks. */
  offloadInfo: (guest: string) => GuestOffloadInfo;
}

/** Register the guest-served module ops and socket offload's ops on the channel backend. */
export function wireGuestOps(deps: GuestOpsDeps): void {
  const { channels } = deps;
  // Guests control their own offload modules over the channel: the guest is the channel's, so a guest can
  // never name (start, stop, read) another guest's modules. Through execute(), so the per-guest lock is the
  // same as for the HTTP API (a guest cannot slip a module in while it is being removed). No hostPort: host
  // ports are the operator's to hand out (HTTP API / CLI on the host), not a guest's.
  // Each start or stop spawns processes and runs nft outside the guest's CPU quota: a guest looping them is
  // refused beyond a small rate (the operator's API calls are not limited).
  const moduleOps = new OpRateLimit(GUEST_MODULE_OPS_PER_MINUTE, GUEST_MODULE_OPS_BURST);
  const limited = (guest: string): void => {
    if (!moduleOps.take(guest))
      throw new HylicsError(
        'HYLICS_ERR_CHANNEL_BUSY',
        `module start/stop from the guest is limited to ${GUEST_MODULE_OPS_PER_MINUTE} per minute (burst ${GUEST_MODULE_OPS_BURST}); retry later`,
        { guest },
      );
  };
  channels.handle('module.start', (guest, p) => {
    limited(guest);
    const { hostPort, ...body } = p as ModuleStartBody; // checked against the op's schema by the channel
    if (hostPort !== undefined)
      throw new HylicsError(
        'HYLICS_ERR_INVALID_ARGUMENT',
        'a guest cannot ask for a host port; the host operator can (hylics module start GUEST --host-port N)',
      );
    return deps.execute({ op: 'module.start', name: guest, body });
  });
  channels.handle('module.list', async (guest) => ({
    modules: await deps.execute({ op: 'module.list', name: guest }),
  }));
  // Socket offload ops: their frames pass the channel budget like every op's; a handoff's start (begin, or the
  // one-round-trip handoff) is also rate-limited per guest like module start/stop (refused: the guest library
  // sends itself and reports the fallback, reason `budget`).
  const rate = deps.handoffRate ?? { burst: GUEST_HANDOFFS_BURST, perMinute: GUEST_HANDOFFS_PER_MINUTE };
  const handoffs = new OpRateLimit(rate.perMinute, rate.burst);
  const offloadChannels: Pick<ChannelBackend, 'handle' | 'onConnection'> = {
    onConnection: (fn) => channels.onConnection(fn),
    handle: (op, fn) =>
      channels.handle(op, async (guest, p, signal, conn) => {
        if (HANDOFF_STARTS.has(op) && !handoffs.take(guest)) {
          throw new HylicsError(
            'HYLICS_ERR_CHANNEL_BUSY',
            `socket handoffs from the guest are limited to ${rate.perMinute} per minute (burst ${rate.burst}); retry later`,
            { guest },
          );
        }
        return fn(guest, p, signal, conn);
      }, { direct: true }),
  };
  deps.socketOffload?.wire(offloadChannels, deps.offloadInfo);
  channels.handle('module.stop', (guest, p) => {
    limited(guest);
    return deps.execute({ op: 'module.stop', name: guest, id: (p as ParamsOf<'module.stop'>).id });
  });
}
