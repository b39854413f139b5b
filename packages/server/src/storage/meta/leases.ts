import type { Kysely } from 'kysely';
import { type Database, inWriteTransaction } from './db.ts';
import type { LeaseMeta, LeaseRecord } from './types.ts';

/**
 * Leases as one row each. Taking one is a single upsert whose update applies only when the row is
 * the caller's or has expired, so the check and the take cannot be split by another replica:
 * - PostgreSQL (READ COMMITTED): `INSERT ... ON CONFLICT DO UPDATE ... WHERE` either inserts, or locks
 *   the existing row and evaluates the WHERE on its latest committed version. Of concurrent takers of
 *   a free or expired lease the first to lock it updates it; the others then see its new, running
 *   expiry and another holder, and update nothing. Concurrent inserts of a new name do not fail with a
 *   unique violation: ON CONFLICT makes the losers wait for the winner's row and take the update path.
 * - SQLite: writers are serialised (BEGIN IMMEDIATE), so each upsert sees the one before it.
 * The affected-row count says whether the caller holds the lease.
 */
export class KyselyLeaseMeta implements LeaseMeta {
  constructor(private readonly db: Kysely<Database>) {}

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`lease TTL must be a positive integer of ms, not ${ttlMs}`);
    return inWriteTransaction(this.db, async (trx) => {
      // Read inside the attempt: a retried transaction measures the expiry from its own start.
      const now = Date.now();
      const result = await trx
        .insertInto('leases')
        .values({ name, holder, expires_at: now + ttlMs })
        .onConflict((conflict) =>
          conflict
            .column('name')
            .doUpdateSet((eb) => ({ holder: eb.ref('excluded.holder'), expires_at: eb.ref('excluded.expires_at') }))
            .where((eb) => eb.or([eb('leases.holder', '=', holder), eb('leases.expires_at', '<=', now)])),
        )
        .executeTakeFirst();
      return result.numInsertedOrUpdatedRows === 1n;
    });
  }

  release(name: string, holder: string): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const result = await trx.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
      return result.numDeletedRows === 1n;
    });
  }

  async get(name: string): Promise<LeaseRecord | null> {
    const row = await this.db.selectFrom('leases').selectAll().where('name', '=', name).where('expires_at', '>', Date.now()).executeTakeFirst();
    return row ? { name: row.name, holder: row.holder, expiresAt: new Date(row.expires_at) } : null;
  }
}
