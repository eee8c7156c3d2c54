// Guests that libvirt runs (`hylics guest adopt --libvirt DOMAIN`, contrib/libvirt/qemu): Hylics never starts or
// stops the domain. What hylicsd keeps for it is what it keeps for its own guests: the share (the daemon's tmpfs,
// which libvirt's virtiofsd serves because the adopted XML names it), the control channel (QEMU binds the
// virtio-serial channel's Unix socket; hylicsd connects and reconnects whenever the domain starts again) and the
// routed network (a persistent tap `hyhN` the XML names with managed='no', the guest's address 10.213.N.2 and the
// guest firewall's pair, so modules serve the guest's clients as for any guest). So "start" here only creates
// what the domain needs before libvirt starts it; "stop" only takes it away; the VM's own lifecycle stays libvirt's.
import { chown, copyFile, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { createTap, deleteTap, guestMac, tapExists } from '../../os/qemu.js';
import { processCpuSeconds, unixListenerPid } from '../../os/proc.js';
import { PACKAGE_ROOT } from '../../os/self.js';
import type { ChannelEndpoint, DriverContext, DriverState, GuestDriver } from './types.js';

/** Where adopted domains' channel sockets live: outside the root-only state dir, so QEMU running as libvirt's
 * unprivileged user (qemu.conf `user = "libvirt-qemu"`) can bind its socket there. */
export const LIBVIRT_RUN_DIR = '/run/hylics-libvirt';
/** The user libvirt runs QEMU as on Debian/Ubuntu; its socket directory is given to it when it exists. */
const LIBVIRT_QEMU_USER = 'libvirt-qemu';
/** The single-file guest agent (`npm run build:agent`); copied into the share for the guest to install. */
export const AGENT_BUNDLE = join(PACKAGE_ROOT, 'dist', 'agent', 'hylics-agent.mjs');
/** Where in the share the guest finds the agent (contrib/guest/cloud-init.yaml installs it from there). */
export const SHARE_AGENT_PATH = join('.hylics', 'hylics-agent.mjs');

export interface LibvirtState {
  domain: string;
  tap: string;
  mac: string;
  channelSocket: string;
  /** The agent bundle was put into the share at <share>/.hylics/hylics-agent.mjs. */
  agentInShare: boolean;
  adoptedAt: string;
}

/** The channel socket of an adopted domain (host-unique: the network index is claimed host-wide). */
export function libvirtChannelPath(ctx: Pick<DriverContext, 'spec' | 'network'>): string {
  return join(LIBVIRT_RUN_DIR, `${ctx.network.index}-${ctx.spec.name}`, 'channel.sock');
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const f = passwd.split('\n').map((l) => l.split(':')).find((p) => p[0] === name);
  return f ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}

const asState = (s: DriverState): LibvirtState => s as unknown as LibvirtState;

export class LibvirtDriver implements GuestDriver {
  readonly kind = 'libvirt' as const;

  async preflight(): Promise<void> {
    if (process.getuid?.() !== 0) throw new HylicsError('HYLICS_ERR_NOT_ROOT', 'adopting a libvirt domain needs root (tap device, share)');
    if (!existsSync('/dev/net/tun')) throw new HylicsError('HYLICS_ERR_MISSING_DEPENDENCY', '/dev/net/tun is missing: the routed tap needs the tun module');
  }

  /** Everything the domain needs before libvirt starts it; idempotent (the hook calls it at every domain start). */
  async start(ctx: DriverContext): Promise<DriverState> {
    const n = ctx.network;
    const channelSocket = libvirtChannelPath(ctx);
    const dir = join(channelSocket, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const qemuUser = await userIds(LIBVIRT_QEMU_USER);
    if (qemuUser) await chown(dir, qemuUser.uid, qemuUser.gid);
    // a tap QEMU already uses is kept (re-adoption while the domain runs); else made afresh
    if (!(await tapExists(n.hostIf))) await createTap(n.hostIf, n.hostAddr, n.guestAddr);
    let agentInShare = false;
    if (existsSync(AGENT_BUNDLE)) {
      await mkdir(join(ctx.paths.share, '.hylics'), { recursive: true });
      await copyFile(AGENT_BUNDLE, join(ctx.paths.share, SHARE_AGENT_PATH));
      agentInShare = true;
    }
    const state: LibvirtState = {
      domain: ctx.spec.name,
      tap: n.hostIf,
      mac: guestMac(n.index),
      channelSocket,
      agentInShare,
      adoptedAt: new Date().toISOString(),
    };
    return state as unknown as DriverState;
  }

  /** Adopted while its tap and socket directory are there (the domain itself may be running or shut off). */
  async alive(_ctx: DriverContext, state: DriverState): Promise<boolean> {
    const s = asState(state);
    return (await tapExists(s.tap)) && existsSync(join(s.channelSocket, '..'));
  }

  /** The domain's lifecycle is libvirt's: its stops are no failure of the guest (the channel reconnects). */
  watch(): () => void {
    return () => undefined;
  }

  /** Hylics does not stop a domain it did not start (`virsh shutdown` does); cleanup takes its devices away. */
  async stop(): Promise<void> {
    // nothing: see the comment above
  }

  /** A running domain's QEMU holds the tap and its virtiofsd the share: taking them away would cut its network and
   * hide its files, so `guest stop`/`guest rm` wait for libvirt to shut the domain down. */
  async assertStoppable(ctx: DriverContext, state: DriverState | undefined): Promise<void> {
    const channelSocket = state ? asState(state).channelSocket : libvirtChannelPath(ctx);
    const qemu = await unixListenerPid(channelSocket);
    if (qemu !== undefined) {
      throw new HylicsError('HYLICS_ERR_CONFLICT', `libvirt domain ${ctx.spec.name} is running (QEMU pid ${qemu}): shut it down first (virsh shutdown ${ctx.spec.name})`, { name: ctx.spec.name, pid: qemu });
    }
  }

  async cleanup(ctx: DriverContext, state: DriverState | undefined): Promise<void> {
    const s = state ? asState(state) : undefined;
    const channelSocket = s?.channelSocket ?? libvirtChannelPath(ctx);
    // never under a running domain (startGuest and recover clean up before they start): its QEMU holds the tap
    if (await unixListenerPid(channelSocket)) return;
    await deleteTap(s?.tap ?? ctx.network.hostIf);
    await rm(channelSocket, { force: true });
    await rmdir(join(channelSocket, '..')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') ctx.log.warn({ dir: join(channelSocket, '..'), err: e.code }, 'libvirt: channel socket directory left (not empty)');
    });
  }

  channel(ctx: DriverContext, state: DriverState): ChannelEndpoint {
    return { mode: 'connect', path: asState(state).channelSocket ?? libvirtChannelPath(ctx) };
  }

  async cpuSeconds(_ctx: DriverContext, state: DriverState): Promise<number | null> {
    const pid = await unixListenerPid(asState(state).channelSocket);
    return pid === undefined ? null : (await processCpuSeconds(pid)) ?? null;
  }

  describe(_ctx: DriverContext, state: DriverState): Record<string, unknown> {
    const s = asState(state);
    return {
      domain: s.domain, tap: s.tap, mac: s.mac, channelSocket: s.channelSocket,
      agentBundle: s.agentInShare ? SHARE_AGENT_PATH : 'not built (npm run build:agent)',
      lifecycle: 'libvirt (virsh start/shutdown); hylicsd keeps the share, channel and tap',
    };
  }
}
