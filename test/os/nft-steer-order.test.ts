// Set changes of one flow land in call order (src/os/nft-steer.ts moveFlow): a change the kernel refused with EBUSY
// is retried a moment later, and before the fix a later change of the same flow (the next handoff steering it) went
// through in between, so the retry of the earlier one (the last handoff's release: out of every set) undid it. The
// EBUSY is injected into the addon's netlink call; the sets are real (a table of this test's own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../../src/os/native.js';
import { createSteerTable, listSteerFlows, moveFlow, removeSteerTable, type Flow } from '../../src/os/nft-steer.js';
import { netlinkSetSkip } from '../helpers/proc.js';

const addon = nativeAddon().addon;
const skip = netlinkSetSkip();
const GUEST = 'srorder';
const TAG = 'srordertest';

test('an EBUSY retry of a flow\'s release does not undo the next handoff\'s steer', { skip }, async (t) => {
  await createSteerTable(GUEST, TAG);
  t.after(() => removeSteerTable(GUEST, TAG));
  const real = addon!.nftSetElems.bind(addon);
  let busy = 1;
  addon!.nftSetElems = (table, ops) => {
    if (busy-- > 0) throw Object.assign(new Error('nft commit: Device or resource busy'), { errno: 'EBUSY' });
    real(table, ops);
  };
  t.after(() => { addon!.nftSetElems = real; });
  const flow: Flow = { guestAddr: '10.250.78.2', guestPort: 8080, clientAddr: '10.250.78.1', clientPort: 40000 };
  await moveFlow(GUEST, flow, 'back', TAG).catch(() => undefined); // the held hand-back (refused once: busy)
  busy = 1;
  const release = moveFlow(GUEST, flow, null, TAG); // handoff N's release: refused once, retried
  const next = moveFlow(GUEST, flow, 'steer', TAG); // handoff N+1 steers the flow here
  await Promise.all([release, next]);
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: ['10.250.78.2 . 8080 . 10.250.78.1 . 40000'], back: [] });
});
