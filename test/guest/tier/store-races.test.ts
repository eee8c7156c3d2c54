// The tiered store against writers racing its moves (review of src/guest/tier, issue #9 item 5: "no data is ever
// lost"): another process's `hylics tier put` (a second TierStore on the same directories) or an app writing a tier
// path directly, at the test points of a move where a check has passed and the move acts on it; and the disk-tier
// copy a lookup handed out, kept while an app may still open it. Real tmpfs (memory tier) and a real directory on
// disk (disk tier); the store's clock is a variable; no timed assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TierStore } from '../../../src/guest/tier/store.js';
import { tierFixture, type TierFixture } from '../../helpers/tier-store.js';
import type { MoveHook } from '../../../src/guest/tier/fsops.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts a tmpfs as the memory tier)' : false;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// an hour ago: files an app writes now (real mtime) are newer than the store's puts (mtime = the store's clock)
const fixture = (t: { after: (fn: () => Promise<void>) => void }, sizeBytes = 16 * MiB): Promise<TierFixture> =>
  tierFixture(t, { sizeBytes, clockStartMs: Date.now() - 3_600_000 });

async function putBytes(s: TierStore, name: string, bytes: number): Promise<string> {
  const data = randomBytes(bytes);
  await s.put(name, Readable.from([data]));
  return sha(data);
}

const tmpsIn = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-tmp-'));

/** The name's copies in both tiers (sha of each), after the test. */
async function copies(f: TierFixture, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of [join(f.mem, name), join(f.disk, name)]) if (existsSync(p)) out.push(sha(await readFile(p)));
  return out;
}

/** A hook that runs `act` once, at `step` of a move whose destination is under `dstDir`. */
function once(step: string, dstDir: string, act: () => Promise<void>): { hook: MoveHook; fired: () => boolean } {
  let fired = false;
  return {
    hook: async (st, info) => {
      if (fired || st !== step || !info.dst.startsWith(`${dstDir}/`)) return;
      fired = true;
      await act();
    },
    fired: () => fired,
  };
}

/** Where another process's put lands in a move, and what the move must not do to it. */
const PUT_RACES = [
  {
    step: 'checked',
    // for the eviction the put lands in the disk tier (the move's destination), for the promotion in the share
    putInDestination: true,
    title: "right before a move's rename ({d}): the new version stays, the move's copy never replaces it",
    fired: 'the put ran between the check and the rename',
  },
  {
    step: 'unlinking',
    // the put lands in the move's source tier and removes the move's fresh copy in the other tier
    putInDestination: false,
    title: 'right before a move removes its source ({d}): the new version is not the one removed',
    fired: 'the put ran between the last check and the removal of the source',
  },
] as const;

for (const race of PUT_RACES) {
  for (const direction of ['promote', 'evict'] as const) {
    test(`a put by another process ${race.title.replace('{d}', direction)}`, { skip }, async (t) => {
      const f = await fixture(t);
      // the other process's store puts into the disk tier when its headroom makes the share look full
      const putToDisk = (direction === 'evict') === race.putInDestination;
      const cli = await f.store(putToDisk ? { headroomBytes: 2 ** 40 } : {});
      let newSha = '';
      const to = direction === 'evict' ? f.disk : f.mem;
      const h = once(race.step, to, async () => { newSha = await putBytes(cli, 'n', 100_000); });
      const s = await f.store({ promote: 'sync', hook: h.hook });
      await putBytes(s, 'n', MiB);
      f.clock.t += 1000;
      if (direction === 'promote') {
        await (await f.store()).shrink(0, 10_000);
        f.clock.t += 1000;
        await s.lookup('n');
      } else {
        await s.shrink(0, 10_000);
      }
      assert.ok(h.fired(), race.fired);
      assert.deepEqual(await copies(f, 'n'), [newSha], 'exactly one copy: the version put last');
      assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], []);
    });
  }
}

test('an app creating the share path while the file is being promoted keeps its file (the promotion does not replace it)', { skip }, async (t) => {
  const f = await fixture(t);
  const appData = randomBytes(50_000);
  const h = once('checked', f.mem, () => writeFile(join(f.mem, 'a'), appData));
  const s = await f.store({ promote: 'sync', hook: h.hook });
  await putBytes(s, 'a', MiB);
  await s.shrink(0, 10_000);
  f.clock.t += 1000;
  const e = await s.lookup('a');
  assert.ok(h.fired());
  assert.equal(sha(await readFile(e.path)), sha(appData), 'the lookup answers the app\'s file');
  assert.deepEqual(await copies(f, 'a'), [sha(appData)]);
});


/** A hook that stops every copy of `name` into `dir` after its first chunk until the test releases it. */
function gate(dir: string, name: string): { hook: MoveHook; reached: Promise<void>; release: () => void } {
  let reachedFn!: () => void, releaseFn!: () => void;
  const reached = new Promise<void>((r) => { reachedFn = r; });
  const released = new Promise<void>((r) => { releaseFn = r; });
  return {
    hook: async (step, info) => { if (step === 'tmp-partial' && info.dst === join(dir, name)) { reachedFn(); await released; } },
    reached,
    release: releaseFn,
  };
}

test('background promotion: a disk path handed out again while the copy runs is kept, even when the first hand-out had expired', { skip }, async (t) => {
  const f = await fixture(t);
  const g = gate(f.mem, 'first');
  let onSecondCopied: (() => Promise<void>) | undefined;
  const s = await f.store({
    promote: 'background',
    keepSourceMs: 30_000,
    hook: async (st, info) => {
      await g.hook(st, info);
      if (st !== 'copied' || !info.dst.endsWith('/second') || !onSecondCopied) return;
      const fn = onSecondCopied;
      onSecondCopied = undefined;
      await fn();
    },
  });
  for (const n of ['first', 'second']) await putBytes(s, n, 2 * MiB);
  const want = sha(await readFile(join(f.mem, 'second')));
  await s.shrink(0, 10_000);
  f.clock.t += 1000;
  assert.equal((await s.lookup('first')).promoting, true);
  await g.reached;
  assert.equal((await s.lookup('second')).promoting, true); // queued behind 'first'
  f.clock.t += 31_000; // the queue waited: the hand-out of 'second' has expired when its copy starts
  // ... and an app asks for 'second' again while it is being copied: it is handed the disk path again
  let again = '';
  onSecondCopied = async () => { again = (await s.lookup('second')).path; };
  g.release();
  await until(() => s.promotionsPending() === 0);
  assert.equal(again, join(f.disk, 'second'), 'the second lookup answered the disk path (the copy was not in place yet)');
  assert.ok(existsSync(again), 'the disk path handed out a moment ago still exists');
  assert.equal(sha(await readFile(again)), want);
  f.clock.t += 31_000;
  await s.promotionsSettled();
  assert.ok(!existsSync(again), 'removed once its hand-out expired');
  assert.deepEqual(await copies(f, 'second'), [want]);
});

test('a promotion after the share grew keeps a disk path a lookup handed out a moment ago', { skip }, async (t) => {
  const f = await fixture(t, 8 * MiB);
  const s = await f.store({ promote: 'background', keepSourceMs: 30_000 });
  const want = await putBytes(s, 'x', 2 * MiB);
  await s.shrink(0, 10_000);
  await writeFile(join(f.mem, 'filler'), randomBytes(7 * MiB)); // no room: the lookup answers the disk path
  f.clock.t += 1000;
  const p = await s.lookup('x');
  assert.deepEqual([p.tier, p.promoting], ['disk', false]);
  await rm(join(f.mem, 'filler')); // room again (as after a grow): share.resized promotes recently used files
  assert.equal((await s.promoteRecent()).movedFiles, 1);
  assert.equal((await s.locate('x'))?.tier, 'memory');
  assert.ok(existsSync(p.path), 'the disk path the app was handed still exists');
  assert.equal(sha(await readFile(p.path)), want);
  f.clock.t += 31_000;
  await s.promotionsSettled();
  assert.ok(!existsSync(p.path));
  assert.deepEqual(await copies(f, 'x'), [want]);
});

/** Wait (no time limit of its own: the test's timeout is the bound) until `cond` holds. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
}

test('a lookup keeps the file\'s mtime (its last-use update moves atime only, as far as utimes allows), so a move under way still finds the file unchanged', { skip }, async (t) => {
  const f = await fixture(t);
  const s = await f.store({ promote: 'off' });
  await putBytes(s, 'm', 1000);
  const p = join(f.mem, 'm');
  await utimes(p, 1_700_000_000.5, 1_700_000_000.123456); // an app's mtime, not on a millisecond
  const before = (await lstat(p, { bigint: true })).mtimeNs;
  for (let i = 0; i < 5; i++) { f.clock.t += 1000; await s.lookup('m'); }
  const after = await lstat(p, { bigint: true });
  assert.ok(Math.abs(Number(after.atimeNs) / 1e6 - f.clock.t) < 1, 'the last use is in atime');
  const drift = after.mtimeNs > before ? after.mtimeNs - before : before - after.mtimeNs;
  assert.ok(drift <= 10_000n, `mtime moved ${drift} ns`);
});

test('an app writing the disk path it was handed after the promotion copied it: lookups answer its version, the stale share copy goes', { skip }, async (t) => {
  const f = await fixture(t);
  const s = await f.store({ promote: 'background', keepSourceMs: 30_000 });
  await putBytes(s, 'c', MiB);
  await s.shrink(0, 10_000);
  f.clock.t += 1000;
  const p = await s.lookup('c');
  assert.deepEqual([p.tier, p.promoting], ['disk', true]);
  await until(() => s.promotionsPending() === 0);
  assert.ok(existsSync(join(f.mem, 'c')) && existsSync(p.path), 'promoted, the disk copy kept');
  const appData = randomBytes(2000);
  await writeFile(p.path, appData); // the app writes the path it was handed (in place: same inode)
  const q = await s.lookup('c');
  assert.equal(sha(await readFile(q.path)), sha(appData), 'the lookup answers the app\'s version');
  f.clock.t += 31_000;
  await s.promotionsSettled();
  assert.deepEqual(await copies(f, 'c'), [sha(appData)], 'one copy left: the app\'s');
});

test('a put whose new file is moved to the other tier before the put removes the old copy there keeps the data (it removes only the copy it replaced)', { skip }, async (t) => {
  for (const direction of ['evict', 'promote'] as const) {
    const f = await fixture(t);
    // the put lands in the share ('evict': the agent then evicts it) or in the disk tier ('promote': promoted)
    const agent = await f.store({ promote: 'sync' });
    const data = randomBytes(200_000);
    let fired = false;
    const cli = await f.store({
      ...(direction === 'promote' ? { headroomBytes: 2 ** 40 } : {}),
      hook: async (st) => {
        if (st !== 'put-placed' || fired) return;
        fired = true;
        // a complete move of the put's own new file, before the put looks at the other tier
        if (direction === 'evict') assert.equal((await agent.shrink(0, 10_000)).movedFiles, 1);
        else assert.equal((await agent.lookup('p')).tier, 'memory');
      },
    });
    await cli.put('p', Readable.from([data]));
    assert.ok(fired, `${direction}: the move ran between the put's rename and its removal of the other copy`);
    assert.deepEqual(await copies(f, 'p'), [sha(data)], `${direction}: the put's data is still there, once`);
  }
});

test('a share directory swapped for a symlink after the agent checked it never leads a move outside the store', { skip }, async (t) => {
  const f = await fixture(t);
  const outside = join(f.mem, '..', 'outside'); // beside the share: where a symlink would lead the agent
  await mkdir(outside);
  const s0 = await f.store();
  const want = await putBytes(s0, 'd/x', 300_000);
  await s0.shrink(0, 10_000); // d/x in the disk tier; the share keeps the directory d
  assert.equal((await s0.locate('d/x'))?.tier, 'disk');
  // the app (untrusted, writes the share) swaps d for a link to a directory outside once the move began
  const h = once('begin', f.mem, async () => {
    await rename(join(f.mem, 'd'), join(f.mem, 'd-real'));
    await symlink(outside, join(f.mem, 'd'));
  });
  const s = await f.store({ promote: 'sync', hook: h.hook });
  f.clock.t += 1000;
  await s.lookup('d/x').catch(() => undefined); // what it answers is not the point: where it acted is
  assert.ok(h.fired(), 'the swap happened after the checks');
  assert.deepEqual(await readdir(outside), [], 'nothing created outside the store');
  const found: string[] = [];
  for (const p of [join(f.mem, 'd-real', 'x'), join(f.disk, 'd', 'x')]) if (existsSync(p)) found.push(sha(await readFile(p)));
  assert.deepEqual(found, [want], 'the file is in the store once (the share directory it was moved into was the one checked)');
});
