import type { Kysely, Selectable, Transaction } from 'kysely';
import { type AuditLogTable, type Database, batches, fromJson, inWriteTransaction, prefixUpperBound } from './db.ts';
import type { AuditEntry, AuditMeta, AuditQuery } from './types.ts';

/**
 * The audit log: append-only rows whose id the database assigns. On SQLite writers are serialised, so
 * ids become visible in increasing order and paging by `afterId` misses nothing. (PostgreSQL takes
 * ids from a sequence when a row is inserted, and concurrent appends commit out of id order: a reader
 * paging by `afterId` while entries are written can skip one that commits late.)
 */
export class KyselyAuditMeta implements AuditMeta {
  constructor(private readonly db: Kysely<Database>) {}

  async append(entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await inWriteTransaction(this.db, (trx) => insertAudit(trx, entries));
  }

  /**
   * `action` ending in `*` and `resource` select by prefix with a range (`>= prefix AND < bound`),
   * which uses the indexes and treats `%` and `_` literally, as LIKE would not.
   */
  async query(query: AuditQuery): Promise<AuditEntry[]> {
    if (query.limit <= 0) return [];
    let select = this.db.selectFrom('audit_log').selectAll();
    if (query.principal !== undefined) select = select.where('principal', '=', query.principal);
    if (query.action !== undefined) {
      if (query.action.endsWith('*')) {
        const prefix = query.action.slice(0, -1);
        select = select.where('action', '>=', prefix);
        const bound = prefixUpperBound(prefix);
        if (bound !== null) select = select.where('action', '<', bound);
      } else {
        select = select.where('action', '=', query.action);
      }
    }
    if (query.resource !== undefined) {
      select = select.where('resource', '>=', query.resource);
      const bound = prefixUpperBound(query.resource);
      if (bound !== null) select = select.where('resource', '<', bound);
    }
    if (query.outcome !== undefined) select = select.where('outcome', '=', query.outcome);
    if (query.from !== undefined) select = select.where('at', '>=', query.from.getTime());
    if (query.to !== undefined) select = select.where('at', '<', query.to.getTime());
    if (query.afterId !== undefined) select = select.where('id', '>', query.afterId);
    const rows = await select.orderBy('id').limit(query.limit).execute();
    return rows.map(toAuditEntry);
  }
}

/**
 * Inserts audit entries in the caller's transaction: the identity store writes the entry of a change
 * with the change, so both commit or neither does. An entry's `id` is ignored (the database assigns it).
 */
export async function insertAudit(trx: Transaction<Database>, entries: readonly AuditEntry[]): Promise<void> {
  const rows = entries.map((entry) => ({
    at: entry.at.getTime(),
    principal: entry.principal,
    access_key_id: entry.accessKeyId ?? null,
    action: entry.action,
    resource: entry.resource,
    outcome: entry.outcome,
    source_ip: entry.sourceIp ?? null,
    request_id: entry.requestId ?? null,
    detail: entry.detail !== undefined ? JSON.stringify(entry.detail) : null,
  }));
  for (const batch of batches(rows)) await trx.insertInto('audit_log').values(batch).execute();
}

function toAuditEntry(row: Selectable<AuditLogTable>): AuditEntry {
  return {
    id: row.id,
    at: new Date(row.at),
    principal: row.principal,
    ...(row.access_key_id !== null && { accessKeyId: row.access_key_id }),
    action: row.action,
    resource: row.resource,
    outcome: row.outcome,
    ...(row.source_ip !== null && { sourceIp: row.source_ip }),
    ...(row.request_id !== null && { requestId: row.request_id }),
    ...(row.detail !== null && { detail: fromJson<Record<string, unknown>>(row.detail) }),
  };
}
