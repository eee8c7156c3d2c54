// The addon's netlink batch of set element changes (src/os/nft-steer.ts moveFlow, native nftSetElems): no message
// asks for an ACK, so success is "no error answer queued when sendmsg returns"; a failing message must still reject
// and undo the whole batch. Moves destroy the element in the sets it leaves (DESTROYSETELEM, Linux >= 6.3); a kernel
// that refuses it (EINVAL, injected here) gets the add + delete form. Real sets: a table of this test's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../../src/os/native.js';
import { createSteerTable, flowKey, listSteerFlows, moveFlow, removeSteerTable, steerTableName, type Flow } from '../../src/os/nft-steer.js';
import { netlinkSetSkip } from '../helpers/proc.js';

const addon = nativeAddon().addon;
const skip = netlinkSetSkip();
const GUEST = 'srelems';
const TAG = 'srelemstest';
const flow: Flow = { guestAddr: '10.250.79.2', guestPort: 8080, clientAddr: '10.250.79.1', clientPort: 40000 };
const EL = '10.250.79.2 . 8080 . 10.250.79.1 . 40000';

test('set element batches: errors without ACKs, destroy, and the fallback without it', { skip }, async (t) => {
  await createSteerTable(GUEST, TAG);
  t.after(() => removeSteerTable(GUEST, TAG));
  const table = steerTableName(GUEST, TAG);
  const key = flowKey(flow);
  // destroying an element that is not there is no error
  addon!.nftSetElems(table, [{ set: 'steer', add: false, key, destroy: true }]);
  // a delete of an absent element fails the batch: reported although nothing asks for an ACK, and undone as a whole
  assert.throws(() => addon!.nftSetElems(table, [{ set: 'steer', add: true, key }, { set: 'hold', add: false, key }]),
    (e: { errno?: string }) => e.errno === 'ENOENT');
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: [], back: [] });
  // a missing table: an error too
  assert.throws(() => addon!.nftSetElems(`${table}_none`, [{ set: 'steer', add: true, key }]), (e: { errno?: string }) => e.errno === 'ENOENT');
  await moveFlow(GUEST, flow, 'steer', TAG);
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: [EL], back: [] });
  // a kernel without DESTROYSETELEM (before 6.3) refuses the batch with EINVAL: the move is made the older way
  const real = addon!.nftSetElems.bind(addon);
  const seen: boolean[] = [];
  let every = true; // first an EINVAL the add + delete form gets too: not about DESTROYSETELEM
  addon!.nftSetElems = (tb, ops) => {
    const d = ops.some((o) => o.destroy === true);
    seen.push(d);
    if (d || every) throw Object.assign(new Error('nftables set elements: Invalid argument'), { errno: 'EINVAL' });
    real(tb, ops);
  };
  const warned: string[] = [];
  const onWarning = (w: Error & { code?: string }): void => { warned.push(w.code ?? w.message); };
  process.on('warning', onWarning);
  t.after(() => { addon!.nftSetElems = real; process.off('warning', onWarning); });
  await assert.rejects(moveFlow(GUEST, flow, 'back', TAG), /Invalid argument/);
  assert.deepEqual(seen.splice(0), [true, false], 'both forms tried, the error thrown');
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: [EL], back: [] }, 'nothing changed');
  every = false;
  await moveFlow(GUEST, flow, 'back', TAG);
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: [], back: [EL] });
  await moveFlow(GUEST, flow, null, TAG);
  assert.deepEqual(await listSteerFlows(GUEST, TAG), { hold: [], steer: [], back: [] });
  assert.deepEqual(seen, [true, false, false], 'destroy tried again (the shared EINVAL kept it), then the add + delete form');
  await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
  assert.deepEqual(warned, ['HYLICS_NFT_NO_DESTROYSETELEM'], 'said once');
});
