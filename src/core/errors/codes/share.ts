import type { ErrorTable } from '../types.js';

/** Codes of the share area (see docs/errors.md). */
export const SHARE = {
  HYLICS_ERR_SHARE_EXISTS: { http: 409, doc: 'The guest already has a share (or something is already mounted at its share path); nothing was changed.' },
  HYLICS_ERR_SHARE_NOT_FOUND: { http: 404, doc: 'No share is mounted for this guest (the tmpfs at <state-dir>/guests/<name>/share is missing).' },
  HYLICS_ERR_SHARE_SHRINK_BELOW_USAGE: { http: 409, doc: 'A share cannot shrink below the bytes (or inodes) its files use now; details give used and requested. Delete or evict files first; the share was left as it was.' },
  HYLICS_ERR_SHARE_MOUNT_FAILED: { http: 500, doc: 'Mounting, remounting or unmounting a share\'s tmpfs failed; the message carries the kernel\'s reason and nothing half-done was left.' },
  HYLICS_ERR_SHARE_BUSY: { http: 409, doc: 'The share cannot be unmounted because a process still uses it (a running guest, a shell cd\'d into it); stop the guest first.' },
} as const satisfies ErrorTable;
