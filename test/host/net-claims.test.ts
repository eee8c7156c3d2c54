// Issue #12 item 7: two daemons (state dirs) on one host must not hand out the same guest network index, also
// when the first one's guest is stopped (no link on the host to probe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetIndexClaims } from '../../src/host/net-claims.js';

test('network index claims: held by a daemon whose state still has the guest, stale ones taken over, released', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'hylics-claims-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'claims');
  const a = join(root, 'a');
  const b = join(root, 'b');
  for (const d of [a, b]) mkdirp(d);
  const da = new NetIndexClaims(a, dir);
  const db = new NetIndexClaims(b, dir);
  assert.ok(da.claim(3, 'web'));
  writeFileSync(join(a, 'state.json'), JSON.stringify({ version: 1, guests: { web: { network: { index: 3 } } } }));
  // daemon b, with a's guest stopped (no link): index 3 is not free
  assert.equal(db.claim(3, 'other'), false);
  assert.ok(db.claim(4, 'other'));
  assert.ok(da.claim(3, 'web'), 'the owner may claim again (restart after a reboot)');
  // a removes its guest: the record goes, the claim is released; b may have it
  writeFileSync(join(a, 'state.json'), JSON.stringify({ version: 1, guests: {} }));
  da.release(3, 'web');
  assert.ok(db.claim(3, 'again'));
  // a claim whose owner's record is gone (a crashed daemon, a deleted state dir) is stale: taken over
  assert.ok(da.claim(5, 'gone'));
  assert.ok(db.claim(5, 'b5'), 'a has no state for guest gone at index 5');
  // release never drops another daemon's claim
  da.release(5, 'gone');
  assert.equal(new NetIndexClaims(join(root, 'c'), dir).claim(4, 'x'), true, 'b has no state.json: its claims are stale');
});

function mkdirp(d: string): void {
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
}
