// A guest's tiered-store settings as the operator gives them at `guest create` (the `tier` section of the body,
// `--tier-idle / --tier-promote / --disk-tier` on the CLI), checked whole before anything is created, persisted in
// the guest's spec and turned into the agent's own flags (src/guest/tier/options.ts) by the driver that starts it.
import { Type, type Static } from '@sinclair/typebox';
import { HylicsError } from './errors/index.js';
import { parseDuration } from './units.js';
import { DEFAULT_TIER_PROMOTE, TIER_PROMOTE_MODES, tierPromoteMode } from './tier-promote.js';

export { DEFAULT_TIER_PROMOTE, TIER_PROMOTE_MODES, tierPromoteMode, type TierPromoteMode } from './tier-promote.js';

/** The agent's defaults (src/guest/tier/store.ts uses the same): a file unused this long moves to the disk tier. */
export const DEFAULT_TIER_IDLE_MS = 60_000;
/** Shortest idle time the host passes on (0 = no idle eviction); the agent sweeps every idle/4, at least 1 ms. */
export const MIN_TIER_IDLE_MS = 500;
export const MAX_TIER_IDLE_MS = 7 * 24 * 3_600_000;
/** A disk tier path the agent gets on its command line (and a microVM's kernel command line): short, plain. */
const DISK_DIR_RE = /^(\/[A-Za-z0-9._-]+)+$/;
const DISK_DIR_MAX = 200;

export const TierSettingsBody = Type.Object({
  idle: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Number()], { description: 'a file not used for this long moves to the disk tier: milliseconds or 500ms / 10s / 2m; 0 = never (default 60s)' })),
  promote: Type.Optional(Type.Union([
    Type.Boolean(),
    Type.Union([Type.Literal('background'), Type.Literal('sync'), Type.Literal('off'), Type.Literal('on')]),
  ], { description: 'move a disk-tier file back into the share on access when there is room: "background" (default; the lookup answers the disk-tier path and the copy runs after), "sync" (the copy first, the task waits for it), "off"; true / "on" = the default, false = "off"' })),
  diskDir: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the disk tier in the guest, or "none" for no tiered store (sandbox: only its default or none; microVM: beneath /mnt/disk)' })),
}, { additionalProperties: false });
export type TierSettingsBody = Static<typeof TierSettingsBody>;

/** What is persisted (GuestSpec.tier) and shown (GuestView.tier): every field resolved. */
export const TierSettingsView = Type.Object({
  idleMs: Type.Integer({ description: '0 = no idle eviction' }),
  promote: Type.Union([Type.Literal('background'), Type.Literal('sync'), Type.Literal('off')]),
  diskDir: Type.Union([Type.String(), Type.Null()], { description: 'null: the agent runs without a tiered store' }),
});
export type TierSettings = Static<typeof TierSettingsView>;

/** Where a driver lets the disk tier be: its default, and whether another absolute directory beneath `under` may be
 * given (undefined: only the default or none). */
export interface DiskTierRule { driver: string; defaultDir: string; under?: string }

const bad = (param: string, msg: string, value: unknown): never => {
  throw new HylicsError('HYLICS_ERR_TIER_INVALID_SETTING', msg, { param, value: String(value) });
};

function idleMs(v: string | number): number {
  let ms: number;
  try { ms = parseDuration(v, 'tier idle', true); } catch { ms = NaN; }
  if (!Number.isFinite(ms)) return bad('idle', `tier idle must be a duration such as 500ms, 10s or 2m (0 = never), got ${JSON.stringify(v)}`, v);
  const r = Math.round(ms);
  if (r !== 0 && (r < MIN_TIER_IDLE_MS || r > MAX_TIER_IDLE_MS)) {
    bad('idle', `tier idle must be 0 (never) or between ${MIN_TIER_IDLE_MS} ms and ${MAX_TIER_IDLE_MS} ms (7 days), got ${String(v)}`, v);
  }
  return r;
}

/** Check a `tier` section whole (throws HYLICS_ERR_TIER_INVALID_SETTING, nothing changed); undefined stays undefined
 * (the agent's defaults). */
export function parseTierSettings(
  body: TierSettingsBody | undefined,
  rule: DiskTierRule | undefined,
): TierSettings | undefined {
  if (body === undefined) return undefined;
  if (!rule) return bad('tier', 'this driver does not start the guest agent (a libvirt guest\'s agent takes its tier flags where it is installed, e.g. contrib/guest/cloud-init.yaml)', 'tier');
  const idle = body.idle === undefined ? DEFAULT_TIER_IDLE_MS : idleMs(body.idle);
  let diskDir: string | null = rule.defaultDir;
  if (body.diskDir === 'none') diskDir = null;
  else if (body.diskDir !== undefined && body.diskDir !== rule.defaultDir) {
    const d = body.diskDir;
    if (!DISK_DIR_RE.test(d) || d.length > DISK_DIR_MAX || d.split('/').some((c) => c === '.' || c === '..')) {
      bad('diskDir', `the disk tier must be an absolute directory of letters, digits, '.', '_' and '-' (no '.' or '..' components, at most ${DISK_DIR_MAX} characters) or "none", got ${JSON.stringify(d)}`, d);
    }
    if (!rule.under) bad('diskDir', `${rule.driver} guests keep their disk tier at ${rule.defaultDir} (give "none" for no tiered store), got ${JSON.stringify(d)}`, d);
    else if (!d.startsWith(`${rule.under}/`)) bad('diskDir', `a ${rule.driver} guest's disk tier must lie beneath ${rule.under} (its writable disk), got ${JSON.stringify(d)}`, d);
    diskDir = d;
  }
  const promote = body.promote === undefined ? DEFAULT_TIER_PROMOTE : tierPromoteMode(body.promote);
  if (promote === undefined) return bad('promote', `tier promote must be ${TIER_PROMOTE_MODES.join(', ')} (or on = ${DEFAULT_TIER_PROMOTE}), got ${JSON.stringify(body.promote)}`, body.promote);
  return { idleMs: idle, promote, diskDir };
}

/** A persisted record's settings as they are shown and used now: records made before the promote modes hold a
 * boolean (true = promotion on, now the default mode). */
export function normalTierSettings(t: TierSettings): TierSettings {
  return { ...t, promote: tierPromoteMode(t.promote) ?? DEFAULT_TIER_PROMOTE };
}

/** The agent flags for these settings (src/guest/tier/options.ts TIER_ARGS); `defaultDir` when none were given. */
export function tierAgentArgs(t: TierSettings | undefined, defaultDir: string): string[] {
  if (!t) return ['--disk-tier', defaultDir];
  if (t.diskDir === null) return ['--disk-tier', 'none'];
  return ['--disk-tier', t.diskDir, '--tier-idle', `${t.idleMs}ms`, '--tier-promote', tierPromoteMode(t.promote) ?? DEFAULT_TIER_PROMOTE];
}
