// Socket offload's steering tables carry the daemon's id, as module tables do: two daemons (state dirs) with a
// guest of the same name each have their own table, and a daemon's start-up cleanup removes only its own leftovers
// (any guest's, as ModuleManager.cleanupStale does), never another daemon's nor a table it uses itself. A guest's
// table, with the rules that drop its frozen sockets' packets, is made when its agent connects: before its first
// handoff's freeze.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketOffload } from '../../../src/host/offload/socket.js';
import { nft } from '../../../src/os/nft.js';
import {
  createSteerTable, listSteerFlows, listSteerTableGuests, listSteerTables, removePolicyRoutingIfUnused,
  removeSteerTable, steerTableName,
} from '../../../src/os/nft-steer.js';
import { tcpRepairAvailable } from '../../../src/os/tcp-repair.js';
import { has } from '../../helpers/proc.js';

const skip = process.getuid?.() !== 0 ? 'needs root (nftables)' : !has('nft') ? 'needs nft'
  : !tcpRepairAvailable().ok ? `native addon: ${tcpRepairAvailable().reason}` : false;
const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const ADDR = '10.213.77.2';

type OnConnection = (fn: (guest: string, connected: boolean) => void) => void;
function offload(tag: string, share: string, onConnection: OnConnection = () => undefined): SocketOffload {
  const off = new SocketOffload({ log: SILENT, tableTag: tag });
  off.wire({ handle: () => undefined, onConnection }, () => ({ addr: ADDR, sharePath: share }));
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

test('a guest\'s table and its frozen-socket drop rules exist once its agent connects, before any handoff', { skip }, async (t) => {
  const share = mkdtempSync(join(tmpdir(), 'hylics-socktab-'));
  const tag = `sc${(process.pid % 100000).toString(36)}`;
  const g = 'g2';
  let connection: ((guest: string, connected: boolean) => void) | undefined;
  const off = offload(tag, share, (fn) => { connection = fn; });
  t.after(async () => {
    await off.guestGone(g).catch(() => undefined);
    await removeSteerTable(g, tag).catch(() => undefined);
    await removePolicyRoutingIfUnused().catch(() => undefined);
    await off.close();
    rmSync(share, { recursive: true, force: true });
  });
  assert.deepEqual(await listSteerTableGuests(tag), [], 'no table before the agent connects');
  assert.ok(connection, 'wired to the channel\'s connections');
  connection(g, true);
  // made in the background (the connection handler does not wait): polled, bounded only so a failure ends
  for (let i = 0; i < 300 && (await listSteerTableGuests(tag)).length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await off.guestConnected(g); // the creation the connection started (made once per guest and address)
  assert.deepEqual(await listSteerTableGuests(tag), [g], 'made at the connection, no handoff yet');
  const listed = await nft(['list', 'table', 'ip', steerTableName(g, tag)]);
  // in both chains: the guest's frozen socket (prerouting) and the host's frozen copy (output)
  const drops = listed.split('\n').filter((l) => new RegExp(`ip saddr ${ADDR.replace(/\./g, '\\.')} ip dscp 0x39 counter packets \\d+ bytes \\d+ drop`).test(l));
  assert.equal(drops.length, 2, listed);
  // and any packet neither from nor to the guest's address leaves each chain at its first rule
  const chains = listed.split(/chain /).slice(1).map((c) => c.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^(type|}|[a-z]+ \{$)/.test(l)));
  assert.equal(chains.length, 2, listed);
  for (const c of chains) assert.equal(c[0], `ip saddr != ${ADDR} ip daddr != ${ADDR} accept`, listed);
  assert.equal(off.stats(g).handoffs, 0);
  // a reconnect keeps it; the start-up cleanup keeps a table in use; the guest's removal takes it away
  connection(g, false);
  connection(g, true);
  await off.guestConnected(g);
  assert.deepEqual(await off.cleanupStale(), []);
  assert.deepEqual(await listSteerTableGuests(tag), [g]);
  await off.guestGone(g);
  assert.deepEqual(await listSteerTableGuests(tag), [], 'removed with the guest');
});
