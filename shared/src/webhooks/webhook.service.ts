import type { DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import { DomainError, InvalidArgument, PermissionDenied, type FieldViolation } from '../errors/domain-error.ts';
import { EVENT_TYPES, type EventType } from '../events/events.repository.ts';
import { decodePageToken, encodePageToken, parsePageSize } from '../ledger/page-token.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { parseWebhookUrl, type WebhookTargetPolicy } from './webhook-address.ts';
import { newSigningSecret } from './webhook-signature.ts';
import { webhookRepository } from './webhook.repository.ts';
import type { Webhook, WebhookDelivery, WebhookDeliveryPage } from './webhook.types.ts';

const PAGE_KIND = 'webhookdeliveries';

/** No webhook of that id belongs to the caller (one answer for "none" and "someone else's"). */
export class WebhookNotFound extends DomainError {
  constructor(webhookId: bigint | string) {
    super('NOT_FOUND', `webhook ${String(webhookId)} not found`);
  }
}

export class WebhookDeliveryNotFound extends DomainError {
  constructor(deliveryId: bigint | string) {
    super('NOT_FOUND', `webhook delivery ${String(deliveryId)} not found`);
  }
}

/** The caller already has as many webhooks as one user may. */
export class TooManyWebhooks extends DomainError {
  constructor(max: number) {
    super('FAILED_PRECONDITION', `a user may have at most ${max} webhooks; delete one first`);
  }
}

export type WebhookLimits = { maxPerUser: number };

/** What the create call answers: the webhook and, this once, its signing secret. */
export type CreatedWebhook = { webhook: Webhook; signingSecret: string };

const isEventType = (value: string): value is EventType => (EVENT_TYPES as readonly string[]).includes(value);

/**
 * Registering webhooks and reading their delivery log. Events become deliveries in the worker
 * (services/worker/src/webhook-dispatcher.ts), never here.
 *
 * A webhook belongs to the user who made it; every other caller, bankers included, gets
 * WebhookNotFound for it. Throws InvalidArgument (url, event_types, page_size, page_token,
 * all_accounts for a depositor is PermissionDenied), TooManyWebhooks, WebhookNotFound,
 * WebhookDeliveryNotFound, and the abort reason of an aborted signal before any database work.
 */
export class WebhookService {
  readonly #pool: DatabasePool;
  readonly #policy: WebhookTargetPolicy;
  readonly #limits: WebhookLimits;

  constructor(deps: { pool: DatabasePool; policy: WebhookTargetPolicy; limits: WebhookLimits }) {
    this.#pool = deps.pool;
    this.#policy = deps.policy;
    this.#limits = deps.limits;
  }

  /** Registers an endpoint for some event types; the answer carries the signing secret, which no later call returns. */
  async createWebhook(actor: Actor, input: { url: string; eventTypes: readonly string[]; allAccounts: boolean }, options: UseCaseOptions = {}): Promise<CreatedWebhook> {
    const violations: FieldViolation[] = [];
    let url: URL | undefined;
    try {
      url = parseWebhookUrl(input.url, this.#policy);
    } catch (error) {
      if (!(error instanceof InvalidArgument)) throw error;
      violations.push(...error.fieldViolations);
    }
    const eventTypes = [...new Set(input.eventTypes)];
    if (eventTypes.length === 0) violations.push({ field: 'event_types', description: `must name at least one of ${EVENT_TYPES.join(', ')}` });
    const unknown = eventTypes.filter((type) => !isEventType(type));
    if (unknown.length > 0) violations.push({ field: 'event_types', description: `unknown event type ${JSON.stringify(unknown[0]?.slice(0, 60))}; one of ${EVENT_TYPES.join(', ')}` });
    if (violations.length > 0 || !url) throw new InvalidArgument(violations);
    if (input.allAccounts && actor.role !== 'banker') throw new PermissionDenied('only bankers can subscribe to all accounts (all_accounts)');
    throwIfAborted(options.signal);
    const signingSecret = newSigningSecret();
    const webhook = await this.#pool.transaction(async (tx) => {
      await webhookRepository.lockOwner(tx, actor.username);
      if ((await webhookRepository.countByOwner(tx, actor.username)) >= this.#limits.maxPerUser) throw new TooManyWebhooks(this.#limits.maxPerUser);
      return webhookRepository.insert(tx, { owner: actor.username, url: url.toString(), eventTypes, allAccounts: input.allAccounts, signingSecret });
    });
    return { webhook, signingSecret };
  }

  /** The caller's webhooks, oldest first (without their secrets). */
  async listWebhooks(actor: Actor, options: UseCaseOptions = {}): Promise<Webhook[]> {
    throwIfAborted(options.signal);
    return webhookRepository.listByOwner(this.#pool, actor.username);
  }

  /** Deletes one of the caller's webhooks; deliveries not yet made are dropped with it. */
  async deleteWebhook(actor: Actor, webhookId: bigint, options: UseCaseOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (!(await webhookRepository.deleteOwned(this.#pool, webhookId, actor.username))) throw new WebhookNotFound(webhookId);
  }

  /** The delivery log of one of the caller's webhooks, newest first, one cursor page at a time. */
  async listDeliveries(actor: Actor, input: { webhookId: bigint; pageSize?: number; pageToken?: string }, options: UseCaseOptions = {}): Promise<WebhookDeliveryPage> {
    const limit = parsePageSize(input.pageSize);
    const beforeId = decodePageToken(PAGE_KIND, input.pageToken);
    throwIfAborted(options.signal);
    await this.#owned(actor, input.webhookId);
    // One more than the page tells whether another page follows, without a count.
    const rows = await webhookRepository.listDeliveries(this.#pool, input.webhookId, { beforeId, limit: limit + 1 });
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextPageToken: rows.length > limit && last ? encodePageToken(PAGE_KIND, last.id) : '' };
  }

  /** Sends a delivery again, now, with a fresh round of retries (same event id). */
  async redeliver(actor: Actor, input: { webhookId: bigint; deliveryId: bigint }, options: UseCaseOptions = {}): Promise<WebhookDelivery> {
    throwIfAborted(options.signal);
    await this.#owned(actor, input.webhookId);
    if (!(await webhookRepository.redeliver(this.#pool, input.webhookId, input.deliveryId))) throw new WebhookDeliveryNotFound(input.deliveryId);
    const delivery = await webhookRepository.findDelivery(this.#pool, input.webhookId, input.deliveryId);
    if (!delivery) throw new WebhookDeliveryNotFound(input.deliveryId);
    return delivery;
  }

  async #owned(actor: Actor, webhookId: bigint): Promise<Webhook> {
    const webhook = await webhookRepository.findOwned(this.#pool, webhookId, actor.username);
    if (!webhook) throw new WebhookNotFound(webhookId);
    return webhook;
  }
}
