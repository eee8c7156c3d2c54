import type { ErrorTable } from '../types.js';

/** Codes of the guest's tiered store (src/guest/tier, docs/tier.md). */
export const TIER = {
  HYLICS_ERR_TIER_BAD_NAME: { http: 400, doc: 'A tier name must be a relative path of 1..1024 bytes with components of 1..255 bytes, no NUL, no empty or `.` components and nothing starting with `.hylics` (the store\'s own files); nothing was changed.' },
  HYLICS_ERR_TIER_ESCAPE: { http: 400, doc: 'The tier name would leave the store: an absolute path or a `..` component. Refused before any file system call; nothing was changed.' },
  HYLICS_ERR_TIER_SYMLINK: { http: 400, doc: 'A component of the tier name is a symlink (or the name is not a regular file / a directory is not a directory) in one of the tiers; the store never follows links, so it cannot be led outside the share or the disk tier. Nothing was changed.' },
  HYLICS_ERR_TIER_NOT_FOUND: { http: 404, doc: 'No file of that name is in either tier (`hylics tier ls` lists them).' },
  HYLICS_ERR_TIER_FULL: { http: 507, doc: 'Neither the share nor the disk tier has room for the file; nothing was stored (a partial copy was removed).' },
  HYLICS_ERR_TIER_UNAVAILABLE: { http: 503, doc: 'A tier directory (the share or the disk tier) is missing or not a directory; the message names it. Check the agent\'s --share / --disk-tier.' },
  HYLICS_ERR_TIER_INVALID_SETTING: { http: 400, doc: 'A guest\'s `tier` settings (guest create `--tier-idle`, `--tier-promote`, `--disk-tier`) are out of range: idle 0 or 500 ms .. 7 days, promote one of background, sync, off (or on = background, a boolean in the API), a disk tier the driver allows (sandbox: its default or `none`; microVM: beneath /mnt/disk), no settings for a libvirt guest. Details name the setting; nothing was created.' },
} as const satisfies ErrorTable;
