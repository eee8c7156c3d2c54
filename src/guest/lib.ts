// The guest library: what apps in a guest use to talk to the Hylics agent on /run/hylics/agent.sock.
//
//   import { track, connect } from 'hylics/guest';          // (src/guest/lib.ts)
//   const result = await track('compress', () => compress(file));   // reports start/end/response time to the host
//   const agent = await connect();                            // or connect({ socket: '/run/hylics/agent.sock' })
//   await agent.health(); await agent.shareInfo();             // share size/used/free as the host sees it
//   await agent.request('module.start', {...});                // any op the host serves (forwarded by the agent)
//   agent.on('event', (name, data) => ...);                    // host events, e.g. 'share.resized'
//   await agent.close();
//
// track() never fails the app's work because of Hylics: if the agent is unreachable the report is dropped
// (counted in droppedReports()) and fn's result or error passes through unchanged.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { HylicsError } from '../core/errors/index.js';
import type { TaskEventT, ParamsOf, ResultOf, HealthResultT, ShareInfoResultT, EventDataOf } from '../core/protocol/index.js';
import { ChannelPeer, connectUnix, type RequestOptions } from '../os/channel/index.js';
import { DEFAULT_APP_SOCKET } from './agent.js';

export interface ConnectOptions {
  /** Agent socket; default $HYLICS_AGENT_SOCKET or /run/hylics/agent.sock. */
  socket?: string;
  /** How long to wait for the agent's hello. */
  timeoutMs?: number;
  /** Name sent in the hello (logged by the agent). */
  name?: string;
}

export function defaultAgentSocket(): string {
  return process.env.HYLICS_AGENT_SOCKET || DEFAULT_APP_SOCKET;
}

/**
 * A connection to the guest agent. Does not keep the process alive when idle. Events: 'event' (name, data), 'close'.
 */
export class AgentClient extends EventEmitter {
  private constructor(readonly peer: ChannelPeer, readonly socket: string) {
    super();
    peer.on('event', (name: string, data: unknown) => this.emit('event', name, data));
    peer.on('close', (e?: HylicsError) => this.emit('close', e));
  }

  static async connect(opts: ConnectOptions = {}): Promise<AgentClient> {
    const path = opts.socket ?? defaultAgentSocket();
    const timeoutMs = opts.timeoutMs ?? 5000;
    let s;
    try {
      s = await connectUnix(path, timeoutMs);
    } catch (e) {
      throw new HylicsError('HYLICS_ERR_AGENT_UNREACHABLE', `cannot reach the Hylics agent at ${path}: ${(e as Error).message}`, { socket: path }, { cause: e });
    }
    s.on('error', () => {});
    const peer = new ChannelPeer(s, { role: 'app', name: opts.name ?? `app-${process.pid}`, helloTimeoutMs: timeoutMs });
    try {
      await peer.ready;
    } catch (e) {
      peer.close();
      throw new HylicsError('HYLICS_ERR_AGENT_UNREACHABLE', `the agent at ${path} did not answer the hello: ${(e as Error).message}`, { socket: path }, { cause: e });
    }
    s.unref(); // an idle connection must not keep the app alive; pending requests keep it alive through their timers
    return new AgentClient(peer, path);
  }

  get connected(): boolean {
    return this.peer.connected;
  }

  request<K extends string>(op: K, params: ParamsOf<K>, opts?: RequestOptions): Promise<ResultOf<K>> {
    return this.peer.request(op, params, opts);
  }
  health(): Promise<HealthResultT> {
    return this.peer.request('health', {});
  }
  shareInfo(): Promise<ShareInfoResultT> {
    return this.peer.request('share.info', {});
  }
  /** Network-send offload: ask the host to serve a directory of this guest's share on this guest's address
   * (module offload, paper §4.2). The host decides which guest is asking from the channel, not from params. */
  startModule(params: ParamsOf<'module.start'>): Promise<ResultOf<'module.start'>> {
    return this.peer.request('module.start', params, { timeoutMs: 30_000 });
  }
  async listModules(): Promise<ResultOf<'module.list'>['modules']> {
    return (await this.peer.request('module.list', {})).modules;
  }
  stopModule(id: string): Promise<ResultOf<'module.stop'>> {
    return this.peer.request('module.stop', { id }, { timeoutMs: 30_000 });
  }
  /** Send task events to the agent (it queues and forwards them to the host). */
  async report(events: TaskEventT[]): Promise<number> {
    return (await this.peer.request('task.report', { events }, { timeoutMs: 5000 })).accepted;
  }
  /** Send a guest event (one registered with from: 'guest') to the host through the agent. */
  emitEvent<K extends string>(event: K, data: EventDataOf<K>): boolean {
    return this.peer.emitEvent(event, data);
  }
  close(): void {
    this.peer.close();
  }
}

export async function connect(opts: ConnectOptions = {}): Promise<AgentClient> {
  return AgentClient.connect(opts);
}

// ---- track(): one shared client per process, connected lazily and re-connected after the agent restarts ----

let shared: Promise<AgentClient> | undefined;
let sharedSocket: string | undefined;
let dropped = 0;
let lastWarn = 0;

/** The process's shared agent connection (track(), tier.path()); reconnected after the agent restarts. */
export function sharedClient(socket?: string): Promise<AgentClient> {
  const want = socket ?? defaultAgentSocket();
  if (shared && sharedSocket === want) return shared;
  sharedSocket = want;
  const p = AgentClient.connect({ socket: want, timeoutMs: 2000 });
  shared = p;
  p.then((c) => c.once('close', () => { if (shared === p) shared = undefined; }), () => { if (shared === p) shared = undefined; });
  return p;
}

/** Task reports that could not be handed to the agent (agent down or absent). */
export function droppedReports(): number {
  return dropped;
}

async function send(events: TaskEventT[], socket?: string): Promise<void> {
  try {
    const c = await sharedClient(socket);
    await c.report(events);
  } catch (e) {
    dropped += events.length;
    if (Date.now() - lastWarn > 60_000) {
      lastWarn = Date.now();
      process.emitWarning(`hylics: task report dropped (${(e as Error).message})`, { code: 'HYLICS_TRACK' });
    }
  }
}

export interface TrackOptions {
  /** Numbers profiled with the task (e.g. { bytes: 1234 }). */
  attrs?: Record<string, number>;
  /** Agent socket (default as connect()). */
  socket?: string;
}

/**
 * Run fn as a task named `name` and report its start, end and response time to the host profiler. Resolves
 * (or rejects) with fn's outcome once the end report is with the agent, so an app may exit right after.
 */
export async function track<T>(name: string, fn: () => T | Promise<T>, opts: TrackOptions = {}): Promise<T> {
  const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const startMs = Date.now();
  const t0 = performance.now();
  const start: TaskEventT = { kind: 'start', name, id, startMs };
  if (opts.attrs) start.attrs = opts.attrs;
  const started = send([start], opts.socket);
  let ok = true;
  let error: string | undefined;
  try {
    return await fn();
  } catch (e) {
    ok = false;
    error = (e instanceof Error ? e.message : String(e)).slice(0, 500);
    throw e;
  } finally {
    const responseMs = performance.now() - t0;
    const end: TaskEventT = { kind: 'end', name, id, startMs, endMs: startMs + responseMs, responseMs, ok };
    if (error !== undefined) end.error = error;
    if (opts.attrs) end.attrs = opts.attrs;
    await started;
    await send([end], opts.socket);
  }
}
