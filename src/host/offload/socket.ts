// Socket offload on the host (paper §4.2, second scheme; docs/offload-socket.md). A guest app hands one of its TCP
// connections over for the bulk send of a file from its share: begin (checks, hold the flow), send (restore the
// frozen connection with IP_TRANSPARENT, steer the flow here, sendfile, freeze again and hand the state back, or
// finish), release (drop the frozen copy and the hold). Every request is bound to the guest the channel belongs
// to; a guest can only hand over flows on its own address and send files of its own share.
import { closeSync } from 'node:fs';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SocketOffloadView } from '../../core/api.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { MAX_HANDOFF_HEAD_BYTES, MAX_QUEUE_BYTES } from '../../core/protocol/index.js';
import type {
  FallbackReason, OffloadBeginParamsT, OffloadHandoffParamsT, OffloadHandoffResultT, OffloadSendResultT,
  OffloadSendfdParamsT, OffloadSendfdResultT, TcpStateT,
} from '../../core/protocol/index.js';
import { closePeerSocket, netnsId, type PeerSocket } from '../../os/peer-socket.js';
import { openBeneath, openShareDir } from '../../os/native.js';
import {
  closeNftSession,
  ensureSteerTable,
  listSteerTableGuests,
  moveFlow,
  removePolicyRoutingIfUnused,
  removeSteerTable,
  type Flow,
  type SteerSet,
} from '../../os/nft-steer.js';
import {
  TCP_STATE, closeFd, closeLeavingNothing, dropFilter, freezeAndDump, queues, restore, sendDrainFreeze, sendfileFd,
  setRepair, shutdownWrite, tcpRepairAvailable, thawHandoff, HOST_SOCKET_TOS, type TransferResult,
} from '../../os/tcp-repair.js';
import type { ChannelBackend, DirectConn } from '../backends.js';

/** Handoffs one guest may have in flight. */
export const MAX_HANDOFFS_PER_GUEST = 128;
/** File bytes one guest may have in flight in handoffs (sum of the counts begun and not done). */
export const MAX_BYTES_PER_GUEST = 4 * 1024 ** 3;
/** A held flow whose guest never sends its state is let go after this (the guest gave up or died). */
export const HOLD_TIMEOUT_MS = 10_000;
/** A connection handed back but never released is finished by the host after this. */
export const RETURN_TIMEOUT_MS = 30_000;
/** A client that takes nothing for this long is gone (sendfile stall limit, and the wait for its ACKs). */
export const STALL_MS = 30_000;
/**
 * Longest the host waits, with the flow still steered here, for a connection it ends (FIN after the data) to be
 * closed: the client acknowledged every byte and our FIN and sent its own. After it the socket is closed leaving
 * nothing (no orphan in FIN-WAIT/CLOSING/LAST-ACK that would retransmit from the guest's address once the flow is
 * no longer steered, its client's answers going to the guest).
 */
export const CLOSE_MAX_MS = 10_000;
/** Poll interval of the socket's state while waiting for it to close. */
const CLOSE_POLL_MS = 20;
/** Steering kept after the host's socket closed, so late segments still meet its TIME-WAIT here (no RST). */
export const LINGER_MS = 2_000;
/** How often the native transfer job checks the client's ACKs before a hand-back (on the addon's thread). */
const DRAIN_POLL_US = 250;
/**
 * In return mode the host leaves the range's last bytes for the guest to send once it has the connection back.
 * Until then the client cannot have the whole response, so it cannot send its next request while the flow is
 * held for the hand-back (a held segment is dropped and waits for the client's retransmission timeout, 200 ms+).
 */
export const TAIL_BYTES = 1;
/**
 * Bytes sent by the host that may still wait for the client's ACK at hand-back: none. A client segment that reaches
 * the guest while it swaps its socket (the old one closed, the new one not yet hashed) meets only the listener,
 * which answers with an RST (seen in the e2e capture: the client's delayed ACK of the last bytes, ~40 ms after
 * them, arriving during the guest's restore); with everything acknowledged the client has nothing to send until it
 * gets the range's last byte from the guest. Costs up to the client's delayed-ACK time per handoff.
 */
export const HANDBACK_MAX_UNACKED = 0;
/**
 * The same for a guest that asks holdUntilRelease: the host holds the flow (its packets dropped at prerouting,
 * before TCP early demux; the `back` set) from the hand-back until the guest's first packet of the flow (its thawed
 * socket's window probe deletes the element in the packet path) or its release, so nothing of the client reaches the
 * guest while it swaps sockets, and the client's delayed ACK of the last bytes (~40 ms) is not waited for: the
 * unacknowledged bytes travel in the state (as CRIU carries them) and the window probe gets the client's ACK of them.
 */
export const HANDBACK_MAX_UNACKED_HELD = 64 * 1024;
/**
 * ...and at most this many of the connection's segments (MSS): the guest's restored socket starts with a fresh
 * congestion window (the initial 10 segments; TCP_REPAIR carries none) and counts the bytes the state hands it
 * unacknowledged as in flight, so with 10 or more of them it could not send the range's tail until an ACK came, and
 * the thaw's window probe does not reliably get one (it is out of the client's window: Linux answers those at most
 * once per 500 ms per socket, tcp_invalid_ratelimit, and not at all when PAWS drops it). The tail then waited for
 * the restored socket's loss probe, ~200 ms (captured on the guest's link: the tail left the guest 200-204 ms after
 * the probe; the client's TcpExtTCPACKSkippedSeq counted ~1 suppressed answer per handoff). With at most 6 the tail
 * fits in the window (an skb boundary can add one segment to the count) and the client's ACK of it covers all.
 */
export const HANDBACK_MAX_UNACKED_SEGMENTS = 6;
/**
 * autoRelease hand-backs (docs/offload-socket.md): the host keeps the state of a connection it handed back and its
 * file (to finish the connection, the range's tail included, at a `release { finish: true }` of a guest that could
 * not restore it) this long, and at most this many per guest (as many as handoffs in flight), instead of waiting for
 * a `release` per handoff. A guest that cannot restore says so at once (milliseconds).
 */
export const RETURNED_KEEP_MS = 10_000;
export const RETURNED_KEEP_MAX = MAX_HANDOFFS_PER_GUEST;
/** Handoff latencies kept per guest for the percentiles in `guest show`. */
const LATENCY_RING = 1024;

type Phase = 'held' | 'sending' | 'returned' | 'done';

interface Handoff {
  id: string;
  guest: string;
  flow: Flow;
  fileFd: number;
  offset: number;
  count: number;
  mode: 'return' | 'terminal';
  phase: Phase;
  hostFd?: number;
  abort?: () => void;
  /** The guest's channel closed: finish instead of handing back. */
  orphan: boolean;
  /** Begun with offload.socket.handoff: the guest's socket is behind its drop filter, nothing held here. */
  quick: boolean;
  /** quick, and the guest awaits the release before it thaws: the hand-back holds the flow until the release. */
  held?: boolean;
  /** held, and the guest sends no release: the host drops the kept state by itself (RETURNED_KEEP_MS). */
  auto?: boolean;
  /** When an auto hand-back was answered (performance.now()). */
  returnedAt?: number;
  /** The host's socket has the drop filter on (frozen after a quick hand-back). */
  filtered?: boolean;
  /** A quick hand-back's state: the host's copy is closed at once, this is kept to finish the connection if the
   *  guest cannot restore it (release with finish). */
  handedBack?: TcpStateT;
  /** Range bytes the host sent before a hand-back (the rest, the tail, is the guest's to send). */
  sent?: number;
  /** The handoff's head (offload.socket.handoff `head`: the app's response headers), sent before the range. */
  head?: Buffer;
  /** Bytes of the head the host's socket took. */
  headSent?: number;
  timer?: NodeJS.Timeout;
  t0: number;
}

export interface GuestOffloadInfo {
  addr: string;
  sharePath: string;
  /** The guest's network namespace on this kernel (sandbox guests: /run/netns/NAME): the descriptor copy takes only
   *  sockets of it. Absent (microVM guests): no descriptor copy. */
  netns?: string;
}

export { SOCKET_OFFLOAD_COPIES, type SocketOffloadCopy } from '../../core/protocol/index.js';
import type { SocketOffloadCopy } from '../../core/protocol/index.js';

export type SocketOffloadStats = SocketOffloadView;

interface Counters {
  handoffs: number;
  bytes: number;
  fallbacks: Record<string, number>;
  latencies: number[];
  /** Handoffs by how the host had the socket: fd (the descriptor copy) or repair (TCP_REPAIR). */
  byCopy: { fd: number; repair: number };
  /** Descriptor copies refused before anything was sent, by why (details.why, or the error code). */
  fdRefused: Record<string, number>;
}

export interface SocketOffloadOptions {
  log: {
    debug(o: object, m: string): void;
    info(o: object, m: string): void;
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
    /** pino's: the per-handoff debug line's object is built only when it is written. */
    isLevelEnabled?(level: string): boolean;
  };
  registry?: Registry;
  maxPerGuest?: number;
  /** File bytes in flight per guest (default MAX_BYTES_PER_GUEST). */
  maxBytesPerGuest?: number;
  /**
   * The daemon's id in its steering tables' names (`hylics_sock_<tag>_<guest>`, as module tables): two daemons'
   * same-named guests never share a table, and cleanupStale() removes only this daemon's.
   */
  tableTag?: string;
  /** A handoff opened `path` (share-relative) to send it: a use for the guest tier store (src/host/tier-uses.ts). */
  onFileUse?: (guest: string, path: string) => void;
  /** Offer sandbox guests the descriptor copy (default auto) or only the TCP_REPAIR handoff. */
  copy?: SocketOffloadCopy;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sameFlow = (a: Flow, b: Flow): boolean =>
  a.guestAddr === b.guestAddr &&
  a.guestPort === b.guestPort &&
  a.clientAddr === b.clientAddr &&
  a.clientPort === b.clientPort;

/** The state must be of the connection the handoff names (its checked local address and ports). */
function checkStateFlow(h: Handoff, s: TcpStateT): void {
  if (
    s.localAddr !== h.flow.guestAddr ||
    s.localPort !== h.flow.guestPort ||
    s.remoteAddr !== h.flow.clientAddr ||
    s.remotePort !== h.flow.clientPort
  ) {
    throw new HylicsError(
      'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW',
      'the state is of another connection than the one begun',
      { handoff: h.id },
    );
  }
}

/**
 * A state the guest could not be given: a queue over the wire's cap (MAX_QUEUE_BYTES). The host's restored socket
 * takes in at most that much unread (capReceiveQueue), so this is a last resort: the host then finishes the
 * connection itself (what it sent is whole; bytes the client pipelined meanwhile are not served).
 */
function checkQueues(s: TcpStateT): void {
  for (const [q, b64] of [['receive', s.recvQueue], ['send', s.sendQueue]] as const) {
    const n = Buffer.byteLength(b64, 'base64');
    if (n > MAX_QUEUE_BYTES) throw new HylicsError('HYLICS_ERR_TCP_REPAIR_FAILED', `the connection's ${q} queue holds ${n} bytes, over the ${MAX_QUEUE_BYTES} a state carries`, { queue: q, bytes: n, max: MAX_QUEUE_BYTES });
  }
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export class SocketOffload {
  private readonly handoffs = new Map<string, Handoff>();
  /** autoRelease hand-backs, per guest, oldest first: only their state is kept (no socket, no file, no timer). */
  private readonly returned = new Map<string, Map<string, Handoff>>();
  /** Host sockets of finished handoffs waiting to close (flow still steered); `cut`: close them now. */
  private readonly closing = new Set<{ guest: string; cut: boolean }>();
  private readonly tables = new Map<string, Promise<void>>();
  /** The guest address each table was made for (its frozen-socket drop rules match it). */
  private readonly tableAddrs = new Map<string, string>();
  /** The start-up cleanup (cleanupStale) while it runs: tables are made after it. */
  private cleaning: Promise<unknown> = Promise.resolve();
  private readonly counters = new Map<string, Counters>();
  private readonly unavailable: string | undefined;
  private guestInfo: ((guest: string) => GuestOffloadInfo) | undefined;
  private nextId = 1;
  /** The `why` labels of hylics_offload_socket_fd_refused_total used so far (removed with a guest). */
  private readonly fdRefusedWhys = new Set<string>();
  private readonly mHandoffs?: Counter<'guest' | 'copy'>;
  private readonly mFdRefused?: Counter<'guest' | 'why'>;
  private readonly mBytes?: Counter<'guest'>;
  private readonly mFallbacks?: Counter<'guest' | 'reason'>;
  private readonly mLatency?: Histogram<'guest'>;

  constructor(private readonly opts: SocketOffloadOptions) {
    const repair = tcpRepairAvailable();
    this.unavailable = process.getuid?.() !== 0 ? 'the daemon is not root (IP_TRANSPARENT, TCP_REPAIR, nftables)' : !repair.ok ? repair.reason : undefined;
    if (opts.registry) {
      const registers = [opts.registry];
      this.mHandoffs = new Counter({ name: 'hylics_offload_socket_handoffs_total', help: 'Connections a guest handed to the host for a send (socket offload), by how the host had the socket (copy: fd, the descriptor copy; repair, the TCP_REPAIR handoff)', labelNames: ['guest', 'copy'], registers });
      this.mFdRefused = new Counter({ name: 'hylics_offload_socket_fd_refused_total', help: 'Descriptor copies the host refused before sending anything (the guest library then uses the TCP_REPAIR handoff or sends itself), by why', labelNames: ['guest', 'why'], registers });
      this.mBytes = new Counter({ name: 'hylics_offload_socket_bytes_total', help: 'Bytes the host sent on guests\' handed-over connections (file ranges, and the heads sent before them)', labelNames: ['guest'], registers });
      this.mFallbacks = new Counter({ name: 'hylics_offload_socket_fallbacks_total', help: 'Sends the guest library kept in the guest, by reason', labelNames: ['guest', 'reason'], registers });
      this.mLatency = new Histogram({ name: 'hylics_offload_socket_handoff_seconds', help: 'Host-side handoff latency: takeover (restore + steer) plus hand-back (drain + freeze), without the send', labelNames: ['guest'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers });
    }
  }

  /** Serve the offload ops on the control channel; `info` names the guest's own address and share path. */
  wire(channels: Pick<ChannelBackend, 'handle' | 'onConnection'>, info: (guest: string) => GuestOffloadInfo): void {
    this.guestInfo = info;
    channels.handle('offload.socket.begin', (guest, p) => this.begin(guest, p as OffloadBeginParamsT));
    channels.handle('offload.socket.handoff', (guest, p, signal) => this.handoff(guest, p as OffloadHandoffParamsT, signal));
    channels.handle('offload.socket.send', (guest, p) => this.send(guest, p as { handoff: string; state: TcpStateT }));
    channels.handle('offload.socket.release', (guest, p) => this.release(guest, (p as { handoff: string }).handoff, (p as { finish?: boolean }).finish === true));
    // the descriptor copy: sandbox guests' apps on their direct socket only (DIRECT_ONLY_OPS: the request names the
    // app's process)
    if (this.opts.copy !== 'repair') channels.handle('offload.socket.sendfd', (guest, p, signal, conn) => this.sendfd(guest, p as OffloadSendfdParamsT, signal, conn));
    channels.handle('offload.socket.fallback', async (guest, p) => ({ counted: this.fallback(guest, (p as { reason: FallbackReason }).reason) }));
    channels.onConnection((guest, connected) => {
      if (connected) void this.guestConnected(guest);
      else void this.guestDisconnected(guest);
    });
  }

  /**
   * The guest's agent connected (each session start): its steering table is made now, with the rules that drop its
   * frozen sockets' packets (FROZEN_DSCP, for its address), so they are in place before its first handoff's freeze
   * (the guest freezes before it asks: made at the first takeover, they missed that handoff's frozen socket). Once
   * per guest and address (a reconnect costs nothing); removed with the guest (guestGone). A failure is logged and
   * the first handoff tries again. Resolves when the table is there or the attempt failed.
   */
  guestConnected(guest: string): Promise<void> {
    if (this.unavailable || !this.guestInfo) return Promise.resolve();
    let addr: string;
    try { addr = this.guestInfo(guest).addr; } catch { return Promise.resolve(); } // removed meanwhile
    return this.table(guest, addr).catch((e: unknown) => {
      this.opts.log.warn({ guest, err: String(e) }, 'socket offload: could not make the steering table (its first handoff tries again)');
    });
  }

  private count(guest: string): Counters {
    let c = this.counters.get(guest);
    if (!c) {
      c = { handoffs: 0, bytes: 0, fallbacks: {}, latencies: [], byCopy: { fd: 0, repair: 0 }, fdRefused: {} };
      this.counters.set(guest, c);
    }
    return c;
  }

  stats(guest: string): SocketOffloadStats {
    const c = this.count(guest);
    const sorted = [...c.latencies].sort((a, b) => a - b);
    const s: SocketOffloadStats = {
      available: this.unavailable === undefined,
      handoffs: c.handoffs,
      bytes: c.bytes,
      inFlight: [...this.handoffs.values()].filter((h) => h.guest === guest).length,
      fallbacks: { ...c.fallbacks },
      latencyMs: { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
      copy: this.opts.copy ?? 'auto',
      byCopy: { ...c.byCopy },
      fdRefused: { ...c.fdRefused },
    };
    if (this.unavailable) s.reason = this.unavailable;
    return s;
  }

  fallback(guest: string, reason: FallbackReason): boolean {
    const c = this.count(guest);
    c.fallbacks[reason] = (c.fallbacks[reason] ?? 0) + 1;
    this.mFallbacks?.inc({ guest, reason });
    return true;
  }

  /** The guest's steering table, made once (again if the guest's address changed: its rules that drop the frozen
   *  sockets' packets, FROZEN_DSCP, match the guest's address). */
  private table(guest: string, guestAddr: string): Promise<void> {
    let t = this.tables.get(guest);
    if (!t || this.tableAddrs.get(guest) !== guestAddr) {
      // after the start-up cleanup of a previous daemon's tables, should it still run: it must not remove this one
      const p = this.cleaning.then(() => ensureSteerTable(guest, this.tag, guestAddr));
      t = p;
      this.tables.set(guest, p);
      this.tableAddrs.set(guest, guestAddr);
      p.catch(() => {
        if (this.tables.get(guest) !== p) return;
        this.tables.delete(guest);
        this.tableAddrs.delete(guest);
      });
    }
    return t;
  }

  private get tag(): string {
    return this.opts.tableTag ?? '';
  }

  private move(guest: string, flow: Flow, to: SteerSet | null): Promise<void> {
    return moveFlow(guest, flow, to, this.tag);
  }

  private key(guest: string, id: string): string {
    return `${guest}/${id}`;
  }

  private get(guest: string, id: string): Handoff {
    const h = this.handoffs.get(this.key(guest, id));
    if (!h) throw new HylicsError('HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF', `no socket handoff ${id} in flight for this guest`, { handoff: id });
    return h;
  }

  async begin(guest: string, p: OffloadBeginParamsT): Promise<{ handoff: string; size: number; count: number }> {
    const { h, size } = this.open(guest, p);
    try {
      await this.table(guest, h.flow.guestAddr);
      await this.move(guest, h.flow, 'hold');
    } catch (e) {
      closeSync(h.fileFd);
      throw e;
    }
    this.handoffs.set(this.key(guest, h.id), h);
    h.timer = setTimeout(() => void this.expireHold(h), HOLD_TIMEOUT_MS);
    h.timer.unref();
    return { handoff: h.id, size, count: h.count };
  }

  /**
   * begin + send in one round trip (offload.socket.handoff): the guest already froze the connection behind its
   * drop filter, so no packet reaches its socket and the host holds nothing; the flow goes straight to `steer`.
   */
  async handoff(guest: string, p: OffloadHandoffParamsT, signal?: AbortSignal): Promise<OffloadHandoffResultT> {
    const { state, holdUntilRelease, autoRelease, head: head64, ...begin } = p;
    const head = head64 !== undefined ? Buffer.from(head64, 'base64') : undefined;
    if (head && head.length > MAX_HANDOFF_HEAD_BYTES) {
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `the handoff's head is ${head.length} bytes (at most ${MAX_HANDOFF_HEAD_BYTES})`, { headBytes: head.length, max: MAX_HANDOFF_HEAD_BYTES });
    }
    const { h } = this.open(guest, begin, head);
    // checked before the handoff is registered: a refusal thrown from transfer() left it in flight for good (no hold
    // timer in this path), its file open and counted against the guest's budget
    try { checkStateFlow(h, state); } catch (e) { closeSync(h.fileFd); throw e; }
    h.quick = true;
    h.held = holdUntilRelease === true;
    h.auto = h.held && autoRelease === true;
    // an autoRelease hand-back of this connection: the guest has it back (it hands it over again); its kept state
    // goes, and this handoff's steer takes the flow out of `back` if the window probe had not
    const kept = this.returned.get(guest);
    if (kept) for (const [id, old] of kept) if (sameFlow(old.flow, h.flow)) { kept.delete(id); this.done(old); }
    // the guest's release of this connection's previous handoff may still be on its way (it is not awaited): the
    // guest is handing the connection over again, so it has it back; close the stale copy before restoring anew
    // (two sockets of one 4-tuple must never exist here)
    for (const old of [...this.handoffs.values()]) {
      if (old.guest === guest && old.phase === 'returned' && sameFlow(old.flow, h.flow)) await this.release(guest, old.id);
    }
    try { await this.table(guest, h.flow.guestAddr); } catch (e) { closeSync(h.fileFd); throw e; }
    this.handoffs.set(this.key(guest, h.id), h);
    // the caller can no longer take the connection back (its app died or closed its connection to us mid-handoff,
    // or its deadline passed): the host finishes the connection itself, as for a guest whose channel closed
    const abandon = (): void => this.abandoned(h, signal?.reason);
    if (signal?.aborted) abandon(); else signal?.addEventListener('abort', abandon, { once: true });
    try {
      const r = await this.transfer(h, state);
      // abandoned while the hand-back was under way (after the last check in transfer): nobody restores the state
      // it produced; the host restores its kept copy and finishes (the tail too)
      if (h.orphan && r.outcome === 'returned' && h.phase === 'returned') {
        this.returned.get(guest)?.delete(h.id); // an autoRelease hand-back's kept state: finished here instead
        void this.finishFrozen(h);
      }
      return { ...r, handoff: h.id, count: h.count, ...(head ? { headBytes: h.headSent ?? 0 } : {}) };
    } finally {
      signal?.removeEventListener('abort', abandon);
    }
  }

  /**
   * The descriptor copy (offload.socket.sendfd; docs/offload-socket.md "The descriptor copy"): a sandbox guest's app
   * names its socket's fd; hylicsd duplicates it from the app's process (the peer of this direct connection, by
   * SO_PEERPIDFD) and keeps it only if it is a non-blocking connected IPv4 TCP socket in the guest's netns, on the
   * guest's own address; then the same checks as a handoff (budget, the file beneath the share), and head + range in
   * one native job on the addon's I/O thread (non-blocking, STALL_MS). No freeze, no steering: the app's socket is
   * live and the app leaves it alone until the answer. The duplicate is closed on every path. Refusals (nothing
   * sent) carry no details.bytesSent; a failed send answers with details.bytesSent and details.headBytes.
   */
  async sendfd(
    guest: string, p: OffloadSendfdParamsT, signal?: AbortSignal, conn?: DirectConn,
  ): Promise<OffloadSendfdResultT> {
    const refused = (e: unknown): never => {
      const err = toHylicsError(e);
      const why = typeof err.details?.why === 'string' ? err.details.why : err.code;
      const c = this.count(guest);
      c.fdRefused[why] = (c.fdRefused[why] ?? 0) + 1;
      this.fdRefusedWhys.add(why);
      this.mFdRefused?.inc({ guest, why });
      throw err;
    };
    let sock: PeerSocket | undefined;
    let h: Handoff | undefined;
    try {
      if (this.unavailable || !this.guestInfo) throw new HylicsError('HYLICS_ERR_OFFLOAD_UNAVAILABLE', `socket offload is not available: ${this.unavailable ?? 'not wired'}`);
      if (!conn) throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', 'the descriptor copy is served on the guest\'s direct offload socket only');
      const head = p.head !== undefined ? Buffer.from(p.head, 'base64') : undefined;
      if (head && head.length > MAX_HANDOFF_HEAD_BYTES) {
        throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `the head is ${head.length} bytes (at most ${MAX_HANDOFF_HEAD_BYTES})`, { headBytes: head.length, max: MAX_HANDOFF_HEAD_BYTES });
      }
      const info = this.guestInfo(guest);
      if (!info.netns) throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', 'this guest does not share the host\'s kernel (no descriptor copy)');
      sock = conn.takeSocket(p.fd, netnsId(info.netns));
      if (sock.localAddr !== info.addr) {
        throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_REFUSED', `the socket's local address ${sock.localAddr} is not the guest's address ${info.addr}`, { why: 'not-guest-addr', localAddr: sock.localAddr, guestAddr: info.addr });
      }
      ({ h } = this.open(guest, {
        localAddr: sock.localAddr, localPort: sock.localPort, remoteAddr: sock.remoteAddr, remotePort: sock.remotePort,
        path: p.path, offset: p.offset, ...(p.count !== undefined ? { count: p.count } : {}), mode: 'return',
      }, head));
    } catch (e) {
      if (sock) closePeerSocket(sock.fd);
      return refused(e);
    }
    // in flight (the budget counts it) until the send ends
    h.quick = true;
    h.phase = 'sending';
    h.hostFd = sock.fd;
    this.handoffs.set(this.key(guest, h.id), h);
    const abort = (): void => h.abort?.();
    // the app can no longer get the answer (it died or closed its connection, or its deadline passed): stop; the
    // app's socket is its own (closed with the app, or the app closes it on the error)
    if (signal?.aborted) h.orphan = true; else signal?.addEventListener('abort', abort, { once: true });
    const c = this.count(guest);
    const overheadMs = performance.now() - h.t0; // the checks and the file's open: no takeover, no hand-back
    try {
      if (h.orphan) throw new HylicsError('HYLICS_ERR_PEER_CLOSED', 'the app went away before the send', { bytesSent: 0, headBytes: 0 });
      const r = await sendDrainFreeze(sock.fd, h.fileFd, h.offset, h.count, {
        stallMs: STALL_MS,
        sharedOut: true,
        ...(h.head ? { head: h.head } : {}),
        onStart: (stop) => { h.abort = stop; },
      });
      h.headSent = r.headBytes;
      this.account(c, h, r.bytes, overheadMs, 'fd');
      return { bytes: r.bytes, headBytes: r.headBytes, count: h.count };
    } catch (e) {
      const err = toHylicsError(e);
      const sent = typeof err.details?.bytesSent === 'number' ? err.details.bytesSent : 0;
      h.headSent = typeof err.details?.headBytes === 'number' ? err.details.headBytes : 0;
      this.account(c, h, sent, overheadMs, 'fd'); // as a failed handoff's: its overhead, not 0 (the p50 would drop)
      // bytesSent always present: the library must not send the range itself after this
      throw new HylicsError(err.code, err.message, { ...err.details, bytesSent: sent, headBytes: h.headSent });
    } finally {
      signal?.removeEventListener('abort', abort);
      closePeerSocket(sock.fd);
      h.hostFd = undefined;
      this.done(h);
    }
  }

  /**
   * The checks of a handoff (the guest's own address, budget, the file beneath its share): a new handoff, not yet
   * registered.
   */
  private open(guest: string, p: OffloadBeginParamsT, head?: Buffer): { h: Handoff; size: number } {
    if (this.unavailable || !this.guestInfo) throw new HylicsError('HYLICS_ERR_OFFLOAD_UNAVAILABLE', `socket offload is not available: ${this.unavailable ?? 'not wired'}`);
    const info = this.guestInfo(guest);
    if (p.localAddr !== info.addr) {
      throw new HylicsError('HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW', `the connection's local address ${p.localAddr} is not the guest's address ${info.addr}`, { localAddr: p.localAddr, guestAddr: info.addr });
    }
    const inFlight = [...this.handoffs.values()].filter((h) => h.guest === guest).length;
    const max = this.opts.maxPerGuest ?? MAX_HANDOFFS_PER_GUEST;
    if (inFlight >= max) throw new HylicsError('HYLICS_ERR_OFFLOAD_BUDGET', `${inFlight} socket handoffs in flight (at most ${max} per guest)`, { inFlight, max });
    const dir = openShareDir(info.sharePath);
    let file;
    try { file = openBeneath(dir, p.path); } finally { closeSync(dir); }
    const offset = Math.min(p.offset, file.size);
    const count = Math.min(p.count ?? file.size - offset, file.size - offset);
    // a head counts as bytes of the handoff
    const weight = (x: { count: number; head?: Buffer }): number => x.count + (x.head?.length ?? 0);
    const bytesInFlight = [...this.handoffs.values()].reduce((n, x) => n + (x.guest === guest ? weight(x) : 0), 0);
    const maxBytes = this.opts.maxBytesPerGuest ?? MAX_BYTES_PER_GUEST;
    const mine = weight({ count, ...(head ? { head } : {}) });
    if (bytesInFlight + mine > maxBytes) {
      closeSync(file.fd);
      throw new HylicsError('HYLICS_ERR_OFFLOAD_BUDGET', `${bytesInFlight} + ${mine} bytes in socket handoffs (at most ${maxBytes} in flight per guest)`, { bytesInFlight, count: mine, maxBytes });
    }
    this.opts.onFileUse?.(guest, p.path);
    const flow: Flow = {
      guestAddr: p.localAddr,
      guestPort: p.localPort,
      clientAddr: p.remoteAddr,
      clientPort: p.remotePort,
    };
    const id = `h${this.nextId++}`;
    const h: Handoff = { id, guest, flow, fileFd: file.fd, offset, count, mode: p.mode, phase: 'held', orphan: false, quick: false, t0: performance.now() };
    if (head) h.head = head;
    return { h, size: file.size };
  }

  async send(guest: string, p: { handoff: string; state: TcpStateT }): Promise<OffloadSendResultT> {
    const h = this.get(guest, p.handoff);
    if (h.phase !== 'held') throw new HylicsError('HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF', `handoff ${h.id} is ${h.phase}, not waiting for its state`, { handoff: h.id, phase: h.phase });
    return this.transfer(h, p.state);
  }

  /**
   * Take the connection over (restore, steer), send, and hand it back frozen or finish it. `h.quick`: the guest's
   * socket sits behind its drop filter and nothing is held here: the hand-back puts the host's socket behind the
   * same filter before freezing it and then only drops the flow from `steer`.
   */
  private async transfer(h: Handoff, s: TcpStateT): Promise<OffloadSendResultT> {
    const guest = h.guest;
    checkStateFlow(h, s);
    clearTimeout(h.timer);
    h.phase = 'sending';
    const c = this.count(guest);
    const tStart = performance.now();
    let tRestored = tStart;
    let overheadMs = 0;
    try {
      if (h.quick) {
        // thawed before the flow is steered here: a client segment meets a live socket, never a frozen one or none
        // (an RST); until the steer, the guest's filter drops what the client sends (its reply to the window probe)
        h.hostFd = restore(s, { transparent: true, maxRecvQueue: MAX_QUEUE_BYTES });
        tRestored = performance.now();
        await this.move(guest, h.flow, 'steer');
      } else {
        // frozen until the flow is steered here: a client segment must never meet "no socket" (an RST)
        h.hostFd = restore(s, { transparent: true, frozen: true, maxRecvQueue: MAX_QUEUE_BYTES });
        await this.move(guest, h.flow, 'steer');
        setRepair(h.hostFd, false);
      }
    } catch (e) {
      // nothing was sent: the guest's frozen socket is still the connection; hand the state back unchanged. Our
      // copy goes silently: in the quick path it is already thawed, and a plain close sent the client a FIN from
      // the guest's address (seen as wrk read errors) and left an orphan in FIN-WAIT-1 holding the state's
      // unacknowledged bytes (the response header); TCP_REPAIR on first makes the close a silent disconnect
      if (h.hostFd !== undefined) {
        try {
          closeLeavingNothing(h.hostFd);
        } catch {
          /* already gone */
        }
        h.hostFd = undefined;
      }
      await this.move(guest, h.flow, h.quick ? null : 'hold').catch(() => undefined);
      h.phase = 'returned';
      if (h.quick) this.done(h); else this.armReturnTimer(h);
      const err = toHylicsError(e);
      this.opts.log.warn({ guest, handoff: h.id, err: err.message }, 'socket offload: takeover failed, connection stays with the guest');
      return { bytes: 0, outcome: 'returned', state: s, reason: `${err.code}: ${err.message}` };
    }
    overheadMs += performance.now() - h.t0;
    const tSteered = performance.now();
    const count = h.quick && h.mode === 'return' && !h.orphan ? Math.max(0, h.count - TAIL_BYTES) : h.count;
    // hand back (return mode): after the send, everything transmitted and acknowledged (quick: at most
    // HANDBACK_MAX_UNACKED not yet), then (quick) the drop filter, freeze and dump: all in one native job
    const handBack = h.mode !== 'terminal' && !h.orphan;
    let r: TransferResult;
    try {
      r = await sendDrainFreeze(h.hostFd, h.fileFd, h.offset, count, {
        stallMs: STALL_MS,
        pollUs: DRAIN_POLL_US,
        ...(h.head ? { head: h.head } : {}),
        // silent: the frozen copy's packets (a loss probe of what it left unacknowledged, before it is closed below)
        // are dropped by the steering table's output rule (FROZEN_DSCP)
        ...(handBack ? { drainMaxUnacked: this.maxUnacked(h, s.mss), freeze: h.quick, silent: h.quick } : {}),
        onStart: (abort) => { h.abort = abort; },
      });
    } catch (e) {
      const err = toHylicsError(e);
      const sent = typeof err.details?.bytesSent === 'number' ? err.details.bytesSent : 0;
      h.headSent = typeof err.details?.headBytes === 'number' ? err.details.headBytes : 0;
      this.account(c, h, sent, overheadMs);
      await this.closeAndLinger(h);
      return { bytes: sent, outcome: 'peer-gone', reason: `${err.code}: ${err.message}` };
    }
    let bytes = r.bytes;
    h.headSent = r.headBytes;
    const drained = r.drained;
    h.filtered = r.filtered;
    const finishHere = async (): Promise<OffloadSendResultT> => {
      if (bytes === count && count < h.count) {
        // orphaned during a return-mode send: nobody takes the connection back, so the tail goes from here too
        bytes += await sendfileFd(h.hostFd!, h.fileFd, h.offset + bytes, h.count - count, STALL_MS).catch(() => 0);
      }
      this.account(c, h, bytes, overheadMs);
      await this.finish(h);
      return { bytes, outcome: 'finished' };
    };
    if (!handBack) return finishHere();
    if ((drained === 'ok' || drained === 'aborted') && h.orphan) {
      // abandoned during the drain (the abort hook ends it as "aborted"): finish here; a socket the job froze
      // behind the filter is thawed (a window probe) and let in again first
      try {
        if (r.state) thawHandoff(h.hostFd, HOST_SOCKET_TOS);
        else if (h.filtered) dropFilter(h.hostFd, false);
      } catch { /* finish copes */ }
      h.filtered = false;
      return finishHere();
    }
    h.sent = bytes;
    if (drained !== 'ok') {
      this.account(c, h, bytes, overheadMs);
      if (drained === 'closing') { await this.finish(h); return { bytes, outcome: 'finished', reason: 'the client closed its side' }; }
      await this.closeAndLinger(h);
      return { bytes, outcome: 'peer-gone', reason: 'the client stopped acknowledging' };
    }
    const t2 = performance.now();
    let state: TcpStateT;
    try {
      if (h.quick) {
        // the job put the drop filter on (nothing reaches our socket from then on; the client's segments that meet
        // it, or once the flow is no longer steered the guest's filtered socket, are dropped and come again) and
        // froze and dumped it
        if (r.freezeError || !r.state) throw r.freezeError ?? new HylicsError('HYLICS_ERR_TCP_REPAIR_FAILED', 'no state from the transfer');
        state = r.state;
        checkQueues(state);
        // held: the client's segments are dropped here while the guest swaps its socket, until the guest's first
        // packet of the flow (its thaw's window probe) ends the hold in the packet path, or its release does
        await this.move(guest, h.flow, h.held ? 'back' : null);
        // our frozen copy goes now (silently: repair mode), not at the guest's release: while a socket of the
        // flow's 4-tuple exists here, TCP early demux hands the client's segments to it before any routing, so
        // the flow's next request and ACKs would die at its filter until the client's retransmission timeout
        // (200 ms+, measured in 4 of 10 keep-alive requests); the state stays for a release with finish
        try { closeFd(h.hostFd); } catch { /* frozen: closes silently */ }
        h.hostFd = undefined;
        h.filtered = false;
        h.handedBack = state;
      } else {
        await this.move(guest, h.flow, 'hold');
        state = freezeAndDump(h.hostFd);
        checkQueues(state);
      }
    } catch (e) {
      // could not freeze: finish here rather than lose the connection
      // (frozen when the dump was refused by checkQueues; thawing a socket not in repair mode only probes)
      if (h.hostFd !== undefined) {
        try {
          // its own DSCP again (a silent freeze set FROZEN_DSCP), thawed, the filter detached
          if (h.filtered) thawHandoff(h.hostFd, HOST_SOCKET_TOS); else setRepair(h.hostFd, false);
        } catch {
          /* finish copes */
        }
        h.filtered = false;
      }
      await this.move(guest, h.flow, 'steer').catch(() => undefined);
      return { ...(await finishHere()), reason: `hand-back failed: ${toHylicsError(e).message}` };
    }
    overheadMs += performance.now() - t2;
    if (this.opts.log.isLevelEnabled?.('debug') !== false) this.opts.log.debug({ guest, handoff: h.id, port: h.flow.clientPort, inAt: Math.round(performance.timeOrigin + h.t0), outAt: Math.round(performance.timeOrigin + performance.now()), takeoverMs: Math.round(tSteered - h.t0), startMs: +(tStart - h.t0).toFixed(1), restoreMs: +(tRestored - tStart).toFixed(1), steerMs: +(tSteered - tRestored).toFixed(1), sendMs: Math.round(t2 - tSteered - (r.drainMs ?? 0)), drainMs: Math.round(r.drainMs ?? 0), handbackMs: Math.round(performance.now() - t2), bytes }, 'socket offload: handed back');
    this.account(c, h, bytes, overheadMs);
    h.phase = 'returned';
    if (h.auto) this.keepReturned(h); else this.armReturnTimer(h);
    return { bytes, outcome: 'returned', state };
  }

  /** Bytes the host's socket may leave unacknowledged at a hand-back of `h`, whose segments are at most `mss`. */
  private maxUnacked(h: Handoff, mss: number): number {
    if (h.held) return Math.min(HANDBACK_MAX_UNACKED_HELD, HANDBACK_MAX_UNACKED_SEGMENTS * Math.max(1, mss));
    return h.quick ? HANDBACK_MAX_UNACKED : 0;
  }

  /** Count a handoff of `h` that sent `bytes` of its range (and h.headSent bytes of its head before them). */
  private account(c: Counters, h: Handoff, rangeBytes: number, overheadMs: number, copy: 'fd' | 'repair' = 'repair'): void {
    const { guest } = h;
    const bytes = rangeBytes + (h.headSent ?? 0);
    c.handoffs++;
    c.byCopy[copy]++;
    c.bytes += bytes;
    c.latencies.push(overheadMs);
    if (c.latencies.length > LATENCY_RING) c.latencies.shift();
    this.mHandoffs?.inc({ guest, copy });
    this.mBytes?.inc({ guest }, bytes);
    this.mLatency?.observe({ guest }, overheadMs / 1000);
  }

  /**
   * An autoRelease hand-back: no longer in flight (the connection is the guest's), only its state and file are kept
   * for a `release { finish: true }`, RETURNED_KEEP_MS and RETURNED_KEEP_MAX per guest at most. No timer and no set
   * change: the hold in `back` ends in the packet path or expires (BACK_HOLD_MAX_S).
   */
  private keepReturned(h: Handoff): void {
    clearTimeout(h.timer);
    this.handoffs.delete(this.key(h.guest, h.id));
    h.returnedAt = performance.now();
    let kept = this.returned.get(h.guest);
    if (!kept) { kept = new Map(); this.returned.set(h.guest, kept); }
    kept.set(h.id, h);
    for (const [id, old] of kept) {
      if (kept.size <= RETURNED_KEEP_MAX && h.returnedAt - old.returnedAt! <= RETURNED_KEEP_MS) break;
      kept.delete(id);
      this.done(old);
    }
  }

  /** The kept state of an autoRelease hand-back (removed), if not too old. */
  private takeReturned(guest: string, id: string): Handoff | undefined {
    const kept = this.returned.get(guest);
    const h = kept?.get(id);
    if (!h) return undefined;
    kept!.delete(id);
    if (performance.now() - h.returnedAt! <= RETURNED_KEEP_MS) return h;
    this.done(h);
    return undefined;
  }

  private armReturnTimer(h: Handoff): void {
    h.timer = setTimeout(() => {
      if (h.quick) {
        // the guest restored the connection as soon as it had the answer and only its release got lost: our copy
        // is stale, and thawing it would take the live connection from the guest. Drop it silently.
        this.opts.log.warn({ guest: h.guest, handoff: h.id }, 'socket offload: handed-back connection never released; the host drops its frozen copy');
        void this.release(h.guest, h.id).catch(() => undefined);
        return;
      }
      this.opts.log.warn({ guest: h.guest, handoff: h.id }, 'socket offload: connection handed back but never released; the host finishes it');
      void this.finishFrozen(h);
    }, RETURN_TIMEOUT_MS);
    h.timer.unref();
  }

  /** Terminal end on the host: FIN after the data, wait until the connection is closed, keep steering a moment. */
  private finish(h: Handoff): Promise<void> {
    return this.closeAndLinger(h, false);
  }

  /** A handed-back (frozen) connection whose guest went away: thaw it here and finish it. */
  private async finishFrozen(h: Handoff): Promise<void> {
    if (h.phase !== 'returned' || (h.hostFd === undefined && !h.handedBack)) return;
    h.phase = 'sending';
    try {
      if (h.hostFd === undefined && h.handedBack) {
        // a quick hand-back closed our copy: a new one from its state, frozen behind the filter
        h.hostFd = restore(h.handedBack, {
          transparent: true, frozen: true, dropFilter: true, maxRecvQueue: MAX_QUEUE_BYTES,
        });
        h.filtered = true;
      }
      if (h.hostFd === undefined) throw new HylicsError('HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF', 'no host copy to finish');
      if (h.filtered) {
        // behind the filter: steer first, then thaw, then let packets in
        await this.move(h.guest, h.flow, 'steer');
        setRepair(h.hostFd, false);
        dropFilter(h.hostFd, false);
        h.filtered = false;
      } else {
        setRepair(h.hostFd, false);
        await this.move(h.guest, h.flow, 'steer');
      }
      // a return-mode hand-back left the range's tail to the guest, which will not send it now
      const tail = h.count - (h.sent ?? h.count);
      if (tail > 0) h.sent! += await sendfileFd(h.hostFd, h.fileFd, h.offset + h.sent!, tail, STALL_MS).catch(() => 0);
    } catch (e) {
      this.opts.log.error({ guest: h.guest, handoff: h.id, err: String(e) }, 'socket offload: could not thaw a handed-back connection');
    }
    await this.finish(h);
  }

  /**
   * End the host's side of a connection and drop the flow only once nothing of the host's socket is left but a
   * TIME-WAIT: `gone` (the client reset or stopped acknowledging) closes at once; otherwise FIN after the data and
   * wait (steered) up to CLOSE_MAX_MS for the close. A socket not closed by then is closed leaving nothing.
   */
  private async closeAndLinger(h: Handoff, gone = true): Promise<void> {
    const fd = h.hostFd;
    h.hostFd = undefined;
    this.done(h);
    if (fd !== undefined) await this.closeWithoutOrphan(h, fd, gone);
    await sleep(LINGER_MS);
    await this.move(h.guest, h.flow, null).catch((e) => this.opts.log.error({ guest: h.guest, err: String(e) }, 'socket offload: could not drop a flow'));
  }

  private async closeWithoutOrphan(h: Handoff, fd: number, gone: boolean): Promise<void> {
    const state = (): number => { try { return queues(fd).state; } catch { return TCP_STATE.CLOSE; } };
    let st = state();
    if (!gone) {
      if (st === TCP_STATE.ESTABLISHED || st === TCP_STATE.CLOSE_WAIT) {
        try { shutdownWrite(fd); } catch { /* reset */ }
      }
      const c = { guest: h.guest, cut: false };
      this.closing.add(c);
      const until = Date.now() + CLOSE_MAX_MS;
      for (st = state(); st !== TCP_STATE.CLOSE && !c.cut && Date.now() < until; st = state()) {
        await sleep(CLOSE_POLL_MS);
      }
      this.closing.delete(c);
    }
    try {
      if (st === TCP_STATE.CLOSE) { closeFd(fd); return; }
      const how = closeLeavingNothing(fd);
      this.opts.log.info({ guest: h.guest, handoff: h.id, tcpState: st, how }, 'socket offload: connection not closed by the client; the host dropped its socket');
    } catch (e) {
      this.opts.log.error({ guest: h.guest, handoff: h.id, err: String(e) }, 'socket offload: could not close the host socket');
    }
  }

  private done(h: Handoff): void {
    clearTimeout(h.timer);
    if (h.phase !== 'done' && h.fileFd >= 0) { try { closeSync(h.fileFd); } catch { /* closed */ } }
    h.fileFd = -1;
    h.phase = 'done';
    this.handoffs.delete(this.key(h.guest, h.id));
  }

  private async expireHold(h: Handoff): Promise<void> {
    if (h.phase !== 'held') return;
    this.opts.log.warn({ guest: h.guest, handoff: h.id }, 'socket offload: the guest never sent the state; hold dropped');
    this.done(h);
    await this.move(h.guest, h.flow, null).catch(() => undefined);
  }

  /**
   * The requester of a handoff in flight can no longer get its answer (its connection to us closed: the app died
   * or closed it; or its deadline passed, after which the guest library drops its frozen socket): mark it orphan,
   * so its send finishes the connection here (the range's tail too, FIN, the silent close and the linger of
   * terminal mode) instead of handing it back to nobody (the flow then sat in `back`, the client waiting for the
   * last byte until RETURN_TIMEOUT_MS).
   */
  private abandoned(h: Handoff, reason: unknown): void {
    if (h.phase === 'done' || h.orphan) return;
    h.orphan = true;
    this.opts.log.info({ guest: h.guest, handoff: h.id, phase: h.phase, reason: reason instanceof Error ? reason.message : String(reason) }, 'socket offload: the requester went away mid-handoff; the host finishes the connection');
  }

  /** The guest restored its socket (returned) or gave up (held): drop the host's copy and the hold. */
  async release(guest: string, id: string, finish = false): Promise<{ released: boolean }> {
    const auto = this.takeReturned(guest, id);
    if (auto) {
      // the flow is in no set but `back` (ended by the window probe, or expiring): nothing to change there
      if (finish) void this.finishFrozen(auto); else this.done(auto);
      return { released: true };
    }
    const h = this.handoffs.get(this.key(guest, id));
    if (!h) return { released: false };
    if (h.phase === 'sending') throw new HylicsError('HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF', `handoff ${id} is still sending`, { handoff: id });
    if (finish && h.phase === 'returned') { clearTimeout(h.timer); void this.finishFrozen(h); return { released: true }; }
    if (h.hostFd !== undefined) { try { closeFd(h.hostFd); } catch { /* frozen: silent */ } h.hostFd = undefined; }
    this.done(h);
    // a quick hand-back already took the flow out of `steer`; a held one may still be in `back`, a three-step one
    // in `hold`
    if (!h.quick || h.held) await this.move(guest, h.flow, null);
    return { released: true };
  }

  /** The guest's channel closed: nothing can come back to it; finish what the host holds. */
  async guestDisconnected(guest: string): Promise<void> {
    // autoRelease hand-backs are the guest's connections already: forget their states, and end a hold still there
    const kept = [...(this.returned.get(guest)?.values() ?? [])];
    this.returned.delete(guest);
    for (const h of kept) this.done(h);
    const mine = [...this.handoffs.values()].filter((h) => h.guest === guest);
    await Promise.all(kept.map((h) => this.move(guest, h.flow, null).catch(() => undefined)));
    await Promise.all(mine.map(async (h) => {
      h.orphan = true;
      if (h.phase === 'held') { this.done(h); await this.move(guest, h.flow, null).catch(() => undefined); }
      else if (h.phase === 'returned' && h.quick) await this.release(guest, h.id).catch(() => undefined); // the guest had it back
      else if (h.phase === 'returned') await this.finishFrozen(h);
      // 'sending' finishes by itself (orphan) when the send ends
    }));
  }

  /** The guest is being removed: finish its handoffs, delete its table (and the routing when nobody needs it). */
  async guestGone(guest: string): Promise<void> {
    for (const h of [...this.handoffs.values()].filter((x) => x.guest === guest)) { h.abort?.(); h.orphan = true; }
    await this.guestDisconnected(guest);
    for (let i = 0; i < 100 && [...this.handoffs.values()].some((x) => x.guest === guest); i++) await sleep(50);
    await this.cutClosing((c) => c.guest === guest);
    // made at its agent's connection: wait for a creation still under way, or it could land after the removal
    const made = this.tables.get(guest);
    if (made) await made.catch(() => undefined);
    const hadTable = this.tables.delete(guest);
    this.tableAddrs.delete(guest);
    this.counters.delete(guest);
    for (const copy of ['fd', 'repair']) this.mHandoffs?.remove({ guest, copy });
    for (const why of this.fdRefusedWhys) this.mFdRefused?.remove({ guest, why });
    this.mBytes?.remove({ guest });
    this.mLatency?.remove({ guest });
    if (!hadTable) return; // never made here (a dead daemon's leftover is replaced whole when it is)
    await removeSteerTable(guest, this.tag).catch(() => undefined);
    await removePolicyRoutingIfUnused().catch(() => undefined);
  }


  /**
   * At daemon start: this daemon's steering tables (its tag is in their names) are a killed daemon's leftovers
   * (flows held or steered for handoffs that died with it; its sockets went with its process), as module tables
   * are (ModuleManager.cleanupStale): removed, whatever guest they are of, except tables in use here; another
   * daemon's are never touched. The routing goes too if nobody needs it. Returns the guests whose table went.
   */
  cleanupStale(): Promise<string[]> {
    const run = this.removeStale();
    this.cleaning = run.catch(() => undefined);
    return run;
  }

  private async removeStale(): Promise<string[]> {
    if (this.unavailable) return [];
    const stale = (await listSteerTableGuests(this.tag)).filter((g) => !this.tables.has(g));
    for (const g of stale) await removeSteerTable(g, this.tag);
    if (stale.length > 0) {
      this.opts.log.warn({ guests: stale }, 'socket offload: removed steering tables a previous daemon left');
      await removePolicyRoutingIfUnused();
    }
    return stale;
  }

  /** Close the waiting host sockets these select now, leaving nothing in the kernel, and wait until they are. */
  private async cutClosing(which: (c: { guest: string }) => boolean): Promise<void> {
    for (const c of this.closing) if (which(c)) c.cut = true;
    for (let i = 0; i < 100 && [...this.closing].some(which); i++) await sleep(CLOSE_POLL_MS);
  }

  async close(): Promise<void> {
    const guests = new Set([...this.handoffs.values()].map((h) => h.guest));
    for (const g of guests) await this.guestDisconnected(g);
    // the daemon's exit would leave them to the kernel as orphans on guests' addresses
    await this.cutClosing(() => true);
    closeNftSession();
  }
}
