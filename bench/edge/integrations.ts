// Notifications and webhooks on while bench:edge runs (issue 14: "bench:edge re-run with
// notifications and webhooks on"). Notifications are on for every bench user (the default), so
// each transfer's receiver gets its money-received email or a place in the minute's digest. For
// webhooks, a receiver in the bench's own process (node:http, answers 204, checks every
// Bank-Signature) and some users subscribed to every event of their accounts: the last users,
// never the hot pair, so a uniform run sends them about 2 * subscribers / users of its transfers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { EVENT_TYPES } from '../../shared/src/events/events.repository.ts';
import { SIGNATURE_HEADER, verifySignature } from '../../shared/src/webhooks/webhook-signature.ts';
import { httpJson, type BenchUser } from './users.ts';

export type WebhookReceiver = {
  url: string;
  /** Each subscriber's signing secret, as POST /v1/webhooks answered it. */
  secrets: string[];
  received(): { deliveries: number; badSignatures: number };
  close(): Promise<void>;
};

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const secrets: string[] = [];
  let deliveries = 0;
  let badSignatures = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = request.headers[SIGNATURE_HEADER.toLowerCase()];
      deliveries++;
      if (typeof header !== 'string' || !secrets.some((secret) => verifySignature(secret, header, body))) badSignatures++;
      response.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    secrets,
    received: () => ({ deliveries, badSignatures }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The last `count` users each register a webhook for every event type of their own accounts. */
export async function subscribe(httpUrl: string, users: readonly BenchUser[], count: number, receiver: WebhookReceiver): Promise<BenchUser[]> {
  const subscribers = users.slice(Math.max(2, users.length - count));
  for (const user of subscribers) {
    const created = await httpJson(httpUrl, 'POST', '/v1/webhooks', { token: user.accessToken, body: { url: receiver.url, eventTypes: EVENT_TYPES }, expect: 201 });
    if (typeof created.signingSecret !== 'string') throw new Error(`POST /v1/webhooks answered no signingSecret for ${user.username}`);
    receiver.secrets.push(created.signingSecret);
  }
  return subscribers;
}

export type IntegrationCounts = {
  events: number;
  /** Events the notifier has not handled yet (when the counts were read). */
  eventsNotNotified: number;
  emailsByKind: Record<string, number>;
  emailsNotSent: number;
  webhookSubscribers: number;
  deliveries: { pending: number; delivered: number; failed: number };
  receiver: { deliveries: number; badSignatures: number };
};

/** What the worker did for the run's events, read from the stack's database. */
export async function integrationCounts(databaseUrl: string, subscribers: number, receiver: WebhookReceiver): Promise<IntegrationCounts> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const events = await client.query<{ all: string; open: string }>(
      'SELECT count(*) AS all, count(*) FILTER (WHERE notified_at IS NULL) AS open FROM events',
    );
    const emails = await client.query<{ kind: string; n: string; unsent: string }>(
      "SELECT kind, count(*) AS n, count(*) FILTER (WHERE status <> 'sent') AS unsent FROM outbox GROUP BY kind ORDER BY kind",
    );
    const deliveries = await client.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status');
    const byStatus = Object.fromEntries(deliveries.rows.map((row) => [row.status, Number(row.n)]));
    return {
      events: Number(events.rows[0]?.all ?? 0),
      eventsNotNotified: Number(events.rows[0]?.open ?? 0),
      emailsByKind: Object.fromEntries(emails.rows.map((row) => [row.kind, Number(row.n)])),
      emailsNotSent: emails.rows.reduce((sum, row) => sum + Number(row.unsent), 0),
      webhookSubscribers: subscribers,
      deliveries: { pending: byStatus.pending ?? 0, delivered: byStatus.delivered ?? 0, failed: byStatus.failed ?? 0 },
      receiver: receiver.received(),
    };
  } finally {
    await client.end();
  }
}

export function describeIntegrations(c: IntegrationCounts): string {
  const emails = Object.entries(c.emailsByKind)
    .map(([kind, n]) => `${kind} ${n.toLocaleString('en')}`)
    .join(', ');
  return (
    `notifications and webhooks on: ${c.events.toLocaleString('en')} events (${c.eventsNotNotified.toLocaleString('en')} not yet notified); ` +
    `emails: ${emails} (${c.emailsNotSent.toLocaleString('en')} not yet sent); ` +
    `${c.webhookSubscribers} webhooks: ${c.deliveries.delivered.toLocaleString('en')} delivered, ${c.deliveries.pending.toLocaleString('en')} pending, ` +
    `${c.deliveries.failed.toLocaleString('en')} failed; the receiver got ${c.receiver.deliveries.toLocaleString('en')} (${c.receiver.badSignatures} with a bad signature)`
  );
}
