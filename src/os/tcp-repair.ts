// TCP_REPAIR for socket offload (paper §4.2, docs/offload-socket.md): freeze a connected TCP socket and dump its
// state, restore a socket that carries on the same connection (on the host with IP_TRANSPARENT, or in the guest in
// place of the app's own fd), and the small socket calls around it. The system calls are in the native addon
// (CRIU libsoccr's recipe); this file converts its state to the JSON-safe wire form and its errors to registry codes.
import type { Socket } from 'node:net';
import { HylicsError } from '../core/errors/index.js';
import type { TcpStateT } from '../core/protocol/ops/offload.js';
import { fromNative, nativeAddon, type Addon, type NativeTcpState } from './native.js';

/** TCP states of TCP_INFO (include/net/tcp_states.h) this code looks at. */
export const TCP_STATE = {
  ESTABLISHED: 1, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7, CLOSE_WAIT: 8, LAST_ACK: 9, CLOSING: 11,
} as const;

function need(): Addon {
  const { addon, reason, stale } = nativeAddon();
  if (stale) throw stale;
  if (!addon) {
    throw new HylicsError('HYLICS_ERR_TCP_REPAIR_UNAVAILABLE', `socket offload needs the native addon (${reason ?? 'not loaded'}); build it with npm run build:native`);
  }
  return addon;
}

const repairError = (e: unknown, what: string): HylicsError => fromNative(e, 'tcpRepair', what, { what });
const socketError = (e: unknown, what: string): HylicsError => fromNative(e, 'socket', what, { what });

/** Is TCP_REPAIR usable here at all (addon loaded)? The privilege is only known when it is tried. */
export function tcpRepairAvailable(): { ok: boolean; reason?: string } {
  try { need(); return { ok: true }; } catch (e) { return { ok: false, reason: (e as Error).message }; }
}

export function toWire(s: NativeTcpState): TcpStateT {
  return { ...s, sendQueue: s.sendQueue.toString('base64'), recvQueue: s.recvQueue.toString('base64'), window: { ...s.window } };
}

export function fromWire(s: TcpStateT): NativeTcpState {
  return { ...s, sendQueue: Buffer.from(s.sendQueue, 'base64'), recvQueue: Buffer.from(s.recvQueue, 'base64'), window: { ...s.window } };
}

/** Freeze `fd` (TCP_REPAIR on; it stays frozen) and dump its state. On failure the socket is left as it was. */
export function freezeAndDump(fd: number): TcpStateT {
  const a = need();
  try { return toWire(a.tcpRepairDump(fd)); } catch (e) { throw repairError(e, 'freeze'); }
}

/** The packed state of tcpHandoffFreeze / tcpHandoffRestore (native/src/hylics_native.cc): local and remote IPv4
 *  (4 bytes each, network order), 17 u32 little-endian (PACKED_WORD order), then the send and receive queues. */
const PACKED_WORDS = 17;
const PACKED_HEADER = 8 + 4 * PACKED_WORDS;
const ipOf = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** The wire form of a packed state (base64 straight from the packed bytes: no intermediate Buffers). */
export function unpackState(b: Buffer): TcpStateT {
  const u = (i: number): number => b.readUInt32LE(8 + 4 * i);
  const sl = u(15);
  const rl = u(16);
  const h = PACKED_HEADER;
  return {
    localAddr: ipOf(b, 0), localPort: u(0), remoteAddr: ipOf(b, 4), remotePort: u(1), sendSeq: u(2), recvSeq: u(3),
    sendQueue: b.toString('base64', h, h + sl), unsentBytes: u(4), recvQueue: b.toString('base64', h + sl, h + sl + rl),
    mss: u(5), timestamp: u(6), options: u(7), sndWscale: u(8), rcvWscale: u(9),
    window: { sndWl1: u(10), sndWnd: u(11), maxWindow: u(12), rcvWnd: u(13), rcvWup: u(14) },
  };
}

function putIp(b: Buffer, o: number, addr: string): void {
  const p = addr.split('.');
  if (p.length !== 4) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `bad IPv4 address in state: ${addr}`, { addr });
  for (let i = 0; i < 4; i++) {
    const n = Number(p[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255 || p[i] === '') throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `bad IPv4 address in state: ${addr}`, { addr });
    b[o + i] = n;
  }
}

/** The packed form of a wire state (the queues decoded from base64 straight into it). */
export function packState(s: TcpStateT): Buffer {
  const sl = Buffer.byteLength(s.sendQueue, 'base64');
  const rl = Buffer.byteLength(s.recvQueue, 'base64');
  const h = PACKED_HEADER;
  const b = Buffer.allocUnsafe(h + sl + rl);
  putIp(b, 0, s.localAddr);
  putIp(b, 4, s.remoteAddr);
  const w = s.window;
  const words = [s.localPort, s.remotePort, s.sendSeq, s.recvSeq, s.unsentBytes, s.mss, s.timestamp, s.options,
    s.sndWscale, s.rcvWscale, w.sndWl1, w.sndWnd, w.maxWindow, w.rcvWnd, w.rcvWup];
  for (let i = 0; i < words.length; i++) b.writeUInt32LE(words[i]! >>> 0, 8 + 4 * i);
  const ws = b.write(s.sendQueue, h, sl, 'base64');
  const wr = b.write(s.recvQueue, h + ws, rl, 'base64');
  b.writeUInt32LE(ws, 8 + 4 * 15);
  b.writeUInt32LE(wr, 8 + 4 * 16);
  return ws + wr === sl + rl ? b : b.subarray(0, h + ws + wr);
}

/**
 * The DSCP of a frozen socket's packets (docs/offload-socket.md, "Frozen sockets send nothing"): TCP_REPAIR does not
 * stop a socket's timers, so a frozen socket still sends its loss probe, retransmissions and a pending delayed ACK,
 * with TCP timestamps newer than the state the other end restores (the client's PAWS then drops the restored
 * socket's segments until its RTO: 1 s, 2 s, 4 s). The freeze sets this DSCP on the socket (IP_TOS, read at every
 * transmit), hylicsd's steering table drops packets of the guest's address that carry it (prerouting: the guest's
 * frozen socket; output: the host's frozen copy), and a restore in place or a thaw sets the socket's own again. 57
 * (0b111001) is in pool 3 (xxxx01, experimental or local use, RFC 2474; unassigned) and maps to the same
 * priority as 0 (rt_tos2priority): nothing but this drop sees it.
 */
export const FROZEN_DSCP = 57;
/** FROZEN_DSCP as an IP_TOS value (the ECN bits are the kernel's). */
export const FROZEN_TOS = FROZEN_DSCP << 2;

/** A frozen socket's own IP_TOS and SO_PRIORITY, set again when it goes live (tos -1: nothing to set). */
export interface SavedTos { tos: number; prio: number }

/**
 * The guest's freeze for a handoff, one native call: the drop filter on (see dropFilter), TCP_REPAIR on, the state
 * dumped, and the frozen socket's packets get FROZEN_DSCP (the host drops them: it sends nothing that could reach
 * the client); `saved` is what restoreForHandoff or thawHandoff sets again. On failure the socket is left as it was
 * (filter detached, repair off).
 */
export function freezeSilent(fd: number): { state: TcpStateT; saved: SavedTos } {
  const a = need();
  let b: Buffer;
  try { b = a.tcpHandoffFreeze(fd, FROZEN_TOS); } catch (e) { throw repairError(e, 'freeze'); }
  const state = unpackState(b);
  const end = PACKED_HEADER + b.readUInt32LE(8 + 4 * 15) + b.readUInt32LE(8 + 4 * 16);
  const saved = b.length >= end + 8 ? { tos: b.readInt32LE(end), prio: b.readInt32LE(end + 4) } : { tos: -1, prio: 0 };
  return { state, saved };
}

/**
 * A frozen socket whose connection stays here live again, one native call: its own IP_TOS and SO_PRIORITY (`saved`,
 * from freezeSilent), TCP_REPAIR off (the window probe), the drop filter detached.
 */
export function thawHandoff(fd: number, saved: SavedTos = { tos: -1, prio: 0 }): void {
  try { need().tcpHandoffThaw(fd, saved.tos, saved.prio); } catch (e) { throw repairError(e, 'thaw'); }
}

/**
 * The guest's restore after a hand-back, one native call: `state` on a socket under the fd number `fd` (or on the
 * same socket, inPlace), behind the drop filter while the state is set, the filter detached right before the thaw;
 * `noDelay`: TCP_NODELAY on it; `saved` (freezeSilent's): the socket's own IP_TOS and SO_PRIORITY set before the thaw.
 */
export function restoreForHandoff(
  state: TcpStateT,
  fd: number,
  opts: { inPlace?: boolean; noDelay?: boolean; saved?: SavedTos } = {},
): void {
  const a = need();
  const packed = packState(state);
  const flags = (opts.inPlace ? 2 : 0) | 4 | (opts.noDelay ? 8 : 0);
  const s = opts.saved ?? { tos: -1, prio: 0 };
  try { a.tcpHandoffRestore(packed, fd, flags, s.tos, s.prio); } catch (e) { throw repairError(e, 'restore'); }
}

export interface RestoreOptions {
  /** IP_TRANSPARENT: bind the connection's local address although it is not this host's (the host side). */
  transparent?: boolean;
  /** Put the new socket at this fd number (dup3), closing the frozen socket that was there (the guest side). */
  replaceFd?: number;
  /** Leave the socket frozen (true) or thaw it (default). */
  frozen?: boolean;
  /** With replaceFd: restore on that very socket (same open file description, blocking mode kept), so a socket
   *  another process shares (passed with SCM_RIGHTS) carries on too. */
  inPlace?: boolean;
  /** The new socket drops every packet (see dropFilter) from before it is bound while its state is set: thawed, until
   *  right before the thaw (the peer's answer to the window probe must get in); frozen, until dropFilter(fd, false). */
  dropFilter?: boolean;
  /** Cap the receive queue the restored socket builds up unread at about this many bytes (SO_RCVBUF set after
   *  the state's own queue is in; see capReceiveQueue). */
  maxRecvQueue?: number;
}

/**
 * Bound what a socket nobody reads takes in: SO_RCVBUF to a quarter of `maxBytes` (the kernel doubles it, and may
 * take one more segment, up to 64 KiB with GRO, while it is under that), so its receive queue stays under
 * `maxBytes` besides what it already holds. The peer's bytes beyond wait at the peer (the window closes, or a
 * segment the socket has no room for is dropped unacknowledged and sent again), so nothing is lost.
 */
export function capReceiveQueue(fd: number, maxBytes: number): number {
  const a = need();
  try { return a.setRecvBuffer(fd, Math.floor(maxBytes / 4)); } catch (e) { throw socketError(e, 'receive buffer'); }
}

/** A socket carrying on the connection of `state`; returns its fd (non-blocking, close-on-exec). Thawed (the host's
 *  takeover in every handoff): the state packed in one Buffer (tcpHandoffRestore), no object read through N-API
 *  property by property. */
export function restore(state: TcpStateT, opts: RestoreOptions = {}): number {
  const a = need();
  let fd: number;
  if (!opts.frozen) {
    const packed = packState(state);
    const flags = (opts.transparent ? 1 : 0) | (opts.inPlace ? 2 : 0) | (opts.dropFilter ? 4 : 0);
    try { fd = a.tcpHandoffRestore(packed, opts.replaceFd ?? -1, flags); } catch (e) { throw repairError(e, 'restore'); }
  } else {
    try {
      fd = a.tcpRepairRestore(fromWire(state), {
        ...(opts.transparent ? { transparent: true } : {}),
        ...(opts.replaceFd !== undefined ? { replaceFd: opts.replaceFd } : {}),
        ...(opts.inPlace ? { inPlace: true } : {}),
        repairOff: 0,
        ...(opts.dropFilter ? { dropFilter: true } : {}),
      });
    } catch (e) { throw repairError(e, 'restore'); }
  }
  if (opts.maxRecvQueue !== undefined) {
    try { capReceiveQueue(fd, opts.maxRecvQueue); } catch (e) {
      try { closeLeavingNothing(fd); } catch { /* gone */ }
      throw e;
    }
  }
  return fd;
}

/**
 * Attach (on) or detach a socket filter that drops every packet of the connection before TCP sees it: while a
 * connection moves, the socket it is leaving or arriving at receives nothing and answers nothing (the client's
 * segments are dropped and come again). The guest side's hold in socket offload, without a round trip.
 */
export function dropFilter(fd: number, on: boolean): void {
  const a = need();
  try { a.dropFilter(fd, on); } catch (e) { throw repairError(e, on ? 'drop filter' : 'drop filter off'); }
}

/** TCP_REPAIR on (freeze) or off (thaw; the kernel sends a window probe). */
export function setRepair(fd: number, on: boolean): void {
  try { need().tcpRepair(fd, on ? 1 : 0); } catch (e) { throw repairError(e, on ? 'freeze' : 'thaw'); }
}

/** Bytes not yet acknowledged (outq), not yet transmitted (unsent), not yet read (inq), and the TCP state. */
export function queues(fd: number): { outq: number; unsent: number; inq: number; state: number } {
  try { return need().tcpQueues(fd); } catch (e) { throw socketError(e, 'queues'); }
}

export function closeFd(fd: number): void {
  try { need().closeFd(fd); } catch (e) { throw socketError(e, 'close'); }
}

/**
 * Close a TCP socket so that nothing of it stays in the kernel, in any state: with TCP_REPAIR on, close is a
 * silent disconnect (no FIN, no RST, no orphan left retransmitting); if repair is refused, SO_LINGER 0 (an RST).
 */
export function closeLeavingNothing(fd: number): 'silent' | 'reset' {
  const a = need();
  let repaired = true;
  try { a.tcpRepair(fd, 1); } catch { repaired = false; }
  try {
    if (repaired) { a.closeFd(fd); return 'silent'; }
    a.abortClose(fd);
  } catch (e) { throw socketError(e, 'abort'); }
  return 'reset';
}

export function shutdownWrite(fd: number): void {
  try { need().shutdownWrite(fd); } catch (e) { throw socketError(e, 'shutdown'); }
}

/** The fd under a Node socket (a TCP handle), or undefined. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

interface TcpHandle { fd?: number; reading?: boolean; readStop(): number; readStart(): number }
const handleOf = (socket: Socket): TcpHandle | undefined =>
  (socket as unknown as { _handle?: TcpHandle })._handle ?? undefined;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** How often the quiesce loop looks at the socket's queues. */
const QUIESCE_POLL_MS = 1;

/**
 * Make a Node socket ready to freeze: Node's own write queue flushed, libuv no longer reading it (so it leaves
 * the fd alone and re-registers it with epoll when reading starts again, after a restore put a new socket under
 * the same fd number), every byte in the kernel's queue transmitted at least once (SIOCOUTQNSD 0) and at most
 * `maxUnacked` of them not yet acknowledged by the peer (SIOCOUTQ; they travel in the dumped state, as CRIU
 * carries them: waiting for the peer's ACK costs up to its delayed-ACK timeout, 40 ms), within `timeoutMs`.
 * Returns whether libuv was reading (give it to resumeReading). Throws HYLICS_ERR_OFFLOAD_NOT_QUIESCENT.
 */
export async function quiesce(
  socket: Socket,
  timeoutMs: number,
  maxUnacked = 0,
): Promise<{ wasReading: boolean; fd: number }> {
  const until = Date.now() + timeoutMs;
  const fd = socketFd(socket);
  const h = handleOf(socket);
  if (fd === undefined || !h || socket.destroyed || socket.connecting) {
    throw new HylicsError('HYLICS_ERR_OFFLOAD_NOT_QUIESCENT', 'not a connected TCP socket', { fd });
  }
  while (socket.writableLength > 0) {
    if (Date.now() > until || socket.destroyed)
      throw new HylicsError(
        'HYLICS_ERR_OFFLOAD_NOT_QUIESCENT',
        `${socket.writableLength} bytes still in Node's write queue`,
        { pending: socket.writableLength },
      );
    await Promise.race([new Promise((r) => socket.once('drain', r)), sleep(10)]);
  }
  const wasReading = h.reading === true;
  if (wasReading) {
    h.reading = false;
    h.readStop();
  }
  try {
    await quiesceQueues(fd, timeoutMs, maxUnacked, until);
  } catch (e) {
    // no addon (no TCP_REPAIR here) or a socket error: reading must go on, or the app's next request is never read
    resumeReading(socket, wasReading);
    throw e;
  }
  return { wasReading, fd };
}

/**
 * The kernel side of quiesce, for any TCP socket fd (a Node socket's, or an app's passed to the agent): wait until
 * every byte was transmitted and at most `maxUnacked` are not yet acknowledged, by `until`.
 * Throws HYLICS_ERR_OFFLOAD_NOT_QUIESCENT (or the addon's error).
 */
export async function quiesceQueues(
  fd: number,
  timeoutMs: number,
  maxUnacked = 0,
  until = Date.now() + timeoutMs,
): Promise<void> {
  for (;;) {
    const q = queues(fd);
    if (q.state !== TCP_STATE.ESTABLISHED) {
      throw new HylicsError(
        'HYLICS_ERR_OFFLOAD_NOT_QUIESCENT',
        `connection is not established (TCP state ${q.state})`,
        { state: q.state },
      );
    }
    if (q.unsent === 0 && q.outq <= maxUnacked) return;
    if (Date.now() > until) {
      throw new HylicsError(
        'HYLICS_ERR_OFFLOAD_NOT_QUIESCENT',
        `${q.outq} bytes not acknowledged by the peer (${q.unsent} not sent) after ${timeoutMs} ms`,
        { outq: q.outq, unsent: q.unsent },
      );
    }
    await sleep(QUIESCE_POLL_MS);
  }
}

/** Stop libuv reading a Node socket (the descriptor copy: the host sends on it meanwhile); returns whether it was
 *  reading (give it to resumeReading). */
export function stopReading(socket: Socket): boolean {
  const h = handleOf(socket);
  if (!h || h.reading !== true) return false;
  h.reading = false;
  h.readStop();
  return true;
}

/** Let libuv read the socket again (after quiesce, with or without a restore in between). */
export function resumeReading(socket: Socket, wasReading: boolean): void {
  const h = handleOf(socket);
  if (!wasReading || !h || socket.destroyed || h.reading) return;
  h.reading = true;
  h.readStart();
}

// job ids of the addon's sendfile engine used here; far above the ones src/os/native.ts hands out
let nextJob = 2 ** 40;

/**
 * sendfile(2) from `fileFd` into the socket `sockFd` on the addon's I/O thread (zero copy, the event loop never
 * waits). Resolves with the bytes sent; rejects with HYLICS_ERR_PEER_CLOSED / _SEND_STALLED (details.bytesSent).
 * `abort` (if given) is set to a function that stops the transfer.
 */
export async function sendfileFd(
  sockFd: number,
  fileFd: number,
  offset: number,
  count: number,
  stallMs: number,
  onStart?: (abort: () => void) => void,
): Promise<number> {
  const a = need();
  const id = nextJob++;
  onStart?.(() => a.abortSendfile(id));
  try {
    return await a.sendfile(sockFd, fileFd, offset, count, id, stallMs);
  } catch (e) {
    throw fromNative(e, 'send', 'sendfile', { bytesSent: 0 });
  }
}

export interface TransferOptions {
  /** A client that takes nothing for this long is gone (the send's stall limit, and the wait for its ACKs). */
  stallMs: number;
  /** After the send, wait until every byte was transmitted and at most this many are unacknowledged (none: return
   *  right after the send). */
  drainMaxUnacked?: number;
  /** Drained "ok": attach the drop filter, freeze and dump (the quick hand-back of socket offload). */
  freeze?: boolean;
  /** Frozen: its packets get FROZEN_DSCP (hylicsd's output rule drops them until the copy is closed); a thaw then
   *  sets IP_TOS 0 and SO_PRIORITY 0 again (thawHandoff with HOST_SOCKET_TOS). */
  silent?: boolean;
  /** How often the drain condition is checked (microseconds), on the addon's thread. */
  pollUs?: number;
  /** Bytes sent before the range (the app's response headers), corked with the range's first bytes (MSG_MORE):
   *  head and body share packets. */
  head?: Buffer;
  /** Called with a function that stops the transfer (the send: rejects with ECANCELED; the drain: "aborted"). */
  onStart?: (abort: () => void) => void;
  /** The socket is another process's (the descriptor copy): never sent with sendfile (which would block the addon's
   *  one I/O thread if that process cleared O_NONBLOCK) but read and sent with MSG_DONTWAIT; flags left alone. */
  sharedOut?: boolean;
}

/** What a socket restored by the host (a new socket) has before a silent freeze: the defaults. */
export const HOST_SOCKET_TOS: SavedTos = { tos: 0, prio: 0 };

export interface TransferResult {
  /** Range bytes the socket took. */
  bytes: number;
  /** Bytes of the head the socket took. */
  headBytes: number;
  /** With drainMaxUnacked: ok; closing (the client sent its FIN); gone (reset, or no ACK progress for stallMs);
   *  aborted (the abort function meanwhile). */
  drained?: 'ok' | 'closing' | 'gone' | 'aborted';
  /** Time the drain took (ms). */
  drainMs?: number;
  /** The drop filter is on the socket. */
  filtered: boolean;
  /** freeze, drained ok: the frozen socket's state. */
  state?: TcpStateT;
  /** freeze: the filter or the dump failed (the socket is not frozen; `filtered` says whether the filter is on). */
  freezeError?: HylicsError;
}

/**
 * Socket offload's part on the sending side in one job on the addon's I/O thread: `head` (if any) and sendfile(2)
 * of the range into `sockFd` (the head corked with the range's first bytes), then (drainMaxUnacked) the wait for
 * the client's ACKs, then (freeze) the drop filter, TCP_REPAIR and the dump: one crossing and no JS timer per
 * handoff. A send error rejects as sendfileFd does (details.bytesSent, and details.headBytes).
 */
export async function sendDrainFreeze(
  sockFd: number,
  fileFd: number,
  offset: number,
  count: number,
  opts: TransferOptions,
): Promise<TransferResult> {
  const a = need();
  const id = nextJob++;
  opts.onStart?.(() => a.abortSendfile(id));
  let r;
  try {
    const drainMax = opts.drainMaxUnacked ?? -1;
    const freeze = opts.freeze === true;
    const pollUs = opts.pollUs ?? 1000;
    const hush = opts.silent ? FROZEN_TOS : 0;
    const { stallMs, head } = opts;
    const shared = opts.sharedOut === true;
    r = await a.offloadTransfer(sockFd, fileFd, offset, count, id, stallMs, drainMax, freeze, pollUs, head, hush,
      shared);
  } catch (e) {
    throw fromNative(e, 'send', 'sendfile', { bytesSent: 0, headBytes: 0 });
  }
  const out: TransferResult = { bytes: r.bytes, headBytes: r.headBytes ?? 0, filtered: r.filtered };
  if (r.drained !== undefined) out.drained = r.drained;
  if (r.drainMs !== undefined) out.drainMs = r.drainMs;
  if (r.state) out.state = unpackState(r.state);
  if (r.freezeError !== undefined) out.freezeError = repairError(r.freezeError, 'freeze');
  return out;
}

/** Local and remote address of a connected IPv4 TCP socket given by fd (an fd an app passed over). */
export function tcpNames(fd: number): { localAddr: string; localPort: number; remoteAddr: string; remotePort: number } {
  try { return need().tcpNames(fd); } catch (e) { throw socketError(e, 'getsockname'); }
}

/** One message and the fd attached to it (SCM_RIGHTS; -1 when none), or null when nothing is there yet. */
export function recvWithFd(unixFd: number, maxBytes: number): { data: Buffer; fd: number; truncated: boolean } | null {
  try { return need().recvWithFd(unixFd, maxBytes); } catch (e) { throw socketError(e, 'recvmsg'); }
}

/** Send one message with `fd` attached (SCM_RIGHTS). */
export function sendWithFd(unixFd: number, data: Buffer, fd: number): number {
  try { return need().sendWithFd(unixFd, data, fd); } catch (e) { throw socketError(e, 'sendmsg'); }
}
