// The policy routing that steering needs (`ip rule fwmark 0x4859`, table 18521) is shared by every daemon on the
// host and removed when no steering table is left. Its two check-and-act sequences run under one host-wide flock
// (src/os/nft-steer.ts withSteerLock): "ensure the rule, create my table" and "list the tables, none left, remove
// the rule". Here another daemon is played by a `flock` process on the same lock file, stopped between its two
// steps; before the lock, the removal deleted the rule under the creating daemon (its steering broken for good), and
// a creation finished while a removal was about to delete the rule. Real `ip rule`, real nft tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { has } from '../helpers/proc.js';
import {
  STEER_LOCK_PATH, STEER_MARK, STEER_ROUTE_TABLE, createSteerTable, ensurePolicyRouting, ensureSteerTable,
  listSteerTables, policyRoutingPresent, removePolicyRoutingIfUnused, removeSteerTable, steerTableName,
} from '../../src/os/nft-steer.js';

const skip = process.getuid?.() !== 0 ? 'needs root (ip rule, nftables)' : !has('nft') ? 'needs nft'
  : !has('flock') ? 'needs flock (util-linux)' : false;
const TAG = `lk${(process.pid % 100000).toString(36)}`;
const GUEST = 'g1';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Long enough for an unlocked step (a few `ip`/`nft` runs) to finish on a loaded host; not an assertion. */
const GRACE_MS = 3000;

/** Another daemon's hold of the steering lock: a `flock` process, released by ending its stdin. */
async function holdLock(): Promise<() => Promise<void>> {
  mkdirSync(dirname(STEER_LOCK_PATH), { recursive: true });
  const p = spawn('flock', ['-x', STEER_LOCK_PATH, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    p.stdout.on('data', (d: Buffer) => { if (d.toString().includes('locked')) resolve(); });
    p.on('close', (c) => reject(new Error(`flock exited ${c}`)));
  });
  return () => new Promise<void>((resolve) => { p.on('close', () => resolve()); p.stdin.end(); });
}

async function otherTables(): Promise<string[]> {
  return (await listSteerTables()).filter((t) => t !== steerTableName(GUEST, TAG));
}

test('a removal of the shared routing waits for a daemon between ensuring it and creating its table', { skip }, async (t) => {
  t.after(cleanup);
  await ensurePolicyRouting();
  const release = await holdLock(); // the other daemon: rule ensured, its table not created yet
  let released = false;
  try {
    // this daemon's guest went; it finds no table (the other's is not there yet)
    const removal = removePolicyRoutingIfUnused();
    await Promise.race([removal, sleep(GRACE_MS)]);
    await createSteerTable(GUEST, TAG); // the other daemon's table
    await release();
    released = true;
    assert.equal(await removal, false, 'the removal saw the other daemon\'s table');
  } finally { if (!released) await release(); }
  assert.ok(await policyRoutingPresent(), 'the other daemon\'s steering still has its rule and route');
});

test('a daemon creating its table waits for a removal of the shared routing in progress', { skip }, async (t) => {
  t.after(cleanup);
  const release = await holdLock(); // the other daemon is removing: it listed the tables
  let released = false;
  try {
    const others = await otherTables();
    const creating = ensureSteerTable(GUEST, TAG);
    await Promise.race([creating, sleep(GRACE_MS)]);
    // it found none and deletes the rule and route (other helpers' tables on this host: then it would not, and this
    // test shows nothing; never delete the routing from under them)
    if (others.length === 0) {
      while ((await spawnCode('ip', ['-4', 'rule', 'del', 'fwmark', String(STEER_MARK), 'lookup', String(STEER_ROUTE_TABLE)])) === 0);
      await spawnCode('ip', ['-4', 'route', 'flush', 'table', String(STEER_ROUTE_TABLE)]);
    } else t.diagnostic(`other steering tables on this host (${others.join(', ')}): the removal step is not played`);
    await release();
    released = true;
    await creating;
  } finally { if (!released) await release(); }
  assert.ok((await listSteerTables()).includes(steerTableName(GUEST, TAG)));
  assert.ok(await policyRoutingPresent(), 'the new table\'s steering has its rule and route');
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', String(STEER_ROUTE_TABLE)]).toString();
  assert.match(routes, /local default dev lo/);
});

async function cleanup(): Promise<void> {
  await removeSteerTable(GUEST, TAG).catch(() => undefined);
  await removePolicyRoutingIfUnused().catch(() => undefined);
}

function spawnCode(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => { const p = spawn(cmd, args, { stdio: 'ignore' }); p.on('close', resolve); });
}
