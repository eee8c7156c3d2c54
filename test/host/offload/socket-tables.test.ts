// Socket offload's steering tables carry the daemon's id, as module tables do: two daemons (state dirs) with a
// guest of the same name each have their own table, and a daemon's start-up cleanup removes only its own leftovers
// (any guest's, as ModuleManager.cleanupStale does), never another daemon's nor a table it uses itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketOffload } from '../../../src/host/offload/socket.js';
import {
  createSteerTable, listSteerFlows, listSteerTableGuests, listSteerTables, removePolicyRoutingIfUnused,
  removeSteerTable, steerTableName,
} from '../../../src/os/nft-steer.js';
import { tcpRepairAvailable } from '../../../src/os/tcp-repair.js';

const has = (bin: string): boolean => { try { execFileSync('which', [bin], { stdio: 'ignore' }); return true; } catch { return false; } };
const skip = process.getuid?.() !== 0 ? 'needs root (nftables)' : !has('nft') ? 'needs nft'
  : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const ADDR = '10.213.77.2';

function offload(tag: string, share: string): SocketOffload {
  const off = new SocketOffload({ log: SILENT, tableTag: tag });
  off.wire({ handle: () => undefined, onConnection: () => undefined }, () => ({ addr: ADDR, sharePath: share }));
  return off;
}

test('steering tables are named per daemon; cleanupStale removes only its own leftovers', { skip }, async (t) => {
  const share = mkdtempSync(join(tmpdir(), 'hylics-socktab-'));
  writeFileSync(join(share, 'f'), 'hello');
  const id = (process.pid % 100000).toString(36);
  const [tagA, tagB] = [`sa${id}`, `sb${id}`];
  const g = 'g1';
  const live: SocketOffload[] = [];
  // set changes go to a long-lived nft the daemon does not wait on (unref'd): keep the loop alive as a daemon would
  const alive = setInterval(() => undefined, 1000);
  t.after(async () => {
    for (const o of live) await o.guestGone(g).catch(() => undefined);
    for (const [guest, tag] of [[g, tagA], [g, tagB], ['old', tagA]] as const) await removeSteerTable(guest, tag).catch(() => undefined);
    await removePolicyRoutingIfUnused().catch(() => undefined);
    for (const o of live) await o.close();
    rmSync(share, { recursive: true, force: true });
    clearInterval(alive);
  });
  assert.notEqual(steerTableName(g, tagA), steerTableName(g, tagB));
  assert.equal(steerTableName(g, tagA), `hylics_sock_${tagA}_g1`);
  const a = offload(tagA, share);
  const b = offload(tagB, share);
  live.push(a, b);
  const begin = { localAddr: ADDR, localPort: 8080, remoteAddr: '10.213.78.3', remotePort: 40000, path: 'f', offset: 0, mode: 'return' as const };
  const ha = await a.begin(g, begin);
  const hb = await b.begin(g, { ...begin, remotePort: 40001 });
  const tables = await listSteerTables();
  assert.ok(tables.includes(steerTableName(g, tagA)) && tables.includes(steerTableName(g, tagB)), tables.join());
  assert.deepEqual((await listSteerFlows(g, tagA)).hold, [`${ADDR} . 8080 . 10.213.78.3 . 40000`], 'A holds its flow in its table');
  assert.deepEqual((await listSteerFlows(g, tagB)).hold, [`${ADDR} . 8080 . 10.213.78.3 . 40001`], 'B its own, in its own');
  await a.release(g, ha.handoff);
  assert.deepEqual((await listSteerFlows(g, tagB)).hold.length, 1, 'A\'s release leaves B\'s flow alone');

  // A's daemon dies (its tables stay, plus one of a guest it no longer has); B's cleanup at any time keeps its own
  // table in use and touches none of A's
  await createSteerTable('old', tagA);
  assert.deepEqual(await b.cleanupStale(), [], 'B uses its table: nothing of its own is stale');
  assert.deepEqual((await listSteerTableGuests(tagA)).sort(), [g, 'old'], 'A\'s tables untouched by B');
  // A's restarted daemon (same tag) removes A's leftovers, whatever guest they are of, and only those
  const a2 = offload(tagA, share);
  live.push(a2);
  assert.deepEqual((await a2.cleanupStale()).sort(), [g, 'old']);
  assert.deepEqual(await listSteerTableGuests(tagA), []);
  assert.deepEqual(await listSteerTableGuests(tagB), [g], 'B\'s table is still there');
  assert.deepEqual((await listSteerFlows(g, tagB)).hold.length, 1, 'with B\'s held flow');
  await b.release(g, hb.handoff);
  assert.deepEqual(await listSteerFlows(g, tagB), { hold: [], steer: [], back: [] });
});
