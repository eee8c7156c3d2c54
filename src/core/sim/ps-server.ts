// The guest's vCPUs as a processor-sharing server (docs/controller.md, "Guest = processor-sharing server"):
// tasks share the vCPUs with Amdahl speedup (psRate), slowed by the guest's own streaming of disk-tier segments.
// Time is virtual: V is the work each running task has received since t = 0, so the next finish is the heap's
// smallest V + work.

/**
 * Per-task speed (relative to running alone) when n tasks share the guest's c vCPUs (processor sharing): each
 * gets c/n vCPUs and a task's speed on k vCPUs is Amdahl's S(k) = 1/(s + (1 - s)/k) (k·S(1) below one vCPU).
 * With s = 0 this is exactly M/G/1-PS (1/n); larger s lets concurrent tasks use the vCPUs better.
 */
export function psRate(n: number, vcpus: number, serialFraction: number, maxTaskVcpus = 0): number {
  if (n <= 1) return 1;
  const p = maxTaskVcpus > 0 ? Math.min(maxTaskVcpus, vcpus) : vcpus;
  const S = (k: number): number => (k >= 1 ? 1 / (serialFraction + (1 - serialFraction) / k) : k);
  return S(Math.min(p, vcpus / n)) / S(p);
}

/**
 * The serial fraction s under which n tasks started together each run at `rate` of their alone speed (psRate's
 * inverse in s, by bisection; psRate grows with s). A rate below pure PS's (s = 0) gives 0, above s = 1's gives 1:
 * `clamped` says so. This is how a measured "n at once" time feeds the model (bench/closed-loop).
 */
export function serialFractionForRate(rate: number, n: number, vcpus: number): { s: number; clamped: boolean } {
  if (psRate(n, vcpus, 0) >= rate) return { s: 0, clamped: psRate(n, vcpus, 0) > rate };
  if (psRate(n, vcpus, 1) <= rate) return { s: 1, clamped: psRate(n, vcpus, 1) < rate };
  let lo = 0, hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (psRate(n, vcpus, mid) < rate) lo = mid; else hi = mid;
  }
  return { s: (lo + hi) / 2, clamped: false };
}

/** Min-heap of (key, id) on parallel arrays: the finish order in virtual time (the CPU server's, the disk device's). */
export class MinHeap {
  private keys: number[] = [];
  private ids: number[] = [];
  get size(): number { return this.keys.length; }
  get minKey(): number { return this.keys[0]!; }
  push(k: number, id: number): void {
    const keys = this.keys, ids = this.ids;
    let i = keys.length;
    keys.push(k); ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p]! <= k) break;
      keys[i] = keys[p]!; ids[i] = ids[p]!; i = p;
    }
    keys[i] = k; ids[i] = id;
  }
  pop(): number {
    const keys = this.keys, ids = this.ids;
    const top = ids[0]!;
    const k = keys.pop()!, id = ids.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && keys[r]! < keys[l]! ? r : l;
        if (keys[c]! >= k) break;
        keys[i] = keys[c]!; ids[i] = ids[c]!; i = c;
      }
      keys[i] = k; ids[i] = id;
    }
    return top;
  }
}

const RATE_CACHE = 256; // concurrency levels whose rate is precomputed

export interface Finished { id: number; arrivedAt: number; segment: number; disk: boolean }

export class PsServer {
  /** Virtual time: work each running task has received. */
  private V = 0;
  /** Running tasks whose segment came from the disk tier (streamed by the guest itself). */
  private nDisk = 0;
  private readonly rateCache = new Float64Array(RATE_CACHE + 1);
  private readonly gamma: number;
  private readonly heap = new MinHeap();
  private readonly tArr: number[] = [];
  private readonly tSeg: number[] = [];
  private readonly tDisk: number[] = [];

  constructor(
    private readonly vcpus: number,
    private readonly serialFraction: number,
    private readonly cap: number,
    streamInterference: number,
  ) {
    for (let n = 0; n <= RATE_CACHE; n++) this.rateCache[n] = psRate(n, vcpus, serialFraction, cap);
    this.gamma = (streamInterference * 4) / vcpus;
  }

  get running(): number {
    return this.heap.size;
  }

  /** Speed of each running task now. */
  rate(): number {
    const n = this.heap.size;
    return (
      (n <= RATE_CACHE ? this.rateCache[n]! : psRate(n, this.vcpus, this.serialFraction, this.cap)) /
      (1 + this.gamma * this.nDisk)
    );
  }

  /** When the next task finishes at rate r, from time t (Infinity when idle). */
  nextDeparture(t: number, r: number): number {
    return this.heap.size > 0 ? Math.max(t, t + (this.heap.minKey - this.V) / r) : Infinity;
  }

  advance(r: number, dt: number): void {
    this.V += r * dt;
  }

  /** A task arrives at t with `work` (alone seconds); returns its id (the order of arrival, from 0). */
  add(t: number, segment: number, work: number, disk: boolean): number {
    const id = this.tArr.length;
    this.tArr.push(t);
    this.tSeg.push(segment);
    this.tDisk.push(disk ? 1 : 0);
    if (disk) this.nDisk++;
    this.heap.push(this.V + work, id);
    return id;
  }

  /** Remove the task that finishes first. */
  pop(): Finished {
    const id = this.heap.pop();
    const disk = this.tDisk[id] === 1;
    if (disk) this.nDisk--;
    return { id, arrivedAt: this.tArr[id]!, segment: this.tSeg[id]!, disk };
  }
}
