// What the daemon needs of the parts it drives: shares (tmpfs), the control channel, offload modules and the
// guest firewall. src/host/wiring.ts builds the real ones; the daemon only sees these interfaces (so its command
// logic can run against fakes too). Guest drivers have their own interface in ./drivers/types.ts.
import type { ModuleEngineView, ModuleInfoView } from '../core/api.js';
import type { ChannelEndpoint } from './drivers/types.js';
import type { GuestRecord } from './state.js';
import type { NetnsId, PeerSocket } from '../os/peer-socket.js';

export interface ShareBackend {
  path(name: string): string;
  isMounted(name: string): Promise<boolean>;
  create(name: string, sizeBytes: number): Promise<unknown>;
  resize(name: string, sizeBytes: number): Promise<unknown>;
  usage(name: string): Promise<{ sizeBytes: number; usedBytes: number; freeBytes: number; mounted: boolean }>;
  destroy(name: string): Promise<void>;
  /** After a restart: make sure every named share is mounted (data survives a daemon restart: mounts stay). */
  reconcile(names: string[]): Promise<unknown>;
}

export interface ChannelBackend {
  attach(name: string, endpoint: ChannelEndpoint): Promise<void>;
  detach(name: string): Promise<void>;
  isConnected(name: string): boolean;
  waitConnected(name: string, timeoutMs: number): Promise<void>;
  request(name: string, op: string, params: unknown, timeoutMs: number): Promise<unknown>;
  onEvent(fn: (guest: string, event: string, payload: unknown) => void): void;
  onConnection(fn: (guest: string, connected: boolean) => void): void;
  /**
   * Serve an op that guests call on the host; `guest` is the channel's guest, never something the guest claims.
   * `direct`: also on each sandbox guest's direct socket (HOST_OFFLOAD_SOCKET in its run dir, the guest library's
   * way to hylicsd without the agent hop; only ops served this way are allowed there). `signal` aborts when the
   * caller can no longer get the answer (its connection closed or reset, or its deadline passed). Ops in
   * DIRECT_ONLY_OPS (core/protocol: the descriptor copy) are served there only, whatever `direct` says; `conn` is
   * given for requests on the direct socket only.
   */
  handle(
    op: string,
    fn: (guest: string, params: unknown, signal?: AbortSignal, conn?: DirectConn) => Promise<unknown>,
    opts?: { direct?: boolean },
  ): void;
  /** Send an event to the guest (share.resized); false when it could not be sent. */
  notify?(guest: string, event: string, data: unknown): boolean;
  close(): Promise<void>;
}

/** A request's connection on a guest's direct offload socket: the app process at its other end. */
export interface DirectConn {
  /** A duplicate of that process's descriptor `fd`, kept only if it is a non-blocking connected IPv4 TCP socket in
   *  the network namespace `ns` (ChannelServer.takePeerSocket). */
  takeSocket(fd: number, ns: NetnsId): PeerSocket;
}

/** Optional module manager (network-send offload); wired when available. */
export interface ModuleBackend {
  start(guest: GuestRecord & { sharePath: string }, body: Record<string, unknown>): Promise<ModuleInfoView>;
  list(guest: string): Promise<ModuleInfoView[]> | ModuleInfoView[];
  stop(guest: string, id: string): Promise<void>;
  stopAll(guest: string): Promise<void>;
  /** The guest's module engine (server, reason, traffic); undefined before its first module. */
  engine?(guest: string): ModuleEngineView | undefined;
}

/** A guest's host-side link and the one source address allowed on it (the guest firewall's set). */
export interface GuardLink { ifname: string; addr: string }

/**
 * The host firewall that isolates guests (src/os/nft-guard.ts): no new connections from a guest link to the host
 * or to another guest, no source but the guest's own on its link. Passive with `hylics daemon --no-guest-firewall`.
 */
export interface GuardBackend {
  /** Install the rules if missing and allow each link its own guest's source address. Idempotent. */
  allow(links: GuardLink[]): Promise<void>;
  /** Forget these links' addresses. Idempotent. */
  forbid(links: GuardLink[]): Promise<void>;
  /**
   * Check that the guard is whole with these links allowed and restore it if not (someone flushed the ruleset,
   * e.g. a reload of the host's nftables service, or deleted the table). True when it had to be restored.
   */
  ensure?(links: GuardLink[]): Promise<boolean>;
}
