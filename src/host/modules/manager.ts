// The module manager (daemon side): starts, lists and stops a guest's middleware modules. One unprivileged worker
// process per guest (spawned as nobody, given only a directory fd of that guest's share), restarted when it dies
// (the guest is told with a 'worker-restarted' event); nft rules steer guestAddr:port to the worker.
// Everything is keyed by the guest name the daemon passes in: a guest can only ever name its own modules.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { HylicsError } from '../../core/errors/index.js';
import { validateGuestName } from '../../core/units.js';
import { openShareDir } from '../../os/native.js';
import { applyModuleRules, listModuleTableGuests, removeModuleRules, type DnatRule } from '../../os/nft.js';
import { entryArgv, NODE_BIN } from '../../os/self.js';
import { DEFAULT_LIMITS, type FromWorker, type ModuleEvent, type ModuleGuest, type ModuleInfo, type ModuleKind, type ModuleLimits, type ModuleStartOptions, type ToWorker } from './types.js';

export interface ModuleManagerOptions {
  /** prom-client registry for the module metrics (a private one when absent). */
  registry?: Registry;
  /** uid/gid the workers run as (default nobody:nogroup, 65534). */
  workerUser?: { uid: number; gid: number };
  maxModulesPerGuest?: number;
  limits?: Partial<ModuleLimits>;
  /** 'stream' forces the createReadStream().pipe() body path (bench baseline). */
  sendPath?: 'native' | 'stream';
  /** Install nft rules (default true). Off only for benchmarks that talk to the listen address directly. */
  steer?: boolean;
  log?: (msg: string) => void;
}

interface Mod { info: ModuleInfo; opts: ModuleStartOptions }

interface GuestState {
  guest: ModuleGuest;
  child: ChildProcess | null;
  ready: Promise<void> | null;
  modules: Map<string, Mod>;
  pending: Map<string, { resolve: (m: FromWorker) => void }>;
  nextId: number;
  restarts: number;
  lastStart: number;
  stopping: boolean;
  queue: Promise<unknown>;
  native?: unknown;
}

const WORKER_READY_MS = 30_000;
const WORKER_REPLY_MS = 15_000;

export interface ModuleManagerEvents { event: [ModuleEvent] }

export class ModuleManager extends EventEmitter<ModuleManagerEvents> {
  private readonly guests = new Map<string, GuestState>();
  private readonly user: { uid: number; gid: number };
  private readonly maxModules: number;
  private readonly limits: ModuleLimits;
  private readonly sendPath: 'native' | 'stream';
  private readonly steer: boolean;
  private readonly log: (msg: string) => void;
  private closed = false;
  readonly registry: Registry;
  private readonly m: { requests: Counter; bytes: Counter; errors: Counter; latency: Counter; restarts: Counter; running: Gauge };

  constructor(opts: ModuleManagerOptions = {}) {
    super();
    this.user = opts.workerUser ?? { uid: 65534, gid: 65534 };
    this.maxModules = opts.maxModulesPerGuest ?? 16;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.sendPath = opts.sendPath ?? 'native';
    this.steer = opts.steer ?? true;
    this.log = opts.log ?? (() => {});
    this.registry = opts.registry ?? new Registry();
    const labelNames = ['guest', 'module', 'kind'] as const;
    const r = [this.registry];
    this.m = {
      requests: new Counter({ name: 'hylics_module_requests_total', help: 'Requests served by host-side modules', labelNames, registers: r }),
      bytes: new Counter({ name: 'hylics_module_bytes_sent_total', help: 'Body bytes sent by host-side modules', labelNames, registers: r }),
      errors: new Counter({ name: 'hylics_module_errors_total', help: 'Requests answered with an error (4xx/5xx) or broken transfers', labelNames, registers: r }),
      latency: new Counter({ name: 'hylics_module_request_seconds_total', help: 'Sum of request durations (divide by requests for the mean)', labelNames, registers: r }),
      restarts: new Counter({ name: 'hylics_module_worker_restarts_total', help: 'Module worker processes restarted after dying', labelNames: ['guest'], registers: r }),
      running: new Gauge({ name: 'hylics_modules_running', help: 'Modules running per guest', labelNames: ['guest'], registers: r }),
    };
  }

  /** Start a module for `guest`. Resolves with its info (incl. the URLs clients use). */
  async start(guest: ModuleGuest, opts: ModuleStartOptions): Promise<ModuleInfo> {
    checkGuest(guest);
    const o = checkOptions(opts);
    return this.serial(guest.name, guest, async (st) => {
      if (st.modules.size >= this.maxModules) throw new HylicsError('HYLICS_ERR_MODULE_LIMIT', `guest ${guest.name} already runs ${st.modules.size} modules`, { guest: guest.name, max: this.maxModules });
      for (const m of st.modules.values()) {
        if (m.opts.port === o.port) throw new HylicsError('HYLICS_ERR_MODULE_PORT_IN_USE', `guest ${guest.name} already serves port ${o.port} (module ${m.info.id})`, { guest: guest.name, port: o.port, module: m.info.id });
        if (o.hostPort !== undefined && m.opts.hostPort === o.hostPort) throw new HylicsError('HYLICS_ERR_MODULE_PORT_IN_USE', `host port ${o.hostPort} is taken by module ${m.info.id}`, { hostPort: o.hostPort });
      }
      for (const [name, other] of this.guests) {
        if (name === guest.name || o.hostPort === undefined) continue;
        for (const m of other.modules.values()) if (m.opts.hostPort === o.hostPort) throw new HylicsError('HYLICS_ERR_MODULE_PORT_IN_USE', `host port ${o.hostPort} is taken`, { hostPort: o.hostPort });
      }
      await this.ensureWorker(st);
      const id = `${o.kind}-${st.nextId++}`;
      const reply = await this.request(st, { op: 'start', id, kind: o.kind, root: o.root, listenAddr: guest.hostAddr, listenPort: 0, ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}), limits: this.limits, sendPath: this.sendPath }, id);
      if (reply.op === 'failed') throw new HylicsError(reply.code as HylicsError['code'], reply.message, { guest: guest.name, root: o.root });
      if (reply.op !== 'started') throw new HylicsError('HYLICS_ERR_MODULE_WORKER', `unexpected worker reply ${reply.op}`);
      const info: ModuleInfo = {
        id, guest: guest.name, kind: o.kind, root: o.root, port: o.port,
        ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}),
        listen: { addr: guest.hostAddr, port: reply.listenPort },
        urls: [`http://${guest.guestAddr}:${o.port}/`, ...(o.hostPort !== undefined ? [`http://<host>:${o.hostPort}/`] : [])],
        startedAt: new Date().toISOString(),
        totals: { requests: 0, bytes: 0, errors: 0 },
      };
      st.modules.set(id, { info, opts: o });
      try {
        await this.applyRules(st);
      } catch (e) {
        st.modules.delete(id);
        await this.request(st, { op: 'stop', id }, id).catch(() => {});
        throw e;
      }
      this.m.running.set({ guest: guest.name }, st.modules.size);
      this.emit('event', { type: 'started', guest: guest.name, module: structuredClone(info) });
      return structuredClone(info);
    });
  }

  /** The guest's modules (empty when none). */
  list(guestName: string): ModuleInfo[] {
    const st = this.guests.get(guestName);
    return st ? [...st.modules.values()].map((m) => structuredClone(m.info)) : [];
  }

  /** Stop one of the guest's modules; HYLICS_ERR_MODULE_NOT_FOUND when the guest has no such module. */
  stop(guestName: string, id: string): Promise<void> {
    const st = this.guests.get(guestName);
    if (!st || !st.modules.has(id)) return Promise.reject(new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} has no module ${JSON.stringify(id)}`, { guest: guestName, id }));
    return this.serial(guestName, st.guest, async (s) => {
      if (!s.modules.has(id)) throw new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} has no module ${JSON.stringify(id)}`, { guest: guestName, id });
      s.modules.delete(id);
      await this.applyRules(s);
      if (s.child) await this.request(s, { op: 'stop', id }, id).catch(() => {});
      this.m.running.set({ guest: guestName }, s.modules.size);
      this.emit('event', { type: 'stopped', guest: guestName, id });
      if (s.modules.size === 0) await this.killWorker(s);
    });
  }

  /** Stop every module of the guest, remove its rules and its worker (call when the guest goes away). */
  async stopAll(guestName: string): Promise<void> {
    const st = this.guests.get(guestName);
    if (!st) { if (this.steer) await removeModuleRules(guestName).catch(() => {}); return; }
    await this.serial(guestName, st.guest, async (s) => {
      const ids = [...s.modules.keys()];
      s.modules.clear();
      if (this.steer) await removeModuleRules(guestName);
      await this.killWorker(s);
      this.m.running.set({ guest: guestName }, 0);
      for (const id of ids) this.emit('event', { type: 'stopped', guest: guestName, id });
    });
    this.guests.delete(guestName);
  }

  /**
   * Remove module tables no running module of this manager owns (a previous daemon died without cleaning up;
   * its workers exit with it). Call once at daemon start, never from tests that share the host.
   */
  async cleanupStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const g of await listModuleTableGuests()) {
      if (this.guests.get(g)?.modules.size) continue;
      await removeModuleRules(g);
      removed.push(g);
    }
    return removed;
  }

  /** Stop everything (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.guests.keys()].map((g) => this.stopAll(g)));
  }

  /** What the guest's worker uses: { loaded, open: 'openat2'|'js-walk', send: 'sendfile'|'stream' } (after start). */
  workerNative(guestName: string): unknown {
    return this.guests.get(guestName)?.native;
  }

  /** The worker's pid (tests kill it to prove the restart). */
  workerPid(guestName: string): number | undefined {
    return this.guests.get(guestName)?.child?.pid;
  }

  // ---- internals ----

  private serial<T>(name: string, guest: ModuleGuest, fn: (st: GuestState) => Promise<T>): Promise<T> {
    let st = this.guests.get(name);
    if (!st) {
      st = { guest, child: null, ready: null, modules: new Map(), pending: new Map(), nextId: 1, restarts: 0, lastStart: 0, stopping: false, queue: Promise.resolve() };
      this.guests.set(name, st);
    }
    const s = st;
    const p = s.queue.then(() => fn(s));
    s.queue = p.catch(() => {});
    return p;
  }

  private async applyRules(st: GuestState): Promise<void> {
    if (!this.steer) return;
    const rules: DnatRule[] = [...st.modules.values()].map((m) => ({ guestAddr: st.guest.guestAddr, port: m.opts.port, toAddr: m.info.listen.addr, toPort: m.info.listen.port }));
    await applyModuleRules(st.guest.name, rules);
  }

  private ensureWorker(st: GuestState): Promise<void> {
    if (st.child && st.ready) return st.ready;
    if (this.closed) return Promise.reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', 'module manager is closed'));
    const shareFd = openShareDir(st.guest.sharePath);
    let child: ChildProcess;
    try {
      child = spawn(NODE_BIN, entryArgv('host/modules/worker-main'), {
        // the worker drops to this user itself once its code is loaded (see worker-main.ts)
        cwd: '/',
        // nothing of the daemon's environment but what node needs
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin', HYLICS_WORKER_UID: String(this.user.uid), HYLICS_WORKER_GID: String(this.user.gid),
          ...(process.env.HYLICS_NATIVE ? { HYLICS_NATIVE: process.env.HYLICS_NATIVE } : {}),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc', shareFd],
        serialization: 'json',
      });
    } finally {
      closeSync(shareFd); // the child has its own copy (fd 4); the daemon keeps none
    }
    st.child = child;
    st.lastStart = Date.now();
    st.stopping = false;
    st.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `worker for ${st.guest.name} did not start within ${WORKER_READY_MS} ms`)); child.kill('SIGKILL'); }, WORKER_READY_MS);
      child.once('error', (e) => { clearTimeout(timer); reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `worker for ${st.guest.name}: ${e.message}`)); });
      child.once('exit', () => { clearTimeout(timer); reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `worker for ${st.guest.name} exited while starting`)); });
      child.on('message', (m: FromWorker) => {
        if (m.op === 'ready') { clearTimeout(timer); st.native = m.native; resolve(); return; }
        this.onMessage(st, m);
      });
    });
    st.ready.catch(() => {});
    child.on('exit', (code, signal) => this.onExit(st, child, code, signal));
    return st.ready;
  }

  private onMessage(st: GuestState, m: FromWorker): void {
    const g = st.guest.name;
    if (m.op === 'started' || m.op === 'failed' || m.op === 'stopped') {
      const p = st.pending.get(m.id);
      if (p) { st.pending.delete(m.id); p.resolve(m); }
      return;
    }
    if (m.op === 'ready') return;
    const mod = st.modules.get(m.id);
    const labels = { guest: g, module: m.id, kind: m.op === 'stats' ? m.kind : (mod?.info.kind ?? 'http') };
    if (m.op === 'stats') {
      this.m.requests.inc(labels, m.requests);
      this.m.bytes.inc(labels, m.bytes);
      this.m.errors.inc(labels, m.errors);
      this.m.latency.inc(labels, (m.latency.meanMs * m.requests) / 1000);
      if (mod) { mod.info.totals.requests += m.requests; mod.info.totals.bytes += m.bytes; mod.info.totals.errors += m.errors; }
      this.emit('event', { type: 'stats', guest: g, id: m.id, kind: m.kind, intervalMs: m.intervalMs, requests: m.requests, bytes: m.bytes, errors: m.errors, latency: m.latency });
    } else if (m.op === 'error') {
      this.emit('event', { type: 'error', guest: g, id: m.id, code: m.code, message: m.message });
    }
  }

  private request(st: GuestState, msg: ToWorker, id: string): Promise<FromWorker> {
    const child = st.child;
    if (!child || !child.connected) return Promise.reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `no worker for ${st.guest.name}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { st.pending.delete(id); reject(new HylicsError('HYLICS_ERR_MODULE_WORKER', `worker for ${st.guest.name} did not answer ${msg.op} ${id}`)); }, WORKER_REPLY_MS);
      st.pending.set(id, { resolve: (m) => { clearTimeout(timer); resolve(m); } });
      child.send(msg);
    });
  }

  private async killWorker(st: GuestState): Promise<void> {
    const child = st.child;
    if (!child) return;
    st.stopping = true;
    st.child = null;
    st.ready = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    });
  }

  private onExit(st: GuestState, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    for (const [id, p] of st.pending) { st.pending.delete(id); p.resolve({ op: 'failed', id, code: 'HYLICS_ERR_MODULE_WORKER', message: 'worker exited' }); }
    if (st.child !== child || st.stopping || this.closed) return;
    st.child = null;
    st.ready = null;
    if (st.modules.size === 0) return;
    // died on its own: restart with backoff (reset after a minute of good health), restore every module
    if (Date.now() - st.lastStart > 60_000) st.restarts = 0;
    st.restarts++;
    this.m.restarts.inc({ guest: st.guest.name });
    const reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
    this.log(`module worker of ${st.guest.name} ${reason}; restarting (${st.restarts})`);
    this.emit('event', { type: 'worker-restarted', guest: st.guest.name, reason, restarts: st.restarts });
    const delay = Math.min(100 * 2 ** (st.restarts - 1), 5000);
    setTimeout(() => { void this.serial(st.guest.name, st.guest, (s) => this.restore(s)).catch((e: unknown) => this.log(`restoring modules of ${st.guest.name} failed: ${(e as Error).message}`)); }, delay).unref();
  }

  private async restore(st: GuestState): Promise<void> {
    if (this.closed || st.modules.size === 0 || st.child) return;
    await this.ensureWorker(st);
    for (const mod of [...st.modules.values()]) {
      const o = mod.opts;
      const reply = await this.request(st, { op: 'start', id: mod.info.id, kind: o.kind, root: o.root, listenAddr: st.guest.hostAddr, listenPort: mod.info.listen.port, ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}), limits: this.limits, sendPath: this.sendPath }, mod.info.id);
      if (reply.op === 'started') mod.info.listen.port = reply.listenPort;
      else {
        st.modules.delete(mod.info.id);
        this.emit('event', { type: 'error', guest: st.guest.name, id: mod.info.id, code: reply.op === 'failed' ? reply.code : 'HYLICS_ERR_MODULE_WORKER', message: `could not restore module after restart: ${reply.op === 'failed' ? reply.message : reply.op}` });
        this.emit('event', { type: 'stopped', guest: st.guest.name, id: mod.info.id });
      }
    }
    await this.applyRules(st);
    this.m.running.set({ guest: st.guest.name }, st.modules.size);
  }
}

function checkGuest(g: ModuleGuest): void {
  validateGuestName(g.name);
  if (typeof g.sharePath !== 'string' || !g.sharePath.startsWith('/')) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'guest.sharePath must be an absolute host path', { sharePath: g.sharePath });
  if (!isIPv4(g.guestAddr) || !isIPv4(g.hostAddr)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'guest.guestAddr and guest.hostAddr must be IPv4 addresses', { guestAddr: g.guestAddr, hostAddr: g.hostAddr });
}

/** Validate what a guest (or the CLI) asks for; returns a clean copy. */
export function checkOptions(o: ModuleStartOptions): ModuleStartOptions {
  if (o === null || typeof o !== 'object') throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'module options must be an object');
  if (o.kind !== 'http' && o.kind !== 'stream') throw new HylicsError('HYLICS_ERR_MODULE_KIND', `module kind must be http or stream, got ${JSON.stringify(o.kind)}`, { kind: o.kind });
  if (typeof o.root !== 'string' || o.root.length > 4096 || o.root.includes('\0')) throw new HylicsError('HYLICS_ERR_MODULE_ROOT', 'root must be a path inside the share', { root: o.root });
  const parts = o.root.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new HylicsError('HYLICS_ERR_MODULE_ROOT', `root ${JSON.stringify(o.root)} leaves the share`, { root: o.root });
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `port must be 1-65535, got ${o.port}`, { port: o.port });
  if (o.hostPort !== undefined && (!Number.isInteger(o.hostPort) || o.hostPort < 1024 || o.hostPort > 65535)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `hostPort must be 1024-65535 (the worker is unprivileged), got ${o.hostPort}`, { hostPort: o.hostPort });
  return { kind: o.kind, root: parts.join('/'), port: o.port, ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}) };
}
