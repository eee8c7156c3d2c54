// The microvm guest driver: QEMU (KVM when a probe boot proves it works, TCG otherwise) booting the image the
// project builds, with
//  - the guest's tmpfs share over virtio-fs (one virtiofsd per guest, sandboxed into the share, cache=none by
//    default: see `shareCache`), mounted at /mnt/hylics;
//  - the host's programs over a second, read-only virtio-fs export (a private view: /usr, node, the package) so
//    the guest runs the agent with the host's node, chroot'ed;
//  - the control channel on virtio-serial port org.hylics.channel.0, a Unix socket chardev the daemon connects
//    to (ChannelEndpoint mode 'connect'); vhost-vsock as well where /dev/vhost-vsock exists;
//  - a virtio-blk disk (raw file on the host's disk, cache=none, ext4, mounted at /mnt/disk);
//  - a tap per guest, routed by the host with a /32 route (no bridge), the guest's own address on eth0;
//  - the serial console in <logs>/console.log, QEMU's own messages in <logs>/qemu.log.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import { chooseAccel, type AccelChoice } from '../../os/accel.js';
import { Cgroup } from '../../os/cgroup.js';
import { processCpuSeconds } from '../../os/proc.js';
import { buildImage, type GuestImage } from '../../os/image/build.js';
import { CHANNEL_PORT, encodeAgentArgv, GUEST_DISK, GUEST_SHARE } from '../../os/image/init.js';
import { run } from '../../os/image/run.js';
import { isProcessAlive, processCmdline } from '../../os/proc.js';
import { createTap, deleteTap, guestMac, qemuArgs, qmp, QEMU, QEMU_RUN_AS, spawnQemu, supportsDirectIo, type Accel, type QemuConfig } from '../../os/qemu.js';
import { entryArgv, NODE_BIN, PACKAGE_ROOT } from '../../os/self.js';
import { logTail, startVirtiofsd, VIRTIOFSD, type FsCacheMode } from '../../os/virtiofsd.js';
import type { ChannelEndpoint, DriverContext, DriverState, GuestDriver } from './types.js';
import { MiB } from '../../core/units.js';
import { tierAgentArgs, type DiskTierRule, type TierSettings } from '../../core/tier-settings.js';
import { CachedJob } from '../../core/cached-job.js';
import { GUEST_APP_SOCKET } from '../../core/guest-layout.js';

export interface MicrovmDriverOptions {
  /**
   * The daemon's state dir: images are cached in <stateDir>/images, the accelerator choice in <stateDir>/accel.json.
   */
  stateDir: string;
  log?: Logger;
  /** Size of each guest's virtual disk (sparse raw file, created and formatted on first start). Default 1 GiB. */
  diskBytes?: number;
  /**
   * Guest page cache for the share. Default 'none': the share's data already lives in host RAM (tmpfs), so a
   * guest cache would hold it a second time, grow virtiofsd (KubeVirt saw ~200 MB that never shrank) and hide
   * host-side writes (modules, evictions) for up to a second. 'auto'/'always' trade that memory for re-read speed.
   */
  shareCache?: FsCacheMode;
  /**
   * The agent's argv in the guest (host paths; run chroot'ed into the host view). Default: node +
   * entryArgv('guest/agent-main') with the standard flags, or no agent when that entry point does not exist yet.
   * `false` disables the agent.
   */
  agentArgv?: string[] | false;
  /** Force an accelerator (else HYLICS_ACCEL, else the cached KVM probe). */
  accel?: Accel;
  /** Progress lines (image build, KVM probe, QEMU start), also logged. */
  onProgress?: (msg: string) => void;
}

/** What a running microvm guest is made of (persisted by the daemon as DriverState). */
export interface MicrovmState {
  qemuPid: number;
  virtiofsdPids: number[];
  tap: string;
  accel: Accel;
  accelReason: string;
  image: string;
  kernel: string;
  initrd: string;
  kernelRelease: string;
  consoleLog: string;
  qmpSocket: string;
  channelSocket: string;
  shellSocket: string;
  disk: string;
  diskCache: string;
  shareCache: FsCacheMode;
  vcpus: number;
  memoryBytes: number;
  vsockCid?: number;
  /** The cgroup holding QEMU (CPU quota = spec.cpus), or undefined when it could not be set up. */
  cgroup?: string;
  agent: boolean;
  startedAt: string;
}

const SOCKET_MAX = 107;
/** The tiered store's disk tier in a microVM: on the guest's virtio-blk disk (the root the agent sees is read-only). */
export const GUEST_DISK_TIER = `${GUEST_DISK}/hylics-tier`;

export function microvmPaths(ctx: DriverContext): {
  channel: string;
  shell: string;
  qmp: string;
  fsShare: string;
  fsRoot: string;
  hostRootView: string;
  console: string;
  qemuLog: string;
  fsLog: string;
  disk: string;
} {
  return {
    channel: join(ctx.paths.run, 'channel.sock'),
    shell: join(ctx.paths.run, 'shell.sock'),
    qmp: join(ctx.paths.run, 'qmp.sock'),
    fsShare: join(ctx.paths.run, 'fs-share.sock'),
    fsRoot: join(ctx.paths.run, 'fs-root.sock'),
    hostRootView: join(ctx.paths.run, 'hostroot'),
    console: join(ctx.paths.logs, 'console.log'),
    qemuLog: join(ctx.paths.logs, 'qemu.log'),
    fsLog: join(ctx.paths.logs, 'virtiofsd.log'),
    disk: join(ctx.paths.dir, 'disk.raw'),
  };
}

/** The guest kernel's command line: console, the guest's name and addresses, the agent argv for /init. */
export function kernelCmdline(ctx: DriverContext, agent: string[] | undefined): string {
  const n = ctx.network;
  return [
    'console=ttyS0', 'panic=-1', 'loglevel=4', 'tsc=reliable', 'no_timer_check',
    `hylics.name=${ctx.spec.name}`, `hylics.ip=${n.guestAddr}`, `hylics.gw=${n.hostAddr}`,
    ...(agent ? [`hylics.agent=${encodeAgentArgv(agent)}`] : []),
  ].join(' ');
}

/** The agent argv the driver passes by default (node + the agent entry point + its flags), or undefined when
 * the entry point does not exist. */
export function defaultAgentArgv(name: string, tier?: TierSettings): string[] | undefined {
  let entry: string[];
  try { entry = entryArgv('guest/agent-main'); } catch { return undefined; }
  return [NODE_BIN, ...entry, '--channel-port', CHANNEL_PORT, '--app-socket', GUEST_APP_SOCKET, '--share', GUEST_SHARE,
    ...tierAgentArgs(tier, GUEST_DISK_TIER), '--name', name];
}

function asState(s: DriverState): MicrovmState {
  return s as unknown as MicrovmState;
}

/** Is `pid` alive and a process of ours (its command line mentions `needle`)? Guards against pid reuse. */
async function pidIsOurs(pid: number, needle: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const cmdline = await processCmdline(pid);
  // a zombie has exited, not yet been reaped
  return cmdline !== undefined && cmdline.includes(needle) && (await isProcessAlive(pid));
}

async function killAndWait(pid: number, needle: string, graceMs: number): Promise<void> {
  if (!(await pidIsOurs(pid, needle))) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await pidIsOurs(pid, needle))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (let i = 0; i < 40 && (await pidIsOurs(pid, needle)); i++) await new Promise((r) => setTimeout(r, 50));
}

export class MicrovmDriver implements GuestDriver {
  readonly kind = 'microvm' as const;
  /** Anywhere on the guest's writable disk (the root it sees is read-only). */
  readonly diskTier: DiskTierRule = { driver: 'microvm', defaultDir: GUEST_DISK_TIER, under: GUEST_DISK };
  // one build and one probe at a time, shared by guests starting together
  private readonly image = new CachedJob<GuestImage>(
    () => buildImage({ stateDir: this.opts.stateDir, onProgress: (m) => this.progress(`image: ${m}`) }),
    (img) => existsSync(img.initrd),
  );
  private readonly accel = new CachedJob<AccelChoice>(async () =>
    chooseAccel({ stateDir: this.opts.stateDir, image: await this.ensureImage(), onProgress: (m) => this.progress(m) }),
  );
  /** QEMU children started by this process: their 'exit' event is precise; others are polled. */
  private readonly children = new Map<number, ChildProcess>();

  constructor(private readonly opts: MicrovmDriverOptions) {}

  /** Progress goes to onProgress when given, else to the log (not both). */
  private progress(msg: string): void {
    if (this.opts.onProgress) this.opts.onProgress(msg);
    else this.opts.log?.info(msg);
  }

  async preflight(): Promise<void> {
    if (process.getuid?.() !== 0)
      throw new HylicsError('HYLICS_ERR_NOT_ROOT', 'microvm guests need root (tap devices, virtiofsd namespaces)');
    await run(QEMU, ['--version']).catch((e: unknown) => {
      throw new HylicsError(
        'HYLICS_ERR_MISSING_DEPENDENCY',
        `QEMU (${QEMU}) is not usable: apt-get install qemu-system-x86 (${e instanceof Error ? e.message : String(e)})`,
        { package: 'qemu-system-x86' },
      );
    });
    if (!existsSync(VIRTIOFSD))
      throw new HylicsError(
        'HYLICS_ERR_MISSING_DEPENDENCY',
        `virtiofsd not found at ${VIRTIOFSD}: apt-get install qemu-system-x86`,
        { package: 'qemu-system-x86' },
      );
    if (!existsSync('/dev/net/tun'))
      throw new HylicsError(
        'HYLICS_ERR_MISSING_DEPENDENCY',
        '/dev/net/tun is missing: tap networking needs the tun module',
      );
    for (const [bin, pkg] of [
      ['mkfs.ext4', 'e2fsprogs'],
      ['unshare', 'util-linux'],
      ['ip', 'iproute2'],
    ]) {
      await run('sh', ['-c', `command -v ${bin}`]).catch(() => {
        throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', `${bin} is missing: apt-get install ${pkg}`, {
          package: pkg,
        });
      });
    }
  }

  /** The guest image (built on first use; `hylics image build` does it ahead of time). */
  async ensureImage(): Promise<GuestImage> {
    return this.image.get();
  }

  async chooseAccel(): Promise<AccelChoice> {
    if (this.opts.accel) return { accel: this.opts.accel, reason: 'set by the daemon configuration', cached: false };
    return this.accel.get();
  }

  private agentArgv(ctx: DriverContext): string[] | undefined {
    if (this.opts.agentArgv === false) return undefined;
    if (this.opts.agentArgv) return this.opts.agentArgv;
    return defaultAgentArgv(ctx.spec.name, ctx.spec.tier);
  }

  /** The QEMU configuration for a guest (also used for the libvirt XML and tests). */
  qemuConfig(
    ctx: DriverContext,
    image: GuestImage,
    accel: Accel,
    agent: string[] | undefined,
    diskDirect: boolean,
  ): QemuConfig {
    const p = microvmPaths(ctx);
    const n = ctx.network;
    const append = kernelCmdline(ctx, agent);
    return {
      name: ctx.spec.name,
      accel,
      vcpus: Math.max(1, Math.ceil(ctx.spec.cpus)),
      memoryBytes: ctx.spec.memoryBytes,
      kernel: image.kernel,
      initrd: image.initrd,
      append,
      consoleLog: p.console,
      qmpSocket: p.qmp,
      channelSocket: p.channel,
      shellSocket: p.shell,
      shareSocket: p.fsShare,
      hostRootSocket: p.fsRoot,
      disk: { path: p.disk, format: 'raw', direct: diskDirect },
      tap: { ifname: n.hostIf, mac: guestMac(n.index), vhost: existsSync('/dev/vhost-net') },
      vsockCid: existsSync('/dev/vhost-vsock') ? 1000 + n.index : undefined,
      // everything QEMU opens it opens at start, as root; then it runs unprivileged in its seccomp sandbox
      runAs: QEMU_RUN_AS,
    };
  }

  private async ensureDisk(path: string): Promise<void> {
    if (existsSync(path)) return;
    const tmp = `${path}.new`;
    try {
      await run('truncate', ['-s', String(this.opts.diskBytes ?? 1024 ** 3), tmp], { code: 'HYLICS_ERR_MICROVM_DISK' });
      // formatted on the host on first use: the initramfs has no mkfs.ext4; lazy init keeps this fast and sparse
      await run(
        'mkfs.ext4',
        ['-q', '-F', '-L', 'hylics-disk', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', tmp],
        { code: 'HYLICS_ERR_MICROVM_DISK' },
      );
      await run('mv', [tmp, path], { code: 'HYLICS_ERR_MICROVM_DISK' });
    } catch (e) {
      await rm(tmp, { force: true });
      throw toHylicsError(e, 'HYLICS_ERR_MICROVM_DISK');
    }
  }

  async start(ctx: DriverContext): Promise<DriverState> {
    const p = microvmPaths(ctx);
    for (const s of [p.channel, p.shell, p.qmp, p.fsShare, p.fsRoot]) {
      if (Buffer.byteLength(s) > SOCKET_MAX)
        throw new HylicsError(
          'HYLICS_ERR_MICROVM_SOCKET_PATH',
          `socket path ${s} is longer than ${SOCKET_MAX} bytes: use a shorter state dir`,
          { path: s },
        );
    }
    const image = await this.ensureImage();
    const accel = await this.chooseAccel();
    const agent = this.agentArgv(ctx);
    await mkdir(ctx.paths.run, { recursive: true });
    await mkdir(ctx.paths.logs, { recursive: true, mode: 0o700 });
    await mkdir(p.hostRootView, { recursive: true });
    for (const s of [p.channel, p.shell, p.qmp, p.fsShare, p.fsRoot]) await rm(s, { force: true });
    await rm(p.console, { force: true });
    await this.ensureDisk(p.disk);
    const diskDirect = supportsDirectIo(p.disk);
    const shareCache = this.opts.shareCache ?? 'none';

    const started: { fs: number[]; tap?: string; qemu?: number } = { fs: [] };
    const undo = async (): Promise<void> => {
      if (started.qemu) await killAndWait(started.qemu, p.qmp, 1000);
      for (const pid of started.fs) await killAndWait(pid, 'virtiofsd', 1000);
      if (started.tap) await deleteTap(started.tap);
      for (const s of [p.channel, p.shell, p.qmp, p.fsShare, p.fsRoot]) await rm(s, { force: true });
    };
    try {
      await createTap(ctx.network.hostIf, ctx.network.hostAddr, ctx.network.guestAddr);
      started.tap = ctx.network.hostIf;
      const share = await startVirtiofsd({
        socketPath: p.fsShare,
        source: ctx.paths.share,
        cache: shareCache,
        logFile: p.fsLog,
      });
      started.fs.push(share.pid);
      const root = await startVirtiofsd({
        socketPath: p.fsRoot,
        source: p.hostRootView,
        cache: 'auto',
        logFile: p.fsLog,
        hostRootView: { packageRoot: PACKAGE_ROOT, nodeBin: NODE_BIN, hide: [ctx.stateDir, this.opts.stateDir] },
      });
      started.fs.push(root.pid);

      const cfg = this.qemuConfig(ctx, image, accel.accel, agent, diskDirect);
      this.progress(
        `starting QEMU for ${ctx.spec.name} (${accel.accel}${accel.accel === 'tcg' ? ', emulated' : ''}, ${cfg.vcpus} vCPU, ${Math.round(ctx.spec.memoryBytes / MiB)} MiB)`,
      );
      ctx.log.info({ accel: accel.accel, reason: accel.reason, args: qemuArgs(cfg).join(' ') }, 'starting QEMU');
      const child = spawnQemu(cfg, p.qemuLog);
      if (child.pid === undefined) throw new HylicsError('HYLICS_ERR_MICROVM_QEMU_FAILED', 'QEMU did not start');
      started.qemu = child.pid;
      let exited: string | undefined;
      child.on('exit', (code, sig) => {
        exited = `exit ${code ?? sig}`;
      });
      // QEMU creates its chardev sockets before it runs the guest: the QMP socket means it is up
      const deadline = Date.now() + 15_000;
      while (!existsSync(p.qmp) || !existsSync(p.channel)) {
        if (exited || Date.now() > deadline) {
          throw new HylicsError(
            'HYLICS_ERR_MICROVM_QEMU_FAILED',
            `QEMU ${exited ? `exited (${exited})` : 'did not create its sockets within 15 s'}: ${await logTail(p.qemuLog, 4)}`,
            { log: p.qemuLog },
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      // vCPUs = ceil(cpus); the fractional part is enforced with a CFS quota on QEMU's cgroup (all its threads)
      let cgroup: string | undefined = `hylics/${ctx.network.index}-${ctx.spec.name}`; // host-unique, as for sandboxes
      try {
        const cg = await Cgroup.open(cgroup);
        await cg.create();
        await cg.setCpus(ctx.spec.cpus);
        await cg.addProcess(child.pid);
      } catch (e) {
        ctx.log.warn({ err: String(e) }, 'microvm: no CPU quota for QEMU (cgroup setup failed)');
        cgroup = undefined;
      }
      this.children.set(child.pid, child);
      child.on('exit', () => this.children.delete(child.pid!));
      const state: MicrovmState = {
        qemuPid: child.pid,
        virtiofsdPids: started.fs,
        tap: ctx.network.hostIf,
        accel: accel.accel,
        accelReason: accel.reason,
        image: image.hash,
        kernel: image.kernel,
        initrd: image.initrd,
        kernelRelease: image.kernelRelease,
        consoleLog: p.console,
        qmpSocket: p.qmp,
        channelSocket: p.channel,
        shellSocket: p.shell,
        disk: p.disk,
        diskCache: diskDirect ? 'none' : 'writeback',
        shareCache,
        vcpus: cfg.vcpus,
        memoryBytes: ctx.spec.memoryBytes,
        ...(cfg.vsockCid !== undefined ? { vsockCid: cfg.vsockCid } : {}),
        ...(cgroup ? { cgroup } : {}),
        agent: agent !== undefined,
        startedAt: new Date().toISOString(),
      };
      return state as unknown as DriverState;
    } catch (e) {
      await undo().catch(() => undefined);
      throw toHylicsError(e, 'HYLICS_ERR_MICROVM_QEMU_FAILED');
    }
  }

  async alive(_ctx: DriverContext, state: DriverState): Promise<boolean> {
    const s = asState(state);
    return pidIsOurs(s.qemuPid, s.qmpSocket);
  }

  watch(ctx: DriverContext, state: DriverState, onExit: (reason: string) => void): () => void {
    const s = asState(state);
    let cancelled = false;
    let fired = false;
    const fire = (reason: string): void => {
      if (cancelled || fired) return;
      fired = true;
      clearInterval(timer);
      // QEMU is gone: its virtiofsds (they exit with the VM, but may linger) and its tap go with it
      void this.cleanupRuntime(s)
        .catch((e) => ctx.log.warn({ err: String(e) }, 'microvm: cleanup after QEMU exit failed'))
        .then(async () => {
          const tail = await logTail(s.consoleLog, 3);
          onExit(`${reason}; console: ${tail}`);
        });
    };
    const child = this.children.get(s.qemuPid);
    const onChildExit = (code: number | null, sig: NodeJS.Signals | null): void =>
      fire(`QEMU exited (${sig ? `signal ${sig}` : `code ${code}`})`);
    child?.once('exit', onChildExit);
    // Poll too: QEMU may not be our child (daemon restarted), and a virtiofsd that dies leaves QEMU running with
    // a dead share (guest I/O on it would hang), so that ends the guest as well.
    const timer = setInterval(() => {
      void (async () => {
        if (!(await pidIsOurs(s.qemuPid, s.qmpSocket))) return fire('QEMU is gone');
        for (const pid of s.virtiofsdPids ?? []) {
          if (!(await pidIsOurs(pid, 'virtiofsd'))) {
            ctx.log.warn({ pid }, 'microvm: virtiofsd died: stopping the guest');
            await killAndWait(s.qemuPid, s.qmpSocket, 1000);
            return fire(`virtiofsd ${pid} died`);
          }
        }
      })();
    }, 1000);
    return () => {
      cancelled = true;
      clearInterval(timer);
      child?.off('exit', onChildExit);
    };
  }

  /** ACPI powerdown over QMP (the guest's init unmounts and powers off), then SIGTERM, then SIGKILL. The agent
   * shutdown request before this is the daemon's job. */
  async stop(ctx: DriverContext, state: DriverState, timeoutMs: number): Promise<void> {
    const s = asState(state);
    if (await pidIsOurs(s.qemuPid, s.qmpSocket)) {
      try {
        await qmp(s.qmpSocket, 'system_powerdown', undefined, Math.min(5000, timeoutMs));
      } catch (e) {
        ctx.log.warn({ err: String(e) }, 'microvm: system_powerdown failed; killing QEMU');
      }
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && (await pidIsOurs(s.qemuPid, s.qmpSocket)))
        await new Promise((r) => setTimeout(r, 100));
      await killAndWait(s.qemuPid, s.qmpSocket, 3000);
    }
    await this.cleanupRuntime(s);
  }

  /** Kill what runs for the guest and remove its tap and sockets. Keeps the disk and logs (the daemon removes
   * the guest directory when the guest is destroyed). */
  private async cleanupRuntime(s: MicrovmState): Promise<void> {
    await killAndWait(s.qemuPid, s.qmpSocket, 2000);
    for (const pid of s.virtiofsdPids ?? []) await killAndWait(pid, 'virtiofsd', 2000);
    if (s.tap) await deleteTap(s.tap);
    for (const f of [s.qmpSocket, s.channelSocket, s.shellSocket]) if (f) await rm(f, { force: true });
    if (s.cgroup) await (await Cgroup.open(s.cgroup)).remove().catch(() => undefined);
  }

  async cleanup(ctx: DriverContext, state: DriverState | undefined): Promise<void> {
    const p = microvmPaths(ctx);
    if (state) await this.cleanupRuntime(asState(state));
    await deleteTap(ctx.network.hostIf);
    await (await Cgroup.open(`hylics/${ctx.network.index}-${ctx.spec.name}`)).remove().catch(() => undefined);
    for (const s of [p.channel, p.shell, p.qmp, p.fsShare, p.fsRoot]) await rm(s, { force: true });
  }

  channel(ctx: DriverContext, _state: DriverState): ChannelEndpoint {
    return { mode: 'connect', path: microvmPaths(ctx).channel };
  }

  /** CPU time of the QEMU process (every vCPU thread is one of its threads), from /proc. */
  /**
   * The guest's CPU time: QEMU's cgroup (every QEMU thread: vCPUs, I/O, the main loop; cpu.stat usage_usec /
   * cpuacct.usage, ns resolution), or without one the QEMU process's utime + stime (all its threads, in ticks).
   */
  async cpuSeconds(_ctx: DriverContext, state: DriverState): Promise<number | null> {
    const s = asState(state);
    if (s.cgroup) {
      try {
        const cg = await Cgroup.open(s.cgroup);
        if (await cg.exists()) return (await cg.stats()).cpuUsageNs / 1e9;
      } catch {
        /* the cgroup went away: fall back to the process */
      }
    }
    return (await processCpuSeconds(s.qemuPid)) ?? null;
  }

  describe(_ctx: DriverContext, state: DriverState): Record<string, unknown> {
    const s = asState(state);
    return {
      accelerator: s.accel === 'tcg' ? 'tcg (emulated)' : 'kvm',
      accelReason: s.accelReason,
      qemuPid: s.qemuPid,
      virtiofsdPids: s.virtiofsdPids,
      tap: s.tap,
      vcpus: s.vcpus,
      cpuQuota: s.cgroup ? `${s.cgroup}` : 'none',
      image: `${s.image} (${s.kernelRelease})`,
      console: s.consoleLog,
      disk: `${s.disk} (virtio-blk, cache=${s.diskCache})`,
      shareCache: s.shareCache,
      channel: `virtio-serial ${CHANNEL_PORT}${s.vsockCid !== undefined ? `, vsock cid ${s.vsockCid}` : ''}`,
      agentLaunch: s.agent ? 'by /init, respawned if it dies' : 'none (no guest/agent-main entry point)',
    };
  }
}
