import type { DatabasePool } from '@bank/shared/db/pool';
import {
  LEDGER_INVARIANTS,
  ledgerInvariantsRepository,
  WHOLE_LEDGER,
  type InvariantCheckScope,
  type LedgerInvariant,
} from '@bank/shared/ledger/ledger-invariants.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import type { WorkerMetrics } from './worker-metrics.ts';

export type InvariantChecker = {
  /** Runs one check now (after the one in progress, if any); resolves with the violations per invariant. */
  check(): Promise<Record<LedgerInvariant, number>>;
  /** Stops the timer and waits for the check in progress. */
  stop(): Promise<void>;
};

/**
 * Checks the ledger invariants (ledgerInvariantsRepository) once at start and then every
 * `intervalMs`, and publishes the violations per invariant as `bank_ledger_invariant_violations`
 * (an alert pages on anything but 0; a violation is also logged at error level). The first two
 * rounds read the whole ledger; each later round reads only what was written since the round
 * before the last one: the overlap of one interval takes in rows of transactions that were still
 * open when the previous round started. Read-only, so every replica may run it.
 */
export function startInvariantChecker(options: {
  pool: DatabasePool;
  intervalMs: number;
  logger: Logger;
  metrics: Pick<WorkerMetrics, 'invariantViolations' | 'invariantCheckedAt' | 'invariantCheckSeconds' | 'invariantCheckFailures'>;
}): InvariantChecker {
  const { pool, intervalMs, logger, metrics } = options;
  const marks: InvariantCheckScope[] = [];
  let tail: Promise<unknown> = Promise.resolve();
  let running = false;

  const round = async (): Promise<Record<LedgerInvariant, number>> => {
    const started = performance.now();
    try {
      const current = await ledgerInvariantsRepository.currentMarks(pool);
      const scope = marks.length >= 2 ? (marks.at(-2) as InvariantCheckScope) : WHOLE_LEDGER;
      const violations = await ledgerInvariantsRepository.countViolations(pool, scope);
      marks.push(current);
      if (marks.length > 2) marks.shift();
      for (const invariant of LEDGER_INVARIANTS) metrics.invariantViolations.set({ invariant }, violations[invariant]);
      const seconds = (performance.now() - started) / 1_000;
      metrics.invariantCheckSeconds.set({ scope: scope === WHOLE_LEDGER ? 'whole' : 'recent' }, seconds);
      metrics.invariantCheckedAt.set(Date.now() / 1_000);
      const broken = Object.fromEntries(Object.entries(violations).filter(([, n]) => n > 0));
      if (Object.keys(broken).length > 0) logger.error({ violations: broken }, 'ledger invariants violated');
      else logger.debug({ ms: Math.round(seconds * 1_000), scope: scope === WHOLE_LEDGER ? 'whole' : 'recent' }, 'ledger invariants hold');
      return violations;
    } catch (error) {
      metrics.invariantCheckFailures.inc();
      logger.warn({ err: errorSummary(error), retryInMs: intervalMs }, 'ledger invariant check failed; will retry');
      throw error;
    }
  };

  const check = () => {
    running = true;
    const result = tail.then(round).finally(() => (running = false));
    tail = result.catch(() => undefined);
    return result;
  };
  // The failure is logged inside the round; a tick that finds a check still running skips.
  const tick = () => {
    if (!running) check().catch(() => undefined);
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    check,
    async stop() {
      clearInterval(timer);
      await tail;
    },
  };
}
