// Per-key serialisation of async work: runs for one key happen one at a time in call order, a failed run does
// not stop the next, and a key is forgotten once its last run settled (no growth with short-lived keys).

export class KeyedSerial<K> {
  /** The last run asked for each key, settled or not, never rejecting. */
  private readonly tails = new Map<K, Promise<void>>();

  run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key);
    // with nothing before it the run starts at once; a synchronous throw becomes its rejection
    const next = prev ? prev.then(fn, fn) : new Promise<T>((resolve) => resolve(fn()));
    const settled = next.then(() => undefined, () => undefined);
    this.tails.set(key, settled);
    void settled.then(() => { if (this.tails.get(key) === settled) this.tails.delete(key); });
    return next;
  }

  /** A run for `key` is asked for and not yet settled (a caller may then act at once, in order, without one). */
  pending(key: K): boolean { return this.tails.has(key); }

  /** Keys with a run not yet settled (tests). */
  get size(): number { return this.tails.size; }
}
