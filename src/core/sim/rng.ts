// Seeded pseudo-random numbers for the simulator: sfc32 (small, fast, passes PractRand to 2^40+) seeded by
// splitmix32, so every run is reproducible from one integer and independent streams come from distinct seeds.

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let s = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in (0, 1): safe for logarithms. */
  nextOpen(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  exponential(mean: number): number {
    return -Math.log(this.nextOpen()) * mean;
  }

  normal(): number {
    if (this.spareNormal !== null) { const v = this.spareNormal; this.spareNormal = null; return v; }
    const u = this.nextOpen();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal with the given mean (not median) and log-space sigma. */
  lognormalMean(mean: number, sigma: number): number {
    return mean * Math.exp(sigma * this.normal() - (sigma * sigma) / 2);
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Zipf-like popularity over n items (rank 0 most popular): sampled by binary search on the cumulative law. */
export class ZipfSampler {
  readonly cdf: Float64Array;
  constructor(readonly n: number, readonly alpha: number) {
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let i = 0; i < n; i++) { acc += 1 / Math.pow(i + 1, alpha); this.cdf[i] = acc; }
    for (let i = 0; i < n; i++) this.cdf[i]! /= acc;
  }
  probability(rank: number): number {
    return rank === 0 ? this.cdf[0]! : this.cdf[rank]! - this.cdf[rank - 1]!;
  }
  sample(rng: Rng): number {
    const u = rng.next();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
}
