// ChannelPeer: the RPC end both sides use (host per guest, guest agent, guest apps), over any Duplex the
// transports give (./transport.ts). Spec: docs/protocol.md.
//
//   const peer = new ChannelPeer(socket, { role: 'host', handlers: { 'task.report': (p) => ... } });
//   await peer.ready;                                   // hello exchanged, versions match
//   const r = await peer.request('health', {}, { timeoutMs: 2000 });
//   peer.on('event', (name, data) => ...); peer.emitEvent('share.resized', { sizeBytes });
//   peer.close();
//
// This file holds the stream (framing in, frames out, protocol errors, close) and dispatches messages to one part
// per concern, as undici splits its client: ./peer-options.ts (options, defaults, stats), ./session.ts (hello,
// nonce, session), ./outgoing.ts (our requests, deadlines, ping), ./incoming.ts (admission, queue, reply cache),
// ./event-gate.ts (event rate limit and checks).
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  FrameDecoder, decodeMessage, encodeMessage, errorToWire,
  OPS, type Hello, type Message, type OpRegistry, type ParamsOf, type ResultOf, type EventDataOf,
} from '../../core/protocol/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { ReplyCache } from './reply-cache.js';
import { checkNonce, newStats, resolveLimits, SILENT, type PeerLimits, type PeerLogger, type PeerOptions, type PeerStats, type RequestOptions } from './peer-options.js';
import { HelloSession, type HelloVerdict } from './session.js';
import { OutgoingRequests } from './outgoing.js';
import { IncomingRequests, type Handler } from './incoming.js';
import { EventGate } from './event-gate.js';

export { SILENT, PEER_DEFAULTS, type PeerLogger, type PeerOptions, type PeerStats, type RequestOptions } from './peer-options.js';
export type { Handler, HandlerContext } from './incoming.js';

/** How long a closed peer waits for its stream to flush before destroying it. */
const CLOSE_FLUSH_MS = 200;
const DEFAULT_PING_TIMEOUT_MS = 5000;

/**
 * 'ready' after each successful hello exchange; 'reset' when the remote restarted (a new hello replaced the
 * session; in-flight requests failed with HYLICS_ERR_CHANNEL_RESET); 'event' (name, data); 'protocol-error';
 * 'close' (the error, or undefined for a clean close).
 */
export interface ChannelPeerEvents {
  'ready': [remote: Hello];
  'reset': [remote: Hello];
  'event': [name: string, data: unknown];
  'protocol-error': [err: HylicsError];
  'close': [err: HylicsError | undefined];
}

export class ChannelPeer extends EventEmitter<ChannelPeerEvents> {
  readonly role: Hello['role'];
  readonly registry: OpRegistry;
  readonly stats: PeerStats = newStats();
  /** Resolves at the first successful hello exchange, rejects if the peer closes before. */
  readonly ready: Promise<Hello>;

  private readonly limits: PeerLimits;
  private readonly log: PeerLogger;
  private readonly decoder: FrameDecoder;
  private readonly session: HelloSession;
  private readonly outgoing: OutgoingRequests;
  private readonly incoming: IncomingRequests;
  private readonly events: EventGate;
  private closedWith: HylicsError | null | undefined; // undefined = open, null = closed cleanly

  constructor(private readonly stream: Duplex, options: PeerOptions) {
    super();
    this.role = options.role;
    this.registry = options.registry ?? OPS;
    this.log = options.log ?? SILENT;
    if (options.nonce !== undefined) checkNonce(options.nonce);
    this.limits = resolveLimits(options);
    const send = (m: Message): void => this.send(m);
    this.incoming = new IncomingRequests({
      registry: this.registry,
      allow: options.allow ? new Set(options.allow) : undefined,
      limits: this.limits,
      replyCache: options.replyCache ?? new ReplyCache(),
      log: this.log,
      stats: this.stats,
      link: { peer: this, isOpen: () => this.isOpen, epoch: () => this.session.epoch, send },
    });
    for (const [op, h] of Object.entries(options.handlers ?? {})) this.incoming.handle(op, h);
    this.session = new HelloSession({
      role: options.role,
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.software !== undefined ? { software: options.software } : {}),
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
      maxPayload: this.limits.maxPayload,
      helloRetryMs: this.limits.helloRetryMs,
      helloTimeoutMs: this.limits.helloTimeoutMs,
      caps: () => this.incoming.ops(),
      send,
      onTimeout: (e) => this.close(e),
    });
    this.outgoing = new OutgoingRequests({
      registry: this.registry,
      maxPending: this.limits.maxPending,
      defaultTimeoutMs: this.limits.defaultTimeoutMs,
      stats: this.stats,
      link: {
        checkOpen: () => { if (this.closedWith !== undefined) throw this.closedError(); },
        isReady: () => this.session.ready,
        whenReady: (ms) => this.whenReady(ms),
        send,
      },
    });
    this.events = new EventGate({
      registry: this.registry,
      allowEvents: options.allowEvents ? new Set(options.allowEvents) : undefined,
      maxPerSec: this.limits.maxEventsPerSec,
      log: this.log,
      stats: this.stats,
    });
    this.decoder = new FrameDecoder({ maxPayload: this.limits.maxPayload, hunting: true });
    this.ready = this.session.first;

    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => {
      for (const ev of this.decoder.end()) if (ev.kind === 'error') this.log.debug({ err: ev.error.message }, 'channel: stream ended mid-frame');
      this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'the other end closed the channel'));
    });
    stream.on('close', () => this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'the channel stream closed')));
    stream.on('error', (e: Error) => this.close(new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', `channel stream error: ${e.message}`, undefined, { cause: e })));

    this.session.start();
  }

  /** The remote's hello of the current (or last) session. */
  get remote(): Hello | undefined {
    return this.session.remote;
  }
  /** This end's current session nonce (sent in its hellos). */
  get sessionNonce(): string {
    return this.session.nonce;
  }
  get isOpen(): boolean {
    return this.closedWith === undefined;
  }
  get connected(): boolean {
    return this.session.ready && this.isOpen;
  }
  get inFlight(): { incoming: number; outgoing: number } {
    return { incoming: this.incoming.size, outgoing: this.outgoing.size };
  }

  handle(op: string, handler: Handler): this {
    this.incoming.handle(op, handler);
    return this;
  }

  /** A fresh request id, for callers that want to retry an idempotent op with the same id. */
  allocId(): number {
    return this.outgoing.allocId();
  }

  /** Wait until a session is up (again): resolves at once when ready. */
  whenReady(timeoutMs = this.limits.defaultTimeoutMs): Promise<void> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedError());
    return this.session.whenReady(timeoutMs);
  }

  request<K extends string>(op: K, params: ParamsOf<K>, options: RequestOptions = {}): Promise<ResultOf<K>> {
    return this.outgoing.request(op, params, options);
  }

  /** Send an event to the remote (checked against its registered schema). Dropped (false) when not connected. */
  emitEvent<K extends string>(event: K, data: EventDataOf<K>): boolean {
    this.registry.checkEvent(event, data);
    if (!this.connected) return false;
    this.send({ type: 'event', id: 0, event, data });
    return true;
  }

  /** Round trip without touching handlers (liveness). Resolves with the round-trip time in ms. */
  ping(timeoutMs = DEFAULT_PING_TIMEOUT_MS): Promise<number> {
    return this.outgoing.ping(timeoutMs);
  }

  /** Close the channel: pending requests fail with HYLICS_ERR_CHANNEL_CLOSED (or `err`), handlers are aborted. */
  close(err?: HylicsError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err ?? null;
    const e = this.closedError();
    this.outgoing.failAll(e);
    this.session.close(e);
    this.incoming.close(e);
    // end politely (flushes queued replies), then make sure the fd goes away
    this.stream.end();
    const t = setTimeout(() => this.stream.destroy(), CLOSE_FLUSH_MS);
    t.unref();
    this.stream.once('close', () => clearTimeout(t));
    this.emit('close', err);
  }

  // ---- the stream ----

  private closedError(): HylicsError {
    const c = this.closedWith;
    if (c && c.code !== 'HYLICS_ERR_CHANNEL_CLOSED') return new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', `channel closed: ${c.message}`, { reason: c.code });
    return c ?? new HylicsError('HYLICS_ERR_CHANNEL_CLOSED', 'channel closed');
  }

  private send(m: Message): void {
    if (this.closedWith !== undefined || this.stream.destroyed || !this.stream.writable) return;
    const bytes = encodeMessage(m, this.limits.maxPayload);
    this.stats.framesOut++;
    this.stream.write(bytes);
    if (this.stream.writableLength > this.limits.maxWriteBuffer) {
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
    if (this.limits.onProtocolError === 'close') {
      // tell the other end why (best effort), then drop the connection: a stream that lied once cannot be trusted
      try { this.send({ type: 'error', id, error: errorToWire(err) }); } catch { /* ignore */ }
      this.close(err);
      return;
    }
    // resync: the decoder is already hunting; a fresh hello makes the remote reset and answer behind a marker
    if (this.session.resync()) this.outgoing.failAll(new HylicsError('HYLICS_ERR_CHANNEL_RESET', `channel resynchronising after: ${err.message}`));
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
      case 'pong':
        this.outgoing.onPong(m.id);
        return;
    }
    if (!this.session.ready) {
      this.log.debug({ type: m.type, id: m.id }, 'channel: message before hello ignored');
      return;
    }
    switch (m.type) {
      case 'request': this.incoming.receive(m); return;
      case 'reply':
      case 'error': {
        const error = m.type === 'error' ? m.error : null;
        if (this.outgoing.onReply(m.id, error, m.type === 'reply' ? m.result : undefined)) return;
        if (m.id !== 0) this.log.debug({ id: m.id }, 'channel: reply to an unknown or expired request ignored');
        else if (error) this.log.warn({ code: error.code, err: error.message }, 'channel: the other end reported an error');
        return;
      }
      case 'event':
        if (this.events.admit(m.event, m.data)) this.emit('event', m.event, m.data);
        return;
    }
  }

  private onHello(kind: 'hello' | 'hello-ack', h: Hello): void {
    let verdict: HelloVerdict;
    try {
      verdict = this.session.receive(kind, h);
    } catch (e) {
      if (!(e instanceof HylicsError) || e.code !== 'HYLICS_ERR_CHANNEL_VERSION') throw e;
      const err = e;
      this.log.error({ remote: h.version }, err.message);
      try { this.send({ type: 'error', id: 0, error: errorToWire(err) }); } catch { /* ignore */ }
      this.close(err);
      return;
    }
    if (verdict === 'stale') {
      this.log.debug({ echo: h.echo }, 'channel: stale hello-ack ignored');
      return;
    }
    if (verdict === 'same') return;
    if (verdict === 'restarted') {
      this.stats.resets++;
      const e = new HylicsError('HYLICS_ERR_CHANNEL_RESET', 'the other end restarted; the request may or may not have run');
      this.outgoing.failAll(e);
      this.incoming.reset(e);
      this.emit('reset', h);
    }
    this.session.establish(h);
    this.emit('ready', h);
  }
}
