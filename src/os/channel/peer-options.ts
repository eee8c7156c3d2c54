// ChannelPeer's options with their defaults, the logger it takes and the counters it keeps.
import { DEFAULT_MAX_PAYLOAD, type Hello, type OpRegistry } from '../../core/protocol/index.js';
import { HylicsError } from '../../core/errors/index.js';
import { MiB } from '../../core/units.js';
import type { ReplyCache } from './reply-cache.js';
import type { Handler } from './incoming.js';

/** pino-compatible subset. */
export interface PeerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
const noop = (): void => {};
export const SILENT: PeerLogger = { debug: noop, info: noop, warn: noop, error: noop };

export interface PeerOptions {
  role: Hello['role'];
  /** Our name, sent in the hello (informational for the other end). */
  name?: string;
  software?: string;
  registry?: OpRegistry;
  handlers?: Record<string, Handler>;
  /** Ops the remote may call on us. Default: every op we have a handler for. */
  allow?: Iterable<string>;
  /** Events we accept from the remote. Default: every registered event. */
  allowEvents?: Iterable<string>;
  /** Incoming requests handled at once; more get HYLICS_ERR_CHANNEL_BUSY. */
  maxInFlight?: number;
  /** Incoming requests that wait for a free slot (beyond: BUSY). */
  maxQueued?: number;
  /** Outgoing requests waiting for replies at once. */
  maxPending?: number;
  maxPayload?: number;
  /** Deadline of request() when the caller gives none. */
  defaultTimeoutMs?: number;
  /** Upper bound on any handler's deadline (a remote cannot make us wait longer). */
  maxHandlerMs?: number;
  /** Resend the hello this often until answered. */
  helloRetryMs?: number;
  /** Give up (close with HYLICS_ERR_CHANNEL_HANDSHAKE) if no hello arrives in this long; 0 = keep trying. */
  helloTimeoutMs?: number;
  /** On a framing/JSON error: 'close' the stream (sockets, hostile guests) or 'resync' (virtio-serial). */
  onProtocolError?: 'close' | 'resync';
  /**
   * Session nonce to start with (default: a fresh one). An agent whose virtio port closed before any host answered
   * continues with the same nonce on the reopened port: the hellos it left in the port then do not look like a
   * restart to the host that connects later (no session state existed that a restart could have lost).
   */
  nonce?: string;
  /** Shared reply cache for idempotent ops (the host keeps one per guest across reconnects). */
  replyCache?: ReplyCache;
  /** Events accepted from the remote per second; more are dropped (counted in stats.eventsDropped). */
  maxEventsPerSec?: number;
  /** Close when this many bytes are queued unsent (a remote that does not read). */
  maxWriteBuffer?: number;
  log?: PeerLogger;
}

export interface RequestOptions {
  timeoutMs?: number;
  /** Explicit request id (to retry an idempotent op with the same id, see allocId()). */
  id?: number;
  signal?: AbortSignal;
  /** The params are built by this process's own code to the op's schema (e.g. the socket-offload handoff's state,
   *  packed from the kernel's dump): not checked again here. The remote checks every request's params anyway
   *  (src/os/channel/incoming.ts); this only saves the sender's own copy of that check on a hot path. */
  trustedParams?: boolean;
}

export interface PeerStats {
  framesIn: number;
  framesOut: number;
  protocolErrors: number;
  discardedBytes: number;
  /** Requests the remote sent us (each counted once, when it arrives, whether it ran, queued or was refused). */
  requestsIn: number;
  requestsOut: number;
  resets: number;
  eventsDropped: number;
}

export function newStats(): PeerStats {
  return {
    framesIn: 0,
    framesOut: 0,
    protocolErrors: 0,
    discardedBytes: 0,
    requestsIn: 0,
    requestsOut: 0,
    resets: 0,
    eventsDropped: 0,
  };
}

/** The limits and timings a peer runs with: PeerOptions' numbers and policies with every default filled in. */
export type PeerLimits = Required<Pick<PeerOptions, 'maxInFlight' | 'maxQueued' | 'maxPending' | 'maxPayload' | 'defaultTimeoutMs' | 'maxHandlerMs' | 'helloRetryMs' | 'helloTimeoutMs' | 'onProtocolError' | 'maxWriteBuffer' | 'maxEventsPerSec'>>;

export const PEER_DEFAULTS: Readonly<PeerLimits> = {
  maxInFlight: 32,
  maxQueued: 256,
  maxPending: 1024,
  maxPayload: DEFAULT_MAX_PAYLOAD,
  defaultTimeoutMs: 30_000,
  maxHandlerMs: 3600_000,
  helloRetryMs: 1000,
  helloTimeoutMs: 10_000,
  onProtocolError: 'close',
  maxWriteBuffer: 16 * MiB,
  maxEventsPerSec: 1000,
};

export function resolveLimits(o: PeerOptions): PeerLimits {
  const out = { ...PEER_DEFAULTS };
  for (const k of Object.keys(PEER_DEFAULTS) as Array<keyof PeerLimits>) {
    if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k];
  }
  return out;
}

const NONCE_RE = /^[0-9a-f]{16}$/;

export function checkNonce(nonce: string): string {
  if (!NONCE_RE.test(nonce)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `nonce must be 16 hex digits, got ${JSON.stringify(nonce)}`, { what: 'nonce' });
  return nonce;
}
