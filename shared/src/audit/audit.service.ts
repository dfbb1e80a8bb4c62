import type { DatabasePool } from 'slonik';
import type { Actor } from '../auth/actor.ts';
import { PermissionDenied } from '../errors/domain-error.ts';
import { decodePageToken, encodePageToken, parsePageSize } from '../ledger/page-token.ts';
import { throwIfAborted, type UseCaseOptions } from '../use-case/use-case-options.ts';
import { auditRepository } from './audit.repository.ts';
import type { AuditEventPage } from './audit.types.ts';

const PAGE_KIND = 'audit';

/**
 * Reading the audit trail. Events are written by the use cases they record (in their own
 * transactions, through auditRepository), never here.
 *
 * Throws PermissionDenied (the caller is not a banker), InvalidArgument (page_size, page_token),
 * and the abort reason of an aborted signal before touching the database; nothing else on purpose.
 */
export class AuditService {
  readonly #pool: DatabasePool;

  constructor(deps: { pool: DatabasePool }) {
    this.#pool = deps.pool;
  }

  /** Bankers only: the trail newest first, one cursor page at a time. */
  async listAuditEvents(actor: Actor, input: { pageSize?: number; pageToken?: string }, options: UseCaseOptions = {}): Promise<AuditEventPage> {
    if (actor.role !== 'banker') throw new PermissionDenied('only bankers can read the audit trail');
    const limit = parsePageSize(input.pageSize);
    const beforeId = decodePageToken(PAGE_KIND, input.pageToken);
    throwIfAborted(options.signal);
    // One more than the page tells whether another page follows, without a count.
    const rows = await auditRepository.listNewestFirst(this.#pool, { beforeId, limit: limit + 1 });
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    return { items, nextPageToken: rows.length > limit && last ? encodePageToken(PAGE_KIND, last.id) : '' };
  }
}
