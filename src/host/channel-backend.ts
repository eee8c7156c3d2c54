// The daemon's view of the control channel: the ChannelServer (one live peer per guest, identity = socket) plus
// the host-served ops the daemon answers (task reports for the profiler, share info). Output of `exec` crosses
// the channel as base64 and is decoded here so API callers get text.
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { HylicsError } from '../core/errors/index.js';
import type { TaskEventT, TaskReportParamsT } from '../core/protocol/index.js';
import { ChannelServer, type BudgetStats, type ChannelServerOptions, type GuestChannelInfo } from './channel/index.js';
import type { ChannelEndpoint } from './drivers/types.js';
import { DIRECT_ONLY_OPS, HOST_OFFLOAD_SOCKET } from '../core/protocol/index.js';
import type { HandlerContext } from '../os/channel/index.js';
import type { ChannelBackend } from './backends.js';

export interface HostChannelBackend extends ChannelBackend {
  readonly server: ChannelServer;
  notify(guest: string, event: string, data: unknown): boolean;
  /** Serve share.info for guests (needs the share manager, so it is set after wiring). */
  setShareInfo(fn: (guest: string) => Promise<{ sizeBytes: number; usedBytes: number; freeBytes: number }>): void;
}

export interface ChannelBackendOptions {
  /** Where the per-guest channel cost metrics go. */
  registry?: Registry;
  /** Per-guest channel budget (default: DEFAULT_CHANNEL_BUDGET; false: none, for measurements only). */
  budget?: ChannelServerOptions['budget'];
}

/** Connections one guest may have open at once on its direct offload socket (one per app process, usually). */
export const DIRECT_MAX_CONNECTIONS = 32;

/**
 * Per-guest traffic and cost of the channel, read from the server at scrape time (a removed guest's series go with it).
 */
function budgetMetrics(server: ChannelServer, registry: Registry): void {
  type Inc = (labels: Record<string, string>, value: number) => void;
  type Fill = (inc: Inc, i: GuestChannelInfo) => void;
  const perGuest = (name: string, help: string, labelNames: string[], fill: Fill): void => {
    new Counter({
      name, help, labelNames: ['guest', ...labelNames], registers: [registry],
      collect() {
        this.reset();
        for (const g of server.guests()) {
          const i = server.info(g);
          if (i) fill((labels, value) => this.inc({ guest: g, ...labels }, value), i);
        }
      },
    });
  };
  const counter = (name: string, help: string, pick: (b: BudgetStats) => number): void =>
    perGuest(name, help, [], (inc, i) => inc({}, pick(i.budget)));
  counter('hylics_channel_received_bytes_total', 'Bytes received from the guest on its control channel', (b) => b.bytes);
  counter('hylics_channel_loop_seconds_total', 'Daemon event-loop time spent on the guest\'s control-channel frames (decode, validation, handlers)', (b) => b.loopMs / 1000);
  counter('hylics_channel_throttled_seconds_total', 'Time the guest\'s control channel was paused for being over its budget', (b) => b.throttledMs / 1000);
  counter('hylics_channel_budget_disconnects_total', 'Control-channel connections closed for staying over the budget', (b) => b.disconnects);
  perGuest('hylics_channel_messages_total', 'Control-channel messages (frames) received from (in) and sent to (out) the guest',
    ['direction'], (inc, i) => {
      inc({ direction: 'in' }, i.messagesIn);
      inc({ direction: 'out' }, i.messagesOut);
    });
  perGuest('hylics_channel_errors_total', 'Control-channel protocol errors (invalid frames or messages from the guest) by error code',
    ['kind'], (inc, i) => {
      for (const [kind, n] of Object.entries(i.protocolErrorsByCode)) inc({ kind }, n);
    });
}

export function createChannelBackend(log: Logger, opts: ChannelBackendOptions = {}): HostChannelBackend {
  const server = new ChannelServer({ log, ...(opts.budget !== undefined ? { budget: opts.budget } : {}) });
  // Each listening (sandbox) guest also gets a direct socket in its run dir, HOST_OFFLOAD_SOCKET: the guest
  // library's socket offload calls reach hylicsd there without the agent's relay (two Node processes and a second
  // JSON round each way). The guest is the socket's, as on the channel; only the ops served with `direct` are
  // allowed on it (its handler table is the one list: allowHandledOnly); its frames have a budget of their own, of
  // the same size as the channel's. microVM guests (connect mode: the channel is QEMU's socket) have none: their
  // library goes through the agent.
  const direct = new ChannelServer({
    log, multi: true, maxConnections: DIRECT_MAX_CONNECTIONS, allowHandledOnly: true,
    ...(opts.budget !== undefined ? { budget: opts.budget } : {}),
  });
  const directPath = (endpoint: ChannelEndpoint): string => join(dirname(endpoint.path), HOST_OFFLOAD_SOCKET);
  if (opts.registry) budgetMetrics(server, opts.registry);
  const eventListeners: Array<(guest: string, event: string, payload: unknown) => void> = [];
  const emit = (guest: string, event: string, payload: unknown): void => {
    for (const fn of eventListeners) fn(guest, event, payload);
  };
  let shareInfo: ((guest: string) => Promise<{ sizeBytes: number; usedBytes: number; freeBytes: number }>) | undefined;

  server.handle('task.report', (guest: string, p: TaskReportParamsT) => {
    for (const ev of p.events as TaskEventT[]) {
      // starts are the arrivals of Algorithm 1's rate estimate; ends carry the response time and the tier
      if (ev.kind === 'start') { emit(guest, 'task.report', { kind: 'start', name: ev.name }); continue; }
      if (ev.responseMs === undefined) continue;
      emit(guest, 'task.report', { kind: 'end', name: ev.name, responseMs: ev.responseMs, ok: ev.ok !== false, ...(ev.tier ? { tier: ev.tier } : {}) });
    }
    if (p.dropped) log.warn({ guest, dropped: p.dropped }, 'guest agent dropped task reports while disconnected');
    return { accepted: p.events.length };
  });
  server.handle('share.info', async (guest: string) => {
    if (!shareInfo) throw new HylicsError('HYLICS_ERR_INTERNAL', 'share info not available');
    const u = await shareInfo(guest);
    return { sizeBytes: u.sizeBytes, usedBytes: u.usedBytes, freeBytes: u.freeBytes };
  });
  server.on('event', (guest: string, name: string, data: unknown) => emit(guest, name, data));

  const decode = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');

  return {
    server,
    async attach(name: string, endpoint: ChannelEndpoint): Promise<void> {
      await server.addGuest(name, endpoint);
      if (endpoint.mode !== 'listen' || direct.handledOps().length === 0) return;
      // without it the guest library goes through the agent as before: not a reason to fail the guest
      await direct.addGuest(name, { mode: 'listen', path: directPath(endpoint) }).catch((e: Error) =>
        log.warn({ guest: name, err: e.message }, 'channel: no direct offload socket for this guest; its library uses the agent'));
    },
    detach: async (name: string) => { await direct.removeGuest(name); await server.removeGuest(name); },
    isConnected: (name: string) => server.isConnected(name),
    waitConnected: (name: string, timeoutMs: number) => server.waitConnected(name, timeoutMs),
    async request(name: string, op: string, params: unknown, timeoutMs: number): Promise<unknown> {
      if (op === 'exec') {
        const p = params as { argv: string[]; cwd?: string; stdin?: string; timeoutMs: number };
        const r = await server.request(name, 'exec', {
          argv: p.argv, timeoutMs: p.timeoutMs,
          ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
          ...(p.stdin !== undefined ? { stdin: Buffer.from(p.stdin).toString('base64') } : {}),
        }, { timeoutMs });
        return {
          exitCode: r.exitCode,
          signal: r.signal,
          stdout: decode(r.stdout),
          stderr: decode(r.stderr),
          truncated: r.stdoutTruncated || r.stderrTruncated,
        };
      }
      return server.request(name, op as never, params as never, { timeoutMs });
    },
    onEvent: (fn) => { eventListeners.push(fn); },
    onConnection: (fn) => {
      server.on('connected', (guest: string) => fn(guest, true));
      server.on('disconnected', (guest: string) => fn(guest, false));
    },
    notify(guest: string, event: string, data: unknown): boolean {
      try {
        return server.emitEvent(guest, event as never, data as never);
      } catch (e) {
        log.debug({ guest, event, err: String(e) }, 'event not sent');
        return false;
      }
    },
    setShareInfo: (fn) => { shareInfo = fn; },
    handle: (op, fn, o) => {
      // the one list of ops that name the calling process (the agent never relays them either)
      const directOnly = DIRECT_ONLY_OPS.includes(op);
      if (!directOnly) {
        server.handle(op, (guest: string, params: unknown, ctx: HandlerContext) => fn(guest, params, ctx.signal));
      }
      if (o?.direct || directOnly) {
        direct.handle(op, (guest: string, params: unknown, ctx: HandlerContext) =>
          fn(guest, params, ctx.signal, { takeSocket: (fd, ns) => direct.takePeerSocket(ctx.peer, fd, ns) }));
      }
    },
    close: async () => { await direct.close(); await server.close(); },
  };
}
