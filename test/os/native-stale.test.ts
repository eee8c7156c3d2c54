// A stale native addon (built before an export the code needs: a checkout that skipped `npm run build:native`) is
// refused as a whole with HYLICS_ERR_NATIVE_ADDON_STALE, naming what is missing and the command that fixes it; there
// are no JS fallbacks for an older build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HylicsError } from '../../src/core/errors/index.js';
import { ADDON_VERSION, checkAddon, nativeAddon } from '../../src/os/native.js';

/** A fake addon with every export the code needs. */
function fakeAddon(): Record<string, unknown> {
  const fn = (): void => undefined;
  return {
    openBeneath: fn, sendfile: fn, sendfileNow: fn, abortSendfile: fn, tcpRepairDump: fn, tcpRepairRestore: fn,
    tcpNames: fn, recvWithFd: fn, sendWithFd: fn, dropFilter: fn, tcpRepair: fn, tcpQueues: fn, closeFd: fn,
    shutdownWrite: fn, setRecvBuffer: fn, abortClose: fn, nftSetElems: fn, offloadTransfer: fn, tcpHandoffFreeze: fn,
    tcpHandoffRestore: fn, tcpHandoffThaw: fn, peerPidfd: fn, takePeerSocket: fn, closeShared: fn,
    version: ADDON_VERSION,
  };
}

function staleError(loaded: unknown): HylicsError {
  try { checkAddon(loaded, '/x/hylics_native.node'); } catch (e) {
    assert.ok(e instanceof HylicsError, `not a HylicsError: ${String(e)}`);
    return e;
  }
  assert.fail('a stale addon was accepted');
}

test('an addon with every export is accepted as it is', () => {
  const a = fakeAddon();
  assert.equal(checkAddon(a), a);
});

test('an addon missing an export (built before tcpHandoffFreeze) is refused: stale, names it, says how to fix', () => {
  const a = fakeAddon();
  delete a.tcpHandoffFreeze;
  const e = staleError(a);
  assert.equal(e.code, 'HYLICS_ERR_NATIVE_ADDON_STALE');
  assert.match(e.message, /tcpHandoffFreeze/);
  assert.match(e.message, /npm run build:native/);
  assert.match(e.message, /\/x\/hylics_native\.node/);
  assert.deepEqual(e.details?.missing, ['tcpHandoffFreeze']);
});

test('every missing export is named, and one of the wrong type counts as missing', () => {
  const a = fakeAddon();
  delete a.offloadTransfer;
  delete a.nftSetElems;
  a.version = 'x';
  const e = staleError(a);
  assert.equal(e.code, 'HYLICS_ERR_NATIVE_ADDON_STALE');
  assert.deepEqual([...(e.details?.missing as string[])].sort(), ['nftSetElems', 'offloadTransfer', 'version']);
});

test('an addon with every export but an older version (a call that would ignore a new argument) is refused', () => {
  const a = fakeAddon();
  a.version = ADDON_VERSION - 1;
  const e = staleError(a);
  assert.equal(e.code, 'HYLICS_ERR_NATIVE_ADDON_STALE');
  assert.match(e.message, new RegExp(`version ${ADDON_VERSION - 1}, this code needs ${ADDON_VERSION}`));
  assert.deepEqual(e.details?.missing, []);
});

test('something that is not an addon at all is refused the same way', () => {
  assert.equal(staleError(undefined).code, 'HYLICS_ERR_NATIVE_ADDON_STALE');
  assert.equal(staleError(42).code, 'HYLICS_ERR_NATIVE_ADDON_STALE');
});

test('the addon built in this tree is not stale', (t) => {
  const { addon, reason, stale } = nativeAddon();
  if (!addon && !stale) { t.skip(`native addon not loaded here: ${reason}`); return; }
  assert.equal(stale, undefined, reason);
});
