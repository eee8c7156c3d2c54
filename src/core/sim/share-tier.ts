// The guest's tiered store in the simulator: a catalogue of segments, the share (memory tier) with its size
// limit, and the disk tier for everything else. A requested segment enters the share when it fits, stays while
// requested or running, and leaves after evictAfterS idle (or, on a shrink, least recently requested first).
import { Rng } from './rng.js';
import type { CatalogueConfig } from './simulator.js';

const COMPACT_AFTER = 4096; // eviction-queue entries consumed before the queue is compacted

export class ShareTier {
  /** Segment sizes (MiB) and content complexity (fixed per segment). */
  readonly segSize: Float64Array;
  readonly segCx: Float64Array;
  /** MiB in the share now, and its peak. */
  used = 0;
  peakUsed = 0;
  /** The share's size limit (MiB). */
  size: number;
  private readonly inMem: Uint8Array;
  private readonly lastReq: Float64Array;
  private readonly pins: Int32Array;
  private readonly evQSeg: number[] = [];
  private readonly evQT: number[] = [];
  private evHead = 0;

  constructor(
    cat: CatalogueConfig,
    nSeg: number,
    complexitySigma: number,
    catRng: Rng,
    sizeMiB: number,
    private readonly evictAfterS: number,
  ) {
    this.segSize = new Float64Array(nSeg);
    this.segCx = new Float64Array(nSeg);
    for (let i = 0; i < nSeg; i++) {
      this.segSize[i] = catRng.lognormalMean(cat.sizeMeanMiB, cat.sizeSigma);
      this.segCx[i] = catRng.lognormalMean(1, complexitySigma);
    }
    this.inMem = new Uint8Array(nSeg);
    this.lastReq = new Float64Array(nSeg).fill(-Infinity);
    this.pins = new Int32Array(nSeg);
    this.size = sizeMiB;
  }

  private evict(s: number): void {
    this.inMem[s] = 0;
    this.used -= this.segSize[s]!;
    if (this.used < 1e-9) this.used = 0;
  }

  /** Move segments idle for evictAfterS to the disk tier. */
  sweep(now: number): void {
    const horizon = now - this.evictAfterS;
    while (this.evHead < this.evQSeg.length && this.evQT[this.evHead]! <= horizon) {
      const s = this.evQSeg[this.evHead]!;
      if (this.inMem[s] && this.lastReq[s] === this.evQT[this.evHead] && this.pins[s] === 0) this.evict(s);
      this.evHead++;
    }
    if (this.evHead > COMPACT_AFTER && this.evHead * 2 > this.evQSeg.length) {
      this.evQSeg.splice(0, this.evHead);
      this.evQT.splice(0, this.evHead);
      this.evHead = 0;
    }
  }

  /** Whether the last request() brought its segment into the share (it was on the disk tier and fitted). */
  entered = false;

  /** A task requests segment s at time t: true when the share serves it (there already, or it fits now). */
  request(s: number, t: number): boolean {
    let hit = true;
    this.entered = false;
    if (!this.inMem[s]) {
      if (this.used + this.segSize[s]! <= this.size) {
        this.inMem[s] = 1;
        this.entered = true;
        this.used += this.segSize[s]!;
      } else hit = false;
    }
    if (this.inMem[s]) {
      this.lastReq[s] = t;
      this.evQSeg.push(s);
      this.evQT.push(t);
      if (this.used > this.peakUsed) this.peakUsed = this.used;
    }
    this.pins[s]++;
    return hit;
  }

  /** The task that requested s finished at t: the segment leaves when it has been idle long enough. */
  release(s: number, t: number): void {
    this.pins[s]--;
    if (this.pins[s] === 0 && this.inMem[s] && t - this.lastReq[s]! >= this.evictAfterS) this.evict(s);
  }

  /** New size limit; below usage the least recently requested idle segments move to the disk tier first. */
  resize(sizeMiB: number): void {
    this.size = sizeMiB;
    if (this.used <= sizeMiB) return;
    for (let i = this.evHead; i < this.evQSeg.length && this.used > sizeMiB; i++) {
      const s = this.evQSeg[i]!;
      if (this.inMem[s] && this.lastReq[s] === this.evQT[i] && this.pins[s] === 0) this.evict(s);
    }
  }
}
