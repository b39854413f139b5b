import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { type BlobsTable, type Database, batches, inWriteTransaction } from './db.ts';
import type { BlobMeta, BlobRecord } from './types.ts';

export class KyselyBlobMeta implements BlobMeta {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * One upsert statement. It cannot slip into deleteIfGarbage's window: on SQLite it waits for the
   * single connection, which that transaction holds until it commits; on PostgreSQL the upsert waits
   * on the row lock taken by deleteIfGarbage's DELETE, then inserts a fresh row once it commits.
   */
  async touch(digest: string, size: number): Promise<void> {
    await inWriteTransaction(this.db, (trx) => touchBlobs(trx, [{ digest, size }], Date.now()));
  }

  async get(digest: string): Promise<BlobRecord | null> {
    const row = await this.db.selectFrom('blobs').selectAll().where('digest', '=', digest).executeTakeFirst();
    return row ? toBlobRecord(row) : null;
  }

  async listGarbage(touchedBefore: Date, limit: number): Promise<BlobRecord[]> {
    if (limit <= 0) return [];
    const rows = await this.db
      .selectFrom('blobs')
      .selectAll()
      .where((eb) => isGarbage(eb, touchedBefore))
      .orderBy('touched_at')
      .orderBy('digest')
      .limit(limit)
      .execute();
    return rows.map(toBlobRecord);
  }

  /**
   * The conditional DELETE is both the re-check and the lock: on SQLite the write transaction holds
   * the database (BEGIN IMMEDIATE, one connection), on PostgreSQL the DELETE row-locks the blob
   * exactly as SELECT ... FOR UPDATE would, and a writer that touched it meanwhile makes the WHERE
   * fail on re-evaluation (every put and putPart touches the blobs it references, and the foreign keys
   * from segments and parts refuse the delete of a referenced row). The bytes go while the lock is
   * held; if that throws, the transaction rolls back and the row stays.
   */
  deleteIfGarbage(digest: string, touchedBefore: Date, removeBytes: () => Promise<void>): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const deleted = await trx
        .deleteFrom('blobs')
        .where('digest', '=', digest)
        .where((eb) => isGarbage(eb, touchedBefore))
        .executeTakeFirst();
      if (deleted.numDeletedRows === 0n) return false;
      await removeBytes();
      return true;
    });
  }
}

/**
 * Inserts a row for every blob named, or refreshes its touched_at to `nowMs` (size is the blob's
 * and never changes). Digests are de-duplicated first: one statement may not upsert a row twice.
 */
export async function touchBlobs(db: Kysely<Database>, blobs: ReadonlyArray<{ digest: string; size: number }>, nowMs: number): Promise<void> {
  const unique = new Map<string, number>();
  for (const blob of blobs) unique.set(blob.digest, blob.size);
  const rows = [...unique].map(([digest, size]) => ({ digest, size, touched_at: nowMs }));
  for (const batch of batches(rows)) {
    await db
      .insertInto('blobs')
      .values(batch)
      .onConflict((conflict) => conflict.column('digest').doUpdateSet((eb) => ({ touched_at: eb.ref('excluded.touched_at') })))
      .execute();
  }
}

/** Not touched since the cutoff and named by no segment and no part (both NOT EXISTS use a digest index). */
function isGarbage(eb: ExpressionBuilder<Database, 'blobs'>, touchedBefore: Date) {
  return eb.and([
    eb('blobs.touched_at', '<', touchedBefore.getTime()),
    eb.not(eb.exists(eb.selectFrom('object_segments').select('object_segments.seq').whereRef('object_segments.digest', '=', 'blobs.digest'))),
    eb.not(eb.exists(eb.selectFrom('upload_parts').select('upload_parts.part_number').whereRef('upload_parts.digest', '=', 'blobs.digest'))),
  ]);
}

function toBlobRecord(row: Selectable<BlobsTable>): BlobRecord {
  return { digest: row.digest, size: row.size, touchedAt: new Date(row.touched_at) };
}
