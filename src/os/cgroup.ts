// cgroups for guests, v1 (one hierarchy per controller, as on this machine) and v2 (unified hierarchy).
// A guest's cgroup is named like "hylics/web1": /sys/fs/cgroup/{cpu,cpuacct,memory}/hylics/web1 on v1,
// /sys/fs/cgroup/hylics/web1 on v2. CPU quota uses the CFS bandwidth controller (quota/period), so fractional
// CPUs work on both.
import { mkdir, readFile, rmdir, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { readMounts } from './mount.js';

export const CFS_PERIOD_US = 100_000;
/** How long killAll / remove wait for a killed cgroup to be empty by default. */
export const CGROUP_EMPTY_TIMEOUT_MS = 5000;

export type CgroupLayout =
  | { version: 1; /** controller -> hierarchy mount point */ hierarchies: Record<string, string> }
  | { version: 2; root: string; controllers: string[] };

async function exists(p: string): Promise<boolean> {
  try { await access(p); return true; } catch { return false; }
}

async function readText(p: string): Promise<string | undefined> {
  try { return (await readFile(p, 'utf8')).trim(); } catch { return undefined; }
}

/**
 * Find how this host offers cgroups: a cgroup2 mount whose controllers include cpu and memory wins (pure v2 or
 * hybrid with controllers moved); otherwise v1 hierarchies for cpu and memory. Throws HYLICS_ERR_CGROUP_UNSUPPORTED.
 */
export async function detectCgroupLayout(): Promise<CgroupLayout> {
  const mounts = await readMounts();
  for (const m of mounts.filter((x) => x.fsType === 'cgroup2')) {
    const controllers = ((await readText(join(m.mountPoint, 'cgroup.controllers'))) ?? '').split(/\s+/).filter(Boolean);
    if (controllers.includes('cpu') && controllers.includes('memory')) return { version: 2, root: m.mountPoint, controllers };
  }
  const hierarchies: Record<string, string> = {};
  for (const m of mounts.filter((x) => x.fsType === 'cgroup')) {
    for (const opt of m.superOptions) {
      if (['cpu', 'cpuacct', 'memory', 'pids', 'freezer'].includes(opt) && !hierarchies[opt]) hierarchies[opt] = m.mountPoint;
    }
  }
  if (hierarchies.cpu && hierarchies.memory) return { version: 1, hierarchies };
  throw new HylicsError('HYLICS_ERR_CGROUP_UNSUPPORTED', 'no usable cgroups: need cgroup v1 cpu and memory hierarchies or cgroup v2 with the cpu and memory controllers',
    { cgroup2: mounts.filter((x) => x.fsType === 'cgroup2').map((x) => x.mountPoint), v1: Object.keys(hierarchies) });
}

/** A v2 layout rooted at `root` (any cgroup2 mount), whatever controllers it has; used to test v2 code paths. */
export async function cgroupV2Layout(root: string): Promise<CgroupLayout> {
  const controllers = ((await readText(join(root, 'cgroup.controllers'))) ?? '').split(/\s+/).filter(Boolean);
  return { version: 2, root, controllers };
}

export interface CgroupLimits {
  /** CPUs granted (quota/period), undefined when unlimited. */
  cpus: number | undefined;
  quotaUs: number | undefined;
  periodUs: number;
  /** Memory limit in bytes, undefined when unlimited. */
  memoryBytes: number | undefined;
}

export interface CgroupStats {
  /** CPU time used by the cgroup, nanoseconds. */
  cpuUsageNs: number;
  nrPeriods: number;
  nrThrottled: number;
  throttledNs: number;
  memoryBytes: number;
  /** Highest memory use seen, when the kernel reports it. */
  memoryPeakBytes: number | undefined;
  pids: number;
}

const V2_CONTROLLERS = ['cpu', 'memory', 'pids'];

/** Parse "key value" lines (cpu.stat, memory.stat). */
export function parseKeyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

export class Cgroup {
  private constructor(readonly name: string, readonly layout: CgroupLayout) {}

  /** A handle on cgroup `name` (e.g. "hylics/web1"); nothing is created until `create()`. */
  static async open(name: string, layout?: CgroupLayout): Promise<Cgroup> {
    if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i.test(name)) {
      throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `invalid cgroup name ${JSON.stringify(name)}`, { name });
    }
    return new Cgroup(name, layout ?? (await detectCgroupLayout()));
  }

  get version(): 1 | 2 { return this.layout.version; }

  /** Directory of this cgroup in the hierarchy of `controller` (v2: the one directory). */
  dir(controller = 'cpu'): string | undefined {
    if (this.layout.version === 2) return join(this.layout.root, this.name);
    const h = this.layout.hierarchies[controller];
    return h ? join(h, this.name) : undefined;
  }

  /** Every directory making up this cgroup (v1: one per hierarchy used, deduplicated for co-mounted ones). */
  dirs(): string[] {
    if (this.layout.version === 2) return [join(this.layout.root, this.name)];
    const hs = new Set(Object.values(this.layout.hierarchies));
    return [...hs].map((h) => join(h, this.name));
  }

  /** The cgroup.procs files a process must be written to so that it (and its future children) is in this cgroup. */
  procsFiles(): string[] {
    return this.dirs().map((d) => join(d, 'cgroup.procs'));
  }

  async exists(): Promise<boolean> {
    for (const d of this.dirs()) if (await exists(d)) return true;
    return false;
  }

  private async write(file: string, value: string): Promise<void> {
    try {
      await writeFile(file, value);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new HylicsError('HYLICS_ERR_CGROUP_FAILED', `cannot write ${JSON.stringify(value)} to ${file}: ${err.code ?? err.message}`, { file, value, errno: err.code }, { cause: e });
    }
  }

  /** Create the cgroup (and parents). On v2, enables cpu/memory/pids for children along the path. */
  async create(): Promise<void> {
    if (this.layout.version === 2) {
      const root = this.layout.root;
      const parts = this.name.split('/');
      let cur = root;
      for (const part of parts) {
        await this.enableControllers(cur);
        cur = join(cur, part);
        await this.mkdir(cur);
      }
      return;
    }
    for (const d of this.dirs()) await this.mkdir(d);
  }

  private async mkdir(d: string): Promise<void> {
    try { await mkdir(d, { recursive: true }); } catch (e) {
      throw new HylicsError('HYLICS_ERR_CGROUP_FAILED', `cannot create cgroup ${d}: ${(e as NodeJS.ErrnoException).code}`, { dir: d }, { cause: e });
    }
  }

  private async enableControllers(dir: string): Promise<void> {
    const available = ((await readText(join(dir, 'cgroup.controllers'))) ?? '').split(/\s+/);
    const enabled = ((await readText(join(dir, 'cgroup.subtree_control'))) ?? '').split(/\s+/);
    const want = V2_CONTROLLERS.filter((c) => available.includes(c) && !enabled.includes(c));
    if (want.length) await this.write(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
  }

  private requireV2Controller(c: string): void {
    if (this.layout.version === 2 && !this.layout.controllers.includes(c)) {
      throw new HylicsError('HYLICS_ERR_CGROUP_UNSUPPORTED', `the cgroup v2 hierarchy at ${this.layout.root} has no ${c} controller`, { root: this.layout.root, controller: c });
    }
  }

  /** CPU quota in (fractional) CPUs, e.g. 0.5 -> 50 ms per 100 ms period; undefined removes the limit. */
  async setCpus(cpus: number | undefined): Promise<void> {
    const quota = cpus === undefined ? undefined : Math.max(1000, Math.round(cpus * CFS_PERIOD_US));
    if (this.layout.version === 2) {
      this.requireV2Controller('cpu');
      await this.write(join(this.dir()!, 'cpu.max'), `${quota ?? 'max'} ${CFS_PERIOD_US}`);
    } else {
      const d = this.dir('cpu')!;
      await this.write(join(d, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
      await this.write(join(d, 'cpu.cfs_quota_us'), String(quota ?? -1));
    }
  }

  /** Hard memory limit in bytes; undefined removes it. */
  async setMemory(bytes: number | undefined): Promise<void> {
    if (this.layout.version === 2) {
      this.requireV2Controller('memory');
      await this.write(join(this.dir()!, 'memory.max'), bytes === undefined ? 'max' : String(bytes));
    } else {
      await this.write(join(this.dir('memory')!, 'memory.limit_in_bytes'), bytes === undefined ? '-1' : String(bytes));
    }
  }

  /** Maximum number of tasks (processes + threads): a fork bomb in a guest stays in the guest. */
  async setPidsMax(max: number | undefined): Promise<void> {
    const v = max === undefined ? 'max' : String(max);
    if (this.layout.version === 2) {
      this.requireV2Controller('pids');
      await this.write(join(this.dir()!, 'pids.max'), v);
    } else {
      const d = this.dir('pids');
      if (d) await this.write(join(d, 'pids.max'), v);
    }
  }

  async limits(): Promise<CgroupLimits> {
    if (this.layout.version === 2) {
      const [q, p] = ((await readText(join(this.dir()!, 'cpu.max'))) ?? 'max 100000').split(/\s+/);
      const mem = await readText(join(this.dir()!, 'memory.max'));
      const periodUs = Number(p);
      const quotaUs = q === 'max' ? undefined : Number(q);
      return { cpus: quotaUs === undefined ? undefined : quotaUs / periodUs, quotaUs, periodUs, memoryBytes: mem === undefined || mem === 'max' ? undefined : Number(mem) };
    }
    const d = this.dir('cpu')!;
    const quota = Number(await readText(join(d, 'cpu.cfs_quota_us')));
    const periodUs = Number(await readText(join(d, 'cpu.cfs_period_us')));
    const mem = Number(await readText(join(this.dir('memory')!, 'memory.limit_in_bytes')));
    const quotaUs = quota < 0 ? undefined : quota;
    // v1 reports "no limit" as a huge page-aligned number (LONG_MAX rounded down)
    return {
      cpus: quotaUs === undefined ? undefined : quotaUs / periodUs,
      quotaUs,
      periodUs,
      memoryBytes: mem >= 2 ** 62 ? undefined : mem,
    };
  }

  /** Move a process (and so its future children) into the cgroup. */
  async addProcess(pid: number): Promise<void> {
    for (const f of this.procsFiles()) await this.write(f, String(pid));
  }

  /** Pids in the cgroup (union over v1 hierarchies; a process can be in some and not others while moving). */
  async pids(): Promise<number[]> {
    const set = new Set<number>();
    for (const d of this.dirs()) {
      const t = await readText(join(d, 'cgroup.procs'));
      for (const l of (t ?? '').split('\n')) if (l.trim()) set.add(Number(l));
    }
    return [...set];
  }

  async stats(): Promise<CgroupStats> {
    const pids = (await this.pids()).length;
    if (this.layout.version === 2) {
      const d = this.dir()!;
      const cpu = parseKeyValues((await readText(join(d, 'cpu.stat'))) ?? '');
      const cur = await readText(join(d, 'memory.current'));
      const peak = await readText(join(d, 'memory.peak'));
      return {
        cpuUsageNs: (cpu.usage_usec ?? 0) * 1000,
        nrPeriods: cpu.nr_periods ?? 0,
        nrThrottled: cpu.nr_throttled ?? 0,
        throttledNs: (cpu.throttled_usec ?? 0) * 1000,
        memoryBytes: Number(cur ?? 0),
        memoryPeakBytes: peak === undefined ? undefined : Number(peak),
        pids,
      };
    }
    const cpu = parseKeyValues((await readText(join(this.dir('cpu')!, 'cpu.stat'))) ?? '');
    const acct = this.dir('cpuacct');
    const usage = acct ? Number((await readText(join(acct, 'cpuacct.usage'))) ?? 0) : 0;
    const mem = this.dir('memory')!;
    const peak = await readText(join(mem, 'memory.max_usage_in_bytes'));
    return {
      cpuUsageNs: usage,
      nrPeriods: cpu.nr_periods ?? 0,
      nrThrottled: cpu.nr_throttled ?? 0,
      throttledNs: cpu.throttled_time ?? 0,
      memoryBytes: Number((await readText(join(mem, 'memory.usage_in_bytes'))) ?? 0),
      memoryPeakBytes: peak === undefined ? undefined : Number(peak),
      pids,
    };
  }

  /** SIGKILL every process in the cgroup and wait until it is empty (cgroup.kill on v2 where the kernel has it). */
  async killAll(timeoutMs = CGROUP_EMPTY_TIMEOUT_MS): Promise<void> {
    if (!(await this.exists())) return;
    const deadline = Date.now() + timeoutMs;
    const killFile = this.layout.version === 2 ? join(this.dir()!, 'cgroup.kill') : undefined;
    const useKillFile = killFile !== undefined && (await exists(killFile));
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) return;
      if (useKillFile) await this.write(killFile, '1');
      else for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
      if (Date.now() > deadline) {
        throw new HylicsError('HYLICS_ERR_CGROUP_FAILED', `cgroup ${this.name} still has processes after SIGKILL: ${pids.join(' ')}`, { name: this.name, pids });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Remove the cgroup directories (kill its processes first). Idempotent. */
  async remove(timeoutMs = CGROUP_EMPTY_TIMEOUT_MS): Promise<void> {
    await this.killAll(timeoutMs);
    const deadline = Date.now() + timeoutMs;
    for (const d of this.dirs()) {
      for (;;) {
        try { await rmdir(d); break; } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          // EBUSY while the last killed task is still being torn down
          if (code === 'EBUSY' && Date.now() < deadline) { await new Promise((r) => setTimeout(r, 20)); continue; }
          throw new HylicsError('HYLICS_ERR_CGROUP_FAILED', `cannot remove cgroup ${d}: ${code}`, { dir: d, errno: code }, { cause: e });
        }
      }
    }
  }
}
