// The guest's tiered store on a real tmpfs (memory tier) and a real directory on disk (disk tier): placement,
// LRU shrink, idle eviction with an injected clock, promotion, files held open, escape attempts, a concurrent
// reader that must never see a torn file, and an agent process SIGKILLed at every step of a move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isHylicsError } from '../../../src/core/errors/index.js';
import { remountTmpfs } from '../../../src/os/tmpfs.js';
import { tierName } from '../../../src/guest/tier/names.js';
import type { TierStore, TierStoreOptions } from '../../../src/guest/tier/store.js';
import { tierFixture, type TierFixture } from '../../helpers/tier-store.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts a tmpfs as the memory tier)' : false;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const code = (c: string) => (e: unknown): boolean => isHylicsError(e) && e.code === c;

test('tier names: escapes and bad names are refused with stable codes before any file system call', () => {
  assert.deepEqual(tierName('a/b/c.ts'), ['a', 'b', 'c.ts']);
  assert.deepEqual(tierName('seg 001.ts'), ['seg 001.ts']);
  for (const n of ['..', '../x', 'a/../../b', 'a/..']) assert.throws(() => tierName(n), code('HYLICS_ERR_TIER_ESCAPE'), n);
  for (const n of ['/etc/passwd', '/']) assert.throws(() => tierName(n), code('HYLICS_ERR_TIER_ESCAPE'), n);
  for (const n of ['', 'a\0b', 'a//b', './a', 'a/', 'a/./b', '.hylics-tmp-1-x', 'd/.hylics', 'x'.repeat(256), `${'a/'.repeat(600)}b`]) {
    assert.throws(() => tierName(n), code('HYLICS_ERR_TIER_BAD_NAME'), JSON.stringify(n.slice(0, 20)));
  }
  assert.throws(() => tierName(42), code('HYLICS_ERR_TIER_BAD_NAME'));
});

/** A 8 MiB tmpfs as the share and a directory on the real disk as the disk tier; a clock tests move by hand. */
const fixture = (t: { after: (fn: () => Promise<void>) => void }, sizeBytes = 8 * MiB): Promise<TierFixture> =>
  tierFixture(t, { sizeBytes });

async function putBytes(s: TierStore, name: string, bytes: number): Promise<{ sha: string; tier: string }> {
  const data = randomBytes(bytes);
  const e = await s.put(name, Readable.from([data]));
  return { sha: sha(data), tier: e.tier };
}

async function shaOf(s: TierStore, name: string): Promise<string> {
  const f = await s.locate(name);
  assert.ok(f, `${name} is in a tier`);
  return sha(await readFile(f.path));
}

test('placement: new files land in the share while it has room, then in the disk tier; listing and stats', { skip }, async (t) => {
  const f = await fixture(t);
  const s = await f.store();
  const put: Record<string, { sha: string; tier: string }> = {};
  for (let i = 0; i < 5; i++) { f.clock.t += 1000; put[`v/seg${i}.ts`] = await putBytes(s, `v/seg${i}.ts`, 2 * MiB); }
  // 8 MiB share, 64 KiB headroom: three 2 MiB files fit, the fourth does not
  assert.deepEqual(Object.values(put).map((p) => p.tier), ['memory', 'memory', 'memory', 'disk', 'disk']);
  const ls = await s.list();
  assert.deepEqual(ls.map((e) => [e.name, e.tier]).sort(), Object.entries(put).map(([n, p]) => [n, p.tier]).sort());
  for (const [n, p] of Object.entries(put)) assert.equal(await shaOf(s, n), p.sha);
  const st = await s.stats();
  assert.deepEqual([st.memoryFiles, st.memoryBytes, st.diskFiles, st.diskBytes], [3, 6 * MiB, 2, 4 * MiB]);
  // replacing a name removes the copy in the other tier
  f.clock.t += 1000;
  const again = await putBytes(s, 'v/seg4.ts', 1000);
  assert.equal(again.tier, 'memory');
  assert.equal((await s.list()).filter((e) => e.name === 'v/seg4.ts').length, 1);
  assert.ok(!existsSync(join(f.disk, 'v/seg4.ts')));
  // a file path as the source
  const src = join(f.disk, '..', 'src.bin');
  await writeFile(src, randomBytes(5000));
  assert.equal((await s.put('from-file', src)).tier, 'memory');
  assert.equal(await shaOf(s, 'from-file'), sha(await readFile(src)));
});

test('shrink moves least recently used files first, until the share usage is at the target; checksums unchanged', { skip }, async (t) => {
  const f = await fixture(t, 16 * MiB);
  const s = await f.store();
  const sums: Record<string, string> = {};
  for (const n of ['a', 'b', 'c', 'd', 'e']) { f.clock.t += 1000; sums[n] = (await putBytes(s, n, 2 * MiB)).sha; }
  f.clock.t += 1000;
  await s.lookup('a'); // a is now the most recently used
  f.clock.t += 1000;
  await s.lookup('c');
  const used0 = (await s.shareUsage()).usedBytes;
  const r = await s.shrink(used0 - 3 * MiB, 10_000);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.movedFiles, 2);
  assert.equal(r.movedBytes, 4 * MiB);
  assert.ok(r.usedBytes <= used0 - 3 * MiB);
  const tiers = Object.fromEntries((await s.list()).map((e) => [e.name, e.tier]));
  assert.deepEqual(tiers, { a: 'memory', b: 'disk', c: 'memory', d: 'disk', e: 'memory' }); // b and d were the LRU two
  for (const n of Object.keys(sums)) assert.equal(await shaOf(s, n), sums[n]);
  assert.equal((await s.stats()).evictions, 2);
  // a target below what can be moved (the store's own files stay): everything movable goes, ok=false with a reason
  await writeFile(join(f.mem, '.hylics-not-a-store-file'), randomBytes(MiB));
  const r2 = await s.shrink(0, 10_000);
  assert.equal(r2.ok, false);
  assert.equal(r2.movedFiles, 3);
  assert.match(r2.reason ?? '', /nothing left to move/);
  assert.ok(r2.usedBytes >= MiB && r2.usedBytes < 2 * MiB, String(r2.usedBytes));
  for (const n of Object.keys(sums)) assert.equal(await shaOf(s, n), sums[n]);
});

test('idle eviction with an injected clock; promotion on access (sync) when there is room, a miss when not; after a resize', { skip }, async (t) => {
  const f = await fixture(t, 8 * MiB);
  const s = await f.store({ idleMs: 60_000, promote: 'sync' });
  const sums: Record<string, string> = {};
  for (const n of ['old1', 'old2', 'new']) { sums[n] = (await putBytes(s, n, 2 * MiB)).sha; f.clock.t += 10_000; }
  // now = put(old1) + 30 s: nothing is 60 s idle
  assert.equal((await s.evictIdle()).movedFiles, 0);
  f.clock.t += 35_000; // old1 idle 65 s, old2 55 s, new 45 s
  let r = await s.evictIdle();
  assert.equal(r.movedFiles, 1);
  assert.equal((await s.locate('old1'))?.tier, 'disk');
  f.clock.t += 10_000; // old2 65 s
  r = await s.evictIdle();
  assert.equal(r.movedFiles, 1);
  assert.equal((await s.locate('old2'))?.tier, 'disk');
  assert.equal((await s.locate('new'))?.tier, 'memory');
  // a lookup of a disk file: a miss, and promoted because the share has room
  const hit0 = await s.lookup('new');
  assert.equal(hit0.foundIn, 'memory');
  const p = await s.lookup('old1');
  assert.equal(p.foundIn, 'disk');
  assert.equal(p.tier, 'memory');
  assert.equal(sha(await readFile(p.path)), sums.old1);
  // fill the share so old2 cannot come back: the lookup answers the disk path
  await putBytes(s, 'filler', 3 * MiB + 512 * 1024);
  const q = await s.lookup('old2');
  assert.deepEqual([q.foundIn, q.tier], ['disk', 'disk']);
  assert.equal(sha(await readFile(q.path)), sums.old2);
  // promote:false keeps a file where it is even when there is room
  const st = await s.stats();
  assert.deepEqual([st.hits, st.misses, st.promotions, st.evictions], [1, 2, 1, 2]);
  // the share grows: recently used disk files move back (most recent first)
  await remountTmpfs(f.mem, { sizeBytes: 16 * MiB });
  const pr = await s.promoteRecent();
  assert.equal(pr.movedFiles, 1);
  assert.equal((await s.locate('old2'))?.tier, 'memory');
  for (const n of Object.keys(sums)) assert.equal(await shaOf(s, n), sums[n]);
  // last use survives a new store (an agent restart): it lives in the files' atime
  const s2 = await f.store({ idleMs: 60_000 });
  const before = (await s.list()).map((e) => [e.name, e.lastUseMs]).sort();
  assert.deepEqual((await s2.list()).map((e) => [e.name, e.lastUseMs]).sort(), before);
  const noPromote = await f.store({ promote: 'off' });
  await s.shrink(0, 10_000);
  const np = await noPromote.lookup('new');
  assert.deepEqual([np.foundIn, np.tier], ['disk', 'disk']);
});

test('idle eviction: a file the host keeps reporting uses of stays in the memory tier even when the reports come further apart than the idle time; then it moves', { skip }, async (t) => {
  const f = await fixture(t);
  // the idle time shorter than the gap between two of the host's reports (lighttpd's: 4-5 s, 8-9 s under load)
  const s = await f.store({ idleMs: 1000, hostUseGraceMs: 30_000 });
  await putBytes(s, 'v/served.ts', 64 * 1024);
  await putBytes(s, 'v/looked-up.ts', 64 * 1024);
  await s.lookup('v/looked-up.ts'); // no busy grace in this fixture: an app's use counts for idleMs only
  assert.deepEqual(await s.hostUsed(['v/served.ts'], []), { touched: 1, promoted: 0 });
  f.clock.t += 9000; // the module's next report is 9 s away: both files are 9 s idle now
  let r = await s.evictIdle();
  assert.deepEqual([r.movedFiles, r.skippedBusy], [1, 1]);
  assert.equal((await s.locate('v/looked-up.ts'))?.tier, 'disk');
  assert.equal((await s.locate('v/served.ts'))?.tier, 'memory');
  // the report arrives; the next one is 29 s away: still kept
  assert.deepEqual(await s.hostUsed(['v/served.ts'], []), { touched: 1, promoted: 0 });
  f.clock.t += 29_000;
  r = await s.evictIdle();
  assert.deepEqual([r.movedFiles, r.skippedBusy], [0, 1]);
  assert.equal((await s.locate('v/served.ts'))?.tier, 'memory');
  // no report for the grace: the host stopped using it, and it is idle like any other file
  f.clock.t += 1000;
  r = await s.evictIdle();
  assert.equal(r.movedFiles, 1);
  assert.equal((await s.locate('v/served.ts'))?.tier, 'disk');
  // a 404 the host reports moves a disk-tier file back, and it is kept the same way
  assert.deepEqual(await s.hostUsed([], ['v/served.ts']), { touched: 0, promoted: 1 });
  f.clock.t += 9000;
  r = await s.evictIdle();
  assert.deepEqual([r.movedFiles, r.skippedBusy], [0, 1]);
  assert.equal((await s.locate('v/served.ts'))?.tier, 'memory');
});

test('files held open: a writer\'s file is never moved, a reader\'s is skipped (tmpfs frees it only at close) and stays readable', { skip }, async (t) => {
  const f = await fixture(t, 16 * MiB);
  const s = await f.store();
  for (const n of ['w', 'r', 'x']) { await putBytes(s, n, MiB); f.clock.t += 1000; }
  const w = await open(join(f.mem, 'w'), 'r+');
  const rd = await open(join(f.mem, 'r'), 'r');
  t.after(async () => { await w.close().catch(() => {}); await rd.close().catch(() => {}); });
  const r = await s.shrink(0, 10_000);
  assert.equal(r.ok, false);
  assert.equal(r.movedFiles, 1); // only x
  assert.match(r.reason ?? '', /2 file\(s\) held open/);
  assert.equal((await s.locate('w'))?.tier, 'memory');
  assert.equal((await s.locate('r'))?.tier, 'memory');
  // a file moved while a reader holds it: the reader keeps reading the old inode to the end
  await rd.close();
  const sumR = await shaOf(s, 'r');
  const held = await open(join(f.mem, 'r'), 'r');
  const sOpenBlind = await f.store({ openFiles: async () => new Map() });
  assert.equal((await sOpenBlind.shrink(0, 10_000)).movedFiles >= 1, true);
  assert.equal((await s.locate('r'))?.tier, 'disk');
  assert.equal(sha(await held.readFile()), sumR);
  await held.close();
  await w.close();
});

test('escape attempts: symlinks in either tier are refused and never followed by scans or moves', { skip }, async (t) => {
  const f = await fixture(t);
  const s = await f.store();
  const outside = join(f.disk, '..', 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'secret'), 'secret');
  await symlink(outside, join(f.mem, 'evil'));
  await symlink(join(outside, 'secret'), join(f.mem, 'evil-file'));
  await mkdir(join(f.disk, 'd'), { recursive: true });
  await symlink(outside, join(f.disk, 'd', 'link'));
  await assert.rejects(s.lookup('evil/secret'), code('HYLICS_ERR_TIER_SYMLINK'));
  await assert.rejects(s.lookup('evil-file'), code('HYLICS_ERR_TIER_SYMLINK'));
  await assert.rejects(s.lookup('d/link/secret'), code('HYLICS_ERR_TIER_SYMLINK'));
  await assert.rejects(s.put('evil/x', Readable.from([Buffer.from('x')])), code('HYLICS_ERR_TIER_SYMLINK'));
  await assert.rejects(s.put('../x', Readable.from([Buffer.from('x')])), code('HYLICS_ERR_TIER_ESCAPE'));
  await assert.rejects(s.lookup('/etc/passwd'), code('HYLICS_ERR_TIER_ESCAPE'));
  await assert.rejects(s.lookup('a\0b'), code('HYLICS_ERR_TIER_BAD_NAME'));
  await assert.rejects(s.lookup('nope'), code('HYLICS_ERR_TIER_NOT_FOUND'));
  assert.deepEqual(await s.list(), []);
  await s.shrink(0, 10_000);
  assert.deepEqual(await readdir(outside), ['secret']);
  assert.equal(await readFile(join(outside, 'secret'), 'utf8'), 'secret');
  assert.ok(!existsSync(join(outside, 'x')));
});

/** argv running `script` (an ES module text) with this process's node and loader flags. */
const nodeScript = (script: string): string[] => [...process.execArgv.filter((a) => !a.startsWith('--test')), '--input-type=module', '-e', script];
const storeUrl = new URL('../../../src/guest/tier/store.js', import.meta.url).href;
/** The first line a child process writes to stdout (or all it wrote, if it closed before a newline). */
const firstLine = (c: ReturnType<typeof spawn>): Promise<string> => new Promise((resolve) => {
  let buf = '';
  c.stdout!.on('data', (d: Buffer) => { buf += d.toString(); if (buf.includes('\n')) resolve(buf.trim()); });
  c.on('close', () => resolve(buf.trim()));
});

for (const promote of ['sync', 'background'] as const) test(`a concurrent reader never sees a torn file while the file moves back and forth between the tiers (promotion ${promote})`, { skip }, async (t) => {
  const f = await fixture(t, 32 * MiB);
  const s = await f.store({ idleMs: 0, promote });
  const data = randomBytes(6 * MiB);
  await s.put('big', Readable.from([data]));
  const want = sha(data);
  // the reader is another process: open the share path, else the disk path; every complete read is checked
  const reader = spawn(process.execPath, nodeScript(`
    import { readFileSync } from 'node:fs'; import { createHash } from 'node:crypto';
    const paths = ${JSON.stringify([join(f.mem, 'big'), join(f.disk, 'big')])};
    // at least 4 s and 12 complete reads (a loaded host reads slowly), at most 60 s
    let reads = 0, torn = 0, missing = 0; const from = Date.now();
    while ((Date.now() < from + 4000 || reads < 12) && Date.now() < from + 60_000) {
      let b; for (const p of paths) { try { b = readFileSync(p); break; } catch (e) { if (e.code !== 'ENOENT') throw e; } }
      if (!b) { missing++; continue; }
      reads++; if (createHash('sha256').update(b).digest('hex') !== ${JSON.stringify(want)}) torn++;
    }
    process.stdout.write(JSON.stringify({ reads, torn, missing }));
  `), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const done = new Promise<void>((r) => reader.on('close', () => r()));
  let moves = 0;
  let finished = false;
  void done.then(() => { finished = true; });
  while (!finished) {
    const r = await s.shrink(0, 10_000);
    if (r.movedFiles) moves++;
    f.clock.t += 1000;
    await s.lookup('big'); // promotes it back (background: after the answer)
    await s.promotionsSettled();
    moves++;
  }
  const res = JSON.parse(out) as { reads: number; torn: number; missing: number };
  assert.equal(res.torn, 0, out);
  assert.ok(res.reads > 10, out);
  assert.ok(moves >= 4, `moves ${moves}`);
  assert.equal(await shaOf(s, 'big'), want);
});

test('an agent killed at every step of a move loses nothing: recovery leaves exactly one complete copy', { skip, timeout: 120_000 }, async (t) => {
  // promote-background: the copy made by the background worker, with the disk copy kept through a busy grace (so the
  // child never reaches 'unlinked' there: killed after the rename, both tiers hold the file)
  for (const direction of ['evict', 'promote', 'promote-background'] as const) {
    for (const step of ['tmp-partial', 'copied', 'checked', 'renamed', 'unlinking', 'aside', 'unlinked'] as const) {
      if (direction === 'promote-background' && (step === 'unlinking' || step === 'aside' || step === 'unlinked')) continue;
      const f = await fixture(t, 32 * MiB);
      const s = await f.store();
      const data = randomBytes(3 * MiB + 12345);
      await s.put('v/seg.ts', Readable.from([data]));
      if (direction !== 'evict') await s.shrink(0, 10_000);
      const from = direction === 'evict' ? 'memory' : 'disk';
      assert.equal((await s.locate('v/seg.ts'))?.tier, from);
      // the "agent": a process doing the move that stops at `step`; we SIGKILL it there
      const child = spawn(process.execPath, nodeScript(`
        const { TierStore } = await import(${JSON.stringify(storeUrl)});
        const hook = async (st) => { if (st === ${JSON.stringify(step)}) { process.stdout.write('AT ' + st + '\\n'); await new Promise(() => {}); } };
        const s = await new TierStore({ memoryDir: ${JSON.stringify(f.mem)}, diskDir: ${JSON.stringify(f.disk)}, hook, headroomBytes: 0,
          ...${JSON.stringify(direction === 'promote-background' ? { promote: 'background', busyGraceMs: 600_000, keepSourceMs: 600_000 } : { promote: 'sync', busyGraceMs: 0 })} }).open();
        if (${JSON.stringify(direction)} === 'evict') await s.shrink(0, 60000); else { await s.lookup('v/seg.ts'); await s.promotionsSettled(); }
        process.stdout.write('DONE\\n');
      `), { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await firstLine(child);
      assert.equal(line, `AT ${step}`, `${direction}: the child reached ${step}`);
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      const copies = [join(f.mem, 'v/seg.ts'), join(f.disk, 'v/seg.ts')].filter((p) => existsSync(p)).length;
      assert.ok(copies >= 1, `${direction}/${step}: a complete copy exists before recovery`);
      const s2 = await f.store();
      const rep = await s2.recover();
      const tmps = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-tmp-') || n.includes('.hylics-aside-'));
      assert.deepEqual([...await tmps(f.mem), ...await tmps(f.disk)], [], `${direction}/${step}: no temporary copy or aside name left`);
      const after = [join(f.mem, 'v/seg.ts'), join(f.disk, 'v/seg.ts')].filter((p) => existsSync(p));
      assert.equal(after.length, 1, `${direction}/${step}: exactly one copy (${JSON.stringify(rep)})`);
      assert.equal(sha(await readFile(after[0]!)), sha(data), `${direction}/${step}: content intact`);
      if (step === 'tmp-partial' || step === 'copied' || step === 'checked') assert.equal(rep.tempsRemoved, 1);
      if (step === 'renamed' || step === 'unlinking' || step === 'aside') assert.equal(rep.duplicatesResolved, 1);
      // killed with the source renamed aside to be checked: recovery gives it back (then it is a duplicate)
      if (step === 'aside') assert.equal(rep.asidesRestored, 1);
    }
  }
});

test('an agent killed right after renaming aside a source an app replaced (to give it back) loses nothing: recovery restores the newer version', { skip, timeout: 120_000 }, async (t) => {
  for (const direction of ['evict', 'promote'] as const) {
    // the store's puts are an hour old: the app's write (real mtime) is the newer version
    const f = await tierFixture(t, { sizeBytes: 16 * MiB, clockStartMs: Date.now() - 3_600_000 });
    const s = await f.store();
    await s.put('r/n', Readable.from([randomBytes(MiB)]));
    if (direction === 'promote') await s.shrink(0, 10_000);
    const from = direction === 'evict' ? f.mem : f.disk;
    const appData = randomBytes(70_000);
    // the "agent" moves the file; right before it removes the source, an app replaces the source (write + rename);
    // the agent renames that aside, sees it is not the file it copied, and is killed before it gives it back
    const child = spawn(process.execPath, nodeScript(`
      const { TierStore } = await import(${JSON.stringify(storeUrl)});
      const { writeFile, rename } = await import('node:fs/promises');
      const src = ${JSON.stringify(join(from, 'r/n'))};
      const hook = async (st) => {
        if (st === 'unlinking') { await writeFile(src + '.app', Buffer.from(${JSON.stringify(appData.toString('base64'))}, 'base64')); await rename(src + '.app', src); }
        if (st === 'aside') { process.stdout.write('AT aside\\n'); await new Promise(() => {}); }
      };
      const s = await new TierStore({ memoryDir: ${JSON.stringify(f.mem)}, diskDir: ${JSON.stringify(f.disk)}, hook, headroomBytes: 0, promote: 'sync', busyGraceMs: 0, keepSourceMs: 0 }).open();
      if (${JSON.stringify(direction)} === 'evict') await s.shrink(0, 60000); else await s.lookup('r/n');
      process.stdout.write('DONE\\n');
    `), { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await firstLine(child);
    assert.equal(line, 'AT aside', `${direction}: the child renamed the replaced source aside`);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const rep = await (await f.store()).recover();
    const after = [join(f.mem, 'r/n'), join(f.disk, 'r/n')].filter((p) => existsSync(p));
    assert.equal(after.length, 1, `${direction}: exactly one copy (${JSON.stringify(rep)})`);
    assert.equal(sha(await readFile(after[0]!)), sha(appData), `${direction}: the app's newer version survived`);
    const own = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-'));
    assert.deepEqual([...await own(f.mem), ...await own(f.disk)], [], `${direction}: no temporary or aside name left`);
  }
});

test('a temporary copy of a dead process is removed even when its pid now belongs to a live process (pid reuse)', { skip: skip || (existsSync('/usr/bin/unshare') ? false : 'needs unshare(1)'), timeout: 120_000 }, async (t) => {
  const f = await tierFixture(t, { sizeBytes: 16 * MiB });
  const tempsIn = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-tmp-'));
  await (await f.store()).put('u', Readable.from([randomBytes(2 * MiB)]));
  // fresh pid namespaces make the reuse certain: the writer is pid 1 in its own, killed mid-copy; in the recovery's
  // namespace pid 1 is a live shell and the recovery runs as pid 2
  const inNewPidNs = (script: string, viaShell: boolean): ReturnType<typeof spawn> => spawn('unshare', [
    '--pid', '--fork', '--kill-child', '--mount-proc',
    ...(viaShell ? ['sh', '-c', '"$0" "$@"; true'] : []), process.execPath, ...nodeScript(script),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const opts = `{ memoryDir: ${JSON.stringify(f.mem)}, diskDir: ${JSON.stringify(f.disk)}, headroomBytes: 0, busyGraceMs: 0 }`;
  const writer = inNewPidNs(`
    const { TierStore } = await import(${JSON.stringify(storeUrl)});
    const hook = async (st) => { if (st === 'tmp-partial') { process.stdout.write('AT ' + process.pid + '\\n'); await new Promise(() => {}); } };
    await (await new TierStore({ ...${opts}, hook }).open()).shrink(0, 60000);
  `, false);
  assert.equal(await firstLine(writer), 'AT 1', 'the writer (pid 1 in its namespace) stopped mid-copy');
  writer.kill('SIGKILL'); // --kill-child: the namespace's pid 1 dies with unshare
  await new Promise((r) => writer.on('close', r));
  assert.equal((await tempsIn(f.disk)).length, 1, 'the dead writer left its temporary copy');
  const rec = inNewPidNs(`
    const { TierStore } = await import(${JSON.stringify(storeUrl)});
    const { readFileSync } = await import('node:fs');
    const rep = await (await new TierStore(${opts}).open()).recover();
    process.stdout.write(JSON.stringify({ pid: process.pid, pid1: readFileSync('/proc/1/comm', 'utf8').trim(), rep }) + '\\n');
  `, true);
  const out = JSON.parse(await firstLine(rec)) as { pid: number; pid1: string; rep: { tempsRemoved: number } };
  await new Promise((r) => rec.on('close', r));
  assert.equal(out.pid, 2, out.pid1);
  assert.equal(out.pid1, 'sh', 'pid 1 (the dead writer\'s pid) is a live process in the recovery\'s namespace');
  assert.equal(out.rep.tempsRemoved, 1, JSON.stringify(out));
  assert.deepEqual([...await tempsIn(f.mem), ...await tempsIn(f.disk)], []);
  assert.equal((await (await f.store()).locate('u'))?.tier, 'memory', 'the file itself stayed where it was');
});

/** Wait (no time limit of its own: the test's timeout is the bound) until `cond` holds. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
}
const tmpsIn = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-tmp-'));

/** A hook that stops every copy into `dir` after its first chunk until the test releases it. */
function gate(dir: string): { hook: NonNullable<TierStoreOptions['hook']>; reached: Promise<void>; release: () => void } {
  let reachedFn!: () => void, releaseFn!: () => void;
  const reached = new Promise<void>((r) => { reachedFn = r; });
  const released = new Promise<void>((r) => { releaseFn = r; });
  return {
    hook: async (step, info) => { if (step === 'tmp-partial' && info.dst.startsWith(`${dir}/`)) { reachedFn(); await released; } },
    reached,
    release: releaseFn,
  };
}

test('background promotion: the lookup answers the disk path at once, the copy follows; a reader of the disk path keeps reading; nothing lost', { skip }, async (t) => {
  const f = await fixture(t, 16 * MiB);
  const s = await f.store({ promote: 'background', busyGraceMs: 60_000, keepSourceMs: 60_000 });
  const a = await putBytes(s, 'v/a', 3 * MiB + 4321);
  await s.shrink(0, 10_000);
  const diskPath = join(f.disk, 'v/a');
  assert.equal((await s.locate('v/a'))?.tier, 'disk');
  // a reader that opened the disk-tier copy before the lookup and reads it in two halves around the promotion
  const held = await open(diskPath, 'r');
  t.after(() => held.close().catch(() => {}));
  const first = Buffer.alloc(MiB);
  assert.equal((await held.read(first, 0, MiB, 0)).bytesRead, MiB);
  f.clock.t += 1000;
  const p = await s.lookup('v/a');
  assert.deepEqual([p.path, p.tier, p.foundIn, p.promoting], [diskPath, 'disk', 'disk', true]);
  await until(() => s.promotionsPending() === 0);
  // promoted: the share holds the complete copy; the disk copy stays while the name is busy (the app was handed
  // the disk path a moment ago and may open it only now)
  assert.equal((await s.locate('v/a'))?.tier, 'memory');
  assert.equal(sha(await readFile(join(f.mem, 'v/a'))), a.sha);
  assert.equal(sha(await readFile(diskPath)), a.sha, 'the disk path handed out is still a complete file');
  const rest = Buffer.alloc(3 * MiB + 4321 - MiB);
  assert.equal((await held.read(rest, 0, rest.length, MiB)).bytesRead, rest.length);
  assert.equal(sha(Buffer.concat([first, rest])), a.sha, 'the reader of the disk path read the whole file');
  assert.equal((await s.list()).filter((e) => e.name === 'v/a').length, 1, 'listed once while in both tiers');
  const st = await s.stats();
  assert.deepEqual([st.misses, st.promotions], [1, 1]);
  // the grace ends: the disk copy goes, exactly one copy is left
  f.clock.t += 60_000;
  await s.promotionsSettled();
  assert.ok(!existsSync(diskPath), 'the disk copy is removed after the busy grace');
  assert.equal(await shaOf(s, 'v/a'), a.sha);
  assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], []);
  // the next lookup is a hit in the share; a repeat lookup while a promotion is queued is not queued twice
  const q = await s.lookup('v/a');
  assert.deepEqual([q.foundIn, q.tier, q.promoting], ['memory', 'memory', undefined]);
  // no room: the lookup answers the disk path and queues nothing
  await putBytes(s, 'b', 2 * MiB);
  f.clock.t += 60_000;
  await s.shrink(0, 10_000);
  await writeFile(join(f.mem, 'app-file'), randomBytes(15 * MiB)); // an app's file: about 1 MiB of the share left
  const r = await s.lookup('b');
  assert.deepEqual([r.tier, r.promoting], ['disk', false]);
  // promote:false: no promotion at all; the store's 'off' with promote:true promotes in the background
  f.clock.t += 60_000;
  assert.equal((await s.lookup('b', { promote: false })).promoting, undefined);
  const off = await f.store({ promote: 'off' });
  assert.equal((await off.lookup('b')).promoting, undefined);
});

test('background promotion: evicting a promoted file while its disk copy is kept drops the share copy, copies nothing', { skip }, async (t) => {
  const f = await fixture(t, 16 * MiB);
  const s = await f.store({ promote: 'background', keepSourceMs: 60_000 });
  const want = (await putBytes(s, 'k', 3 * MiB)).sha;
  await s.shrink(0, 10_000);
  const diskPath = join(f.disk, 'k');
  const ino = (await lstat(diskPath)).ino;
  f.clock.t += 1000;
  assert.equal((await s.lookup('k')).promoting, true);
  await until(() => s.promotionsPending() === 0);
  assert.ok(existsSync(join(f.mem, 'k')) && existsSync(diskPath), 'promoted, the disk copy kept');
  const r = await s.shrink(0, 10_000);
  assert.deepEqual([r.ok, r.movedFiles], [true, 1]);
  assert.ok(!existsSync(join(f.mem, 'k')), 'the share copy went');
  assert.equal((await lstat(diskPath)).ino, ino, 'the disk copy the app was handed is the same file');
  f.clock.t += 60_000;
  await s.promotionsSettled();
  assert.equal((await s.locate('k'))?.tier, 'disk');
  assert.equal(await shaOf(s, 'k'), want);
  assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], []);
});

test('background promotion: a shrink request during the copy wins (the copy stops, the file stays on disk, queued ones are dropped)', { skip }, async (t) => {
  const f = await fixture(t, 16 * MiB);
  const g = gate(f.mem);
  const s = await f.store({ promote: 'background', hook: g.hook });
  const sums: Record<string, string> = {};
  for (const n of ['big', 'q1', 'q2']) sums[n] = (await putBytes(s, n, n === 'big' ? 6 * MiB : MiB)).sha;
  await s.shrink(0, 10_000);
  sums.m = (await putBytes(s, 'm', 2 * MiB)).sha;
  f.clock.t += 1000;
  assert.equal((await s.lookup('big')).promoting, true);
  await g.reached; // the copy of big into the share is under way, its first chunk written
  assert.equal((await s.lookup('q1')).promoting, true); // queued behind it
  assert.equal((await s.lookup('q2')).promoting, true);
  const shrunk = s.shrink(0, 10_000);
  g.release();
  const r = await shrunk;
  await s.promotionsSettled();
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.movedFiles, 1, 'm moved to the disk tier');
  const tiers = Object.fromEntries((await s.list()).map((e) => [e.name, e.tier]));
  assert.deepEqual(tiers, { big: 'disk', q1: 'disk', q2: 'disk', m: 'disk' });
  assert.equal((await s.stats()).promotions, 0);
  assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], [], 'the stopped copy left no temporary file');
  for (const n of Object.keys(sums)) assert.equal(await shaOf(s, n), sums[n], n);
  // after the shrink a lookup queues a promotion again, and it completes
  f.clock.t += 1000;
  assert.equal((await s.lookup('q1')).promoting, true);
  await s.promotionsSettled();
  assert.equal((await s.locate('q1'))?.tier, 'memory');
  assert.equal(await shaOf(s, 'q1'), sums.q1);
});

test('background promotion: the share filling during the copy leaves the file on disk with no partial copy', { skip }, async (t) => {
  const f = await fixture(t, 8 * MiB);
  const g = gate(f.mem);
  const s = await f.store({ promote: 'background', hook: g.hook });
  const want = (await putBytes(s, 'f', 3 * MiB)).sha;
  await s.shrink(0, 10_000);
  assert.equal((await s.lookup('f')).promoting, true);
  await g.reached;
  // an app fills the share while the copy is between chunks: the rest of the copy finds no room
  await writeFile(join(f.mem, 'app-file'), randomBytes(6 * MiB));
  g.release();
  await s.promotionsSettled();
  assert.equal((await s.locate('f'))?.tier, 'disk');
  assert.equal(await shaOf(s, 'f'), want);
  assert.equal((await s.stats()).promotions, 0);
  assert.deepEqual(await tmpsIn(f.mem), [], 'no partial copy in the share');
});
