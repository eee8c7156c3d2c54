// Access counters of one module, read from the access log its nginx server writes (LOG_FORMAT in nginx-conf.ts,
// buffered by nginx: one write per 32 KiB or per second). The manager drains it once a second into the stats
// events and the hylics_module_* counters, so the profiler sees the same figures the node worker used to send.
// The file is rotated (rename + SIGUSR1 to nginx, which reopens its logs) before it grows past ROTATE_BYTES.
// A lighttpd engine's log (LT_LOG_FORMAT, lighttpd-conf.ts) is parsed from its bytes by LighttpdLineReader and
// rotated by truncating it in place (lighttpd opened it O_APPEND before its chroot and cannot reopen it).
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
 * Count one request (`complete` false for a transfer that did not complete) and return the set its path would go to
 * (undefined: none, or that set is full); the caller decodes the path only then and passes it to keepPath.
 */
function countRequest(
  t: AccessTotals, status: number, bytes: number, ms: number, complete: boolean,
): Set<string> | undefined {
  t.requests++;
  t.bytes += bytes;
  // an error: a 4xx/5xx answer, or a transfer that did not complete (client left, send_timeout, file truncated)
  if (status >= 400 || !complete) t.errors++;
  if (t.latenciesMs.length < MAX_SAMPLES) t.latenciesMs.push(ms);
  else {
    const i = Math.floor(Math.random() * t.requests);
    if (i < MAX_SAMPLES) t.latenciesMs[i] = ms;
  }
  const paths = status < 400 ? t.served : status === 404 ? t.missing : undefined;
  return paths && paths.size < MAX_PATHS ? paths : undefined;
}

/** Keep a decoded request path in `paths` (within MAX_PATHS, MAX_PATH_LENGTH, MAX_PATH_BYTES). */
function keepPath(t: AccessTotals, paths: Set<string>, uri: string | undefined): void {
  if (
    uri !== undefined &&
    paths.size < MAX_PATHS &&
    uri.length <= MAX_PATH_LENGTH &&
    !paths.has(uri) &&
    t.pathBytes + uri.length <= MAX_PATH_BYTES
  ) {
    paths.add(uri);
    t.pathBytes += uri.length;
  }
}

/**
 * Count one request: `complete` false for a transfer that did not complete; the path is decoded (by `decode`, from
 * line.slice(at)) only when it would be kept.
 */
function count(t: AccessTotals, status: number, bytes: number, ms: number, complete: boolean, line: string, at: number,
  decode: (raw: string) => string | undefined): void {
  const paths = countRequest(t, status, bytes, ms, complete);
  if (paths && at < line.length) keepPath(t, paths, decode(line.slice(at)));
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
 * Add one lighttpd log line (LT_LOG_FORMAT: "status msSTATEbytes path", see LighttpdLineReader) to the totals, in
 * the same terms as addLine; false when it is not one of ours.
 */
export function addLighttpdLine(t: AccessTotals, line: string): boolean {
  const buf = Buffer.from(line, 'latin1');
  return new LighttpdLineReader().addLine(t, buf, 0, buf.length);
}

/** Largest decimal field read (lighttpd's counts and milliseconds stay far below it). */
const MAX_DIGITS = 15;

/** A state byte of %X: X aborted before the response completed, + kept alive, - closed. */
function isState(c: number | undefined): boolean {
  return c === 88 /* X */ || c === 43 /* + */ || c === 45 /* - */;
}

/**
 * lighttpd's access log (LT_LOG_FORMAT, lighttpd-conf.ts: `%>s %{ms}T%X%b %U`, two literals for lighttpd to write),
 * read from its bytes: "200 1+4096 /a.ts" is status 200, 1 ms, state +, 4096 body bytes (`-` for none), path /a.ts.
 * The state byte is never a digit, so it ends the milliseconds; the space before the path ends the bytes whatever
 * the path holds (lighttpd's %U is the request target as the client sent it, digits first if it likes). hylicsd
 * reads one line per request served (the module's lighttpd writes ~40,000 a second at 4 KiB): no string per line,
 * and the request path made a string only when it would be kept and differs from the previous line's path in the
 * same set (that line left it kept or not keepable: the same path again changes nothing).
 */
export class LighttpdLineReader {
  private last = Buffer.alloc(MAX_PATH_LENGTH + 1);
  private lastLen = -1;
  private lastSet: Set<string> | undefined;

  /** Add the lines of buf[from, to) to t: lines end at '\n' (the last one may lack it). */
  addLines(t: AccessTotals, buf: Buffer, from: number, to: number): void {
    let s = from;
    while (s < to) {
      let e = buf.indexOf(10, s);
      if (e < 0 || e > to) e = to;
      this.addLine(t, buf, s, e);
      s = e + 1;
    }
  }

  /** One line, buf[s, e) without its newline; false (nothing counted) when it is not one of ours. */
  addLine(t: AccessTotals, buf: Buffer, s: number, e: number): boolean {
    let i = s;
    let status = 0;
    for (; i < e && i - s < MAX_DIGITS; i++) {
      const c = buf[i]! - 48;
      if (c < 0 || c > 9) break;
      status = status * 10 + c;
    }
    if (i === s || i >= e || buf[i] !== 32) return false;
    let ms = 0;
    const m = ++i;
    for (; i < e && i - m < MAX_DIGITS; i++) {
      const c = buf[i]! - 48;
      if (c < 0 || c > 9) break;
      ms = ms * 10 + c;
    }
    if (i === m || i >= e || !isState(buf[i])) return false;
    const complete = buf[i] !== 88; /* X */
    let bytes = 0;
    const b = ++i;
    if (buf[i] === 45 /* - */) i++;
    else {
      for (; i < e && i - b < MAX_DIGITS; i++) {
        const c = buf[i]! - 48;
        if (c < 0 || c > 9) break;
        bytes = bytes * 10 + c;
      }
      if (i === b) return false;
    }
    if (i >= e || buf[i] !== 32) return false;
    i++;
    const paths = countRequest(t, status, bytes, ms, complete);
    if (paths === undefined || i >= e) return true;
    const n = e - i;
    if (paths === this.lastSet && n === this.lastLen && this.sameAsLast(buf, i, n)) return true;
    keepPath(t, paths, decodeLighttpdUri(buf.toString('latin1', i, e)));
    this.lastSet = paths;
    if (n <= this.last.length) {
      buf.copy(this.last, 0, i, e);
      this.lastLen = n;
    } else this.lastLen = -1;
    return true;
  }

  private sameAsLast(buf: Buffer, at: number, n: number): boolean {
    const last = this.last;
    for (let i = 0; i < n; i++) if (buf[at + i] !== last[i]) return false;
    return true;
  }
}

export type AccessLogFormat = 'nginx' | 'lighttpd';

export class AccessLog {
  private fd: number | null = null;
  private old: number | null = null;
  private offset = 0;
  private oldOffset = 0;
  private rest = '';
  /** lighttpd: the bytes of an incomplete last line, and the byte parser. */
  private restBytes: Buffer | null = null;
  private readonly lt = new LighttpdLineReader();

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
      this.restBytes = null;
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
      if (this.format === 'lighttpd') {
        // the bytes themselves (LighttpdLineReader); a line cut by the read waits for its end in restBytes
        const text = this.restBytes === null ? buf.subarray(0, n) : Buffer.concat([this.restBytes, buf.subarray(0, n)]);
        const end = text.lastIndexOf(10) + 1;
        this.lt.addLines(t, text, 0, end);
        this.restBytes = end < text.length ? Buffer.from(text.subarray(end)) : null;
        continue;
      }
      const text = this.rest + buf.toString('latin1', 0, n);
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) addLine(t, line);
    }
    return offset;
  }
}
