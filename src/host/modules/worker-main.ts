// The module worker: one unprivileged process per guest (spawned as nobody by the ModuleManager). It holds only
// fd 4, a directory fd of its guest's share (plus the roots it opens beneath it), and talks to the manager over
// the IPC channel on fd 3. Every file it serves is opened with openBeneath on a module root fd.
import { closeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { toHylicsError } from '../../core/errors/index.js';
import { nativeStatus, openDirBeneath } from '../../os/native.js';
import { handle, type ModuleContext } from './serve.js';
import type { FromWorker, ToWorker } from './types.js';

const SHARE_FD = 4;

interface Running { ctx: ModuleContext; servers: Server[] }
const modules = new Map<string, Running>();

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

function makeServer(ctx: ModuleContext): Server {
  const server = createServer({
    maxHeaderSize: ctx.limits.maxHeaderSize,
    headersTimeout: ctx.limits.headersTimeoutMs,
    requestTimeout: ctx.limits.headersTimeoutMs * 3,
    keepAliveTimeout: ctx.limits.keepAliveTimeoutMs,
    noDelay: true,
  }, (req, res) => handle(ctx, req, res));
  server.maxConnections = ctx.limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    ctx.counters.errors++;
    if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
    const line = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${line}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}

async function start(m: Extract<ToWorker, { op: 'start' }>): Promise<void> {
  if (modules.has(m.id)) { send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_CONFLICT', message: `module ${m.id} already runs` }); return; }
  let rootFd: number;
  try {
    const root = m.root.replace(/^\/+/, '');
    rootFd = openDirBeneath(SHARE_FD, root === '' ? '.' : root).fd;
  } catch (e) {
    const h = toHylicsError(e);
    send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_MODULE_ROOT', message: `root ${JSON.stringify(m.root)} is not a directory inside the share: ${h.message}` });
    return;
  }
  const ctx: ModuleContext = {
    id: m.id, kind: m.kind, rootFd, limits: m.limits, sendPath: m.sendPath,
    counters: { requests: 0, bytes: 0, errors: 0, latencies: [] },
    listed: new Map(), scannedAt: new Map(),
    onError: rateLimitedError(m.id),
  };
  const servers: Server[] = [];
  try {
    const main = makeServer(ctx);
    servers.push(main);
    let port: number;
    try {
      port = await listen(main, m.listenPort, m.listenAddr);
    } catch (e) {
      if (m.listenPort === 0) throw e;
      port = await listen(main, 0, m.listenAddr); // the old port (after a restart) is taken: any port will do
    }
    if (m.hostPort !== undefined) {
      const extra = makeServer(ctx);
      servers.push(extra);
      await listen(extra, m.hostPort, '0.0.0.0');
    }
    modules.set(m.id, { ctx, servers });
    send({ op: 'started', id: m.id, listenPort: port });
  } catch (e) {
    for (const s of servers) s.close();
    closeSync(rootFd);
    const err = e as NodeJS.ErrnoException;
    send({ op: 'failed', id: m.id, code: err.code === 'EADDRINUSE' || err.code === 'EACCES' ? 'HYLICS_ERR_MODULE_PORT_IN_USE' : 'HYLICS_ERR_MODULE_WORKER', message: err.message });
  }
}

function rateLimitedError(id: string): (code: string, message: string) => void {
  let windowStart = 0;
  let n = 0;
  return (code, message) => {
    const now = Date.now();
    if (now - windowStart > 1000) { windowStart = now; n = 0; }
    if (++n <= 5) send({ op: 'error', id, code, message });
  };
}

async function stop(id: string): Promise<void> {
  const r = modules.get(id);
  if (!r) { send({ op: 'stopped', id }); return; }
  modules.delete(id);
  await Promise.all(r.servers.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); })));
  closeSync(r.ctx.rootFd);
  flush(r.ctx, 0);
  send({ op: 'stopped', id });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

let lastFlush = Date.now();
function flush(ctx: ModuleContext, intervalMs: number): void {
  const c = ctx.counters;
  if (c.requests === 0 && c.bytes === 0 && c.errors === 0) return;
  const lat = c.latencies.sort((a, b) => a - b);
  const sum = lat.reduce((a, b) => a + b, 0);
  send({
    op: 'stats', id: ctx.id, kind: ctx.kind, intervalMs, requests: c.requests, bytes: c.bytes, errors: c.errors,
    latency: { meanMs: lat.length ? sum / lat.length : 0, p50Ms: percentile(lat, 0.5), p99Ms: percentile(lat, 0.99), maxMs: lat.length ? lat[lat.length - 1]! : 0 },
  });
  ctx.counters = { requests: 0, bytes: 0, errors: 0, latencies: [] };
}

setInterval(() => {
  const now = Date.now();
  for (const r of modules.values()) flush(r.ctx, now - lastFlush);
  lastFlush = now;
}, 1000).unref();

process.on('message', (m: ToWorker) => {
  if (m.op === 'start') void start(m);
  else if (m.op === 'stop') void stop(m.id);
});
// the manager went away: nothing left to serve for
process.on('disconnect', () => process.exit(0));

// Started as root so that our code and the addon load whatever the permissions of the directory the package
// sits in (a checkout under a 0700 directory is common); from here on the worker is unprivileged for good:
// setgroups/setgid/setuid as root set real, effective and saved ids and clear every capability.
const dropUid = Number(process.env.HYLICS_WORKER_UID ?? 65534);
const dropGid = Number(process.env.HYLICS_WORKER_GID ?? 65534);
if (process.getuid?.() === 0) {
  if (!Number.isInteger(dropUid) || dropUid <= 0 || !Number.isInteger(dropGid) || dropGid <= 0) process.exit(70);
  process.setgroups!([]);
  process.setgid!(dropGid);
  process.setuid!(dropUid);
  if (process.getuid() === 0 || process.geteuid!() === 0) process.exit(70);
}

send({ op: 'ready', native: nativeStatus() });
