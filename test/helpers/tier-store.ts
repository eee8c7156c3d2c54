// A tiered store on a real tmpfs (memory tier) and a real directory on disk (disk tier) for the guest tier tests,
// with a clock the tests move by hand. Needs root (the tmpfs mount).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountTmpfs, umountTmpfs } from '../../src/os/tmpfs.js';
import { TierStore, type TierStoreOptions } from '../../src/guest/tier/store.js';

export interface TierFixture {
  mem: string;
  disk: string;
  clock: { t: number };
  store: (o?: Partial<TierStoreOptions>) => Promise<TierStore>;
}

/** A `sizeBytes` tmpfs as the share, a disk-tier directory, and stores on both with the clock (starting at
 * `clockStartMs`), 64 KiB headroom and no busy grace or kept sources unless a test asks. */
export async function tierFixture(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { sizeBytes: number; clockStartMs?: number },
): Promise<TierFixture> {
  const base = await mkdtemp(join(tmpdir(), `hylics-tier-${process.pid}-`));
  const mem = join(base, 'share');
  const disk = join(base, 'disk');
  await mkdir(mem);
  await mountTmpfs(mem, { sizeBytes: opts.sizeBytes, mode: 0o755 });
  t.after(async () => {
    await umountTmpfs(mem, { lazy: true }).catch(() => {});
    await rm(base, { recursive: true, force: true });
  });
  const clock = { t: opts.clockStartMs ?? Date.now() };
  t.after(async () => { clock.t += 1e12; }); // a kept disk copy's keeper ends even when the test failed first
  const store = (o: Partial<TierStoreOptions> = {}): Promise<TierStore> =>
    new TierStore({
      memoryDir: mem, diskDir: disk, now: () => clock.t, headroomBytes: 64 * 1024, busyGraceMs: 0, keepSourceMs: 0,
      ...o,
    }).open();
  return { mem, disk, clock, store };
}
