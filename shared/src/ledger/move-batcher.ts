import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { priorityLane } from '../db/bounded-pool.ts';
import { isStoreUnavailable } from '../db/store-errors.ts';
import { isDomainError, Overloaded, Unavailable } from '../errors/domain-error.ts';
import { ledgerRepository, type MoveCommand, type MoveLimits } from './ledger.repository.ts';
import type { TransferResult } from './ledger.types.ts';

type Waiting = { command: MoveCommand; resolve: (result: TransferResult) => void; reject: (error: unknown) => void };
/** What one movement of a batch gets: its answer or its refusal. */
type Outcome = PromiseSettledResult<TransferResult>;
const noAnswer = () => new Error('ledger_apply gave no answer for this movement');

export type MoveBatcherOptions = {
  pool: DatabasePool;
  /** The most movements one batch carries; the rest wait for the next. */
  maxBatchSize: number;
  /**
   * The most movements that may wait for the next batch (the one in flight not counted); one more
   * is refused with Overloaded at once, before it is queued. Default: no cap.
   */
  queueLimit?: number;
  /** The limits every movement is checked against. */
  limits: MoveLimits;
  /** Told the size of every batch sent (metrics). */
  onBatch?: (size: number) => void;
  /**
   * Told, once the database has answered a batch (or it failed), its size and the seconds from
   * sending it to the answer, the wait for a connection included (metrics).
   */
  onBatchDone?: (size: number, seconds: number) => void;
};

/**
 * Group commit for one process: the money movements waiting at one moment go to the database as
 * one call and one commit (ledger_apply), while a batch is in flight the next ones queue, and
 * a movement arriving when nothing is in flight leaves at once (on the next turn of the event
 * loop, with whatever arrived in the same turn). Each movement keeps its own answer; a refusal
 * rejects only its own promise. When a batch comes back, the movements that waited for it leave
 * before its answers are handed out, so the database works on the next batch while this process
 * writes the answers of the last.
 *
 * Two movements with the same (actor, idempotency key) never share a batch: the later one waits
 * for the next, where it is answered as today's concurrent duplicate is (replayed, or refused as
 * an idempotency conflict). A batch whose call fails as a whole (anything but an unreachable
 * database: a constraint backstop, a bug) is retried one movement at a time,
 * so one bad movement fails alone; the failed batch rolled back entirely, and idempotency keys
 * make the retry safe.
 *
 * Overload: a movement past `queueLimit` waiting is refused before it is queued. A batch asks a
 * bounded pool through its priority lane: one connection carries a whole batch, so it goes ahead
 * of every call waiting for one and is never refused for a full queue, only when it waited the
 * pool's whole wait timeout; such a batch fails as a whole (Overloaded) without a retry. In both
 * cases nothing reached the database, so a movement refused for overload moved no money. A queued
 * movement is always sent or refused, never dropped.
 */
export class MoveBatcher {
  readonly #options: MoveBatcherOptions;
  readonly #db: CommonQueryMethods;
  #waiting: Waiting[] = [];
  #inFlight = false;
  #scheduled = false;

  constructor(options: MoveBatcherOptions) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) throw new Error('maxBatchSize must be a positive integer');
    if (options.queueLimit !== undefined && !(options.queueLimit >= 0)) throw new Error('queueLimit must be 0 or more');
    this.#options = options;
    this.#db = priorityLane(options.pool);
  }

  /**
   * Moves the money of one command, answered like ledgerRepository.move.
   * @throws the movement's refusal (AccountNotFound, InsufficientFunds, IdempotencyConflict, ...),
   *   Overloaded (nothing moved) when the queue is full or the batch waited too long for a connection,
   *   or the database error when the database cannot be reached
   */
  move(command: MoveCommand): Promise<TransferResult> {
    const limit = this.#options.queueLimit ?? Infinity;
    if (this.#waiting.length >= limit) {
      return Promise.reject(new Overloaded(`the ledger already has ${limit} money movements waiting for the next batch; retry shortly`));
    }
    return new Promise<TransferResult>((resolve, reject) => {
      this.#waiting.push({ command, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#inFlight || this.#scheduled || this.#waiting.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#sendNext();
    });
  }

  async #sendNext(): Promise<void> {
    if (this.#inFlight || this.#waiting.length === 0) return;
    const batch: Waiting[] = [];
    const later: Waiting[] = [];
    const keys = new Set<string>();
    for (const waiting of this.#waiting) {
      const key = `${waiting.command.actor}\u0000${waiting.command.idempotencyKey}`;
      if (batch.length < this.#options.maxBatchSize && !keys.has(key)) {
        keys.add(key);
        batch.push(waiting);
      } else {
        later.push(waiting);
      }
    }
    this.#waiting = later;
    this.#inFlight = true;
    const sentAt = performance.now();
    let outcomes: Outcome[];
    try {
      this.#options.onBatch?.(batch.length);
      outcomes = await this.#send(batch);
    } catch (error) {
      outcomes = batch.map(() => ({ status: 'rejected', reason: error }));
    } finally {
      this.#inFlight = false;
    }
    try {
      this.#options.onBatchDone?.(batch.length, (performance.now() - sentAt) / 1_000);
    } catch {
      // A failing observer must not keep the answers from their callers.
    }
    // The next batch leaves before this one's answers are handed out: answering them (the
    // handlers' JSON and socket writes) runs on this thread while the database works on the next,
    // instead of leaving the database idle until the last answer is written. The answers follow
    // once the next batch's call has gone as far as it goes without waiting for I/O.
    if (this.#waiting.length > 0) void this.#sendNext();
    setImmediate(() =>
      batch.forEach((waiting, i) => {
        const outcome = outcomes[i];
        if (outcome?.status === 'fulfilled') waiting.resolve(outcome.value);
        else waiting.reject(outcome ? outcome.reason : noAnswer());
      }),
    );
  }

  /** Sends one batch; resolves to each movement's answer or refusal, in the batch's order. */
  async #send(batch: readonly Waiting[]): Promise<Outcome[]> {
    const { limits } = this.#options;
    const db = this.#db;
    const oneByOne = () => Promise.allSettled(batch.map((waiting) => ledgerRepository.move(db, waiting.command, limits)));
    if (batch.length === 1) return oneByOne();
    let answers: Awaited<ReturnType<typeof ledgerRepository.moveBatch>>;
    try {
      answers = await ledgerRepository.moveBatch(
        db,
        batch.map((waiting) => waiting.command),
        limits,
      );
    } catch (error) {
      // Unreachable, or refused a connection for overload: the retry one by one would fail the same.
      if (isStoreUnavailable(error) || error instanceof Unavailable) return batch.map(() => ({ status: 'rejected', reason: error }));
      return oneByOne();
    }
    return batch.map((_, i): Outcome => {
      const answer = answers[i];
      if (answer === undefined) return { status: 'rejected', reason: noAnswer() };
      return isDomainError(answer) ? { status: 'rejected', reason: answer } : { status: 'fulfilled', value: answer };
    });
  }
}
