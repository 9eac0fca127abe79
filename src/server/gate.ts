/**
 * Admission control for inference: at most `concurrency` jobs run, at most `maxQueue` wait, and the
 * rest are refused at once — a saturated server answers "busy, retry later" instead of queueing
 * without bound and timing everyone out.
 */
export class BusyError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the server is busy: too many requests are waiting for inference");
    this.name = "BusyError";
  }
}

export class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueue: number,
  ) {}

  get depth(): number {
    return this.waiting.length;
  }

  get active(): number {
    return this.running;
  }

  /** Whether a new job would be refused now. */
  get full(): boolean {
    return this.running >= this.concurrency && this.waiting.length >= this.maxQueue;
  }

  /** A fair wait before retrying: the queue drains about `concurrency` jobs at a time. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.waiting.length / this.concurrency));
  }

  /**
   * Runs `job` when a slot is free; throws BusyError when the queue is full. A job whose `signal` aborts
   * while it waits (its request timed out or went away) gives up its place without running.
   */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) throw new BusyError(this.retryAfterSeconds);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      signal?.throwIfAborted();
      return await job();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays counted for it.
      if (next) next();
      else this.running--;
    }
  }

  /** Resolves once nothing runs or waits (graceful shutdown). */
  async idle(pollMs = 20): Promise<void> {
    while (this.running > 0 || this.waiting.length > 0) await new Promise((r) => setTimeout(r, pollMs));
  }
}
