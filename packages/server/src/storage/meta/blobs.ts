import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { type BlobsTable, type Database, batches, inReadTransaction, inWriteTransaction } from './db.ts';
import type { BlobMeta, BlobRecord, BlobReferences } from './types.ts';

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
   * from segments and parts refuse the delete of a referenced row: inWriteTransaction runs it again,
   * and the re-run sees the reference). The bytes go while the lock is held, as the last step (a
   * READ COMMITTED commit cannot fail for a concurrent writer); if that throws, the transaction rolls
   * back and the row stays.
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

  references(digest: string, limit: number): Promise<BlobReferences> {
    return inReadTransaction(this.db, async (trx) => {
      const objects = await trx
        .selectFrom('object_segments')
        .innerJoin('objects', 'objects.id', 'object_segments.object_id')
        .select(['objects.bucket', 'objects.key'])
        .distinct()
        .where('object_segments.digest', '=', digest)
        .orderBy('objects.bucket')
        .orderBy('objects.key')
        .limit(limit)
        .execute();
      const parts = await trx
        .selectFrom('upload_parts')
        .innerJoin('multipart_uploads', 'multipart_uploads.upload_id', 'upload_parts.upload_id')
        .select(['multipart_uploads.bucket', 'multipart_uploads.key', 'upload_parts.upload_id', 'upload_parts.part_number'])
        .where('upload_parts.digest', '=', digest)
        .limit(limit)
        .execute();
      const layers = await trx
        .selectFrom('repository_blobs')
        .select(['repository', 'digest'])
        .where('blob', '=', digest)
        .orderBy('repository')
        .limit(limit)
        .execute();
      const uploads = await trx
        .selectFrom('registry_upload_chunks')
        .innerJoin('registry_uploads', 'registry_uploads.upload_id', 'registry_upload_chunks.upload_id')
        .select(['registry_uploads.repository', 'registry_uploads.upload_id'])
        .distinct()
        .where('registry_upload_chunks.digest', '=', digest)
        .limit(limit)
        .execute();
      const records = await trx.selectFrom('sc_records').select(['id', 'subject']).where('content_digest', '=', digest).orderBy('id').limit(limit).execute();
      return {
        objects,
        multipartParts: parts.map((p) => ({ bucket: p.bucket, key: p.key, uploadId: p.upload_id, partNumber: p.part_number })),
        layers,
        registryUploads: uploads.map((u) => ({ repository: u.repository, uploadId: u.upload_id })),
        records,
      };
    });
  }
}

/**
 * Inserts a row for every blob named, or refreshes its touched_at to `nowMs` (size is the blob's
 * and never changes). Digests are de-duplicated first: one statement may not upsert a row twice.
 * They are upserted in digest order, so that two writers touching the same blobs lock their rows
 * in the same order (PostgreSQL) rather than deadlock.
 */
export async function touchBlobs(db: Kysely<Database>, blobs: ReadonlyArray<{ digest: string; size: number }>, nowMs: number): Promise<void> {
  const unique = new Map<string, number>();
  for (const blob of blobs) unique.set(blob.digest, blob.size);
  const rows = [...unique]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([digest, size]) => ({ digest, size, touched_at: nowMs }));
  for (const batch of batches(rows)) {
    await db
      .insertInto('blobs')
      .values(batch)
      .onConflict((conflict) => conflict.column('digest').doUpdateSet((eb) => ({ touched_at: eb.ref('excluded.touched_at') })))
      .execute();
  }
}

/**
 * Not touched since the cutoff and named by no object segment, multipart part, repository link,
 * registry upload chunk or supply-chain record (each NOT EXISTS uses an index on the digest column).
 */
function isGarbage(eb: ExpressionBuilder<Database, 'blobs'>, touchedBefore: Date) {
  return eb.and([
    eb('blobs.touched_at', '<', touchedBefore.getTime()),
    eb.not(eb.exists(eb.selectFrom('object_segments').select('object_segments.seq').whereRef('object_segments.digest', '=', 'blobs.digest'))),
    eb.not(eb.exists(eb.selectFrom('upload_parts').select('upload_parts.part_number').whereRef('upload_parts.digest', '=', 'blobs.digest'))),
    eb.not(eb.exists(eb.selectFrom('repository_blobs').select('repository_blobs.size').whereRef('repository_blobs.blob', '=', 'blobs.digest'))),
    eb.not(
      eb.exists(
        eb.selectFrom('registry_upload_chunks').select('registry_upload_chunks.seq').whereRef('registry_upload_chunks.digest', '=', 'blobs.digest'),
      ),
    ),
    eb.not(eb.exists(eb.selectFrom('sc_records').select('sc_records.id').whereRef('sc_records.content_digest', '=', 'blobs.digest'))),
  ]);
}

function toBlobRecord(row: Selectable<BlobsTable>): BlobRecord {
  return { digest: row.digest, size: row.size, touchedAt: new Date(row.touched_at) };
}
