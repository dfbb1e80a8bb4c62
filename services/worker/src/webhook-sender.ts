// One webhook attempt over HTTP(S): resolve the endpoint's host, refuse it when any address it
// resolves to is refused (unless private targets are allowed), then connect to the address that
// was checked (so a second DNS answer cannot point the request elsewhere: DNS rebinding), POST,
// and never follow a redirect. With `connections` (the dispatcher's), an endpoint's connection is
// kept open between deliveries and reused (keyed by the checked address, port and TLS name).
import { lookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { InvalidArgument } from '@bank/shared/errors/domain-error';
import { parseWebhookUrl, refusedResolvedAddress, type WebhookTargetPolicy } from '@bank/shared/webhooks/webhook-address';

/** How an attempt ended; the attempts counter's `outcome` label. */
export type SendOutcome = 'delivered' | 'http_error' | 'redirect' | 'timeout' | 'network_error' | 'refused_target' | 'dns_error';

export type SendResult = {
  readonly outcome: SendOutcome;
  /** The HTTP status, when the endpoint answered. */
  readonly statusCode: number | null;
  /** Why it failed (for the delivery log); null when delivered. */
  readonly error: string | null;
  readonly durationMs: number;
};

/**
 * Kept-alive connections for the deliveries of one dispatcher, at most `maxSockets` per endpoint
 * address. A connection idle for `idleMs` (or for less than the endpoint announces in its
 * `Keep-Alive: timeout=` answer header) is closed. Idle ones never keep the process alive.
 */
export type WebhookConnections = { readonly http: http.Agent; readonly https: https.Agent; close(): void };

export function webhookConnections(options: { maxSockets: number; idleMs: number }): WebhookConnections {
  const settings = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, timeout: options.idleMs, scheduling: 'lifo' as const };
  const agents = { http: new http.Agent(settings), https: new https.Agent(settings) };
  return {
    ...agents,
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/**
 * A failure to retry once, at once, on a new connection: a kept-alive connection the endpoint
 * closed just as the request went out (the request never reached the receiver's application;
 * even if it had, a webhook may arrive twice and carries its event id).
 */
const isStaleConnection = (error: unknown, reused: boolean): boolean =>
  reused && ['ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(String((error as { code?: unknown }).code));

/** Resolves a host name to its addresses (dns.lookup by default; tests may pass their own). */
export type Resolver = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** The endpoint's answer body is read (and dropped) up to this much; a larger one is cut off. */
const MAX_RESPONSE_BYTES = 64 * 1024;

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/**
 * POSTs `body` to `url` with `headers`, within `timeoutMs` for everything (DNS, connect, TLS,
 * the whole answer). Never throws: every failure is a result with its outcome and error text.
 */
export async function sendWebhook(
  url: string,
  body: string,
  headers: Readonly<Record<string, string>>,
  options: { timeoutMs: number; policy: WebhookTargetPolicy; resolve?: Resolver; connections?: WebhookConnections },
): Promise<SendResult> {
  const started = performance.now();
  const done = (outcome: SendOutcome, statusCode: number | null, error: string | null): SendResult => ({
    outcome,
    statusCode,
    error: error === null ? null : error.slice(0, 500),
    durationMs: Math.round(performance.now() - started),
  });
  const signal = AbortSignal.timeout(options.timeoutMs);

  let target: URL;
  try {
    // The stored URL passed this check when it was registered; the deployment's rules may have
    // changed since (production now, private targets no longer allowed).
    target = parseWebhookUrl(url, options.policy);
  } catch (error) {
    return done('refused_target', null, error instanceof InvalidArgument ? `refused: the URL ${error.fieldViolations[0]?.description ?? 'is not allowed'}` : describe(error));
  }
  const hostname = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;

  let addresses: readonly { address: string; family: number }[];
  if (isIP(hostname) !== 0) {
    addresses = [{ address: hostname, family: isIP(hostname) }];
  } else {
    try {
      const resolving = (options.resolve ?? systemResolver)(hostname);
      addresses = await Promise.race([
        resolving,
        new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error(`timed out after ${options.timeoutMs} ms resolving ${hostname}`)), { once: true })),
      ]);
    } catch (error) {
      return signal.aborted ? done('timeout', null, `timed out after ${options.timeoutMs} ms resolving ${hostname}`) : done('dns_error', null, `could not resolve ${hostname}: ${describe(error)}`);
    }
    if (addresses.length === 0) return done('dns_error', null, `could not resolve ${hostname}: no address`);
  }
  const refused = refusedResolvedAddress(addresses.map((a) => a.address), options.policy);
  if (refused) return done('refused_target', null, `refused: ${hostname} resolves to ${refused.address} (${refused.reason})`);
  const pinned = addresses[0] ?? { address: hostname, family: 4 };

  const secure = target.protocol === 'https:';
  const post = (retryingStale: boolean) =>
    new Promise<SendResult | 'stale'>((resolve) => {
      const request = (secure ? https : http).request({
        // Connect to the address just checked; the Host header and TLS (SNI, certificate) keep the name.
        host: pinned.address,
        family: pinned.family,
        port: target.port === '' ? (secure ? 443 : 80) : Number(target.port),
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { ...headers, host: target.host, 'content-length': String(Buffer.byteLength(body)) },
        agent: options.connections && !retryingStale ? (secure ? options.connections.https : options.connections.http) : false,
        signal,
        ...(secure && isIP(hostname) === 0 ? { servername: hostname } : {}),
      });
      let settled = false;
      const finish = (result: SendResult | 'stale') => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      request.on('error', (error) => {
        if (signal.aborted) finish(done('timeout', null, `timed out after ${options.timeoutMs} ms`));
        else if (!retryingStale && isStaleConnection(error, request.reusedSocket)) finish('stale');
        else finish(done('network_error', null, describe(error)));
      });
      request.on('response', (response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          // Enough read: the status is what counts; stop taking a huge answer.
          if (received > MAX_RESPONSE_BYTES) response.destroy();
        });
        response.on('error', () => undefined);
        const answered = () => {
          if (status >= 200 && status < 300) finish(done('delivered', status, null));
          else if (status >= 300 && status < 400) finish(done('redirect', status, `answered ${status} (redirect to ${String(response.headers.location ?? 'nowhere').slice(0, 200)}); redirects are not followed`));
          else finish(done('http_error', status, `answered ${status}`));
        };
        response.on('end', answered);
        response.on('close', () => {
          // Closed before its end: a timeout while reading the answer, or the answer cut off above.
          if (signal.aborted) finish(done('timeout', status, `timed out after ${options.timeoutMs} ms reading the answer`));
          else answered();
        });
      });
      request.end(body);
    });
  const first = await post(false);
  if (first !== 'stale') return first;
  // The kept-alive connection was gone: once more, on a connection of its own.
  return (await post(true)) as SendResult;
}
