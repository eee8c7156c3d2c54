// #9 "Bad input": a guest cannot set its own share budget or any guest's controller. The controller's commands
// (control.set/show/log/profile/calibrate) and the budget (hylicsd --share-budget) exist only on the operator's
// API (the daemon's Unix socket); none is a channel op, so a guest asking for one over its channel (the real
// ChannelServer with the daemon's default allow-list, a real peer) is refused, whatever name its hello claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelServer } from '../../../src/host/channel/index.js';
import { ChannelPeer, connectUnix } from '../../../src/os/channel/index.js';
import { OPS } from '../../../src/core/protocol/index.js';
import { HylicsError } from '../../../src/core/errors/index.js';

const CONTROL_COMMANDS = ['control.set', 'control.show', 'control.log', 'control.profile', 'control.calibrate'];

test('no channel op reaches the controller or the share budget', () => {
  const guestCallable = OPS.opsServedBy('host');
  assert.ok(guestCallable.includes('task.report'), 'guests do report tasks');
  for (const op of guestCallable) assert.doesNotMatch(op, /^control\.|budget|^guest\.|^share\.resize/, `${op} is callable by a guest`);
  for (const op of CONTROL_COMMANDS) assert.equal(OPS.op(op), undefined, `${op} is not a channel op`);
  assert.deepEqual(OPS.listOps().filter((o) => /^control\.|budget/.test(o.name)), [], 'no such op for any end');
});

test('a guest asking over its channel for control or budget commands is refused, its own name or another\'s', async (t) => {
  const d = mkdtempSync(join(tmpdir(), `hylics-ctl-deny-${process.pid}-`));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const server = new ChannelServer({ helloTimeoutMs: 2000 });
  t.after(() => server.close());
  const called: string[] = [];
  server.handle('task.report', (guest) => { called.push(guest); return { accepted: 0 }; });
  await server.addGuest('evil', { mode: 'listen', path: join(d, 'evil.sock') });
  const s = await connectUnix(join(d, 'evil.sock'));
  const evil = new ChannelPeer(s, { role: 'agent', name: 'victim' });
  t.after(() => evil.close());
  await evil.ready;
  await server.waitConnected('evil', 5000);
  const refused = (e: unknown): boolean =>
    e instanceof HylicsError && ['HYLICS_ERR_CHANNEL_UNKNOWN_OP', 'HYLICS_ERR_CHANNEL_OP_DENIED'].includes(e.code);
  const asks: Array<[string, Record<string, unknown>]> = [
    ['control.set', { name: 'evil', body: { scheme: 'static', slo: '1s', min: '8G', max: '8G' } }],
    ['control.set', { name: 'victim', body: { scheme: 'off', slo: '1s' } }],
    ['control.calibrate', { name: 'victim', body: { task: 'x', argv: ['true'] } }],
    ['control.show', { name: 'victim' }],
    ['share.resize', { name: 'evil', body: { size: '8G' } }],
    ['daemon.budget', { bytes: 1e15 }],
  ];
  for (const [op, params] of asks) {
    await assert.rejects(evil.request(op as never, params as never, { timeoutMs: 5000 }), refused, op);
  }
  // the channel still works for what a guest may do, answered as the guest the socket belongs to
  const ev = { kind: 'end', name: 'x', id: '1', startMs: 0, endMs: 5, responseMs: 5, ok: true };
  await evil.request('task.report', { events: [ev] } as never, { timeoutMs: 5000 });
  assert.deepEqual(called, ['evil']);
});
