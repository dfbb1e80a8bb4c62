import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DatabasePool } from 'slonik';
import { poolGate } from '../db/bounded-pool.ts';
import type { LedgerObserver } from '../ledger/ledger.service.ts';

/**
 * One Prometheus registry per process, with Node's default metrics and a `service` label, so
 * dashboards can tell the API, gRPC server and worker apart when scraped together.
 */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Database pool use, read from Slonik's pool state at scrape time (`waiting` counts the calls
 * waiting at a bounded pool's gate too), and the calls a bounded pool refused.
 */
export function registerPoolMetrics(registry: Registry, pool: Pick<DatabasePool, 'state'>): void {
  new Gauge({
    name: 'bank_db_pool_connections',
    help: 'Database pool connections by state (acquired, idle, waiting for a connection).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const state = pool.state();
      this.set({ state: 'acquired' }, state.acquiredConnections);
      this.set({ state: 'idle' }, state.idleConnections);
      this.set({ state: 'waiting' }, state.waitingClients);
    },
  });
  const gate = poolGate(pool);
  if (!gate) return;
  const seen = { queue_full: 0, queue_timeout: 0 };
  new Counter({
    name: 'bank_db_pool_shed_total',
    help: 'Calls refused with OVERLOADED before any query because every connection was busy: too many were waiting (queue_full) or the call waited its whole time (queue_timeout).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const reason of ['queue_full', 'queue_timeout'] as const) {
        this.inc({ reason }, gate.shed[reason] - seen[reason]);
        seen[reason] = gate.shed[reason];
      }
    },
  });
}

/**
 * Money movements by operation, currency and outcome (`ok` or the error code), idempotent
 * replays, and the size and database time of each group-commit batch. Pass the returned
 * observer to LedgerService.
 */
export function createLedgerMetrics(registry: Registry): LedgerObserver {
  const moves = new Counter({
    name: 'bank_money_movements_total',
    help: 'Transfers and deposits by operation, currency and outcome.',
    labelNames: ['operation', 'currency', 'outcome'],
    registers: [registry],
  });
  const replays = new Counter({
    name: 'bank_idempotent_replays_total',
    help: 'Money-moving requests answered from an earlier request with the same idempotency key.',
    labelNames: ['operation'],
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'bank_ledger_batch_size',
    help: 'Money movements per group-commit batch (one database call and one commit each).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const batchSeconds = new Histogram({
    name: 'bank_ledger_batch_seconds',
    help: 'Seconds from sending a group-commit batch to the database\'s answer (its wait for a connection included); the time every movement in it waited for the database.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    moved({ operation, currency, outcome, replayed }) {
      moves.inc({ operation, currency, outcome });
      if (replayed) replays.inc({ operation });
    },
    batched(size) {
      batchSize.observe(size);
    },
    batchDone(_size, seconds) {
      batchSeconds.observe(seconds);
    },
  };
}
