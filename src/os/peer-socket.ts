// The descriptor copy of socket offload (docs/offload-socket.md, "The descriptor copy"): a sandbox guest shares the
// host's kernel, so hylicsd can send on a duplicate of the guest app's own socket instead of restoring a copy with
// TCP_REPAIR. The app is the process at the other end of its direct offload connection, named race-free by
// SO_PEERPIDFD (a pidfd: no pid reuse); pidfd_getfd(2) duplicates the fd the app names, and the addon keeps it only
// if it is a non-blocking, connected IPv4 TCP socket in the guest's network namespace (SIOCGSKNS).
import { statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { HylicsError } from '../core/errors/index.js';
import { fromNative, nativeAddon, type Addon } from './native.js';

function need(): Addon {
  const { addon, reason, stale } = nativeAddon();
  if (stale) throw stale;
  if (!addon) throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', `the descriptor copy needs the native addon (${reason ?? 'not loaded'})`);
  return addon;
}

/** The fd under a Node socket of a Unix (or TCP) connection, or undefined (libuv's handle; Linux). */
export function streamFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** A pidfd of the process that connected to the Unix socket `unixFd` (SO_PEERPIDFD, Linux 6.5+). The caller closes
 *  it (closePidfd). Throws HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE. */
export function peerPidfd(unixFd: number): number {
  try { return need().peerPidfd(unixFd); } catch (e) { throw fromNative(e, 'peerFd', 'SO_PEERPIDFD'); }
}

export function closePidfd(fd: number): void {
  try { need().closeFd(fd); } catch { /* closed */ }
}

/** A network namespace's identity (its nsfs inode): compared with a socket's own (SIOCGSKNS). */
export interface NetnsId { dev: number; ino: number }

/** The identity of the network namespace at `path` (/run/netns/NAME, /proc/PID/ns/net). Throws
 *  HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE when it is not there (a guest being removed): a plain fs error would reach the
 *  guest library as an unknown failure, which it must treat as "bytes may have gone" and destroy the connection. */
export function netnsId(path: string): NetnsId {
  let st;
  try { st = statSync(path); } catch (e) {
    throw new HylicsError('HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE', `the guest's network namespace ${path}: ${(e as Error).message}`, { path });
  }
  return { dev: st.dev, ino: st.ino };
}

export interface PeerSocket {
  /** The duplicate (hylicsd's own fd: close it with closePeerSocket). */
  fd: number;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  /** TCP state (TCP_STATE.ESTABLISHED or CLOSE_WAIT). */
  state: number;
}

/**
 * A duplicate of fd `fd` of the process `pidfd`, only if it is a non-blocking connected IPv4 TCP socket in the
 * network namespace `ns`; nothing about the socket is changed. Throws HYLICS_ERR_OFFLOAD_FD_REFUSED (details.why:
 * no-such-fd, not-socket, not-ipv4, not-tcp, not-connected, other-netns, netns-unknown, blocking) or
 * HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE (pidfd_getfd refused: details.errno).
 */
export function takePeerSocket(pidfd: number, fd: number, ns: NetnsId): PeerSocket {
  const a = need();
  try {
    return a.takePeerSocket(pidfd, fd, ns.dev, ns.ino);
  } catch (e) {
    const why = (e as { why?: unknown }).why;
    throw fromNative(e, 'peerFd', 'descriptor copy', { fd, ...(typeof why === 'string' ? { why } : {}) });
  }
}

/** Close the duplicate without waiting: if the app closed its own fd meanwhile, this is the last reference, and with
 *  SO_LINGER (the app's choice) close(2) would wait up to the linger time on hylicsd's event loop. */
export function closePeerSocket(fd: number): void {
  try { need().closeShared(fd); } catch { /* closed */ }
}
