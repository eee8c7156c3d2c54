// ChannelServer: the host end of every guest's control channel. One endpoint per guest (a Unix socket we listen
// on, or QEMU's chardev socket we connect to); exactly one live peer per guest. The guest's identity is the
// endpoint, never anything a message says. A guest that sends garbage loses its connection, nothing else.
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { HylicsError } from '../../core/errors/index.js';
import { OPS, type Hello, type OpRegistry, type ParamsOf, type ResultOf, type EventDataOf } from '../../core/protocol/index.js';
import {
  ChannelPeer, ReplyCache, SILENT, connectUnix, listenUnix, closeUnixServer,
  type HandlerContext, type PeerLogger, type RequestOptions,
} from '../../os/channel/index.js';
import type { ChannelEndpoint } from '../drivers/types.js';
import { closePidfd, peerPidfd, streamFd, takePeerSocket, type NetnsId, type PeerSocket } from '../../os/peer-socket.js';
import { DEFAULT_CHANNEL_BUDGET, UNLIMITED_CHANNEL_BUDGET, GuestBudget, RateLimitedLog, type BudgetStats, type ChannelBudgetOptions } from './budget.js';

/** A host-side op handler: `guest` is the name bound to the endpoint the request came in on. */
export type HostHandler = (guest: string, params: never, ctx: HandlerContext) => unknown;

export interface GuestChannelOptions {
  /** Ops this guest may call on the host. Default: every registered op served by 'host'. */
  allow?: string[];
  /** Events accepted from this guest. Default: every registered event. */
  allowEvents?: string[];
  /** Concurrent requests from this guest (more are queued, then refused with BUSY). */
  maxInFlight?: number;
}

export interface ChannelServerOptions {
  log?: PeerLogger;
  registry?: OpRegistry;
  handlers?: Record<string, HostHandler>;
  maxPayload?: number;
  /** A connection that has not said hello in this long is dropped (listen mode). */
  helloTimeoutMs?: number;
  /** Default deadline of request(). */
  defaultTimeoutMs?: number;
  /** Backoff for connect mode (QEMU socket): first retry, cap. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Connections per guest still in their hello (listen mode); more are refused at once. */
  maxHandshaking?: number;
  /**
   * Per-guest budget of bytes, frames and event-loop time (./budget.ts); false: no limits, only counting
   * (measurements).
   */
  budget?: Partial<ChannelBudgetOptions> | false;
  /**
   * Every connection of a guest is live at once and none replaces another (a guest's apps each have their own;
   * the direct offload socket, src/host/channel-backend.ts); no 'connected'/'disconnected' events, and request()
   * to the guest is not served. Default false: one live peer per guest (the agent's control channel).
   */
  multi?: boolean;
  /** multi: connections per guest at once (handshaking or live); more are refused at once. */
  maxConnections?: number;
  /**
   * The ops allowed from guests are exactly those this server has handlers for (handle()), as they are when a
   * connection starts: its handler table is the one list (the direct offload socket). Default: every registered op
   * served by 'host'. A guest's own `allow` still wins.
   */
  allowHandledOnly?: boolean;
}

export interface ServerRequestOptions extends RequestOptions {
  /** Wait this long for the guest to connect before failing with NOT_CONNECTED (default 0: fail at once). */
  waitConnectedMs?: number;
}

export interface GuestChannelInfo {
  name: string;
  endpoint: ChannelEndpoint;
  connected: boolean;
  /** The agent's hello (self-declared, informational). */
  remote?: Hello;
  connectedAt?: number;
  connects: number;
  protocolErrors: number;
  /** Protocol errors by registry code (the guest's invalid frames and messages), since the guest was added. */
  protocolErrorsByCode: Record<string, number>;
  discardedBytes: number;
  /** Frames received from and sent to the guest, since the guest was added (all its connections). */
  messagesIn: number;
  messagesOut: number;
  /** What the guest's frames cost the daemon, and how often it was throttled. */
  budget: BudgetStats;
}

/** Refusals and throttling are logged at most this often per guest and kind (a guest must not flood the log). */
const LOG_EVERY_MS = 60_000;
const HELLO_WINDOW_MS = 10_000;
const MAX_HELLOS_PER_WINDOW = 30;

interface GuestState {
  name: string;
  endpoint: ChannelEndpoint;
  opts: GuestChannelOptions;
  replyCache: ReplyCache;
  server?: Server;
  live?: ChannelPeer;
  handshaking: Set<ChannelPeer>;
  /** multi: the live connections. */
  peers: Set<ChannelPeer>;
  removed: boolean;
  retryTimer?: NodeJS.Timeout;
  backoffMs: number;
  connectedAt?: number;
  connects: number;
  protocolErrors: number;
  protocolErrorsByCode: Record<string, number>;
  discardedBytes: number;
  /** Frames of connections already closed (the open ones' are in their peers' stats). */
  closedFramesIn: number;
  closedFramesOut: number;
  waiters: Array<() => void>;
  /** When the last sessions started (hellos), to refuse a guest that restarts sessions in a loop. */
  recentHellos: number[];
  budget: GuestBudget;
}

/**
 * Events: 'connected' (guest, hello) each time an agent session starts (also after an agent restart on the same
 * connection); 'disconnected' (guest, reason: string); 'event' (guest, name, data); 'protocol-error' (guest, err).
 */
export class ChannelServer extends EventEmitter {
  private readonly guestsByName = new Map<string, GuestState>();
  private readonly handlers = new Map<string, HostHandler>();
  private readonly log: PeerLogger;
  private readonly registry: OpRegistry;
  private readonly budgetOpts: ChannelBudgetOptions;
  private readonly logLimit = new RateLimitedLog(LOG_EVERY_MS);
  private closed = false;
  /** Listen-mode connections' sockets, and the pidfd of the process at the other end once taken (takePeerSocket). */
  private readonly conns = new WeakMap<ChannelPeer, { socket: Socket; pidfd?: number }>();

  constructor(private readonly opts: ChannelServerOptions = {}) {
    super();
    this.log = opts.log ?? SILENT;
    this.registry = opts.registry ?? OPS;
    this.budgetOpts = opts.budget === false ? UNLIMITED_CHANNEL_BUDGET : { ...DEFAULT_CHANNEL_BUDGET, ...opts.budget };
    for (const [op, h] of Object.entries(opts.handlers ?? {})) this.handlers.set(op, h);
  }

  /** Serve a host op for every guest (e.g. 'share.info', 'task.report', 'module.start'). */
  handle(op: string, handler: HostHandler): this {
    this.registry.requireOp(op);
    this.handlers.set(op, handler);
    return this;
  }

  /** The ops served here (handle() or the handlers option). */
  handledOps(): string[] {
    return [...this.handlers.keys()];
  }

  /** Start serving a guest's endpoint. Listen mode resolves once the socket is listening. */
  async addGuest(name: string, endpoint: ChannelEndpoint, opts: GuestChannelOptions = {}): Promise<void> {
    if (this.closed) throw new HylicsError('HYLICS_ERR_CONFLICT', 'channel server is closed');
    if (this.guestsByName.has(name))
      throw new HylicsError('HYLICS_ERR_CONFLICT', `guest ${name} already has a channel`, { guest: name });
    const g: GuestState = {
      name,
      endpoint,
      opts,
      replyCache: new ReplyCache(),
      handshaking: new Set(),
      peers: new Set(),
      removed: false,
      backoffMs: this.opts.reconnectMinMs ?? 100,
      connects: 0,
      protocolErrors: 0,
      protocolErrorsByCode: {},
      discardedBytes: 0,
      closedFramesIn: 0,
      closedFramesOut: 0,
      waiters: [],
      recentHellos: [],
      budget: new GuestBudget(this.budgetOpts),
    };
    this.guestsByName.set(name, g);
    if (endpoint.mode === 'listen') {
      try {
        g.server = await listenUnix(endpoint.path, (s) => this.accept(g, s), { mode: 0o600 });
      } catch (e) {
        this.guestsByName.delete(name);
        throw e;
      }
      g.server.on('error', (e) => this.log.error({ guest: name, err: e.message }, 'channel: listen socket error'));
    } else {
      this.connectLoop(g);
    }
  }

  /** Stop serving a guest: closes its connection and listening socket. Idempotent. */
  async removeGuest(name: string): Promise<void> {
    const g = this.guestsByName.get(name);
    if (!g) return;
    g.removed = true;
    this.guestsByName.delete(name);
    this.logLimit.forget(`${name}\0`);
    clearTimeout(g.retryTimer);
    for (const p of g.handshaking) p.close();
    for (const p of g.peers) p.close();
    g.live?.close();
    if (g.server) await closeUnixServer(g.server, g.endpoint.path);
    for (const w of g.waiters) w();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.guestsByName.keys()].map((n) => this.removeGuest(n)));
  }

  guests(): string[] {
    return [...this.guestsByName.keys()].sort();
  }

  isConnected(name: string): boolean {
    return this.guestsByName.get(name)?.live?.connected === true;
  }

  info(name: string): GuestChannelInfo | undefined {
    const g = this.guestsByName.get(name);
    if (!g) return undefined;
    const open = [...g.handshaking, ...g.peers, ...(g.live && !g.handshaking.has(g.live) ? [g.live] : [])];
    const i: GuestChannelInfo = {
      name,
      endpoint: g.endpoint,
      connected: g.live?.connected === true,
      connects: g.connects,
      protocolErrors: g.protocolErrors,
      protocolErrorsByCode: { ...g.protocolErrorsByCode },
      discardedBytes: g.discardedBytes,
      messagesIn: open.reduce((n, p) => n + p.stats.framesIn, g.closedFramesIn),
      messagesOut: open.reduce((n, p) => n + p.stats.framesOut, g.closedFramesOut),
      budget: { ...g.budget.stats },
    };
    if (g.live?.remote) i.remote = g.live.remote;
    if (g.connectedAt !== undefined && i.connected) i.connectedAt = g.connectedAt;
    return i;
  }

  /** The live peer of a guest (for callers that want ping() or stats). */
  peer(name: string): ChannelPeer | undefined {
    const p = this.guestsByName.get(name)?.live;
    return p?.connected ? p : undefined;
  }

  /** Resolves when the guest's agent is connected (at once if it is). */
  waitConnected(name: string, timeoutMs: number): Promise<void> {
    const g = this.guestsByName.get(name);
    if (!g)
      return Promise.reject(
        new HylicsError('HYLICS_ERR_CHANNEL_NOT_CONNECTED', `guest ${name} has no channel`, { guest: name }),
      );
    if (g.live?.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(t);
        if (g.live?.connected) resolve();
        else
          reject(
            new HylicsError('HYLICS_ERR_CHANNEL_NOT_CONNECTED', `guest ${name}'s channel was removed`, { guest: name }),
          );
      };
      const t = setTimeout(() => {
        g.waiters = g.waiters.filter((w) => w !== done);
        reject(
          new HylicsError(
            'HYLICS_ERR_CHANNEL_NOT_CONNECTED',
            `guest ${name}'s agent did not connect within ${timeoutMs} ms`,
            { guest: name, timeoutMs },
          ),
        );
      }, timeoutMs);
      g.waiters.push(done);
    });
  }

  /** Call an op served by the guest's agent (health, exec, shutdown, module ops...). */
  async request<K extends string>(
    name: string,
    op: K,
    params: ParamsOf<K>,
    opts: ServerRequestOptions = {},
  ): Promise<ResultOf<K>> {
    const g = this.guestsByName.get(name);
    if (!g) throw new HylicsError('HYLICS_ERR_CHANNEL_NOT_CONNECTED', `guest ${name} has no channel`, { guest: name });
    if (!g.live?.connected) {
      if (opts.waitConnectedMs) await this.waitConnected(name, opts.waitConnectedMs);
      else
        throw new HylicsError('HYLICS_ERR_CHANNEL_NOT_CONNECTED', `guest ${name}'s agent is not connected`, {
          guest: name,
        });
    }
    return g.live!.request(op, params, opts);
  }

  /** Send an event to a guest's agent; false when it is not connected. */
  emitEvent<K extends string>(name: string, event: K, data: EventDataOf<K>): boolean {
    return this.guestsByName.get(name)?.live?.emitEvent(event, data) ?? false;
  }

  /**
   * A duplicate of descriptor `fd` of the process at the other end of `peer`'s connection (the descriptor copy of
   * socket offload): that process is named by SO_PEERPIDFD, taken at the connection's first use and closed with it
   * (a pidfd: never another process that reused the pid), and the descriptor kept only if it is a non-blocking
   * connected IPv4 TCP socket in the network namespace `ns` (src/os/peer-socket.ts). Synchronous: the pidfd cannot be
   * closed under it. Throws HYLICS_ERR_OFFLOAD_FD_REFUSED / _UNAVAILABLE.
   */
  takePeerSocket(peer: ChannelPeer, fd: number, ns: NetnsId): PeerSocket {
    const c = this.conns.get(peer);
    const unixFd = c ? streamFd(c.socket) : undefined;
    if (!c || unixFd === undefined || !peer.isOpen) throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', 'this connection is not a local Unix socket of an app');
    c.pidfd ??= peerPidfd(unixFd);
    return takePeerSocket(c.pidfd, fd, ns);
  }

  // ---- internals ----

  private makePeer(g: GuestState, stream: Socket, mode: 'listen' | 'connect'): ChannelPeer {
    const handlers: Record<string, (p: unknown, ctx: HandlerContext) => unknown> = {};
    for (const [op, h] of this.handlers) handlers[op] = (p, ctx) => h(g.name, p as never, ctx);
    // the meter's two 'data' listeners bracket the peer's own: what it measures is the peer's work on each chunk
    const metered = g.budget.meter(stream as Socket);
    const conn: { socket: Socket; pidfd?: number } = { socket: stream };
    const peer = new ChannelPeer(stream, {
      role: 'host',
      name: 'hylicsd',
      software: 'hylicsd',
      registry: this.registry,
      handlers,
      allow: g.opts.allow ?? (this.opts.allowHandledOnly ? this.handledOps() : this.registry.opsServedBy('host')),
      ...(g.opts.allowEvents ? { allowEvents: g.opts.allowEvents } : {}),
      maxInFlight: g.opts.maxInFlight ?? 32,
      ...(this.opts.maxPayload ? { maxPayload: this.opts.maxPayload } : {}),
      ...(this.opts.defaultTimeoutMs ? { defaultTimeoutMs: this.opts.defaultTimeoutMs } : {}),
      // QEMU's socket is up before the agent: keep saying hello for as long as it takes
      helloTimeoutMs: mode === 'listen' ? (this.opts.helloTimeoutMs ?? 10_000) : 0,
      onProtocolError: 'close',
      replyCache: g.replyCache,
      log: this.log,
    });
    const unmeter = metered({
      framesIn: () => peer.stats.framesIn,
      onThrottle: (reason, ms) => {
        this.logLimit.maybe(`${g.name}\0throttle`, (held) =>
          this.log.warn(
            { guest: g.name, over: reason, pauseMs: ms, throttlesSinceLastLog: held, budget: g.budget.stats },
            'channel: guest over its budget; its channel is paused until it is back within',
          ),
        );
        this.emit('throttled', g.name, reason, ms);
      },
      onAbuse: (throttledMs) => {
        const b = g.budget;
        this.logLimit.maybe(`${g.name}\0abuse`, (held) =>
          this.log.warn(
            {
              guest: g.name,
              throttledMs,
              windowMs: b.opts.windowMs,
              penaltyMs: b.opts.penaltyMs,
              disconnectsSinceLastLog: held,
            },
            'channel: guest stayed over its budget; disconnecting it and refusing it for a while',
          ),
        );
        this.emit('budget-exceeded', g.name, throttledMs);
        peer.close(
          new HylicsError(
            'HYLICS_ERR_CHANNEL_BUDGET',
            `guest stayed over its channel budget (throttled ${Math.round(throttledMs)} ms in ${b.opts.windowMs} ms)`,
            { guest: g.name },
          ),
        );
      },
    });
    // Handlers answer late events through this server, so the peer's own 'error'/'protocol-error' stay contained.
    peer.on('protocol-error', (err: HylicsError) => {
      g.protocolErrors++;
      g.protocolErrorsByCode[err.code] = (g.protocolErrorsByCode[err.code] ?? 0) + 1;
      this.log.warn(
        { guest: g.name, code: err.code, err: err.message },
        'channel: guest sent an invalid frame; closing its connection',
      );
      this.emit('protocol-error', g.name, err);
    });
    peer.on('ready', (h: Hello) => {
      if (g.removed) {
        peer.close();
        return;
      }
      // A real agent reconnects with backoff; a guest that starts sessions in a loop (new hello after new hello)
      // only burns host CPU and log: refuse it for a while and say so at most once a minute.
      const now = Date.now();
      g.recentHellos = g.recentHellos.filter((t) => now - t < HELLO_WINDOW_MS);
      g.recentHellos.push(now);
      if (g.recentHellos.length > MAX_HELLOS_PER_WINDOW) {
        this.logLimit.maybe(`${g.name}\0hellos`, (held) =>
          this.log.warn(
            { guest: g.name, hellos: g.recentHellos.length, windowMs: HELLO_WINDOW_MS, refusedSinceLastLog: held },
            'channel: guest restarts sessions too fast; refusing them for now',
          ),
        );
        g.handshaking.delete(peer);
        peer.close();
        return;
      }
      g.handshaking.delete(peer);
      if (this.opts.multi) {
        g.peers.add(peer);
        return;
      }
      if (g.live && g.live !== peer) {
        this.log.info({ guest: g.name }, 'channel: a new connection replaces the old one');
        const old = g.live;
        g.live = peer;
        old.close();
      }
      g.live = peer;
      g.connects++;
      g.connectedAt = Date.now();
      g.backoffMs = this.opts.reconnectMinMs ?? 100;
      if (h.name !== undefined && h.name !== g.name)
        this.log.warn(
          { guest: g.name, claims: h.name },
          'channel: agent calls itself by another name (ignored: identity is the socket)',
        );
      this.log.info({ guest: g.name, software: h.software }, 'channel: guest connected');
      for (const w of g.waiters.splice(0)) w();
      this.emit('connected', g.name, h);
    });
    peer.on('event', (event: string, data: unknown) => this.emit('event', g.name, event, data));
    if (mode === 'listen') this.conns.set(peer, conn); // an app's connection (QEMU's socket is no app's)
    peer.on('close', (err?: HylicsError) => {
      unmeter();
      if (conn.pidfd !== undefined) { closePidfd(conn.pidfd); conn.pidfd = undefined; }
      g.handshaking.delete(peer);
      g.peers.delete(peer);
      g.discardedBytes += peer.stats.discardedBytes;
      g.closedFramesIn += peer.stats.framesIn;
      g.closedFramesOut += peer.stats.framesOut;
      if (g.live === peer) {
        g.live = undefined;
        const reason = err ? `${err.code}: ${err.message}` : 'closed';
        this.log.info({ guest: g.name, reason }, 'channel: guest disconnected');
        this.emit('disconnected', g.name, reason);
      }
      if (mode === 'connect' && !g.removed) this.scheduleConnect(g);
    });
    return peer;
  }

  private accept(g: GuestState, s: Socket): void {
    if (g.removed) {
      s.destroy();
      return;
    }
    const penalty = g.budget.penaltyMs();
    if (penalty > 0) {
      this.logLimit.maybe(`${g.name}\0penalty`, (held) =>
        this.log.warn(
          { guest: g.name, penaltyMs: penalty, refusedSinceLastLog: held },
          'channel: refusing a connection of a guest disconnected for staying over its budget',
        ),
      );
      s.destroy();
      return;
    }
    if (this.opts.multi && g.handshaking.size + g.peers.size >= (this.opts.maxConnections ?? 16)) {
      this.logLimit.maybe(`${g.name}\0connections`, (held) =>
        this.log.warn(
          { guest: g.name, max: this.opts.maxConnections ?? 16, refusedSinceLastLog: held },
          'channel: too many connections at once; refusing one',
        ),
      );
      s.destroy();
      return;
    }
    const max = this.opts.maxHandshaking ?? 4;
    if (g.handshaking.size >= max) {
      this.logLimit.maybe(`${g.name}\0handshakes`, (held) =>
        this.log.warn(
          { guest: g.name, refusedSinceLastLog: held },
          'channel: too many connections in handshake; refusing one',
        ),
      );
      s.destroy();
      return;
    }
    s.on('error', () => {}); // reported through the peer's close
    g.handshaking.add(this.makePeer(g, s, 'listen'));
  }

  private connectLoop(g: GuestState): void {
    if (g.removed) return;
    connectUnix(g.endpoint.path, 5000).then(
      (s) => {
        if (g.removed) {
          s.destroy();
          return;
        }
        s.on('error', () => {});
        g.handshaking.add(this.makePeer(g, s, 'connect'));
      },
      (e: Error) => {
        this.log.debug({ guest: g.name, err: e.message }, 'channel: connect failed, retrying');
        this.scheduleConnect(g);
      },
    );
  }

  private scheduleConnect(g: GuestState): void {
    if (g.removed) return;
    clearTimeout(g.retryTimer);
    const max = this.opts.reconnectMaxMs ?? 2000;
    // jittered; a guest disconnected for staying over its budget is not reconnected before its penalty ends
    const delay = Math.max(g.budget.penaltyMs(), Math.round(g.backoffMs / 2 + (Math.random() * g.backoffMs) / 2));
    g.backoffMs = Math.min(max, g.backoffMs * 2);
    g.retryTimer = setTimeout(() => this.connectLoop(g), delay);
  }
}
