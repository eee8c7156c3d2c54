// Example app for socket offload (`hylics example file-server --root DIR --port N [--offload socket|none]`): a small
// HTTP/1.1 static file server (GET/HEAD, keep-alive, single byte ranges) that keeps its own protocol and lets the
// host send the bodies with hylicsSendfile. It runs inside a guest, on the guest's own address.
import { closeSync, openSync, fstatSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { toHylicsError } from '../core/errors/index.js';
import { hylicsSendfile, lastFallback, type OffloadOptions } from './offload.js';
import { tier, tierDirs } from './tier-lib.js';
import { sendFileToSocket } from '../os/native.js';

export interface FileServerOptions {
  root: string;
  port: number;
  host?: string;
  offload: 'socket' | 'none';
  /** Bodies smaller than this are sent by the guest even with offload (a handoff costs a few ms). */
  offloadMinBytes?: number;
  /** With offload: the response headers go in the handoff (hylicsSendfile's `head`) and the host sends them with the
   *  body's first bytes (default true); false: the server writes them itself first (the older way, for A/B). */
  offloadHead?: boolean;
  /** The share as the guest sees it (hylicsSendfile needs files inside it; a name missing there is looked up in the
   *  guest's tiered store). Default $HYLICS_SHARE or /mnt/hylics. */
  share?: string;
  log?: (msg: string) => void;
}

export interface FileServerStats {
  requests: number;
  byHost: number;
  byGuest: number;
  fallbacks: Record<string, number>;
}

/** Request heads above this are refused (431). */
const MAX_HEAD_BYTES = 16 * 1024;
/** A keep-alive connection idle this long is closed. */
const IDLE_MS = 60_000;

interface Head { method: string; path: string; version: string; headers: Map<string, string> }

function parseHead(text: string): Head | null {
  const lines = text.split('\r\n');
  const m = /^([A-Z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? '');
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { method: m[1]!, path: m[2]!, version: m[3]!, headers };
}

/** One `bytes=a-b` range within size, or null (no range), or 'bad' (unsatisfiable: 416). */
export function parseRange(h: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (!h) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start: number;
  let end: number;
  if (m[1] === '') { const n = Number(m[2]); start = Math.max(0, size - n); end = size - 1; } else { start = Number(m[1]); end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1); }
  if (start >= size || end < start) return 'bad';
  return { start, end };
}

/**
 * Open `file` for a request: in the share (or root) as it is, or, when it is missing there and lies beneath the
 * share, where the guest's tiered store has it (docs/tier.md: a file unused for the idle time moves to the disk tier;
 * tier.path counts the miss and moves it back in the background, so a later request finds it in the share again).
 * `inShare`: the host can send it (socket offload reads only the share). Undefined: no such file.
 */
async function openForRequest(
  file: string,
  share: string,
): Promise<{ fd: number; path: string; inShare: boolean } | undefined> {
  try {
    return { fd: openSync(file, 'r'), path: file, inShare: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  }
  const rel = relative(share, file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  try {
    const e = await tier.path(rel.split(sep).join('/'), { memoryDir: share }); // the local lookup (no agent) in this server's share
    return { fd: openSync(e.path, 'r'), path: e.path, inShare: e.tier === 'memory' };
  } catch {
    return undefined; // not in either tier (or not a tier name): 404
  }
}

export function startFileServer(
  o: FileServerOptions,
): Promise<{ server: Server; stats: FileServerStats; close: () => Promise<void> }> {
  const root = resolve(o.root);
  const share = resolve(o.share ?? tierDirs().memoryDir); // the tiered store's memory tier: the share
  const stats: FileServerStats = { requests: 0, byHost: 0, byGuest: 0, fallbacks: {} };
  // the share this server decided on, passed on: the tier lookup and the offload agree on which files the host can send
  const offloadOpts: OffloadOptions = { share };
  const log = o.log ?? (() => undefined);

  const respond = async (socket: Socket, head: Head): Promise<boolean> => {
    stats.requests++;
    const keepAlive =
      head.version === 'HTTP/1.1'
        ? head.headers.get('connection')?.toLowerCase() !== 'close'
        : head.headers.get('connection')?.toLowerCase() === 'keep-alive';
    const conn = keepAlive ? 'keep-alive' : 'close';
    const simple = (status: string, body: string): boolean => {
      socket.write(
        `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: ${conn}\r\n\r\n${body}`,
      );
      return keepAlive;
    };
    if (head.method !== 'GET' && head.method !== 'HEAD') return simple('405 Method Not Allowed', 'only GET and HEAD\n');
    let rel: string;
    try {
      rel = decodeURIComponent(head.path.split('?')[0]!);
    } catch {
      return simple('400 Bad Request', 'bad path\n');
    }
    const file = resolve(root, `.${rel}`);
    if (file !== root && !file.startsWith(root + sep)) return simple('403 Forbidden', 'outside the root\n');
    const found = await openForRequest(file, share);
    if (!found) return simple('404 Not Found', 'not found\n');
    const { fd, path } = found;
    let size: number;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return simple('404 Not Found', 'not a file\n');
      size = st.size;
    } finally {
      closeSync(fd);
    }
    const range = parseRange(head.headers.get('range'), size);
    if (range === 'bad') {
      socket.write(
        `HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */${size}\r\nContent-Length: 0\r\nConnection: ${conn}\r\n\r\n`,
      );
      return keepAlive;
    }
    const start = range ? range.start : 0;
    const len = range ? range.end - range.start + 1 : size;
    const headers = Buffer.from(
      [
        `HTTP/1.1 ${range ? '206 Partial Content' : '200 OK'}`,
        'Content-Type: application/octet-stream',
        `Content-Length: ${len}`,
        'Accept-Ranges: bytes',
        ...(range ? [`Content-Range: bytes ${range.start}-${range.end}/${size}`] : []),
        `Connection: ${conn}`,
        '',
        '',
      ].join('\r\n'),
      'latin1',
    );
    // a file the tiered store keeps on the guest's disk is sent by the guest (the host reads only the share)
    const offload = o.offload === 'socket' && found.inShare && head.method !== 'HEAD' && len > 0 && len >= (o.offloadMinBytes ?? 0);
    // offloaded: the headers travel in the handoff and the host sends them with the body's first bytes (no write
    // here, nothing for the socket to drain before it is frozen)
    const inHandoff = offload && o.offloadHead !== false;
    if (!inHandoff) socket.write(headers);
    if (head.method === 'HEAD' || len === 0) return keepAlive;
    if (offload) {
      const r = await hylicsSendfile(socket, path, {
        ...offloadOpts,
        offset: start,
        count: len,
        ...(inHandoff ? { head: headers } : {}),
        mode: keepAlive ? 'return' : 'terminal',
      });
      if (r.by === 'host') stats.byHost++;
      else {
        log(`sent in the guest (${r.reason ?? 'error'}): ${lastFallback()?.message ?? ''}`);
        stats.byGuest++;
        stats.fallbacks[r.reason ?? 'error'] = (stats.fallbacks[r.reason ?? 'error'] ?? 0) + 1;
      }
      if (r.finished) return false;
    } else {
      const f = openSync(path, 'r');
      try {
        await sendFileToSocket(socket, f, start, len);
      } finally {
        closeSync(f);
      }
      stats.byGuest++;
    }
    return keepAlive;
  };

  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let busy = false;
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) {
              socket.end(
                'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
              );
            }
            return;
          }
          const head = parseHead(buf.subarray(0, end).toString('latin1'));
          buf = buf.subarray(end + 4);
          if (!head) {
            socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
            return;
          }
          const again = await respond(socket, head);
          if (!again) {
            if (!socket.destroyed) socket.end();
            return;
          }
          if (socket.destroyed) return;
        }
      } catch (e) {
        log(`request failed: ${toHylicsError(e).message}`);
        socket.destroy();
      } finally {
        busy = false;
      }
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      void pump();
    });
  });
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(o.port, o.host ?? '0.0.0.0', () => {
      server.off('error', rej);
      res({ server, stats, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}
