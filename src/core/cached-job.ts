// One asynchronous job (an image build, a probe) run at most once at a time: callers that come while it runs
// share that run, and its result is kept for later callers as long as it is still good.
export class CachedJob<T> {
  private value: T | undefined;
  private running: Promise<T> | undefined;

  constructor(
    private readonly job: () => Promise<T>,
    /** Whether the kept result may still be used (e.g. its files are still there); else the job runs again. */
    private readonly stillGood: (value: T) => boolean = () => true,
  ) {}

  /** The kept result, else the run under way, else a new run. A failed run keeps nothing: the next call retries. */
  get(): Promise<T> {
    if (this.value !== undefined && this.stillGood(this.value)) return Promise.resolve(this.value);
    this.running ??= this.job()
      .then((v) => {
        this.value = v;
        return v;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}
