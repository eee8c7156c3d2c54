// The guest agent: owns the control channel to the host, serves host requests (health, exec, shutdown and ops
// other areas add with agent.handle()), and offers apps in the guest a local Unix socket with the same framing:
// apps call host ops through it (forwarded), report tasks (queued while the host is away), get host events.
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { HylicsError } from '../core/errors/index.js';
import { VERSION } from '../core/version.js';
import { DIRECT_ONLY_OPS, OPS, type OpRegistry, type TaskEventT, type TaskReportParamsT, type ParamsOf, type ResultOf, type HealthResultT } from '../core/protocol/index.js';
import {
  ChannelPeer, SILENT, connectUnix, listenUnix, closeUnixServer, openVirtioPort,
  type Handler, type HandlerContext, type PeerLogger, type RequestOptions,
} from '../os/channel/index.js';
import { runExec } from './exec.js';
import { GUEST_APP_SOCKET, GUEST_CHANNEL_SOCKET, GUEST_SHARE_DIR } from '../core/guest-layout.js';

export const AGENT_SOFTWARE = `hylics-agent/${VERSION}`;
export const DEFAULT_CHANNEL_SOCKET = GUEST_CHANNEL_SOCKET;
export const DEFAULT_APP_SOCKET = GUEST_APP_SOCKET;
export const DEFAULT_SHARE_DIR = GUEST_SHARE_DIR;
export const DEFAULT_CHANNEL_PORT = 'org.hylics.channel.0';

export type AgentChannel = { kind: 'unix'; path: string } | { kind: 'port'; name: string; sysRoot?: string; devRoot?: string };

export interface AgentOptions {
  name: string;
  channel: AgentChannel;
  /** Local socket for apps; null = none. */
  appSocket: string | null;
  share: string;
  log?: PeerLogger;
  registry?: OpRegistry;
  /** Reconnect backoff: first delay and cap (full jitter in between). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Task events kept while the host is unreachable; the oldest are dropped beyond this (and counted). */
  maxQueuedReports?: number;
  /** Events per task.report request. */
  reportBatch?: number;
}

interface Batch {
  events: TaskEventT[];
  id?: number;
  dropped: number;
}

/** Events: 'connected' (hello), 'disconnected', 'shutdown' (reason) after a host shutdown request was answered,
 * 'host-event' (name, data) for every event the host sends (e.g. share.resized). */
export class Agent extends EventEmitter {
  readonly name: string;
  readonly share: string;
  private readonly log: PeerLogger;
  private readonly registry: OpRegistry;
  private readonly handlers = new Map<string, Handler>();
  private readonly apps = new Set<ChannelPeer>();
  private host: ChannelPeer | undefined;
  private appServer: Server | undefined;
  private stopped = false;
  private readonly startedAt = performance.now();
  private backoffMs: number;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  // task reports
  private queue: TaskEventT[] = [];
  private droppedSinceReport = 0;
  private droppedTotal = 0;
  private inFlight: Batch | undefined;
  private flushing = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: AgentOptions) {
    super();
    this.name = opts.name;
    this.share = opts.share;
    this.log = opts.log ?? SILENT;
    this.registry = opts.registry ?? OPS;
    this.backoffMs = opts.backoffMinMs ?? 100;
    this.handle('health', () => this.health());
    this.handle('exec', (p: ParamsOf<'exec'>, ctx: HandlerContext) => runExec(p, ctx.signal));
    this.handle('shutdown', (p: ParamsOf<'shutdown'>) => {
      // answer first, then go: the host sees ok before the channel closes
      setImmediate(() => { void this.stop(p.reason ?? 'host asked').then(() => this.emit('shutdown', p.reason ?? 'host asked')); });
      return { ok: true };
    });
  }

  /** Serve a guest op for the host (e.g. the modules area: agent.handle('module.start', ...)). Before start(). */
  handle(op: string, handler: Handler): this {
    this.registry.requireOp(op);
    this.handlers.set(op, handler);
    return this;
  }

  get connected(): boolean {
    return this.host?.connected === true;
  }

  async start(): Promise<void> {
    if (this.opts.appSocket) {
      this.appServer = await listenUnix(this.opts.appSocket, (s) => this.acceptApp(s), { mode: 0o666 });
    }
    this.loop = this.connectLoop();
  }

  async stop(reason = 'stopping'): Promise<void> {
    if (this.stopped) return;
    this.log.info({ reason }, 'agent: stopping');
    if (this.host?.connected) {
      try { this.host.emitEvent('agent.status', { state: 'stopping', apps: this.apps.size }); } catch { /* ignore */ }
      await Promise.race([this.flushAll(), sleep(1000)]);
    }
    this.stopped = true;
    clearTimeout(this.flushTimer);
    this.wake?.();
    for (const a of this.apps) a.close();
    if (this.appServer) await closeUnixServer(this.appServer, this.opts.appSocket ?? undefined);
    this.host?.close();
    await this.loop;
  }

  /** Call an op the host serves (share.info, module.*, offload.*). */
  async hostRequest<K extends string>(op: K, params: ParamsOf<K>, opts: RequestOptions = {}): Promise<ResultOf<K>> {
    const h = this.host;
    if (!h?.connected) throw new HylicsError('HYLICS_ERR_CHANNEL_NOT_CONNECTED', `the host is not connected to agent ${this.name}`, { op });
    return h.request(op, params, opts);
  }

  /** Queue task events for the host profiler (never blocks, never throws for a full queue: drops the oldest). */
  report(events: TaskEventT[]): number {
    const max = this.opts.maxQueuedReports ?? 10_000;
    for (const e of events) {
      this.queue.push(e);
      if (this.queue.length > max) {
        this.queue.shift();
        this.droppedSinceReport++;
        this.droppedTotal++;
      }
    }
    this.scheduleFlush(0);
    return events.length;
  }

  health(): HealthResultT {
    return {
      ok: true,
      name: this.name,
      pid: process.pid,
      uptimeMs: Math.round(performance.now() - this.startedAt),
      software: AGENT_SOFTWARE,
      apps: this.apps.size,
      queuedReports: this.queue.length + (this.inFlight?.events.length ?? 0),
      droppedReports: this.droppedTotal,
      loadavg: loadavg(),
      rssBytes: process.memoryUsage.rss(),
      time: Date.now(),
    };
  }

  /** Resolves when every queued report reached the host (or rejects after timeoutMs). */
  async flushAll(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.queue.length > 0 || this.inFlight) {
      if (Date.now() > until) throw new HylicsError('HYLICS_ERR_TIMEOUT', `task reports not delivered within ${timeoutMs} ms`);
      this.scheduleFlush(0);
      await new Promise<void>((r) => { this.idleWaiters.push(r); setTimeout(r, 200).unref(); });
    }
  }

  // ---- host channel ----

  private async openChannel(): Promise<Duplex> {
    const c = this.opts.channel;
    if (c.kind === 'unix') return connectUnix(c.path, 5000);
    const opts: { sysRoot?: string; devRoot?: string } = {};
    if (c.sysRoot) opts.sysRoot = c.sysRoot;
    if (c.devRoot) opts.devRoot = c.devRoot;
    return openVirtioPort(c.name, opts);
  }

  private nextDelay(): number {
    const max = this.opts.backoffMaxMs ?? 5000;
    const min = this.opts.backoffMinMs ?? 100;
    const d = min + Math.random() * Math.max(0, this.backoffMs - min); // jittered so restarted guests do not stampede
    this.backoffMs = Math.min(max, this.backoffMs * 2);
    return d;
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => { clearTimeout(t); r(); };
    });
    this.wake = undefined;
  }

  private async connectLoop(): Promise<void> {
    const port = this.opts.channel.kind === 'port';
    // a peer that never completed a handshake hands its nonce to the next one (see PeerOptions.nonce)
    let carryNonce: string | undefined;
    while (!this.stopped) {
      let stream: Duplex;
      try {
        stream = await this.openChannel();
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'agent: host channel not available yet');
        await this.pause(this.nextDelay());
        continue;
      }
      if (this.stopped) { stream.destroy(); break; }
      stream.on('error', () => {});
      const handlers: Record<string, Handler> = Object.fromEntries(this.handlers);
      const peer = new ChannelPeer(stream, {
        role: 'agent',
        name: this.name,
        software: AGENT_SOFTWARE,
        registry: this.registry,
        handlers,
        // ops served for apps only (server 'agent', e.g. tier.path) are not the host's to call
        allow: [...this.handlers.keys()].filter((op) => this.registry.op(op)?.server !== 'agent'),
        // a virtio port cannot be reopened to drop stale bytes: hunt for the marker instead
        onProtocolError: port ? 'resync' : 'close',
        helloTimeoutMs: port ? 0 : 10_000,
        helloRetryMs: 1000,
        log: this.log,
        ...(carryNonce !== undefined ? { nonce: carryNonce } : {}),
      });
      this.host = peer;
      peer.on('ready', (h) => {
        this.backoffMs = this.opts.backoffMinMs ?? 100;
        this.log.info({ host: h.software }, 'agent: connected to host');
        try { peer.emitEvent('agent.status', { state: 'ready', apps: this.apps.size }); } catch { /* ignore */ }
        this.emit('connected', h);
        this.scheduleFlush(0);
      });
      peer.on('event', (event: string, data: unknown) => {
        this.emit('host-event', event, data);
        for (const a of this.apps) { try { a.emitEvent(event, data); } catch { /* not for apps */ } }
      });
      const closed = new Promise<HylicsError | undefined>((r) => peer.once('close', r));
      const err = await closed;
      const wasReady = peer.remote !== undefined;
      carryNonce = port && !wasReady ? peer.sessionNonce : undefined;
      this.host = undefined;
      if (wasReady) this.emit('disconnected');
      if (this.stopped) break;
      this.log.info({ err: err?.message }, 'agent: host channel closed; reconnecting');
      await this.pause(this.nextDelay());
    }
  }

  // ---- task reports ----

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer || this.stopped) return;
    this.flushTimer = setTimeout(() => { this.flushTimer = undefined; void this.flushOnce(); }, delayMs);
  }

  private async flushOnce(): Promise<void> {
    if (this.flushing) return;
    const h = this.host;
    if (!h?.connected) return; // 'ready' schedules the next flush
    this.flushing = true;
    try {
      if (!this.inFlight && this.queue.length > 0) {
        const n = this.opts.reportBatch ?? 200;
        this.inFlight = { events: this.queue.splice(0, n), dropped: this.droppedSinceReport };
        this.droppedSinceReport = 0;
      }
      const b = this.inFlight;
      if (!b) return;
      // the same id (and params) on every retry: the host's reply cache makes a resend after a lost ack harmless
      b.id ??= h.allocId();
      const params: TaskReportParamsT = b.dropped > 0 ? { events: b.events, dropped: b.dropped } : { events: b.events };
      try {
        await h.request('task.report', params, { id: b.id, timeoutMs: 10_000 });
        this.inFlight = undefined;
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'agent: task report not delivered; will retry');
        if (this.host === h && h.connected) this.scheduleFlush(1000);
        return;
      }
    } finally {
      this.flushing = false;
      if (this.queue.length === 0 && !this.inFlight) for (const w of this.idleWaiters.splice(0)) w();
    }
    if (this.queue.length > 0) this.scheduleFlush(0);
  }

  // ---- apps ----

  private acceptApp(s: Socket): void {
    if (this.stopped) { s.destroy(); return; }
    s.on('error', () => {});
    const handlers: Record<string, Handler> = {
      health: () => this.health(),
      'task.report': (p: TaskReportParamsT) => ({ accepted: this.report(p.events) }),
    };
    // every other host op is forwarded (module.*, offload.*, share.info...), read from the registry at connect
    // time so ops other areas registered are included
    for (const op of this.registry.opsServedBy('host')) {
      // not the descriptor copy: it names the calling process, which would be this agent (the app's library
      // then uses the TCP_REPAIR handoff through the agent, as without the op)
      if (handlers[op] || DIRECT_ONLY_OPS.includes(op)) continue;
      handlers[op] = (p: unknown, ctx: HandlerContext) =>
        this.hostRequest(op, p as never, { timeoutMs: Math.max(1, ctx.deadline - Date.now()) });
    }
    for (const op of this.registry.opsServedBy('agent')) {
      const h = this.handlers.get(op);
      if (h) handlers[op] = h;
    }
    const peer = new ChannelPeer(s, {
      role: 'agent', name: this.name, software: AGENT_SOFTWARE, registry: this.registry, handlers,
      allow: Object.keys(handlers), // exec/shutdown are the host's to call, never an app's
      onProtocolError: 'close', helloTimeoutMs: 10_000, log: this.log,
    });
    this.apps.add(peer);
    peer.on('event', (event: string, data: unknown) => {
      // apps' events go to the host when they are guest events; identity is still this agent's channel
      if (this.registry.event(event)?.from === 'guest') this.host?.emitEvent(event, data);
    });
    peer.once('close', () => this.apps.delete(peer));
  }
}
