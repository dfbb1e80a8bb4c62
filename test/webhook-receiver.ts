// A real HTTP endpoint for webhook tests: node:http on 127.0.0.1, a free port, every request kept
// with its raw body and headers; what it answers is up to the test.
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceivedWebhook = {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The body exactly as it arrived (what the signature covers). */
  readonly rawBody: string;
  readonly json: { id: string; type: string; createdAt: string; data: Record<string, unknown> };
};

/** What to answer: a status, optionally after a delay (longer than the sender's timeout: a timeout), with headers. */
export type Answer = { status: number; delayMs?: number; headers?: Record<string, string> };

export type WebhookReceiver = {
  /** Base URL, e.g. http://127.0.0.1:43121 */
  readonly url: string;
  /** Every request that arrived completely, in order (answered or not). */
  readonly received: ReceivedWebhook[];
  /** Sets how requests are answered from now on (`n`: 1 for the first request this receiver got). */
  answer(handler: (request: ReceivedWebhook, n: number) => Answer): void;
  /** Requests that arrived but have not been answered yet. */
  inFlight(): number;
  /** Resolves once `predicate` holds for the requests so far; rejects after `timeoutMs`. */
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
};

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let handler: (request: ReceivedWebhook, n: number) => Answer = () => ({ status: 200 });
  let pending = 0;
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let json: ReceivedWebhook['json'];
      try {
        json = JSON.parse(rawBody) as ReceivedWebhook['json'];
      } catch {
        json = { id: '', type: '', createdAt: '', data: {} };
      }
      const request: ReceivedWebhook = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawBody, json };
      received.push(request);
      const answer = handler(request, received.length);
      pending += 1;
      for (const wake of waiters) wake();
      const reply = () => {
        pending -= 1;
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end('ok');
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs).unref();
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    answer(next) {
      handler = next;
    },
    inFlight: () => pending,
    waitFor(predicate, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(received)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(received);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${received.length} requests received)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
