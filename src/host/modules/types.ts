// Types shared by the module manager (daemon side) and the module worker (one unprivileged process per guest).
import type { EngineView } from './guest-engine.js';

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
  /**
   * Connections one module serves at once (nginx limit_conn) and, summed over the guest's modules, the engine's cap.
   */
  maxConnections: number;
  /** Largest request header line / field (bigger: 400 from nginx, large_client_header_buffers). */
  maxHeaderSize: number;
  /** Time a client has to send its request headers (slowloris). */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Requests on one keep-alive connection before nginx closes it. */
  keepAliveRequests: number;
  /** A client that reads nothing for this long during a body transfer is dropped (nginx send_timeout). */
  stallMs: number;
}

export const DEFAULT_LIMITS: ModuleLimits = {
  maxConnections: 1024,
  maxHeaderSize: 8192,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  keepAliveRequests: 100_000,
  stallMs: 60_000,
};

/** The per-guest cgroup every module process of the guest runs in (nginx and the stream gate). */
export interface EngineResources {
  /** CPUs (CFS quota) for all the guest's module processes together. */
  cpus: number;
  memoryBytes: number;
  pidsMax: number;
}

export const DEFAULT_RESOURCES: EngineResources = { cpus: 1, memoryBytes: 256 * 1024 * 1024, pidsMax: 64 };

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
  /**
   * The guest's module engine (the same for all its modules): server, why, switches and, under module-engine auto,
   * the traffic the choice sees (ModuleManager.list / start answers).
   */
  engine?: EngineView;
}

export interface LatencyStats { meanMs: number; p50Ms: number; p99Ms: number; maxMs: number }

export type ModuleEvent =
  | { type: 'started'; guest: string; module: ModuleInfo }
  | { type: 'stopped'; guest: string; id: string }
  | {
    type: 'stats'; guest: string; id: string; kind: ModuleKind; intervalMs: number; requests: number; bytes: number; errors: number; latency: LatencyStats;
    /** Share-relative names served (status < 400) / answered 404 in the interval (at most MAX_PATHS each): the
     * guest's tiered store counts them as uses (docs/tier.md). */
    files?: string[]; missing?: string[];
  }
  | { type: 'error'; guest: string; id: string; code: string; message: string }
  | { type: 'worker-restarted'; guest: string; reason: string; restarts: number };

// ---- IPC between the manager and the stream gate worker (JSON over the child_process channel) ----
export type ToWorker =
  | { op: 'start'; id: string; root: string; /** File name in the engine's gate/ directory (the worker's fd 5). */ socketName: string }
  | { op: 'stop'; id: string }
  | { op: 'probe'; id: string };

export type FromWorker =
  | { op: 'ready'; native: { loaded: boolean; open: string; send: string; reason?: string } }
  | { op: 'started'; id: string }
  | { op: 'failed'; id: string; code: string; message: string }
  | { op: 'stopped'; id: string }
  | { op: 'probe'; id: string; gate: { playlists: number; uris: number; dirs: number }; rssBytes: number; heapUsedBytes: number }
  | { op: 'error'; id: string; code: string; message: string };
