// Ops of the guest's tiered store (paper §5): the host's share orchestrator asks the guest's tier manager to
// bring the share's usage below a target before it shrinks the share, and reads the tier's counters each
// control interval for the profiler. Both are served by the guest agent; the host never moves a guest's files.
import { Type, type Static } from '@sinclair/typebox';
import { OPS, defineOp } from '../registry.js';

export const TierShrinkParams = Type.Object({
  /** Bytes in use in the share that the host wants at most, after moves (the new size minus a headroom). */
  targetUsedBytes: Type.Integer({ minimum: 0 }),
  /** How long the guest may take; it answers with what it reached by then. */
  deadlineMs: Type.Integer({ minimum: 1, maximum: 10 * 60 * 1000 }),
}, { additionalProperties: false });
export const TierShrinkResult = Type.Object({
  /** Share bytes in use after the moves, as the guest measured them (statfs of the share). */
  usedBytes: Type.Integer({ minimum: 0 }),
  movedFiles: Type.Integer({ minimum: 0 }),
  movedBytes: Type.Integer({ minimum: 0 }),
  /** usedBytes <= targetUsedBytes. */
  ok: Type.Boolean(),
  /** Why not ok (files held open, disk tier full, deadline), for the decision log. */
  reason: Type.Optional(Type.String({ maxLength: 512 })),
}, { additionalProperties: false });

export const TierStatsParams = Type.Object({}, { additionalProperties: false });
export const TierStatsResult = Type.Object({
  memoryFiles: Type.Integer({ minimum: 0 }),
  memoryBytes: Type.Integer({ minimum: 0 }),
  diskFiles: Type.Integer({ minimum: 0 }),
  diskBytes: Type.Integer({ minimum: 0 }),
  /** Cumulative since the agent started: files moved share -> disk tier, and disk -> share. */
  evictions: Type.Integer({ minimum: 0 }),
  promotions: Type.Integer({ minimum: 0 }),
  /** Cumulative lookups (tier path / tier.path()) answered from the memory tier, and from the disk tier. */
  hits: Type.Integer({ minimum: 0 }),
  misses: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

export type TierShrinkParamsT = Static<typeof TierShrinkParams>;
export type TierShrinkResultT = Static<typeof TierShrinkResult>;
export type TierStatsResultT = Static<typeof TierStatsResult>;

export const TIER_OPS = [
  defineOp({ name: 'tier.shrink', server: 'guest', params: TierShrinkParams, result: TierShrinkResult, doc: 'Move files from the share to the guest\'s disk tier (least recently used first) until the share\'s usage is at most the target, or the deadline passes; the host shrinks the share only after this answer.' }),
  defineOp({ name: 'tier.stats', server: 'guest', params: TierStatsParams, result: TierStatsResult, doc: 'Files and bytes in each tier and cumulative evictions, promotions, hits and misses of the guest\'s tiered store.' }),
];

OPS.register(...TIER_OPS);

declare module '../registry.js' {
  interface OpTypes {
    'tier.shrink': { params: Static<typeof TierShrinkParams>; result: Static<typeof TierShrinkResult> };
    'tier.stats': { params: Static<typeof TierStatsParams>; result: Static<typeof TierStatsResult> };
  }
}
