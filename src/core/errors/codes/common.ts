import type { ErrorTable } from '../types.js';

/** Codes shared by every layer. */
export const COMMON = {
  HYLICS_ERR_INTERNAL: { http: 500, doc: 'An unexpected failure inside Hylics; the message and the daemon log say more. Report it.' },
  HYLICS_ERR_INVALID_ARGUMENT: { http: 400, exit: 2, doc: 'A parameter is malformed or out of range (the message names it); nothing was changed.' },
  HYLICS_ERR_INVALID_NAME: { http: 400, exit: 2, doc: 'A guest name must be 1-32 characters of a-z, 0-9 and -, starting with a letter; nothing was changed.' },
  HYLICS_ERR_INVALID_SIZE: { http: 400, exit: 2, doc: 'A size is not a positive byte count (accepted: 1234, 64K, 64M, 2G, 1T, also KiB/MiB/GiB forms) or is out of range.' },
  HYLICS_ERR_NOT_ROOT: { http: 403, doc: 'The operation needs root (CAP_SYS_ADMIN / CAP_NET_ADMIN): mounts, namespaces, cgroups and nftables do.' },
  HYLICS_ERR_DAEMON_UNREACHABLE: { http: 503, doc: 'The CLI could not reach hylicsd on the state dir\'s socket: start it with `hylics daemon`, or pass the right --state-dir.' },
  HYLICS_ERR_NOT_FOUND: { http: 404, doc: 'The requested API route or object does not exist.' },
  HYLICS_ERR_CONFLICT: { http: 409, doc: 'The operation conflicts with the current state (the message says which); nothing was changed.' },
  HYLICS_ERR_TIMEOUT: { http: 504, doc: 'An operation did not finish before its deadline; it was cancelled and its partial effects undone.' },
  HYLICS_ERR_MISSING_DEPENDENCY: { http: 500, doc: 'A host program or package Hylics needs is missing (the message names it and the Debian package that brings it).' },
  HYLICS_ERR_STATE_CORRUPT: { http: 500, doc: 'A persisted state file could not be parsed; it was left in place (renamed *.corrupt) for inspection.' },
} as const satisfies ErrorTable;
