// The sandbox driver: a guest made of Linux namespaces and a cgroup on this host (DESIGN.md "Guests"), in one of
// two isolations:
//   container (default): an OCI container run by crun (src/os/crun.ts, oci-config.ts, rootfs.ts): its own root
//            file system (read-only base + tmpfs writable layer, the host's /usr and Hylics read-only), a user
//            namespace (guest root = an unprivileged host uid range), seccomp, only the standard /dev nodes; the
//            share, run dir and disk tier bound id-mapped. The netns is created by crun inside the guest's user
//            namespace (its CAP_NET_ADMIN works there: TCP_REPAIR) and named with `ip netns attach`.
//   namespaces (the earlier driver, not a boundary against guest root): the host's root file system seen through
//            a private mount namespace, guest root = host root with a reduced bounding set.
//   network: netns ctx.network.netns, veth hostIf (host ns, hostAddr) <-> guestIf (netns, guestAddr), lo up,
//            default route via hostAddr, net.ipv4.ip_forward=1
//   cgroup:  hylics/<name> with a CFS quota of spec.cpus and a memory limit of spec.memoryBytes (v1 or v2)
//   mount+pid namespaces: share bound at /mnt/hylics, ctx.paths.run at /run/hylics, the rest of the state dir
//            (other guests' shares) unmounted and covered; a shell init as pid 1 supervising the agent
// Processes are started detached (own session, logs to files), so guests outlive a daemon crash; the
// persisted DriverState (pids + start times) lets a restarted daemon find them again.
import { closeSync, openSync } from 'node:fs';
import { mkdir, access, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { tierAgentArgs, type DiskTierRule } from '../../core/tier-settings.js';
import { MiB } from '../../core/units.js';
import { Cgroup, type CgroupLayout, detectCgroupLayout } from '../../os/cgroup.js';
import { runRaw, requireRoot } from '../../os/exec.js';
import { containerState, createContainer, crun, deleteContainer, execArgv } from '../../os/crun.js';
import { tailBytes } from '../../os/log-file.js';
import { attachNetns, createNetns, createVeth, deleteLink, deleteNetns, enableIpForward, linkExists, netnsExists } from '../../os/netns.js';
import { containerConfig, guestRootHostId } from '../../os/oci-config.js';
import { hasPidAndNetNamespaces, isProcessAlive, processStartTime, signal } from '../../os/proc.js';
import { ensureBaseImage, mountRootfs, rootfsPaths, umountRootfs } from '../../os/rootfs.js';
import { CONTAINER_INIT_SCRIPT, GUEST_DISK_TIER_DIR, GUEST_RUN_DIR, GUEST_SHARE_DIR, launchSandbox } from '../../os/sandbox-launch.js';
import { entryArgv, NODE_BIN, PACKAGE_ROOT } from '../../os/self.js';
import { GUEST_APP_SOCKET_NAME, GUEST_CHANNEL_SOCKET_NAME } from '../../core/guest-layout.js';
import type { ChannelEndpoint, DriverContext, DriverState, GuestDriver, GuestPaths } from './types.js';

export const CHANNEL_SOCKET = GUEST_CHANNEL_SOCKET_NAME;
/** Tasks (processes + threads) a sandbox guest may have: room for real work, not for a fork bomb. */
export const SANDBOX_PIDS_MAX = 4096;
export const AGENT_APP_SOCKET = GUEST_APP_SOCKET_NAME;
/** The guest's disk tier on the host: <guest dir>/disk-tier, kept across stops, removed with the guest. */
export const DISK_TIER_DIR = 'disk-tier';

/** The guest's run dir, disk tier and logs on the host (both isolations); returns the disk tier's path. */
async function makeGuestDirs(paths: GuestPaths): Promise<string> {
  await mkdir(paths.run, { recursive: true, mode: 0o755 });
  const diskTier = join(paths.dir, DISK_TIER_DIR);
  await mkdir(diskTier, { recursive: true, mode: 0o700 });
  await mkdir(paths.logs, { recursive: true, mode: 0o750 });
  return diskTier;
}

/** What a sandbox guest's DriverState holds (persisted by the daemon as JSON). */
export interface SandboxState extends DriverState {
  driver: 'sandbox';
  launcherPid: number;
  launcherStartTime: number;
  /** Host pid of the guest's pid 1 (the init) and its start time (guards against pid reuse). */
  initPid: number;
  initStartTime: number;
  cgroup: string;
  cgroupVersion: 1 | 2;
  netns: string;
  hostIf: string;
  guestIf: string;
  logFile: string;
  startedAt: string;
  /** Absent in states written before containers (= namespaces). */
  isolation?: SandboxIsolation;
  /** container: crun's root dir and the container id, the host uid of guest root. */
  crunRoot?: string;
  containerId?: string;
  hostId?: number;
}

/** container: an OCI container run by crun (a boundary); namespaces: the earlier namespaces-only guest (not one). */
export const SANDBOX_ISOLATIONS = ['container', 'namespaces'] as const;
export type SandboxIsolation = (typeof SANDBOX_ISOLATIONS)[number];
/** The container's /dev/shm (counted in its memory cgroup). */
export const CONTAINER_SHM_BYTES = 64 * MiB;
/** How long `crun create` may take (user namespace, mounts, seccomp) on a loaded host. */
export const CRUN_CREATE_TIMEOUT_MS = 30_000;

export interface SandboxDriverOptions {
  /** argv of the command the guest's init supervises. Default: the guest agent (`agentCommand`). */
  command?: (ctx: DriverContext) => string[];
  /** How long the init has to set up its mounts. Default 10 s. */
  readyTimeoutMs?: number;
  /** How often `watch` looks at /proc. Default 500 ms. */
  watchIntervalMs?: number;
  /** Capabilities dropped from the guest program's bounding set; default DEFAULT_DROPPED_CAPS ([] keeps all). */
  dropCapabilities?: string[];
  /** Force a cgroup layout (tests); default: detected. */
  cgroupLayout?: CgroupLayout;
  /** Default 'container'. */
  isolation?: SandboxIsolation;
}

/** The guest's root file system's directory name under ROOTFS_RUN_DIR: unique on the host like its cgroup. */
export function rootfsKey(ctx: Pick<DriverContext, 'spec' | 'network'>): string {
  return `${ctx.network.index}-${ctx.spec.name}`;
}

/** crun's root dir for a daemon's guests: `crun list` there shows them, also after a daemon restart. */
export function crunRootDir(stateDir: string): string {
  return join(stateDir, 'crun');
}

/** Unique on the host, not only per daemon: the network index is allocated against every live interface, so two
 * daemons (state dirs) with a guest of the same name never share a cgroup. */
export function sandboxCgroupName(ctx: Pick<DriverContext, 'spec' | 'network'>): string {
  return `hylics/${ctx.network.index}-${ctx.spec.name}`;
}

/** The guest agent's argv, with the paths it sees inside the guest. */
export function agentCommand(ctx: DriverContext): string[] {
  return [NODE_BIN, ...entryArgv('guest/agent-main'),
    '--channel-unix', `${GUEST_RUN_DIR}/${CHANNEL_SOCKET}`, '--app-socket', `${GUEST_RUN_DIR}/${AGENT_APP_SOCKET}`,
    '--share', GUEST_SHARE_DIR, ...tierAgentArgs(ctx.spec.tier, GUEST_DISK_TIER_DIR), '--name', ctx.spec.name];
}

/** The state of a sandbox guest, checked (it comes from a JSON file). */
export function asSandboxState(state: DriverState | undefined): SandboxState | undefined {
  if (!state || state.driver !== 'sandbox' || typeof state.initPid !== 'number' || typeof state.initStartTime !== 'number') return undefined;
  return state as SandboxState;
}

/**
 * argv that runs `cmd` inside a running sandbox guest (its cgroup, net, mount and pid namespaces), for
 * debugging and tests; the agent's `exec` is the normal way in.
 */
export function sandboxExecArgv(state: DriverState, cmd: string[]): string[] {
  const s = asSandboxState(state);
  if (!s) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'not a sandbox guest state');
  if (s.isolation === 'container' && s.crunRoot && s.containerId) return execArgv(s.crunRoot, s.containerId, cmd);
  return ['nsenter', '-t', String(s.initPid), '-m', '-n', '-p', '--', ...cmd];
}

async function checkStateDir(stateDir: string): Promise<string> {
  let dir: string;
  try { dir = await realpath(stateDir); } catch { dir = resolve(stateDir); }
  const inside = (a: string, b: string): boolean => a === b || a.startsWith(b.endsWith('/') ? b : `${b}/`);
  if (!stateDir.startsWith('/') || /[\s\\,:]/.test(dir) || dir === '/' || inside(GUEST_SHARE_DIR, dir) || inside(GUEST_RUN_DIR, dir) || inside(dir, GUEST_SHARE_DIR) || inside(dir, GUEST_RUN_DIR)) {
    throw new HylicsError('HYLICS_ERR_SANDBOX_BAD_PATH', `state dir ${JSON.stringify(stateDir)} cannot host sandbox guests: it must be absolute, without whitespace, backslashes, commas or colons, and neither contain nor lie inside ${GUEST_SHARE_DIR} or ${GUEST_RUN_DIR}`, { stateDir });
  }
  return dir;
}

/** Host directories a container guest sees read-only at the same path: the system's programs (/usr, and the
 * top-level lib/bin dirs where the host is not usr-merged), Hylics' package and node, nothing else. */
async function readOnlyHostDirs(): Promise<string[]> {
  const dirs = ['/usr'];
  for (const d of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    try { if ((await realpath(d)) === d) dirs.push(d); } catch { /* absent */ }
  }
  for (const p of [await realpath(PACKAGE_ROOT), dirname(await realpath(NODE_BIN))]) {
    if (!dirs.some((d) => p === d || p.startsWith(`${d}/`))) dirs.push(p);
  }
  return dirs;
}

async function logTail(file: string, bytes = 1500): Promise<string> {
  try { return (await tailBytes(file, bytes)).toString('utf8').trim(); } catch { return ''; }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SandboxDriver implements GuestDriver {
  readonly kind = 'sandbox' as const;
  /** The disk tier is the host's <guest dir>/disk-tier bind-mounted there; only it or none. */
  readonly diskTier: DiskTierRule = { driver: 'sandbox', defaultDir: GUEST_DISK_TIER_DIR };
  private layout: CgroupLayout | undefined;

  constructor(private readonly opts: SandboxDriverOptions = {}) {
    this.layout = opts.cgroupLayout;
  }

  private async cgroup(ctx: Pick<DriverContext, 'spec' | 'network'>): Promise<Cgroup> {
    this.layout ??= await detectCgroupLayout();
    return Cgroup.open(sandboxCgroupName(ctx), this.layout);
  }

  private get isolation(): SandboxIsolation {
    return this.opts.isolation ?? 'container';
  }

  async preflight(): Promise<void> {
    requireRoot('sandbox guests (namespaces, cgroups, mounts)');
    const tools: ReadonlyArray<readonly [string, string, readonly string[]]> = this.isolation === 'container'
      ? [['ip', 'iproute2', ['-V']], ['crun', 'crun', ['--version']], ['unshare', 'util-linux', ['--version']], ['mount', 'util-linux', ['--version']]]
      : [['ip', 'iproute2', ['-V']], ['nsenter', 'util-linux', ['--version']], ['unshare', 'util-linux', ['--version']], ['mount', 'util-linux', ['--version']], ['setpriv', 'util-linux', ['--version']], ['awk', 'mawk', ['-W', 'version']]];
    for (const [bin, pkg, args] of tools) {
      const r = await runRaw(bin, [...args]).catch(() => undefined);
      if (!r) throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${bin} is needed for sandbox guests (Debian package ${pkg})`, { command: bin, package: pkg });
    }
    if (!(await hasPidAndNetNamespaces())) {
      throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', 'the kernel lacks pid or network namespaces', {});
    }
    this.layout ??= await detectCgroupLayout();
  }

  /** Refuse leftovers in the way; create the cgroup with its limits (undo registered). */
  private async prepare(ctx: DriverContext, cg: Cgroup, undo: Array<[string, () => Promise<void>]>): Promise<void> {
    const { spec, paths, network: net } = ctx;
    if (await netnsExists(net.netns)) throw new HylicsError('HYLICS_ERR_SANDBOX_EXISTS', `network namespace ${net.netns} already exists`, { netns: net.netns });
    if (await linkExists(net.hostIf)) throw new HylicsError('HYLICS_ERR_SANDBOX_EXISTS', `interface ${net.hostIf} already exists on the host`, { ifname: net.hostIf });
    if (await cg.exists()) {
      if ((await cg.pids()).length > 0) throw new HylicsError('HYLICS_ERR_SANDBOX_EXISTS', `cgroup ${cg.name} exists and has processes`, { cgroup: cg.name });
      await cg.remove(); // an empty leftover of an earlier guest of this name
    }
    try { await access(paths.share); } catch {
      throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `the share ${paths.share} does not exist (create the share before starting the guest)`, { path: paths.share });
    }
    undo.push(['cgroup', () => cg.remove()]);
    await cg.create();
    await cg.setCpus(spec.cpus);
    await cg.setMemory(spec.memoryBytes);
    await cg.setPidsMax(SANDBOX_PIDS_MAX);
  }

  private async undoAll(ctx: DriverContext, undo: Array<[string, () => Promise<void>]>): Promise<void> {
    for (const [what, fn] of undo.reverse()) {
      try { await fn(); } catch (u) { ctx.log.error({ guest: ctx.spec.name, what, err: String(u) }, 'undo after a failed start failed'); }
    }
  }

  async start(ctx: DriverContext): Promise<SandboxState> {
    requireRoot('starting a sandbox guest');
    return this.isolation === 'container' ? this.startContainer(ctx) : this.startNamespaces(ctx);
  }

  /** The guest as an OCI container: create (namespaces made, pid 1 waiting), join the cgroup, network, start. */
  private async startContainer(ctx: DriverContext): Promise<SandboxState> {
    const { spec, paths, network: net } = ctx;
    const stateDir = await checkStateDir(ctx.stateDir);
    const cg = await this.cgroup(ctx);
    const crunRoot = crunRootDir(stateDir);
    const id = spec.name;
    const rootfs = rootfsPaths(rootfsKey(ctx));
    const undo: Array<[string, () => Promise<void>]> = [];
    try {
      const command = this.command(ctx);
      if (!(await stat(paths.share).catch(() => undefined))?.isDirectory()) {
        throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `cannot bind the share ${paths.share}: not a directory`, { path: paths.share });
      }
      const leftover = await containerState(crunRoot, id);
      if (leftover && leftover.status !== 'stopped') throw new HylicsError('HYLICS_ERR_SANDBOX_EXISTS', `container ${id} is ${leftover.status} (crun --root ${crunRoot})`, { container: id });
      if (leftover) await deleteContainer(crunRoot, id);
      await this.prepare(ctx, cg, undo);

      const hostId = guestRootHostId(net.index);
      const base = await ensureBaseImage(stateDir);
      undo.push(['rootfs', () => umountRootfs(rootfs)]);
      await umountRootfs(rootfs); // a leftover of a crash
      await mountRootfs(base, rootfs, hostId, spec.name);
      // mount points for the host dirs bound read-only (a node under /var/cache, a checkout under /tmp): made here,
      // as host root in the writable layer; crun inside the user namespace may not create them in the base
      for (const d of await readOnlyHostDirs()) await mkdir(join(rootfs.root, d), { recursive: true, mode: 0o755 });
      const diskTier = await makeGuestDirs(paths);
      const bundle = join(paths.dir, 'bundle');
      await mkdir(bundle, { recursive: true, mode: 0o700 });
      const config = containerConfig({
        hostname: spec.name,
        rootfs: rootfs.root,
        arch: process.arch,
        hostId,
        shmBytes: CONTAINER_SHM_BYTES,
        args: ['/bin/sh', '-c', CONTAINER_INIT_SCRIPT, 'hylics-init', spec.name, '--', ...command],
        env: [
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          'HOME=/root',
          'LANG=C.UTF-8',
          `HYLICS_GUEST_NAME=${spec.name}`,
        ],
        readOnlyBinds: await readOnlyHostDirs(),
        idmappedBinds: [
          [await realpath(paths.share), GUEST_SHARE_DIR],
          [await realpath(paths.run), GUEST_RUN_DIR],
          [await realpath(diskTier), GUEST_DISK_TIER_DIR],
        ],
      });
      await writeFile(join(bundle, 'config.json'), JSON.stringify(config, null, 1), { mode: 0o600 });

      const logFile = join(paths.logs, 'sandbox.log');
      await mkdir(crunRoot, { recursive: true, mode: 0o700 });
      undo.push(['container', () => deleteContainer(crunRoot, id)]);
      const fd = openSync(logFile, 'a', 0o640);
      let code: number;
      try { code = await createContainer(crunRoot, id, bundle, fd, CRUN_CREATE_TIMEOUT_MS); } finally { closeSync(fd); }
      const created = await containerState(crunRoot, id);
      if (code !== 0 || !created || created.status !== 'created') {
        throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `crun create ${id} failed (exit ${code}): ${await logTail(logFile)}`, { name: spec.name, logFile });
      }
      const pid = created.pid;
      await cg.addProcess(pid); // before start: the guest program and all it forks run under the limits

      undo.push(['netns', () => deleteNetns(net.netns)]);
      undo.push(['veth', () => deleteLink(net.hostIf)]);
      await this.network(ctx, () => attachNetns(net.netns, pid));
      await crun(crunRoot, ['start', id]);
      const initStartTime = (await processStartTime(pid)) ?? 0;
      const state: SandboxState = {
        driver: 'sandbox', isolation: 'container', launcherPid: pid, launcherStartTime: initStartTime, initPid: pid, initStartTime,
        cgroup: cg.name, cgroupVersion: cg.version, netns: net.netns, hostIf: net.hostIf, guestIf: net.guestIf, logFile,
        startedAt: new Date().toISOString(), crunRoot, containerId: id, hostId,
      };
      ctx.log.info({ guest: spec.name, initPid: pid, netns: net.netns, cgroup: cg.name, guestAddr: net.guestAddr, hostId }, 'sandbox guest started (container)');
      return state;
    } catch (e) {
      await this.undoAll(ctx, undo);
      throw toHylicsError(e, 'HYLICS_ERR_SANDBOX_START_FAILED');
    }
  }

  /** The guest's network namespace (`enter`: made or joined), its veth pair and forwarding. */
  private async network(ctx: DriverContext, enter: () => Promise<void>): Promise<void> {
    const net = ctx.network;
    try {
      await enter();
      await createVeth({
        netns: net.netns,
        hostIf: net.hostIf,
        guestIf: net.guestIf,
        hostAddr: net.hostAddr,
        guestAddr: net.guestAddr,
        prefixLen: net.prefixLen,
      });
      await enableIpForward();
    } catch (e) {
      const err = toHylicsError(e);
      if (err.code !== 'HYLICS_ERR_OS_COMMAND_FAILED') throw err;
      throw new HylicsError('HYLICS_ERR_SANDBOX_NETNS_FAILED', `network setup for ${ctx.spec.name} failed: ${err.message}`, err.details, { cause: err });
    }
  }

  private async startNamespaces(ctx: DriverContext): Promise<SandboxState> {
    const { spec, paths, network: net } = ctx;
    const stateDir = await checkStateDir(ctx.stateDir);
    const cg = await this.cgroup(ctx);
    const undo: Array<[string, () => Promise<void>]> = [];
    try {
      const command = this.command(ctx);
      await this.prepare(ctx, cg, undo);

      undo.push(['netns', () => deleteNetns(net.netns)]);
      undo.push(['veth', () => deleteLink(net.hostIf)]);
      await this.network(ctx, () => createNetns(net.netns));

      // mount points the init binds onto; empty directories on the host
      await mkdir(GUEST_SHARE_DIR, { recursive: true, mode: 0o755 });
      await mkdir(GUEST_RUN_DIR, { recursive: true, mode: 0o755 });
      await mkdir(GUEST_DISK_TIER_DIR, { recursive: true, mode: 0o700 });
      const diskTier = await makeGuestDirs(paths);
      const logFile = join(paths.logs, 'sandbox.log');
      const procs = await launchSandbox({
        name: spec.name,
        netns: net.netns,
        cgroupProcsFiles: cg.procsFiles(),
        share: await realpath(paths.share),
        runDir: await realpath(paths.run),
        diskTier: await realpath(diskTier),
        stateDir,
        logFile,
        command,
        readyTimeoutMs: this.opts.readyTimeoutMs,
        dropCapabilities: this.opts.dropCapabilities,
      });
      const state: SandboxState = {
        driver: 'sandbox', isolation: 'namespaces', ...procs, cgroup: cg.name, cgroupVersion: cg.version, netns: net.netns,
        hostIf: net.hostIf, guestIf: net.guestIf, logFile, startedAt: new Date().toISOString(),
      };
      ctx.log.info({ guest: spec.name, initPid: procs.initPid, netns: net.netns, cgroup: cg.name, guestAddr: net.guestAddr }, 'sandbox guest started');
      return state;
    } catch (e) {
      await this.undoAll(ctx, undo);
      throw toHylicsError(e, 'HYLICS_ERR_SANDBOX_START_FAILED');
    }
  }

  private command(ctx: DriverContext): string[] {
    try {
      const c = this.opts.command ? this.opts.command(ctx) : agentCommand(ctx);
      if (c.length === 0) throw new Error('empty guest command');
      return c;
    } catch (e) {
      throw new HylicsError('HYLICS_ERR_SANDBOX_START_FAILED', `cannot build the guest command: ${(e as Error).message}`, {}, { cause: e });
    }
  }

  async alive(_ctx: DriverContext, state: DriverState): Promise<boolean> {
    const s = asSandboxState(state);
    if (s === undefined || !(await isProcessAlive(s.initPid, s.initStartTime))) return false;
    if (s.isolation !== 'container' || !s.crunRoot || !s.containerId) return true;
    // the pid is the container's: crun knows it as running (a restarted daemon re-adopts only its own containers)
    const c = await containerState(s.crunRoot, s.containerId);
    return c !== undefined && c.status === 'running' && c.pid === s.initPid;
  }

  watch(_ctx: DriverContext, state: DriverState, onExit: (reason: string) => void): () => void {
    const s = asSandboxState(state);
    let done = false;
    let busy = false;
    const fire = (reason: string): void => { if (!done) { done = true; clearInterval(timer); onExit(reason); } };
    const timer = setInterval(() => {
      if (busy || done) return;
      busy = true;
      void (s ? isProcessAlive(s.initPid, s.initStartTime) : Promise.resolve(false))
        .then((alive) => { if (!alive) fire(s ? `init (pid ${s.initPid}) exited` : 'no sandbox state'); })
        .finally(() => { busy = false; });
    }, this.opts.watchIntervalMs ?? 500);
    timer.unref();
    return () => { done = true; clearInterval(timer); };
  }

  async stop(ctx: DriverContext, state: DriverState, timeoutMs: number): Promise<void> {
    const s = asSandboxState(state);
    if (!s) return;
    const gone = async (until: number): Promise<boolean> => {
      for (;;) {
        if (!(await isProcessAlive(s.initPid, s.initStartTime))) return true;
        if (Date.now() >= until) return false;
        await sleep(20);
      }
    };
    if (!(await isProcessAlive(s.initPid, s.initStartTime))) return;
    // The init forwards TERM to the guest program and exits; the kernel then kills the rest. TERM is repeated
    // because one that lands while the init is forking the program can be lost (the fork briefly shares the
    // init's handler); a repeat is harmless.
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (await isProcessAlive(s.initPid, s.initStartTime)) signal(s.initPid, 'SIGTERM');
      if (await gone(Math.min(until, Date.now() + 250))) return;
      if (Date.now() >= until) break;
    }
    ctx.log.warn({ guest: ctx.spec.name, initPid: s.initPid, timeoutMs }, 'guest did not stop on SIGTERM: SIGKILL');
    if (await isProcessAlive(s.initPid, s.initStartTime)) signal(s.initPid, 'SIGKILL');
    await gone(Date.now() + 5000);
  }

  /** Kill what is left, remove cgroup, veth and netns. Works on half-created guests and without a state. */
  async cleanup(ctx: DriverContext, state: DriverState | undefined): Promise<void> {
    const s = asSandboxState(state);
    const errors: HylicsError[] = [];
    const step = async (fn: () => Promise<void>): Promise<void> => {
      try { await fn(); } catch (e) { errors.push(toHylicsError(e)); }
    };
    await step(async () => { if (s && (await isProcessAlive(s.initPid, s.initStartTime))) signal(s.initPid, 'SIGKILL'); });
    await step(async () => { if (s && (await isProcessAlive(s.launcherPid, s.launcherStartTime))) signal(s.launcherPid, 'SIGKILL'); });
    // the container's state and root (also without a state: a start that died half way)
    const crunRoot = s?.crunRoot ?? crunRootDir(await realpath(ctx.stateDir).catch(() => resolve(ctx.stateDir)));
    await step(() => deleteContainer(crunRoot, s?.containerId ?? ctx.spec.name));
    await step(() => umountRootfs(rootfsPaths(rootfsKey(ctx))));
    await step(async () => (await this.cgroup(ctx)).remove());
    await step(() => deleteLink(ctx.network.hostIf));
    await step(() => deleteNetns(ctx.network.netns));
    if (errors.length > 0) {
      ctx.log.error({ guest: ctx.spec.name, errors: errors.map((e) => e.message) }, 'sandbox cleanup incomplete');
      throw errors[0];
    }
  }

  channel(ctx: DriverContext, _state: DriverState): ChannelEndpoint {
    return { mode: 'listen', path: join(ctx.paths.run, CHANNEL_SOCKET) };
  }

  /** The guest's cgroup CPU time (cpuacct.usage on v1, cpu.stat usage_usec on v2). */
  async cpuSeconds(ctx: DriverContext): Promise<number | null> {
    const cg = await this.cgroup(ctx);
    if (!(await cg.exists())) return null;
    return (await cg.stats()).cpuUsageNs / 1e9;
  }

  describe(ctx: DriverContext, state: DriverState): Record<string, unknown> {
    const s = asSandboxState(state);
    return {
      isolation: s?.isolation ?? 'namespaces', containerId: s?.containerId, crunRoot: s?.crunRoot, guestRootHostUid: s?.hostId,
      initPid: s?.initPid, launcherPid: s?.launcherPid, startedAt: s?.startedAt,
      cgroup: sandboxCgroupName(ctx), cgroupVersion: s?.cgroupVersion,
      netns: ctx.network.netns, hostIf: ctx.network.hostIf, guestIf: ctx.network.guestIf,
      hostAddr: ctx.network.hostAddr, guestAddr: ctx.network.guestAddr,
      shareInGuest: GUEST_SHARE_DIR, runInGuest: GUEST_RUN_DIR, logFile: s?.logFile,
    };
  }
}
