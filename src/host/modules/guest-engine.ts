// The module engine of one guest (daemon side): which server it runs (the daemon setting module-engine; auto picks
// lighttpd for a guest with http modules only and nginx for one with a stream module, switching when that changes:
// engineFor; and for an http-only guest, nginx while its traffic is dominated by large responses: engine-choice.ts,
// followed by the manager once a second through trafficSwitch()), its module cgroup, start / reload with the guest's
// module set (the previous configuration back on failure), the restart with back-off when a server dies, and the
// teardown; removeStaleEngines() clears what a previous daemon left. One GuestEngine per guest state of the module
// manager (manager.ts), which owns the module set, the nft rules, the stream gate (gate.ts) and the guest's queue, and
// passes them in as hooks; the gate's restart (manager.ts) counts on the same back-off (backoff()).
import { closeSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { Cgroup } from '../../os/cgroup.js';
import { openShareDir } from '../../os/native.js';
import { AccessLog } from './access-log.js';
import { EngineChoice, type EngineChoiceOptions, type TrafficView } from './engine-choice.js';
import {
  engineFor,
  type EngineConfig,
  type EngineKind,
  type EngineSetting,
  type ModuleEngine,
  type ModuleProcessReport,
  type StubStatus,
} from './engine-api.js';
import { findNginx, NginxEngine } from './engine.js';
import { findLighttpd, LighttpdEngine } from './lighttpd-engine.js';
import type { EngineModule } from './nginx-conf.js';
import type { EngineResources, ModuleGuest, ModuleInfo, ModuleLimits, ModuleStartOptions } from './types.js';

/** Back-off of restarts: 100 ms doubling to 5 s, reset after a minute of health. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
const HEALTHY_MS = 60_000;
const CGROUP_PARENT = 'hylics-modules';

/** What of a module the engine reads (id, kind, root, ports) and updates (its listen port, its access log). */
export interface EngineHostModule {
  info: ModuleInfo;
  opts: ModuleStartOptions;
  log: AccessLog;
}

export interface GuestEngineOptions {
  guest: ModuleGuest;
  /** The guest's engine directory (under the manager's run root); its name is the cgroup's too. */
  runDir: string;
  /** The manager's tag: the cgroup is hylics-modules/<owner>/<basename(runDir)>. */
  owner: string;
  /** uid/gid the engine runs as. */
  user: { uid: number; gid: number };
  setting: EngineSetting;
  limits: ModuleLimits;
  resources: EngineResources;
  disableSymlinks: boolean;
  log: (msg: string) => void;
  /** The guest's modules (the manager's map, live). */
  modules: ReadonlyMap<string, EngineHostModule>;
  /** The manager is closed: no restart. */
  closed: () => boolean;
  /** Run fn in the guest's queue (the manager's serial()): the restore after a crash. */
  queue: (fn: (e: GuestEngine) => Promise<void>) => Promise<void>;
  /** Install the nft rules for the guest's modules (a restore may have moved a listen port). */
  applyRules: () => Promise<void>;
  /** Kill the guest's stream gate (teardown; a switch to lighttpd). */
  killGate: () => Promise<void>;
  /** A switch stopped the server: the module's last lines count before its log goes with the run directory. */
  flush: (m: EngineHostModule) => void;
  /** A restart was counted (backoff): the manager's metric, log line and worker-restarted event. */
  restarted: (what: string, reason: string, restarts: number) => void;
  /** auto: thresholds, window, evidence and dwell time of the choice by traffic (engine-choice.ts). */
  choice: EngineChoiceOptions;
  /** The engine switched servers (the manager's metric; the log line is written here). */
  switched: (from: EngineKind, to: EngineKind, reason: string) => void;
}

/** Which server a guest's modules run on and why (module list JSON: each module's `engine`). */
export interface EngineView {
  /** The server running the guest's modules now (absent while it runs none). */
  kind?: EngineKind;
  /** The daemon's module-engine setting. */
  setting: EngineSetting;
  /** Why this server (under auto: a stream module, lighttpd missing, or the traffic's mean response size). */
  reason: string;
  /** Switches of this guest's engine since its first module started, and when the last one was (ISO). */
  switches: number;
  switchedAt?: string;
  /**
   * auto: the traffic of the window, what it calls for, and whether the engine is settled: enough evidence and no
   * switch waiting (for the dwell time) or about to be made.
   */
  traffic?: TrafficView & { settled: boolean };
}

export interface EngineReport {
  /** Host pid of the nginx master. */
  masterPid: number | undefined;
  gatePid: number | undefined;
  /** The guest's module cgroup (nginx + gate), when cgroups are usable. */
  cgroup?: {
    name: string;
    memoryBytes: number;
    memoryPeakBytes: number | undefined;
    cpuUsageNs: number;
    pids: number;
    limits: EngineResources;
  };
  cgroupError?: string;
  connections?: StubStatus;
  /** lighttpd: each module's own process (pid, resident memory, open connections), by module id. */
  modules?: Record<string, ModuleProcessReport>;
}

export class GuestEngine {
  private engine: ModuleEngine | null = null;
  private generation = 0;
  private cg: Cgroup | null = null;
  private cgroupError?: string;
  private restarts = 0;
  private lastStart = 0;
  private stoppingNow = false;
  /** auto: the guest's traffic and the server it calls for (kept while the guest lives, across module stop/start). */
  readonly choice: EngineChoice;
  private lastSwitch: number | undefined;
  private switchCount = 0;

  constructor(private readonly o: GuestEngineOptions) {
    this.choice = new EngineChoice(o.choice, Date.now());
  }

  /** The server the guest's engine is now (undefined while none is set up). */
  get kind(): EngineKind | undefined {
    return this.engine?.kind;
  }

  /** The guest's module cgroup (null: not made yet, or none usable). */
  get cgroup(): Cgroup | null {
    return this.cg;
  }

  /** The guest's modules are being stopped or moved to another server: exits then are not restarts. */
  get stopping(): boolean {
    return this.stoppingNow;
  }

  /** Host pid of the server's main process (lighttpd: the first module's). */
  masterPid(): number | undefined {
    return this.engine?.masterPid();
  }

  /** Host pid of the process serving module `id` (nginx: its master). */
  modulePid(id: string): number | undefined {
    return this.engine?.modulePid(id);
  }

  /** An access log asks the server to reopen its logs (after a rename). */
  reopenLogs(): void {
    this.engine?.reopenLogs();
  }

  /** The server the guest's module set needs (with a module of kind `extra` added, when given). */
  kindFor(extra?: string, traffic: EngineKind = this.choice.preferred): EngineKind {
    const kinds = [...this.o.modules.values()].map((m) => m.opts.kind as string);
    return engineFor(
      this.o.setting,
      extra === undefined ? kinds : [...kinds, extra],
      findLighttpd() !== undefined,
      traffic,
    );
  }

  /** Why the guest's module set and traffic call for kindFor()'s server. */
  reasonFor(): string {
    if (this.o.setting !== 'auto') return `module-engine: ${this.o.setting} (the daemon's setting)`;
    if ([...this.o.modules.values()].some((m) => m.opts.kind === 'stream'))
      return "a stream module (its gate needs nginx's auth_request)";
    if (findLighttpd() === undefined) return 'lighttpd is not installed';
    return this.choice.reason;
  }

  /**
   * auto: when the guest's traffic calls for another server (engine-choice.ts) adopt it, and when that moves the
   * running engine, return the switch to make (the caller runs switchKind() and apply() in the guest's queue). A
   * switch waits until ENGINE_MIN_DWELL_MS after the last one; a preference that moves nothing (a stream module
   * holds the guest on nginx, no module runs) is adopted at once.
   */
  trafficSwitch(now: number): { from: EngineKind; to: EngineKind; reason: string } | undefined {
    if (this.o.setting !== 'auto') return undefined;
    const n = this.choice.next(now);
    if (!n) return undefined;
    const from = this.engine?.kind;
    const to = this.kindFor(undefined, n.kind);
    if (from === undefined || from === to) {
      this.choice.adopt(n);
      return undefined;
    }
    if (this.lastSwitch !== undefined && now - this.lastSwitch < this.o.choice.dwellMs) return undefined;
    this.choice.adopt(n);
    return { from, to, reason: n.reason };
  }

  /**
   * The server, the reason, the switches and (auto) the traffic: what the module list shows. `switching`: a switch
   * by traffic is queued or under way (the manager's), so the engine is not settled whatever it says now.
   */
  view(switching = false, now = Date.now()): EngineView {
    const v: EngineView = {
      ...(this.engine ? { kind: this.engine.kind } : {}),
      setting: this.o.setting,
      reason: this.reasonFor(),
      switches: this.switchCount,
      ...(this.lastSwitch !== undefined ? { switchedAt: new Date(this.lastSwitch).toISOString() } : {}),
    };
    if (this.o.setting === 'auto') {
      const t = this.choice.traffic(now);
      const target = this.kindFor(undefined, t.wants);
      const settled = !switching && t.evidence && (this.engine === null || this.engine.kind === target);
      v.traffic = { ...t, settled };
    }
    return v;
  }

  /** The engine is set up, the server the module set needs, and none of its servers is down. */
  fits(): boolean {
    return this.engine !== null && this.engine.kind === this.kindFor() && this.engine.down().length === 0;
  }

  /** The engine's gate/ directory, where the gate's sockets live: the engine (not started) is made first if needed. */
  async gateDir(): Promise<string> {
    this.engine ??= await this.create();
    return this.engine.dirs.gate;
  }

  /** Write the config for the current module set and start or reload the engine with it; the old config on failure. */
  async apply(): Promise<void> {
    if (!this.engine) {
      this.engine = await this.create();
    }
    const engine = this.engine;
    const gen = this.generation + 1;
    engine.configure(this.config(gen));
    try {
      if (engine.running) await engine.reload(gen, () => openShareDir(this.o.guest.sharePath));
      else await this.spawn(gen);
      this.generation = gen;
    } catch (e) {
      engine.configure(this.config(this.generation)); // nginx keeps running the previous configuration
      // a server stopped on the way (nginx that did not start; a lighttpd module process): back to the previous
      // configuration for the guest's other modules
      if (engine.down().length > 0 && this.generation > 0)
        await this.startDown(this.generation).catch((e2: unknown) =>
          this.o.log(`restarting the module engine of ${this.o.guest.name} with its previous configuration failed: ${(e2 as Error).message}`));
      throw e;
    }
  }

  /**
   * module-engine auto: when the guest's engine is not the server its module set and traffic need now (a first
   * stream module added to a guest on lighttpd, the last one removed from a guest on nginx, a traffic preference
   * adopted by trafficSwitch()), stop it, its gate when the guest goes
   * to lighttpd, and its run directory; the next apply() starts the other server with all the guest's modules
   * (same listen addresses and ports). Every module of the guest restarts: its clients' connections are cut.
   * `why`: the reason logged (default reasonFor()).
   */
  async switchKind(why?: string): Promise<void> {
    const want = this.kindFor();
    if (!this.engine || this.engine.kind === want) return;
    const from = this.engine.kind;
    const reason = why ?? this.reasonFor();
    this.o.log(`module engine of ${this.o.guest.name}: switching from ${from} to ${want}: ${reason} (its modules restart)`);
    this.lastSwitch = Date.now();
    this.switchCount++;
    this.o.switched(from, want, reason);
    this.stoppingNow = true;
    try {
      await this.engine.stop();
      // the lines the stopped server flushed at its exit count too; then the logs go with the run directory
      for (const m of this.o.modules.values()) {
        this.o.flush(m);
        m.log.close();
      }
      if (want === 'lighttpd') await this.o.killGate();
      this.engine.removeDirs();
    } finally {
      this.stoppingNow = false;
    }
    this.engine = null;
    this.generation = 0;
    for (const m of this.o.modules.values()) m.log = new AccessLog(m.log.path, () => this.reopenLogs(), want);
  }

  /** Stop the engine and the gate, remove the run directory and the cgroup (the guest's last module is gone). */
  async teardown(): Promise<void> {
    this.stoppingNow = true;
    await this.engine?.stop();
    await this.o.killGate();
    this.engine?.removeDirs();
    this.engine = null;
    this.generation = 0;
    if (this.cg) {
      await this.cg
        .remove()
        .catch((e: unknown) => this.o.log(`removing cgroup ${this.cg?.name}: ${(e as Error).message}`));
      this.cg = null;
    }
    this.stoppingNow = false;
  }

  /**
   * Count a restart of the guest's engine or gate (`what`, died for `reason`) and return the delay before it:
   * RESTART_MIN_MS doubling to RESTART_MAX_MS, from the first again after HEALTHY_MS since the engine last started.
   */
  backoff(what: string, reason: string): number {
    if (Date.now() - this.lastStart > HEALTHY_MS) this.restarts = 0;
    this.restarts++;
    this.o.restarted(what, reason, this.restarts);
    return Math.min(RESTART_MIN_MS * 2 ** (this.restarts - 1), RESTART_MAX_MS);
  }

  /** Memory, CPU and connections of the engine (gatePid: the manager's gate). */
  async report(gatePid: number | undefined): Promise<EngineReport> {
    const out: EngineReport = {
      masterPid: this.engine?.masterPid(),
      gatePid,
      ...(this.cgroupError ? { cgroupError: this.cgroupError } : {}),
    };
    if (this.cg) {
      const s = await this.cg.stats();
      out.cgroup = {
        name: this.cg.name,
        memoryBytes: s.memoryBytes,
        memoryPeakBytes: s.memoryPeakBytes,
        cpuUsageNs: s.cpuUsageNs,
        pids: s.pids,
        limits: this.o.resources,
      };
    }
    if (this.engine?.running) out.connections = await this.engine.status().catch(() => undefined);
    if (this.engine?.moduleReports) out.modules = await this.engine.moduleReports();
    return out;
  }

  // ---- internals ----

  private engineModules(): EngineModule[] {
    return [...this.o.modules.values()].map((m) => ({
      id: m.info.id,
      kind: m.opts.kind,
      root: m.opts.root,
      listenAddr: m.info.listen.addr,
      listenPort: m.info.listen.port,
      ...(m.opts.hostPort !== undefined ? { hostPort: m.opts.hostPort } : {}),
    }));
  }

  private config(generation: number): EngineConfig {
    return {
      generation,
      modules: this.engineModules(),
      limits: this.o.limits,
      disableSymlinks: this.o.disableSymlinks,
    };
  }

  /** Start what of the engine is down (nginx: the master; lighttpd: the processes of those modules). */
  private async startDown(gen: number): Promise<void> {
    if (this.engine!.running) await this.engine!.reload(gen, () => openShareDir(this.o.guest.sharePath));
    else await this.spawn(gen);
  }

  private async spawn(gen: number): Promise<void> {
    const shareFd = openShareDir(this.o.guest.sharePath);
    try {
      this.lastStart = Date.now();
      await this.engine!.start(shareFd, gen);
    } finally {
      closeSync(shareFd); // the engine mounted it by its fd; the daemon keeps none
    }
  }

  private async ensureCgroup(): Promise<void> {
    if (this.cg || this.cgroupError) return;
    try {
      const cg = await Cgroup.open(`${CGROUP_PARENT}/${this.o.owner}/${basename(this.o.runDir)}`);
      await cg.create();
      await cg.setCpus(this.o.resources.cpus);
      await cg.setMemory(this.o.resources.memoryBytes);
      await cg.setPidsMax(this.o.resources.pidsMax);
      this.cg = cg;
    } catch (e) {
      // no usable cgroups (unprivileged test host, odd layout): serve anyway, say so in the report and the log
      this.cgroupError = (e as Error).message;
      this.o.log(`module engine of ${this.o.guest.name} runs without a cgroup: ${this.cgroupError}`);
    }
  }

  /** The guest's engine (prepared, not started), in its cgroup; set as this.engine before it is prepared. */
  private async create(): Promise<ModuleEngine> {
    await this.ensureCgroup();
    const common = {
      guest: this.o.guest.name,
      runDir: this.o.runDir,
      user: this.o.user,
      procsFiles: this.cg?.procsFiles() ?? [],
      log: this.o.log,
      onExit: (code: number | null, signal: NodeJS.Signals | null, module?: string) =>
        this.onExit(code, signal, module),
    };
    const engine: ModuleEngine = this.kindFor() === 'lighttpd'
      ? new LighttpdEngine({ ...common, lighttpd: findLighttpd()! })
      : new NginxEngine({ ...common, nginx: findNginx()! });
    this.engine = engine;
    engine.prepare();
    return engine;
  }

  // ---- supervision: restart with back-off ----

  private onExit(code: number | null, signal: NodeJS.Signals | null, module?: string): void {
    if (this.stoppingNow || this.o.closed() || this.o.modules.size === 0) return;
    const what = `engine (${this.engine?.kind ?? this.o.setting}${module ? `, module ${module}` : ''})`;
    const delay = this.backoff(what, signal ? `killed by ${signal}` : `exited with code ${code}`);
    setTimeout(() => {
      void this.o.queue((e) => e.restore()).catch((e: unknown) => {
        this.o.log(`restarting the module engine of ${this.o.guest.name} failed: ${(e as Error).message}`);
        this.onExit(null, null); // try again, later
      });
    }, delay).unref();
  }

  private async restore(): Promise<void> {
    if (this.o.closed() || this.o.modules.size === 0 || !this.engine) return;
    const down = new Set(this.engine.down());
    if (down.size === 0) return;
    // keep each module's listen port when it is still free (a client's DNAT'd flow finds it again); a module whose
    // server still runs (lighttpd: another module's process died) keeps its port and its connections
    for (const m of this.o.modules.values()) {
      if (!down.has(m.info.id)) continue;
      try {
        await probePort(m.info.listen.addr, m.info.listen.port);
      } catch {
        m.info.listen.port = await probePort(m.info.listen.addr, 0);
      }
    }
    this.engine.configure(this.config(this.generation));
    await this.startDown(this.generation);
    await this.o.applyRules();
  }
}

/** Bind addr:port (0 = any) and release it: the port nginx will listen on. HYLICS_ERR_MODULE_PORT_IN_USE when taken. */
export function probePort(addr: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => reject(new HylicsError('HYLICS_ERR_MODULE_PORT_IN_USE', `${addr}:${port} is not free: ${e.code ?? e.message}`, { addr, port })));
    s.listen({ host: addr, port, exclusive: true }, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * The module cgroups (killing anything still in them) and engine directories under runRoot that a previous daemon
 * with the same owner left behind, except the live ones (names of the current guests' run directories). Returns
 * what it removed.
 */
export async function removeStaleEngines(
  owner: string,
  runRoot: string,
  live: ReadonlySet<string>,
): Promise<{ cgroups: string[]; dirs: string[] }> {
  const out = { cgroups: [] as string[], dirs: [] as string[] };
  try {
    const parent = await Cgroup.open(`${CGROUP_PARENT}/${owner}`);
    const names = new Set<string>();
    for (const d of parent.dirs()) {
      try {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
      } catch {
        /* none */
      }
    }
    for (const n of names) {
      if (live.has(n)) continue;
      await (await Cgroup.open(`${CGROUP_PARENT}/${owner}/${n}`)).remove();
      out.cgroups.push(n);
    }
  } catch (e) {
    if (!(e instanceof HylicsError && e.code === 'HYLICS_ERR_CGROUP_UNSUPPORTED')) throw e;
  }
  try {
    for (const n of readdirSync(runRoot)) {
      if (live.has(n)) continue;
      rmSync(join(runRoot, n), { recursive: true, force: true });
      out.dirs.push(n);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return out;
}

/** The owner's cgroup parent (hylics-modules/<owner>), when no other manager with the same owner still uses it. */
export async function removeOwnerCgroup(owner: string): Promise<void> {
  try {
    for (const d of (await Cgroup.open(`${CGROUP_PARENT}/${owner}`)).dirs())
      try {
        rmdirSync(d);
      } catch {
        /* in use or gone */
      }
  } catch {
    /* no cgroups */
  }
}
