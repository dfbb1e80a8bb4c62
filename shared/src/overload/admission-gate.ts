import { Overloaded } from '../errors/domain-error.ts';

/** Why a call was refused: the queue was full when it came, or it waited its whole time. */
export type ShedReason = 'queue_full' | 'queue_timeout';

export type AdmissionGateOptions = {
  /** Holders at once (requests in flight, database connections). */
  permits: number;
  /** Callers that may wait for a permit; the next one is refused at once. Infinity: no cap. */
  queueLimit: number;
  /** The longest a caller waits for a permit before it is refused; undefined: as long as it takes. */
  queueTimeoutMs?: number | undefined;
  /** What is busy, for the refusal's message: "every database connection is in use". */
  busy: string;
};

export type AcquireOptions = {
  /** Leaves the queue when aborted, rejecting with the signal's reason. */
  signal?: AbortSignal | undefined;
  /**
   * Never refused for a full queue and served before every other waiter (readiness probes: a
   * busy process is still a ready one); still bounded by the queue timeout.
   */
  priority?: boolean;
};

/** Gives the permit back; calling it again does nothing. */
export type Release = () => void;

type Waiter = { grant: () => void; refuse: (error: unknown) => void };

/**
 * Load shedding in one place: at most `permits` holders, at most `queueLimit` callers waiting,
 * each for at most `queueTimeoutMs`; anyone past that is refused with Overloaded before it did
 * anything. A refusal is decided by counts (holders, waiters), never by measured latency. A
 * released permit goes straight to the longest waiter, so a newcomer never overtakes the queue.
 */
export class AdmissionGate {
  readonly permits: number;
  readonly queueLimit: number;
  readonly queueTimeoutMs: number | undefined;
  readonly #busy: string;
  #held = 0;
  readonly #queue: Waiter[] = [];
  /** Priority waiters, served before #queue and not counted against its limit. */
  readonly #priority: Waiter[] = [];
  readonly #shed: Record<ShedReason, number> = { queue_full: 0, queue_timeout: 0 };

  /** @throws RangeError for a permit count that is not a positive integer, or a negative queue limit */
  constructor(options: AdmissionGateOptions) {
    if (!Number.isInteger(options.permits) || options.permits < 1) throw new RangeError(`an admission gate needs a positive integer of permits (got ${options.permits})`);
    if (!(options.queueLimit >= 0)) throw new RangeError(`an admission gate's queue limit must be 0 or more (got ${options.queueLimit})`);
    this.permits = options.permits;
    this.queueLimit = options.queueLimit;
    this.queueTimeoutMs = options.queueTimeoutMs;
    this.#busy = options.busy;
  }

  /** Permits held now. */
  get inFlight(): number {
    return this.#held;
  }

  /** Callers waiting for a permit now. */
  get waiting(): number {
    return this.#queue.length + this.#priority.length;
  }

  /** Callers refused since the gate was made, by reason. */
  get shed(): Readonly<Record<ShedReason, number>> {
    return this.#shed;
  }

  /**
   * A permit, at once when one is free, else after waiting in the queue.
   * @throws Overloaded when the queue is full or the wait ran out; the signal's reason when it aborts first
   */
  async acquire(options: AcquireOptions = {}): Promise<Release> {
    const { signal, priority = false } = options;
    if (signal?.aborted) throw signal.reason;
    if (this.#held < this.permits && this.waiting === 0) {
      this.#held += 1;
      return this.#releaser();
    }
    if (!priority && this.#queue.length >= this.queueLimit) {
      this.#shed.queue_full += 1;
      throw new Overloaded(`${this.#busy} and ${this.queueLimit} more calls are waiting; retry shortly`);
    }
    return new Promise<Release>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          resolve(this.#releaser());
        },
        refuse: (error) => {
          leave();
          const queue = priority ? this.#priority : this.#queue;
          const at = queue.indexOf(waiter);
          if (at >= 0) queue.splice(at, 1);
          reject(error);
        },
      };
      const onAbort = () => waiter.refuse(signal?.reason);
      if (this.queueTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.#shed.queue_timeout += 1;
          waiter.refuse(new Overloaded(`${this.#busy}; waited ${this.queueTimeoutMs} ms without getting a turn; retry shortly`));
        }, this.queueTimeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      (priority ? this.#priority : this.#queue).push(waiter);
    });
  }

  /** Runs `task` holding a permit and gives it back when the task settles. */
  async run<T>(task: () => Promise<T>, options?: AcquireOptions): Promise<T> {
    const release = await this.acquire(options);
    try {
      return await task();
    } finally {
      release();
    }
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#priority.shift() ?? this.#queue.shift();
      // The permit passes to `next` without ever being free: the count of holders stays the same.
      if (next) next.grant();
      else this.#held -= 1;
    };
  }
}
