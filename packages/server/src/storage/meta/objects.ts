import type { Kysely, Selectable } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { touchBlobs } from './blobs.ts';
import { auditChange } from './change-audit.ts';
import {
  type Database,
  type ObjectSegmentsTable,
  type ObjectsTable,
  batches,
  fromJson,
  inWriteTransaction,
  prefixUpperBound,
} from './db.ts';
import type { ObjectHeaders, ObjectListQuery, ObjectMeta, ObjectRecord, ObjectSummary, Segment } from './types.ts';

export class KyselyObjectMeta implements ObjectMeta {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * One statement (the row joined with its segments), so it reads one snapshot: a concurrent put
   * cannot mix old and new. The hottest read of the server: no transaction around it.
   */
  async get(bucket: string, key: string): Promise<ObjectRecord | null> {
    const rows = await this.db
      .selectFrom('objects as o')
      .leftJoin('object_segments as s', 's.object_id', 'o.id')
      .selectAll('o')
      .select([
        's.seq as s_seq',
        's.digest as s_digest',
        's.size as s_size',
        's.part_number as s_part_number',
        's.etag as s_etag',
        's.checksum as s_checksum',
      ])
      .where('o.bucket', '=', bucket)
      .where('o.key', '=', key)
      .orderBy('s.seq')
      .execute();
    const row = rows[0];
    if (!row) return null;
    return {
      ...toObjectSummary(row),
      headers: fromJson<ObjectHeaders>(row.headers),
      userMetadata: fromJson<Record<string, string>>(row.user_metadata),
      segments: rows
        .filter((r) => r.s_seq !== null)
        .map((r) =>
          toSegment({
            object_id: row.id,
            seq: r.s_seq!,
            digest: r.s_digest!,
            size: r.s_size!,
            part_number: r.s_part_number,
            etag: r.s_etag,
            checksum: r.s_checksum,
          }),
        ),
    };
  }

  put(object: ObjectRecord): Promise<ObjectRecord | null> {
    return inWriteTransaction(this.db, async (trx) => {
      const replaced = await putObject(trx, object, Date.now());
      await auditChange(trx, 's3:PutObject', `s3:${object.bucket}/${object.key}`, { size: object.size, etag: object.etag });
      return replaced;
    });
  }

  delete(bucket: string, key: string): Promise<ObjectRecord | null> {
    return inWriteTransaction(this.db, async (trx) => {
      const existing = await readObject(trx, bucket, key);
      if (!existing) return null;
      await deleteObjectRow(trx, existing.id);
      await auditChange(trx, 's3:DeleteObject', `s3:${bucket}/${key}`);
      return existing.record;
    });
  }

  async list(query: ObjectListQuery): Promise<ObjectSummary[]> {
    if (query.limit <= 0) return [];
    let select = this.db
      .selectFrom('objects')
      .select(['bucket', 'key', 'size', 'etag', 'last_modified', 'checksum_algorithm', 'checksum_value', 'checksum_type', 'digest'])
      .where('bucket', '=', query.bucket);
    if (query.prefix) {
      select = select.where('key', '>=', query.prefix);
      const bound = prefixUpperBound(query.prefix);
      if (bound !== null) select = select.where('key', '<', bound);
    }
    if (query.after !== undefined) select = select.where('key', '>', query.after);
    const rows = await select.orderBy('key').limit(query.limit).execute();
    return rows.map(toObjectSummary);
  }

  async setDigest(bucket: string, key: string, etag: string, digest: string): Promise<boolean> {
    const result = await this.db
      .updateTable('objects')
      .set({ digest })
      .where('bucket', '=', bucket)
      .where('key', '=', key)
      .where('etag', '=', etag)
      .where('digest', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async any(bucket: string): Promise<boolean> {
    const row = await this.db.selectFrom('objects').select('id').where('bucket', '=', bucket).limit(1).executeTakeFirst();
    return row !== undefined;
  }
}

/**
 * ObjectMeta.put inside the caller's write transaction (UploadMeta.complete shares it): checks the
 * bucket, touches every blob the new segments name (so the garbage collector, which re-checks
 * touched_at, leaves them alone), and writes the object: a replaced object's row is updated in place
 * (its segments replaced), a new key gets a row.
 *
 * Concurrent puts of one key queue on that row's lock (readObject) and each finds the version the one
 * before it wrote; updating in place, rather than deleting and inserting a new row, keeps the row they
 * wait for. Two puts that both find no row both insert: the second fails with a unique violation, and
 * inWriteTransaction runs it again, to find the first's row. The bucket is key-share locked:
 * BucketMeta.delete waits for this put, or this put for it (then NoSuchBucket).
 */
export async function putObject(trx: Kysely<Database>, object: ObjectRecord, nowMs: number): Promise<ObjectRecord | null> {
  const bucket = await trx.selectFrom('buckets').select('name').where('name', '=', object.bucket).forKeyShare().executeTakeFirst();
  if (!bucket) throw new AstoreError('NoSuchBucket', undefined, { BucketName: object.bucket });

  const replaced = await readObject(trx, object.bucket, object.key);
  // Blob rows first: segments reference them by foreign key.
  await touchBlobs(trx, object.segments, nowMs);
  const columns = {
    size: object.size,
    etag: object.etag,
    last_modified: object.lastModified.getTime(),
    headers: JSON.stringify(object.headers),
    user_metadata: JSON.stringify(object.userMetadata),
    checksum_algorithm: object.checksum?.algorithm ?? null,
    checksum_value: object.checksum?.value ?? null,
    checksum_type: object.checksum?.type ?? null,
    digest: object.digest ?? null,
  };
  let id: number;
  if (replaced) {
    id = replaced.id;
    await trx.deleteFrom('object_segments').where('object_id', '=', id).execute();
    await trx.updateTable('objects').set(columns).where('id', '=', id).execute();
  } else {
    ({ id } = await trx
      .insertInto('objects')
      .values({ bucket: object.bucket, key: object.key, ...columns })
      .returning('id')
      .executeTakeFirstOrThrow());
  }
  const segmentRows = object.segments.map((segment, seq) => ({
    object_id: id,
    seq,
    digest: segment.digest,
    size: segment.size,
    part_number: segment.partNumber ?? null,
    etag: segment.etag ?? null,
    checksum: segment.checksum ?? null,
  }));
  for (const batch of batches(segmentRows)) await trx.insertInto('object_segments').values(batch).execute();
  return replaced?.record ?? null;
}

/**
 * The object a write transaction is about to replace or delete, row-locked: a concurrent put or delete
 * of the key waits, then finds what that one left (a put's version, or no row after a delete), so two
 * writers never both report the same record as replaced or deleted.
 */
async function readObject(db: Kysely<Database>, bucket: string, key: string): Promise<{ id: number; record: ObjectRecord } | null> {
  const row = await db.selectFrom('objects').selectAll().where('bucket', '=', bucket).where('key', '=', key).forUpdate().executeTakeFirst();
  if (!row) return null;
  const segments = await db.selectFrom('object_segments').selectAll().where('object_id', '=', row.id).orderBy('seq').execute();
  const record: ObjectRecord = {
    ...toObjectSummary(row),
    headers: fromJson<ObjectHeaders>(row.headers),
    userMetadata: fromJson<Record<string, string>>(row.user_metadata),
    segments: segments.map(toSegment),
  };
  return { id: row.id, record };
}

async function deleteObjectRow(trx: Kysely<Database>, id: number): Promise<void> {
  await trx.deleteFrom('object_segments').where('object_id', '=', id).execute();
  await trx.deleteFrom('objects').where('id', '=', id).execute();
}

type SummaryColumns = 'bucket' | 'key' | 'size' | 'etag' | 'last_modified' | 'checksum_algorithm' | 'checksum_value' | 'checksum_type' | 'digest';

function toObjectSummary(row: Pick<Selectable<ObjectsTable>, SummaryColumns>): ObjectSummary {
  const summary: ObjectSummary = { bucket: row.bucket, key: row.key, size: row.size, etag: row.etag, lastModified: new Date(row.last_modified) };
  if (row.checksum_algorithm !== null && row.checksum_value !== null && row.checksum_type !== null) {
    summary.checksum = { algorithm: row.checksum_algorithm, value: row.checksum_value, type: row.checksum_type };
  }
  if (row.digest !== null) summary.digest = row.digest;
  return summary;
}

function toSegment(row: Selectable<ObjectSegmentsTable>): Segment {
  const segment: Segment = { digest: row.digest, size: row.size };
  if (row.part_number !== null) segment.partNumber = row.part_number;
  if (row.etag !== null) segment.etag = row.etag;
  if (row.checksum !== null) segment.checksum = row.checksum;
  return segment;
}
