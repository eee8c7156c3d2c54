// The share orchestrator (paper §5, issue #9 item 4): carries out a size decision on a live guest.
//   grow:   remount the tmpfs larger, then tell the guest (event share.resized) so its tier may promote files.
//   shrink: ask the guest's tier manager (op tier.shrink) to bring the share's usage down to the new size minus a
//           headroom (also when usage fits, if the guest has a tier manager: it stops its background promotions),
//           wait for its answer (timeout, retries), read the usage on the host (statfs: the guest's
//           own number is not trusted), then remount no lower than that usage. A guest without tier ops (old
//           agent, no agent) or one that frees too little keeps its share at its usage, never below.
// Files are never touched by the host: the kernel refuses a tmpfs remount below its usage, and the share manager
// refuses it before asking, so a shrink can never lose or truncate a file.
import { toHylicsError } from '../../core/errors/index.js';
import { MiB } from '../../core/units.js';

/** Room left free after a shrink, so the guest can write a little before the next interval: max(1 MiB, 5 %). */
export const SHRINK_HEADROOM_MIN_BYTES = MiB;
export const SHRINK_HEADROOM_FRACTION = 0.05;
/** How long the guest's tier manager may take to move files, and how many times it is asked. */
export const SHRINK_DEADLINE_MS = 20_000;
export const SHRINK_ATTEMPTS = 2;
/** Extra time over the deadline for the answer to cross the channel. */
const ANSWER_SLACK_MS = 2000;
const PAGE = 4096;

export function shrinkHeadroom(sizeBytes: number): number {
  return Math.max(SHRINK_HEADROOM_MIN_BYTES, Math.round(sizeBytes * SHRINK_HEADROOM_FRACTION));
}

const pageUp = (b: number): number => Math.ceil(b / PAGE) * PAGE;

export interface OrchestratorDeps {
  usage(guest: string): Promise<{ sizeBytes: number; usedBytes: number }>;
  /** Remount the share at this size (serialized with other operations on the guest, persisted). */
  resize(guest: string, bytes: number): Promise<void>;
  isConnected(guest: string): boolean;
  request(guest: string, op: string, params: unknown, timeoutMs: number): Promise<unknown>;
  notify(guest: string, event: string, data: unknown): void;
}

export interface Applied {
  appliedBytes: number;
  action: 'grow' | 'shrink' | 'hold' | 'clamped' | 'refused';
  /** Why, for the decision log (empty when the target was reached plainly). */
  note: string;
  /** Did the guest answer tier.shrink (false: no tier manager)? undefined when not asked. */
  tierOps?: boolean;
}

interface ShrinkAnswer { usedBytes: number; movedFiles: number; movedBytes: number; ok: boolean; reason?: string }

/**
 * Is this error "the guest does not serve that op" (an agent older than the tier ops: the op is not registered
 * there, or not on its allow-list) rather than a failure of the op?
 */
export function isMissingOp(e: unknown): boolean {
  const code = toHylicsError(e).code;
  return code === 'HYLICS_ERR_CHANNEL_UNKNOWN_OP' || code === 'HYLICS_ERR_CHANNEL_OP_DENIED';
}
function isTimeout(e: unknown): boolean {
  const err = toHylicsError(e);
  return err.code === 'HYLICS_ERR_TIMEOUT' || /timeout|timed out|deadline/i.test(`${err.code} ${err.message}`);
}

export class Orchestrator {
  constructor(private readonly deps: OrchestratorDeps) {}

  /** `knownTierOps` false: the guest is known to have no tier manager, so it is not asked again. */
  async apply(guest: string, targetBytes: number, knownTierOps?: boolean): Promise<Applied> {
    const target = pageUp(targetBytes);
    const u = await this.deps.usage(guest);
    if (target === u.sizeBytes) return { appliedBytes: u.sizeBytes, action: 'hold', note: '' };
    if (target > u.sizeBytes) {
      await this.deps.resize(guest, target);
      this.tell(guest, target);
      return { appliedBytes: target, action: 'grow', note: '' };
    }
    return this.shrink(guest, u, target, knownTierOps);
  }

  private tell(guest: string, sizeBytes: number): void {
    if (this.deps.isConnected(guest)) this.deps.notify(guest, 'share.resized', { sizeBytes });
  }

  private async shrink(
    guest: string,
    before: { sizeBytes: number; usedBytes: number },
    target: number,
    knownTierOps?: boolean,
  ): Promise<Applied> {
    const headroom = shrinkHeadroom(target);
    const wantUsed = Math.max(0, target - headroom);
    const notes: string[] = [];
    let tierOps: boolean | undefined;
    // usage that fits now may not fit at the remount: a guest known to have a tier manager may be promoting files
    // into the share in the background (after the last grow's share.resized), so it is asked too — tier.shrink
    // stops its promotions first, then moves what no longer fits
    const promoting = knownTierOps === true && this.deps.isConnected(guest);
    if (before.usedBytes > wantUsed || promoting) {
      if (!this.deps.isConnected(guest)) notes.push('no agent connected: no tier manager to move files');
      else if (knownTierOps === false) {
        tierOps = false;
        notes.push('the guest agent has no tier manager (tier ops missing)');
      } else {
        for (let attempt = 1; attempt <= SHRINK_ATTEMPTS; attempt++) {
          try {
            const a = (await this.deps.request(
              guest,
              'tier.shrink',
              { targetUsedBytes: wantUsed, deadlineMs: SHRINK_DEADLINE_MS },
              SHRINK_DEADLINE_MS + ANSWER_SLACK_MS,
            )) as ShrinkAnswer;
            tierOps = true;
            notes.push(
              `tier.shrink moved ${a.movedFiles} files (${a.movedBytes} B)${a.ok ? '' : `, short of the target: ${a.reason ?? 'no reason given'}`}`,
            );
            break;
          } catch (e) {
            if (isMissingOp(e)) {
              tierOps = false;
              notes.push(`the guest agent has no tier manager (tier.shrink: ${toHylicsError(e).code})`);
              break;
            }
            const why = isTimeout(e)
              ? `timed out after ${SHRINK_DEADLINE_MS + ANSWER_SLACK_MS} ms`
              : toHylicsError(e).message;
            notes.push(`tier.shrink attempt ${attempt}/${SHRINK_ATTEMPTS} ${why}`);
          }
        }
      }
    }
    // the host's own statfs decides, not the guest's answer; a little slack for what the guest writes meanwhile
    const now = await this.deps.usage(guest);
    const floor = pageUp(
      now.usedBytes + (now.usedBytes > wantUsed ? Math.min(headroom, SHRINK_HEADROOM_MIN_BYTES) : 0),
    );
    const size = Math.max(target, floor);
    if (size >= now.sizeBytes) {
      notes.push(`kept at ${now.sizeBytes} B: ${now.usedBytes} B in use`);
      return {
        appliedBytes: now.sizeBytes,
        action: 'refused',
        note: notes.join('; '),
        ...(tierOps !== undefined ? { tierOps } : {}),
      };
    }
    try {
      await this.deps.resize(guest, size);
    } catch (e) {
      // files grew between the statfs and the remount: the share manager refused, nothing changed
      notes.push(`remount to ${size} B refused: ${toHylicsError(e).message}`);
      const again = await this.deps.usage(guest);
      return {
        appliedBytes: again.sizeBytes,
        action: 'refused',
        note: notes.join('; '),
        ...(tierOps !== undefined ? { tierOps } : {}),
      };
    }
    this.tell(guest, size);
    if (size > target) notes.push(`kept at usage: ${now.usedBytes} B in use, so ${size} B instead of ${target} B`);
    return {
      appliedBytes: size,
      action: size > target ? 'clamped' : 'shrink',
      note: notes.join('; '),
      ...(tierOps !== undefined ? { tierOps } : {}),
    };
  }
}
