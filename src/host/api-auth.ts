// Who may use the HTTP API on a TCP listener (--listen). The Unix socket is root-only by its mode (0600) and needs
// nothing more. TCP on loopback is reachable by every local user and, through a browser, by any web page (DNS
// rebinding, cross-site POSTs), so a TCP listener asks for three things of every request but the dashboard shell:
// a bearer token (the file <state-dir>/api-token, 0600 root), a Host header that is an IP literal, `localhost` or
// a name the operator allowed, and (on every listener) a JSON body.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import { constants as FS } from 'node:fs';
import { open } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HylicsError } from '../core/errors/index.js';
import { writeFileAtomic } from '../os/atomic-file.js';

export const API_TOKEN_FILE = 'api-token';
/** 32 random bytes: guessing is out of reach, and base64url keeps it one shell word. */
const TOKEN_BYTES = 32;
const TOKEN_RE = /^[A-Za-z0-9_-]{32,256}$/;

export function apiTokenPath(stateDir: string): string {
  return join(stateDir, API_TOKEN_FILE);
}

/**
 * The API token of this state dir: read when it exists (a regular file of root's, never through a symlink; its
 * mode is put back to 0600), created when it does not or when `rotate` is set (a new random token, written atomically).
 */
export async function ensureApiToken(stateDir: string, opts: { rotate?: boolean } = {}): Promise<string> {
  const path = apiTokenPath(stateDir);
  if (!opts.rotate) {
    const existing = await readToken(path);
    if (existing !== undefined) return existing;
  }
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  await writeFileAtomic(path, `${token}\n`, 0o600);
  return token;
}

async function readToken(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new HylicsError('HYLICS_ERR_CONFLICT', `${path} is a symlink; refusing to use it as the API token (remove it)`, { path });
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.uid !== 0) throw new HylicsError('HYLICS_ERR_CONFLICT', `${path} is not a regular file owned by root; refusing to use it as the API token (remove it)`, { path });
    if ((st.mode & 0o077) !== 0) await fh.chmod(0o600);
    const token = (await fh.readFile('utf8')).trim();
    // a token file someone emptied or garbled is replaced, not trusted
    return TOKEN_RE.test(token) ? token : undefined;
  } finally {
    await fh.close();
  }
}

/** Compare in constant time (over digests, so the lengths do not leak either). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The host part of a Host header (`name`, `name:port`, `[v6]:port`), lower-case; undefined when malformed. */
export function hostOfHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (v6) return isIP(v6[1]!) === 6 ? v6[1] : undefined;
  const m = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1]!.replace(/\.$/, '') : undefined;
}

/**
 * A Host that a DNS-rebinding page cannot produce: an IP literal (rebinding needs a name), `localhost` (browsers
 * resolve it to loopback themselves), or a name the operator listed with --api-host.
 */
export function hostAllowed(header: string | undefined, allowedNames: ReadonlySet<string>): boolean {
  const host = hostOfHeader(header);
  if (host === undefined) return false;
  return isIP(host) !== 0 || host === 'localhost' || allowedNames.has(host);
}

export interface ApiAuth {
  token: string;
  /** Extra host names a client may put in the Host header (lower-case), from --api-host. */
  allowedHosts: Iterable<string>;
}

/** Paths served without a token: the dashboard's static page (it holds no data and asks for the token itself). */
const PUBLIC = new Set(['/']);

/** Refuse, before anything is parsed or routed, every request without the Host and token this listener wants. */
export function requireAuth(app: FastifyInstance, auth: ApiAuth): void {
  const names = new Set([...auth.allowedHosts].map((h) => h.toLowerCase()));
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!hostAllowed(req.headers.host, names)) {
      throw new HylicsError('HYLICS_ERR_API_HOST_DENIED', `Host ${JSON.stringify(req.headers.host ?? '')} is not served here (allowed: IP addresses, localhost${names.size ? `, ${[...names].join(', ')}` : ''}; add names with hylics daemon --api-host)`);
    }
    if (req.method === 'GET' && PUBLIC.has(req.url)) return;
    const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !tokenMatches(m[1]!, auth.token)) {
      throw new HylicsError('HYLICS_ERR_API_UNAUTHORIZED', 'this API listener needs `Authorization: Bearer <token>` (root can read the token in <state-dir>/api-token)');
    }
  });
}
