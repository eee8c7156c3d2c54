// The host's batcher of tier uses (src/host/tier-uses.ts): names a guest's socket offload sends are collected per
// guest, deduplicated, bounded per flush, and sent once per flush as tier.used only to that guest, only when its
// channel is up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TIER_USED_MAX_FILES, TierUsedEvent } from '../../src/core/protocol/index.js';
import { TierUses } from '../../src/host/tier-uses.js';
import { Value } from '@sinclair/typebox/value';

function sink(connected: string[]) {
  const sent: Array<{ guest: string; event: string; data: { source: string; files: string[] } }> = [];
  return {
    sent,
    isConnected: (g: string) => connected.includes(g),
    notify: (guest: string, event: string, data: unknown) => {
      sent.push({ guest, event, data: data as { source: string; files: string[] } });
      return true;
    },
  };
}

test('tier uses: per guest, deduplicated, one event per flush, nothing to a guest without a channel', async () => {
  const s = sink(['a', 'b']);
  const u = new TierUses(s, 50);
  for (let i = 0; i < 5; i++) u.note('a', 'v/x.ts');
  u.note('a', 'v/y.ts');
  u.note('b', 'z');
  u.note('gone', 'w');
  assert.equal(s.sent.length, 0, 'nothing before the flush');
  await sleep(200);
  assert.deepEqual(s.sent.map((e) => [e.guest, e.event, e.data.source, e.data.files]), [
    ['a', 'tier.used', 'socket-offload', ['v/x.ts', 'v/y.ts']],
    ['b', 'tier.used', 'socket-offload', ['z']],
  ]);
  for (const e of s.sent) assert.ok(Value.Check(TierUsedEvent, e.data), 'the event matches its schema');
  // the next batch starts empty
  u.note('a', 'v/x.ts');
  u.flush();
  assert.deepEqual(s.sent.at(-1)?.data.files, ['v/x.ts']);
  u.close();
});

test('tier uses: at most TIER_USED_MAX_FILES names per guest and flush, the rest counted as dropped', () => {
  const s = sink(['a']);
  const u = new TierUses(s, 60_000);
  for (let i = 0; i < TIER_USED_MAX_FILES + 10; i++) u.note('a', `f${i}`);
  u.note('a', 'f0'); // already in the batch: no drop
  u.flush();
  assert.equal(s.sent.length, 1);
  assert.equal(s.sent[0]!.data.files.length, TIER_USED_MAX_FILES);
  assert.equal(u.dropped, 10);
  assert.ok(Value.Check(TierUsedEvent, s.sent[0]!.data));
  u.close();
});
