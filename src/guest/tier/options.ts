// The agent's tier flags (agent-main): parseArgs specs and their checked values.
import { HylicsError } from '../../core/errors/index.js';
import { parseDuration, parseSize } from '../../core/units.js';
import { DEFAULT_TIER_PROMOTE, TIER_PROMOTE_MODES, tierPromoteMode } from '../../core/tier-settings.js';
import { DEFAULT_DISK_TIER, DEFAULT_HEADROOM_BYTES, DEFAULT_IDLE_MS, type TierStoreOptions } from './store.js';
import { MAX_SWEEP_MS } from './manager.js';

export const TIER_ARGS = {
  'disk-tier': { type: 'string', default: DEFAULT_DISK_TIER },
  'tier-idle': { type: 'string', default: `${DEFAULT_IDLE_MS / 1000}s` },
  'tier-sweep': { type: 'string' },
  'tier-promote': { type: 'string', default: DEFAULT_TIER_PROMOTE },
  'tier-headroom': { type: 'string', default: String(DEFAULT_HEADROOM_BYTES) },
} as const;

/** "60s", "500ms", "2m", "0" -> milliseconds (core's duration syntax; 0 = off). */
export function parseDurationMs(v: string, what: string): number {
  return Math.round(parseDuration(v, what, true));
}

export interface TierAgentOptions {
  store: Omit<TierStoreOptions, 'memoryDir'>;
  sweepMs: number;
}

/** undefined when --disk-tier none (no store in this agent). */
export function parseTierOptions(v: { 'disk-tier'?: string; 'tier-idle'?: string; 'tier-sweep'?: string; 'tier-promote'?: string; 'tier-headroom'?: string }): TierAgentOptions | undefined {
  const diskDir = v['disk-tier'] ?? DEFAULT_DISK_TIER;
  if (diskDir === 'none') return undefined;
  if (!diskDir.startsWith('/')) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--disk-tier must be an absolute directory, got ${JSON.stringify(diskDir)}`);
  const idleMs = parseDurationMs(v['tier-idle'] ?? '60s', '--tier-idle');
  const sweepMs = v['tier-sweep'] !== undefined ? parseDurationMs(v['tier-sweep'], '--tier-sweep') : Math.min(Math.max(1, Math.floor(idleMs / 4)), MAX_SWEEP_MS);
  const promote = tierPromoteMode(v['tier-promote'] ?? DEFAULT_TIER_PROMOTE);
  if (promote === undefined) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--tier-promote must be ${TIER_PROMOTE_MODES.join(', ')} or on (= ${DEFAULT_TIER_PROMOTE}), got ${JSON.stringify(v['tier-promote'])}`);
  const headroom = v['tier-headroom'] ?? String(DEFAULT_HEADROOM_BYTES);
  const headroomBytes = headroom === '0' ? 0 : parseSize(headroom, '--tier-headroom');
  return { store: { diskDir, idleMs, promote, headroomBytes }, sweepMs: idleMs > 0 ? sweepMs : 0 };
}
