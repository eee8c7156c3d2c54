// The CLI's client of the hylicsd HTTP API: HTTP over the Unix socket <state-dir>/hylicsd.sock, or over TCP to a
// `hylics daemon --listen` endpoint (--api URL or env HYLICS_API) with the bearer token (env HYLICS_API_TOKEN, else
// the file <state-dir>/api-token, which only root can read).
import { request, type RequestOptions } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { codeForErrno } from '../core/errors/errno.js';

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

interface Target { where: string; options: RequestOptions }

function target(stateDir: string): Target {
  const url = apiUrl ?? process.env.HYLICS_API;
  if (!url) {
    const socketPath = apiSocket(stateDir);
    return { where: socketPath, options: { socketPath } };
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
    options: { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || 80, headers: token ? { authorization: `Bearer ${token}` } : {} },
  };
}

/** One API call. Resolves to the parsed JSON (or text) body; throws the daemon's HylicsError on 4xx/5xx. */
export function apiRequest<T = unknown>(
  stateDir: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10 * 60_000,
): Promise<T> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  let t: Target;
  try {
    t = target(stateDir);
  } catch (e) {
    return Promise.reject(e);
  }
  const socketPath = t.where;
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        ...t.options,
        method,
        path,
        headers: {
          ...(t.options.headers as Record<string, string>),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = (res.headers['content-type'] ?? '').includes('json');
          let parsed: unknown = text;
          if (isJson && text.length > 0) {
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new HylicsError('HYLICS_ERR_INTERNAL', `daemon sent invalid JSON (${res.statusCode})`));
            }
          }
          if ((res.statusCode ?? 500) >= 400) {
            const err = (parsed as { error?: unknown })?.error;
            return reject(
              err
                ? HylicsError.fromJSON(err)
                : new HylicsError('HYLICS_ERR_INTERNAL', `daemon answered ${res.statusCode}: ${text.slice(0, 200)}`),
            );
          }
          resolve(parsed as T);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new HylicsError('HYLICS_ERR_TIMEOUT', `no answer from hylicsd within ${timeoutMs} ms`)),
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof HylicsError) return reject(e);
      const code = codeForErrno('apiConnect', e.code);
      if (code === 'HYLICS_ERR_NOT_ROOT') {
        return reject(new HylicsError(code, `permission denied on ${socketPath}: the daemon is root-only`));
      }
      const listen = t.options.socketPath ? '' : ' --listen ...';
      const why =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? `hylicsd is not running on ${socketPath} (start it with: hylics daemon --state-dir ${stateDir}${listen})`
          : `cannot reach hylicsd on ${socketPath}: ${e.message}`;
      reject(new HylicsError(code, why, { socket: socketPath }));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
