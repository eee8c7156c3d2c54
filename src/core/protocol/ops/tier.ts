// Ops of the guest's tiered store (paper §5): the host's share orchestrator asks the guest's tier manager to
// bring the share's usage below a target before it shrinks the share, and reads the tier's counters each
// control interval for the profiler. Both are served by the guest agent; the host never moves a guest's files.
import { Type, type Static } from '@sinclair/typebox';
import { OPS, defineEvent, defineOp } from '../registry.js';

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

/** App -> agent (local socket only): where a file of the store is now. The agent counts the lookup as a hit
 * (memory tier) or a miss (disk tier), records the use, and may move the file back into the share first. */
export const TierPathParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 1024 }),
  /** Move a disk-tier file back into the share when there is room (default: the agent's setting; true: the
   * agent's way, or in the background when its setting is off; false: leave it). */
  promote: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export const TierPathResult = Type.Object({
  name: Type.String(),
  /** Absolute path in the guest, to open right away (the store does not move a file used in the last seconds). */
  path: Type.String(),
  tier: Type.Union([Type.Literal('memory'), Type.Literal('disk')]),
  /** Where the lookup found it (hit = 'memory'); differs from tier when the file was promoted first ('sync'). */
  foundIn: Type.Union([Type.Literal('memory'), Type.Literal('disk')]),
  /** A disk-tier file with background promotion: true = a copy into the share is queued (path is still the disk
   * tier's, readable throughout), false = not (no room, or the queue is full). Absent otherwise. */
  promoting: Type.Optional(Type.Boolean()),
  sizeBytes: Type.Integer({ minimum: 0 }),
  lastUseMs: Type.Number(),
}, { additionalProperties: false });

/** Names the host used on the guest's behalf in one event (at most, per guest and second). */
export const TIER_USED_MAX_FILES = 1024;
/** Host -> guest: share-relative names the host read from the guest's share for it (socket offload's sends), so
 * the tier manager counts them as uses like the names a host module served (module.event stats). */
export const TierUsedEvent = Type.Object({
  source: Type.Union([Type.Literal('socket-offload')]),
  files: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: TIER_USED_MAX_FILES }),
}, { additionalProperties: false });

export type TierShrinkParamsT = Static<typeof TierShrinkParams>;
export type TierShrinkResultT = Static<typeof TierShrinkResult>;
export type TierStatsResultT = Static<typeof TierStatsResult>;
export type TierPathParamsT = Static<typeof TierPathParams>;
export type TierPathResultT = Static<typeof TierPathResult>;

export const TIER_OPS = [
  defineOp({ name: 'tier.shrink', server: 'guest', params: TierShrinkParams, result: TierShrinkResult, doc: 'Move files from the share to the guest\'s disk tier (least recently used first) until the share\'s usage is at most the target, or the deadline passes; the host shrinks the share only after this answer.' }),
  defineOp({ name: 'tier.stats', server: 'guest', params: TierStatsParams, result: TierStatsResult, doc: 'Files and bytes in each tier and cumulative evictions, promotions, hits and misses of the guest\'s tiered store.' }),
  defineOp({ name: 'tier.path', server: 'agent', params: TierPathParams, result: TierPathResult, doc: 'For apps in the guest: the path of a file of the tiered store in whichever tier holds it; counted as a hit or a miss, its last use recorded, and moved back into the share when there is room: in the background after the answer (default), or first (setting sync).' }),
];

OPS.register(...TIER_OPS);
OPS.registerEvent(
  defineEvent({ name: 'tier.used', from: 'host', data: TierUsedEvent, doc: 'Share-relative names the host read for the guest (the files socket offload sent), at most once a second and 1024 names: the guest\'s tiered store sets their last use to now, as for module.event\'s files.' }),
);

declare module '../registry.js' {
  interface OpTypes {
    'tier.shrink': { params: Static<typeof TierShrinkParams>; result: Static<typeof TierShrinkResult> };
    'tier.stats': { params: Static<typeof TierStatsParams>; result: Static<typeof TierStatsResult> };
    'tier.path': { params: Static<typeof TierPathParams>; result: Static<typeof TierPathResult> };
  }
  interface EventTypes {
    'tier.used': Static<typeof TierUsedEvent>;
  }
}
