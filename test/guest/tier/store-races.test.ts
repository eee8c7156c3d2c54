// The tiered store against writers racing its moves (review of src/guest/tier, issue #9 item 5: "no data is ever
// lost"): another process's `hylics tier put` (a second TierStore on the same directories) or an app writing a tier
// path directly, at the test points of a move where a check has passed and the move acts on it; and the disk-tier
// copy a lookup handed out, kept while an app may still open it. Real tmpfs (memory tier) and a real directory on
// disk (disk tier); the store's clock is a variable; no timed assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { mountTmpfs, umountTmpfs } from '../../../src/os/tmpfs.js';
import { TierStore, type TierStoreOptions } from '../../../src/guest/tier/store.js';
import type { MoveHook } from '../../../src/guest/tier/fsops.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts a tmpfs as the memory tier)' : false;
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Fixture {
  mem: string;
  disk: string;
  clock: { t: number };
  store: (o?: Partial<TierStoreOptions>) => Promise<TierStore>;
}

async function fixture(t: { after: (fn: () => Promise<void>) => void }, sizeBytes = 16 * MiB): Promise<Fixture> {
  const base = await mkdtemp(join(tmpdir(), `hylics-tier-races-${process.pid}-`));
  const mem = join(base, 'share');
  const disk = join(base, 'disk');
  await mkdir(mem);
  await mountTmpfs(mem, { sizeBytes, mode: 0o755 });
  t.after(async () => {
    await umountTmpfs(mem, { lazy: true }).catch(() => {});
    await rm(base, { recursive: true, force: true });
  });
  // an hour ago: files an app writes now (real mtime) are newer than the store's puts (mtime = the store's clock)
  const clock = { t: Date.now() - 3_600_000 };
  const store = (o: Partial<TierStoreOptions> = {}): Promise<TierStore> =>
    new TierStore({
      memoryDir: mem, diskDir: disk, now: () => clock.t, headroomBytes: 64 * 1024, busyGraceMs: 0, keepSourceMs: 0,
      ...o,
    }).open();
  return { mem, disk, clock, store };
}

async function putBytes(s: TierStore, name: string, bytes: number): Promise<string> {
  const data = randomBytes(bytes);
  await s.put(name, Readable.from([data]));
  return sha(data);
}

const tmpsIn = async (d: string): Promise<string[]> => (await readdir(d, { recursive: true })).map(String).filter((n) => n.includes('.hylics-tmp-'));

/** The name's copies in both tiers (sha of each), after the test. */
async function copies(f: Fixture, name: string): Promise<string[]> {
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

for (const direction of ['promote', 'evict'] as const) {
  test(`a put by another process right before a move's rename (${direction}): the new version stays, the move's copy never replaces it`, { skip }, async (t) => {
    const f = await fixture(t);
    // the other process's store: for the eviction its put lands in the disk tier (the move's destination), for the
    // promotion in the share (the promotion's destination)
    const cli = await f.store(direction === 'evict' ? { headroomBytes: 2 ** 40 } : {});
    let newSha = '';
    const to = direction === 'evict' ? f.disk : f.mem;
    const h = once('checked', to, async () => { newSha = await putBytes(cli, 'n', 100_000); });
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
    assert.ok(h.fired(), 'the put ran between the check and the rename');
    assert.deepEqual(await copies(f, 'n'), [newSha], 'exactly one copy: the version put last');
    assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], []);
  });

  test(`a put by another process right before a move removes its source (${direction}): the new version is not the one removed`, { skip }, async (t) => {
    const f = await fixture(t);
    // the put lands in the move's source tier and removes the move's fresh copy in the other tier
    const cli = await f.store(direction === 'promote' ? { headroomBytes: 2 ** 40 } : {});
    let newSha = '';
    const to = direction === 'evict' ? f.disk : f.mem;
    const h = once('unlinking', to, async () => { newSha = await putBytes(cli, 'n', 100_000); });
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
    assert.ok(h.fired(), 'the put ran between the last check and the removal of the source');
    assert.deepEqual(await copies(f, 'n'), [newSha], 'exactly one copy: the version put last');
    assert.deepEqual([...await tmpsIn(f.mem), ...await tmpsIn(f.disk)], []);
  });
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

