import type { EventType } from '../events/events.repository.ts';

/** An endpoint a user registered. The signing secret is not part of it: only the create call returns it. */
export type Webhook = {
  readonly id: bigint;
  readonly owner: string;
  readonly url: string;
  readonly eventTypes: readonly EventType[];
  /** Every account's events (a banker's webhook), not only the owner's. */
  readonly allAccounts: boolean;
  readonly createdAt: Date;
};

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One finished attempt of a delivery: what the endpoint answered, and how long it took. */
export type WebhookDeliveryAttempt = {
  readonly attempt: number;
  readonly startedAt: Date;
  readonly durationMs: number;
  /** The HTTP status answered; null when there was no answer (timeout, connection refused, refused address). */
  readonly statusCode: number | null;
  readonly error: string | null;
};

/** One event to one webhook, with its log. */
export type WebhookDelivery = {
  readonly id: bigint;
  readonly webhookId: bigint;
  /** The event's public id: the `id` of the body and the Bank-Event-Id header, the same on every attempt. */
  readonly eventId: string;
  readonly eventType: EventType;
  readonly status: DeliveryStatus;
  /** Attempts started, including one cut short by a crash. */
  readonly attempts: number;
  /** When the next attempt is due (pending only). */
  readonly nextAttemptAt: Date | null;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: Date | null;
  readonly deliveredAt: Date | null;
  readonly createdAt: Date;
  /** The latest finished attempts, oldest first (at most ATTEMPT_LOG_LIMIT). */
  readonly attemptLog: readonly WebhookDeliveryAttempt[];
};

export type WebhookDeliveryPage = { readonly items: readonly WebhookDelivery[]; readonly nextPageToken: string };
