// Guest network indexes are host-wide (link hyhN, addresses 10.213.N.x) but each daemon keeps its guests in its
// own state dir. A stopped guest has no link, so the link probe alone let a second daemon take its index, and the
// two guests collided when the first one started again. Each index a daemon holds is claimed in a host-wide
// directory (one file per index: the owner's state dir and guest name, created O_EXCL). A claim whose owner no
// longer has that guest at that index (its state dir or record is gone) is stale and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync, constants as FS } from 'node:fs';
import { join } from 'node:path';

export const NET_CLAIMS_DIR = '/run/hylics-net';

interface Claim { stateDir: string; name: string }

export class NetIndexClaims {
  constructor(private readonly stateDir: string, private readonly dir = NET_CLAIMS_DIR) {}

  /** Claim index `i` for guest `name` of this daemon. False when another daemon's guest holds it. */
  claim(i: number, name: string): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, String(i));
    const mine = JSON.stringify({ stateDir: this.stateDir, name } satisfies Claim);
    try {
      const fd = openSync(path, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW, 0o600);
      try { writeSync(fd, mine); } finally { closeSync(fd); }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = this.read(path);
    if (owner && owner.stateDir === this.stateDir && owner.name === name) return true;
    if (owner && owner.stateDir !== this.stateDir && this.holds(owner, i)) return false;
    // stale (its owner dropped the guest) or our own old claim for a guest of ours that is gone
    writeFileSync(path, mine, { mode: 0o600 });
    return true;
  }

  /** Give index `i` back if this daemon's guest `name` holds it. */
  release(i: number, name: string): void {
    const path = join(this.dir, String(i));
    const owner = this.read(path);
    if (owner && owner.stateDir === this.stateDir && owner.name === name) {
      try { unlinkSync(path); } catch { /* gone */ }
    }
  }

  private read(path: string): Claim | undefined {
    try {
      const c = JSON.parse(readFileSync(path, 'utf8')) as Claim;
      return typeof c.stateDir === 'string' && typeof c.name === 'string' ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** Does the owner's state dir still have that guest at that index? */
  private holds(owner: Claim, i: number): boolean {
    try {
      const s = JSON.parse(readFileSync(join(owner.stateDir, 'state.json'), 'utf8')) as { guests?: Record<string, { network?: { index?: number } }> };
      return s.guests?.[owner.name]?.network?.index === i;
    } catch {
      return false;
    }
  }
}
