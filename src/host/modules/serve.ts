// The `stream` kind's gate (runs inside the unprivileged gate worker; nginx sends it two kinds of request over a
// unix socket): (1) playlists, which it reads whole and re-checks so a playlist rewritten in place is never sent
// torn, and (2) auth_request checks before nginx sends a media segment: 204 when a playlist in its directory lists
// it (a listed segment is complete), 401 when not (nginx answers 404). Files are opened only through openBeneath on
// the module root fd. Every structure kept across requests is bounded (issue #12 item 3): a client cannot grow
// the worker by asking for unique paths.
import { closeSync, fstatSync, readSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { ERRORS, HylicsError, isErrorCode } from '../../core/errors/index.js';
import { openBeneath, openDirBeneath, readDirFd, type OpenedFile } from '../../os/native.js';
import { contentType, extOf, SEGMENT_EXT } from './mime.js';
import { GATE_PATH } from './nginx-conf.js';

export { contentType } from './mime.js';

/** Largest playlist read (bigger ones get 403): bounds what one request can make the gate read and keep. */
export const PLAYLIST_MAX = 1024 * 1024;
/** Playlists whose listed URIs are remembered (least recently read forgotten first). */
export const MAX_PLAYLISTS = 16;
/** URIs remembered per playlist (a longer playlist's later entries are found again by a rescan). */
export const MAX_URIS_PER_PLAYLIST = 8192;
/** Directories whose last rescan time is remembered (only directories that exist; oldest forgotten first). */
export const MAX_SCANNED_DIRS = 256;
/** Playlists read per rescan of a directory. */
export const MAX_RESCAN_PLAYLISTS = 8;
/** A directory is rescanned at most this often (a client asking for unlisted segments cannot make us spin). */
export const RESCAN_MIN_MS = 200;
/** HEAD of a playlist reads at most this much of its tail (to find the last complete line), never the whole file. */
const HEAD_TAIL_BYTES = 64 * 1024;

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

/** What the gate keeps for one module; every field is bounded (see the constants above). */
export class GateState {
  /** segment paths listed by the playlists read so far, per playlist, least recently read first */
  readonly listed = new Map<string, Set<string>>();
  /** last rescan per existing directory, oldest first */
  readonly scannedAt = new Map<string, number>();

  /** Sizes of what is kept (tests and the worker's stats use it). */
  size(): { playlists: number; uris: number; dirs: number } {
    let uris = 0;
    for (const s of this.listed.values()) uris += s.size;
    return { playlists: this.listed.size, uris, dirs: this.scannedAt.size };
  }
}

export interface ModuleContext {
  id: string;
  rootFd: number;
  gate: GateState;
  onError: (code: string, message: string) => void;
}

function status(res: ServerResponse, code: number, extra: Record<string, string> = {}): void {
  const body = code >= 400 ? `${code} ${STATUS_CODES[code] ?? ''}\n` : '';
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** HTTP status of an error: the registry's (one mapping), 500 for anything else. */
export function errorStatus(e: unknown): number {
  return e instanceof HylicsError && isErrorCode(e.code) ? ERRORS[e.code].http : 500;
}

// ---- playlists: read whole and re-checked (never torn) -----------------------------------------------------

function readRange(f: OpenedFile, start: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let off = 0;
  while (off < length) {
    const n = readSync(f.fd, buf, off, length - off, start + off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

function openPlaylist(rootFd: number, rel: string): OpenedFile {
  const f = openBeneath(rootFd, rel);
  if (f.size > PLAYLIST_MAX) {
    closeSync(f.fd);
    throw new HylicsError('HYLICS_ERR_NOT_REGULAR_FILE', `${rel}: playlist larger than ${PLAYLIST_MAX} bytes`, { path: rel });
  }
  return f;
}

/** Only complete lines count: a writer mid-line leaves its last line out. */
function completeLines(body: Buffer): Buffer {
  const nl = body.lastIndexOf(0x0a);
  return nl < 0 ? body.subarray(0, 0) : body.subarray(0, nl + 1);
}

/** Read a playlist so that a concurrent in-place rewrite is noticed: size and mtime must hold across the read. */
function readPlaylist(rootFd: number, rel: string): { file: OpenedFile; body: Buffer } {
  for (let attempt = 0; ; attempt++) {
    const f = openPlaylist(rootFd, rel);
    try {
      const body = readRange(f, 0, f.size);
      const after = fstatSync(f.fd);
      if ((after.size === body.length && after.mtimeMs === f.mtimeMs) || attempt >= 4)
        return { file: f, body: completeLines(body) };
    } catch (e) {
      closeSync(f.fd);
      throw e;
    }
    closeSync(f.fd);
  }
}

/** HEAD: the length GET would send (up to the last newline), from the file's tail only. */
function playlistHeadLength(f: OpenedFile): number {
  let end = f.size;
  while (end > 0) {
    const start = Math.max(0, end - HEAD_TAIL_BYTES);
    const nl = readRange(f, start, end - start).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
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

function notePlaylist(gate: GateState, parts: string[], body: Buffer): void {
  const dir = parts.slice(0, -1);
  const set = new Set<string>();
  for (const uri of playlistUris(body.toString('utf8'))) {
    if (set.size >= MAX_URIS_PER_PLAYLIST) break;
    const r = resolveListed(dir, uri);
    if (r !== null && SEGMENT_EXT.has(extOf(r))) set.add(r); // only what the gate is asked about
  }
  const key = parts.join('/');
  gate.listed.delete(key);
  gate.listed.set(key, set);
  while (gate.listed.size > MAX_PLAYLISTS) gate.listed.delete(gate.listed.keys().next().value as string);
}

function isListed(gate: GateState, rel: string): boolean {
  for (const s of gate.listed.values()) if (s.has(rel)) return true;
  return false;
}

/** Read the playlists in the segment's directory (a gate restart or a client that skipped the playlist). */
function rescan(ctx: ModuleContext, dirParts: string[]): void {
  const key = dirParts.join('/');
  const now = Date.now();
  const last = ctx.gate.scannedAt.get(key);
  if (last !== undefined && now - last < RESCAN_MIN_MS) return;
  let dir: OpenedFile;
  try { dir = openDirBeneath(ctx.rootFd, key === '' ? '.' : key); } catch { return; } // not a directory: nothing kept
  // remembered only now that the directory exists, newest last, and at most MAX_SCANNED_DIRS
  ctx.gate.scannedAt.delete(key);
  ctx.gate.scannedAt.set(key, now);
  while (ctx.gate.scannedAt.size > MAX_SCANNED_DIRS)
    ctx.gate.scannedAt.delete(ctx.gate.scannedAt.keys().next().value as string);
  try {
    let read = 0;
    for (const name of readDirFd(dir.fd)) {
      if (extOf(name) !== '.m3u8') continue;
      if (read++ >= MAX_RESCAN_PLAYLISTS) break;
      try {
        const { file, body } = readPlaylist(dir.fd, name);
        closeSync(file.fd);
        notePlaylist(ctx.gate, [...dirParts, name], body);
      } catch { /* not a readable regular file: skip */ }
    }
  } finally {
    closeSync(dir.fd);
  }
}

/** May nginx send this media segment? Only when a playlist in its directory lists it. */
export function segmentListed(ctx: ModuleContext, parts: string[]): boolean {
  const rel = parts.join('/');
  if (isListed(ctx.gate, rel)) return true;
  rescan(ctx, parts.slice(0, -1));
  return isListed(ctx.gate, rel);
}

// ---- the handler ----------------------------------------------------------------------------------------

export function handle(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): void {
  try {
    if (req.url === GATE_PATH) gateCheck(ctx, req, res);
    else servePlaylist(ctx, req, res);
  } catch (e) {
    if (!res.headersSent) { try { status(res, errorStatus(e)); } catch { res.destroy(); } } else res.destroy();
  }
}

function gateCheck(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): void {
  const uri = req.headers['x-hylics-uri'];
  let parts: string[] | null;
  try { parts = typeof uri === 'string' ? parseTarget(uri) : null; } catch { return status(res, 403); }
  if (parts === null || parts.length === 0 || !SEGMENT_EXT.has(extOf(parts[parts.length - 1]!)))
    return status(res, 403);
  status(res, segmentListed(ctx, parts) ? 204 : 401);
}

function servePlaylist(ctx: ModuleContext, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return status(res, 405, { Allow: 'GET, HEAD' });
  let parts: string[] | null;
  try { parts = parseTarget(req.url ?? ''); } catch { return status(res, 403); }
  if (parts === null) return status(res, 400);
  if (parts.length === 0 || extOf(parts[parts.length - 1]!) !== '.m3u8') return status(res, 404);
  const rel = parts.join('/');
  let file: OpenedFile;
  let body: Buffer | null = null;
  try {
    if (req.method === 'HEAD') file = openPlaylist(ctx.rootFd, rel);
    else {
      const r = readPlaylist(ctx.rootFd, rel);
      file = r.file;
      body = r.body;
      notePlaylist(ctx.gate, parts, r.body);
    }
  } catch (e) {
    return status(res, errorStatus(e));
  }
  try {
    respond(req, res, file, rel, body);
  } finally {
    closeSync(file.fd);
  }
}

function respond(req: IncomingMessage, res: ServerResponse, file: OpenedFile, rel: string, body: Buffer | null): void {
  const size = body ? body.length : playlistHeadLength(file);
  const etag = `"${file.ino.toString(16)}-${size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'Content-Type': contentType(rel),
    ETag: etag,
    'Last-Modified': new Date(Math.floor(file.mtimeMs / 1000) * 1000).toUTCString(),
    'Accept-Ranges': 'none',
    'Cache-Control': 'no-cache', // live playlists change: revalidate every time
  };
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  const notModified =
    inm !== undefined
      ? etagMatches(inm, etag)
      : ims !== undefined &&
        !Number.isNaN(Date.parse(ims)) &&
        Math.floor(file.mtimeMs / 1000) * 1000 <= Date.parse(ims);
  if (notModified) { res.writeHead(304, headers); res.end(); return; }
  headers['Content-Length'] = size;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' || !body ? undefined : body);
}
