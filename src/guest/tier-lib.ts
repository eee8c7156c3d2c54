// The tiered store for apps in the guest (Node):
//
//   import { tier } from 'hylics/guest';
//   const f = await tier.path('videos/a.mp4');   // { path, tier: 'memory' | 'disk', foundIn, sizeBytes, lastUseMs }
//   await tier.put('videos/b.mp4', '/tmp/b.mp4'); // or a Readable; lands in the share when it fits
//   const files = await tier.ls();               // [{ name, tier, path, sizeBytes, lastUseMs }]
//
// tier.path() asks the agent (which counts hits and misses for the host's profiler and may move the file back into
// the share first); when the agent is absent it finds the file itself (no counting, no move), so an app never
// fails because of the agent. put() and ls() work on the directories directly (atomic writes; the agent's moves
// check for them). Directories: $HYLICS_SHARE (default /mnt/hylics) and $HYLICS_DISK_TIER (default
// /var/lib/hylics-tier); the agent sets both for what it runs.
import type { Readable } from 'node:stream';
import { HylicsError } from '../core/errors/index.js';
import type { TierPathResultT } from '../core/protocol/index.js';
import { DEFAULT_SHARE_DIR } from './agent.js';
import { sharedClient } from './lib.js';
import { DEFAULT_DISK_TIER, TierStore, type TierEntry } from './tier/store.js';

/** How long tier.path() waits for the agent before it looks by itself. */
const AGENT_WAIT_MS = 2000;

export interface TierDirs { memoryDir?: string; diskDir?: string }

export function tierDirs(d: TierDirs = {}): { memoryDir: string; diskDir: string } {
  return {
    memoryDir: d.memoryDir ?? (process.env.HYLICS_SHARE || DEFAULT_SHARE_DIR),
    diskDir: d.diskDir ?? (process.env.HYLICS_DISK_TIER || DEFAULT_DISK_TIER),
  };
}

/** A store on the directories alone (no agent): for put, ls and the fallback lookup. */
export async function localStore(d: TierDirs = {}): Promise<TierStore> {
  return new TierStore(tierDirs(d)).open();
}

export interface TierPathOptions extends TierDirs {
  /** Move a disk-tier file back first when there is room (default: the agent's setting). */
  promote?: boolean;
  socket?: string;
}

export type TierPath = TierPathResultT & { counted: boolean };

/** Where `name` is: via the agent (counted, maybe promoted), else found locally (counted: false). */
async function path(name: string, opts: TierPathOptions = {}): Promise<TierPath> {
  let agentErr: unknown;
  try {
    const c = await sharedClient(opts.socket);
    const r = await c.request('tier.path', { name, ...(opts.promote !== undefined ? { promote: opts.promote } : {}) }, { timeoutMs: AGENT_WAIT_MS + 60_000 });
    return { ...r, counted: true };
  } catch (e) {
    // the store's own answers (bad name, not found) stand; anything else means "no agent to ask"
    if (e instanceof HylicsError && e.code.startsWith('HYLICS_ERR_TIER_')) throw e;
    agentErr = e;
  }
  const store = await localStore(opts);
  const f = await store.locate(name);
  if (!f) throw new HylicsError('HYLICS_ERR_TIER_NOT_FOUND', `no file ${JSON.stringify(name)} in the tiered store (looked without the agent: ${(agentErr as Error)?.message ?? 'unreachable'})`, { name });
  return {
    name,
    path: f.path,
    tier: f.tier,
    foundIn: f.tier,
    sizeBytes: f.sizeBytes,
    lastUseMs: f.lastUseMs,
    counted: false,
  };
}

async function put(name: string, source: string | Readable, d: TierDirs = {}): Promise<TierEntry> {
  return (await localStore(d)).put(name, source);
}

async function ls(d: TierDirs = {}): Promise<TierEntry[]> {
  return (await localStore(d)).list();
}

export const tier = { path, put, ls };
