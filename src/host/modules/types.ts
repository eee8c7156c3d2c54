// Types shared by the module manager (daemon side) and the module worker (one unprivileged process per guest).

/** What the daemon knows about a guest and passes to the manager. Identity comes from the daemon, never the guest. */
export interface ModuleGuest {
  name: string;
  /** Host path of the guest's share (its tmpfs mount). */
  sharePath: string;
  /** The guest's own IPv4 address: clients use guestAddr:port. */
  guestAddr: string;
  /** A host IPv4 address on the guest's link: the worker listens there and nft DNATs guestAddr:port to it. */
  hostAddr: string;
  /** The guest's network namespace, when it has one (informational; the rules live in the host's netns). */
  netns?: string;
}

export type ModuleKind = 'http' | 'stream';

export interface ModuleStartOptions {
  kind: ModuleKind;
  /** Directory inside the share (relative to the share root; a leading / means the share root). */
  root: string;
  /** Port on the guest's address. */
  port: number;
  /** Also listen on this host port (all host addresses; >= 1024: the worker is unprivileged). */
  hostPort?: number;
}

export interface ModuleLimits {
  maxConnections: number;
  maxHeaderSize: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** A client that reads nothing for this long during a body transfer is dropped. */
  stallMs: number;
  /** Bodies up to this size go out in one write with the headers; bigger ones with sendfile. */
  smallFileMax: number;
  /**
   * Largest first sendfile chunk done non-blocking on the worker's event loop (0, the default: every byte on the
   * I/O thread, so the event loop only parses requests while the copy runs on another core).
   */
  inlineSendMax: number;
}

export const DEFAULT_LIMITS: ModuleLimits = {
  maxConnections: 1024,
  maxHeaderSize: 8192,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  stallMs: 60_000,
  smallFileMax: 16 * 1024,
  inlineSendMax: 0,
};

export interface ModuleInfo {
  id: string;
  guest: string;
  kind: ModuleKind;
  root: string;
  port: number;
  hostPort?: number;
  /** Where the worker actually listens (the DNAT target). */
  listen: { addr: string; port: number };
  /** URLs clients use. */
  urls: string[];
  startedAt: string;
  totals: { requests: number; bytes: number; errors: number };
}

export interface LatencyStats { meanMs: number; p50Ms: number; p99Ms: number; maxMs: number }

export type ModuleEvent =
  | { type: 'started'; guest: string; module: ModuleInfo }
  | { type: 'stopped'; guest: string; id: string }
  | { type: 'stats'; guest: string; id: string; kind: ModuleKind; intervalMs: number; requests: number; bytes: number; errors: number; latency: LatencyStats }
  | { type: 'error'; guest: string; id: string; code: string; message: string }
  | { type: 'worker-restarted'; guest: string; reason: string; restarts: number };

// ---- IPC between manager and worker (JSON over the child_process channel) ----
export type ToWorker =
  | { op: 'start'; id: string; kind: ModuleKind; root: string; listenAddr: string; listenPort: number; hostPort?: number; limits: ModuleLimits; sendPath: 'native' | 'stream' }
  | { op: 'stop'; id: string };

export type FromWorker =
  | { op: 'ready'; native: { loaded: boolean; open: string; send: string; reason?: string } }
  | { op: 'started'; id: string; listenPort: number }
  | { op: 'failed'; id: string; code: string; message: string }
  | { op: 'stopped'; id: string }
  | { op: 'stats'; id: string; kind: ModuleKind; intervalMs: number; requests: number; bytes: number; errors: number; latency: LatencyStats }
  | { op: 'error'; id: string; code: string; message: string };
