// The one interface both guest drivers (sandbox, microvm) implement. The daemon owns names, the share (tmpfs),
// the address plan and the channel server; a driver owns only what it starts (namespaces, cgroups, QEMU, ...).
import type { Logger } from 'pino';
import type { DiskTierRule, TierSettings } from '../../core/tier-settings.js';

export type DriverKind = 'sandbox' | 'microvm' | 'libvirt';

export interface GuestSpec {
  name: string;
  driver: DriverKind;
  shareSizeBytes: number;
  /** Fractional CPUs (sandbox: cgroup quota; microvm: vCPUs = ceil(cpus) plus a quota on QEMU's cgroup). */
  cpus: number;
  memoryBytes: number;
  /** The guest's tiered-store settings (guest create's `tier`), passed to the agent the driver starts; absent: the
   * agent's defaults. */
  tier?: TierSettings;
}

/** Addresses and interface names the daemon allocated for the guest (stable across daemon restarts). */
export interface GuestNetwork {
  /** Small integer, unique among live guests; everything below is derived from it. */
  index: number;
  /** Host-side interface (veth end or tap), e.g. hyh3. */
  hostIf: string;
  /** Guest-side interface name (veth end inside the netns), e.g. hyg3. */
  guestIf: string;
  hostAddr: string;
  guestAddr: string;
  prefixLen: number;
  /** Network namespace name (sandbox), e.g. hylics-web1. */
  netns: string;
}

export interface GuestPaths {
  /** <state>/guests/<name> */
  dir: string;
  /** The tmpfs mount point: <dir>/share. Mounted in the guest at /mnt/hylics. */
  share: string;
  /** <dir>/run: a directory bind-mounted (sandbox) at /run/hylics in the guest; channel.sock lives here so a
   * daemon restart that re-creates the socket is seen by the guest. */
  run: string;
  /** Driver logs (agent stdout/stderr, QEMU console) go here. */
  logs: string;
}

export interface DriverContext {
  spec: GuestSpec;
  paths: GuestPaths;
  network: GuestNetwork;
  stateDir: string;
  log: Logger;
}

/** JSON-serializable facts a driver needs to find its guest again after a daemon restart (pids, ...). */
export type DriverState = Record<string, unknown>;

/** How the daemon reaches the guest's control channel. */
export type ChannelEndpoint =
  | { mode: 'listen'; path: string } // daemon listens on a Unix socket, the agent connects (sandbox)
  | { mode: 'connect'; path: string }; // daemon connects to a socket the driver exposes (QEMU chardev)

export interface GuestDriver {
  readonly kind: DriverKind;
  /** Where the agent this driver starts may keep its disk tier (guest create's `tier.diskDir`); absent: the driver
   * starts no agent and takes no tier settings. */
  readonly diskTier?: DiskTierRule;
  /** Check host prerequisites (root, binaries, kernel features) and throw a HylicsError naming what is missing. */
  preflight(): Promise<void>;
  /** Start the guest and its agent. Resolves when processes are launched; the daemon then waits for the agent's hello.
   * On failure it must undo what it did before throwing. */
  start(ctx: DriverContext): Promise<DriverState>;
  /** Is the guest described by `state` still running (also after a daemon restart)? */
  alive(ctx: DriverContext, state: DriverState): Promise<boolean>;
  /** Calls `onExit` once when the guest stops by itself (or is killed). Returns a function that cancels the watch. */
  watch(ctx: DriverContext, state: DriverState, onExit: (reason: string) => void): () => void;
  /** Stop the guest politely, then forcibly after timeoutMs. */
  stop(ctx: DriverContext, state: DriverState, timeoutMs: number): Promise<void>;
  /** Remove all the driver created (netns, cgroup, tap, processes...), never the share. Idempotent. */
  cleanup(ctx: DriverContext, state: DriverState | undefined): Promise<void>;
  channel(ctx: DriverContext, state: DriverState): ChannelEndpoint;
  /** CPU time the guest has used, in seconds (sandbox: its cgroup; microVM: QEMU), null when unknown. */
  cpuSeconds?(ctx: DriverContext, state: DriverState): Promise<number | null>;
  /** Throws (HYLICS_ERR_CONFLICT) when the guest may not be stopped or removed now (libvirt: the domain runs). */
  assertStoppable?(ctx: DriverContext, state: DriverState | undefined): Promise<void>;
  /** Extra facts for `guest show` (accelerator, pids, ...). */
  describe(ctx: DriverContext, state: DriverState): Record<string, unknown>;
}
