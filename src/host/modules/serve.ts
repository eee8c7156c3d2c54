// Request handling of the `http` and `stream` modules (runs inside the unprivileged worker). node:http parses
// (llhttp: limits, keep-alive, pipelining, 400/431 on malformed input); bodies go out with the native sendfile on
// the raw socket once the headers are flushed. Files are opened only through openBeneath on the module root fd.
import { closeSync, fstatSync, readSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HylicsError } from '../../core/errors/index.js';
import { openBeneath, openDirBeneath, ownedReadStream, readDirFd, sendFileToSocket, type OpenedFile } from '../../os/native.js';
import type { ModuleKind, ModuleLimits } from './types.js';

export const MIME: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mp4': 'video/mp4',
  '.m4s': 'video/iso.segment',
  '.m4a': 'audio/mp4',
  '.m4v': 'video/mp4',
  '.aac': 'audio/aac',
  '.mp3': 'audio/mpeg',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.vtt': 'text/vtt',
  '.mpd': 'application/dash+xml',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.gz': 'application/gzip',
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
};

export function extOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i <= 0 ? '' : name.slice(i).toLowerCase();
}

export function contentType(name: string): string {
  return MIME[extOf(name)] ?? 'application/octet-stream';
}

/** HLS media segments: served by `stream` only once a playlist lists them (listed = complete). */
const SEGMENT_EXT = new Set(['.ts', '.m4s', '.aac', '.vtt', '.webvtt', '.m4a']);
const PLAYLIST_MAX = 4 * 1024 * 1024;

/** Decode a request target into share-relative components; null = 400. `..` throws PATH_ESCAPE (403). */
export function parseTarget(url: string): string[] | null {
  if (!url.startsWith('/')) return null; // absolute-form / authority-form / asterisk: not for a file server
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  const h = raw.indexOf('#');
  const path = h < 0 ? raw : raw.slice(0, h);
  const parts: string[] = [];
  for (const seg of path.split('/')) {
    let d: string;
    try { d = decodeURIComponent(seg); } catch { return null; }
    if (d.includes('\0') || d.includes('/')) return null; // %00, %2F: never a file name component
    if (d === '' || d === '.') continue;
    if (d === '..') throw new HylicsError('HYLICS_ERR_PATH_ESCAPE', '.. in request path', { path });
    parts.push(d);
  }
  return parts;
}

export interface RangeResult { start: number; end: number }

/** One `bytes=` range against a size: a range, 'unsatisfiable', or null (absent, malformed or multi: send 200). */
export function parseRange(header: string | undefined, size: number): RangeResult | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null; // invalid: ignore the header
  }
  if (!Number.isSafeInteger(start) || start >= size) return 'unsatisfiable';
  return { start, end };
}

export function etagOf(f: { ino: number; size: number; mtimeMs: number }): string {
  return `"${f.ino.toString(16)}-${f.size.toString(16)}-${Math.floor(f.mtimeMs).toString(16)}"`;
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export interface Counters { requests: number; bytes: number; errors: number; latencies: number[] }

export interface ModuleContext {
  id: string;
  kind: ModuleKind;
  rootFd: number;
  limits: ModuleLimits;
  sendPath: 'native' | 'stream';
  counters: Counters;
  /** stream: segment paths listed by the playlists read so far, per playlist. */
  listed: Map<string, Set<string>>;
  scannedAt: Map<string, number>;
  onError: (code: string, message: string) => void;
}

const FLUSH = Buffer.alloc(0);

function status(res: ServerResponse, code: number, extra: Record<string, string> = {}): void {
  const body = code >= 400 ? `${code} ${httpText(code)}\n` : '';
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function httpText(code: number): string {
  return ({ 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 416: 'Range Not Satisfiable', 500: 'Internal Server Error', 503: 'Service Unavailable' } as Record<number, string>)[code] ?? '';
}

function errorStatus(e: unknown): number {
  if (e instanceof HylicsError) {
    switch (e.code) {
      case 'HYLICS_ERR_FILE_NOT_FOUND': return 404;
      case 'HYLICS_ERR_PATH_ESCAPE': case 'HYLICS_ERR_NOT_REGULAR_FILE': case 'HYLICS_ERR_FILE_ACCESS': return 403;
      default: return 500;
    }
  }
  return 500;
}

// ---- stream: playlists are read whole and re-checked (never torn); segments only when listed ----------------

function readWhole(f: OpenedFile): Buffer {
  const buf = Buffer.allocUnsafe(f.size);
  let off = 0;
  while (off < f.size) {
    const n = readSync(f.fd, buf, off, f.size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Read a playlist so that a concurrent in-place rewrite is noticed: size and mtime must hold across the read. */
function readPlaylist(rootFd: number, rel: string): { file: OpenedFile; body: Buffer } {
  for (let attempt = 0; ; attempt++) {
    const f = openBeneath(rootFd, rel);
    try {
      if (f.size > PLAYLIST_MAX) throw new HylicsError('HYLICS_ERR_NOT_REGULAR_FILE', `${rel}: playlist larger than ${PLAYLIST_MAX} bytes`, { path: rel });
      const body = readWhole(f);
      const after = fstatSync(f.fd);
      if ((after.size === body.length && after.mtimeMs === f.mtimeMs) || attempt >= 4) {
        // only complete lines count: a writer mid-line leaves its last line out
        const nl = body.lastIndexOf(0x0a);
        return { file: f, body: nl < 0 ? body.subarray(0, 0) : body.subarray(0, nl + 1) };
      }
    } catch (e) {
      closeSync(f.fd);
      throw e;
    }
    closeSync(f.fd);
  }
}

/** URIs a playlist lists (segments after #EXTINF, EXT-X-MAP / EXT-X-PART / EXT-X-MEDIA URIs, variant playlists). */
export function playlistUris(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /URI="([^"]+)"/.exec(line);
      if (m) out.push(m[1]!);
      continue;
    }
    out.push(line);
  }
  return out;
}

function resolveListed(dirParts: string[], uri: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(uri) || uri.startsWith('/')) return null; // other hosts / absolute: not ours
  const path = uri.split('?')[0]!.split('#')[0]!;
  const parts = [...dirParts];
  for (const seg of path.split('/')) {
    let d: string;
    try { d = decodeURIComponent(seg); } catch { return null; }
    if (d === '' || d === '.') continue;
    if (d === '..') { if (parts.length === 0) return null; parts.pop(); continue; }
    parts.push(d);
  }
  return parts.join('/');
}

function notePlaylist(ctx: ModuleContext, parts: string[], body: Buffer): void {
  const dir = parts.slice(0, -1);
  const set = new Set<string>();
  for (const uri of playlistUris(body.toString('utf8'))) {
    const r = resolveListed(dir, uri);
    if (r !== null) set.add(r);
  }
  // newest last, and at most MAX_PLAYLISTS remembered: clients (or the guest) rotating playlist names must not
  // grow the worker without bound; a segment of a forgotten playlist is found again by rescan()
  const key = parts.join('/');
  ctx.listed.delete(key);
  ctx.listed.set(key, set);
  while (ctx.listed.size > MAX_PLAYLISTS) ctx.listed.delete(ctx.listed.keys().next().value as string);
}

const MAX_PLAYLISTS = 64;

function isListed(ctx: ModuleContext, rel: string): boolean {
  for (const s of ctx.listed.values()) if (s.has(rel)) return true;
  return false;
}

/** Read every playlist in the segment's directory (a worker restart or a client that skipped the playlist). */
function rescan(ctx: ModuleContext, dirParts: string[]): void {
  const key = dirParts.join('/');
  const now = Date.now();
  if (now - (ctx.scannedAt.get(key) ?? 0) < 200) return;
  ctx.scannedAt.set(key, now);
  let dir: OpenedFile;
  try { dir = openDirBeneath(ctx.rootFd, key === '' ? '.' : key); } catch { return; }
  try {
    for (const name of readDirFd(dir.fd)) {
      if (extOf(name) !== '.m3u8') continue;
      try {
        const { file, body } = readPlaylist(dir.fd, name);
        closeSync(file.fd);
        notePlaylist(ctx, [...dirParts, name], body);
      } catch { /* not a readable regular file: skip */ }
    }
  } finally {
    closeSync(dir.fd);
  }
}

// ---- the handler ----------------------------------------------------------------------------------------

export function handle(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): void {
  const t0 = process.hrtime.bigint();
  ctx.counters.requests++;
  res.once('finish', () => { ctx.counters.latencies.push(Number(process.hrtime.bigint() - t0) / 1e6); });
  serve(ctx, req, res).catch((e: unknown) => {
    ctx.counters.errors++;
    if (!res.headersSent) { try { status(res, errorStatus(e)); } catch { res.destroy(); } } else res.destroy();
  });
}

async function serve(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') { ctx.counters.errors++; return status(res, 405, { Allow: 'GET, HEAD' }); }
  let parts: string[] | null;
  try { parts = parseTarget(req.url ?? ''); } catch { ctx.counters.errors++; return status(res, 403); }
  if (parts === null) { ctx.counters.errors++; return status(res, 400); }
  if (parts.length === 0) { ctx.counters.errors++; return status(res, 404); } // no directory listing
  const rel = parts.join('/');
  const ext = extOf(parts[parts.length - 1]!);

  let file: OpenedFile;
  let memBody: Buffer | null = null;
  try {
    if (ctx.kind === 'stream' && ext === '.m3u8') {
      const r = readPlaylist(ctx.rootFd, rel);
      file = r.file;
      memBody = r.body;
      notePlaylist(ctx, parts, r.body);
    } else {
      if (ctx.kind === 'stream' && SEGMENT_EXT.has(ext) && !isListed(ctx, rel)) {
        rescan(ctx, parts.slice(0, -1));
        if (!isListed(ctx, rel)) { ctx.counters.errors++; return status(res, 404); } // not (yet) complete
      }
      file = openBeneath(ctx.rootFd, rel);
    }
  } catch (e) {
    ctx.counters.errors++;
    return status(res, errorStatus(e));
  }
  try {
    await respond(ctx, req, res, file, rel, memBody);
  } finally {
    closeSync(file.fd);
  }
}

async function respond(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse, file: OpenedFile, rel: string, memBody: Buffer | null): Promise<void> {
  const size = memBody ? memBody.length : file.size;
  const etag = memBody ? `"${file.ino.toString(16)}-${size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"` : etagOf(file);
  const lastModified = new Date(Math.floor(file.mtimeMs / 1000) * 1000).toUTCString();
  const headers: Record<string, string | number> = {
    'Content-Type': contentType(rel),
    ETag: etag,
    'Last-Modified': lastModified,
    'Accept-Ranges': memBody ? 'none' : 'bytes',
  };
  if (memBody) headers['Cache-Control'] = 'no-cache'; // live playlists change: revalidate every time

  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  const notModified = inm !== undefined ? etagMatches(inm, etag) : ims !== undefined && !Number.isNaN(Date.parse(ims)) && Math.floor(file.mtimeMs / 1000) * 1000 <= Date.parse(ims);
  if (notModified) { res.writeHead(304, headers); res.end(); return; }

  let start = 0;
  let end = size - 1;
  let code = 200;
  const ifRange = typeof req.headers['if-range'] === 'string' ? req.headers['if-range'] : undefined;
  const rangeOk = !memBody && (ifRange === undefined || ifRange === etag || (!ifRange.startsWith('"') && !ifRange.startsWith('W/') && Date.parse(ifRange) >= Math.floor(file.mtimeMs / 1000) * 1000));
  const range = rangeOk ? parseRange(req.headers.range, size) : null;
  if (range === 'unsatisfiable') {
    ctx.counters.errors++;
    res.writeHead(416, { 'Content-Range': `bytes */${size}`, 'Content-Length': 0, ETag: etag });
    res.end();
    return;
  }
  if (range) { start = range.start; end = range.end; code = 206; headers['Content-Range'] = `bytes ${start}-${end}/${size}`; }
  const length = size === 0 ? 0 : end - start + 1;
  headers['Content-Length'] = length;

  if (req.method === 'HEAD' || length === 0) { res.writeHead(code, headers); res.end(); return; }
  if (memBody) { res.writeHead(code, headers); res.end(memBody.subarray(start, end + 1)); ctx.counters.bytes += length; return; }
  if (length <= ctx.limits.smallFileMax) {
    // tiny body: one write of headers + body beats a thread hop (see docs/modules.md)
    const buf = Buffer.allocUnsafe(length);
    let off = 0;
    while (off < length) { const n = readSync(file.fd, buf, off, length - off, start + off); if (n === 0) break; off += n; }
    if (off < length) { res.destroy(); return; } // truncated under us: never send a short body as complete
    res.writeHead(code, headers);
    res.end(buf);
    ctx.counters.bytes += length;
    return;
  }
  if (!res.socket) {
    // a request that arrived while the previous response on this connection was still in flight (the client
    // had every byte, our end() had not run yet): Node queues the response until the connection is free
    await new Promise<void>((resolve) => { res.once('socket', () => resolve()); res.once('close', () => resolve()); });
    if (!res.socket || res.destroyed) return; // the client left first
  }
  res.writeHead(code, headers);
  if (ctx.sendPath === 'stream') {
    await pipeBody(res, file, start, length);
    ctx.counters.bytes += length;
    return;
  }
  res.flushHeaders();
  const socket = res.socket as Socket | null;
  if (!socket) { res.destroy(); return; }
  // the body must follow the headers on the wire: if Node could not hand them all to the kernel right away,
  // wait until it has (a zero-length write completes after every write queued before it)
  if (socket.writableLength > 0) await new Promise<void>((resolve, reject) => socket.write(FLUSH, (e) => (e ? reject(e) : resolve())));
  let sent = 0;
  try {
    sent = await sendFileToSocket(socket, file.fd, start, length, { stallMs: ctx.limits.stallMs, inlineMax: ctx.limits.inlineSendMax });
  } catch (e) {
    const h = e as HylicsError;
    ctx.counters.bytes += Number(h.details?.bytesSent ?? 0);
    if (h.code !== 'HYLICS_ERR_PEER_CLOSED') ctx.onError(h.code ?? 'HYLICS_ERR_INTERNAL', h.message);
    socket.destroy();
    throw e;
  }
  ctx.counters.bytes += sent;
  if (sent < length) { socket.destroy(); return; } // file shrank: the client must see a broken transfer
  res.end();
}

/** The createReadStream().pipe() path (what popular Node static servers do): the bench's baseline. */
async function pipeBody(res: ServerResponse, file: OpenedFile, start: number, length: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const rs = ownedReadStream(file.fd, start, start + length - 1, 64 * 1024);
    rs.on('error', reject);
    res.on('close', () => { rs.destroy(); resolve(); });
    res.on('finish', resolve);
    rs.pipe(res);
  });
}
