// hylicsd: the guest registry and the one place where commands are executed. The HTTP API (./http.ts), the CLI
// and the dashboard all reach the daemon through `execute(cmd)`. The daemon owns names, shares, the address plan
// and the channel server; drivers own what they start. Everything it creates is persisted before it is used, so
// a crash at any step is reconciled on the next start (nothing is left half-created for long, no data is lost).
import { mkdir, rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  EXEC_STDIN_MAX_BYTES, type Command, type CommandOp, type CommandResult, type ExecResult, type GuestCreateBody,
  type GuestStatus, type GuestView, type ModuleStartBody, type StatusView,
} from '../core/api.js';
import { HylicsError, toHylicsError } from '../core/errors/index.js';
import { MiB, parseCpus, parseSize, validateGuestName } from '../core/units.js';
import { VERSION } from '../core/version.js';
import { KeyedSerial } from '../core/serial.js';
import { normalTierSettings, parseTierSettings } from '../core/tier-settings.js';
import type { DriverContext, DriverKind, GuestDriver, GuestNetwork, GuestPaths, GuestSpec } from './drivers/types.js';
import type { ChannelBackend, GuardBackend, GuardLink, ModuleBackend, ShareBackend } from './backends.js';
import { StateStore, type GuestRecord } from './state.js';
import { Profiler } from './profiler.js';
import { guestLogTail } from './guest-logs.js';
import { NetIndexClaims } from './net-claims.js';
import { allocateGuestNetwork } from './address-plan.js';
import { wireGuestOps } from './guest-ops.js';

import { ControlLoop, realClock, type Clock } from './control/loop.js';
import { ControlMetrics } from './control/metrics.js';
import { ControlService } from './control/service.js';
import { loadDecisionLog, saveDecisionLog } from './control/log-store.js';
import { loadLearned, saveLearned } from './control/learned-store.js';
import { DaemonMetrics } from './metrics.js';
import type { SocketOffload } from './offload/socket.js';
import { netnsPath } from '../os/netns.js';

export interface DaemonOptions {
  stateDir: string;
  /** Host-wide directory of network index claims (default /run/hylics-net; tests give their own). */
  netClaimsDir?: string;
  log: Logger;
  shares: ShareBackend;
  channels: ChannelBackend;
  drivers: Partial<Record<DriverKind, GuestDriver>>;
  modules?: ModuleBackend;
  guard?: GuardBackend;
  /** How long a new guest's agent has to say hello (default AGENT_HELLO_TIMEOUT_MS). */
  agentTimeoutMs?: Partial<Record<DriverKind, number>>;
  /** Metrics registry shared with the backends (modules register their own metrics in it). */
  registry?: Registry;
  /** How often the guest firewall is checked and restored when broken (default GUARD_CHECK_INTERVAL_MS; 0: never). */
  guardCheckMs?: number;
  libvirtXml?: (ctx: DriverContext, state: Record<string, unknown> | undefined) => string;
  /** Host memory budget for all shares under control (hylics daemon --share-budget), bytes; none by default. */
  shareBudgetBytes?: number;
  /** Clock of the control loop (tests drive it with a fake one). */
  clock?: Clock;
  /** Creating guests needs root with the real backends (default true); tests with fake backends turn it off. */
  requireRoot?: boolean;
  /** Socket offload (TCP_REPAIR handoff of guests' connections, src/host/offload/socket.ts). */
  socketOffload?: SocketOffload;
  /** Handoffs a guest may begin: burst, then per minute (default: guest-ops.ts GUEST_HANDOFFS_BURST / _PER_MINUTE). */
  handoffRate?: { burst: number; perMinute: number };
}

/** Default interval of the guest firewall check. */
export const GUARD_CHECK_INTERVAL_MS = 5_000;
/** How long a new guest's agent has to say hello by default (a microVM boots under TCG on hosts without KVM; an
 * adopted libvirt domain, 0: not waited for, it is adopted before libvirt starts it and connects when it boots). */
export const AGENT_HELLO_TIMEOUT_MS: Readonly<Record<DriverKind, number>> = {
  sandbox: 20_000,
  microvm: 180_000,
  libvirt: 0,
};
/** The agent's `shutdown` is a courtesy before the driver stops the guest: not waited on longer than this. */
const AGENT_SHUTDOWN_TIMEOUT_MS = 2_000;
/**
 * Between the driver's polite stop (SIGTERM, ACPI powerdown) and the kill. `guest stop` keeps the guest's disk, so
 * its guest gets longer to flush it; `guest remove` (and the undo of a failed create) throws the disk away.
 */
const STOP_GRACE_MS = { stop: 10_000, remove: 5_000 } as const;
/** An agent that is reconnecting (daemon restart, agent restart) gets this long before `exec` gives up on it. */
const AGENT_RECONNECT_WAIT_MS = 5_000;
const EXEC_DEFAULT_TIMEOUT_MS = 60_000;
/** The agent's reply to `exec` may come this long after the command's own timeout (it kills, then collects output). */
const EXEC_REPLY_MARGIN_MS = 5_000;
const MIN_GUEST_MEMORY_BYTES = 16 * MiB;
const DEFAULT_GUEST_MEMORY = '512M';
/** Console/agent log lines quoted in the error of an agent that never said hello. */
const HELLO_TIMEOUT_LOG_LINES = 20;

interface Live {
  status: GuestStatus;
  lastError?: string;
  unwatch?: () => void;
}

/** A command's handler; `lock` names the guest it is serialized on (the same whether HTTP or a channel sent it). */
interface CommandHandler<K extends CommandOp> {
  lock?: (cmd: Command<K>) => string;
  run: (cmd: Command<K>) => Promise<CommandResult<K>>;
}
type CommandTable = { [K in CommandOp]: CommandHandler<K> };

/** The guest's host-side link and the one source address allowed on it (the guest firewall's set). */
function guestLink(rec: GuestRecord): GuardLink {
  return { ifname: rec.network.hostIf, addr: rec.network.guestAddr };
}

export class Daemon {
  readonly stateDir: string;
  readonly log: Logger;
  readonly profiler = new Profiler();
  readonly metrics: DaemonMetrics;
  /** The share-size control loop (src/host/control/) and its commands. */
  readonly control: ControlLoop;
  private readonly controlService: ControlService;
  private readonly controlMetrics: ControlMetrics;
  private readonly store: StateStore;
  private readonly netClaims: NetIndexClaims;
  private readonly live = new Map<string, Live>();
  /** Per guest name: its serialized commands (see locked()). */
  private readonly locks = new KeyedSerial<string>();
  private readonly started = Date.now();
  private guardTimer?: NodeJS.Timeout;
  private guardChecking = false;

  constructor(private readonly opts: DaemonOptions) {
    this.stateDir = opts.stateDir;
    this.log = opts.log;
    this.store = new StateStore(opts.stateDir);
    this.netClaims = new NetIndexClaims(opts.stateDir, opts.netClaimsDir);
    this.metrics = new DaemonMetrics({ guestsSnapshot: () => this.guestsSnapshot() }, opts.registry);
    const controlMetrics = (this.controlMetrics = new ControlMetrics(this.metrics.registry));
    this.profiler.onReject((guest, reason) => controlMetrics.rejectedReports.inc({ guest, reason }));
    const notify = (guest: string, event: string, data: unknown): void => {
      opts.channels.notify?.(guest, event, data);
    };
    this.control = new ControlLoop({
      clock: opts.clock ?? realClock,
      profiler: this.profiler,
      log: this.log.child({ component: 'control' }),
      metrics: controlMetrics,
      budgetBytes: opts.shareBudgetBytes ?? null,
      usage: (g) => opts.shares.usage(g),
      resize: (g, bytes) => this.locked(g, () => this.setShareSize(g, bytes)),
      isConnected: (g) => opts.channels.isConnected(g),
      request: (g, op, p, t) => opts.channels.request(g, op, p, t),
      notify,
      cpuSeconds: async (g) => {
        const rec = this.store.get(g);
        const driver = rec && this.opts.drivers[rec.spec.driver];
        return rec?.driverState && driver?.cpuSeconds ? driver.cpuSeconds(this.context(rec), rec.driverState) : null;
      },
      saveLog: (g, entries) => saveDecisionLog(this.paths(g).dir, entries),
      loadLog: (g) => loadDecisionLog(this.paths(g).dir),
      saveLearned: (g, s) => saveLearned(this.paths(g).dir, s),
      loadLearned: (g) => loadLearned(this.paths(g).dir),
    });
    this.controlService = new ControlService({
      loop: this.control,
      profiler: this.profiler,
      hostMemoryBytes: totalmem(),
      guest: (name) => {
        const rec = this.record(name);
        return {
          control: rec.control,
          memoryBytes: rec.spec.memoryBytes,
          running: this.live.get(name)?.status === 'running',
        };
      },
      saveControl: async (name, control) => {
        await this.store.update((s) => {
          s.guests[name]!.control = control;
        });
      },
      usage: (name) => opts.shares.usage(name),
      exec: (name, argv, timeoutMs) => this.exec(name, argv, { timeoutMs }),
      log: this.log,
    });
    opts.channels.onEvent((guest, event, payload) => this.onGuestEvent(guest, event, payload));
    opts.channels.onConnection((guest, connected) => {
      this.log.info({ guest, connected }, connected ? 'agent connected' : 'agent disconnected');
    });
    wireGuestOps({
      channels: opts.channels,
      execute: (cmd) => this.execute(cmd),
      socketOffload: opts.socketOffload,
      handoffRate: opts.handoffRate,
      offloadInfo: (guest) => {
        const rec = this.record(guest);
        // a sandbox guest's sockets live in its named netns on this kernel: the descriptor copy checks them against it
        const netns = rec.spec.driver === 'sandbox' ? netnsPath(rec.network.netns) : undefined;
        return { addr: rec.network.guestAddr, sharePath: this.opts.shares.path(guest), ...(netns ? { netns } : {}) };
      },
    });
  }

  // ---- startup and shutdown ----------------------------------------------------------------------------

  /** Load the registry and bring every guest back: re-adopt the ones still running, restart the others. */
  async start(): Promise<void> {
    await mkdir(join(this.stateDir, 'guests'), { recursive: true, mode: 0o700 });
    const state = await this.store.load();
    const names = Object.keys(state.guests);
    // Before any guest is touched: no guest of ours runs unguarded (the guard is shared by every daemon on the host
    // and kept when a daemon stops, see close()).
    await this.opts.guard?.allow([]);
    await this.opts.shares.reconcile(names);
    // a daemon killed during socket handoffs left its guests' steering tables (held or steered flows)
    if (this.opts.socketOffload)
      await this.opts.socketOffload
        .cleanupStale()
        .catch((e) => this.log.error({ err: String(e) }, 'socket offload: could not remove leftover steering tables'));
    // claims live in /run: after a reboot every daemon claims its guests' indexes again
    for (const name of names) {
      const i = state.guests[name]!.network.index;
      if (!this.netClaims.claim(i, name))
        this.log.error(
          { guest: name, index: i },
          "another daemon's guest holds this guest's network index: it cannot start until one of them is removed",
        );
    }
    for (const name of names) {
      const rec = state.guests[name]!;
      try {
        await this.recover(rec);
      } catch (e) {
        const err = toHylicsError(e);
        this.live.set(name, { status: 'failed', lastError: `${err.code}: ${err.message}` });
        this.log.error({ guest: name, err: err.toJSON() }, 'could not bring the guest back');
      }
    }
    const every = this.opts.guardCheckMs ?? GUARD_CHECK_INTERVAL_MS;
    if (this.opts.guard?.ensure && every > 0)
      this.guardTimer = setInterval(() => void this.checkGuard(), every).unref();
  }

  /**
   * The guard is host-wide state anyone root can remove (`nft flush ruleset` in a firewall reload): while guests
   * run it is checked and put back with this daemon's links, or they would run unisolated until the next change.
   */
  async checkGuard(): Promise<void> {
    if (!this.opts.guard?.ensure || this.guardChecking) return;
    this.guardChecking = true;
    try {
      const links = Object.values(this.store.guests)
        .filter((r) => r.driverState !== undefined)
        .map(guestLink);
      if (await this.opts.guard.ensure(links))
        this.log.error(
          { links: links.length },
          'the guest firewall (nft table inet hylics_guard) was missing or changed: restored',
        );
    } catch (e) {
      this.log.error(
        { err: toHylicsError(e).toJSON() },
        'the guest firewall (nft table inet hylics_guard) is broken and could not be restored: guests may reach the host and each other',
      );
    } finally {
      this.guardChecking = false;
    }
  }

  private async recover(rec: GuestRecord): Promise<void> {
    const name = rec.spec.name;
    const driver = this.driver(rec.spec.driver);
    const ctx = this.context(rec);
    const alive = rec.driverState !== undefined && (await driver.alive(ctx, rec.driverState));
    if (alive) {
      this.log.info({ guest: name }, 'guest still running: re-adopting');
      this.live.set(name, { status: 'running' });
      await this.opts.guard?.allow([guestLink(rec)]);
      await this.opts.channels.attach(name, driver.channel(ctx, rec.driverState!));
      this.watch(rec);
      await this.control.attach(name, rec.control, { resumed: true });
      return;
    }
    await driver.cleanup(ctx, rec.driverState);
    if (rec.desired === 'running') {
      this.log.info({ guest: name }, 'guest was not running: starting it again');
      await this.boot(rec);
    } else {
      this.live.set(name, { status: 'stopped' });
    }
  }

  /**
   * Stop serving; guests keep running (they are re-adopted by the next daemon). The guest firewall stays: the
   * guests it isolates are still running, and other daemons on the host share it.
   */
  async close(): Promise<void> {
    clearInterval(this.guardTimer);
    this.control.close();
    for (const l of this.live.values()) l.unwatch?.();
    await this.opts.channels.close();
  }

  // ---- the command API ---------------------------------------------------------------------------------

  /**
   * Each command's handler and, for the commands that change a guest, the guest they are serialized on. A
   * mapped type over CommandTypes: a command without a handler does not compile (the exhaustiveness check).
   */
  private readonly commands: CommandTable = {
    status: { run: () => this.status() },
    'guest.list': { run: () => Promise.all(Object.values(this.store.guests).map((r) => this.view(r))) },
    'guest.show': { run: (c) => this.view(this.record(c.name)) },
    'guest.create': { lock: (c) => c.body.name, run: (c) => this.create(c.body) },
    'guest.remove': { lock: (c) => c.name, run: (c) => this.remove(c.name) },
    'guest.start': { lock: (c) => c.name, run: (c) => this.startGuest(c.name) },
    'guest.stop': { lock: (c) => c.name, run: (c) => this.stopGuest(c.name) },
    'guest.exec': { run: (c) => this.exec(c.name, c.body.argv, c.body) },
    'guest.console': { run: (c) => this.consoleTail(c.name, c.lines) },
    'guest.libvirtXml': { run: async (c) => this.libvirtXml(c.name) },
    'share.resize': { lock: (c) => c.name, run: (c) => this.resizeShare(c.name, c.body.size) },
    'module.start': { lock: (c) => c.name, run: (c) => this.moduleStart(c.name, c.body) },
    'module.list': { run: async (c) => this.modules().list(this.record(c.name).spec.name) },
    'module.stop': {
      lock: (c) => c.name,
      run: async (c) => {
        this.record(c.name);
        await this.modules().stop(c.name, c.id);
        return { stopped: c.id };
      },
    },
    // the host operator's only: none of these is a channel op, so no guest can set its own or another's control
    'control.show': { run: async (c) => this.controlService.show(c.name) },
    'control.set': { lock: (c) => c.name, run: (c) => this.controlService.set(c.name, c.body) },
    'control.log': { run: async (c) => this.controlService.log(c.name, c.limit) },
    'control.profile': { run: async (c) => this.controlService.profile(c.name, c.since) },
    // not locked as a whole: it takes the guest's lock for each remount and runs guest exec in between
    'control.calibrate': { run: (c) => this.controlService.calibrate(c.name, c.body) },
  };

  /** Run one command, whoever sent it (HTTP API, CLI, dashboard, a guest over its channel). */
  async execute<K extends CommandOp>(cmd: Command<K>): Promise<CommandResult<K>> {
    const handler = (this.commands as Partial<CommandTable>)[cmd.op as K] as CommandHandler<K> | undefined;
    if (!handler)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `unknown command ${JSON.stringify(cmd.op)}`, { op: cmd.op });
    const guest = handler.lock?.(cmd);
    return guest === undefined ? handler.run(cmd) : this.locked(guest, () => handler.run(cmd));
  }

  /** Serializes operations per guest name so create/remove/stop/resize/module start never interleave on one guest. */
  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(name, fn);
  }

  private record(name: string): GuestRecord {
    validateGuestName(name);
    const rec = this.store.get(name);
    if (!rec) throw new HylicsError('HYLICS_ERR_GUEST_NOT_FOUND', `no guest named ${name}`, { name });
    return rec;
  }

  private driver(kind: DriverKind): GuestDriver {
    const d = this.opts.drivers[kind];
    if (!d)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `driver ${kind} is not available in this daemon`, {
        driver: kind,
      });
    return d;
  }

  private paths(name: string): GuestPaths {
    const dir = join(this.stateDir, 'guests', name);
    return { dir, share: this.opts.shares.path(name), run: join(dir, 'run'), logs: join(dir, 'logs') };
  }

  private context(rec: GuestRecord): DriverContext {
    return {
      spec: rec.spec,
      paths: this.paths(rec.spec.name),
      network: rec.network,
      stateDir: this.stateDir,
      log: this.log.child({ guest: rec.spec.name }),
    };
  }

  /** Pick an index unused by this daemon and by anything on the host (another daemon's interfaces, netns). */
  private allocateNetwork(name: string): GuestNetwork {
    const used = new Set(Object.values(this.store.guests).map((g) => g.network.index));
    return allocateGuestNetwork(name, used, (i) => this.netClaims.claim(i, name));
  }

  private async create(body: GuestCreateBody): Promise<GuestView> {
    const name = validateGuestName(body.name);
    const kind: DriverKind = body.driver ?? 'sandbox';
    const spec: GuestSpec = {
      name,
      driver: kind,
      shareSizeBytes: parseSize(body.shareSize, 'share size'),
      cpus: parseCpus(body.cpus ?? 1),
      memoryBytes: parseSize(body.memory ?? DEFAULT_GUEST_MEMORY, 'memory'),
    };
    // checked before anything is created; a driver that does not start the agent (libvirt) takes none
    const tier = parseTierSettings(body.tier, this.driver(kind).diskTier);
    if (tier) spec.tier = tier;
    if (spec.memoryBytes < MIN_GUEST_MEMORY_BYTES)
      throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `memory must be at least ${MIN_GUEST_MEMORY_BYTES / MiB}M`, {
        what: 'memory',
      });
    // A share lives in host RAM (and a microVM's share writes are charged to the host, not the guest): no share
    // or guest larger than the host's memory.
    const hostRam = totalmem();
    for (const [what, v] of [
      ['share size', spec.shareSizeBytes],
      ['memory', spec.memoryBytes],
    ] as const) {
      if (v > hostRam)
        throw new HylicsError(
          'HYLICS_ERR_INVALID_SIZE',
          `${what} ${v} bytes is more than this host's memory (${hostRam} bytes)`,
          { what, value: v, hostBytes: hostRam },
        );
    }
    if (this.opts.requireRoot !== false && process.getuid?.() !== 0)
      throw new HylicsError('HYLICS_ERR_NOT_ROOT', 'creating a guest needs root (mounts, namespaces, cgroups)');
    if (this.store.get(name))
      throw new HylicsError('HYLICS_ERR_GUEST_EXISTS', `a guest named ${name} exists already`, { name });
    const driver = this.driver(kind);
    await driver.preflight();

    if (await this.opts.shares.isMounted(name)) {
      // an orphan share (its record was lost): it holds someone's data, so it is never reused or removed here
      throw new HylicsError(
        'HYLICS_ERR_SHARE_EXISTS',
        `a share for ${name} is still mounted at ${this.opts.shares.path(name)} without a guest record; copy its data out and unmount it, or pick another name`,
        { name, path: this.opts.shares.path(name) },
      );
    }
    const rec: GuestRecord = {
      spec,
      network: this.allocateNetwork(name),
      createdAt: new Date().toISOString(),
      desired: 'running',
    };
    const paths = this.paths(name);
    let shareCreated = false;
    // Persist first: a crash from here on is cleaned up (or completed) by the next start's reconcile.
    await this.store.update((s) => {
      s.guests[name] = rec;
    });
    try {
      await mkdir(paths.run, { recursive: true, mode: 0o755 });
      await mkdir(paths.logs, { recursive: true, mode: 0o700 });
      await this.opts.shares.create(name, spec.shareSizeBytes);
      shareCreated = true;
      await this.boot(rec);
    } catch (e) {
      const err = toHylicsError(e);
      this.log.error({ guest: name, err: err.toJSON() }, 'guest creation failed: undoing');
      // undo only what this call did: a share it did not create is not its to remove
      await this.teardown(rec, { keepShare: !shareCreated, graceMs: STOP_GRACE_MS.remove }).catch((te) =>
        this.log.error({ guest: name, err: String(te) }, 'undo after failed create also failed'),
      );
      throw err;
    }
    return this.view(rec);
  }

  /** Start the driver and wait for the agent's hello. Leaves the share alone. */
  private async boot(rec: GuestRecord): Promise<void> {
    const name = rec.spec.name;
    const driver = this.driver(rec.spec.driver);
    const ctx = this.context(rec);
    this.live.set(name, { status: 'starting' });
    // Allowed before the link exists, so the guest's first packets pass the anti-spoofing set.
    await this.opts.guard?.allow([guestLink(rec)]);
    // A listening endpoint must exist before the agent tries it; a connecting one is attached after start.
    const listenPath = join(ctx.paths.run, 'channel.sock');
    if (driver.kind === 'sandbox') await this.opts.channels.attach(name, { mode: 'listen', path: listenPath });
    let state: Record<string, unknown>;
    try {
      state = await driver.start(ctx);
    } catch (e) {
      await this.opts.channels.detach(name).catch(() => undefined);
      throw e;
    }
    await this.store.update((s) => {
      s.guests[name]!.driverState = state;
    });
    rec.driverState = state;
    const endpoint = driver.channel(ctx, state);
    if (endpoint.mode === 'connect') await this.opts.channels.attach(name, endpoint);
    this.watch(rec);
    const timeout = this.opts.agentTimeoutMs?.[rec.spec.driver] ?? AGENT_HELLO_TIMEOUT_MS[rec.spec.driver];
    try {
      if (timeout > 0) await this.opts.channels.waitConnected(name, timeout);
    } catch {
      const tail = await this.logTail(name, HELLO_TIMEOUT_LOG_LINES);
      throw new HylicsError(
        'HYLICS_ERR_AGENT_TIMEOUT',
        `the guest agent of ${name} did not connect within ${timeout} ms; last console/agent lines:\n${tail}`,
        { name, timeoutMs: timeout },
      );
    }
    this.live.set(name, { ...this.live.get(name), status: 'running' });
    await this.control.attach(name, rec.control, { resumed: rec.control?.settings !== undefined });
  }

  private watch(rec: GuestRecord): void {
    const name = rec.spec.name;
    const driver = this.driver(rec.spec.driver);
    const ctx = this.context(rec);
    const l = this.live.get(name) ?? { status: 'running' as const };
    l.unwatch?.();
    l.unwatch = driver.watch(ctx, rec.driverState!, (reason) => {
      const cur = this.live.get(name);
      if (!cur || cur.status === 'stopped') return;
      this.log.warn({ guest: name, reason }, 'guest exited: cleaning up what its driver started');
      this.live.set(name, { status: 'failed', lastError: `guest exited: ${reason}` });
      void driver
        .cleanup(ctx, rec.driverState)
        .catch((e) => this.log.error({ guest: name, err: String(e) }, 'cleanup after exit failed'));
      // `desired` stays 'running': the next daemon start brings the guest back (its share and data are kept)
    });
    this.live.set(name, l);
  }

  /**
   * Stop what runs for a guest, in order: its modules, its agent (asked to shut down), the driver's processes
   * (polite stop, killed after `graceMs`), what the driver created, the channel. The one stop sequence of `guest
   * stop`, `guest remove` and the undo of a failed create; `forgetLink` (remove) also takes the guest's pair out of
   * the guest firewall. Marks the guest stopped first, so its exit is not reported as a failure.
   *
   * Error policy: every step runs even when an earlier one failed (a module that would not stop must not leave
   * QEMU running). The agent's shutdown is a courtesy before the driver's stop: its failure is only logged. Any
   * other failure is logged and the first one thrown after all steps ran, so the caller keeps the guest's record
   * (and share) and a retry finds what is left.
   */
  private async quiesce(rec: GuestRecord, opts: { graceMs: number; forgetLink: boolean }): Promise<void> {
    const name = rec.spec.name;
    const ctx = this.context(rec);
    const driver = this.opts.drivers[rec.spec.driver];
    this.live.get(name)?.unwatch?.();
    this.control.detach(name);
    this.live.set(name, { status: 'stopped' });
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
        this.log.warn({ guest: name, step: what, err: String(e) }, 'stop step failed');
      }
    };
    if (this.opts.modules) await step('modules', () => this.opts.modules!.stopAll(name));
    if (this.opts.socketOffload) await step('socket offload', () => this.opts.socketOffload!.guestGone(name));
    if (this.opts.channels.isConnected(name)) {
      await this.opts.channels
        .request(name, 'shutdown', {}, AGENT_SHUTDOWN_TIMEOUT_MS)
        .catch((e) =>
          this.log.info(
            { guest: name, err: String(e) },
            'the agent did not confirm its shutdown: the driver stops the guest',
          ),
        );
    }
    // Forgotten only while the link is surely ours (the guest is alive): once it is gone, another daemon may have
    // taken its index, and a pair left in the set allows nothing but that index's own guest address.
    if (
      opts.forgetLink &&
      this.opts.guard &&
      driver &&
      rec.driverState &&
      (await driver.alive(ctx, rec.driverState).catch(() => false))
    ) {
      await step('guard', () => this.opts.guard!.forbid([guestLink(rec)]));
    }
    if (driver && rec.driverState) await step('stop', () => driver.stop(ctx, rec.driverState!, opts.graceMs));
    if (driver) await step('cleanup', () => driver.cleanup(ctx, rec.driverState));
    await step('channel', () => this.opts.channels.detach(name));
    if (errors.length > 0) throw toHylicsError(errors[0]);
  }

  /** Remove everything of a guest: what runs (quiesce), its share, state directory and record. Idempotent. */
  private async teardown(rec: GuestRecord, opts: { keepShare: boolean; graceMs: number }): Promise<void> {
    const name = rec.spec.name;
    let failure: unknown;
    await this.quiesce(rec, { graceMs: opts.graceMs, forgetLink: true }).catch((e) => {
      failure = e;
    });
    if (!opts.keepShare) {
      await this.opts.shares.destroy(name).catch((e) => {
        this.log.warn({ guest: name, step: 'share', err: String(e) }, 'stop step failed');
        failure ??= e;
      });
    }
    if (failure !== undefined) throw toHylicsError(failure);
    if (!opts.keepShare) await rm(this.paths(name).dir, { recursive: true, force: true });
    this.metrics.forgetGuest(name, this.profiler.taskNames(name));
    this.controlMetrics.forget(name, this.profiler.taskNames(name));
    this.profiler.forget(name);
    this.live.delete(name);
    await this.store.update((s) => {
      delete s.guests[name];
    });
    this.netClaims.release(rec.network.index, name);
  }

  /** Stop a guest but keep it: share, data, disk and record stay; `guest start` boots it again. */
  private async stopGuest(name: string): Promise<GuestView> {
    const rec = this.record(name);
    await this.driver(rec.spec.driver).assertStoppable?.(this.context(rec), rec.driverState);
    this.live.set(name, { ...this.live.get(name), status: 'stopped' });
    await this.store.update((s) => {
      s.guests[name]!.desired = 'stopped';
    });
    await this.quiesce(rec, { graceMs: STOP_GRACE_MS.stop, forgetLink: false });
    delete rec.driverState;
    await this.store.update((s) => {
      delete s.guests[name]!.driverState;
    });
    return this.view(rec);
  }

  /** Boot a stopped (or failed) guest again with its share and data as they are. */
  private async startGuest(name: string): Promise<GuestView> {
    const rec = this.record(name);
    const status = this.live.get(name)?.status;
    if (status === 'running' || status === 'starting')
      throw new HylicsError('HYLICS_ERR_CONFLICT', `guest ${name} is ${status} already`, { name });
    if (!(await this.opts.shares.isMounted(name))) await this.opts.shares.reconcile([name]);
    const ctx = this.context(rec);
    await this.driver(rec.spec.driver).cleanup(ctx, rec.driverState); // leftovers of a guest that died
    await this.opts.channels.detach(name).catch(() => undefined);
    await this.store.update((s) => {
      s.guests[name]!.desired = 'running';
    });
    rec.desired = 'running';
    try {
      await this.boot(rec);
    } catch (e) {
      const err = toHylicsError(e);
      this.live.set(name, { status: 'failed', lastError: `${err.code}: ${err.message}` });
      await this.driver(rec.spec.driver)
        .cleanup(ctx, rec.driverState)
        .catch(() => undefined);
      await this.opts.channels.detach(name).catch(() => undefined);
      throw err;
    }
    return this.view(rec);
  }

  private async remove(name: string): Promise<{ removed: string }> {
    const rec = this.record(name);
    await this.opts.drivers[rec.spec.driver]?.assertStoppable?.(this.context(rec), rec.driverState);
    await this.teardown(rec, { keepShare: false, graceMs: STOP_GRACE_MS.remove });
    return { removed: name };
  }

  private async exec(
    name: string,
    argv: string[],
    body: { cwd?: string; stdin?: string; timeoutMs?: number },
  ): Promise<ExecResult> {
    this.record(name);
    if (!this.opts.channels.isConnected(name)) {
      // An agent that is reconnecting (daemon restart, agent restart) gets a moment before we give up.
      await this.opts.channels.waitConnected(name, AGENT_RECONNECT_WAIT_MS).catch(() => {
        throw new HylicsError('HYLICS_ERR_GUEST_NOT_RUNNING', `the agent of ${name} is not connected`, { name });
      });
    }
    if (body.stdin !== undefined && Buffer.byteLength(body.stdin) > EXEC_STDIN_MAX_BYTES)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `stdin must be at most ${EXEC_STDIN_MAX_BYTES / 1024} KiB`, {
        what: 'stdin',
      });
    const timeoutMs = body.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS;
    const res = await this.opts.channels.request(
      name,
      'exec',
      { argv, cwd: body.cwd, stdin: body.stdin, timeoutMs },
      timeoutMs + EXEC_REPLY_MARGIN_MS,
    );
    return res as ExecResult;
  }

  private async resizeShare(name: string, size: string | number): Promise<GuestView> {
    const rec = this.record(name);
    const bytes = parseSize(size, 'share size');
    if (bytes > totalmem())
      throw new HylicsError(
        'HYLICS_ERR_INVALID_SIZE',
        `share size ${bytes} bytes is more than this host's memory (${totalmem()} bytes)`,
        { what: 'share size', value: bytes },
      );
    await this.setShareSize(name, bytes);
    return this.view(rec);
  }

  /** Remount the share at `bytes` and persist it (the caller holds the guest's lock). */
  private async setShareSize(name: string, bytes: number): Promise<void> {
    const rec = this.record(name);
    await this.opts.shares.resize(name, bytes);
    await this.store.update((s) => {
      s.guests[name]!.spec.shareSizeBytes = bytes;
    });
    rec.spec.shareSizeBytes = bytes;
  }

  private modules(): ModuleBackend {
    if (!this.opts.modules)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'network offload modules are not available in this daemon');
    return this.opts.modules;
  }

  private async moduleStart(name: string, body: ModuleStartBody): Promise<CommandResult<'module.start'>> {
    const rec = this.record(name);
    if (this.live.get(name)?.status !== 'running')
      throw new HylicsError('HYLICS_ERR_GUEST_NOT_RUNNING', `guest ${name} is not running`, { name });
    return this.modules().start({ ...rec, sharePath: this.opts.shares.path(name) }, body);
  }

  private async logTail(name: string, lines: number): Promise<string> {
    return guestLogTail(this.paths(name).logs, lines);
  }

  private async consoleTail(name: string, lines: number): Promise<{ text: string }> {
    this.record(name);
    return { text: await this.logTail(name, lines) };
  }

  private libvirtXml(name: string): { xml: string } {
    const rec = this.record(name);
    if (!this.opts.libvirtXml)
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'libvirt XML is not available in this daemon');
    if (rec.spec.driver !== 'microvm')
      throw new HylicsError(
        'HYLICS_ERR_INVALID_ARGUMENT',
        `guest ${name} is a ${rec.spec.driver} guest; libvirt XML is for microvm guests`,
      );
    return { xml: this.opts.libvirtXml(this.context(rec), rec.driverState) };
  }

  // ---- views ------------------------------------------------------------------------------------------

  private async shareInfo(name: string): Promise<GuestView['share']> {
    try {
      const u = await this.opts.shares.usage(name);
      return { path: this.opts.shares.path(name), ...u };
    } catch {
      return { path: this.opts.shares.path(name), sizeBytes: 0, usedBytes: 0, freeBytes: 0, mounted: false };
    }
  }

  private async view(rec: GuestRecord): Promise<GuestView> {
    const name = rec.spec.name;
    const l = this.live.get(name);
    const driver = this.opts.drivers[rec.spec.driver];
    const ctx = this.context(rec);
    const v: GuestView = {
      name,
      driver: rec.spec.driver,
      status: l?.status ?? 'stopped',
      agentConnected: this.opts.channels.isConnected(name),
      cpus: rec.spec.cpus,
      memoryBytes: rec.spec.memoryBytes,
      address: rec.network.guestAddr,
      hostAddress: rec.network.hostAddr,
      share: await this.shareInfo(name),
      createdAt: rec.createdAt,
      driverInfo: driver && rec.driverState ? driver.describe(ctx, rec.driverState) : {},
      tasks: this.profiler.stats(name),
    };
    if (l?.lastError) v.lastError = l.lastError;
    if (rec.spec.tier) v.tier = normalTierSettings(rec.spec.tier);
    if (this.opts.socketOffload) v.offload = { socket: this.opts.socketOffload.stats(name) };
    const engine = this.opts.modules?.engine?.(name);
    if (engine) v.modules = { engine };
    return v;
  }

  private async status(): Promise<StatusView> {
    const views = await Promise.all(Object.values(this.store.guests).map((r) => this.view(r)));
    return {
      version: VERSION,
      pid: process.pid,
      stateDir: this.stateDir,
      uptimeSeconds: (Date.now() - this.started) / 1000,
      guests: views.length,
      guestsRunning: views.filter((v) => v.status === 'running').length,
      shareBytesTotal: views.reduce((a, v) => a + v.share.sizeBytes, 0),
      shareBytesUsed: views.reduce((a, v) => a + v.share.usedBytes, 0),
    };
  }

  private async guestsSnapshot(): Promise<
    Array<{ name: string; running: boolean; connected: boolean; sizeBytes: number; usedBytes: number }>
  > {
    return Promise.all(
      Object.values(this.store.guests).map(async (r) => {
        const s = await this.shareInfo(r.spec.name);
        return {
          name: r.spec.name,
          running: this.live.get(r.spec.name)?.status === 'running',
          connected: this.opts.channels.isConnected(r.spec.name),
          sizeBytes: s.sizeBytes,
          usedBytes: s.usedBytes,
        };
      }),
    );
  }

  // ---- guest events -----------------------------------------------------------------------------------

  private onGuestEvent(guest: string, event: string, payload: unknown): void {
    if (!this.store.get(guest)) return;
    if (event === 'task.report') {
      const p = (payload ?? {}) as Record<string, unknown>;
      // checked, rate-limited and counted by the profiler; metric series only for reports it accepted (a guest
      // cannot mint unbounded Prometheus series)
      if (!this.profiler.ingest(guest, p) || p.kind === 'start') return;
      const name = typeof p.name === 'string' && p.name.length > 0 ? p.name.slice(0, 64) : 'task';
      this.metrics.taskResponse.observe({ guest, task: name }, (p.responseMs as number) / 1000);
      this.metrics.tasks.inc({ guest, task: name, result: p.ok !== false ? 'ok' : 'error' });
    }
  }
}
