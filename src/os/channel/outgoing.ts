// Requests this end sends and their replies: ids, deadlines, cancellation, the result checked against the op's
// schema, and pings (a round trip that touches no handler). Everything waiting fails at once on a reset or close.
import {
  wireToError, type Message, type OpRegistry, type ParamsOf, type ResultOf, type WireError,
} from '../../core/protocol/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import type { PeerStats, RequestOptions } from './peer-options.js';

/** What the requests need of the peer they go out on. */
export interface OutgoingLink {
  /** Throws HYLICS_ERR_CHANNEL_CLOSED when the channel is closed. */
  checkOpen(): void;
  isReady(): boolean;
  whenReady(timeoutMs: number): Promise<void>;
  send(m: Message): void;
}

interface Waiting {
  resolve: (v: unknown) => void;
  reject: (e: HylicsError) => void;
}
interface PendingRequest extends Waiting { op: string }

const MAX_ID = 0xffffffff;

export class OutgoingRequests {
  private readonly requests = new Map<number, PendingRequest>();
  private readonly pings = new Map<number, Waiting>();
  private nextId = 1;

  constructor(
    private readonly o: {
      registry: OpRegistry;
      maxPending: number;
      defaultTimeoutMs: number;
      stats: PeerStats;
      link: OutgoingLink;
    },
  ) {}

  /** Requests and pings waiting for an answer. */
  get size(): number {
    return this.requests.size + this.pings.size;
  }

  /** A fresh request id, for callers that want to retry an idempotent op with the same id. */
  allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
      if (!this.requests.has(id) && !this.pings.has(id)) return id;
    }
  }

  async request<K extends string>(op: K, params: ParamsOf<K>, options: RequestOptions = {}): Promise<ResultOf<K>> {
    const timeoutMs = options.timeoutMs ?? this.o.defaultTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    if (options.trustedParams !== true) this.o.registry.checkParams(op, params);
    this.o.link.checkOpen();
    if (this.size >= this.o.maxPending)
      throw new HylicsError('HYLICS_ERR_CHANNEL_BUSY', `${this.size} requests already waiting for replies`, { op });
    if (!this.o.link.isReady()) await this.o.link.whenReady(timeoutMs);
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      throw new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: deadline passed before the request could be sent`, {
        op,
        timeoutMs,
      });
    const id = options.id ?? this.allocId();
    if (this.requests.has(id) || this.pings.has(id))
      throw new HylicsError('HYLICS_ERR_CONFLICT', `request id ${id} is already waiting for a reply`, { id });
    this.o.stats.requestsOut++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      const onAbort = (): void =>
        settle(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: cancelled by the caller`, { op, id }));
      const timer = setTimeout(
        () =>
          settle(
            new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `${op}: no reply within ${timeoutMs} ms`, {
              op,
              id,
              timeoutMs,
            }),
          ),
        remaining,
      );
      const settle = (err: HylicsError | null, v?: unknown): void => {
        if (this.requests.get(id) !== entry) return;
        this.requests.delete(id);
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(v as ResultOf<K>);
      };
      const entry: PendingRequest = { op, resolve: (v) => settle(null, v), reject: (e) => settle(e) };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.requests.set(id, entry);
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      try {
        this.o.link.send({
          type: 'request',
          id,
          op,
          params: params as unknown,
          deadlineMs: Math.max(1, Math.ceil(remaining)),
        });
      } catch (e) {
        settle(toHylicsError(e));
      }
    });
  }

  /** Round trip without touching handlers (liveness). Resolves with the round-trip time in ms. */
  async ping(timeoutMs: number): Promise<number> {
    if (!this.o.link.isReady()) await this.o.link.whenReady(timeoutMs);
    const id = this.allocId();
    const t0 = performance.now();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new HylicsError('HYLICS_ERR_CHANNEL_DEADLINE', `ping: no pong within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const settle = (err: HylicsError | null): void => {
        if (this.pings.get(id) !== entry) return;
        this.pings.delete(id);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(performance.now() - t0);
      };
      const entry: Waiting = { resolve: () => settle(null), reject: (e) => settle(e) };
      this.pings.set(id, entry);
      this.o.link.send({ type: 'ping', id, t: Date.now() });
    });
  }

  onPong(id: number): void {
    this.pings.get(id)?.resolve(undefined);
  }

  /** A reply or error frame. Returns false when nothing waits for `id` (unknown or expired). */
  onReply(id: number, error: WireError | null, result: unknown): boolean {
    const ping = this.pings.get(id);
    if (ping) {
      if (error) ping.reject(wireToError(error)); // a reply (not a pong) to a ping id is ignored
      return true;
    }
    const p = this.requests.get(id);
    if (!p) return false;
    if (error) {
      p.reject(wireToError(error));
      return true;
    }
    try {
      this.o.registry.checkResult(p.op, result);
    } catch (e) {
      p.reject(toHylicsError(e));
      return true;
    }
    p.resolve(result);
    return true;
  }

  /** Fail everything waiting (reset, resync, close). */
  failAll(e: HylicsError): void {
    for (const p of [...this.requests.values(), ...this.pings.values()]) p.reject(e);
  }
}
