// The hello exchange and the session it opens: our nonce, the remote's hello, hellos resent until answered, the
// handshake deadline, and the waiters for a session. A remote whose hello carries a new nonce has restarted; the
// peer then drops what belonged to the old session (./peer.ts). Spec: docs/protocol.md "Hello".
import { randomBytes } from 'node:crypto';
import { PROTOCOL_VERSION, type Hello, type Message } from '../../core/protocol/index.js';
import { HylicsError } from '../../core/errors/index.js';

export interface SessionOptions {
  role: Hello['role'];
  name?: string;
  software?: string;
  /** Start with this nonce (see PeerOptions.nonce); default: a fresh one at the first hello. */
  nonce?: string;
  maxPayload: number;
  helloRetryMs: number;
  helloTimeoutMs: number;
  /** The ops we serve, announced in the hello. */
  caps: () => string[];
  send: (m: Message) => void;
  /** No hello arrived within helloTimeoutMs. */
  onTimeout: (e: HylicsError) => void;
}

/** What a received hello means: `stale` (an ack of an older attempt), `same` (this session), `new`, `restarted`. */
export type HelloVerdict = 'stale' | 'same' | 'new' | 'restarted';

/** At most one fresh hello per this long however much garbage arrives on a resynchronising channel. */
const RESYNC_HELLO_INTERVAL_MS = 200;

export class HelloSession {
  /** Resolves at the first session, rejects if the channel closes before. */
  readonly first: Promise<Hello>;
  remote: Hello | undefined;
  ready = false;
  /** Bumped when the remote restarts: work of an older session is never answered into a newer one. */
  epoch = 0;
  private nonceValue: string;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private lastHelloSent = 0;
  private waiters: Array<{ resolve: () => void; reject: (e: HylicsError) => void }> = [];
  private resolveFirst!: (h: Hello) => void;
  private rejectFirst!: (e: HylicsError) => void;

  constructor(private readonly o: SessionOptions) {
    this.nonceValue = o.nonce ?? '';
    this.first = new Promise<Hello>((res, rej) => { this.resolveFirst = res; this.rejectFirst = rej; });
    this.first.catch(() => {}); // callers that never await it must not see an unhandled rejection
  }

  /** This end's current nonce (sent in its hellos). */
  get nonce(): string { return this.nonceValue; }

  /** Send the first hello and arm the handshake deadline. */
  start(): void {
    this.sendHello();
    if (this.o.helloTimeoutMs > 0) {
      this.deadline = setTimeout(() => {
        if (!this.ready) this.o.onTimeout(new HylicsError('HYLICS_ERR_CHANNEL_HANDSHAKE', `no hello from the other end within ${this.o.helloTimeoutMs} ms`));
      }, this.o.helloTimeoutMs);
      this.deadline.unref();
    }
  }

  helloBody(echo?: string): Hello {
    const h: Hello = {
      version: PROTOCOL_VERSION,
      role: this.o.role,
      nonce: this.nonceValue,
      caps: this.o.caps(),
      maxPayload: this.o.maxPayload,
    };
    if (this.o.name !== undefined) h.name = this.o.name;
    if (this.o.software !== undefined) h.software = this.o.software;
    if (echo !== undefined) h.echo = echo;
    return h;
  }

  /**
   * Marker + hello; repeated every helloRetryMs until the remote answers. Retries keep the nonce (a burst of
   * buffered retries must not look like restarts); a new session attempt (start, resync) takes a fresh one.
   */
  private sendHello(fresh = false): void {
    if (this.closed) return;
    if (fresh || this.nonceValue === '') this.nonceValue = randomBytes(8).toString('hex');
    this.lastHelloSent = Date.now();
    this.o.send({ type: 'hello', id: 0, hello: this.helloBody() });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { if (!this.ready) this.sendHello(); }, this.o.helloRetryMs);
    this.retryTimer.unref();
  }

  /**
   * The remote's hello or hello-ack: answers a hello, and says what it means. Throws HYLICS_ERR_CHANNEL_VERSION
   * when the remote speaks another protocol version. A `new` or `restarted` verdict is committed by establish().
   */
  receive(kind: 'hello' | 'hello-ack', h: Hello): HelloVerdict {
    if (h.version !== PROTOCOL_VERSION) {
      throw new HylicsError('HYLICS_ERR_CHANNEL_VERSION', `the other end speaks protocol version ${h.version}, this end ${PROTOCOL_VERSION}`, { remote: h.version, local: PROTOCOL_VERSION });
    }
    if (kind === 'hello-ack' && h.echo !== this.nonceValue) return 'stale';
    if (kind === 'hello') this.o.send({ type: 'hello-ack', id: 0, hello: this.helloBody(h.nonce) });
    const restarted = this.remote !== undefined && this.remote.nonce !== h.nonce;
    if (this.ready && !restarted) return 'same'; // an ack of a hello we re-sent: same session
    if (restarted) this.epoch++;
    return restarted ? 'restarted' : 'new';
  }

  /** Open the session with the remote's hello: stop resending ours, wake whoever waits for a session. */
  establish(h: Hello): void {
    this.remote = h;
    this.ready = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadline);
    this.resolveFirst(h);
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /**
   * After garbage on a resynchronising channel: the session is over (true when there was one) and a fresh hello
   * goes out behind a marker, at most one per RESYNC_HELLO_INTERVAL_MS.
   */
  resync(): boolean {
    const wasReady = this.ready;
    this.ready = false;
    const wait = Math.max(0, this.lastHelloSent + Math.min(RESYNC_HELLO_INTERVAL_MS, this.o.helloRetryMs) - Date.now());
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.sendHello(true), wait);
    this.retryTimer.unref();
    return wasReady;
  }

  /** Wait until a session is up (again): resolves at once when ready. */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => { clearTimeout(t); resolve(); },
        reject: (e: HylicsError) => { clearTimeout(t); reject(e); },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new HylicsError('HYLICS_ERR_CHANNEL_HANDSHAKE', `channel not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The channel closed with `e`: no more hellos, waiters fail. */
  close(e: HylicsError): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadline);
    for (const w of this.waiters) w.reject(e);
    this.waiters = [];
    if (!this.ready) this.rejectFirst(e);
    this.ready = false;
  }
}
