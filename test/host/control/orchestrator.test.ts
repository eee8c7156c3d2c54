// The orchestrator's grow and shrink protocol against a fake tmpfs share and a fake guest tier manager: ack,
// timeout (retried), refusal (no tier ops), a guest that frees too little, and a remount refused by the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Orchestrator, SHRINK_ATTEMPTS, SHRINK_DEADLINE_MS, shrinkHeadroom } from '../../../src/host/control/orchestrator.js';
import { FakeGuest } from './fakes.js';
import { MiB } from '../../../src/core/units.js';


test('grow remounts first, then tells the guest share.resized', async () => {
  const g = new FakeGuest(32 * MiB, 10 * MiB);
  const r = await new Orchestrator(g).apply('a', 64 * MiB);
  assert.deepEqual(r, { appliedBytes: 64 * MiB, action: 'grow', note: '' });
  assert.deepEqual(g.resizes, [64 * MiB]);
  assert.deepEqual(g.events, [{ event: 'share.resized', data: { sizeBytes: 64 * MiB } }]);
  assert.equal(g.calls.length, 0, 'no tier op for a grow');
});

test('the same size is a hold: nothing remounted, nothing sent', async () => {
  const g = new FakeGuest(32 * MiB, 10 * MiB);
  const r = await new Orchestrator(g).apply('a', 32 * MiB);
  assert.equal(r.action, 'hold');
  assert.equal(g.resizes.length + g.events.length + g.calls.length, 0);
});

test('shrink with an acknowledgement: the guest moves files down to the target minus the headroom, then the remount', async () => {
  const g = new FakeGuest(128 * MiB, 100 * MiB);
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(r.action, 'shrink');
  assert.equal(r.appliedBytes, 40 * MiB);
  assert.equal(r.tierOps, true);
  assert.deepEqual(g.calls, [{ op: 'tier.shrink', params: { targetUsedBytes: 40 * MiB - shrinkHeadroom(40 * MiB), deadlineMs: SHRINK_DEADLINE_MS } }]);
  assert.equal(g.used, 40 * MiB - shrinkHeadroom(40 * MiB));
  assert.deepEqual(g.resizes, [40 * MiB]);
  assert.deepEqual(g.events.at(-1), { event: 'share.resized', data: { sizeBytes: 40 * MiB } });
  assert.match(r.note, /tier\.shrink moved 1 files/);
});

test('shrink when usage already fits: no tier op, straight remount', async () => {
  const g = new FakeGuest(128 * MiB, 4 * MiB);
  const r = await new Orchestrator(g).apply('a', 32 * MiB);
  assert.equal(r.action, 'shrink');
  assert.equal(g.calls.length, 0);
  assert.deepEqual(g.resizes, [32 * MiB]);
});

test('shrink when usage fits, to a guest known to have a tier manager: asked anyway (it stops its background promotions)', async () => {
  const g = new FakeGuest(128 * MiB, 4 * MiB);
  const r = await new Orchestrator(g).apply('a', 32 * MiB, true);
  assert.equal(r.action, 'shrink');
  assert.deepEqual(g.calls, [{ op: 'tier.shrink', params: { targetUsedBytes: 32 * MiB - shrinkHeadroom(32 * MiB), deadlineMs: SHRINK_DEADLINE_MS } }]);
  assert.deepEqual(g.resizes, [32 * MiB]);
});

test('shrink timeout: asked SHRINK_ATTEMPTS times, then the share stays at its usage (never below) and the note says why', async () => {
  const g = new FakeGuest(128 * MiB, 100 * MiB);
  g.tierAnswer = 'timeout';
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(g.calls.filter((c) => c.op === 'tier.shrink').length, SHRINK_ATTEMPTS);
  assert.ok(r.appliedBytes >= g.used, 'never below usage');
  assert.ok(r.appliedBytes < 128 * MiB, 'still shrinks to just above usage');
  assert.equal(r.action, 'clamped');
  assert.match(r.note, /attempt 1\/2 timed out.*attempt 2\/2 timed out.*kept at usage/);
  assert.equal(g.used, 100 * MiB, 'no file moved, none lost');
});

test('refusal: an agent without tier ops keeps its share at usage, and is known to have none', async () => {
  const g = new FakeGuest(100 * MiB + 4096, 100 * MiB);
  g.tierAnswer = 'unknown';
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(r.tierOps, false);
  assert.equal(r.action, 'refused');
  assert.equal(r.appliedBytes, 100 * MiB + 4096);
  assert.deepEqual(g.resizes, [], 'no remount at all');
  assert.match(r.note, /no tier manager.*kept at/);
  assert.equal(g.calls.length, 1, 'an unknown op is not retried');
  // known to have none: not asked again
  const again = await new Orchestrator(g).apply('a', 40 * MiB, false);
  assert.equal(g.calls.length, 1);
  assert.equal(again.action, 'refused');
  assert.match(again.note, /no tier manager/);
});

test('an agent whose allow-list lacks the tier ops (HYLICS_ERR_CHANNEL_OP_DENIED) is an agent without a tier manager', async () => {
  const g = new FakeGuest(128 * MiB, 100 * MiB);
  g.tierAnswer = 'denied';
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(r.tierOps, false);
  assert.equal(g.calls.length, 1);
  assert.ok(r.appliedBytes >= 100 * MiB);
  assert.match(r.note, /no tier manager \(tier\.shrink: HYLICS_ERR_CHANNEL_OP_DENIED\)/);
});

test('no agent connected: no request, kept at usage', async () => {
  const g = new FakeGuest(128 * MiB, 50 * MiB);
  g.connected = false;
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(g.calls.length, 0);
  assert.ok(r.appliedBytes >= 50 * MiB && r.appliedBytes < 128 * MiB);
  assert.match(r.note, /no agent connected/);
  assert.equal(g.events.at(-1)?.event, undefined, 'no event to a guest that is not there');
});

test('a guest that frees too little (files held open) keeps its share at what is left in use', async () => {
  const g = new FakeGuest(128 * MiB, 100 * MiB);
  g.tierAnswer = 'partial';
  g.pinned = 70 * MiB;
  const r = await new Orchestrator(g).apply('a', 40 * MiB);
  assert.equal(g.used, 70 * MiB);
  assert.equal(r.action, 'clamped');
  assert.ok(r.appliedBytes >= 70 * MiB && r.appliedBytes <= 72 * MiB, `${r.appliedBytes}`);
  assert.match(r.note, /short of the target: files held open/);
});

test('a remount the share refuses (files grew meanwhile) changes nothing', async () => {
  const g = new FakeGuest(128 * MiB, 10 * MiB);
  const orig = g.resize.bind(g);
  g.resize = async (n, b) => { g.used = 60 * MiB; return orig(n, b); };
  const r = await new Orchestrator(g).apply('a', 32 * MiB);
  assert.equal(r.action, 'refused');
  assert.equal(g.size, 128 * MiB);
  assert.match(r.note, /refused/);
});
