import type { ErrorTable } from '../types.js';

/** Codes of the native area (see docs/errors.md): guest-proof file access and the zero-copy send path. */
export const NATIVE = {
  HYLICS_ERR_PATH_ESCAPE: { http: 403, doc: 'A path inside a share tried to leave it (.., an absolute path, a symlink or a /proc magic link on the way); nothing outside the share was opened.' },
  HYLICS_ERR_NOT_REGULAR_FILE: { http: 403, doc: 'The path names a FIFO, device, socket or directory (or was swapped while being opened); only regular files are served from a share.' },
  HYLICS_ERR_FILE_NOT_FOUND: { http: 404, doc: 'No such file inside the share (or a component of the path is not a directory).' },
  HYLICS_ERR_FILE_ACCESS: { http: 403, doc: 'The file exists in the share but the unprivileged module worker may not read it (check its mode: modules read as nobody).' },
  HYLICS_ERR_OPENAT2_UNAVAILABLE: { http: 500, doc: 'The kernel has no openat2(2) (Linux < 5.6); Hylics switches to its JS path walk, which keeps the same guarantees.' },
  HYLICS_ERR_PEER_CLOSED: { http: 499, doc: 'The client closed the connection (or the transfer was aborted) before the whole body was sent; the bytes sent so far are in details.' },
  HYLICS_ERR_SEND_STALLED: { http: 504, doc: 'The client stopped reading for longer than the stall limit during a sendfile transfer; the connection was closed.' },
  HYLICS_ERR_NATIVE_ADDON_STALE: { http: 500, doc: 'The native addon (native/build/Release/hylics_native.node) is older than the code: it lacks exports the code needs, or its interface version is below the one the code needs (the message says which); it is not used (file paths take the JS walk, socket offload is off). Run `npm run build:native`.' },
  HYLICS_ERR_NATIVE_IO: { http: 500, doc: 'A system call of the native path failed (details.errno names it).' },
} as const satisfies ErrorTable;
