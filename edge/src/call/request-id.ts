import { randomUUID } from 'node:crypto';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request id rule of both edges: the caller's `x-request-id` when it is a sane token (so a
 * client or the ingress can correlate), else a fresh UUID. Anything else a client sends is
 * dropped rather than echoed into logs and headers.
 */
export function requestIdFrom(incoming: string | undefined): string {
  return incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
