// Socket offload in the guest (paper §4.2, second scheme; docs/offload-socket.md): an app keeps its own server
// and protocol and lets the host do only the bulk send of a file from the share.
//
//   import { hylicsSendfile, hylicsSend } from 'hylics/guest';
//   const sent = await hylicsSendfile(socket, '/mnt/hylics/video.mp4', { offset: start, count: length, head });
//   // the connection is the app's again (same socket object, sequence numbers advanced): keep-alive goes on
//
// `head` (the app's response headers, at most MAX_HANDOFF_HEAD_BYTES) goes in the handoff request and the host
// sends it with the range's first bytes, in the same packets: the app writes nothing itself before the send. (The
// older form, `socket.write(headers)` then `hylicsSendfile(socket, file, start, length)`, still works.)
//
// On hylicsd's direct offload socket (sandbox guests) when it offers offload.socket.sendfd, the host sends on a
// duplicate of this process's own socket descriptor (the descriptor copy: pidfd_getfd; nothing frozen or moved; the
// library only empties Node's write queue and stops reading until the answer). Otherwise, or when that is refused
// before anything was sent, or with copy 'repair' ($HYLICS_OFFLOAD_COPY=repair), the TCP_REPAIR handoff:
// the library quiesces the socket (Node's queue flushed, libuv no longer reading, everything transmitted), puts it
// behind a drop-everything socket filter (its own hold: nothing reaches the socket while it moves), freezes it with
// TCP_REPAIR and dumps it, and gives the state to the host in one round trip (offload.socket.handoff). The host
// sends all but the range's last byte and hands back the new state; the library restores it on the same socket
// (same fd, same open file description), thaws it, lifts the filter (the host drops the state it kept by itself:
// autoRelease) and sends the last byte itself. When offload cannot be used (no CAP_NET_ADMIN, no addon, the host
// refuses, the file is outside the share...) the bytes are sent from the guest instead and the reason is counted on
// the host (offload.socket.fallback) and kept in lastFallback().
import { closeSync, existsSync, openSync, fstatSync, readSync, statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { HylicsError, toHylicsError, type ErrorCode } from '../core/errors/index.js';
import {
  HOST_OFFLOAD_SOCKET, MAX_HANDOFF_HEAD_BYTES, type FallbackReason, type OffloadHandoffParamsT,
  type OffloadHandoffResultT, type OffloadSendfdResultT, type SocketOffloadCopy,
} from '../core/protocol/index.js';
import { KeyedSerial } from '../core/serial.js';
import { sendFileToSocket } from '../os/native.js';
import { freezeSilent, quiesce, restoreForHandoff, resumeReading, socketFd, stopReading, thawHandoff, type SavedTos } from '../os/tcp-repair.js';
import { DEFAULT_SHARE_DIR } from './agent.js';
import { AgentClient, defaultAgentSocket } from './lib.js';

/** How long the socket may take to become ready for a handoff (else: sent in the guest). */
export const QUIESCE_TIMEOUT_MS = 2_000;
/** Bytes (the app's headers) that may still wait for the client's ACK when the socket is frozen: they travel in
 *  the state (well under the state's 256 KiB queue cap) instead of waiting up to the client's delayed-ACK time. The
 *  frozen socket's retransmissions of them (its loss probe, its RTO) never reach the client: the freeze gives its
 *  packets FROZEN_DSCP, which hylicsd drops (docs/offload-socket.md, "Frozen sockets send nothing"). */
export const QUIESCE_MAX_UNACKED = 64 * 1024;
/** Longest a host send may take (200 MiB to a slow client is well within). */
export const SEND_TIMEOUT_MS = 10 * 60 * 1000;

export interface OffloadOptions {
  /** return (default): the connection comes back after the send; terminal: the host finishes it (FIN). */
  mode?: 'return' | 'terminal';
  /** The share as this guest sees it (default $HYLICS_SHARE or /mnt/hylics). */
  share?: string;
  /** A connected agent client (default: one shared per process: hylicsd's direct offload socket beside the agent's
   *  (HOST_OFFLOAD_SOCKET, sandbox guests; $HYLICS_HOST_OFFLOAD_SOCKET, `none` to skip it), else the agent's socket
   *  $HYLICS_AGENT_SOCKET). */
  client?: AgentClient;
  /** Never offload (the same call then just sends in the guest). */
  disabled?: boolean;
  /** How the host has the socket: auto (default: the descriptor copy when hylicsd offers it, on its direct socket)
   *  or repair (always the TCP_REPAIR handoff). Default $HYLICS_OFFLOAD_COPY or auto. */
  copy?: SocketOffloadCopy;
}

/** hylicsSendfile's options in one object: the range, the head, and the offload options. */
export interface SendfileOptions extends OffloadOptions {
  /** First byte of the file to send (default 0). */
  offset?: number;
  /** Bytes to send (default: to the end of the file). */
  count?: number;
  /** Bytes to send before the range, in order (the app's response headers; a string is written as UTF-8, as
   *  socket.write does). Up to MAX_HANDOFF_HEAD_BYTES they travel in the handoff and the host sends them with the
   *  range's first bytes; a larger head, or a send that stays in the guest, is written by the guest first. */
  head?: Buffer | string;
}

export interface SendfileResult {
  bytes: number;
  /** Who sent the bytes, and why not the host when it did not. */
  by: 'host' | 'guest';
  /** Bytes of the head sent before the range (with a head). */
  headBytes?: number;
  reason?: FallbackReason;
  /** host: the connection was finished by the host (terminal mode); the socket is closed. */
  finished?: boolean;
}

/** hylicsd's direct offload socket as this guest sees it (sandbox guests; absent in microVM guests), or undefined. */
export function hostOffloadSocket(): string | undefined {
  const env = process.env.HYLICS_HOST_OFFLOAD_SOCKET;
  if (env === 'none') return undefined;
  return env || join(dirname(defaultAgentSocket()), HOST_OFFLOAD_SOCKET);
}

/** The host's offload ops: on hylicsd's direct socket when this guest has one (no relay through the agent's
 *  process), else through the agent. */
async function connectHost(): Promise<AgentClient> {
  const name = `offload-${process.pid}`;
  const direct = hostOffloadSocket();
  if (direct !== undefined && existsSync(direct)) {
    try {
      return await AgentClient.connect({ socket: direct, name, timeoutMs: 2000 });
    } catch {
      /* an older daemon, or it is restarting: the agent's way still works */
    }
  }
  return AgentClient.connect({ socket: defaultAgentSocket(), name });
}

let shared: Promise<AgentClient> | undefined;
function client(opts: OffloadOptions): Promise<AgentClient> {
  if (opts.client) return Promise.resolve(opts.client);
  if (!shared) {
    const p = connectHost();
    shared = p;
    p.then((c) => c.once('close', () => { if (shared === p) shared = undefined; }), () => { if (shared === p) shared = undefined; });
  }
  return shared;
}

let last: { reason: FallbackReason; message: string } | undefined;
/** Why the last send stayed in the guest (undefined when it went through the host). */
export function lastFallback(): { reason: FallbackReason; message: string } | undefined {
  return last;
}

const REASON_OF: Partial<Record<ErrorCode, FallbackReason>> = {
  HYLICS_ERR_TCP_REPAIR_DENIED: 'no-cap-net-admin',
  HYLICS_ERR_TCP_REPAIR_UNAVAILABLE: 'no-tcp-repair',
  HYLICS_ERR_OFFLOAD_BUDGET: 'budget',
  HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW: 'not-guest-flow',
  HYLICS_ERR_PATH_ESCAPE: 'outside-share',
  HYLICS_ERR_OFFLOAD_NOT_QUIESCENT: 'not-quiescent',
  HYLICS_ERR_OFFLOAD_UNAVAILABLE: 'host-refused',
  HYLICS_ERR_AGENT_UNREACHABLE: 'host-unreachable',
  HYLICS_ERR_CHANNEL_NOT_CONNECTED: 'host-unreachable',
  HYLICS_ERR_CHANNEL_UNKNOWN_OP: 'host-refused',
  HYLICS_ERR_CHANNEL_BUSY: 'budget',
};
export function reasonOf(e: HylicsError): FallbackReason {
  return REASON_OF[e.code] ?? (e.code.startsWith('HYLICS_ERR_FILE') || e.code === 'HYLICS_ERR_NOT_REGULAR_FILE' ? 'outside-share' : 'host-refused');
}

const plainAddr = (a: string | undefined): string => (a ?? '').replace(/^::ffff:/, '');

/** HYLICS_OFFLOAD_TRACE=1: one line per handoff on stderr with the time of each step (ms), for profiling. */
const TRACE = process.env.HYLICS_OFFLOAD_TRACE === '1';
function tracer(socket: Socket): (step: string) => void {
  if (!TRACE) return () => undefined;
  const t0 = performance.now();
  const at = Date.now();
  const port = socket.remotePort;
  let prev = t0;
  const steps: string[] = [];
  return (step) => {
    const now = performance.now();
    steps.push(`${step} ${(now - prev).toFixed(1)}`);
    prev = now;
    if (step === 'done') process.stderr.write(`hylics offload: at ${at} port ${port}: ${steps.join(', ')} (total ${(now - t0).toFixed(1)} ms)\n`);
  };
}

/** Per socket, one send at a time, in call order (hylicsSend and hylicsSendfile interleave correctly). */
const sends = new KeyedSerial<Socket>();
const serialize = <T>(socket: Socket, fn: () => Promise<T>): Promise<T> => sends.run(socket, fn);

async function sendInGuest(
  socket: Socket,
  file: string,
  offset: number,
  count: number | undefined,
  reason: FallbackReason,
  message: string,
  opts: OffloadOptions,
  head?: Buffer,
): Promise<SendfileResult> {
  last = { reason, message };
  // counted once the send is known to be one: a client that left meanwhile (wrk closing its connections, a
  // reset racing the handoff) had nothing kept in the guest, whatever the host said before
  const countFallback = (): void => {
    if (!opts.disabled)
      void client(opts)
        .then((c) => c.request('offload.socket.fallback', { reason }, { timeoutMs: 5000 }))
        .catch(() => undefined);
  };
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.min(offset, size);
    const n = Math.min(count ?? size - start, size - start);
    // the head first, in the kernel before the file's bytes (sendfile does not wait for Node's write queue)
    if (head) await writeAll(socket, head);
    const bytes = await sendFileToSocket(socket, fd, start, n).catch((e: unknown) => {
      if (!(e instanceof HylicsError && e.code === 'HYLICS_ERR_PEER_CLOSED')) countFallback();
      throw e;
    });
    countFallback();
    if (opts.mode === 'terminal') socket.end();
    return { bytes, by: 'guest', reason, ...(head ? { headBytes: head.length } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** Write `data` on `socket`; resolves once Node handed it to the kernel. */
function writeAll(socket: Socket, data: Buffer): Promise<void> {
  return new Promise<void>((res, rej) =>
    socket.write(data, (e) =>
      e ? rej(new HylicsError('HYLICS_ERR_PEER_CLOSED', `the client went away: ${e.message}`, { bytesSent: 0 })) : res()),
  );
}

/**
 * Send `count` bytes (default: to the end) of `file` from `offset` on `socket`, by the host when it can; with
 * `head`, those bytes first (see SendfileOptions). Resolves with the bytes of the file sent and who sent them.
 * Rejects with HYLICS_ERR_PEER_CLOSED (details.bytesSent) when the client went away, or another registry error when
 * the connection was lost in a handoff (the socket is then destroyed; the app must not use it).
 * `hylicsSendfile(socket, file, { offset, count, head, ...options })`, or `(socket, file, offset, count, options)`.
 */
export function hylicsSendfile(socket: Socket, file: string, opts?: SendfileOptions): Promise<SendfileResult>;
export function hylicsSendfile(
  socket: Socket, file: string, offset?: number, count?: number, opts?: OffloadOptions,
): Promise<SendfileResult>;
export function hylicsSendfile(
  socket: Socket,
  file: string,
  offsetOrOpts: number | SendfileOptions = 0,
  count?: number,
  opts: OffloadOptions = {},
): Promise<SendfileResult> {
  if (typeof offsetOrOpts === 'object') {
    const { offset, count: n, head, ...o } = offsetOrOpts;
    const h = head === undefined || head.length === 0 ? undefined : Buffer.isBuffer(head) ? head : Buffer.from(head);
    return serialize(socket, () => sendfileNow(socket, file, offset ?? 0, n, o, h));
  }
  return serialize(socket, () => sendfileNow(socket, file, offsetOrOpts, count, opts));
}

/** Write `data` on `socket` in order with the offloaded sends before it; resolves once Node handed it to the kernel. */
export function hylicsSend(socket: Socket, data: Buffer | string): Promise<void> {
  return serialize(socket, () => new Promise<void>((res, rej) => socket.write(data, (e) => (e ? rej(e) : res()))));
}

/** The app's TCP_NODELAY choice as Node keeps it (a restored socket starts with the kernel's default, Nagle on). */
let kSetNoDelay: symbol | undefined;
function appNoDelay(socket: Socket): boolean {
  // Node's own symbol, looked up once (the same for every socket)
  kSetNoDelay ??= Object.getOwnPropertySymbols(socket).find((x) => x.description === 'kSetNoDelay');
  return kSetNoDelay !== undefined && (socket as unknown as Record<symbol, unknown>)[kSetNoDelay] === true;
}

/** A tail up to this size is read and written at once (no trip through the addon's I/O thread). */
const SMALL_TAIL_BYTES = 64 * 1024;

/** The range's last bytes, from this guest, on the socket it just got back: pushed at once (no Nagle wait for the
 *  ACK of the host's last segments), then the app's own TCP_NODELAY choice again. `noDelay`: the restore set
 *  TCP_NODELAY already (the app's choice: nothing to switch). */
async function sendTail(socket: Socket, file: string, start: number, n: number, noDelay: boolean): Promise<void> {
  const h = noDelay ? undefined : (socket as unknown as { _handle?: { setNoDelay?: (on: boolean) => number } })._handle;
  h?.setNoDelay?.(true);
  const fd = openSync(file, 'r');
  try {
    let sent: number;
    if (n <= SMALL_TAIL_BYTES) {
      // Node writes it to the kernel right away (a synchronous try-write on an idle socket)
      const buf = Buffer.alloc(n);
      sent = readSync(fd, buf, 0, n, start);
      const data = buf.subarray(0, sent);
      await new Promise<void>((res, rej) =>
        socket.write(data, (e) =>
          e ? rej(new HylicsError('HYLICS_ERR_PEER_CLOSED', `the client went away: ${e.message}`, { bytesSent: 0 })) : res()),
      );
    } else {
      sent = await sendFileToSocket(socket, fd, start, n);
    }
    if (sent !== n) throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the file ended ${n - sent} bytes early while sending the range's tail`, { bytesSent: sent });
  } finally {
    closeSync(fd);
    if (!socket.destroyed) h?.setNoDelay?.(appNoDelay(socket));
  }
}

/** Host answers that refuse a descriptor copy before it sent anything (no details.bytesSent) and leave the TCP_REPAIR
 *  handoff worth trying: the descriptor could not be taken or the op is not there. */
const FD_COPY_NOT_HERE = new Set<ErrorCode>([
  'HYLICS_ERR_OFFLOAD_FD_REFUSED', 'HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', 'HYLICS_ERR_CHANNEL_UNKNOWN_OP', 'HYLICS_ERR_CHANNEL_OP_DENIED',
]);
/** Clients (connections to hylicsd) whose descriptor copies hylicsd cannot take (HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE):
 *  not asked again on them. */
const noFdCopy = new WeakSet<AgentClient>();

/**
 * Sends of at least this many bytes take the TCP_REPAIR handoff even where the descriptor copy is offered: the copy's
 * host send reads and copies every byte (pread + send(MSG_DONTWAIT): an app cannot make it block), the handoff's host
 * socket is hylicsd's own and sends with sendfile, and its fixed cost is amortized by then (docs/offload-socket.md,
 * "The descriptor copy": 16 MiB handoff 1.35x of a host socket at 0.60 CPU s/GB in hylicsd, copy 1.10x at 1.00).
 */
export const FD_COPY_MAX_BYTES = 4 * 1024 * 1024;
/** $HYLICS_OFFLOAD_COPY_MAX_BYTES overrides FD_COPY_MAX_BYTES (a number of bytes; read once). */
const fdCopyMaxBytes = Number(process.env.HYLICS_OFFLOAD_COPY_MAX_BYTES) || FD_COPY_MAX_BYTES;

/** The bytes a send of `file` from `offset` covers (`count`, else to the end of the file; undefined: unknown). */
function rangeBytes(file: string, offset: number, count: number | undefined): number | undefined {
  if (count !== undefined) return count;
  try { return Math.max(0, statSync(file).size - offset); } catch { return undefined; }
}

/** Does `c` (hylicsd's direct offload socket) offer the descriptor copy, and may this send use it? */
function fdCopyOffered(c: AgentClient, opts: OffloadOptions, bytes: number | undefined): boolean {
  if ((opts.copy ?? process.env.HYLICS_OFFLOAD_COPY) === 'repair' || noFdCopy.has(c)) return false;
  if (bytes !== undefined && bytes >= fdCopyMaxBytes) return false;
  return c.peer.remote?.caps.includes('offload.socket.sendfd') === true;
}

/** How long Node's own write queue may take to empty before a descriptor copy (else: sent in the guest). */
const FLUSH_TIMEOUT_MS = QUIESCE_TIMEOUT_MS;

/** Resolves true once Node's write queue of `socket` is empty (its bytes are in the kernel, before the host's). */
async function nodeQueueFlushed(socket: Socket, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (socket.writableLength > 0) {
    if (Date.now() > until || socket.destroyed) return false;
    // a 'drain' or 10 ms, whichever comes first; the listener goes with the wait (one per wait piled up otherwise)
    await new Promise<void>((r) => {
      const done = (): void => { clearTimeout(t); socket.off('drain', done); r(); };
      const t = setTimeout(done, 10);
      socket.once('drain', done);
    });
  }
  return !socket.destroyed;
}

type FdCopyOutcome = { sent: SendfileResult } | { refused: HylicsError; tryRepair: boolean };

/**
 * The descriptor copy (sandbox guests; docs/offload-socket.md "The descriptor copy"): hylicsd duplicates this
 * process's socket fd (pidfd_getfd) and sends head and range on it, one round trip, nothing frozen. The socket stays
 * live; libuv stops reading it meanwhile and nothing is written here until the answer. A refusal (nothing sent)
 * comes back as `refused`; a send that failed part-way (the client reset or stalled: bytes are on the wire) or a
 * lost answer throws, the socket destroyed.
 */
async function sendByFdCopy(
  socket: Socket, c: AgentClient, fd: number, rel: string, offset: number, count: number | undefined,
  opts: OffloadOptions, head: Buffer | undefined,
): Promise<FdCopyOutcome> {
  if (!(await nodeQueueFlushed(socket, FLUSH_TIMEOUT_MS))) {
    return { refused: new HylicsError('HYLICS_ERR_OFFLOAD_NOT_QUIESCENT', `${socket.writableLength} bytes still in Node's write queue`), tryRepair: false };
  }
  const wasReading = stopReading(socket);
  let res: OffloadSendfdResultT;
  try {
    const params = { fd, path: rel, offset, ...(count !== undefined ? { count } : {}), ...(head ? { head: head.toString('base64') } : {}) };
    res = await c.request('offload.socket.sendfd', params, { timeoutMs: SEND_TIMEOUT_MS, trustedParams: true });
  } catch (e) {
    const err = toHylicsError(e);
    if (err.details?.bytesSent === undefined && (FD_COPY_NOT_HERE.has(err.code) || refusedBeforeTakeover(err))) {
      // nothing was sent: the socket is as it was
      resumeReading(socket, wasReading);
      // not to be had on this connection (the host cannot take descriptors, or does not serve the op here)
      if (err.code !== 'HYLICS_ERR_OFFLOAD_FD_REFUSED' && FD_COPY_NOT_HERE.has(err.code)) noFdCopy.add(c);
      return { refused: err, tryRepair: FD_COPY_NOT_HERE.has(err.code) };
    }
    // bytes went out (or nobody knows how many: the answer was lost): the response cannot be completed from here
    socket.destroy();
    if (err.code === 'HYLICS_ERR_PEER_CLOSED' || err.code === 'HYLICS_ERR_SEND_STALLED')
      throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the client went away during the host's send: ${err.message}`, { ...err.details });
    throw new HylicsError(err.code, `socket send lost: ${err.message}`, { ...err.details });
  }
  resumeReading(socket, wasReading);
  if (opts.mode === 'terminal') socket.end();
  return { sent: { bytes: res.bytes, by: 'host', ...(head ? { headBytes: res.headBytes } : {}) } };
}

/** Host answers that refuse a handoff before it touched the connection: the guest's socket is still the connection. */
const REFUSED_BEFORE_TAKEOVER = new Set<ErrorCode>([
  'HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW', 'HYLICS_ERR_OFFLOAD_BUDGET', 'HYLICS_ERR_OFFLOAD_UNAVAILABLE', 'HYLICS_ERR_PATH_ESCAPE',
  'HYLICS_ERR_NOT_REGULAR_FILE', 'HYLICS_ERR_CHANNEL_UNKNOWN_OP', 'HYLICS_ERR_CHANNEL_BUSY', 'HYLICS_ERR_CHANNEL_BAD_MESSAGE',
  'HYLICS_ERR_INVALID_ARGUMENT', 'HYLICS_ERR_INVALID_NAME', 'HYLICS_ERR_NFT_FAILED',
]);
const refusedBeforeTakeover = (e: HylicsError): boolean => REFUSED_BEFORE_TAKEOVER.has(e.code) || e.code.startsWith('HYLICS_ERR_FILE');

/** A host op call (the app's agent client, or the agent's own channel to the host). */
export type HostCall = (op: string, params: unknown, opts: { timeoutMs: number }) => Promise<unknown>;

/** What came of a handoff of a quiesced socket (handoffQuiesced). */
export type HandoffOutcome =
  /** Nothing moved (freeze failed, or the host refused before taking over): the socket is live and unfiltered. */
  | { outcome: 'refused'; error: HylicsError }
  /** The connection is back on the socket, live; `count - bytes` bytes of the range (the tail) are the guest's to
   *  send. `untouched`: the host gave it back without sending (takeover failed), why. */
  | { outcome: 'returned'; bytes: number; count: number; handoff: string; untouched?: string; noDelay?: boolean }
  /** The host ended the connection (terminal mode, or the client closed its side): the socket is frozen, close it. */
  | { outcome: 'finished'; bytes: number; handoff: string }
  /** The client went away during the host's send: the socket is frozen, close it. */
  | { outcome: 'peer-gone'; bytes: number; reason: string; handoff: string };

/**
 * The handoff of a quiesced socket (src/guest/offload.ts for Node sockets, src/guest/offload-fd.ts for an app's
 * fd passed to the agent), one round trip: the socket goes behind its drop filter (its own hold: no packet of the
 * connection reaches it, none is lost, the client sends it again), is frozen and dumped; offload.socket.handoff
 * gives the state to the host, which sends all but the range's last byte and answers with the new state; that is
 * restored on the socket (in place on the same open file description, or under the same fd number), thawed and the
 * filter detached; the host drops its kept state by itself (autoRelease: no release request). Throws when the
 * connection was lost in the handoff (the channel went away, the restore failed): the socket is frozen; the caller
 * closes it.
 */
export async function handoffQuiesced(
  fd: number,
  params: Omit<OffloadHandoffParamsT, 'state'>,
  call: HostCall,
  opts: { inPlace?: boolean; noDelay?: boolean; trace?: (step: string) => void } = {},
): Promise<HandoffOutcome> {
  const trace = opts.trace ?? ((): void => undefined);
  let state;
  let saved: SavedTos;
  try {
    // silent: the frozen socket's packets (its loss probe and retransmissions of bytes not yet acknowledged, a
    // delayed ACK) get the DSCP hylicsd drops; they would carry newer TCP timestamps than the state the host
    // restores, and the client's PAWS would drop the host's segments
    ({ state, saved } = freezeSilent(fd));
  } catch (e) {
    // not frozen (the addon left the socket as it was, its filter detached)
    let err = toHylicsError(e);
    // the filter needs CAP_NET_ADMIN here too (EPERM without it): the same reason as TCP_REPAIR's refusal
    if (err.code === 'HYLICS_ERR_TCP_REPAIR_FAILED' && err.details?.errno === 'EPERM')
      err = new HylicsError('HYLICS_ERR_TCP_REPAIR_DENIED', err.message, { ...err.details });
    return { outcome: 'refused', error: err };
  }
  trace('freeze');
  let res: OffloadHandoffResultT;
  try {
    const p = { ...params, state, holdUntilRelease: true, autoRelease: true };
    res = (await call('offload.socket.handoff', p, { timeoutMs: SEND_TIMEOUT_MS })) as OffloadHandoffResultT;
  } catch (e) {
    const err = toHylicsError(e);
    if (refusedBeforeTakeover(err)) {
      // our frozen socket is still the connection (the host took nothing): its own DSCP again, thawed behind the
      // filter, then packets let in
      thawHandoff(fd, saved);
      return { outcome: 'refused', error: err };
    }
    // the host (or the channel) went away mid-handoff: how much reached the client is unknown, so the frozen
    // socket cannot go on; closed, it goes silently (repair mode: no RST), the host finishes or drops its copy
    throw new HylicsError(err.code, `socket handoff lost: ${err.message}`, { ...err.details });
  }
  trace('handoff');
  const handoff = res.handoff;
  let noDelay = false;
  if (res.outcome === 'returned' && res.state) {
    try {
      // the host holds the flow (holdUntilRelease: the client's segments are dropped there, so none meets this
      // process's listener while the socket is swapped under the fd); behind the filter while the state is set,
      // detached right before the thaw (restore's dropFilter), whose window probe is this socket's first packet:
      // it ends the host's hold in the packet path, and the client's answer (its ACK of the bytes the host left
      // unacknowledged in the state) gets in
      // (and its own DSCP again before the thaw: frozen, its packets were dropped by the host)
      restoreForHandoff(res.state, fd, { inPlace: opts.inPlace === true, noDelay: opts.noDelay === true, saved });
      noDelay = opts.noDelay === true;
    } catch (e) {
      // the host kept the state: it restores and finishes the connection cleanly
      await call('offload.socket.release', { handoff, finish: true }, { timeoutMs: 10_000 }).catch(() => undefined);
      const err = toHylicsError(e);
      throw new HylicsError(err.code, err.message, { ...err.details, handoff });
    }
    trace('restore');
    // no release (autoRelease): the host drops the state it kept by itself, and the window probe of the thaw ended
    // its hold (or the hold expires); a channel round trip and a steering change less per handoff
    if (res.bytes === 0 && res.reason) return { outcome: 'returned', bytes: 0, count: res.count, handoff, untouched: res.reason, noDelay };
    return { outcome: 'returned', bytes: res.bytes, count: res.count, handoff, noDelay };
  }
  if (res.outcome === 'finished') return { outcome: 'finished', bytes: res.bytes, handoff };
  return { outcome: 'peer-gone', bytes: res.bytes, reason: res.reason ?? '', handoff };
}

/** A Node socket's handoff: quiesce (libuv stops reading), handoffQuiesced, resume reading, send the tail. */
async function sendfileNow(
  socket: Socket,
  file: string,
  offset: number,
  count: number | undefined,
  opts: OffloadOptions,
  head?: Buffer,
): Promise<SendfileResult> {
  // a head over what a handoff carries is written here first (then the send goes as without one)
  if (head && head.length > MAX_HANDOFF_HEAD_BYTES) {
    await writeAll(socket, head);
    const r = await sendfileNow(socket, file, offset, count, opts);
    return { ...r, headBytes: head.length };
  }
  const share = resolve(opts.share ?? (process.env.HYLICS_SHARE || DEFAULT_SHARE_DIR));
  const abs = resolve(file);
  const rel = relative(share, abs);
  if (opts.disabled) return sendInGuest(socket, abs, offset, count, 'error', 'offload disabled by the caller', opts, head);
  if (rel === '' || rel.startsWith('..') || rel.startsWith('/'))
    return sendInGuest(socket, abs, offset, count, 'outside-share', `${abs} is not inside the share ${share}`, opts, head);
  if (socketFd(socket) === undefined)
    return sendInGuest(socket, abs, offset, count, 'not-quiescent', 'not a TCP socket with an fd', opts, head);
  const trace = tracer(socket);
  let c: AgentClient;
  try {
    c = await client(opts);
  } catch (e) {
    return sendInGuest(socket, abs, offset, count, 'host-unreachable', toHylicsError(e).message, opts, head);
  }
  const sockFd = socketFd(socket)!;
  if (fdCopyOffered(c, opts, rangeBytes(abs, offset, count))) {
    const r = await sendByFdCopy(socket, c, sockFd, rel, offset, count, opts, head);
    if ('sent' in r) { trace('done'); last = undefined; return r.sent; }
    // refused before anything was sent (hylicsd counts why): the TCP_REPAIR handoff may still do, else send here
    const { refused } = r;
    if (!r.tryRepair) return sendInGuest(socket, abs, offset, count, reasonOf(refused), refused.message, opts, head);
  }
  let q: { wasReading: boolean; fd: number };
  try {
    q = await quiesce(socket, QUIESCE_TIMEOUT_MS, QUIESCE_MAX_UNACKED);
  } catch (e) {
    const err = toHylicsError(e);
    return sendInGuest(socket, abs, offset, count, reasonOf(err), err.message, opts, head);
  }
  trace('quiesce');
  let r: HandoffOutcome;
  try {
    r = await handoffQuiesced(
      q.fd,
      {
        localAddr: plainAddr(socket.localAddress),
        localPort: socket.localPort!,
        remoteAddr: plainAddr(socket.remoteAddress),
        remotePort: socket.remotePort!,
        path: rel,
        offset,
        ...(count !== undefined ? { count } : {}),
        mode: opts.mode ?? 'return',
        ...(head ? { head: head.toString('base64') } : {}),
      },
      // the params are ours (the state as packed from the kernel's dump): hylicsd checks them against the op's
      // schema, so the app's channel does not check them a second time (~3 % of the app's CPU per handoff)
      (op, p, o) => c.request(op as never, p as never, { timeoutMs: o.timeoutMs, trustedParams: true }),
      // restored in place (the same socket and open file description under libuv's fd: no new socket, no second
      // filter, no dup3 and close; half the CPU of a restore under the fd number), with the app's TCP_NODELAY at
      // once when that is on (the tail then needs no switch)
      { trace, inPlace: true, noDelay: appNoDelay(socket) },
    );
  } catch (e) {
    socket.destroy();
    throw e;
  }
  if (r.outcome === 'refused') {
    resumeReading(socket, q.wasReading);
    return sendInGuest(socket, abs, offset, count, reasonOf(r.error), r.error.message, opts, head);
  }
  if (r.outcome === 'returned') {
    resumeReading(socket, q.wasReading);
    // the host gave the connection back untouched (takeover failed): send here
    if (r.untouched) return sendInGuest(socket, abs, offset, count, 'host-refused', r.untouched, opts, head);
    // the host leaves the last bytes of the range to us (TAIL_BYTES in src/host/offload/socket.ts): the client
    // cannot have the whole response, and send its next request, before this socket is live again
    const tail = r.count - r.bytes;
    if (tail > 0) {
      try {
        await sendTail(socket, abs, offset + r.bytes, tail, r.noDelay === true);
      } catch (e) {
        const err = toHylicsError(e);
        const tailSent = typeof err.details?.bytesSent === 'number' ? err.details.bytesSent : 0;
        const details = { ...err.details, bytesSent: r.bytes + tailSent, handoff: r.handoff };
        throw new HylicsError(err.code, err.message, details);
      }
    }
    trace('done');
    last = undefined;
    return { bytes: r.bytes + tail, by: 'host', ...(head ? { headBytes: head.length } : {}) };
  }
  // finished or peer gone: the host closed the connection; ours is frozen (and filtered) and closes silently
  socket.destroy();
  if (r.outcome === 'finished') {
    trace('done');
    last = undefined;
    return { bytes: r.bytes, by: 'host', finished: true, ...(head ? { headBytes: head.length } : {}) };
  }
  throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the client went away during the host's send: ${r.reason}`, {
    bytesSent: r.bytes,
    handoff: r.handoff,
  });
}
