// The one errno -> registry code table. The native addon and Node report a failed system call by its errno name
// (`err.errno` from the addon, `err.code` from node:fs/net/child_process); what that name means for a caller
// depends on the call, so the table is keyed by the kind of call. Every place that turns an errno into a
// HYLICS_ERR_* code asks `codeForErrno()`; docs/errors.md lists this table (generated).
import type { ErrorCode } from './index.js';

export interface ErrnoRule {
  /** What the call is, for docs/errors.md. */
  readonly doc: string;
  readonly codes: Readonly<Record<string, ErrorCode>>;
  /** The code for any other errno. */
  readonly otherwise: ErrorCode;
}

const FILE_CODES = {
  // RESOLVE_BENEATH: `..` or an absolute path left the directory; RESOLVE_NO_SYMLINKS / O_NOFOLLOW: a link
  EXDEV: 'HYLICS_ERR_PATH_ESCAPE',
  ELOOP: 'HYLICS_ERR_PATH_ESCAPE',
  ENOENT: 'HYLICS_ERR_FILE_NOT_FOUND',
  ENOTDIR: 'HYLICS_ERR_FILE_NOT_FOUND',
  ENAMETOOLONG: 'HYLICS_ERR_FILE_NOT_FOUND',
  EACCES: 'HYLICS_ERR_FILE_ACCESS',
  EPERM: 'HYLICS_ERR_FILE_ACCESS',
  // openat2(2) missing (Linux < 5.6) or its struct larger than the kernel knows
  ENOSYS: 'HYLICS_ERR_OPENAT2_UNAVAILABLE',
  E2BIG: 'HYLICS_ERR_OPENAT2_UNAVAILABLE',
} as const satisfies Record<string, ErrorCode>;

export const ERRNO_CODES = {
  openBeneath: {
    doc: 'opening a file beneath a share (native openat2 or the JS walk)',
    codes: FILE_CODES,
    otherwise: 'HYLICS_ERR_NATIVE_IO',
  },
  send: {
    doc: 'sending a file to a socket (native sendfile)',
    codes: {
      ...FILE_CODES,
      EPIPE: 'HYLICS_ERR_PEER_CLOSED',
      ECONNRESET: 'HYLICS_ERR_PEER_CLOSED',
      ECANCELED: 'HYLICS_ERR_PEER_CLOSED', // aborted by the caller
      ETIMEDOUT: 'HYLICS_ERR_SEND_STALLED', // the peer read nothing for the stall time
    },
    otherwise: 'HYLICS_ERR_NATIVE_IO',
  },
  tcpRepair: {
    doc: 'freezing, dumping or restoring a TCP connection (TCP_REPAIR)',
    codes: {
      EPERM: 'HYLICS_ERR_TCP_REPAIR_DENIED', // no CAP_NET_ADMIN in the owner user namespace of the netns
      ENOPROTOOPT: 'HYLICS_ERR_TCP_REPAIR_UNAVAILABLE', // a kernel without TCP_REPAIR
    },
    otherwise: 'HYLICS_ERR_TCP_REPAIR_FAILED',
  },
  socket: {
    doc: 'other calls on an offloaded socket (queues, close, shutdown)',
    codes: { ENOPROTOOPT: 'HYLICS_ERR_TCP_REPAIR_UNAVAILABLE' },
    otherwise: 'HYLICS_ERR_NATIVE_IO',
  },
  peerFd: {
    doc: "hylicsd taking a guest app's socket descriptor (SO_PEERPIDFD, pidfd_getfd: the descriptor copy)",
    codes: {
      EBADF: 'HYLICS_ERR_OFFLOAD_FD_REFUSED', // the app has no such descriptor
    },
    otherwise: 'HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', // EPERM, ESRCH (the process is gone), ENOPROTOOPT (no SO_PEERPIDFD)
  },
  spawn: {
    doc: 'starting a host program (nft, ip, qemu, ...)',
    codes: { ENOENT: 'HYLICS_ERR_MISSING_DEPENDENCY' },
    otherwise: 'HYLICS_ERR_OS_COMMAND_FAILED',
  },
  apiConnect: {
    doc: "the CLI connecting to hylicsd's API socket",
    codes: {
      EACCES: 'HYLICS_ERR_NOT_ROOT',
      EPERM: 'HYLICS_ERR_NOT_ROOT',
    },
    otherwise: 'HYLICS_ERR_DAEMON_UNREACHABLE',
  },
  diskTier: {
    doc: "writing into the guest's disk tier",
    codes: {
      ENOSPC: 'HYLICS_ERR_TIER_FULL',
      EDQUOT: 'HYLICS_ERR_TIER_FULL',
    },
    otherwise: 'HYLICS_ERR_INTERNAL',
  },
} as const satisfies Record<string, ErrnoRule>;

export type ErrnoCall = keyof typeof ERRNO_CODES;

/** The registry code for a failed call of kind `call` with errno name `errno` (`otherwise` overrides the rule's). */
export function codeForErrno(call: ErrnoCall, errno: unknown, otherwise?: ErrorCode): ErrorCode {
  const rule: ErrnoRule = ERRNO_CODES[call];
  const code = typeof errno === 'string' && Object.prototype.hasOwnProperty.call(rule.codes, errno)
    ? rule.codes[errno]
    : undefined;
  return code ?? otherwise ?? rule.otherwise;
}

/** Does `errno` have a code of its own for this kind of call (not the fallback)? */
export function errnoHasCode(call: ErrnoCall, errno: unknown): boolean {
  return typeof errno === 'string' && Object.prototype.hasOwnProperty.call(ERRNO_CODES[call].codes, errno);
}

/** The errno name Node or the addon put on an error (`code` for Node's own errors, `errno` for the addon's). */
export function errnoOf(e: unknown): string | undefined {
  const err = e as { code?: unknown; errno?: unknown } | null | undefined;
  if (typeof err?.errno === 'string') return err.errno;
  return typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) ? err.code : undefined;
}
