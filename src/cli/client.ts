// The CLI's client of the hylicsd HTTP API: HTTP over the Unix socket <state-dir>/hylicsd.sock, or over TCP to a
// `hylics daemon --listen` endpoint (--api URL or env HYLICS_API) with the bearer token (env HYLICS_API_TOKEN, else
// the file <state-dir>/api-token, which only root can read).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { codeForErrno } from '../core/errors/errno.js';
import { http1Request, Http1ProtocolError, Http1Timeout, type Http1Response, type Http1Target } from './http1.js';

export const DEFAULT_STATE_DIR = '/var/lib/hylics';

export function stateDirFrom(opt: string | undefined): string {
  return opt ?? process.env.HYLICS_STATE_DIR ?? DEFAULT_STATE_DIR;
}

export function apiSocket(stateDir: string): string {
  return join(stateDir, 'hylicsd.sock');
}

let apiUrl: string | undefined;

/** Talk to the daemon over TCP at this URL (http://host:port) instead of the state dir's socket. */
export function useApiUrl(url: string | undefined): void {
  apiUrl = url;
}

interface Target { where: string; target: Http1Target; host: string; headers: Record<string, string> }

function target(stateDir: string): Target {
  const url = apiUrl ?? process.env.HYLICS_API;
  if (!url) {
    const socketPath = apiSocket(stateDir);
    return { where: socketPath, target: { socketPath }, host: 'localhost', headers: {} };
  }
  let u: URL;
  try { u = new URL(url); } catch { throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--api wants a URL like http://127.0.0.1:7070, got ${url}`); }
  if (u.protocol !== 'http:') throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--api ${url}: only http:// is served by hylicsd`);
  let token = process.env.HYLICS_API_TOKEN?.trim();
  if (!token) {
    // unreadable (not root): sent without, and the daemon answers HYLICS_ERR_API_UNAUTHORIZED
    try { token = readFileSync(join(stateDir, 'api-token'), 'utf8').trim(); } catch { token = undefined; }
  }
  return {
    where: u.host,
    target: { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) },
    host: u.host,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  };
}

/** One API call. Resolves to the parsed JSON (or text) body; throws the daemon's HylicsError on 4xx/5xx. */
export async function apiRequest<T = unknown>(
  stateDir: string, method: string, path: string, body?: unknown, timeoutMs = 10 * 60_000,
): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const t = target(stateDir);
  let res: Http1Response;
  try {
    res = await http1Request(t.target, {
      method, path, host: t.host, timeoutMs,
      headers: { ...t.headers, ...(payload ? { 'content-type': 'application/json' } : {}) },
      ...(payload ? { body: payload } : {}),
    });
  } catch (e) {
    if (e instanceof Http1Timeout) throw new HylicsError('HYLICS_ERR_TIMEOUT', `no answer from hylicsd within ${timeoutMs} ms`);
    if (e instanceof Http1ProtocolError) throw new HylicsError('HYLICS_ERR_INTERNAL', `bad answer from hylicsd on ${t.where}: ${e.message}`);
    const err = e as NodeJS.ErrnoException;
    const code = codeForErrno('apiConnect', err.code);
    if (code === 'HYLICS_ERR_NOT_ROOT') throw new HylicsError(code, `permission denied on ${t.where}: the daemon is root-only`);
    const listen = 'socketPath' in t.target ? '' : ' --listen ...';
    const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
      ? `hylicsd is not running on ${t.where} (start it with: hylics daemon --state-dir ${stateDir}${listen})`
      : `cannot reach hylicsd on ${t.where}: ${err.message}`;
    throw new HylicsError(code, why, { socket: t.where });
  }
  const text = res.body.toString('utf8');
  let parsed: unknown = text;
  if ((res.headers['content-type'] ?? '').includes('json') && text.length > 0) {
    try { parsed = JSON.parse(text); } catch { throw new HylicsError('HYLICS_ERR_INTERNAL', `daemon sent invalid JSON (${res.status})`); }
  }
  if (res.status >= 400) {
    const err = (parsed as { error?: unknown })?.error;
    throw err ? HylicsError.fromJSON(err) : new HylicsError('HYLICS_ERR_INTERNAL', `daemon answered ${res.status}: ${text.slice(0, 200)}`);
  }
  return parsed as T;
}
