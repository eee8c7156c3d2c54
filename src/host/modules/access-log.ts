// Access counters of one module, read from the access log its nginx server writes (LOG_FORMAT in nginx-conf.ts,
// buffered by nginx: one write per 32 KiB or per second). The manager drains it once a second into the stats
// events and the hylics_module_* counters, so the profiler sees the same figures the node worker used to send.
// The file is rotated (rename + SIGUSR1 to nginx, which reopens its logs) before it grows past ROTATE_BYTES.
// A lighttpd engine's log (LT_LOG_FORMAT, lighttpd-conf.ts) is parsed by addLighttpdLine and rotated by truncating it
// in place (lighttpd opened it O_APPEND before its chroot and cannot reopen it).
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync } from 'node:fs';

/** A log larger than this is renamed and nginx asked to reopen (tmpfs or not, it must not grow without bound). */
export const ROTATE_BYTES = 8 * 1024 * 1024;
/** Latencies kept per interval for the percentiles (a uniform sample beyond that). */
const MAX_SAMPLES = 10_000;
const READ_CHUNK = 256 * 1024;

/**
 * Distinct request paths kept per interval for the guest's tiered store, and their total bytes (beyond either:
 * dropped until the next interval; the list goes to the guest in one channel event, so its size is bounded whatever
 * the clients ask for). Longer paths cannot be tier names (at most 1024 bytes) and are not kept.
 */
export const MAX_PATHS = 1024;
export const MAX_PATH_BYTES = 64 * 1024;
const MAX_PATH_LENGTH = 1025;

export interface AccessTotals {
  requests: number;
  bytes: number;
  errors: number;
  latenciesMs: number[];
  /** Request paths ($uri, decoded) answered from a file (status below 400) / answered 404, at most MAX_PATHS each. */
  served: Set<string>;
  missing: Set<string>;
  /** Bytes of the paths in served + missing. */
  pathBytes: number;
}

export function emptyTotals(): AccessTotals {
  return { requests: 0, bytes: 0, errors: 0, latenciesMs: [], served: new Set(), missing: new Set(), pathBytes: 0 };
}

/** Printable ASCII without `"` or `\\`: what escape=json leaves as it is (JSON.parse would return it unchanged). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** $uri as logged with escape=json (the line was read as latin1: its bytes are UTF-8); undefined if malformed. */
function decodeUri(raw: string): string | undefined {
  // the common case (a plain ASCII path) without a Buffer and a JSON.parse per request
  if (PLAIN.test(raw)) return raw.startsWith('/') ? raw : undefined;
  try {
    const v = JSON.parse(`"${Buffer.from(raw, 'latin1').toString('utf8')}"`) as unknown;
    return typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? v : undefined;
  } catch { return undefined; }
}

/** The first four space-separated fields of a line (as line.split(' ', 4)) and where the rest starts. */
function fields(line: string): { f: Array<string | undefined>; restAt: number } {
  // hylicsd parses one line per request served, so no array per field or closure per line (3 us of CPU per line
  // before, about 0.3 now)
  const f: Array<string | undefined> = [undefined, undefined, undefined, undefined];
  let restAt = 0;
  for (let k = 0; k < 4 && restAt <= line.length; k++) {
    const sp = line.indexOf(' ', restAt);
    f[k] = line.slice(restAt, sp < 0 ? line.length : sp);
    restAt = sp < 0 ? line.length + 1 : sp + 1;
  }
  return { f, restAt };
}

/**
 * Count one request: `complete` false for a transfer that did not complete; the path is decoded (by `decode`, from
 * line.slice(at)) only when it would be kept.
 */
function count(t: AccessTotals, status: number, bytes: number, ms: number, complete: boolean, line: string, at: number,
  decode: (raw: string) => string | undefined): void {
  t.requests++;
  t.bytes += bytes;
  // an error: a 4xx/5xx answer, or a transfer that did not complete (client left, send_timeout, file truncated)
  if (status >= 400 || !complete) t.errors++;
  const paths = status < 400 ? t.served : status === 404 ? t.missing : undefined;
  const uri = paths && paths.size < MAX_PATHS && at < line.length ? decode(line.slice(at)) : undefined;
  if (
    uri !== undefined &&
    paths &&
    paths.size < MAX_PATHS &&
    uri.length <= MAX_PATH_LENGTH &&
    !paths.has(uri) &&
    t.pathBytes + uri.length <= MAX_PATH_BYTES
  ) {
    paths.add(uri);
    t.pathBytes += uri.length;
  }
  if (t.latenciesMs.length < MAX_SAMPLES) t.latenciesMs.push(ms);
  else {
    const i = Math.floor(Math.random() * t.requests);
    if (i < MAX_SAMPLES) t.latenciesMs[i] = ms;
  }
}

/** Add one log line ("status bytes seconds completion uri") to the totals; false when it is not one of ours. */
export function addLine(t: AccessTotals, line: string): boolean {
  const { f: [s, b, rt, completion], restAt } = fields(line);
  const status = Number(s);
  const bytes = Number(b);
  const secs = Number(rt);
  if (!Number.isInteger(status) || !Number.isFinite(bytes) || !Number.isFinite(secs)) return false;
  count(t, status, bytes, secs * 1000, completion === 'OK', line, restAt, decodeUri);
  return true;
}

/** lighttpd's %U (the path as sent; bytes outside printable ASCII as \xHH) decoded; undefined if malformed. */
function decodeLighttpdUri(raw: string): string | undefined {
  if (!raw.startsWith('/')) return undefined;
  if (!raw.includes('%') && !raw.includes('\\')) return raw;
  try {
    const bytes = Buffer.from(raw.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    const v = decodeURIComponent(bytes.toString('latin1').replace(/[\x80-\xff]/g, (c) => `%${c.charCodeAt(0).toString(16)}`));
    return v.includes('\0') ? undefined : v;
  } catch { return undefined; }
}

/**
 * Add one lighttpd log line ("status bytes ms state path", state X = aborted before the response completed, bytes
 * `-` for none) to the totals, in the same terms as addLine; false when it is not one of ours.
 */
export function addLighttpdLine(t: AccessTotals, line: string): boolean {
  const { f: [s, b, ms, state], restAt } = fields(line);
  const status = Number(s);
  const bytes = b === '-' ? 0 : Number(b);
  const t0 = Number(ms);
  if (state === undefined || !Number.isInteger(status) || !Number.isFinite(bytes) || !Number.isFinite(t0)) return false;
  count(t, status, bytes, t0, state !== 'X', line, restAt, decodeLighttpdUri);
  return true;
}

export type AccessLogFormat = 'nginx' | 'lighttpd';

export class AccessLog {
  private fd: number | null = null;
  private old: number | null = null;
  private offset = 0;
  private oldOffset = 0;
  private rest = '';

  constructor(readonly path: string, private readonly reopen: () => void, private readonly format: AccessLogFormat = 'nginx') {}

  /** Everything logged since the last call. */
  drain(): AccessTotals {
    const t = emptyTotals();
    if (this.old !== null) {
      // rotated on the previous tick: nginx has reopened by now; finish the old file, then follow the new one
      this.oldOffset = this.readFrom(this.old, this.oldOffset, t);
      closeSync(this.old);
      this.old = null;
    }
    if (this.fd === null) {
      try { this.fd = openSync(this.path, 'r'); this.offset = 0; } catch { return t; } // nothing logged yet
    }
    this.offset = this.readFrom(this.fd, this.offset, t);
    if (this.offset > ROTATE_BYTES && this.format === 'lighttpd') {
      // lines lighttpd appends between the read above and this truncation are lost (one window per ROTATE_BYTES)
      const w = openSync(this.path, 'r+');
      try { ftruncateSync(w, 0); } finally { closeSync(w); }
      this.offset = 0;
      this.rest = '';
    } else if (this.offset > ROTATE_BYTES) {
      renameSync(this.path, `${this.path}.old`);
      this.old = this.fd;
      this.oldOffset = this.offset;
      this.fd = null;
      this.reopen();
    }
    return t;
  }

  close(): void {
    for (const fd of [this.fd, this.old]) if (fd !== null) closeSync(fd);
    this.fd = null;
    this.old = null;
  }

  private readFrom(fd: number, offset: number, t: AccessTotals): number {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    while (offset < size) {
      const n = readSync(fd, buf, 0, Math.min(READ_CHUNK, size - offset), offset);
      if (n === 0) break;
      offset += n;
      const text = this.rest + buf.toString('latin1', 0, n);
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) (this.format === 'lighttpd' ? addLighttpdLine : addLine)(t, line);
    }
    return offset;
  }
}
