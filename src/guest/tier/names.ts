// Names of the tiered store: relative paths, the same in both tiers (memory tier <share>/NAME, disk tier
// <disk-tier>/NAME). Checked lexically before any file system call; the store checks every component again with
// lstat (no symlinks) when it touches a file.
import { HylicsError } from '../../core/errors/index.js';

export const MAX_NAME_BYTES = 1024;
export const MAX_COMPONENT_BYTES = 255;
/** Names starting with this (at any level) are the store's own: temporary copies, never listed or moved. */
export const RESERVED_PREFIX = '.hylics';
/** Temporary copies: `.hylics-tmp-<owner>-<random>` in the destination's directory (same file system as the final
 * name, so the rename is atomic). The owner (os/proc processTag: pid, start time, boot) lets recovery skip a copy a
 * live process is still writing, and only that: a dead writer's pid reused by another process does not match. */
export const TMP_PREFIX = `${RESERVED_PREFIX}-tmp-`;
/** Aside directories: `.hylics-aside-<owner>-<random>/<base>`, beside a file that removeIfSame renamed aside to
 * check it before removing it. A file left there by a dead owner is given its name back by recovery. */
export const ASIDE_PREFIX = `${RESERVED_PREFIX}-aside-`;

/** The components of a store name, or a HylicsError (TIER_BAD_NAME / TIER_ESCAPE) saying why not. */
export function tierName(name: unknown): string[] {
  if (typeof name !== 'string' || name.length === 0) throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', 'a tier name must be a non-empty string', { name: String(name) });
  const shown = JSON.stringify(name.slice(0, 200));
  if (name.includes('\0')) throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', `tier name ${shown} contains NUL`, { name: name.slice(0, 200) });
  if (name.startsWith('/')) throw new HylicsError('HYLICS_ERR_TIER_ESCAPE', `tier name ${shown} is absolute; names are relative to the store`, { name: name.slice(0, 200) });
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', `tier name is longer than ${MAX_NAME_BYTES} bytes`, { name: name.slice(0, 200) });
  const parts = name.split('/');
  for (const p of parts) {
    if (p === '..') throw new HylicsError('HYLICS_ERR_TIER_ESCAPE', `tier name ${shown} has a .. component`, { name });
    if (p === '' || p === '.') throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', `tier name ${shown} has an empty or . component (write it as a plain relative path)`, { name });
    if (p.startsWith(RESERVED_PREFIX)) throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', `tier name ${shown}: components starting with ${RESERVED_PREFIX} are the store's own`, { name });
    if (Buffer.byteLength(p) > MAX_COMPONENT_BYTES) throw new HylicsError('HYLICS_ERR_TIER_BAD_NAME', `tier name ${shown} has a component longer than ${MAX_COMPONENT_BYTES} bytes`, { name });
  }
  return parts;
}

export const isReserved = (entry: string): boolean => entry.startsWith(RESERVED_PREFIX);
