// Webhook delivery in the worker: a fan-out loop turns events into deliveries, a delivery loop
// sends the due ones. Every worker replica runs both; SKIP LOCKED and leases keep them apart.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { webhookEventBody } from '@bank/edge/handlers/webhook-event-json';
import { groupWhileInFlight } from '@bank/shared/db/group-while-in-flight';
import type { DatabasePool } from '@bank/shared/db/pool';
import { eventsRepository } from '@bank/shared/events/events.repository';
import type { Logger } from '@bank/shared/logging/logger';
import { errorSummary } from '@bank/shared/outbox/outbox-publisher';
import type { WebhookTargetPolicy } from '@bank/shared/webhooks/webhook-address';
import { retryDelayMs, type RetryPolicy } from '@bank/shared/webhooks/webhook-backoff';
import { webhookRepository, type AttemptResult, type ClaimedDelivery } from '@bank/shared/webhooks/webhook.repository';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from '@bank/shared/webhooks/webhook-signature';
import { sendWebhook, webhookConnections, type Resolver, type SendOutcome } from './webhook-sender.ts';

const hostOf = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
};

/**
 * An endpoint's kept-alive connection closes after this long unused (sooner when the endpoint
 * announces a shorter Keep-Alive timeout).
 */
const IDLE_CONNECTION_MS = 15_000;

/** Events claimed per fan-out transaction. */
const FAN_OUT_BATCH = 500;

export type WebhookMetrics = {
  attempts: Counter<'outcome'>;
  exhausted: Counter;
  attemptSeconds: Histogram<'outcome'>;
};

/** The webhook metrics on the worker's registry; the gauges read the database at scrape time. */
export function createWebhookMetrics(registry: Registry, pool: DatabasePool): WebhookMetrics {
  new Gauge({
    name: 'bank_webhook_deliveries_pending',
    help: 'Webhook deliveries not yet delivered or failed for good (due now, leased, or waiting for a retry).',
    registers: [registry],
    async collect() {
      try {
        this.set(await webhookRepository.countPending(pool));
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  new Gauge({
    name: 'bank_webhook_events_backlog',
    help: 'Events the webhook fan-out has not handled yet.',
    registers: [registry],
    async collect() {
      try {
        this.set(await eventsRepository.backlog(pool, 'webhooks'));
      } catch {
        // Database down: /readyz reports it.
      }
    },
  });
  return {
    attempts: new Counter({
      name: 'bank_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts by outcome (delivered, http_error, redirect, timeout, network_error, refused_target, dns_error).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    exhausted: new Counter({
      name: 'bank_webhook_deliveries_failed_total',
      help: 'Webhook deliveries that failed for good after retrying for the whole retry window.',
      registers: [registry],
    }),
    attemptSeconds: new Histogram({
      name: 'bank_webhook_attempt_duration_seconds',
      help: 'How long webhook delivery attempts took, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

/**
 * Records finished attempts, those that finish together in one statement and one commit: while
 * a write is in flight the next ones wait and then go together (one commit, so one WAL flush, for
 * a group of deliveries instead of one each). Each caller gets its own answer; a failed write
 * fails every attempt of it (their leases run out and they are sent again, as before).
 */
export function attemptRecorder(pool: DatabasePool): (claim: ClaimedDelivery, result: AttemptResult) => Promise<boolean> {
  const record = groupWhileInFlight((group: readonly { claim: ClaimedDelivery; result: AttemptResult }[]) => webhookRepository.recordAttempts(pool, group));
  return (claim, result) => record({ claim, result });
}

export type WebhookDispatcherOptions = {
  pool: DatabasePool;
  logger: Logger;
  metrics: WebhookMetrics;
  policy: WebhookTargetPolicy;
  retry: RetryPolicy;
  timeoutMs: number;
  pollIntervalMs: number;
  concurrency: number;
  /** DNS resolution for endpoint hosts (the system resolver unless a test passes its own). */
  resolve?: Resolver;
};

export type WebhookDispatcher = {
  /** Runs one fan-out round now; resolves with how many deliveries it wrote. */
  fanOut(): Promise<number>;
  /** Stops both loops and waits for the attempts in flight (each ends within the timeout). */
  stop(): Promise<void>;
};

/**
 * A delivery's lease: a worker SIGKILLed mid-attempt holds it this long, then the delivery is due
 * again. Longer than one attempt can take, so a live worker never loses its claim.
 */
export const leaseMsFor = (timeoutMs: number): number => 2 * timeoutMs + 1_000;

/**
 * Starts the two loops, each at once and then every `pollIntervalMs`:
 *
 * - fan-out: claims events not yet handled by the 'webhooks' consumer (FOR UPDATE SKIP LOCKED)
 *   and, in the same transaction, writes one delivery per matching webhook and marks the events
 *   done. A crash before commit leaves the events to the next round; nothing is half fanned out.
 * - delivery: claims due deliveries with a lease (up to `concurrency` in flight), POSTs each
 *   signed body (over a kept-alive connection to the endpoint where one is free), and records the attempt: delivered on a 2xx; otherwise due again after the
 *   backoff (retryDelayMs), or failed once the retry window is used up. A worker that dies
 *   mid-attempt records nothing; the lease runs out and the delivery is sent again, with the same
 *   event id (at least once).
 */
export function startWebhookDispatcher(options: WebhookDispatcherOptions): WebhookDispatcher {
  const { pool, logger, metrics } = options;
  const leaseMs = leaseMsFor(options.timeoutMs);
  let stopped = false;
  let inFlight = 0;
  const attempts = new Set<Promise<void>>();
  let fanOutTail: Promise<unknown> = Promise.resolve();
  let fanOutQueued = 0;
  let pumping = false;
  let pumpAgain = false;
  const recordAttempt = attemptRecorder(pool);
  // One connection per delivery in flight at most, kept open between deliveries to the same endpoint.
  const connections = webhookConnections({ maxSockets: options.concurrency, idleMs: IDLE_CONNECTION_MS });

  const fanOutRound = async (): Promise<number> => {
    let written = 0;
    for (;;) {
      if (stopped) break;
      const { events, deliveries } = await webhookRepository.fanOutNext(pool, FAN_OUT_BATCH);
      written += deliveries;
      if (deliveries > 0) logger.debug({ events, deliveries }, 'webhook events fanned out');
      if (events < FAN_OUT_BATCH) break;
    }
    if (written > 0) pump();
    return written;
  };

  const fanOut = (): Promise<number> => {
    fanOutQueued += 1;
    const result = fanOutTail.then(fanOutRound).finally(() => (fanOutQueued -= 1));
    fanOutTail = result.catch(() => undefined);
    return result;
  };

  const attempt = async (claim: ClaimedDelivery): Promise<void> => {
    // The endpoint's host only: a URL's path or query may carry the receiver's own token.
    const log = { webhookId: String(claim.webhookId), deliveryId: String(claim.id), attempt: claim.attempt, host: hostOf(claim.url) };
    const { event } = claim;
    const startedAt = new Date();
    const body = webhookEventBody(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const sent = await sendWebhook(claim.url, body, {
      'content-type': 'application/json',
      'user-agent': 'Bank-Webhooks/1',
      [SIGNATURE_HEADER]: signatureHeader(claim.signingSecret, timestamp, body),
      [EVENT_ID_HEADER]: event.publicId,
      'Bank-Event-Type': event.type,
      'Bank-Delivery-Id': String(claim.id),
      'Bank-Delivery-Attempt': String(claim.attempt),
    }, { timeoutMs: options.timeoutMs, policy: options.policy, connections, ...(options.resolve ? { resolve: options.resolve } : {}) });
    const outcome: SendOutcome = sent.outcome;
    const result: Omit<AttemptResult, 'next'> = { startedAt, durationMs: sent.durationMs, statusCode: sent.statusCode, error: sent.error };
    metrics.attempts.inc({ outcome });
    metrics.attemptSeconds.observe({ outcome }, result.durationMs / 1000);
    let next: AttemptResult['next'];
    if (outcome === 'delivered') {
      next = { status: 'delivered' };
    } else {
      const delay = retryDelayMs(claim.attemptInRound, options.retry);
      next = delay === null ? { status: 'failed' } : { status: 'pending', retryInMs: delay };
    }
    const recorded = await recordAttempt(claim, { ...result, next });
    const details = { ...log, eventId: event.publicId, outcome, statusCode: result.statusCode, durationMs: result.durationMs };
    if (!recorded) logger.info(details, 'webhook attempt finished after its delivery was taken back (lease ran out, redelivered or webhook deleted); result not recorded');
    else if (next.status === 'delivered') logger.debug(details, 'webhook delivered');
    else if (next.status === 'failed') {
      metrics.exhausted.inc();
      logger.warn({ ...details, error: result.error }, 'webhook delivery failed for good: retried for the whole retry window');
    } else logger.info({ ...details, error: result.error, retryInMs: next.retryInMs }, 'webhook attempt failed; will retry');
  };

  const pumpOnce = async (): Promise<void> => {
    while (!stopped) {
      const free = options.concurrency - inFlight;
      if (free <= 0) return;
      const claimed = await webhookRepository.claimDue(pool, free, leaseMs);
      for (const claim of claimed) {
        inFlight += 1;
        const running = attempt(claim)
          .catch((error: unknown) => {
            // The database failed while recording: the lease runs out and the delivery is sent again.
            logger.warn({ err: errorSummary(error), deliveryId: String(claim.id) }, 'webhook attempt could not be recorded; it will be retried when its lease runs out');
          })
          .finally(() => {
            inFlight -= 1;
            attempts.delete(running);
            pump();
          });
        attempts.add(running);
      }
      if (claimed.length < free) return;
    }
  };

  /** Claims and starts due deliveries while there are free slots; one pass at a time per worker. */
  function pump(): void {
    if (stopped) return;
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    pumpOnce()
      .catch((error: unknown) => logger.warn({ err: errorSummary(error), retryInMs: options.pollIntervalMs }, 'claiming webhook deliveries failed; will retry'))
      .finally(() => {
        pumping = false;
        if (pumpAgain) {
          pumpAgain = false;
          pump();
        }
      });
  }

  const tick = () => {
    if (fanOutQueued === 0) fanOut().catch((error: unknown) => logger.warn({ err: errorSummary(error), retryInMs: options.pollIntervalMs }, 'webhook fan-out failed; will retry'));
    pump();
  };

  logger.info({ pollIntervalMs: options.pollIntervalMs, concurrency: options.concurrency, timeoutMs: options.timeoutMs, leaseMs, allowPrivateTargets: options.policy.allowPrivateTargets }, 'webhook dispatcher started');
  tick();
  const timer = setInterval(tick, options.pollIntervalMs);
  timer.unref();
  return {
    fanOut,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await fanOutTail;
      while (attempts.size > 0) await Promise.allSettled([...attempts]);
      connections.close();
    },
  };
}
