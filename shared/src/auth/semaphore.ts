/**
 * At most `permits` tasks at once; the rest wait in arrival order. A finishing task hands its
 * permit straight to the next waiter, so a newcomer can never overtake the queue.
 */
export class Semaphore {
  readonly permits: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  /** @throws RangeError unless `permits` is a positive integer */
  constructor(permits: number) {
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError(`a semaphore needs a positive integer of permits (got ${permits})`);
    this.permits = permits;
  }

  /** Tasks running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Tasks waiting for a permit. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `task` once a permit is free and gives the permit back when it settles; throws what `task` throws. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#inFlight < this.permits) this.#inFlight += 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // The permit passes to `next` without ever being free: inFlight stays the same.
      if (next) next();
      else this.#inFlight -= 1;
    }
  }
}
