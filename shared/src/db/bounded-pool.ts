import type { CommonQueryMethods, DatabasePool } from 'slonik';
import { AdmissionGate, type AcquireOptions } from '../overload/admission-gate.ts';

const GATES = new WeakMap<DatabasePool, AdmissionGate>();
const PRIORITY_LANES = new WeakMap<DatabasePool, CommonQueryMethods>();

/** Every pool method that takes a connection for the length of its promise. */
const CONNECTION_METHODS = [
  'any',
  'anyFirst',
  'exists',
  'many',
  'manyFirst',
  'maybeOne',
  'maybeOneFirst',
  'one',
  'oneFirst',
  'query',
  'record',
  'stream',
  'transaction',
  'connect',
] as const satisfies readonly (keyof DatabasePool)[];

type ConnectionMethods = Pick<DatabasePool, (typeof CONNECTION_METHODS)[number]>;

function through(pool: DatabasePool, gate: AdmissionGate, options: AcquireOptions): ConnectionMethods {
  const methods: Record<string, unknown> = {};
  for (const name of CONNECTION_METHODS) {
    const method = (pool[name] as (...args: unknown[]) => Promise<unknown>).bind(pool);
    methods[name] = (...args: unknown[]) => gate.run(() => method(...args), options);
  }
  return methods as ConnectionMethods;
}

/**
 * Slonik's pool queues a caller that finds every connection in use for as long as it takes, with
 * no cap on how many wait (its connectionTimeout bounds opening a connection, not waiting for
 * one), and a waiter cannot leave its queue. This puts a gate in front of it with one permit per
 * connection: a call waits for a permit, at most `queueLimit` calls wait, each at most
 * `waitTimeoutMs`, and the one past that is refused with Overloaded before any query is sent, so
 * a refused write never happened. Everything else (events, configuration, end) is the pool's own.
 */
export function boundPool(pool: DatabasePool, options: { maximumPoolSize: number; queueLimit?: number | undefined; waitTimeoutMs?: number | undefined }): DatabasePool {
  const gate = new AdmissionGate({
    permits: options.maximumPoolSize,
    queueLimit: options.queueLimit ?? Infinity,
    queueTimeoutMs: options.waitTimeoutMs,
    busy: 'every database connection is in use',
  });
  const bounded = Object.assign(Object.create(pool) as DatabasePool, through(pool, gate, {}), {
    // Callers waiting at the gate are waiting for a connection: the pool metrics count them there.
    state: (): ReturnType<DatabasePool['state']> => {
      const state = pool.state();
      return { ...state, waitingClients: state.waitingClients + gate.waiting };
    },
  });
  GATES.set(bounded, gate);
  PRIORITY_LANES.set(bounded, through(pool, gate, { priority: true }));
  return bounded;
}

/** The gate of a pool made with a queue limit or wait timeout (for its metrics), if it has one. */
export const poolGate = (pool: Pick<DatabasePool, 'state'>): AdmissionGate | undefined => GATES.get(pool as DatabasePool);

/**
 * The same pool for the calls that go first: never refused for a full queue and served before
 * every other waiting call, though still bounded by the wait timeout. Readiness probes use it (a
 * process busy serving is still a ready one), and the ledger's group-commit batches (one
 * connection carries a whole batch of money movements, one batch at a time per process).
 */
export const priorityLane = (pool: DatabasePool): CommonQueryMethods => PRIORITY_LANES.get(pool) ?? pool;
