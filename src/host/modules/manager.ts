// The module manager (daemon side): starts, lists and stops a guest's middleware modules. Per guest, one engine (the
// daemon setting module-engine: auto, the default, picks lighttpd for a guest with http modules only and nginx for one
// with a stream module, switching when that changes, and moves an http-only guest to nginx while its traffic is
// dominated by large responses (engine-choice.ts, followed once a second here); or nginx or lighttpd for every guest;
// engine.ts, lighttpd-engine.ts, engine-api.ts) serves every module of that guest (unprivileged, its own mount
// namespace holding only the share, the guest's module cgroup), reloaded when the guest's module set changes and
// restarted with back-off when it dies (guest-engine.ts: its lifecycle); guests with `stream` modules also get a gate
// worker (gate.ts, the process worker-main.ts) that nginx asks before it sends a media segment, restarted from here
// with the same back-off. nft rules steer guestAddr:port to the engine; each module's access log becomes its metrics
// and stats events (stats.ts). Everything is keyed by the guest name the daemon passes in: a guest can only ever name
// its own modules.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { HylicsError } from '../../core/errors/index.js';
import { validateGuestName } from '../../core/units.js';
import { openDirBeneath, openShareDir } from '../../os/native.js';
import { applyModuleRules, listModuleTableGuests, removeModuleRules, type DnatRule } from '../../os/nft.js';
import { AccessLog } from './access-log.js';
import { DEFAULT_ENGINE, type EngineKind, type EngineSetting } from './engine-api.js';
import { engineChoiceOptions, type EngineChoiceOptions } from './engine-choice.js';
import { findNginx } from './engine.js';
import { Gate, type GateProbe } from './gate.js';
import {
  GuestEngine,
  probePort,
  removeOwnerCgroup,
  removeStaleEngines,
  type EngineReport,
  type EngineView,
} from './guest-engine.js';
import { ModuleStats } from './stats.js';
import { findLighttpd } from './lighttpd-engine.js';
import {
  DEFAULT_LIMITS,
  DEFAULT_RESOURCES,
  type EngineResources,
  type ModuleEvent,
  type ModuleGuest,
  type ModuleInfo,
  type ModuleLimits,
  type ModuleStartOptions,
} from './types.js';

export interface ModuleManagerOptions {
  /** prom-client registry for the module metrics (a private one when absent). */
  registry?: Registry;
  /** uid/gid the engine and the gate run as (default nobody:nogroup, 65534). */
  workerUser?: { uid: number; gid: number };
  maxModulesPerGuest?: number;
  limits?: Partial<ModuleLimits>;
  /** CPU, memory and pids of each guest's module cgroup (nginx + gate). */
  resources?: Partial<EngineResources>;
  /**
   * Where the per-guest engine directories live (the daemon: <state dir>/run/modules; default
   * <tmpdir>/hylics-modules). Also names this manager's nft tables and cgroups (a hash of it), so two daemons never
   * touch each other's, and cleanupStale() finds what a previous daemon with the same state left behind.
   */
  runDir?: string;
  /** nginx `disable_symlinks` (default true). Off only for the benchmark that measures its cost. */
  disableSymlinks?: boolean;
  /**
   * The server each guest's modules run on (daemon setting `module-engine`, default DEFAULT_ENGINE = auto: per guest,
   * engineFor). lighttpd serves `http` modules only: with `lighttpd` a `stream` module is refused with
   * HYLICS_ERR_MODULE_ENGINE; with `auto` it switches the guest to nginx (docs/modules.md).
   */
  engine?: EngineSetting;
  /**
   * module-engine auto, by traffic: mean response thresholds (to nginx / back to lighttpd), window, minimum evidence
   * and minimum time between switches (engine-choice.ts; defaults DEFAULT_ENGINE_CHOICE). Small values for tests.
   */
  engineChoice?: Partial<EngineChoiceOptions>;
  /** Install nft rules (default true). Off only for benchmarks that talk to the listen address directly. */
  steer?: boolean;
  /**
   * The daemon's id in its nft table names (moduleTableName) and module cgroup path: two daemons' same-named
   * guests never clash. Default: a hash of runDir.
   */
  tableTag?: string;
  log?: (msg: string) => void;
}

interface Mod { info: ModuleInfo; opts: ModuleStartOptions; log: AccessLog }

interface GuestState {
  guest: ModuleGuest;
  modules: Map<string, Mod>;
  nextId: number;
  queue: Promise<unknown>;
  runDir: string;
  /** The guest's module engine (guest-engine.ts): its server, cgroup, start / reload / switch, restart, teardown. */
  engine: GuestEngine;
  /** The stream gate worker (gate.ts): running while the guest has a stream module. */
  gate: Gate;
  /** A switch by traffic is queued or running (followTraffic): not queued again. */
  trafficSwitching: boolean;
}

/** Hex digits of the owner hash (runDir) in table and cgroup names. */
const OWNER_HEX = 8;

export interface ModuleManagerEvents { event: [ModuleEvent] }

export class ModuleManager extends EventEmitter<ModuleManagerEvents> {
  private readonly guests = new Map<string, GuestState>();
  private readonly user: { uid: number; gid: number };
  private readonly maxModules: number;
  private readonly limits: ModuleLimits;
  private readonly resources: EngineResources;
  private readonly runRoot: string;
  /**
   * The daemon's tag (tableTag, or a short hash of runRoot): in nft table names and the cgroup path
   * (hylics-modules/<owner>/...).
   */
  readonly owner: string;
  private readonly disableSymlinks: boolean;
  /** The daemon's module-engine setting (ModuleManagerOptions.engine): a server, or auto (per guest). */
  readonly engineSetting: EngineSetting;
  private readonly steer: boolean;
  private readonly choice: EngineChoiceOptions;
  private readonly log: (msg: string) => void;
  /** Each module's access log -> metrics, totals and stats events, once a second (stats.ts). */
  private readonly stats: ModuleStats;
  private closed = false;
  readonly registry: Registry;
  private readonly m: {
    requests: Counter;
    bytes: Counter;
    errors: Counter;
    latency: Counter;
    restarts: Counter;
    running: Gauge;
    memory: Gauge;
    switches: Counter;
  };

  constructor(opts: ModuleManagerOptions = {}) {
    super();
    this.user = opts.workerUser ?? { uid: 65534, gid: 65534 };
    this.maxModules = opts.maxModulesPerGuest ?? 16;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.resources = { ...DEFAULT_RESOURCES, ...opts.resources };
    this.runRoot = opts.runDir ?? join(tmpdir(), 'hylics-modules');
    this.owner = opts.tableTag ?? createHash('sha256').update(this.runRoot).digest('hex').slice(0, OWNER_HEX);
    this.disableSymlinks = opts.disableSymlinks ?? true;
    this.engineSetting = opts.engine ?? DEFAULT_ENGINE;
    this.steer = opts.steer ?? true;
    this.choice = engineChoiceOptions(opts.engineChoice);
    this.log = opts.log ?? (() => {});
    this.registry = opts.registry ?? new Registry();
    const labelNames = ['guest', 'module', 'kind'] as const;
    const r = [this.registry];
    this.m = {
      requests: new Counter({
        name: 'hylics_module_requests_total',
        help: 'Requests served by host-side modules',
        labelNames,
        registers: r,
      }),
      bytes: new Counter({
        name: 'hylics_module_bytes_sent_total',
        help: 'Body bytes sent by host-side modules',
        labelNames,
        registers: r,
      }),
      errors: new Counter({
        name: 'hylics_module_errors_total',
        help: 'Requests answered with an error (4xx/5xx) or broken transfers',
        labelNames,
        registers: r,
      }),
      latency: new Counter({
        name: 'hylics_module_request_seconds_total',
        help: 'Sum of request durations (divide by requests for the mean)',
        labelNames,
        registers: r,
      }),
      restarts: new Counter({
        name: 'hylics_module_worker_restarts_total',
        help: 'Module engine (nginx, lighttpd) or gate processes restarted after dying',
        labelNames: ['guest'],
        registers: r,
      }),
      running: new Gauge({
        name: 'hylics_modules_running',
        help: 'Modules running per guest',
        labelNames: ['guest'],
        registers: r,
      }),
      memory: new Gauge({
        name: 'hylics_module_engine_memory_bytes',
        help: "Memory of the guest's module cgroup (nginx + gate)",
        labelNames: ['guest'],
        registers: r,
      }),
      switches: new Counter({
        name: 'hylics_module_engine_switches_total',
        help: "Switches of a guest's module engine (module-engine auto: by module kinds or by traffic)",
        labelNames: ['guest', 'from', 'to'],
        registers: r,
      }),
    };
    this.stats = new ModuleStats({
      metrics: this.m,
      guests: () => this.guests.values(),
      emit: (e) => this.emit('event', e),
      log: this.log,
      // the choice is between the engines of http modules: a stream module's segments (nginx in any case) do not count
      counted: (g, mod, requests, bytes) => {
        if (mod.opts.kind === 'http') this.guests.get(g)?.engine.choice.record(Date.now(), requests, bytes);
      },
      ticked: () => this.followTraffic(),
    });
  }

  /** Start a module for `guest`. Resolves with its info (incl. the URLs clients use). */
  async start(guest: ModuleGuest, opts: ModuleStartOptions): Promise<ModuleInfo> {
    checkGuest(guest);
    const o = checkOptions(opts);
    return this.serial(guest.name, guest, async (st) => {
      if (this.closed) throw new HylicsError('HYLICS_ERR_MODULE_WORKER', 'module manager is closed');
      if (st.modules.size >= this.maxModules)
        throw new HylicsError(
          'HYLICS_ERR_MODULE_LIMIT',
          `guest ${guest.name} already runs ${st.modules.size} modules`,
          { guest: guest.name, max: this.maxModules },
        );
      for (const m of st.modules.values()) {
        if (m.opts.port === o.port)
          throw new HylicsError(
            'HYLICS_ERR_MODULE_PORT_IN_USE',
            `guest ${guest.name} already serves port ${o.port} (module ${m.info.id})`,
            { guest: guest.name, port: o.port, module: m.info.id },
          );
        if (o.hostPort !== undefined && m.opts.hostPort === o.hostPort)
          throw new HylicsError(
            'HYLICS_ERR_MODULE_PORT_IN_USE',
            `host port ${o.hostPort} is taken by module ${m.info.id}`,
            { hostPort: o.hostPort },
          );
      }
      for (const [name, other] of this.guests) {
        if (name === guest.name || o.hostPort === undefined) continue;
        for (const m of other.modules.values())
          if (m.opts.hostPort === o.hostPort)
            throw new HylicsError('HYLICS_ERR_MODULE_PORT_IN_USE', `host port ${o.hostPort} is taken`, {
              hostPort: o.hostPort,
            });
      }
      checkRoot(guest.sharePath, o.root);
      if (o.kind === 'stream' && this.engineSetting === 'lighttpd')
        throw new HylicsError(
          'HYLICS_ERR_MODULE_ENGINE',
          `stream modules need the nginx module engine (this daemon's module-engine is ${this.engineSetting})`,
          { guest: guest.name, kind: o.kind, engine: this.engineSetting },
        );
      const kind = st.engine.kindFor(o.kind);
      if (!engineBinary(kind))
        throw new HylicsError(
          'HYLICS_ERR_MODULE_WORKER',
          `${kind} is not installed (the module engine; Debian package ${kind}, see scripts/debian-packages.txt)`,
        );
      if (o.hostPort !== undefined) await probePort('0.0.0.0', o.hostPort);
      const listenPort = await probePort(guest.hostAddr, 0);
      const id = `${o.kind}-${st.nextId++}`;
      const info: ModuleInfo = {
        id,
        guest: guest.name,
        kind: o.kind,
        root: o.root,
        port: o.port,
        ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}),
        listen: { addr: guest.hostAddr, port: listenPort },
        urls: [
          `http://${guest.guestAddr}:${o.port}/`,
          ...(o.hostPort !== undefined ? [`http://<host>:${o.hostPort}/`] : []),
        ],
        startedAt: new Date().toISOString(),
        totals: { requests: 0, bytes: 0, errors: 0 },
      };
      const mod: Mod = {
        info,
        opts: o,
        log: new AccessLog(join(st.runDir, 'log', `${id}.access`), () => st.engine.reopenLogs(), kind),
      };
      st.modules.set(id, mod);
      try {
        await st.engine.switchKind(); // auto: a first stream module moves the guest to nginx
        if (o.kind === 'stream') await st.gate.startModule(id, o.root);
        await st.engine.apply();
        await this.applyRules(st);
      } catch (e) {
        st.modules.delete(id);
        mod.log.close();
        await this.undo(st, mod);
        throw e;
      }
      this.m.running.set({ guest: guest.name }, st.modules.size);
      const out = { ...structuredClone(info), engine: st.engine.view(st.trafficSwitching) };
      this.emit('event', { type: 'started', guest: guest.name, module: structuredClone(out) });
      return out;
    });
  }

  /** The guest's modules (empty when none), each with its guest's engine (`engine`: server, reason, traffic). */
  list(guestName: string): ModuleInfo[] {
    const st = this.guests.get(guestName);
    if (!st) return [];
    const engine = st.engine.view(st.trafficSwitching);
    return [...st.modules.values()].map((m) => ({ ...structuredClone(m.info), engine: structuredClone(engine) }));
  }

  /** Stop one of the guest's modules; HYLICS_ERR_MODULE_NOT_FOUND when the guest has no such module. */
  stop(guestName: string, id: string): Promise<void> {
    const st = this.guests.get(guestName);
    if (!st || !st.modules.has(id))
      return Promise.reject(
        new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} has no module ${JSON.stringify(id)}`, {
          guest: guestName,
          id,
        }),
      );
    return this.serial(guestName, st.guest, async (s) => {
      const mod = s.modules.get(id);
      if (!mod)
        throw new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} has no module ${JSON.stringify(id)}`, {
          guest: guestName,
          id,
        });
      s.modules.delete(id);
      await this.applyRules(s);
      if (s.modules.size === 0) await s.engine.teardown();
      else {
        // auto: the last stream module gone moves the guest to lighttpd (the gate goes with nginx)
        await s.engine.switchKind(`its last stream module stopped; ${s.engine.reasonFor()}`).catch((e: unknown) =>
          this.log(`switching the module engine of ${guestName} failed: ${(e as Error).message}`),
        );
        await s.engine.apply().catch((e: unknown) =>
          this.log(`reloading the module engine of ${guestName} failed: ${(e as Error).message}`),
        );
        if (mod.opts.kind === 'stream' && s.gate.running) {
          // the last stream module gone: no gate process stays behind for the guest's http modules
          if ([...s.modules.values()].some((m) => m.opts.kind === 'stream'))
            await s.gate.stopModule(id).catch(() => {});
          else await s.gate.kill();
        }
      }
      this.stats.flush(guestName, mod, 0);
      mod.log.close();
      this.m.running.set({ guest: guestName }, s.modules.size);
      this.emit('event', { type: 'stopped', guest: guestName, id });
    });
  }

  /** Stop every module of the guest, remove its rules, its engine and gate (call when the guest goes away). */
  async stopAll(guestName: string): Promise<void> {
    const st = this.guests.get(guestName);
    if (!st) {
      if (this.steer) await removeModuleRules(guestName, this.owner).catch(() => {});
      return;
    }
    await this.serial(guestName, st.guest, async (s) => {
      const mods = [...s.modules.values()];
      s.modules.clear();
      if (this.steer) await removeModuleRules(guestName, this.owner);
      await s.engine.teardown();
      for (const m of mods) {
        this.stats.flush(guestName, m, 0);
        m.log.close();
      }
      this.m.running.set({ guest: guestName }, 0);
      for (const m of mods) this.emit('event', { type: 'stopped', guest: guestName, id: m.info.id });
    });
    this.guests.delete(guestName);
    this.stats.forget(guestName);
  }

  /**
   * Remove what a previous daemon with the same run directory left behind when it died (its engines died with
   * it, engine.ts): its nft tables, module cgroups (killing anything still in them) and engine directories.
   * Only this manager's own (the owner hash is in every name), never another daemon's; guests this manager
   * serves are kept. Call at daemon start. Returns what it removed.
   */
  async cleanupStale(): Promise<{ tables: string[]; cgroups: string[]; dirs: string[] }> {
    const tables: string[] = [];
    if (this.steer) {
      for (const g of await listModuleTableGuests(this.owner)) {
        if (this.guests.get(g)?.modules.size) continue;
        await removeModuleRules(g, this.owner);
        tables.push(g);
      }
    }
    const live = new Set([...this.guests.values()].map((st) => basename(st.runDir)));
    return { tables, ...(await removeStaleEngines(this.owner, this.runRoot, live)) };
  }

  /** Stop everything (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.stats.close();
    await Promise.all([...this.guests.keys()].map((g) => this.stopAll(g)));
    // this manager's cgroup parent, when no other manager with the same run directory still uses it
    await removeOwnerCgroup(this.owner);
  }

  /** What the guest's gate worker uses: { loaded, open: 'openat2'|'js-walk', ... } (after a stream module started). */
  workerNative(guestName: string): unknown {
    return this.guests.get(guestName)?.gate.native;
  }

  /**
   * CPU seconds hylicsd has spent reading this guest's access logs and turning them into stats (process-wide
   * user + system time across each read, once a second): the daemon's own per-request cost of the counters, which
   * the engine's CPU does not include (bench http-delivery adds it to the module's).
   */
  accessLogCpuSeconds(guestName: string): number {
    return this.stats.cpuSeconds(guestName);
  }

  /**
   * Host pid of the guest's engine: the nginx master, or lighttpd (the first module's process; with `id`, that
   * module's). Tests kill it to prove the restart.
   */
  workerPid(guestName: string, id?: string): number | undefined {
    const e = this.guests.get(guestName)?.engine;
    return id === undefined ? e?.masterPid() : e?.modulePid(id);
  }

  /** The server the guest's module engine is now (undefined while the guest runs no module). */
  engineOf(guestName: string): EngineKind | undefined {
    return this.guests.get(guestName)?.engine.kind;
  }

  /**
   * Which server the guest's modules run on, why, its switches and (auto) the traffic the choice sees; undefined for
   * a guest this manager has not seen (kept after its last module stops, until stopAll()).
   */
  engineInfo(guestName: string): EngineView | undefined {
    const st = this.guests.get(guestName);
    return st?.engine.view(st.trafficSwitching);
  }

  /** Host pid of the guest's stream gate worker. */
  gatePid(guestName: string): number | undefined {
    return this.guests.get(guestName)?.gate.pid;
  }

  /** The gate's bounded structures and memory for one stream module (tests of issue #12 item 3). */
  async gateProbe(guestName: string, id: string): Promise<GateProbe> {
    const st = this.guests.get(guestName);
    if (!st?.gate.running)
      throw new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} has no stream gate`, {
        guest: guestName,
      });
    return st.gate.probe(id);
  }

  /** Memory, CPU and connections of the guest's module engine. */
  async engineReport(guestName: string): Promise<EngineReport> {
    const st = this.guests.get(guestName);
    if (!st)
      throw new HylicsError('HYLICS_ERR_MODULE_NOT_FOUND', `guest ${guestName} runs no modules`, { guest: guestName });
    return st.engine.report(st.gate.pid);
  }

  // ---- internals ----

  private serial<T>(name: string, guest: ModuleGuest, fn: (st: GuestState) => Promise<T>): Promise<T> {
    let st = this.guests.get(name);
    if (!st) {
      const modules = new Map<string, Mod>();
      const runDir = this.guestRunDir(name);
      const s: GuestState = {
        guest,
        modules,
        nextId: 1,
        queue: Promise.resolve(),
        runDir,
        engine: new GuestEngine({
          guest,
          runDir,
          owner: this.owner,
          user: this.user,
          setting: this.engineSetting,
          limits: this.limits,
          resources: this.resources,
          disableSymlinks: this.disableSymlinks,
          log: this.log,
          modules,
          closed: () => this.closed,
          queue: (fn) => this.serial(name, guest, (g) => fn(g.engine)),
          applyRules: () => this.applyRules(s),
          killGate: () => s.gate.kill(),
          flush: (m) => this.stats.flush(name, m, 0),
          choice: this.choice,
          switched: (from, to) => this.m.switches.inc({ guest: name, from, to }),
          restarted: (what, reason, restarts) => {
            this.m.restarts.inc({ guest: name });
            this.log(`module ${what} of ${name} ${reason}; restarting (${restarts})`);
            this.emit('event', { type: 'worker-restarted', guest: name, reason: `${what} ${reason}`, restarts });
          },
        }),
        gate: new Gate({
          guest,
          user: this.user,
          log: this.log,
          // the gate's sockets live in the engine's run directory: make it before the engine exists
          gateDir: () => s.engine.gateDir(),
          cgroup: () => s.engine.cgroup,
          emit: (e) => this.emit('event', e),
          supervised: () => !s.engine.stopping && !this.closed,
          onExit: (code, signal) => this.onGateExit(s, code, signal),
        }),
        trafficSwitching: false,
      };
      st = s;
      this.guests.set(name, st);
    }
    const s = st;
    const p = s.queue.then(() => fn(s));
    s.queue = p.catch(() => {});
    return p;
  }

  /** A fresh per-guest directory under the run root (root's alone: 0700 all the way from the run root). */
  private guestRunDir(name: string): string {
    mkdirSync(this.runRoot, { recursive: true, mode: 0o700 });
    return join(this.runRoot, `${name}.${randomBytes(4).toString('hex')}`);
  }

  /** Undo what start() did for a module that could not be started. */
  private async undo(st: GuestState, mod: Mod): Promise<void> {
    if (mod.opts.kind === 'stream' && st.gate.running) await st.gate.stopModule(mod.info.id).catch(() => {});
    if (st.modules.size === 0) await st.engine.teardown();
    else if (!st.engine.fits()) {
      // the engine was switched for this module (auto) and it failed: back to the server the other modules need
      try {
        await st.engine.switchKind();
        await st.engine.apply();
        await this.applyRules(st);
      } catch (e) {
        this.log(`restoring the module engine of ${st.guest.name} failed: ${(e as Error).message}`);
      }
    }
  }

  private async applyRules(st: GuestState): Promise<void> {
    if (!this.steer) return;
    const rules: DnatRule[] = [...st.modules.values()].map((m) => ({
      guestAddr: st.guest.guestAddr,
      port: m.opts.port,
      toAddr: m.info.listen.addr,
      toPort: m.info.listen.port,
    }));
    await applyModuleRules(st.guest.name, rules, this.owner);
  }

  // ---- module-engine auto by traffic (engine-choice.ts) ----

  /** Once a second, after the access logs were read: queue the switch a guest's traffic calls for, if any. */
  private followTraffic(): void {
    if (this.engineSetting !== 'auto' || this.closed) return;
    const now = Date.now();
    for (const st of this.guests.values()) {
      if (st.trafficSwitching) continue;
      const sw = st.engine.trafficSwitch(now);
      if (!sw) continue;
      st.trafficSwitching = true;
      void this.serial(st.guest.name, st.guest, (s) => this.switchByTraffic(s, sw.reason))
        .catch((e: unknown) => this.log(`switching the module engine of ${st.guest.name} failed: ${(e as Error).message}`))
        .finally(() => {
          st.trafficSwitching = false;
        });
    }
  }

  /**
   * Move the guest to the server its traffic now prefers (adopted by trafficSwitch): every module restarts on the
   * same listen address and port, counters kept. If the new server cannot start, back to the other one.
   */
  private async switchByTraffic(st: GuestState, reason: string): Promise<void> {
    if (this.closed || st.modules.size === 0) return;
    try {
      await st.engine.switchKind(reason);
      await st.engine.apply();
      await this.applyRules(st);
    } catch (e) {
      this.log(`module engine of ${st.guest.name}: the switch failed (${(e as Error).message}); going back`);
      st.engine.choice.revert();
      await st.engine.switchKind('the switch by traffic failed');
      await st.engine.apply();
      await this.applyRules(st);
    }
  }

  // ---- supervision: the gate's restart, with the engine's back-off (guest-engine.ts restarts the engine) ----

  /** The gate died on its own (Gate's onExit: not killed, not while stopping): restart it with back-off. */
  private onGateExit(st: GuestState, code: number | null, signal: NodeJS.Signals | null): void {
    const streams = [...st.modules.values()].filter((m) => m.opts.kind === 'stream');
    if (streams.length === 0) return;
    // until it is back nginx cannot ask: segments are refused (fail closed), playlists answer 502
    const delay = st.engine.backoff('gate', signal ? `killed by ${signal}` : `exited with code ${code}`);
    setTimeout(() => {
      void this.serial(st.guest.name, st.guest, async (s) => {
        if (this.closed || s.gate.running) return;
        for (const m of [...s.modules.values()].filter((x) => x.opts.kind === 'stream'))
          await s.gate.startModule(m.info.id, m.opts.root);
      }).catch((e: unknown) =>
        this.log(`restoring the stream gate of ${st.guest.name} failed: ${(e as Error).message}`),
      );
    }, delay).unref();
  }
}

/** The module root must be a directory inside the share, reached without any symlink (checked as the daemon). */
function checkRoot(sharePath: string, root: string): void {
  const shareFd = openShareDir(sharePath);
  try {
    closeSync(openDirBeneath(shareFd, root === '' ? '.' : root).fd);
  } catch (e) {
    throw new HylicsError('HYLICS_ERR_MODULE_ROOT', `root ${JSON.stringify(root)} is not a directory inside the share: ${(e as Error).message}`, { root });
  } finally {
    closeSync(shareFd);
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
  // the root goes into nginx's config as a quoted path: refuse what the config syntax would treat specially
  if (parts.some((p) => /["\\$;{}\n\r\t ]/.test(p))) throw new HylicsError('HYLICS_ERR_MODULE_ROOT', `root ${JSON.stringify(o.root)}: no quotes, backslashes, $ ; { } or white space in directory names`, { root: o.root });
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `port must be 1-65535, got ${o.port}`, { port: o.port });
  if (o.hostPort !== undefined && (!Number.isInteger(o.hostPort) || o.hostPort < 1024 || o.hostPort > 65535)) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `hostPort must be 1024-65535 (the engine is unprivileged), got ${o.hostPort}`, { hostPort: o.hostPort });
  return { kind: o.kind, root: parts.join('/'), port: o.port, ...(o.hostPort !== undefined ? { hostPort: o.hostPort } : {}) };
}

function engineBinary(kind: EngineKind): string | undefined {
  return kind === 'lighttpd' ? findLighttpd() : findNginx();
}
