// The tiered store's promote modes, apart from ./tier-settings.ts (whose schemas need @sinclair/typebox): the CLI's
// `guest` commands (loaded by `hylics guest ls`, bench/cli-latency) check --tier-promote with these alone.

/** How a lookup of a disk-tier file promotes it back into the share (docs/tier.md "Promotion"): 'background' answers
 * the disk-tier path at once and copies in the background (the default: the task never waits for the copy), 'sync'
 * copies first and answers the share's path (the task pays the copy; the behaviour before #9's follow-up), 'off'
 * never on a lookup. */
export const TIER_PROMOTE_MODES = ['background', 'sync', 'off'] as const;
export type TierPromoteMode = (typeof TIER_PROMOTE_MODES)[number];
export const DEFAULT_TIER_PROMOTE: TierPromoteMode = 'background';

/** A promote value as given (flag, body, or an older record's boolean) -> the mode; 'on' and true are the default
 * mode, 'off' and false off; undefined for anything else. */
export function tierPromoteMode(v: unknown): TierPromoteMode | undefined {
  if (v === true || v === 'on') return DEFAULT_TIER_PROMOTE;
  if (v === false) return 'off';
  return (TIER_PROMOTE_MODES as readonly unknown[]).includes(v) ? (v as TierPromoteMode) : undefined;
}
