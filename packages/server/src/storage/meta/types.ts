/**
 * The MetaStore is the source of truth for everything but the bytes: buckets, objects and the blobs
 * they point at, multipart uploads and their parts. Each method is one transaction: readers see the
 * state before or after it, never a mix. Strings compare as UTF-8 bytes (S3 key order).
 *
 * Every dialect (SQLite now, PostgreSQL later) passes the conformance suite in ./conformance.ts.
 */
export interface MetaStore {
  readonly dialect: string;
  readonly buckets: BucketMeta;
  readonly objects: ObjectMeta;
  readonly uploads: UploadMeta;
  readonly blobs: BlobMeta;
  /** Applies pending migrations; idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- buckets

export interface BucketRecord {
  name: string;
  region: string;
  createdAt: Date;
}

export interface BucketMeta {
  /** Inserts the bucket; returns false (and changes nothing) when the name is taken. */
  create(bucket: BucketRecord): Promise<boolean>;
  get(name: string): Promise<BucketRecord | null>;
  /** All buckets ordered by name. */
  list(): Promise<BucketRecord[]>;
  /**
   * Deletes an empty bucket and any multipart uploads in it (their parts become unreferenced).
   * 'not-empty' when it holds an object, 'missing' when absent.
   */
  delete(name: string): Promise<'deleted' | 'not-empty' | 'missing'>;
}

// ---------------------------------------------------------------- objects

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

/** A checksum as S3 reports it: base64 of the big-endian digest, `-N` suffix when COMPOSITE. */
export interface ObjectChecksum {
  algorithm: ChecksumAlgorithm;
  value: string;
  type: 'FULL_OBJECT' | 'COMPOSITE';
}

/**
 * A contiguous run of an object's bytes, stored as one blob. A single PUT has one segment; a
 * multipart object has one per part, in order, carrying the part's number, ETag and checksum.
 */
export interface Segment {
  digest: string; // "sha256:<hex>"
  size: number;
  partNumber?: number;
  etag?: string; // quoted, as S3 returns it
  checksum?: string; // base64, of the part's algorithm
}

export interface ObjectHeaders {
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  expires?: string;
}

export interface ObjectRecord {
  bucket: string;
  key: string;
  size: number;
  /** Quoted ETag: `"<md5 hex>"` for a single PUT, `"<md5 of part md5s>-N"` for multipart. */
  etag: string;
  lastModified: Date;
  headers: ObjectHeaders;
  /** `x-amz-meta-*` without the prefix, names lower-case. */
  userMetadata: Record<string, string>;
  checksum?: ObjectChecksum;
  /** The sha256 of the whole object when known (always for a single PUT), "sha256:<hex>". */
  digest?: string;
  segments: Segment[];
}

/** What a listing returns per key: no segments. */
export type ObjectSummary = Omit<ObjectRecord, 'segments' | 'userMetadata' | 'headers'>;

export interface ObjectListQuery {
  bucket: string;
  prefix?: string;
  /** Only keys strictly greater than this (byte order). */
  after?: string;
  limit: number;
}

export interface ObjectMeta {
  get(bucket: string, key: string): Promise<ObjectRecord | null>;
  /**
   * Inserts or replaces the object at (bucket, key) atomically, and refreshes `touched_at` of every
   * blob its segments name. Throws AstoreError('NoSuchBucket') when the bucket is absent.
   * Returns the replaced record, if any.
   */
  put(object: ObjectRecord): Promise<ObjectRecord | null>;
  /** Deletes atomically; returns the deleted record, or null when there was none. */
  delete(bucket: string, key: string): Promise<ObjectRecord | null>;
  /** Keys in byte order, filtered by prefix, after `after`, at most `limit`. */
  list(query: ObjectListQuery): Promise<ObjectSummary[]>;
  /** True when the bucket holds at least one object. */
  any(bucket: string): Promise<boolean>;
}

// ---------------------------------------------------------------- multipart uploads

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  initiated: Date;
  headers: ObjectHeaders;
  userMetadata: Record<string, string>;
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
}

export interface PartRecord {
  uploadId: string;
  partNumber: number;
  digest: string;
  size: number;
  etag: string; // quoted md5 hex
  checksum?: string;
  lastModified: Date;
}

export interface UploadListQuery {
  bucket: string;
  prefix?: string;
  /** Uploads whose (key, uploadId) sorts after (keyMarker, uploadIdMarker). */
  keyMarker?: string;
  uploadIdMarker?: string;
  limit: number;
}

export interface UploadMeta {
  create(upload: UploadRecord): Promise<void>;
  get(uploadId: string): Promise<UploadRecord | null>;
  /** Uploads ordered by key, then initiation time, then id. */
  list(query: UploadListQuery): Promise<UploadRecord[]>;
  /**
   * Records (or replaces) a part and refreshes its blob's `touched_at`.
   * Throws AstoreError('NoSuchUpload') when the upload is gone (aborted or completed meanwhile).
   */
  putPart(part: PartRecord): Promise<void>;
  /** Parts ordered by number, after `afterPart`, at most `limit`. */
  listParts(uploadId: string, afterPart: number, limit: number): Promise<PartRecord[]>;
  /**
   * Atomically: removes the upload and its parts and puts `object` (as ObjectMeta.put).
   * Throws AstoreError('NoSuchUpload') when the upload is gone. Returns the replaced object, if any.
   */
  complete(uploadId: string, object: ObjectRecord): Promise<ObjectRecord | null>;
  /** Removes the upload and its parts; false when it was not there. */
  abort(uploadId: string): Promise<boolean>;
  /** Uploads initiated before `before`, for expiry by the garbage collector. */
  listInitiatedBefore(before: Date, limit: number): Promise<UploadRecord[]>;
}

// ---------------------------------------------------------------- blobs (reference bookkeeping)

export interface BlobRecord {
  digest: string;
  size: number;
  touchedAt: Date;
}

/**
 * Blob rows exist for every blob in the BlobStore's `blobs/` namespace. A blob is garbage when no
 * object segment and no upload part names it and it was not touched within the grace period.
 */
export interface BlobMeta {
  /**
   * Inserts the row or refreshes `touched_at` to now. Waits while the garbage collector holds the
   * row (see deleteIfGarbage), so after touch returns the blob either survives the grace period or
   * was already deleted (the caller then stores the bytes again).
   */
  touch(digest: string, size: number): Promise<void>;
  get(digest: string): Promise<BlobRecord | null>;
  /** Unreferenced blobs not touched since `touchedBefore`: candidates, to be re-checked. */
  listGarbage(touchedBefore: Date, limit: number): Promise<BlobRecord[]>;
  /**
   * Re-checks, under a lock that excludes touch() of the same digest, that the blob is still
   * unreferenced and untouched since `touchedBefore`; if so runs `removeBytes` and deletes the row,
   * all before releasing the lock. Returns whether it deleted. If removeBytes throws, the row stays.
   */
  deleteIfGarbage(digest: string, touchedBefore: Date, removeBytes: () => Promise<void>): Promise<boolean>;
}
