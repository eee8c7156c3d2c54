// Requests the remote sends us: admission (allow-list, registered op with a handler, params checked against the
// op's schema, ids not reused while in flight), a bounded number running at once with a bounded queue behind
// them, deadlines passed to handlers as an AbortSignal, and the reply cache that answers a retried idempotent op
// with its first outcome.
import { errorToWire, type Message, type OpRegistry } from '../../core/protocol/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { ReplyCache, type CachedOutcome } from './reply-cache.js';
import type { PeerLimits, PeerLogger, PeerStats } from './peer-options.js';
import type { ChannelPeer } from './peer.js';

export interface HandlerContext {
  op: string;
  id: number;
  /** Aborted at the caller's deadline, on reset (remote restarted) and on close. */
  signal: AbortSignal;
  /** Local epoch ms after which the caller no longer waits. */
  deadline: number;
  peer: ChannelPeer;
}
// Params are checked against the op's schema before a handler runs, so handlers may trust their shape: each
// declares its op's params type (a function of any params type is assignable to one taking `never`).
export type Handler = (params: never, ctx: HandlerContext) => unknown;

type RequestMessage = Extract<Message, { type: 'request' }>;

interface Running {
  abort: AbortController;
  timer: NodeJS.Timeout;
  idempotent: boolean;
}

/** What the incoming side needs of its peer. */
export interface IncomingLink {
  peer: ChannelPeer;
  isOpen(): boolean;
  /** The session epoch (bumped when the remote restarts). */
  epoch(): number;
  send(m: Message): void;
}

export class IncomingRequests {
  private readonly handlers = new Map<string, Handler>();
  private readonly running = new Map<number, Running>();
  private queued: RequestMessage[] = [];

  constructor(private readonly o: {
    registry: OpRegistry;
    allow: Set<string> | undefined;
    limits: Pick<PeerLimits, 'maxInFlight' | 'maxQueued' | 'defaultTimeoutMs' | 'maxHandlerMs'>;
    replyCache: ReplyCache;
    log: PeerLogger;
    stats: PeerStats;
    link: IncomingLink;
  }) {}

  handle(op: string, handler: Handler): void {
    this.handlers.set(op, handler);
  }

  /** The ops we serve (announced in our hello). */
  ops(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /** Requests running now. */
  get size(): number {
    return this.running.size;
  }

  /** A request frame arrived (in a session). */
  receive(m: RequestMessage): void {
    this.o.stats.requestsIn++;
    this.admit(m);
  }

  /** The remote restarted: queued requests are dropped, running ones aborted unless idempotent. */
  reset(e: HylicsError): void {
    this.queued = [];
    for (const [id, r] of this.running) {
      if (r.idempotent) continue; // finishes into the reply cache; a retry after reconnect picks it up
      clearTimeout(r.timer);
      r.abort.abort(e);
      this.running.delete(id);
    }
  }

  /** The channel closed: everything running is aborted, the queue dropped. */
  close(e: HylicsError): void {
    for (const r of this.running.values()) { clearTimeout(r.timer); r.abort.abort(e); }
    this.running.clear();
    this.queued = [];
  }

  private replyError(id: number, e: HylicsError): void {
    this.o.link.send({ type: 'error', id, error: errorToWire(e) });
  }

  /** Run, queue or refuse a request (a queued one comes through here again when a slot frees). */
  private admit(m: RequestMessage): void {
    const { id, op } = m;
    const { registry, limits } = this.o;
    if (this.o.allow && !this.o.allow.has(op)) {
      if (registry.op(op)) this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_OP_DENIED', `operation ${op} is not allowed on this channel`, { op }));
      else this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} is not registered`, { op }));
      return;
    }
    const def = registry.op(op);
    const handler = this.handlers.get(op);
    if (!def || !handler) {
      this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${op} has no handler here`, { op }));
      return;
    }
    try {
      registry.checkParams(op, m.params);
    } catch (e) {
      this.replyError(id, toHylicsError(e));
      return;
    }
    const cacheKey = def.idempotent ? ReplyCache.key(op, id, m.params) : undefined;
    if (cacheKey !== undefined) {
      const hit = this.o.replyCache.lookup(cacheKey);
      if (hit) {
        const epoch = this.o.link.epoch();
        void Promise.resolve(hit).then((o) => { if (epoch === this.o.link.epoch()) this.sendOutcome(id, o); });
        return;
      }
    }
    if (this.running.has(id)) {
      this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_BAD_MESSAGE', `request id ${id} is already in flight`, { id }));
      return;
    }
    if (this.running.size >= limits.maxInFlight) {
      // pipelined bursts wait in a bounded queue; beyond it the caller is told to back off
      if (this.queued.length >= limits.maxQueued || this.queued.some((q) => q.id === id)) {
        this.replyError(id, new HylicsError('HYLICS_ERR_CHANNEL_BUSY', `${this.running.size} requests in flight and ${this.queued.length} queued (limits ${limits.maxInFlight}/${limits.maxQueued})`, { op, limit: limits.maxInFlight }));
        return;
      }
      this.queued.push(m);
      return;
    }
    const budget = Math.min(m.deadlineMs ?? limits.defaultTimeoutMs, limits.maxHandlerMs);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: caller's deadline of ${budget} ms passed`, { op, id })), budget);
    timer.unref();
    const epoch = this.o.link.epoch();
    const r: Running = { abort, timer, idempotent: def.idempotent === true };
    this.running.set(id, r);
    const ctx: HandlerContext = { op, id, signal: abort.signal, deadline: Date.now() + budget, peer: this.o.link.peer };
    const run: Promise<CachedOutcome> = (async () => {
      try {
        return { ok: true as const, result: await handler(m.params as never, ctx) };
      } catch (e) {
        const he = toHylicsError(e);
        if (he.code === 'HYLICS_ERR_INTERNAL') this.o.log.error({ op, err: he.message }, 'channel: handler failed');
        return { ok: false as const, error: errorToWire(he) };
      }
    })();
    if (cacheKey !== undefined) this.o.replyCache.track(cacheKey, run);
    void run.then((o) => {
      clearTimeout(timer);
      if (this.running.get(id) === r) this.running.delete(id);
      this.drain();
      if (epoch !== this.o.link.epoch() || !this.o.link.isOpen()) return; // the remote that asked is gone
      this.sendOutcome(id, o);
    });
  }

  private drain(): void {
    while (this.queued.length > 0 && this.running.size < this.o.limits.maxInFlight && this.o.link.isOpen()) {
      this.admit(this.queued.shift()!);
    }
  }

  private sendOutcome(id: number, o: CachedOutcome): void {
    try {
      if (o.ok) this.o.link.send({ type: 'reply', id, result: o.result === undefined ? null : o.result });
      else this.o.link.send({ type: 'error', id, error: o.error });
    } catch (e) {
      // e.g. a result above the frame cap: tell the caller instead of leaving it waiting
      this.o.link.send({ type: 'error', id, error: errorToWire(toHylicsError(e)) });
    }
  }
}
