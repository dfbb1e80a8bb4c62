import { BackendTerminatedError, BackendTerminatedUnexpectedlyError, ConnectionError } from 'slonik';

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** The error and the errors it was caused by (`cause`), outermost first, at most five deep. */
export function* errorCauses(error: unknown): Generator<Error> {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) yield e;
}

/**
 * True when the failure is a store that cannot be reached (PostgreSQL down, restarting or out of
 * connections; a lost socket), not a fault in this code: the caller may retry, so it is a 503 /
 * UNAVAILABLE, still logged as an error.
 */
export function isStoreUnavailable(error: unknown): boolean {
  for (const e of errorCauses(error)) {
    if (e instanceof ConnectionError || e instanceof BackendTerminatedError || e instanceof BackendTerminatedUnexpectedlyError) return true;
    const code = (e as { code?: unknown }).code;
    // SQLSTATE class 08 (connection exception), 57P01..03 (shutdown, crash, cannot connect now), 53300 (too many connections).
    if (typeof code === 'string' && (NETWORK_ERRORS.has(code) || /^(08...|57P0[123]|53300)$/.test(code))) return true;
  }
  return false;
}
