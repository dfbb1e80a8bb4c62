// The WebhookService operations over the webhook use cases, and the webhook messages' mapping.
import { create } from '@bufbuild/protobuf';
import { EmptySchema, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  ListWebhookDeliveriesResponseSchema,
  ListWebhooksResponseSchema,
  WebhookDeliverySchema,
  WebhookSchema,
  type WebhookDelivery as ProtoWebhookDelivery,
  type WebhookService,
  type Webhook as ProtoWebhook,
} from '@bank/proto/bank/v1/webhook_service_pb';
import type { WebhookService as WebhookUseCases } from '@bank/shared/webhooks/webhook.service';
import type { Webhook, WebhookDelivery } from '@bank/shared/webhooks/webhook.types';
import { actorOf, opts, type ServiceHandlers } from './handler-context.ts';

export function toProtoWebhook(webhook: Webhook): ProtoWebhook {
  return create(WebhookSchema, {
    id: webhook.id,
    url: webhook.url,
    eventTypes: [...webhook.eventTypes],
    allAccounts: webhook.allAccounts,
    owner: webhook.owner,
    createdAt: timestampFromDate(webhook.createdAt),
  });
}

export function toProtoWebhookDelivery(delivery: WebhookDelivery): ProtoWebhookDelivery {
  return create(WebhookDeliverySchema, {
    id: delivery.id,
    webhookId: delivery.webhookId,
    eventId: delivery.eventId,
    eventType: delivery.eventType,
    status: delivery.status,
    attempts: delivery.attempts,
    ...(delivery.nextAttemptAt ? { nextAttemptAt: timestampFromDate(delivery.nextAttemptAt) } : {}),
    lastStatusCode: delivery.lastStatusCode ?? 0,
    lastError: delivery.lastError ?? '',
    ...(delivery.lastAttemptAt ? { lastAttemptAt: timestampFromDate(delivery.lastAttemptAt) } : {}),
    ...(delivery.deliveredAt ? { deliveredAt: timestampFromDate(delivery.deliveredAt) } : {}),
    createdAt: timestampFromDate(delivery.createdAt),
    attemptLog: delivery.attemptLog.map((a) => ({
      attempt: a.attempt,
      startedAt: timestampFromDate(a.startedAt),
      durationMs: a.durationMs,
      statusCode: a.statusCode ?? 0,
      error: a.error ?? '',
    })),
  });
}

export function webhookHandlers(app: { webhooks: WebhookUseCases }): ServiceHandlers<typeof WebhookService> {
  return {
    createWebhook: async (req, ctx) => {
      const created = await app.webhooks.createWebhook(actorOf(ctx), { url: req.url, eventTypes: req.eventTypes, allAccounts: req.allAccounts }, opts(ctx));
      return { webhook: toProtoWebhook(created.webhook), signingSecret: created.signingSecret };
    },
    listWebhooks: async (_req, ctx) => create(ListWebhooksResponseSchema, { webhooks: (await app.webhooks.listWebhooks(actorOf(ctx), opts(ctx))).map(toProtoWebhook) }),
    deleteWebhook: async (req, ctx) => {
      await app.webhooks.deleteWebhook(actorOf(ctx), req.webhookId, opts(ctx));
      return create(EmptySchema);
    },
    listWebhookDeliveries: async (req, ctx) => {
      const page = await app.webhooks.listDeliveries(actorOf(ctx), { webhookId: req.webhookId, pageSize: req.pageSize, pageToken: req.pageToken }, opts(ctx));
      return create(ListWebhookDeliveriesResponseSchema, { deliveries: page.items.map(toProtoWebhookDelivery), nextPageToken: page.nextPageToken });
    },
    redeliverWebhookDelivery: async (req, ctx) =>
      toProtoWebhookDelivery(await app.webhooks.redeliver(actorOf(ctx), { webhookId: req.webhookId, deliveryId: req.deliveryId }, opts(ctx))),
  };
}
