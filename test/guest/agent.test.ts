import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelServer } from '../../src/host/channel/index.js';
import { connect, track, droppedReports } from '../../src/guest/lib.js';
import type { TaskEventT } from '../../src/core/protocol/index.js';
import { HylicsError } from '../../src/core/errors/index.js';
import { entryArgv, NODE_BIN } from '../../src/os/self.js';

type T = { after: (fn: () => unknown) => void };
const code = (c: string) => (e: unknown) => e instanceof HylicsError && e.code === c;
const b64 = (s: string) => Buffer.from(s, 'base64').toString();

interface Setup {
  dir: string;
  chan: string;
  app: string;
  server: ChannelServer;
  reports: TaskEventT[];
  agent: ChildProcess & { logs: string[] };
}

function newServer(reports: TaskEventT[]): ChannelServer {
  const server = new ChannelServer();
  server.handle('task.report', (_g, p: { events: TaskEventT[] }) => { reports.push(...p.events); return { accepted: p.events.length }; });
  server.handle('share.info', () => ({ sizeBytes: 64 << 20, usedBytes: 1 << 20, freeBytes: 63 << 20 }));
  return server;
}

async function setup(t: T, name = 'ga'): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), `hylics-agent-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const chan = join(dir, 'channel.sock');
  const app = join(dir, 'agent.sock');
  const reports: TaskEventT[] = [];
  const server = newServer(reports);
  t.after(() => server.close());
  await server.addGuest(name, { mode: 'listen', path: chan });
  const agent = spawn(NODE_BIN, [...entryArgv('guest/agent-main'), '--name', name, '--channel-unix', chan, '--app-socket', app, '--share', dir, '--disk-tier', join(dir, 'disk-tier'), '--bin-dir', join(dir, 'bin'), '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] }) as ChildProcess & { logs: string[] };
  agent.logs = [];
  agent.stderr!.on('data', (b: Buffer) => agent.logs.push(b.toString()));
  t.after(() => { if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL'); });
  await server.waitConnected(name, 30_000);
  return { dir, chan, app, server, reports, agent };
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('exec: output, exit codes, stdin, env, cwd, signals, timeout, output cap, spawn errors', async (t) => {
  const { server, dir } = await setup(t);
  const ex = (p: Record<string, unknown>) => server.request('ga', 'exec', { timeoutMs: 10_000, ...p } as never, { timeoutMs: 20_000 });
  const r1 = await ex({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  assert.equal(r1.exitCode, 3);
  assert.equal(r1.signal, null);
  assert.equal(b64(r1.stdout), 'out\n');
  assert.equal(b64(r1.stderr), 'err\n');
  assert.equal(r1.timedOut, false);
  const r2 = await ex({ argv: ['cat'], stdin: Buffer.from('from stdin\x00\xff').toString('base64') });
  assert.equal(r2.exitCode, 0);
  assert.deepEqual(Buffer.from(r2.stdout, 'base64'), Buffer.from('from stdin\x00\xff'));
  const r3 = await ex({ argv: ['sh', '-c', 'echo $HYL_X; pwd'], env: { HYL_X: 'xyz' }, cwd: dir });
  assert.equal(b64(r3.stdout), `xyz\n${dir}\n`);
  const r4 = await ex({ argv: ['sh', '-c', 'kill -KILL $$'] });
  assert.equal(r4.exitCode, null);
  assert.equal(r4.signal, 'SIGKILL');
  // timeout kills the whole process group (the sleep under sh too)
  const r5 = await ex({ argv: ['sh', '-c', 'sleep 30; echo never'], timeoutMs: 300 });
  assert.equal(r5.timedOut, true);
  assert.equal(r5.signal, 'SIGTERM');
  assert.equal(b64(r5.stdout), '');
  const r6 = await ex({ argv: ['sh', '-c', 'head -c 100000 /dev/zero'], maxOutputBytes: 1000 });
  assert.equal(Buffer.from(r6.stdout, 'base64').length, 1000);
  assert.equal(r6.stdoutTruncated, true);
  await assert.rejects(ex({ argv: ['/nonexistent/cmd'] }), code('HYLICS_ERR_EXEC_SPAWN'));
  await assert.rejects(ex({ argv: ['true'], cwd: join(dir, 'missing') }), code('HYLICS_ERR_EXEC_SPAWN'));
  await assert.rejects(ex({ argv: [] }), code('HYLICS_ERR_CHANNEL_BAD_MESSAGE'));
  // a request deadline shorter than the command: the caller gets DEADLINE, the agent kills the command
  await assert.rejects(server.request('ga', 'exec', { argv: ['sleep', '30'], timeoutMs: 60_000 }, { timeoutMs: 300 }), code('HYLICS_ERR_CHANNEL_DEADLINE'));
  const h = await server.request('ga', 'health', {});
  assert.equal(h.ok, true);
  assert.equal(h.name, 'ga');
});

test('library: track() reports start/end with response times to the host; share.info is forwarded; events reach apps', async (t) => {
  const { server, app, reports } = await setup(t);
  const v = await track('compress', async () => { await sleep(50); return 42; }, { socket: app, attrs: { bytes: 7 } });
  assert.equal(v, 42);
  await assert.rejects(track('fails', async () => { throw new Error('boom'); }, { socket: app }), /boom/);
  await until(() => reports.filter((r) => r.kind === 'end').length >= 2, 'two end reports');
  const end = reports.find((r) => r.kind === 'end' && r.name === 'compress')!;
  assert.ok(end.responseMs! >= 45, `responseMs ${end.responseMs}`);
  assert.equal(end.ok, true);
  assert.deepEqual(end.attrs, { bytes: 7 });
  assert.ok(reports.some((r) => r.kind === 'start' && r.id === end.id));
  const failed = reports.find((r) => r.kind === 'end' && r.name === 'fails')!;
  assert.equal(failed.ok, false);
  assert.equal(failed.error, 'boom');

  const c = await connect({ socket: app });
  t.after(() => c.close());
  assert.deepEqual(await c.shareInfo(), { sizeBytes: 64 << 20, usedBytes: 1 << 20, freeBytes: 63 << 20 });
  assert.equal((await c.health()).apps >= 1, true);
  await assert.rejects(c.request('exec', { argv: ['id'], timeoutMs: 100 }), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  // the descriptor copy names the calling process: never relayed (it would be the agent's), not offered
  assert.equal(c.peer.remote?.caps.includes('offload.socket.sendfd'), false);
  assert.equal(c.peer.remote?.caps.includes('offload.socket.handoff'), true);
  await assert.rejects(c.request('offload.socket.sendfd', { fd: 3, path: 'f', offset: 0 }, { timeoutMs: 1000 }), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  const got = new Promise<unknown[]>((r) => c.once('event', (...a: unknown[]) => r(a)));
  assert.equal(server.emitEvent('ga', 'share.resized', { sizeBytes: 123 }), true);
  assert.deepEqual(await got, ['share.resized', { sizeBytes: 123 }]);
  // no agent at all: track() still runs the work and only counts the lost report
  const before = droppedReports();
  assert.equal(await track('offline', () => 'done', { socket: join(app, 'nope') }), 'done');
  assert.equal(droppedReports(), before + 2);
  await assert.rejects(connect({ socket: join(app, 'nope') }), code('HYLICS_ERR_AGENT_UNREACHABLE'));
});

test('the server restarts: the agent reconnects with backoff, says hello again, and delivers reports queued meanwhile', async (t) => {
  const { server, chan, app, reports } = await setup(t);
  await track('before', () => 1, { socket: app });
  await until(() => reports.some((r) => r.name === 'before' && r.kind === 'end'), 'report before restart');
  await server.close();
  // the daemon is away: apps keep tracking, the agent queues
  for (let i = 0; i < 5; i++) await track(`while-down-${i}`, () => i, { socket: app });
  const c = await connect({ socket: app });
  t.after(() => c.close());
  const h = await c.health();
  assert.ok(h.queuedReports >= 10, `queued ${h.queuedReports}`);
  await assert.rejects(c.shareInfo(), code('HYLICS_ERR_CHANNEL_NOT_CONNECTED'));
  // a new daemon on the same socket path
  const reports2: TaskEventT[] = [];
  const server2 = newServer(reports2);
  t.after(() => server2.close());
  await server2.addGuest('ga', { mode: 'listen', path: chan });
  await server2.waitConnected('ga', 30_000);
  await until(() => reports2.filter((r) => r.name.startsWith('while-down-')).length === 10, 'queued reports after reconnect');
  assert.deepEqual(await c.shareInfo(), { sizeBytes: 64 << 20, usedBytes: 1 << 20, freeBytes: 63 << 20 });
  assert.equal((await server2.request('ga', 'health', {})).queuedReports, 0);
});

test('shutdown: the agent answers, then exits 0', async (t) => {
  const { server, agent } = await setup(t);
  const exited = new Promise<number | null>((r) => agent.once('exit', (c) => r(c)));
  assert.deepEqual(await server.request('ga', 'shutdown', { reason: 'test' }), { ok: true });
  assert.equal(await exited, 0);
});
