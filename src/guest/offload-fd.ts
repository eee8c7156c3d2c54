// Socket offload for apps in any language (issue #10; docs/offload-socket.md "Other languages"): the app hands its
// connected TCP socket to the guest agent over the agent's offload socket with SCM_RIGHTS, and the agent does the
// handoff (it has CAP_NET_ADMIN; the app needs none, as with passt-repair). The connection is restored on the very
// socket the app passed (same open file description), so the app's fd carries on with the sequence numbers
// advanced. Protocol, one exchange per connection to /run/hylics/offload.sock:
//   app -> agent: one message: a JSON object { path, offset?, count?, mode?, head? } with the socket fd attached
//                 (SCM_RIGHTS); head: base64 bytes sent before the range (the app's response headers, at most
//                 MAX_HANDOFF_HEAD_BYTES), by the host with the range's first bytes, or by the agent on a fallback
//   agent -> app: one JSON line { ok: true, bytes, by: "host"|"guest", reason?, finished? }
//                 or { ok: false, error: { code, message, details? } }
// The app must not read or write the socket until the answer came. `finished` (terminal mode) or an error with the
// socket frozen (code HYLICS_ERR_PEER_CLOSED, or a lost handoff): the app closes its socket (no segment goes out).
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { relative, resolve } from 'node:path';
import { HylicsError, toHylicsError } from '../core/errors/index.js';
import { MAX_HANDOFF_HEAD_BYTES, type FallbackReason } from '../core/protocol/index.js';
import { listenUnix, closeUnixServer } from '../os/channel/index.js';
import { closeFd, quiesceQueues, recvWithFd, sendfileFd, tcpNames } from '../os/tcp-repair.js';
import { handoffQuiesced, reasonOf, QUIESCE_MAX_UNACKED, QUIESCE_TIMEOUT_MS, type SendfileResult } from './offload.js';

export const DEFAULT_OFFLOAD_SOCKET = '/run/hylics/offload.sock';
/** Largest request message (a JSON object with a path of at most 4096 bytes and a head of at most 16 KiB, base64). */
export const MAX_REQUEST_BYTES = 32 * 1024;
/** How long an app may take to send its request after connecting. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Poll interval while waiting for the request (the Unix socket is not read by libuv: it would drop the fd). */
const RECV_POLL_MS = 2;
/** A guest-side send that makes no progress for this long fails (the client is gone). */
const GUEST_STALL_MS = 120_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface FdSendRequest { path: string; offset?: number; count?: number; mode?: 'return' | 'terminal'; head?: string }
/** The host ops the handoff needs (the agent's channel to the host). */
export type HostRequest = (op: string, params: unknown, opts: { timeoutMs: number }) => Promise<unknown>;

function checkRequest(v: unknown): FdSendRequest {
  const r = v as Record<string, unknown>;
  const bad = (m: string): never => { throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `offload request: ${m}`); };
  if (typeof r !== 'object' || r === null || Array.isArray(r)) bad('not a JSON object');
  for (const k of Object.keys(r)) if (!['path', 'offset', 'count', 'mode', 'head'].includes(k)) bad(`unknown field ${JSON.stringify(k)}`);
  if (typeof r.path !== 'string' || r.path.length === 0 || r.path.length > 4096) bad('path must be a string of 1-4096 characters');
  for (const k of ['offset', 'count'] as const) if (r[k] !== undefined && !(Number.isSafeInteger(r[k]) && (r[k] as number) >= 0)) bad(`${k} must be a whole number >= 0`);
  if (r.mode !== undefined && r.mode !== 'return' && r.mode !== 'terminal') bad('mode must be return or terminal');
  if (r.head !== undefined) {
    const n = typeof r.head === 'string' ? Buffer.byteLength(r.head, 'base64') : -1;
    if (n < 1 || n > MAX_HANDOFF_HEAD_BYTES || Buffer.from(r.head as string, 'base64').toString('base64') !== r.head)
      bad(`head must be canonical base64 of 1-${MAX_HANDOFF_HEAD_BYTES} bytes`);
  }
  return r as unknown as FdSendRequest;
}

/** A tail up to this size is written with write(2) as the app's socket is (blocking or not: the sendfile engine
 *  would make the app's socket non-blocking, its open file description being shared). */
const SMALL_TAIL_BYTES = 4096;

/** Write `buf` with write(2) on the app's socket as it is (blocking or not); resolves once it is all in the kernel. */
async function writeAllFd(fd: number, buf: Buffer): Promise<void> {
  const until = Date.now() + GUEST_STALL_MS;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' || Date.now() > until) {
        throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the head's send failed: ${code ?? String(e)}`, { bytesSent: 0 });
      }
      await sleep(1);
    }
  }
}

/** The range's tail on the app's socket once the connection is back; resolves with the bytes sent. */
async function sendTail(fd: number, file: string, start: number, n: number): Promise<number> {
  const f = openSync(file, 'r');
  try {
    if (n > SMALL_TAIL_BYTES) return await sendfileFd(fd, f, start, n, GUEST_STALL_MS);
    const buf = Buffer.alloc(n);
    const len = readSync(f, buf, 0, n, start);
    const until = Date.now() + GUEST_STALL_MS;
    let off = 0;
    while (off < len) {
      try {
        off += writeSync(fd, buf, off, len - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' || Date.now() > until) {
          throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the tail's send failed: ${code ?? String(e)}`, { bytesSent: off });
        }
        await sleep(1);
      }
    }
    return len;
  } finally {
    closeSync(f);
  }
}

/**
 * Send `count` bytes (default: to the end) of `file` (inside `share`) from `offset` on the TCP socket `fd`, by the
 * host when it can: the handoff of hylicsSendfile (handoffQuiesced in src/guest/offload.ts) on a bare fd,
 * restoring the connection in place; the range's tail goes from here once the connection is back.
 */
export async function sendfileOnFd(
  fd: number,
  req: FdSendRequest,
  share: string,
  request: HostRequest,
): Promise<SendfileResult> {
  const abs = resolve(share, req.path);
  const rel = relative(resolve(share), abs);
  const offset = req.offset ?? 0;
  const mode = req.mode ?? 'return';
  const fileRange = (): { f: number; start: number; n: number } => {
    const f = openSync(abs, 'r');
    const size = fstatSync(f).size;
    const start = Math.min(offset, size);
    return { f, start, n: Math.min(req.count ?? size - start, size - start) };
  };
  const head = req.head !== undefined ? Buffer.from(req.head, 'base64') : undefined;
  const inGuest = async (reason: FallbackReason): Promise<SendfileResult> => {
    void request('offload.socket.fallback', { reason }, { timeoutMs: 5000 }).catch(() => undefined);
    const { f, start, n } = fileRange();
    try {
      if (head) await writeAllFd(fd, head);
      const bytes = n === 0 ? 0 : await sendfileFd(fd, f, start, n, GUEST_STALL_MS);
      return { bytes, by: 'guest', reason };
    } finally {
      closeSync(f);
    }
  };
  if (rel === '' || rel.startsWith('..') || rel.startsWith('/')) return inGuest('outside-share');
  let names;
  try {
    names = tcpNames(fd);
    await quiesceQueues(fd, QUIESCE_TIMEOUT_MS, QUIESCE_MAX_UNACKED);
  } catch (e) {
    return inGuest(reasonOf(toHylicsError(e)));
  }
  let r;
  try {
    r = await handoffQuiesced(
      fd,
      {
        ...names, path: rel, offset, ...(req.count !== undefined ? { count: req.count } : {}), mode,
        ...(req.head ? { head: req.head } : {}),
      },
      request,
      { inPlace: true },
    );
  } catch (e) {
    const err = toHylicsError(e);
    throw new HylicsError(err.code, `${err.message} (close the socket)`, { ...err.details });
  }
  if (r.outcome === 'refused') return inGuest(reasonOf(r.error));
  if (r.outcome === 'returned') {
    if (r.untouched) return inGuest('host-refused');
    const tail = r.count - r.bytes;
    if (tail > 0) {
      let sent: number;
      try {
        sent = await sendTail(fd, abs, offset + r.bytes, tail);
      } catch (e) {
        const err = toHylicsError(e);
        const n = typeof err.details?.bytesSent === 'number' ? err.details.bytesSent : 0;
        throw new HylicsError(err.code, `${err.message} (close the socket)`, { ...err.details, bytesSent: r.bytes + n, handoff: r.handoff });
      }
      if (sent !== tail) throw new HylicsError('HYLICS_ERR_PEER_CLOSED', `the file ended ${tail - sent} bytes early while sending the range's tail`, { bytesSent: r.bytes + sent, handoff: r.handoff });
    }
    return { bytes: r.bytes + tail, by: 'host' };
  }
  if (r.outcome === 'finished') return { bytes: r.bytes, by: 'host', finished: true };
  throw new HylicsError(
    'HYLICS_ERR_PEER_CLOSED',
    `the client went away during the host's send: ${r.reason} (close the socket)`,
    { bytesSent: r.bytes, handoff: r.handoff },
  );
}

/** Read the one request message (and its fd) from an accepted, unread Unix socket. */
async function readRequest(conn: Socket): Promise<{ req: FdSendRequest; fd: number }> {
  const ufd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof ufd !== 'number' || ufd < 0) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'offload socket: no fd');
  const until = Date.now() + REQUEST_TIMEOUT_MS;
  for (;;) {
    const m = recvWithFd(ufd, MAX_REQUEST_BYTES);
    if (m) {
      const close = (): void => { if (m.fd >= 0) closeFd(m.fd); };
      if (m.fd < 0) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'offload request without a socket fd (send it with SCM_RIGHTS in the same message)');
      try {
        if (m.truncated) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `offload request over ${MAX_REQUEST_BYTES} bytes`);
        let v: unknown;
        try { v = JSON.parse(m.data.toString('utf8')); } catch { throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', 'offload request is not JSON'); }
        return { req: checkRequest(v), fd: m.fd };
      } catch (e) { close(); throw e; }
    }
    if (Date.now() > until || conn.destroyed) throw new HylicsError('HYLICS_ERR_TIMEOUT', `no offload request within ${REQUEST_TIMEOUT_MS} ms`);
    await sleep(RECV_POLL_MS);
  }
}

/** The agent's offload socket: apps of any user (mode 0666) pass a socket and a file of the share. */
export async function serveOffloadFd(
  path: string,
  share: string,
  request: HostRequest,
  log: (o: object, m: string) => void,
): Promise<{ server: Server; close: () => Promise<void> }> {
  const server = await listenUnix(
    path,
    (conn) => {
      conn.on('error', () => undefined);
      void (async () => {
        let reply: object;
        let fd = -1;
        try {
          const r = await readRequest(conn);
          fd = r.fd;
          reply = { ok: true, ...(await sendfileOnFd(fd, r.req, share, request)) };
        } catch (e) {
          const err = toHylicsError(e);
          log({ err: err.message, code: err.code }, 'offload socket: request failed');
          reply = { ok: false, error: err.toJSON() };
        } finally {
          if (fd >= 0) {
            try {
              closeFd(fd);
            } catch {
              /* the app's copy stays open */
            }
          }
        }
        conn.end(`${JSON.stringify(reply)}\n`);
      })();
    },
    { mode: 0o666, pauseOnConnect: true },
  );
  return { server, close: () => closeUnixServer(server, path) };
}
