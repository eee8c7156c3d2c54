// ChannelPeer: the RPC end both sides use (host per guest, guest agent, guest apps), over any Duplex the
// transports give (./transport.ts). Spec: docs/protocol.md.
//
//   const peer = new ChannelPeer(socket, { role: 'host', handlers: { 'task.report': (p) => ... } });
//   await peer.ready;                                   // hello exchanged, versions match
//   const r = await peer.request('health', {}, { timeoutMs: 2000 });
//   peer.on('event', (name, data) => ...); peer.emitEvent('share.resized', { sizeBytes });
//   peer.close();
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_MAX_PAYLOAD, FrameDecoder, PROTOCOL_VERSION, decodeMessage, encodeMessage, errorToWire, wireToError,
  OPS, type Hello, type Message, type OpRegistry, type ParamsOf, type ResultOf, type EventDataOf, type WireError,
} from '../../core/protocol/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { ReplyCache, type CachedOutcome } from './reply-cache.js';

export interface HandlerContext {
  op: string;
  id: number;
  /** Aborted at the caller's deadline, on reset (remote restarted) and on close. */
  signal: AbortSignal;
  /** Local epoch ms after which the caller no longer waits. */
  deadline: number;
  peer: ChannelPeer;
}
// Params are checked against the op's schema before a handler runs, so handlers may trust their shape.
export type Handler = (params: any, ctx: HandlerContext) => unknown;

/** pino-compatible subset. */
export interface PeerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
const noop = () => {};
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
}

interface Pending {
  op: string;
  resolve: (v: unknown) => void;
  reject: (e: HylicsError) => void;
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

interface Incoming {
  abort: AbortController;
  session: number;
  timer: NodeJS.Timeout;
  idempotent: boolean;
}

export interface PeerStats {
  framesIn: number;
  framesOut: number;
  protocolErrors: number;
  discardedBytes: number;
  requestsIn: number;
  requestsOut: number;
  resets: number;
  eventsDropped: number;
}

/**
 * Events: 'ready' (remote: Hello) after each successful hello exchange; 'reset' (remote: Hello) when the remote
 * restarted (a new hello replaced the session; in-flight requests failed with HYLICS_ERR_CHANNEL_RESET);
 * 'event' (name, data); 'protocol-error' (err); 'close' (err?: HylicsError).
 */
export class ChannelPeer extends EventEmitter {
  readonly role: Hello['role'];
  readonly registry: OpRegistry;
  readonly stats: PeerStats = { framesIn: 0, framesOut: 0, protocolErrors: 0, discardedBytes: 0, requestsIn: 0, requestsOut: 0, resets: 0, eventsDropped: 0 };
  /** Resolves at the first successful hello exchange, rejects if the peer closes before. */
  readonly ready: Promise<Hello>;
  remote: Hello | undefined;
  /** This end's current session nonce (sent in its hellos). */
  get sessionNonce(): string { return this.nonce; }

  private readonly opts: Required<Pick<PeerOptions, 'maxInFlight' | 'maxQueued' | 'maxPending' | 'maxPayload' | 'defaultTimeoutMs' | 'maxHandlerMs' | 'helloRetryMs' | 'helloTimeoutMs' | 'onProtocolError' | 'maxWriteBuffer' | 'maxEventsPerSec'>>;
  private readonly handlers = new Map<string, Handler>();
  private readonly allow: Set<string> | undefined;
  private readonly allowEvents: Set<string> | undefined;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private readonly incoming = new Map<number, Incoming>();
  private queued: Array<Extract<Message, { type: 'request' }>> = [];
  private readonly replyCache: ReplyCache;
  private readonly log: PeerLogger;
  private readonly name: string | undefined;
  private readonly software: string | undefined;
  private nonce = '';
  private nextIdValue = 1;
  private session = 0;
  private isReady = false;
  private closedWith: HylicsError | null | undefined; // undefined = open, null = closed cleanly
  private helloTimer: NodeJS.Timeout | undefined;
  private helloDeadline: NodeJS.Timeout | undefined;
  private lastHelloSent = 0;
  private eventWindow = { start: 0, count: 0 };
  private readyWaiters: Array<{ resolve: () => void; reject: (e: HylicsError) => void }> = [];
  private resolveFirst!: (h: Hello) => void;
  private rejectFirst!: (e: HylicsError) => void;

  constructor(private readonly stream: Duplex, options: PeerOptions) {
    super();
    this.role = options.role;
    this.registry = options.registry ?? OPS;
    this.name = options.name;
    this.software = options.software;
    this.log = options.log ?? SILENT;
    this.replyCache = options.replyCache ?? new ReplyCache();
    if (options.nonce !== undefined && !/^[0-9a-f]{16}$/.test(options.nonce)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `nonce must be 16 hex digits, got ${JSON.stringify(options.nonce)}`, { what: 'nonce' });
    this.nonce = options.nonce ?? '';
    this.opts = {
      maxInFlight: options.maxInFlight ?? 32,
      maxQueued: options.maxQueued ?? 256,
      maxPending: options.maxPending ?? 1024,
      maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 30_000,
      maxHandlerMs: options.maxHandlerMs ?? 3600_000,
      helloRetryMs: options.helloRetryMs ?? 1000,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      onProtocolError: options.onProtocolError ?? 'close',
      maxWriteBuffer: options.maxWriteBuffer ?? 16 * 1024 * 1024,
      maxEventsPerSec: options.maxEventsPerSec ?? 1000,
    };
    for (const [op, h] of Object.entries(options.handlers ?? {})) this.handlers.set(op, h);
    this.allow = options.allow ? new Set(options.allow) : undefined;
    this.allowEvents = options.allowEvents ? new Set(options.allowEvents) : undefined;
    this.decoder = new FrameDecoder({ maxPayload: this.opts.maxPayload, hunting: true });
    this.ready = new Promise<Hello>((res, rej) => { this.resolveFirst = res; this.rejectFirst = rej; });
    this.ready.catch(() => {}); // callers that never await it must not see an unhandled rejection

    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => {
      for (const ev of this.decoder.end()) if (ev.kind === 'error') this.log.debug({ err: ev.error.message }, 'channel: stream ended mid-frame');
      this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'the other end closed the channel'));
    });
    stream.on('close', () => this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'the channel stream closed')));
    stream.on('error', (e: Error) => this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', `channel stream error: ${e.message}`, undefined, { cause: e })));

    this.sendHello();
    if (this.opts.helloTimeoutMs > 0) {
      this.helloDeadline = setTimeout(() => {
        if (!this.isReady) this.close(new HylicsError('HYLICS_ERR_CHANNEL_HANDSHAKE', `no hello from the other end within ${this.opts.helloTimeoutMs} ms`));
      }, this.opts.helloTimeoutMs);
      this.helloDeadline.unref();
    }
  }

  get isOpen(): boolean {
    return this.closedWith === undefined;
  }
  get connected(): boolean {
    return this.isReady && this.isOpen;
  }
  get inFlight(): { incoming: number; outgoing: number } {
    return { incoming: this.incoming.size, outgoing: this.pending.size };
  }

  handle(op: string, handler: Handler): this {
    this.handlers.set(op, handler);
    return this;
  }

  /** A fresh request id, for callers that want to retry an idempotent op with the same id. */
  allocId(): number {
    for (;;) {
      const id = this.nextIdValue;
      this.nextIdValue = this.nextIdValue >= 0xffffffff ? 1 : this.nextIdValue + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /** Wait until a session is up (again): resolves at once when ready. */
  whenReady(timeoutMs = this.opts.defaultTimeoutMs): Promise<void> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedError());
    if (this.isReady) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => { clearTimeout(t); resolve(); },
        reject: (e: HylicsError) => { clearTimeout(t); reject(e); },
      };
      const t = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((x) => x !== w);
        reject(new HylicsError('HYLICS_ERR_CHANNEL_HANDSHAKE', `channel not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      this.readyWaiters.push(w);
    });
  }

  async request<K extends string>(op: K, params: ParamsOf<K>, options: RequestOptions = {}): Promise<ResultOf<K>> {
    const timeoutMs = options.timeoutMs ?? this.opts.defaultTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    this.registry.checkParams(op, params);
    if (this.closedWith !== undefined) throw this.closedError();
    if (this.pending.size >= this.opts.maxPending) throw new HylicsError('HYLICS_ERR_CHANNEL_BUSY', `${this.pending.size} requests already waiting for replies`, { op });
    if (!this.isReady) await this.whenReady(timeoutMs);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: deadline passed before the request could be sent`, { op, timeoutMs });
    const id = options.id ?? this.allocId();
    if (this.pending.has(id)) throw new HylicsError('HYLICS_ERR_CONFLICT', `request id ${id} is already waiting for a reply`, { id });
    this.stats.requestsOut++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      const onAbort = () => settle(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: cancelled by the caller`, { op, id }));
      const settle = (err: HylicsError | null, v?: unknown) => {
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        p.cleanup();
        if (err) reject(err); else resolve(v as ResultOf<K>);
      };
      const timer = setTimeout(() => settle(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: no reply within ${timeoutMs} ms`, { op, id, timeoutMs })), remaining);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        op,
        timer,
        resolve: (v) => settle(null, v),
        reject: (e) => settle(e),
        cleanup: () => { clearTimeout(timer); options.signal?.removeEventListener('abort', onAbort); },
      });
      if (options.signal?.aborted) { onAbort(); return; }
      try {
        this.send({ type: 'request', id, op, params: params as unknown, deadlineMs: Math.max(1, Math.ceil(remaining)) });
      } catch (e) {
        settle(toHylicsError(e));
      }
    });
  }

  /** Send an event to the remote (checked against its registered schema). Dropped (false) when not connected. */
  emitEvent<K extends string>(event: K, data: EventDataOf<K>): boolean {
    this.registry.checkEvent(event, data);
    if (!this.connected) return false;
    this.send({ type: 'event', id: 0, event, data });
    return true;
  }

  /** Round trip without touching handlers (liveness). Resolves with the round-trip time in ms. */
  async ping(timeoutMs = 5000): Promise<number> {
    if (!this.isReady) await this.whenReady(timeoutMs);
    const id = this.allocId();
    const t0 = performance.now();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `ping: no pong within ${timeoutMs} ms`)); }, timeoutMs);
      this.pending.set(id, {
        op: '(ping)', timer,
        resolve: () => { this.pending.delete(id); clearTimeout(timer); resolve(performance.now() - t0); },
        reject: (e) => { this.pending.delete(id); clearTimeout(timer); reject(e); },
        cleanup: () => clearTimeout(timer),
      });
      this.send({ type: 'ping', id, t: Date.now() });
    });
  }

  /** Close the channel: pending requests fail with HYLICS_ERR_CHANNEL_CLOSED (or `err`), handlers are aborted. */
  close(err?: HylicsError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err ?? null;
    clearTimeout(this.helloTimer);
    clearTimeout(this.helloDeadline);
    const e = this.closedError();
    this.failAll(e);
    for (const w of this.readyWaiters) w.reject(e);
    this.readyWaiters = [];
    if (!this.isReady) this.rejectFirst(e);
    this.isReady = false;
    for (const inc of this.incoming.values()) { clearTimeout(inc.timer); inc.abort.abort(e); }
    this.incoming.clear();
    this.queued = [];
    // end politely (flushes queued replies), then make sure the fd goes away
    this.stream.end();
    const t = setTimeout(() => this.stream.destroy(), 200);
    t.unref();
    this.stream.once('close', () => clearTimeout(t));
    this.emit('close', err);
  }

  // ---- internals ----

  private closedError(): HylicsError {
    const c = this.closedWith;
    if (c && c.code !== 'HYLICS_ERR_CHANNEL_CLOSED') return new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', `channel closed: ${c.message}`, { reason: c.code });
    return c ?? new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'channel closed');
  }

  private failAll(e: HylicsError): void {
    for (const p of [...this.pending.values()]) p.reject(e);
    this.pending.clear();
  }

  private helloBody(echo?: string): Hello {
    const caps = [...this.handlers.keys()].sort();
    const h: Hello = { version: PROTOCOL_VERSION, role: this.role, nonce: this.nonce, caps, maxPayload: this.opts.maxPayload };
    if (this.name !== undefined) h.name = this.name;
    if (this.software !== undefined) h.software = this.software;
    if (echo !== undefined) h.echo = echo;
    return h;
  }

  /**
   * Marker + hello; repeated every helloRetryMs until the remote answers. Retries keep the nonce (a burst of
   * buffered retries must not look like restarts); a new session attempt (start, resync) takes a fresh one.
   */
  private sendHello(fresh = false): void {
    if (this.closedWith !== undefined) return;
    if (fresh || this.nonce === '') this.nonce = randomBytes(8).toString('hex');
    this.lastHelloSent = Date.now();
    this.send({ type: 'hello', id: 0, hello: this.helloBody() });
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => { if (!this.isReady) this.sendHello(); }, this.opts.helloRetryMs);
    this.helloTimer.unref();
  }

  private send(m: Message): void {
    if (this.closedWith !== undefined || this.stream.destroyed || !this.stream.writable) return;
    const bytes = encodeMessage(m, this.opts.maxPayload);
    this.stats.framesOut++;
    this.stream.write(bytes);
    if (this.stream.writableLength > this.opts.maxWriteBuffer) {
      this.close(new HylicsError('HYLICS_ERR_CHANNEL_BUSY', `the other end is not reading (${this.stream.writableLength} bytes queued)`));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closedWith !== undefined) return;
    for (const ev of this.decoder.push(chunk)) {
      if (this.closedWith !== undefined) return;
      if (ev.kind === 'sync') {
        if (ev.discarded > 0) {
          this.stats.discardedBytes += ev.discarded;
          this.log.warn({ discarded: ev.discarded }, 'channel: discarded stale bytes before a resync marker');
        }
        continue;
      }
      if (ev.kind === 'error') { this.protocolError(ev.error, 0); continue; }
      this.stats.framesIn++;
      let m: Message;
      try {
        m = decodeMessage(ev.frame);
      } catch (e) {
        this.protocolError(toHylicsError(e), ev.frame.id);
        continue;
      }
      this.onMessage(m);
    }
  }

  private protocolError(err: HylicsError, id: number): void {
    this.stats.protocolErrors++;
    this.log.warn({ code: err.code, err: err.message }, 'channel: protocol error');
    this.emit('protocol-error', err);
    if (this.opts.onProtocolError === 'close') {
      // tell the other end why (best effort), then drop the connection: a stream that lied once cannot be trusted
      try { this.send({ type: 'error', id, error: errorToWire(err) }); } catch { /* ignore */ }
      this.close(err);
      return;
    }
    // resync: the decoder is already hunting; a fresh hello makes the remote reset and answer behind a marker
    if (this.isReady) {
      this.isReady = false;
      this.failAll(new HylicsError('HYLICS_ERR_CHANNEL_RESET', `channel resynchronising after: ${err.message}`));
    }
    // at most one hello per 200 ms however much garbage arrives
    const wait = Math.max(0, this.lastHelloSent + Math.min(200, this.opts.helloRetryMs) - Date.now());
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => this.sendHello(true), wait);
    this.helloTimer.unref();
  }

  private onMessage(m: Message): void {
    switch (m.type) {
      case 'hello':
      case 'hello-ack':
        this.onHello(m.type, m.hello);
        return;
      case 'ping':
        this.send({ type: 'pong', id: m.id, ...(m.t === undefined ? {} : { t: m.t }) });
        return;
      case 'pong': {
        const p = this.pending.get(m.id);
        if (p && p.op === '(ping)') p.resolve(undefined);
        return;
      }
    }
    if (!this.isReady) {
      this.log.debug({ type: m.type, id: m.id }, 'channel: message before hello ignored');
      return;
    }
    switch (m.type) {
      case 'request': this.onRequest(m); return;
      case 'reply': this.onReply(m.id, null, m.result); return;
      case 'error': this.onReply(m.id, m.error, undefined); return;
      case 'event': this.onEvent(m.event, m.data); return;
    }
  }

  private onHello(kind: 'hello' | 'hello-ack', h: Hello): void {
    if (h.version !== PROTOCOL_VERSION) {
      const err = new HylicsError('HYLICS_ERR_CHANNEL_VERSION', `the other end speaks protocol version ${h.version}, this end ${PROTOCOL_VERSION}`, { remote: h.version, local: PROTOCOL_VERSION });
      this.log.error({ remote: h.version }, err.message);
      try { this.send({ type: 'error', id: 0, error: errorToWire(err) }); } catch { /* ignore */ }
      this.close(err);
      return;
    }
    if (kind === 'hello-ack' && h.echo !== this.nonce) {
      this.log.debug({ echo: h.echo }, 'channel: stale hello-ack ignored');
      return;
    }
    if (kind === 'hello') this.send({ type: 'hello-ack', id: 0, hello: this.helloBody(h.nonce) });
    const restarted = this.remote !== undefined && this.remote.nonce !== h.nonce;
    if (this.isReady && !restarted) return; // an ack of a hello we re-sent: same session
    if (restarted) {
      this.stats.resets++;
      this.session++;
      const e = new HylicsError('HYLICS_ERR_CHANNEL_RESET', 'the other end restarted; the request may or may not have run');
      this.failAll(e);
      this.queued = [];
      for (const [id, inc] of this.incoming) {
        if (inc.idempotent) continue; // finishes into the reply cache; a retry after reconnect picks it up
        clearTimeout(inc.timer);
        inc.abort.abort(e);
        this.incoming.delete(id);
      }
      this.emit('reset', h);
    }
    this.remote = h;
    this.isReady = true;
    clearTimeout(this.helloTimer);
    clearTimeout(this.helloDeadline);
    this.resolveFirst(h);
    for (const w of this.readyWaiters) w.resolve();
    this.readyWaiters = [];
    this.emit('ready', h);
  }

  private replyError(id: number, e: HylicsError): void {
    this.send({ type: 'error', id, error: errorToWire(e) });
  }

  private onRequest(m: Extract<Message, { type: 'request' }>): void {
    this.stats.requestsIn++;
    const { id, op } = m;
    if (this.allow && !this.allow.has(op)) {
      if (this.registry.op(op)) this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_OP_DENIED', `operation ${op} is not allowed on this channel`, { op }));
      else this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} is not registered`, { op }));
      return;
    }
    const def = this.registry.op(op);
    const handler = this.handlers.get(op);
    if (!def || !handler) {
      this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} has no handler here`, { op }));
      return;
    }
    try {
      this.registry.checkParams(op, m.params);
    } catch (e) {
      this.replyError(id, toHylicsError(e));
      return;
    }
    const cacheKey = def.idempotent ? ReplyCache.key(op, id, m.params) : undefined;
    if (cacheKey !== undefined) {
      const hit = this.replyCache.lookup(cacheKey);
      if (hit) {
        const session = this.session;
        void Promise.resolve(hit).then((o) => { if (session === this.session) this.sendOutcome(id, o); });
        return;
      }
    }
    if (this.incoming.has(id)) {
      this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_BAD_MESSAGE', `request id ${id} is already in flight`, { id }));
      return;
    }
    if (this.incoming.size >= this.opts.maxInFlight) {
      // pipelined bursts wait in a bounded queue; beyond it the caller is told to back off
      if (this.queued.length >= this.opts.maxQueued || this.queued.some((q) => q.id === id)) {
        this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_BUSY', `${this.incoming.size} requests in flight and ${this.queued.length} queued (limits ${this.opts.maxInFlight}/${this.opts.maxQueued})`, { op, limit: this.opts.maxInFlight }));
        return;
      }
      this.queued.push(m);
      return;
    }
    const budget = Math.min(m.deadlineMs ?? this.opts.defaultTimeoutMs, this.opts.maxHandlerMs);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: caller's deadline of ${budget} ms passed`, { op, id })), budget);
    timer.unref();
    const session = this.session;
    const inc: Incoming = { abort, session, timer, idempotent: def.idempotent === true };
    this.incoming.set(id, inc);
    const ctx: HandlerContext = { op, id, signal: abort.signal, deadline: Date.now() + budget, peer: this };
    const run: Promise<CachedOutcome> = (async () => {
      try {
        return { ok: true as const, result: await handler(m.params, ctx) };
      } catch (e) {
        const he = toHylicsError(e);
        if (he.code === 'HYLICS_ERR_INTERNAL') this.log.error({ op, err: he.message }, 'channel: handler failed');
        return { ok: false as const, error: errorToWire(he) };
      }
    })();
    if (cacheKey !== undefined) this.replyCache.track(cacheKey, run);
    void run.then((o) => {
      clearTimeout(timer);
      if (this.incoming.get(id) === inc) this.incoming.delete(id);
      this.drainQueue();
      if (session !== this.session || this.closedWith !== undefined) return; // the remote that asked is gone
      this.sendOutcome(id, o);
    });
  }

  private drainQueue(): void {
    while (this.queued.length > 0 && this.incoming.size < this.opts.maxInFlight && this.closedWith === undefined) {
      const next = this.queued.shift()!;
      this.stats.requestsIn--; // counted again by onRequest
      this.onRequest(next);
    }
  }

  private sendOutcome(id: number, o: CachedOutcome): void {
    try {
      if (o.ok) this.send({ type: 'reply', id, result: o.result === undefined ? null : o.result });
      else this.send({ type: 'error', id, error: o.error });
    } catch (e) {
      // e.g. a result above the frame cap: tell the caller instead of leaving it waiting
      this.send({ type: 'error', id, error: errorToWire(toHylicsError(e)) });
    }
  }

  private onReply(id: number, error: WireError | null, result: unknown): void {
    const p = this.pending.get(id);
    if (!p) {
      if (id !== 0) this.log.debug({ id }, 'channel: reply to an unknown or expired request ignored');
      else if (error) this.log.warn({ code: error.code, err: error.message }, 'channel: the other end reported an error');
      return;
    }
    if (error) { p.reject(wireToError(error)); return; }
    if (p.op === '(ping)') return;
    try {
      this.registry.checkResult(p.op, result);
    } catch (e) {
      p.reject(toHylicsError(e));
      return;
    }
    p.resolve(result);
  }

  private onEvent(event: string, data: unknown): void {
    // a guest must not be able to flood the daemon with events: fixed one-second windows
    const now = Date.now();
    if (now - this.eventWindow.start >= 1000) this.eventWindow = { start: now, count: 0 };
    if (++this.eventWindow.count > this.opts.maxEventsPerSec) {
      this.stats.eventsDropped++;
      if (this.eventWindow.count === this.opts.maxEventsPerSec + 1) this.log.warn({ limit: this.opts.maxEventsPerSec }, 'channel: event rate limit reached; dropping events for the rest of this second');
      return;
    }
    if (this.allowEvents && !this.allowEvents.has(event)) {
      this.log.warn({ event }, 'channel: event not allowed on this channel dropped');
      return;
    }
    try {
      this.registry.checkEvent(event, data);
    } catch (e) {
      this.log.warn({ event, err: (e as Error).message }, 'channel: invalid event dropped');
      return;
    }
    this.emit('event', event, data);
  }
}
