// The direct offload socket (src/host/channel-backend.ts): a listening (sandbox) guest gets HOST_OFFLOAD_SOCKET
// beside its channel socket, served by hylicsd for the ops registered with `direct` only, bound to the guest by
// which socket it is, with several connections live at once (one per app) that never replace the agent's channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createChannelBackend } from '../../../src/host/channel-backend.js';
import { ChannelPeer, connectUnix } from '../../../src/os/channel/index.js';
import { HOST_OFFLOAD_SOCKET } from '../../../src/core/protocol/index.js';
import { HylicsError } from '../../../src/core/errors/index.js';

const code = (c: string) => (e: unknown) => e instanceof HylicsError && e.code === c;

test('direct offload socket: only direct ops, identity is the socket, many apps at once, gone with the guest', async (t) => {
  const d = mkdtempSync(join(tmpdir(), `hylics-direct-${process.pid}-`));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const ch = createChannelBackend(pino({ level: 'silent' }));
  t.after(() => ch.close());
  const calls: Array<[string, unknown]> = [];
  ch.handle('offload.socket.fallback', async (guest, p) => { calls.push([guest, p]); return { counted: true }; }, { direct: true });
  ch.handle('module.list', async () => ({ modules: [] })); // channel only
  for (const g of ['a', 'b']) mkdirSync(join(d, g));
  await ch.attach('a', { mode: 'listen', path: join(d, 'a', 'channel.sock') });
  await ch.attach('b', { mode: 'listen', path: join(d, 'b', 'channel.sock') });
  // a connecting endpoint (microVM: QEMU's socket) gets none
  await ch.attach('c', { mode: 'connect', path: join(d, 'c-qemu.sock') });
  assert.ok(!existsSync(join(d, HOST_OFFLOAD_SOCKET)), 'no direct socket for a connect-mode guest');
  await ch.detach('c');

  // the agent's channel of a
  const agent = new ChannelPeer(await connectUnix(join(d, 'a', 'channel.sock')), { role: 'agent' });
  t.after(() => agent.close());
  await agent.ready;
  await ch.waitConnected('a', 10_000);

  // two apps of a at once, one of b; a claimed name means nothing
  const app = async (g: string, name: string): Promise<ChannelPeer> => {
    const p = new ChannelPeer(await connectUnix(join(d, g, HOST_OFFLOAD_SOCKET)), { role: 'app', name });
    t.after(() => p.close());
    await p.ready;
    return p;
  };
  const a1 = await app('a', 'a1');
  const a2 = await app('a', 'b');
  const b1 = await app('b', 'a');
  assert.deepEqual(await a1.request('offload.socket.fallback', { reason: 'budget' }), { counted: true });
  assert.deepEqual(await a2.request('offload.socket.fallback', { reason: 'error' }), { counted: true });
  assert.deepEqual(await b1.request('offload.socket.fallback', { reason: 'budget' }), { counted: true });
  assert.deepEqual(calls.map(([g]) => g), ['a', 'a', 'b']);
  assert.ok(a1.connected && a2.connected, 'a second app does not replace the first');
  assert.ok(ch.isConnected('a') && agent.connected, "the apps never replace the agent's channel");

  // nothing but the direct ops: a host op of the channel, an unknown op, bad params
  await assert.rejects(a1.request('module.list', {}), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  await assert.rejects(a1.request('share.info', {}), code('HYLICS_ERR_CHANNEL_OP_DENIED'));
  await assert.rejects(a1.request('offload.socket.fallback', { reason: 42 } as never), (e: unknown) => e instanceof HylicsError && e.code.startsWith('HYLICS_ERR_'));
  assert.equal(calls.length, 3);

  // an op served `direct` after the guest was attached is allowed on its next connections: the direct server's
  // handler table is the one list of what the socket allows (it used to be copied into the guest at attach)
  ch.handle('offload.socket.release', async () => ({ released: false }), { direct: true });
  const a3 = await app('a', 'a3');
  assert.deepEqual(await a3.request('offload.socket.release', { handoff: 'h1' }), { released: false });
  a3.close();

  // the apps' connections closing is not the agent's disconnect
  let disconnects = 0;
  ch.onConnection((_g, connected) => { if (!connected) disconnects++; });
  a1.close();
  a2.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(disconnects, 0);
  assert.ok(ch.isConnected('a'));

  await ch.detach('a');
  assert.ok(!existsSync(join(d, 'a', HOST_OFFLOAD_SOCKET)), 'the direct socket goes with the guest');
  await assert.rejects(connectUnix(join(d, 'a', HOST_OFFLOAD_SOCKET)));
  assert.ok(existsSync(join(d, 'b', HOST_OFFLOAD_SOCKET)));
});
