// One HTTP/1.1 exchange over a Unix socket or TCP (node:net), for the CLI's calls to hylicsd. Not node:http: on
// Node 22 and 24 importing it costs about 110 ms of CPU, as much as Node's own start-up (measured with a bare
// `import 'node:http'`; node:net costs about 30), which alone broke the 150 ms goal of `hylics guest ls`. The
// exchange is the simplest HTTP has: one request, `Connection: close`, the body read to the end of the stream;
// the response's framing is Content-Length, chunked or close-delimited (RFC 9112 §6.3).
import { connect, type Socket } from 'node:net';

export type Http1Target = { socketPath: string } | { host: string; port: number };

export interface Http1Request {
  method: string;
  path: string;
  /** The Host header (the daemon checks it on TCP listeners). */
  host: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
}

export interface Http1Response { status: number; headers: Record<string, string>; body: Buffer }

/** Thrown when the answer is no HTTP/1.x response; connect errors are the socket's own (err.code ENOENT, ...). */
export class Http1ProtocolError extends Error {}
export class Http1Timeout extends Error {}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Decode a chunked body (chunk extensions and trailers ignored); undefined when it is cut short. */
function dechunk(b: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) return undefined;
    const size = parseInt(b.subarray(i, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size) || size < 0) throw new Http1ProtocolError('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    const start = eol + 2;
    if (start + size + 2 > b.length) return undefined;
    parts.push(b.subarray(start, start + size));
    i = start + size + 2;
  }
}

function parse(raw: Buffer): Http1Response {
  const end = raw.indexOf(HEADER_END);
  if (end < 0) throw new Http1ProtocolError('the connection closed before the response headers ended');
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) throw new Http1ProtocolError(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let body = raw.subarray(end + HEADER_END.length);
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
    const d = dechunk(body);
    if (!d) throw new Http1ProtocolError('the connection closed inside a chunked body');
    body = d;
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (!Number.isSafeInteger(n) || n < 0 || body.length < n) throw new Http1ProtocolError('the connection closed before the body ended');
    body = body.subarray(0, n);
  }
  return { status: Number(m[1]), headers, body };
}

export function http1Request(target: Http1Target, req: Http1Request): Promise<Http1Response> {
  return new Promise((resolve, reject) => {
    const sock: Socket = 'socketPath' in target ? connect(target.socketPath) : connect(target.port, target.host);
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (e: Error | undefined, r?: Http1Response): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      if (e) reject(e); else resolve(r!);
    };
    sock.setTimeout(req.timeoutMs, () => done(new Http1Timeout(`no answer within ${req.timeoutMs} ms`)));
    sock.on('error', (e) => done(e));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      try { done(undefined, parse(Buffer.concat(chunks))); } catch (e) { done(e as Error); }
    });
    const head = [`${req.method} ${req.path} HTTP/1.1`, `Host: ${req.host}`, 'Connection: close',
      ...Object.entries(req.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
      ...(req.body ? [`Content-Length: ${req.body.length}`] : [])];
    sock.write(`${head.join('\r\n')}\r\n\r\n`);
    if (req.body) sock.write(req.body);
  });
}
