import type { Kysely, Selectable } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { touchBlobs } from './blobs.ts';
import { auditChange } from './change-audit.ts';
import {
  type Database,
  type MultipartUploadsTable,
  type UploadPartsTable,
  fromJson,
  inReadTransaction,
  inWriteTransaction,
  prefixUpperBound,
} from './db.ts';
import { putObject } from './objects.ts';
import type { ObjectHeaders, ObjectRecord, PartRecord, UploadListQuery, UploadMeta, UploadRecord } from './types.ts';

export class KyselyUploadMeta implements UploadMeta {
  constructor(private readonly db: Kysely<Database>) {}

  /** Throws AstoreError('NoSuchBucket') when the bucket is absent (checked, key-share locked, in the same transaction). */
  create(upload: UploadRecord): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      const bucket = await trx.selectFrom('buckets').select('name').where('name', '=', upload.bucket).forKeyShare().executeTakeFirst();
      if (!bucket) throw new AstoreError('NoSuchBucket', undefined, { BucketName: upload.bucket });
      await trx
        .insertInto('multipart_uploads')
        .values({
          upload_id: upload.uploadId,
          bucket: upload.bucket,
          key: upload.key,
          initiated: upload.initiated.getTime(),
          headers: JSON.stringify(upload.headers),
          user_metadata: JSON.stringify(upload.userMetadata),
          checksum_algorithm: upload.checksumAlgorithm ?? null,
          checksum_type: upload.checksumType ?? null,
        })
        .execute();
    });
  }

  async get(uploadId: string): Promise<UploadRecord | null> {
    const row = await this.db.selectFrom('multipart_uploads').selectAll().where('upload_id', '=', uploadId).executeTakeFirst();
    return row ? toUploadRecord(row) : null;
  }

  /**
   * Order is (key, initiated, upload_id), as S3 lists. The upload-id marker names a position within
   * keyMarker's uploads, found from the marker upload's initiation time; when that upload is gone
   * (completed or aborted between pages) listing resumes at the next key rather than guess.
   */
  list(query: UploadListQuery): Promise<UploadRecord[]> {
    if (query.limit <= 0) return Promise.resolve([]);
    return inReadTransaction(this.db, async (trx) => {
      let select = trx.selectFrom('multipart_uploads').selectAll().where('bucket', '=', query.bucket);
      if (query.prefix) {
        select = select.where('key', '>=', query.prefix);
        const bound = prefixUpperBound(query.prefix);
        if (bound !== null) select = select.where('key', '<', bound);
      }
      const { keyMarker, uploadIdMarker } = query;
      if (keyMarker !== undefined) {
        const markerUpload =
          uploadIdMarker === undefined
            ? undefined
            : await trx
                .selectFrom('multipart_uploads')
                .select(['initiated', 'upload_id'])
                .where('upload_id', '=', uploadIdMarker)
                .where('bucket', '=', query.bucket)
                .where('key', '=', keyMarker)
                .executeTakeFirst();
        select = select.where((eb) =>
          markerUpload === undefined
            ? eb('key', '>', keyMarker)
            : eb.or([
                eb('key', '>', keyMarker),
                eb.and([
                  eb('key', '=', keyMarker),
                  eb.or([
                    eb('initiated', '>', markerUpload.initiated),
                    eb.and([eb('initiated', '=', markerUpload.initiated), eb('upload_id', '>', markerUpload.upload_id)]),
                  ]),
                ]),
              ]),
        );
      }
      const rows = await select.orderBy('key').orderBy('initiated').orderBy('upload_id').limit(query.limit).execute();
      return rows.map(toUploadRecord);
    });
  }

  /**
   * The upload check, the blob touch and the part upsert in one write transaction. The upload is
   * key-share locked: parts of one upload go in concurrently, a complete or abort waits for them.
   */
  putPart(part: PartRecord): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      await requireUpload(trx, part.uploadId, 'key share');
      await touchBlobs(trx, [part], Date.now());
      const row = {
        upload_id: part.uploadId,
        part_number: part.partNumber,
        digest: part.digest,
        size: part.size,
        etag: part.etag,
        checksum: part.checksum ?? null,
        last_modified: part.lastModified.getTime(),
      };
      await trx
        .insertInto('upload_parts')
        .values(row)
        .onConflict((conflict) =>
          conflict.columns(['upload_id', 'part_number']).doUpdateSet({
            digest: row.digest,
            size: row.size,
            etag: row.etag,
            checksum: row.checksum,
            last_modified: row.last_modified,
          }),
        )
        .execute();
    });
  }

  async listParts(uploadId: string, afterPart: number, limit: number): Promise<PartRecord[]> {
    if (limit <= 0) return [];
    const rows = await this.db
      .selectFrom('upload_parts')
      .selectAll()
      .where('upload_id', '=', uploadId)
      .where('part_number', '>', afterPart)
      .orderBy('part_number')
      .limit(limit)
      .execute();
    return rows.map(toPartRecord);
  }

  /**
   * One write transaction: the object's segments are in place (and their blobs touched) before the
   * parts naming the same blobs go, so no blob is unreferenced at any committed instant. The upload is
   * locked first: of two completes, the second finds it gone; a putPart in flight finishes before.
   */
  complete(uploadId: string, object: ObjectRecord): Promise<ObjectRecord | null> {
    return inWriteTransaction(this.db, async (trx) => {
      await requireUpload(trx, uploadId, 'update');
      const replaced = await putObject(trx, object, Date.now());
      await deleteUpload(trx, uploadId);
      await auditChange(trx, 's3:CompleteMultipartUpload', `s3:${object.bucket}/${object.key}`, { size: object.size, etag: object.etag, uploadId });
      return replaced;
    });
  }

  abort(uploadId: string): Promise<boolean> {
    return inWriteTransaction(this.db, (trx) => deleteUpload(trx, uploadId));
  }

  async listInitiatedBefore(before: Date, limit: number): Promise<UploadRecord[]> {
    if (limit <= 0) return [];
    const rows = await this.db
      .selectFrom('multipart_uploads')
      .selectAll()
      .where('initiated', '<', before.getTime())
      .orderBy('initiated')
      .orderBy('upload_id')
      .limit(limit)
      .execute();
    return rows.map(toUploadRecord);
  }
}

/** Locks the upload row ('key share' lets other parts in, 'update' excludes them); NoSuchUpload when absent. */
async function requireUpload(trx: Kysely<Database>, uploadId: string, lock: 'key share' | 'update'): Promise<void> {
  const select = trx.selectFrom('multipart_uploads').select('upload_id').where('upload_id', '=', uploadId);
  const upload = await (lock === 'update' ? select.forUpdate() : select.forKeyShare()).executeTakeFirst();
  if (!upload) throw new AstoreError('NoSuchUpload', undefined, { UploadId: uploadId });
}

/** Removes the parts, then the upload; false when there was no upload. */
async function deleteUpload(trx: Kysely<Database>, uploadId: string): Promise<boolean> {
  await trx.deleteFrom('upload_parts').where('upload_id', '=', uploadId).execute();
  const deleted = await trx.deleteFrom('multipart_uploads').where('upload_id', '=', uploadId).executeTakeFirst();
  return deleted.numDeletedRows > 0n;
}

function toUploadRecord(row: Selectable<MultipartUploadsTable>): UploadRecord {
  const upload: UploadRecord = {
    uploadId: row.upload_id,
    bucket: row.bucket,
    key: row.key,
    initiated: new Date(row.initiated),
    headers: fromJson<ObjectHeaders>(row.headers),
    userMetadata: fromJson<Record<string, string>>(row.user_metadata),
  };
  if (row.checksum_algorithm !== null) upload.checksumAlgorithm = row.checksum_algorithm;
  if (row.checksum_type !== null) upload.checksumType = row.checksum_type;
  return upload;
}

function toPartRecord(row: Selectable<UploadPartsTable>): PartRecord {
  const part: PartRecord = {
    uploadId: row.upload_id,
    partNumber: row.part_number,
    digest: row.digest,
    size: row.size,
    etag: row.etag,
    lastModified: new Date(row.last_modified),
  };
  if (row.checksum !== null) part.checksum = row.checksum;
  return part;
}
