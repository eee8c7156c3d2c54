// The guest's tiered store (paper §5): memory tier = the share (host tmpfs at /mnt/hylics), disk tier = a
// directory on the guest's own disk. A name lives in exactly one tier (for an instant in both during a move).
//
// Policy (docs/tier.md):
// - last use = the file's atime, which the store sets itself on every lookup and put (so it survives agent
//   restarts and moves, and the metadata is rebuilt from the directories alone);
// - idle eviction: memory-tier files not used for idleMs move to the disk tier, least recently used first;
// - placement: a new file goes to the share when it fits with headroom to spare, else to the disk tier;
// - shrink: move least recently used files until the share's usage (statfs) is at most the target;
// - promotion: a disk-tier file looked up moves back when the share has room: by default in the background (the
//   lookup answers the disk-tier path at once and queues the copy, so the task never waits for it), or on the
//   task's path ('sync', the old way); after the share grew, recently used disk-tier files move back, most
//   recently used first; a shrink request aborts a promotion under way and empties the queue (the shrink wins);
// - never moved: files open for writing (the copy would miss later writes); files open for reading are moved
//   last by nobody: on tmpfs an open file's pages stay allocated until the last close even after unlink, so
//   moving it frees nothing now (the reader keeps reading the old inode); and files looked up in the last
//   busyGraceMs (the app is about to open the path it was given); by the idle sweep only: files a host module
//   served or socket offload sent in the last hostUseGraceMs (the host reports uses in batches, seconds apart).
import type { Readable } from 'node:stream';
import { constants as C, type BigIntStats, type Dirent } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rmdir, statfs, unlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { DEFAULT_TIER_IDLE_MS, DEFAULT_TIER_PROMOTE, type TierPromoteMode } from '../../core/tier-settings.js';
import type { TierShrinkResultT, TierStatsResultT } from '../../core/protocol/index.js';
import { openFilesUnder, type OpenFileUse } from '../../os/open-files.js';
import { processTagAlive } from '../../os/proc.js';
import { closeMtime, copyToTemp, ensureDirs, finishMove, fsyncDir, giveBack, lstatOrUndefined, moveFile, openSource, ownEntry, pinDir, removeIfSame, sameContentStat, symlinkError, tmpName, type MoveHook, type MoveOutcome, type PinnedDir } from './fsops.js';
import { isReserved, tierName } from './names.js';

export type Tier = 'memory' | 'disk';
/** How a lookup of a disk-tier file promotes it (docs/tier.md): not at all, by a copy before the lookup answers
 * (the task waits for it), or by a queued copy after the lookup answered the disk-tier path. */
export type PromoteMode = TierPromoteMode;

export const DEFAULT_DISK_TIER = '/var/lib/hylics-tier';
export const DEFAULT_IDLE_MS = DEFAULT_TIER_IDLE_MS;
/** Free share space kept when placing or promoting a file (writes by apps need some room too). */
export const DEFAULT_HEADROOM_BYTES = 1024 * 1024;
/** A file handed out by a lookup this recently is not moved away: the app is about to open that path (once open,
 * the open-file walk protects it). 2 s was too short: in the closed-loop bench's overloaded workload #2 (about 15
 * tasks on 1.5 CPUs) 5 of ~130 tasks found their memory-tier path gone, evicted by a shrink before `hylics task run`
 * + sh + ffmpeg opened it (ENOENT, no data lost). */
export const DEFAULT_BUSY_GRACE_MS = 10_000;
/**
 * A name the host reported a use of (hostUsed: a module served it, socket offload sent it) is not moved by the idle
 * sweep for this long after the report arrived, whatever the idle time. The host reports uses in batches: the
 * lighttpd engine (the default for an http-only guest) writes its access log every 4 s and hylicsd reads it every
 * second, so a file served without pause gets a report about every 4-5 s, and 8-9 s apart when a loaded lighttpd
 * misses a flush (a test with an 8 s idle time saw its served file evicted so, and the module answer 404). Below
 * this, an idle time shorter than the gap between two reports would evict a file in constant use; the default idle
 * time (60 s) is longer and unaffected.
 */
export const DEFAULT_HOST_USE_GRACE_MS = 30_000;
/** Background promotions waiting at most (names; a lookup finding the queue full leaves its file on disk). */
export const PROMOTE_QUEUE_MAX = 64;
/** Background promotion copies at once. All moves take the store's one lock anyway (a second copy would only split
 * the disk tier's bandwidth with the first), so one. */
export const PROMOTE_CONCURRENCY = 1;
/** A background promotion keeps the disk-tier copy while its path was handed out this recently: the app opens it
 * after its own start (a loaded guest took over 2 s to exec ffmpeg on it in the closed-loop bench), and the disk
 * copy costs only disk-tier space meanwhile. */
export const DEFAULT_PROMOTE_KEEP_SOURCE_MS = 30_000;
/** How often a kept disk-tier source looks again whether it may go. */
const KEPT_SOURCE_POLL_MS = 500;

export interface TierEntry {
  name: string;
  tier: Tier;
  path: string;
  sizeBytes: number;
  /** Epoch ms of the last use (max of atime and mtime). */
  lastUseMs: number;
}

export interface TierStoreOptions {
  memoryDir: string;
  diskDir: string;
  /** Clock for last-use decisions (tests inject one). Default Date.now. */
  now?: () => number;
  /** Idle time after which a memory-tier file moves to the disk tier; 0 = never. */
  idleMs?: number;
  /** Move a disk-tier file back on lookup when there is room: 'background' (default), 'sync' or 'off'. */
  promote?: PromoteMode;
  headroomBytes?: number;
  busyGraceMs?: number;
  /** Idle sweep: how long after a reported host use a name is left in the memory tier (DEFAULT_HOST_USE_GRACE_MS). */
  hostUseGraceMs?: number;
  /** Promotion: how long after the last lookup that answered the disk-tier path its copy stays. */
  keepSourceMs?: number;
  /** Which files are open (default: a /proc walk). */
  openFiles?: (root: string) => Promise<Map<string, OpenFileUse>>;
  /** Test points inside moves. */
  hook?: MoveHook;
}

export interface MoveSummary {
  movedFiles: number;
  movedBytes: number;
  /** Held open (on tmpfs moving an open file frees nothing). */
  skippedOpen: number;
  /** Handed out by a lookup in the last busyGraceMs, or (idle sweep only) reported used by the host in the last
   *  hostUseGraceMs. */
  skippedBusy: number;
  /** Set when the pass stopped early (disk tier full, deadline). */
  stopped?: string;
}

export interface RecoveryReport {
  tempsRemoved: number;
  /** Files a dead process had renamed aside (removeIfSame) given their names back. */
  asidesRestored: number;
  duplicatesResolved: number;
}

interface Scanned { name: string; path: string; st: BigIntStats }

/** Names per host module report the store looks at (the host sends at most 1024 per module and second). */
export const HOST_USES_MAX = 4096;
const lastUseOf = (st: BigIntStats): number => Math.max(Number(st.atimeMs), Number(st.mtimeMs));

/** A directory's entries, or undefined when it cannot be read (gone, or not a directory). */
const entriesOf = (dir: string): Promise<Dirent[] | undefined> =>
  readdir(dir, { withFileTypes: true }).catch(() => undefined);

export class TierStore {
  memoryDir: string;
  diskDir: string;
  private readonly now: () => number;
  private readonly idleMs: number;
  readonly promote: PromoteMode;
  private readonly headroomBytes: number;
  private readonly busyGraceMs: number;
  private readonly hostUseGraceMs: number;
  private readonly keepSourceMs: number;
  /** Names whose disk-tier path a lookup answered, with the time (a background promotion keeps that copy). */
  private readonly diskHandouts = new Map<string, number>();
  /** Kept disk-tier sources of finished promotions: where, and the stat the copy was made from. */
  private readonly keptInfo = new Map<string, { disk: string; memory: string; st0: BigIntStats }>();
  private readonly openFiles: (root: string) => Promise<Map<string, OpenFileUse>>;
  private readonly hook: MoveHook | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  /** Names handed out by lookups, with the time (busy grace; also covers clocks that do not move atime). */
  private readonly recent = new Map<string, number>();
  /** Memory-tier names the host reported a use of (hostUsed), with the time the report arrived. */
  private readonly hostRecent = new Map<string, number>();
  /** When forgetExpired last ran (the idle sweep's, or a lookup's when the sweep is off). */
  private prunedAt = -Infinity;
  readonly counters = { evictions: 0, promotions: 0, hits: 0, misses: 0 };
  /** Background promotions: names waiting, names queued or being copied, copies running. */
  private readonly promoteQueue: { name: string; epoch: number }[] = [];
  private readonly promoteQueued = new Set<string>();
  private promoteRunning = 0;
  /** Disk-tier sources of finished promotions, waiting for their hand-out grace to end. */
  private readonly keptSources = new Map<string, Promise<void>>();
  /** Bumped by every shrink request: a promotion started under an older epoch stops (the shrink wins). */
  private shrinkEpoch = 0;
  /** Lookups that found the promotion queue full (the file stayed on disk; not in tier.stats). */
  promotionsDropped = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: TierStoreOptions) {
    this.memoryDir = opts.memoryDir;
    this.diskDir = opts.diskDir;
    this.now = opts.now ?? Date.now;
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.promote = opts.promote ?? DEFAULT_TIER_PROMOTE;
    this.headroomBytes = opts.headroomBytes ?? DEFAULT_HEADROOM_BYTES;
    this.busyGraceMs = opts.busyGraceMs ?? DEFAULT_BUSY_GRACE_MS;
    this.hostUseGraceMs = opts.hostUseGraceMs ?? DEFAULT_HOST_USE_GRACE_MS;
    this.keepSourceMs = opts.keepSourceMs ?? DEFAULT_PROMOTE_KEEP_SOURCE_MS;
    this.openFiles = opts.openFiles ?? openFilesUnder;
    this.hook = opts.hook;
  }

  dir(tier: Tier): string {
    return tier === 'memory' ? this.memoryDir : this.diskDir;
  }

  /** One move (or put placement) at a time in this process. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  /** Check both tier directories (the disk tier is created) and use their real paths (the open-file walk
   * compares paths as the kernel names them). */
  async open(): Promise<this> {
    await mkdir(this.diskDir, { recursive: true, mode: 0o700 }).catch(() => {});
    for (const tier of ['memory', 'disk'] as const) {
      const d = this.dir(tier);
      let real: string;
      try {
        real = await realpath(d);
      } catch {
        real = d;
      }
      const st = await lstatOrUndefined(real);
      if (!st?.isDirectory())
        throw new HylicsError('HYLICS_ERR_TIER_UNAVAILABLE', `the ${tier} tier ${d} is missing or not a directory`, {
          tier,
          dir: d,
        });
      if (tier === 'memory') this.memoryDir = real;
      else this.diskDir = real;
    }
    return this;
  }

  // ---- lookups ----

  /** The file's stat in `tier`, undefined when absent; TIER_SYMLINK when a component is a link or not a dir/file. */
  private async statIn(tier: Tier, parts: string[], name: string): Promise<BigIntStats | undefined> {
    let cur = this.dir(tier);
    for (let i = 0; i < parts.length; i++) {
      cur = join(cur, parts[i]!);
      const st = await lstatOrUndefined(cur);
      if (!st) return undefined;
      const last = i === parts.length - 1;
      if (last ? !st.isFile() : !st.isDirectory()) throw symlinkError(name, cur);
      if (last) return st;
    }
    return undefined;
  }

  /** Where `name` is now (memory first), without side effects. */
  async locate(name: string): Promise<TierEntry | undefined> {
    const parts = tierName(name);
    for (const tier of ['memory', 'disk'] as const) {
      const st = await this.statIn(tier, parts, name);
      if (st)
        return {
          name,
          tier,
          path: join(this.dir(tier), ...parts),
          sizeBytes: Number(st.size),
          lastUseMs: lastUseOf(st),
        };
    }
    return undefined;
  }

  /**
   * The file's path for an app about to use it: counted as a hit (memory) or miss (disk), its last use set to
   * now. A disk-tier file is promoted when the share has room: in 'background' mode the disk-tier path is
   * answered at once and the copy queued (`promoting`), in 'sync' mode the copy is made first and the share's
   * path answered. `promote: false` leaves the file where it is; `true` promotes in the store's way, or in the
   * background when the store's setting is off.
   */
  async lookup(
    name: string,
    opts: { promote?: boolean } = {},
  ): Promise<TierEntry & { foundIn: Tier; promoting?: boolean }> {
    // the share's copy of a promoted file is stale once the app wrote the kept disk copy: the newer one stays
    if (await this.keptChanged(name)) await this.exclusive(() => this.resolveDuplicate(name)).catch(() => false);
    const found = await this.locate(name);
    if (!found)
      throw new HylicsError('HYLICS_ERR_TIER_NOT_FOUND', `no file ${JSON.stringify(name)} in the tiered store`, {
        name,
      });
    const now = this.now();
    // without idle eviction (--tier-idle 0) no sweep prunes the lookup times: done here, at most once per busy grace
    if (now - this.prunedAt >= this.busyGraceMs) this.forgetExpired();
    this.recent.set(name, now);
    if (found.tier === 'memory') this.counters.hits++;
    else this.counters.misses++;
    let entry: TierEntry = found;
    const mode: PromoteMode =
      opts.promote === false ? 'off' : opts.promote === true && this.promote === 'off' ? 'background' : this.promote;
    if (found.tier === 'disk' && mode === 'sync') {
      const epoch = this.shrinkEpoch;
      entry =
        (await this.exclusive(() => this.promoteOne(name, found.sizeBytes, epoch))) ??
        (await this.locate(name)) ??
        found;
    }
    await this.touch(entry, now);
    let promoting: boolean | undefined;
    if (entry.tier === 'disk') this.diskHandouts.set(name, now);
    if (found.tier === 'disk' && mode === 'background') promoting = await this.schedulePromotion(name, found.sizeBytes);
    return { ...entry, lastUseMs: now, foundIn: found.tier, ...(promoting !== undefined ? { promoting } : {}) };
  }

  // ---- background promotion ----

  /** Queue `name` for a background promotion when it fits now; false when it does not, or the queue is full. */
  private async schedulePromotion(name: string, sizeBytes: number): Promise<boolean> {
    if (this.promoteQueued.has(name)) return true;
    if (sizeBytes + this.headroomBytes > (await this.shareUsage()).freeBytes) return false;
    if (this.promoteQueue.length >= PROMOTE_QUEUE_MAX) {
      this.promotionsDropped++;
      return false;
    }
    this.promoteQueue.push({ name, epoch: this.shrinkEpoch });
    this.promoteQueued.add(name);
    this.pumpPromotions();
    return true;
  }

  private pumpPromotions(): void {
    while (this.promoteRunning < PROMOTE_CONCURRENCY && this.promoteQueue.length > 0) {
      const job = this.promoteQueue.shift()!;
      this.promoteRunning++;
      void this.promoteQueuedName(job.name, job.epoch)
        .catch(() => {}) // the file stays where it was; the next lookup tries again
        .finally(() => {
          this.promoteQueued.delete(job.name);
          this.promoteRunning--;
          this.pumpPromotions();
          this.wakeIdle();
        });
    }
  }

  private async promoteQueuedName(name: string, epoch: number): Promise<void> {
    if (epoch !== this.shrinkEpoch) return;
    const e = await this.locate(name);
    if (e?.tier !== 'disk') return;
    await this.exclusive(() => this.promoteOne(name, e.sizeBytes, epoch));
  }

  private wakeIdle(): void {
    if (this.promoteRunning > 0 || this.promoteQueue.length > 0 || this.keptSources.size > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const fn of w) fn();
  }

  /** Resolves once no background promotion is queued or copying and every kept disk-tier source is settled. */
  promotionsSettled(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.wakeIdle();
    });
  }

  /** Background promotions queued or copying now (not counting kept sources). */
  promotionsPending(): number {
    return this.promoteQueue.length + this.promoteRunning;
  }

  /** Whether a lookup answered `name`'s disk-tier path in the last keepSourceMs. */
  private handedOutOnDisk(name: string): boolean {
    return this.within(this.diskHandouts, name, this.keepSourceMs);
  }

  /** Whether `times` holds a time for `name` less than `graceMs` ago; an expired time is forgotten. */
  private within(times: Map<string, number>, name: string, graceMs: number): boolean {
    const t = times.get(name);
    if (t === undefined) return false;
    if (this.now() - t >= graceMs) {
      times.delete(name);
      return false;
    }
    return true;
  }

  /**
   * A promotion's disk-tier source stays while its path was handed out in the last keepSourceMs (the app may not
   * have opened it yet; a lookup during the copy handed it out again); then it goes if it is still the copied file
   * and the share's copy still exists (finishMove). A reader that already opened it keeps reading the unlinked inode.
   */
  private keepSourceUntilIdle(name: string, src: string, dst: string, st0: BigIntStats): void {
    if (this.keptSources.has(name)) return;
    this.keptInfo.set(name, { disk: src, memory: dst, st0 });
    const done = (async (): Promise<void> => {
      while (this.handedOutOnDisk(name) && !(await this.keptChanged(name)))
        await new Promise((r) => setTimeout(r, KEPT_SOURCE_POLL_MS));
      const removed = await this.exclusive(() => finishMove(src, dst, st0, this.hook)).catch(() => false);
      // a copy changed since the promotion (an app wrote the disk path it was handed): the newer one stays
      if (!removed) await this.exclusive(() => this.resolveDuplicate(name)).catch(() => false);
    })().finally(() => {
      this.keptSources.delete(name);
      this.keptInfo.delete(name);
      this.wakeIdle();
    });
    this.keptSources.set(name, done);
  }

  /** Whether the kept disk-tier source of `name` changed since it was copied (written through the path handed out). */
  private async keptChanged(name: string): Promise<boolean> {
    const k = this.keptInfo.get(name);
    if (!k) return false;
    const d = await lstatOrUndefined(k.disk);
    return d !== undefined && !sameContentStat(k.st0, d);
  }

  /** Evicting a promoted file whose disk-tier source is still kept: that source is a complete copy of the same
   * content, so the share's copy just goes (nothing copied). False when either copy changed since the promotion. */
  private async dropPromotedCopy(name: string): Promise<boolean> {
    const k = this.keptInfo.get(name);
    if (!k) return false;
    const d = await lstatOrUndefined(k.disk);
    const m = await lstatOrUndefined(k.memory);
    if (!d || !m?.isFile() || !sameContentStat(k.st0, d)) return false;
    // the copy was given the source's mtime through utimes in seconds as a double (fsops copyToTemp), which keeps
    // it to about a microsecond (1.2 µs off measured): an exact compare failed nearly always on real mtimes and at
    // random in the unit test (the shrink then skipped the file; the keeper loop never ended); a write moves it more
    if (m.size !== k.st0.size || !closeMtime(m.mtimeNs, k.st0.mtimeNs)) return false;
    return (await removeIfSame(k.memory, m)) === 'removed';
  }

  /**
   * What the host's offload modules did with the share in the last second (host event module.event, stats): every
   * name they served that is in the memory tier gets its last use set to now (their reads do not move atime: the
   * engine sees the share read-only); a name they answered 404 for that is in the disk tier moves back when it
   * fits and promotion is on, so the module finds it at the next request. Either way the idle sweep leaves the name
   * in the memory tier for hostUseGraceMs (the next report may be seconds away). Bad or unknown names are skipped:
   * these are request paths from the module's clients, at most HOST_USES_MAX of each per call.
   */
  async hostUsed(
    served: readonly string[],
    missing: readonly string[],
  ): Promise<{ touched: number; promoted: number }> {
    const now = this.now();
    const found = async (name: unknown): Promise<TierEntry | undefined> => {
      if (typeof name !== 'string') return undefined;
      try {
        return await this.locate(name);
      } catch {
        return undefined;
      }
    };
    let touched = 0,
      promoted = 0;
    for (const name of served.slice(0, HOST_USES_MAX)) {
      const e = await found(name);
      if (e?.tier !== 'memory') continue;
      await this.touch(e, now);
      this.noteHostUse(e.name, now);
      touched++;
    }
    if (this.promote === 'off') return { touched, promoted };
    for (const name of missing.slice(0, HOST_USES_MAX)) {
      const e = await found(name);
      if (e?.tier !== 'disk') continue;
      const epoch = this.shrinkEpoch;
      const moved = await this.exclusive(() => this.promoteOne(e.name, e.sizeBytes, epoch));
      if (!moved) continue;
      await this.touch(moved, now);
      this.noteHostUse(moved.name, now);
      promoted++;
    }
    return { touched, promoted };
  }

  /** Only the idle sweep reads (and prunes) these: without idle eviction nothing is kept. */
  private noteHostUse(name: string, now: number): void {
    if (this.idleMs > 0) this.hostRecent.set(name, now);
  }

  /** Set the last use (atime) to `ms`, keeping mtime. */
  private async touch(e: TierEntry, ms: number): Promise<void> {
    const st = await lstatOrUndefined(e.path);
    if (!st?.isFile()) return;
    // mtime kept as closely as utimes allows (was st.mtimeMs: of a bigint stat, floored to the ms, so every lookup
    // moved mtime back by up to 1 ms and a move under way took the file for rewritten and gave up)
    await utimes(e.path, ms / 1000, Number(st.mtimeNs) / 1e9).catch(() => {});
  }

  // ---- listing ----

  private async scan(tier: Tier): Promise<Scanned[]> {
    const root = this.dir(tier);
    const out: Scanned[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const ents = await entriesOf(dir);
      if (!ents) return;
      for (const d of ents) {
        if (isReserved(d.name)) continue;
        const path = join(dir, d.name);
        const name = prefix ? `${prefix}/${d.name}` : d.name;
        if (d.isDirectory()) {
          await walk(path, name);
          continue;
        }
        if (!d.isFile()) continue; // symlinks, FIFOs, sockets: not the store's
        const st = await lstatOrUndefined(path);
        if (st?.isFile()) out.push({ name, path, st });
      }
    };
    await walk(root, '');
    return out;
  }

  /** Every file of the store, memory tier first; a name caught mid-move in both tiers is listed once (memory). */
  async list(): Promise<TierEntry[]> {
    const seen = new Set<string>();
    const out: TierEntry[] = [];
    for (const tier of ['memory', 'disk'] as const) {
      for (const f of await this.scan(tier)) {
        if (seen.has(f.name)) continue;
        seen.add(f.name);
        out.push({ name: f.name, tier, path: f.path, sizeBytes: Number(f.st.size), lastUseMs: lastUseOf(f.st) });
      }
    }
    return out;
  }

  async stats(): Promise<TierStatsResultT> {
    const files = await this.list();
    const sum = (t: Tier): [number, number] =>
      files.filter((f) => f.tier === t).reduce<[number, number]>((a, f) => [a[0] + 1, a[1] + f.sizeBytes], [0, 0]);
    const [memoryFiles, memoryBytes] = sum('memory');
    const [diskFiles, diskBytes] = sum('disk');
    return { memoryFiles, memoryBytes, diskFiles, diskBytes, ...this.counters };
  }

  async shareUsage(): Promise<{ usedBytes: number; freeBytes: number; sizeBytes: number }> {
    const s = await statfs(this.memoryDir);
    return { usedBytes: (s.blocks - s.bfree) * s.bsize, freeBytes: s.bavail * s.bsize, sizeBytes: s.blocks * s.bsize };
  }

  // ---- put ----

  /**
   * Add (or replace) `name` from a file path or a stream: into the share when it fits with headroom, else into
   * the disk tier; atomically (temporary copy + fsync + rename); the copy the other tier held just before the
   * rename is removed after, if it is still that file (never a copy that came there since: removeIfSame).
   */
  async put(name: string, source: string | Readable): Promise<TierEntry> {
    const parts = tierName(name);
    const dirs = parts.slice(0, -1);
    const base = parts[parts.length - 1]!;
    // a stream of unknown length is spooled into the disk tier first, then placed like a file
    let spool: string | undefined;
    let src: string;
    if (typeof source === 'string') {
      src = source;
    } else {
      spool = join(this.diskDir, tmpName());
      const fh = await open(spool, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
      try {
        for await (const chunk of source) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
          let off = 0;
          while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
        }
        await fh.sync();
      } catch (e) {
        await fh.close().catch(() => {});
        await unlink(spool).catch(() => {});
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC')
          throw new HylicsError('HYLICS_ERR_TIER_FULL', `the disk tier ${this.diskDir} is full`, { name });
        throw e;
      }
      await fh.close();
      src = spool;
    }
    try {
      const st = await lstatOrUndefined(src);
      if (!st?.isFile())
        throw new HylicsError('HYLICS_ERR_TIER_NOT_FOUND', `${src} is not a regular file`, { path: src });
      const now = this.now();
      const free = (await this.shareUsage()).freeBytes;
      const order: Tier[] = Number(st.size) + this.headroomBytes <= free ? ['memory', 'disk'] : ['disk'];
      for (const tier of order) {
        const dir = await ensureDirs(this.dir(tier), dirs, name);
        const final = join(dir, base);
        const existing = await lstatOrUndefined(final);
        if (existing && !existing.isFile()) throw symlinkError(name, final);
        let tmp: string;
        if (spool && tier === 'disk' && dirname(final) === this.diskDir) {
          tmp = spool; // already a complete fsync'ed copy on this file system
          spool = undefined;
        } else {
          try {
            tmp = await copyToTemp(src, st, dir);
          } catch (e) {
            if (e instanceof HylicsError && e.code === 'HYLICS_ERR_TIER_FULL' && tier === 'memory') continue;
            throw e;
          }
        }
        await utimes(tmp, now / 1000, now / 1000);
        // the copy this put supersedes in the other tier is the one there now, by identity (inode, size, mtime):
        // a file that comes there later (a move of this put's own new file, another put) is not removed by it
        const other: Tier = tier === 'memory' ? 'disk' : 'memory';
        const superseded = await this.statIn(other, parts, name).catch(() => undefined);
        await rename(tmp, final);
        await fsyncDir(dir);
        await this.hook?.('put-placed', { src, dst: final, tmp });
        if (superseded) await removeIfSame(join(this.dir(other), ...parts), superseded).catch(() => {});
        return { name, tier, path: final, sizeBytes: Number(st.size), lastUseMs: now };
      }
      throw new HylicsError('HYLICS_ERR_TIER_FULL', `no room for ${name} in either tier`, { name });
    } finally {
      if (spool) await unlink(spool).catch(() => {});
    }
  }

  /** Remove `name` from both tiers (each copy only while it is the file just looked at: removeIfSame). */
  async remove(name: string): Promise<boolean> {
    const parts = tierName(name);
    let any = false;
    for (const tier of ['memory', 'disk'] as const) {
      const st = await this.statIn(tier, parts, name);
      if (st && (await removeIfSame(join(this.dir(tier), ...parts), st).catch(() => 'gone')) === 'removed') any = true;
    }
    return any;
  }

  // ---- moves ----

  private async moveName(
    name: string,
    from: Tier,
    to: Tier,
    writersNow: () => Promise<boolean>,
    extra: { aborted?: () => boolean } = {},
  ): Promise<'moved' | 'skipped'> {
    const parts = tierName(name);
    const dirs = parts.slice(0, -1);
    const base = parts[parts.length - 1]!;
    const src = join(this.dir(from), ...parts);
    const dst = join(this.dir(to), ...parts);
    // both directories held open and acted in through /proc/self/fd (pinDir): an app that swaps a directory of
    // the share for a symlink after these checks cannot make the agent create, rename or remove anything elsewhere
    let srcDir: PinnedDir;
    try {
      srcDir = await pinDir(this.dir(from), dirs, name, false);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'skipped'; // gone meanwhile
      throw e;
    }
    let st0: BigIntStats | undefined;
    let r: MoveOutcome;
    try {
      const dstDir = await pinDir(this.dir(to), dirs, name, true);
      try {
        const shown = (p: string): string =>
          p.startsWith(`${srcDir.path}/`) ? join(dirname(src), p.slice(srcDir.path.length + 1))
            : p.startsWith(`${dstDir.path}/`) ? join(dirname(dst), p.slice(dstDir.path.length + 1)) : p;
        const hook = this.hook;
        const shownHook: MoveHook = (step, i) =>
          hook?.(step, { src: shown(i.src), dst: shown(i.dst), tmp: shown(i.tmp) });
        r = await moveFile(`${srcDir.path}/${base}`, `${dstDir.path}/${base}`, {
          ...(hook ? { hook: shownHook } : {}),
          stillMovable: async () => !(await writersNow()),
          ...(extra.aborted ? { aborted: extra.aborted } : {}),
          // asked once the copy is in place, not before the copy: a lookup may hand the disk path out during it
          keepSource: () => from === 'disk' && this.handedOutOnDisk(name),
          onSourceStat: (st) => { st0 = st; },
        });
      } finally {
        await dstDir.close();
      }
    } finally {
      await srcDir.close();
    }
    if (r === 'exists' && from === 'memory' && (await this.dropPromotedCopy(name))) return 'moved';
    if (r === 'exists') {
      await this.resolveDuplicate(name);
      return 'skipped';
    }
    if (r === 'kept' && st0) this.keepSourceUntilIdle(name, src, dst, st0);
    return r === 'moved' || r === 'kept' ? 'moved' : 'skipped';
  }

  /** Move a disk-tier file into the share when it fits with headroom; stops (file left on disk) when a shrink
   * request came after `epoch`, or the share filled up during the copy. Whatever started it (a lookup, the
   * background worker, share.resized, a host module's 404), the disk-tier source stays while its path was handed
   * out in the last keepSourceMs (keepSourceUntilIdle). */
  private async promoteOne(name: string, sizeBytes: number, epoch: number): Promise<TierEntry | undefined> {
    const aborted = (): boolean => epoch !== this.shrinkEpoch;
    if (aborted()) return undefined;
    const free = (await this.shareUsage()).freeBytes;
    if (sizeBytes + this.headroomBytes > free) return undefined;
    const r = await this.moveName(name, 'disk', 'memory', async () => {
      const open = await this.openFiles(this.diskDir);
      return (open.get(join(this.diskDir, name))?.writers ?? 0) > 0;
    }, { aborted }).catch((e: unknown) => {
      if (e instanceof HylicsError && e.code === 'HYLICS_ERR_TIER_FULL') return 'skipped' as const;
      throw e;
    });
    if (r !== 'moved') return undefined;
    this.counters.promotions++;
    return this.locate(name);
  }

  private busy(name: string): boolean {
    return this.within(this.recent, name, this.busyGraceMs);
  }

  /**
   * Move memory-tier files to the disk tier in least-recently-used order. `enough()` is asked after every move
   * (shrink: usage at target); `eligible` filters candidates (idle: not used for idleMs); `keep` is asked right
   * before each move, like the busy grace (idle: a host use reported in the last hostUseGraceMs).
   */
  private async evict(
    eligible: (f: Scanned) => boolean,
    enough: () => Promise<boolean>,
    deadline: number,
    keep: (name: string) => boolean = () => false,
  ): Promise<MoveSummary> {
    const sum: MoveSummary = { movedFiles: 0, movedBytes: 0, skippedOpen: 0, skippedBusy: 0 };
    if (await enough()) return sum;
    const files = (await this.scan('memory')).filter(eligible).sort((a, b) => lastUseOf(a.st) - lastUseOf(b.st));
    const open = await this.openFiles(this.memoryDir);
    for (const f of files) {
      if (performance.now() > deadline) {
        sum.stopped = 'deadline';
        break;
      }
      const use = open.get(f.path);
      if (use && (use.writers > 0 || use.readers > 0)) {
        sum.skippedOpen++;
        continue;
      }
      if (this.busy(f.name) || keep(f.name)) {
        sum.skippedBusy++;
        continue;
      }
      let r: 'moved' | 'skipped';
      try {
        r = await this.moveName(
          f.name,
          'memory',
          'disk',
          async () => ((await this.openFiles(this.memoryDir)).get(f.path)?.writers ?? 0) > 0,
        );
      } catch (e) {
        if (e instanceof HylicsError && e.code === 'HYLICS_ERR_TIER_FULL') {
          sum.stopped = `the disk tier ${this.diskDir} is full`;
          break;
        }
        throw e;
      }
      if (r === 'moved') {
        sum.movedFiles++;
        sum.movedBytes += Number(f.st.size);
        this.counters.evictions++;
        if (await enough()) break;
      }
    }
    return sum;
  }

  /** Idle eviction: memory-tier files not used for idleMs go to the disk tier (LRU first), except those the host
   * reported a use of in the last hostUseGraceMs. */
  async evictIdle(): Promise<MoveSummary> {
    if (!(this.idleMs > 0)) return { movedFiles: 0, movedBytes: 0, skippedOpen: 0, skippedBusy: 0 };
    return this.exclusive(() => {
      this.forgetExpired();
      const cutoff = this.now() - this.idleMs;
      return this.evict(
        (f) => lastUseOf(f.st) <= cutoff,
        async () => false,
        Infinity,
        (name) => this.within(this.hostRecent, name, this.hostUseGraceMs),
      );
    });
  }

  /** Drop expired times (names of files removed since would stay otherwise; an expired time counts as none). */
  private forgetExpired(): void {
    const now = this.now();
    this.prunedAt = now;
    const all = [
      [this.recent, this.busyGraceMs],
      [this.hostRecent, this.hostUseGraceMs],
      [this.diskHandouts, this.keepSourceMs],
    ] as const;
    for (const [times, graceMs] of all) for (const [name, t] of times) if (now - t >= graceMs) times.delete(name);
  }

  /** The host's shrink request: LRU files to the disk tier until the share's usage is at most the target. */
  async shrink(targetUsedBytes: number, deadlineMs: number): Promise<TierShrinkResultT> {
    const deadline = performance.now() + deadlineMs;
    // the shrink wins over promotions: the one copying stops at its next chunk (its file stays on disk), the queued
    // ones are dropped (their files stay on disk; a later lookup queues them again)
    this.shrinkEpoch++;
    for (const job of this.promoteQueue.splice(0)) this.promoteQueued.delete(job.name);
    this.wakeIdle();
    return this.exclusive(async () => {
      const sum = await this.evict(
        () => true,
        async () => (await this.shareUsage()).usedBytes <= targetUsedBytes,
        deadline,
      );
      const usedBytes = (await this.shareUsage()).usedBytes;
      const ok = usedBytes <= targetUsedBytes;
      const r: TierShrinkResultT = { usedBytes, movedFiles: sum.movedFiles, movedBytes: sum.movedBytes, ok };
      if (!ok) {
        const why: string[] = [];
        if (sum.stopped) why.push(sum.stopped);
        if (sum.skippedOpen)
          why.push(
            `${sum.skippedOpen} file(s) held open (on tmpfs an open file's memory is freed only at its last close)`,
          );
        if (sum.skippedBusy) why.push(`${sum.skippedBusy} file(s) handed to apps in the last ${this.busyGraceMs} ms`);
        if (why.length === 0)
          why.push('nothing left to move: the rest of the usage is directories, links or files outside the store');
        r.reason = why.join('; ').slice(0, 512);
      }
      return r;
    });
  }

  /** After the share grew: disk-tier files used within idleMs move back while they fit, most recent first. */
  async promoteRecent(): Promise<MoveSummary> {
    const epoch = this.shrinkEpoch;
    return this.exclusive(async () => {
      const sum: MoveSummary = { movedFiles: 0, movedBytes: 0, skippedOpen: 0, skippedBusy: 0 };
      const cutoff = this.idleMs > 0 ? this.now() - this.idleMs : -Infinity;
      const files = (await this.scan('disk'))
        .filter((f) => lastUseOf(f.st) > cutoff)
        .sort((a, b) => lastUseOf(b.st) - lastUseOf(a.st));
      for (const f of files) {
        const moved = await this.promoteOne(f.name, Number(f.st.size), epoch);
        if (moved) {
          sum.movedFiles++;
          sum.movedBytes += Number(f.st.size);
        }
      }
      return sum;
    });
  }

  // ---- recovery ----

  /** A name found in both tiers (a move interrupted between rename and unlink, or a put racing a move): keep one.
   * Identical content -> the disk copy goes (the memory copy is where lookups look first); different -> the newer
   * mtime stays. Never removes the only copy. */
  private async resolveDuplicate(name: string): Promise<boolean> {
    const parts = tierName(name);
    const m = await this.statIn('memory', parts, name).catch(() => undefined);
    const d = await this.statIn('disk', parts, name).catch(() => undefined);
    if (!m || !d) return false;
    const mp = join(this.memoryDir, ...parts);
    const dp = join(this.diskDir, ...parts);
    let drop: [string, BigIntStats];
    if (m.size === d.size && (await sameBytes(mp, dp))) drop = [dp, d];
    else drop = m.mtimeNs >= d.mtimeNs ? [dp, d] : [mp, m];
    // only the file compared: one put there since is newer and stays
    return (await removeIfSame(...drop)) === 'removed';
  }

  /** After a crash: give back files renamed aside and remove temporary copies whose owner is no longer running (the
   * same process: pid, start time and boot, so a reused pid does not keep them), then resolve names left in both
   * tiers. */
  async recover(): Promise<RecoveryReport> {
    return this.exclusive(async () => {
      const rep = await this.recoverOwnNames();
      const inMemory = new Set((await this.scan('memory')).map((f) => f.name));
      for (const f of await this.scan('disk')) {
        if (inMemory.has(f.name) && (await this.resolveDuplicate(f.name))) rep.duplicatesResolved++;
      }
      return rep;
    });
  }

  /** The store's own names left by processes that are gone, in both tiers: a temporary copy is removed; a file in
   * an aside directory gets its name back (giveBack: the newer one wins if the name was taken since), then the
   * directory goes. Safe at any time (the agent's sweep runs it too): a live owner's names are left alone. */
  async recoverOwnNames(): Promise<RecoveryReport> {
    const rep: RecoveryReport = { tempsRemoved: 0, asidesRestored: 0, duplicatesResolved: 0 };
    for (const tier of ['memory', 'disk'] as const) {
      const walk = async (dir: string): Promise<void> => {
        const ents = await entriesOf(dir);
        if (!ents) return;
        for (const d of ents) {
          const p = join(dir, d.name);
          const own = ownEntry(d.name);
          if (own?.kind === 'tmp' && d.isFile()) {
            if (await processTagAlive(own.owner)) continue; // a live put or move is writing it
            await unlink(p).catch(() => {});
            rep.tempsRemoved++;
          } else if (own?.kind === 'aside' && d.isDirectory()) {
            if (await processTagAlive(own.owner)) continue; // a live removeIfSame is checking it
            for (const e of (await entriesOf(p)) ?? []) {
              if (!e.isFile() || isReserved(e.name)) continue;
              if ((await giveBack(join(p, e.name), join(dir, e.name)).catch(() => 'kept')) === 'restored') rep.asidesRestored++;
            }
            await rmdir(p).catch(() => {});
            await fsyncDir(dir).catch(() => {});
          } else if (d.isDirectory() && !isReserved(d.name)) {
            await walk(p);
          }
        }
      };
      await walk(this.dir(tier));
    }
    return rep;
  }
}

const COMPARE_CHUNK_BYTES = 1024 * 1024;

/** Byte-for-byte equality, a chunk at a time (files may be large); the reads leave atime (the last use) alone. */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([openSource(a), openSource(b)]);
  try {
    const x = Buffer.allocUnsafe(COMPARE_CHUNK_BYTES);
    const y = Buffer.allocUnsafe(COMPARE_CHUNK_BYTES);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(x, 0, x.length, null), fb.read(y, 0, y.length, null)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!x.subarray(0, ra.bytesRead).equals(y.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
