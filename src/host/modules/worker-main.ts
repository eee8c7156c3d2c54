// The stream gate worker: one unprivileged process per guest that has `stream` modules (spawned as root by the
// ModuleManager, drops to nobody before serving). It holds fd 4, a directory fd of its guest's share, and per
// stream module one node:http server on a unix socket that only that guest's nginx reaches (see serve.ts for what
// it answers), bound in the engine's gate/ directory through fd 5 (a directory fd the manager passes: the daemon's
// state directory stays closed to nobody). Bodies of media segments never pass through here: nginx sends them.
import { closeSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { toHylicsError } from '../../core/errors/index.js';
import { nativeStatus, openDirBeneath } from '../../os/native.js';
import { GateState, handle, type ModuleContext } from './serve.js';
import type { FromWorker, ToWorker } from './types.js';

const SHARE_FD = 4;
const GATE_DIR_FD = 5;
/** The module's socket inside the gate directory (a unix socket path through the fd's magic link, short always). */
const socketPathOf = (name: string): string => `/proc/self/fd/${GATE_DIR_FD}/${name}`;
/** nginx reuses upstream connections (keepalive 8); an idle one is closed after this long. */
const GATE_KEEPALIVE_MS = 60_000;
/** A gate request is a few hundred bytes from nginx; a stuck one is cut after this long. */
const GATE_REQUEST_MS = 10_000;

interface Running { ctx: ModuleContext; server: Server; socketPath: string }
const modules = new Map<string, Running>();

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
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

async function start(m: Extract<ToWorker, { op: 'start' }>): Promise<void> {
  if (!/^[a-z0-9-]{1,64}\.sock$/.test(m.socketName)) { send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_MODULE_WORKER', message: `bad socket name ${JSON.stringify(m.socketName)}` }); return; }
  if (modules.has(m.id)) { send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_CONFLICT', message: `module ${m.id} already runs` }); return; }
  let rootFd: number;
  try {
    rootFd = openDirBeneath(SHARE_FD, m.root === '' ? '.' : m.root).fd;
  } catch (e) {
    send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_MODULE_ROOT', message: `root ${JSON.stringify(m.root)} is not a directory inside the share: ${toHylicsError(e).message}` });
    return;
  }
  const ctx: ModuleContext = { id: m.id, rootFd, gate: new GateState(), onError: rateLimitedError(m.id) };
  const server = createServer(
    { keepAliveTimeout: GATE_KEEPALIVE_MS, requestTimeout: GATE_REQUEST_MS, headersTimeout: GATE_REQUEST_MS },
    (req, res) => handle(ctx, req, res),
  );
  try {
    const socketPath = socketPathOf(m.socketName);
    try { unlinkSync(socketPath); } catch { /* none left from a previous gate */ }
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, () => { server.off('error', reject); resolve(); }); });
    modules.set(m.id, { ctx, server, socketPath });
    send({ op: 'started', id: m.id });
  } catch (e) {
    server.close();
    closeSync(rootFd);
    send({ op: 'failed', id: m.id, code: 'HYLICS_ERR_MODULE_WORKER', message: (e as Error).message });
  }
}

async function stop(id: string): Promise<void> {
  const r = modules.get(id);
  if (!r) { send({ op: 'stopped', id }); return; }
  modules.delete(id);
  await new Promise<void>((resolve) => { r.server.close(() => resolve()); r.server.closeAllConnections(); });
  closeSync(r.ctx.rootFd);
  send({ op: 'stopped', id });
}

function probe(id: string): void {
  const r = modules.get(id);
  const mem = process.memoryUsage();
  send({ op: 'probe', id, gate: r ? r.ctx.gate.size() : { playlists: 0, uris: 0, dirs: 0 }, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed });
}

process.on('message', (m: ToWorker) => {
  if (m.op === 'start') void start(m);
  else if (m.op === 'stop') void stop(m.id);
  else if (m.op === 'probe') probe(m.id);
});
// the manager went away: nothing left to gate for
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
