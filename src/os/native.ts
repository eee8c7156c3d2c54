// The only importer of the native addon (native/build/Release/hylics_native.node). It gives guest-proof file access
// inside a share (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, regular files only)
// and a zero-copy file -> socket path (sendfile(2) on a dedicated I/O thread). When the addon cannot load (not
// built, other platform) or is refused as older than this code (HYLICS_ERR_NATIVE_ADDON_STALE: an export missing) it
// says so once and uses JS paths with the same security guarantees: a component-by-component walk with
// O_PATH|O_NOFOLLOW through /proc/self/fd, and a read stream piped to the socket. Socket offload needs the addon.
import { closeSync, createReadStream, fstatSync, openSync, readdirSync, constants as C } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { HylicsError, isErrorCode } from '../core/errors/index.js';
import { codeForErrno, errnoOf, type ErrnoCall } from '../core/errors/errno.js';
import { PACKAGE_ROOT } from './self.js';

export interface OpenedFile {
  fd: number;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  mode: number;
}

export interface Addon {
  openBeneath(dirFd: number, relPath: string, wantDir?: boolean): OpenedFile;
  sendfile(
    outFd: number,
    inFd: number,
    offset: number,
    count: number,
    jobId: number,
    stallMs?: number,
  ): Promise<number>;
  sendfileNow(outFd: number, inFd: number, offset: number, maxBytes: number): number;
  abortSendfile(jobId: number): void;
  tcpRepairDump(fd: number): NativeTcpState;
  tcpRepairRestore(
    state: NativeTcpState,
    opts: {
      transparent?: boolean;
      replaceFd?: number;
      inPlace?: boolean;
      repairOff?: -1 | 0 | 1;
      dropFilter?: boolean;
    },
  ): number;
  tcpNames(fd: number): { localAddr: string; localPort: number; remoteAddr: string; remotePort: number };
  recvWithFd(unixFd: number, maxBytes: number): { data: Buffer; fd: number; truncated: boolean } | null;
  sendWithFd(unixFd: number, data: Buffer, fd: number): number;
  /** Attach/detach a socket filter that drops every packet. */
  dropFilter(fd: number, on: boolean): void;
  tcpRepair(fd: number, value: -1 | 0 | 1): void;
  tcpQueues(fd: number): { outq: number; unsent: number; inq: number; state: number };
  closeFd(fd: number): void;
  shutdownWrite(fd: number): void;
  /** SO_RCVBUF to `bytes`; returns the kernel's (doubled) value. */
  setRecvBuffer(fd: number, bytes: number): number;
  abortClose(fd: number): void;
  /** One netlink batch of nftables set element changes in table `ip <table>` (not add: delete, or with destroy
   *  DESTROYSETELEM, no error when the element is absent; EINVAL on a kernel before 6.3). */
  nftSetElems(table: string, ops: Array<{ set: string; add: boolean; key: Buffer; destroy?: boolean }>): void;
  /** Socket offload's host part as one job on the sendfile thread: send, wait for the ACKs, freeze and dump
   *  (src/os/tcp-repair.ts sendDrainFreeze). */
  offloadTransfer(
    outFd: number,
    inFd: number,
    offset: number,
    count: number,
    jobId: number,
    stallMs: number,
    drainMaxUnacked: number,
    freeze: boolean,
    pollUs: number,
    head?: Buffer,
    hushTos?: number,
    /** The socket is another process's (the descriptor copy): sent with pread + send(MSG_DONTWAIT), never sendfile,
     *  so that process clearing O_NONBLOCK cannot block the I/O thread; its flags are left alone; closed off-thread. */
    sharedOut?: boolean,
  ): Promise<{
    bytes: number;
    /** Bytes of `head` the socket took (all of it unless the send failed). */
    headBytes: number;
    drained?: 'ok' | 'closing' | 'gone' | 'aborted';
    drainMs?: number;
    filtered: boolean;
    /** Packed as tcpHandoffFreeze's (src/os/tcp-repair.ts unpackState). */
    state?: Buffer;
    freezeError?: unknown;
  }>;
  /** Drop filter on, TCP_REPAIR on and dump, in one call; the state packed in one Buffer (src/os/tcp-repair.ts
   *  unpackState). */
  tcpHandoffFreeze(fd: number, hushTos?: number): Buffer;
  /** tcpRepairRestore of a packed state, thawed; flags 1 transparent, 2 inPlace, 4 dropFilter, 8 TCP_NODELAY
   */
  tcpHandoffRestore(packed: Buffer, replaceFd: number, flags: number, tos?: number, prio?: number): number;
  /** IP_TOS and SO_PRIORITY as saved (tos >= 0), TCP_REPAIR off, the drop filter detached. */
  tcpHandoffThaw(fd: number, tos: number, prio: number): void;
  /** SO_PEERPIDFD of a connected Unix socket: a pidfd of the process that connected (close-on-exec). */
  peerPidfd(unixFd: number): number;
  /** pidfd_getfd of `fd` in the process `pidfd`, kept only if it is a non-blocking connected IPv4 TCP socket in the
   *  network namespace (st_dev, st_ino) given; else closed and refused (`code` HYLICS_ERR_OFFLOAD_FD_REFUSED and
   *  `why`). */
  takePeerSocket(pidfd: number, fd: number, nsDev: number, nsIno: number): {
    fd: number; localAddr: string; localPort: number; remoteAddr: string; remotePort: number; state: number;
  };
  /** Close a duplicate of another process's socket on a thread of its own (its close may wait for SO_LINGER). */
  closeShared(fd: number): void;
  /** The addon's interface version (ADDON_VERSION): raised when a call takes a new argument, which an older build
   *  would silently ignore (e.g. offloadTransfer's head, version 4). */
  version: number;
}

/** A frozen TCP connection as the addon dumps and restores it (src/os/tcp-repair.ts wraps it). */
export interface NativeTcpState {
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  sendSeq: number;
  recvSeq: number;
  sendQueue: Buffer;
  unsentBytes: number;
  recvQueue: Buffer;
  mss: number;
  timestamp: number;
  options: number;
  sndWscale: number;
  rcvWscale: number;
  window: { sndWl1: number; sndWnd: number; maxWindow: number; rcvWnd: number; rcvWup: number };
}

const ADDON_PATH = join(PACKAGE_ROOT, 'native', 'build', 'Release', 'hylics_native.node');

/** Every export the code uses, and its type (a Record over the interface's keys: none can be left out). The addon is
 *  built from source in the same tree, so there is no fallback for an older build: one that lacks any of these
 *  (a checkout that skipped `npm run build:native` after pulling) is refused as a whole. */
/** The interface version this code needs (native/src/hylics_native.cc exports `version`): an older build is stale. */
export const ADDON_VERSION = 8;

const ADDON_EXPORTS: Readonly<Record<keyof Addon, 'function' | 'number'>> = {
  openBeneath: 'function', sendfile: 'function', sendfileNow: 'function', abortSendfile: 'function',
  tcpRepairDump: 'function', tcpRepairRestore: 'function', tcpNames: 'function', recvWithFd: 'function',
  sendWithFd: 'function', dropFilter: 'function', tcpRepair: 'function', tcpQueues: 'function', closeFd: 'function',
  shutdownWrite: 'function', setRecvBuffer: 'function', abortClose: 'function', nftSetElems: 'function',
  offloadTransfer: 'function', tcpHandoffFreeze: 'function', tcpHandoffRestore: 'function', tcpHandoffThaw: 'function',
  peerPidfd: 'function', takePeerSocket: 'function', closeShared: 'function', version: 'number',
};

/**
 * `loaded` as the Addon this code needs, or HYLICS_ERR_NATIVE_ADDON_STALE naming the missing exports or the old
 * version (`path`: where
 * it was loaded from, for the message). Exported for the test that holds a stale build to it.
 */
export function checkAddon(loaded: unknown, path = ADDON_PATH): Addon {
  const o = (typeof loaded === 'object' || typeof loaded === 'function') && loaded !== null ? (loaded as Record<string, unknown>) : {};
  const missing = Object.entries(ADDON_EXPORTS).filter(([k, type]) => typeof o[k] !== type).map(([k]) => k);
  const version = typeof o.version === 'number' ? o.version : undefined;
  if (missing.length > 0 || version === undefined || version < ADDON_VERSION) {
    const what = missing.length > 0 ? `missing: ${missing.join(', ')}` : `version ${version}, this code needs ${ADDON_VERSION}`;
    throw new HylicsError(
      'HYLICS_ERR_NATIVE_ADDON_STALE',
      `the native addon ${path} is older than this code (${what}); run \`npm run build:native\``,
      { path, missing, version: version ?? null, needed: ADDON_VERSION },
    );
  }
  return loaded as Addon;
}

let addon: Addon | null = null;
let loadError: string | undefined;
let staleError: HylicsError | undefined;
let openat2Works = true;
let warned = false;

function load(): void {
  if (process.env.HYLICS_NATIVE === '0') { loadError = 'disabled by HYLICS_NATIVE=0'; return; }
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH);
  } catch (e) {
    loadError = (e as Error).message.split('\n')[0];
    return;
  }
  try {
    addon = checkAddon(loaded);
  } catch (e) {
    staleError = e as HylicsError;
    loadError = `${staleError.code}: ${staleError.message}`;
  }
}
load();

/** The addon for the TCP_REPAIR wrapper (src/os/tcp-repair.ts), or why it is not loaded (`stale`: it was refused
 *  as older than this code, HYLICS_ERR_NATIVE_ADDON_STALE). */
export function nativeAddon(): { addon: Addon | null; reason?: string; stale?: HylicsError } {
  if (addon) return { addon };
  return { addon: null, reason: loadError ?? 'not loaded', ...(staleError ? { stale: staleError } : {}) };
}

function warnOnce(): void {
  if (warned || addon) return;
  warned = true;
  process.stderr.write(`hylics: native addon not loaded (${loadError}); using the JS path (same checks, no zero-copy send). Build it with \`npm run build:native\`.\n`);
}

/** What this process uses; the module workers report it and the bench prints it. */
export function nativeStatus(): { loaded: boolean; reason?: string; open: 'openat2' | 'js-walk'; send: 'sendfile' | 'stream' } {
  return {
    loaded: addon !== null,
    ...(loadError === undefined ? {} : { reason: loadError }),
    open: addon && openat2Works ? 'openat2' : 'js-walk',
    send: addon ? 'sendfile' : 'stream',
  };
}

/**
 * An addon error as a registry error. The addon names the errno; the code comes from the one errno table
 * (core/errors/errno.ts) for this kind of call, unless the addon set one for a condition that is not an errno
 * (a file that is not a regular one, a file changed while opening).
 */
export function fromNative(
  e: unknown,
  call: ErrnoCall,
  what: string,
  details: Record<string, unknown> = {},
): HylicsError {
  if (e instanceof HylicsError) return e;
  const err = e as { code?: unknown; errno?: unknown; message?: string; bytesSent?: number; headBytes?: number };
  const code = isErrorCode(err.code) ? err.code : codeForErrno(call, errnoOf(e));
  const all: Record<string, unknown> = { ...details };
  if (typeof err.errno === 'string') all.errno = err.errno;
  if (typeof err.bytesSent === 'number') all.bytesSent = err.bytesSent;
  if (typeof err.headBytes === 'number') all.headBytes = err.headBytes;
  return new HylicsError(code, `${what}: ${err.message ?? 'failed'}`, all);
}

/**
 * Split a share-relative path into components, refusing what can only be an escape attempt before any system
 * call: absolute paths, `..`, NUL. `.` and empty components are dropped. The kernel checks again (openat2).
 */
export function splitSharePath(relPath: string): string[] {
  if (relPath.includes('\0')) throw new HylicsError('HYLICS_ERR_PATH_ESCAPE', 'path contains NUL', { path: relPath });
  if (relPath.startsWith('/')) throw new HylicsError('HYLICS_ERR_PATH_ESCAPE', `${relPath}: absolute paths are not allowed`, { path: relPath });
  const parts = relPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new HylicsError('HYLICS_ERR_PATH_ESCAPE', `${relPath}: .. is not allowed`, { path: relPath });
  return parts;
}

const O_PATH = 0o10000000; // Linux; not in fs.constants
const O_CLOEXEC = 0o2000000;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function jsErr(e: unknown, relPath: string): HylicsError {
  if (e instanceof HylicsError) return e;
  const errno = errnoOf(e);
  return new HylicsError(codeForErrno('openBeneath', errno), `${relPath}: ${(e as Error).message}`, { path: relPath, errno });
}

/** Open one component beneath `dirFd` without following a link there (O_PATH: opens nothing, never blocks). */
function pathAt(dirFd: number, name: string, relPath: string): number {
  const fd = openSync(`/proc/self/fd/${dirFd}/${name}`, O_PATH | C.O_NOFOLLOW | O_CLOEXEC);
  const type = fstatSync(fd).mode & S_IFMT;
  if (type === S_IFLNK) {
    closeSync(fd);
    throw new HylicsError('HYLICS_ERR_PATH_ESCAPE', `${relPath}: symlinks are not followed`, { path: relPath, errno: 'ELOOP' });
  }
  return fd;
}

/** The JS path, exported so tests hold it to the same cases as the addon. */
export function openBeneathJs(dirFd: number, relPath: string, wantDir = false): OpenedFile {
  return jsOpenBeneath(dirFd, relPath, wantDir);
}

// The JS path: every component opened with O_PATH|O_NOFOLLOW relative to the previous one's fd (via its
// /proc/self/fd entry, which names our own fd, not a guest-controlled link), `..` refused up front, the final
// object checked by fstat and reopened through its own O_PATH fd, so a swap after the check opens nothing new.
function jsOpenBeneath(dirFd: number, relPath: string, wantDir: boolean): OpenedFile {
  const parts = splitSharePath(relPath);
  const opened: number[] = [];
  try {
    let cur = dirFd;
    for (const name of parts) {
      const fd = pathAt(cur, name, relPath);
      opened.push(fd);
      cur = fd;
    }
    const st0 = fstatSync(cur);
    const type = st0.mode & S_IFMT;
    if (wantDir ? type !== S_IFDIR : type !== S_IFREG) {
      throw wantDir
        ? new HylicsError('HYLICS_ERR_FILE_NOT_FOUND', `${relPath}: not a directory`, { path: relPath, errno: 'ENOTDIR' })
        : new HylicsError('HYLICS_ERR_NOT_REGULAR_FILE', `${relPath}: not a regular file`, { path: relPath });
    }
    const fd = openSync(`/proc/self/fd/${cur}`, C.O_RDONLY | C.O_NONBLOCK | C.O_NOCTTY | O_CLOEXEC | (wantDir ? C.O_DIRECTORY : 0));
    const st = fstatSync(fd);
    if (st.ino !== st0.ino || st.dev !== st0.dev) {
      closeSync(fd);
      throw new HylicsError('HYLICS_ERR_NOT_REGULAR_FILE', `${relPath}: changed while opening`, { path: relPath });
    }
    return { fd, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev, mode: st.mode };
  } catch (e) {
    throw jsErr(e, relPath);
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}

function openAny(dirFd: number, relPath: string, wantDir: boolean): OpenedFile {
  const parts = splitSharePath(relPath);
  const clean = parts.length === 0 ? '.' : parts.join('/');
  if (addon && openat2Works) {
    try {
      return addon.openBeneath(dirFd, clean, wantDir);
    } catch (e) {
      const err = fromNative(e, 'openBeneath', relPath, { path: relPath });
      if (err.code !== 'HYLICS_ERR_OPENAT2_UNAVAILABLE') throw err;
      openat2Works = false;
      process.stderr.write('hylics: openat2(2) is unavailable (Linux < 5.6); using the JS path walk\n');
    }
  }
  warnOnce();
  return jsOpenBeneath(dirFd, clean, wantDir);
}

/**
 * Open `relPath` (relative, inside the directory `dirFd`) for reading. Only a regular file comes back; symlinks,
 * magic links, `..`, absolute paths, FIFOs and devices are refused (HYLICS_ERR_PATH_ESCAPE, _NOT_REGULAR_FILE,
 * _FILE_NOT_FOUND, _FILE_ACCESS). Never blocks (O_NONBLOCK; FIFOs/devices are never opened for I/O).
 * The caller owns the returned fd.
 */
export function openBeneath(dirFd: number, relPath: string): OpenedFile {
  return openAny(dirFd, relPath, false);
}

/** As openBeneath, for a directory (a module root inside a share). */
export function openDirBeneath(dirFd: number, relPath: string): OpenedFile {
  return openAny(dirFd, relPath, true);
}

/** Open a share's top directory (the host's own path, not guest-controlled except for its last component). */
export function openShareDir(path: string): number {
  try {
    const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW | O_CLOEXEC);
    return fd;
  } catch (e) {
    throw jsErr(e, path);
  }
}

/** Names in a directory we hold an fd of (no path re-resolution: /proc/self/fd/N is that very directory). */
export function readDirFd(dirFd: number): string[] {
  return readdirSync(`/proc/self/fd/${dirFd}`);
}

let nextJob = 1;
/**
 * Largest non-blocking sendfile done on the calling thread before handing over to the I/O thread, when the caller
 * does not say (HYLICS_SENDFILE_INLINE overrides; default 0: everything on the I/O thread).
 */
const INLINE_MAX = process.env.HYLICS_SENDFILE_INLINE !== undefined ? Number(process.env.HYLICS_SENDFILE_INLINE) : 0;

/**
 * Send `count` bytes of file `fd` from `offset` to `socket` after whatever the socket already flushed.
 * Native: sendfile(2) on the addon's I/O thread (zero copy; the event loop and the libuv pool are never held).
 * Fallback: fs.createReadStream piped into the socket (not ended). Resolves with the bytes sent; rejects with
 * HYLICS_ERR_PEER_CLOSED (client went away; details.bytesSent), _SEND_STALLED or _NATIVE_IO.
 * The caller must not write to the socket until this settles, and keeps `fd` open until then.
 */
export async function sendFileToSocket(
  socket: Socket,
  fd: number,
  offset: number,
  count: number,
  opts: { stallMs?: number; forceStream?: boolean; inlineMax?: number } = {},
): Promise<number> {
  if (count === 0) return 0;
  const sockFd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (addon && !opts.forceStream && typeof sockFd === 'number' && sockFd >= 0) {
    // optionally first what the socket takes right now, on this thread (non-blocking, at most inlineMax bytes);
    // the rest on the I/O thread, which waits for writability without holding the event loop
    let first = 0;
    const inlineMax = opts.inlineMax ?? INLINE_MAX;
    if (inlineMax > 0) {
      try {
        first = addon.sendfileNow(sockFd, fd, offset, Math.min(count, inlineMax));
      } catch (e) {
        throw fromNative(e, 'send', 'sendfile', { path: 'sendfile' });
      }
      if (first === count) return count;
    }
    const id = nextJob++;
    const onClose = (): void => addon!.abortSendfile(id);
    socket.once('close', onClose);
    try {
      return first + (await addon.sendfile(sockFd, fd, offset + first, count - first, id, opts.stallMs ?? 120_000));
    } catch (e) {
      const err = fromNative(e, 'send', 'sendfile', { path: 'sendfile' });
      if (typeof err.details?.bytesSent === 'number') err.details.bytesSent += first;
      throw err;
    } finally {
      socket.off('close', onClose);
    }
  }
  if (socket.destroyed)
    throw new HylicsError('HYLICS_ERR_PEER_CLOSED', 'socket closed before sending', { bytesSent: 0 });
  if (!opts.forceStream) warnOnce();
  return streamToSocket(socket, fd, offset, count);
}

/**
 * A read stream that owns its own fd for the file behind `fd` (reopened through our own /proc/self/fd entry:
 * same inode, no path resolution). fs.ReadStream closes its fd on destroy() even with autoClose: false, so it
 * must never be handed the caller's fd: a double close would hit whatever reuses the number (a socket...).
 */
export function ownedReadStream(
  fd: number,
  start: number,
  end: number,
  highWaterMark = 256 * 1024,
): ReturnType<typeof createReadStream> {
  const own = openSync(`/proc/self/fd/${fd}`, C.O_RDONLY | O_CLOEXEC);
  return createReadStream('', { fd: own, start, end, autoClose: true, highWaterMark });
}

function streamToSocket(socket: Socket, fd: number, offset: number, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const rs = ownedReadStream(fd, offset, offset + count - 1);
    const onClose = (): void => { rs.destroy(); reject(new HylicsError('HYLICS_ERR_PEER_CLOSED', 'client closed the connection', { bytesSent: sent })); };
    socket.once('close', onClose);
    rs.on('data', (chunk: Buffer | string) => {
      sent += chunk.length;
      if (!socket.write(chunk)) { rs.pause(); socket.once('drain', () => rs.resume()); }
    });
    rs.on('error', (e) => { socket.off('close', onClose); reject(jsErr(e, 'read')); });
    rs.on('end', () => { socket.off('close', onClose); resolve(sent); });
  });
}
