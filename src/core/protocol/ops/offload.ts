// Ops of socket offload (paper §4.2, second scheme; docs/offload-socket.md): an app in a guest hands one of its
// TCP connections to the host for the bulk send of a file from its share, and gets it back with the sequence
// numbers advanced. Three steps, all served by the host and bound to the guest the channel belongs to:
//   begin   the host checks the flow is the guest's own (local address = the guest's address) and the file is in
//           its share, and holds the flow (no packet of it passes either way) so the guest can freeze it;
//   send    with the guest's frozen state: the host restores the connection, steers the flow to itself, sends
//           the file, and either freezes it again and answers with the new state (hand back) or finishes it;
//   release the guest restored (or gave up): the host drops its frozen copy and the hold. Idempotent.
// handoff = begin + send in one round trip (what the guest library uses): the guest's socket is already frozen
// behind its own drop filter, so the host holds nothing; it sends all but the last byte (the guest sends that once
// its socket is live again, so the client's next request never meets a connection in motion).
import { Type, type Static } from '@sinclair/typebox';
import { OPS, defineOp } from '../registry.js';

/**
 * A sandbox guest's direct socket to hylicsd, in its run dir (/run/hylics in the guest): the same framing and
 * hello as the control channel, serving only the offload.socket.* ops (docs/protocol.md). The guest library calls
 * them there when it exists, skipping the agent's relay; microVM guests have none (the library uses the agent).
 */
export const HOST_OFFLOAD_SOCKET = 'hylicsd-offload.sock';

/** Bytes of one socket queue carried in a state (base64 on the wire stays under the 1 MiB frame cap). */
export const MAX_QUEUE_BYTES = 256 * 1024;
/** Bytes of a handoff's `head` (the app's response headers, sent by the host before the range): 16 KiB. */
export const MAX_HANDOFF_HEAD_BYTES = 16 * 1024;
const u32 = Type.Integer({ minimum: 0, maximum: 0xffffffff });
const port = Type.Integer({ minimum: 1, maximum: 65535 });
const ipv4 = Type.String({ pattern: '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$', maxLength: 15 });
// canonical base64 (./validate.ts: decode + re-encode, not a regex over up to 349,528 characters)
const queue = Type.String({ maxLength: Math.ceil(MAX_QUEUE_BYTES / 3) * 4, format: 'base64' });

/** A frozen TCP connection (TCP_REPAIR dump): what it takes to carry it on elsewhere. */
export const TcpState = Type.Object(
  {
    localAddr: ipv4,
    localPort: port,
    remoteAddr: ipv4,
    remotePort: port,
    /** Sequence number after the last byte in the send queue, and after the last byte in the receive queue. */
    sendSeq: u32,
    recvSeq: u32,
    /** Bytes sent but not acknowledged (then never transmitted: the last unsentBytes of them), base64. */
    sendQueue: queue,
    unsentBytes: Type.Integer({ minimum: 0, maximum: MAX_QUEUE_BYTES }),
    /** Bytes received and not yet read by the app (e.g. a pipelined next request), base64. */
    recvQueue: queue,
    mss: Type.Integer({ minimum: 0, maximum: 65535 }),
    timestamp: u32,
    /** TCP_INFO tcpi_options (SACK, timestamps, window scale) and the two window-scale shifts. */
    options: Type.Integer({ minimum: 0, maximum: 255 }),
    sndWscale: Type.Integer({ minimum: 0, maximum: 14 }),
    rcvWscale: Type.Integer({ minimum: 0, maximum: 14 }),
    window: Type.Object(
      { sndWl1: u32, sndWnd: u32, maxWindow: u32, rcvWnd: u32, rcvWup: u32 },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const OffloadBeginParams = Type.Object({
  localAddr: ipv4,
  localPort: port,
  remoteAddr: ipv4,
  remotePort: port,
  /** File inside the guest's share (relative to its root). */
  path: Type.String({ minLength: 1, maxLength: 4096 }),
  offset: Type.Integer({ minimum: 0 }),
  /** Bytes to send; absent: to the end of the file. */
  count: Type.Optional(Type.Integer({ minimum: 0 })),
  /** return: hand the connection back after the send (keep-alive); terminal: the host finishes it (FIN). */
  mode: Type.Union([Type.Literal('return'), Type.Literal('terminal')]),
}, { additionalProperties: false });
export const OffloadBeginResult = Type.Object({
  handoff: Type.String({ maxLength: 64 }),
  /** The file's size and the bytes the host will send. */
  size: Type.Integer({ minimum: 0 }),
  count: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

export const OffloadSendParams = Type.Object({
  handoff: Type.String({ minLength: 1, maxLength: 64 }),
  state: TcpState,
}, { additionalProperties: false });
export const OffloadSendResult = Type.Object({
  /** Bytes of the file the host sent into the connection. */
  bytes: Type.Integer({ minimum: 0 }),
  /** returned: state holds the connection for the guest; finished: the host closed it (terminal mode);
   *  peer-gone: the client reset or stopped reading, the host closed it. */
  outcome: Type.Union([Type.Literal('returned'), Type.Literal('finished'), Type.Literal('peer-gone')]),
  state: Type.Optional(TcpState),
  reason: Type.Optional(Type.String({ maxLength: 512 })),
}, { additionalProperties: false });

/** begin and send in one round trip: the guest froze the socket behind its own drop filter (no host hold). */
export const OffloadHandoffParams = Type.Object({
  ...OffloadBeginParams.properties,
  state: TcpState,
  /** The host may hand back with bytes not yet acknowledged (they travel in the state) and holds the flow (drops
   *  the client's packets) until the guest's first packet of it (its thawed socket's window probe) or its release. */
  holdUntilRelease: Type.Optional(Type.Boolean()),
  /** With holdUntilRelease: the guest sends no release after a hand-back it restored; the host drops the state it
   *  kept by itself (after RETURNED_KEEP_MS, or when the connection is handed over again) and the hold ends in the
   *  packet path or expires (BACK_HOLD_MAX_S). `release { finish: true }` is still served. */
  autoRelease: Type.Optional(Type.Boolean()),
  /** Bytes the host sends before the range (the app's response headers, which the guest did not write), base64, at
   *  most MAX_HANDOFF_HEAD_BYTES: head and the range's first bytes go out in the same packets. */
  head: Type.Optional(Type.String({ minLength: 1, maxLength: Math.ceil(MAX_HANDOFF_HEAD_BYTES / 3) * 4, format: 'base64' })),
}, { additionalProperties: false });
export const OffloadHandoffResult = Type.Object({
  ...OffloadSendResult.properties,
  /** Bytes of the params' head the host sent (all of it unless the client went away; 0 when nothing was sent). */
  headBytes: Type.Optional(Type.Integer({ minimum: 0 })),
  handoff: Type.String({ maxLength: 64 }),
  /** The bytes of the range (from begin's count): the guest sends count - bytes itself after a hand-back. */
  count: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

export const OffloadReleaseParams = Type.Object({
  handoff: Type.String({ minLength: 1, maxLength: 64 }),
  /** The guest could not restore the handed-back state: the host finishes the connection (FIN) instead. */
  finish: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export const OffloadReleaseResult = Type.Object({ released: Type.Boolean() }, { additionalProperties: false });

/**
 * The descriptor copy (sandbox guests, on the direct offload socket only): hylicsd duplicates the app's own socket
 * descriptor (pidfd_getfd of the process that connected, SO_PEERPIDFD) and sends head and range on it; nothing is
 * frozen or steered, the app leaves the socket alone until the answer. Errors before the send (the descriptor
 * refused, the file, the budget) carry no details.bytesSent: nothing was sent. A send that failed (the client reset
 * or stalled) answers HYLICS_ERR_PEER_CLOSED / _SEND_STALLED with details.bytesSent and details.headBytes.
 */
/** How hylicsd takes a sandbox guest's socket (daemon setting socket-offload-copy): `auto` offers the descriptor copy
 *  (offload.socket.sendfd) on the direct offload socket; `repair` does not (the TCP_REPAIR handoff only, as for
 *  microVM guests). */
export const SOCKET_OFFLOAD_COPIES = ['auto', 'repair'] as const;
export type SocketOffloadCopy = (typeof SOCKET_OFFLOAD_COPIES)[number];

/** Ops served on a guest's direct offload socket only: they name the calling process (the descriptor copy), so a
 *  relay (the agent) must never forward them: the process would be the relay. */
export const DIRECT_ONLY_OPS: readonly string[] = ['offload.socket.sendfd'];

export const OffloadSendfdParams = Type.Object({
  /** The socket's descriptor number in the calling app's own process. */
  fd: Type.Integer({ minimum: 0, maximum: 0x7fffffff }),
  /** File inside the guest's share (relative to its root). */
  path: Type.String({ minLength: 1, maxLength: 4096 }),
  offset: Type.Integer({ minimum: 0 }),
  /** Bytes to send; absent: to the end of the file. */
  count: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Bytes sent before the range (the app's response headers), base64, at most MAX_HANDOFF_HEAD_BYTES. */
  head: Type.Optional(Type.String({ minLength: 1, maxLength: Math.ceil(MAX_HANDOFF_HEAD_BYTES / 3) * 4, format: 'base64' })),
}, { additionalProperties: false });
export const OffloadSendfdResult = Type.Object({
  /** Bytes of the range sent (all of `count` as clamped to the file). */
  bytes: Type.Integer({ minimum: 0 }),
  /** Bytes of the head sent. */
  headBytes: Type.Integer({ minimum: 0 }),
  /** The range's length as clamped to the file. */
  count: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

/** Why a send stayed in the guest; the guest library reports it with offload.socket.fallback. */
export const FALLBACK_REASONS = ['no-cap-net-admin', 'no-tcp-repair', 'host-refused', 'budget', 'not-guest-flow', 'outside-share', 'not-quiescent', 'host-unreachable', 'error'] as const;
export const OffloadFallbackParams = Type.Object({
  reason: Type.Union(FALLBACK_REASONS.map((r) => Type.Literal(r))),
}, { additionalProperties: false });
export const OffloadFallbackResult = Type.Object({ counted: Type.Boolean() }, { additionalProperties: false });

export type TcpStateT = Static<typeof TcpState>;
export type OffloadBeginParamsT = Static<typeof OffloadBeginParams>;
export type OffloadSendResultT = Static<typeof OffloadSendResult>;
export type OffloadHandoffParamsT = Static<typeof OffloadHandoffParams>;
export type OffloadHandoffResultT = Static<typeof OffloadHandoffResult>;
export type OffloadSendfdParamsT = Static<typeof OffloadSendfdParams>;
export type OffloadSendfdResultT = Static<typeof OffloadSendfdResult>;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

export const OFFLOAD_OPS = [
  defineOp({ name: 'offload.socket.begin', server: 'host', params: OffloadBeginParams, result: OffloadBeginResult, doc: 'Check a connection of the calling guest (its own local address) and a file of its share, and hold the flow so the guest can freeze the socket.' }),
  defineOp({ name: 'offload.socket.send', server: 'host', params: OffloadSendParams, result: OffloadSendResult, doc: 'Restore the frozen connection on the host, steer its flow to the host, send the file, then hand the connection back frozen (state) or finish it.' }),
  defineOp({ name: 'offload.socket.handoff', server: 'host', params: OffloadHandoffParams, result: OffloadHandoffResult, doc: 'begin + send in one round trip: the guest froze the connection behind a drop-everything socket filter; the host checks, restores it, steers the flow to itself, sends all but the last byte of the range, and hands the connection back frozen (state; the guest sends the rest) or finishes it. Release afterwards (not with autoRelease).' }),
  defineOp({ name: 'offload.socket.sendfd', server: 'host', params: OffloadSendfdParams, result: OffloadSendfdResult, doc: 'The descriptor copy (sandbox guests, direct offload socket only): send head and a file range of the guest\'s share on a duplicate of the calling app\'s own socket descriptor `fd` (pidfd_getfd; a non-blocking connected IPv4 TCP socket in the guest\'s network namespace on the guest\'s address, else HYLICS_ERR_OFFLOAD_FD_REFUSED); no freeze, no steering.' }),
  defineOp({ name: 'offload.socket.release', server: 'host', idempotent: true, params: OffloadReleaseParams, result: OffloadReleaseResult, doc: 'The guest restored its socket (or gave up): drop the host\'s frozen copy and the hold on the flow. Idempotent.' }),
  defineOp({ name: 'offload.socket.fallback', server: 'host', idempotent: true, params: OffloadFallbackParams, result: OffloadFallbackResult, doc: 'Count a send the guest library kept in the guest, with the reason (the host\'s per-guest counters).' }),
];

OPS.register(...OFFLOAD_OPS);

declare module '../registry.js' {
  interface OpTypes {
    'offload.socket.begin': { params: Static<typeof OffloadBeginParams>; result: Static<typeof OffloadBeginResult> };
    'offload.socket.send': { params: Static<typeof OffloadSendParams>; result: Static<typeof OffloadSendResult> };
    'offload.socket.handoff': { params: Static<typeof OffloadHandoffParams>; result: Static<typeof OffloadHandoffResult> };
    'offload.socket.sendfd': { params: Static<typeof OffloadSendfdParams>; result: Static<typeof OffloadSendfdResult> };
    'offload.socket.release': { params: Static<typeof OffloadReleaseParams>; result: Static<typeof OffloadReleaseResult> };
    'offload.socket.fallback': { params: Static<typeof OffloadFallbackParams>; result: Static<typeof OffloadFallbackResult> };
  }
}
