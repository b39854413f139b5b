import type { Kysely, Selectable } from 'kysely';
import { auditChange } from './change-audit.ts';
import { type BucketsTable, type Database, inWriteTransaction } from './db.ts';
import type { BucketMeta, BucketRecord } from './types.ts';

export class KyselyBucketMeta implements BucketMeta {
  constructor(private readonly db: Kysely<Database>) {}

  /** In a write transaction, so the new bucket is durable (and audited) before it is acknowledged. */
  create(bucket: BucketRecord): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const result = await trx
        .insertInto('buckets')
        .values({ name: bucket.name, region: bucket.region, created_at: bucket.createdAt.getTime() })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      const created = result.numInsertedOrUpdatedRows === 1n;
      if (created) await auditChange(trx, 's3:CreateBucket', `s3:${bucket.name}`);
      return created;
    });
  }

  async get(name: string): Promise<BucketRecord | null> {
    const row = await this.db.selectFrom('buckets').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toBucketRecord(row) : null;
  }

  async list(): Promise<BucketRecord[]> {
    const rows = await this.db.selectFrom('buckets').selectAll().orderBy('name').execute();
    return rows.map(toBucketRecord);
  }

  /**
   * The emptiness check and the deletion share one write transaction, and ObjectMeta.put checks the
   * bucket inside its own, so an object cannot land in a bucket being deleted (the foreign key on
   * objects.bucket would refuse it as well). The bucket row is locked first: a put or upload creation
   * that holds it (key share) finishes before the emptiness check, one that comes later finds no bucket.
   */
  delete(name: string): Promise<'deleted' | 'not-empty' | 'missing'> {
    return inWriteTransaction(this.db, async (trx) => {
      const bucket = await trx.selectFrom('buckets').select('name').where('name', '=', name).forUpdate().executeTakeFirst();
      if (!bucket) return 'missing';
      const object = await trx.selectFrom('objects').select('id').where('bucket', '=', name).limit(1).executeTakeFirst();
      if (object) return 'not-empty';
      const uploadsOfBucket = trx.selectFrom('multipart_uploads').select('upload_id').where('bucket', '=', name);
      await trx.deleteFrom('upload_parts').where('upload_id', 'in', uploadsOfBucket).execute();
      await trx.deleteFrom('multipart_uploads').where('bucket', '=', name).execute();
      await trx.deleteFrom('buckets').where('name', '=', name).execute();
      await auditChange(trx, 's3:DeleteBucket', `s3:${name}`);
      return 'deleted';
    });
  }
}

function toBucketRecord(row: Selectable<BucketsTable>): BucketRecord {
  return { name: row.name, region: row.region, createdAt: new Date(row.created_at) };
}
