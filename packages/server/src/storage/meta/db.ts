import type { CreateTableBuilder, Generated, Kysely, Transaction } from 'kysely';
import type { AuditEntry, ChecksumAlgorithm } from './types.ts';

/**
 * The MetaStore schema as Kysely sees it. Portable between SQLite and PostgreSQL:
 * - timestamps are integer milliseconds since the epoch (`bigint` in PostgreSQL);
 * - sizes are 64-bit integers; the driver must hand them back as JS numbers
 *   (better-sqlite3 does; node-postgres needs `types.setTypeParser(20, Number)`);
 * - JSON documents are text, parsed in the store, so no dialect's JSON type is involved;
 * - keys compare as UTF-8 bytes (S3 order): SQLite's default BINARY collation does this on UTF-8
 *   text; PostgreSQL needs `COLLATE "C"` on those columns (DialectHooks.byteOrderText).
 */
export interface Database {
  buckets: BucketsTable;
  blobs: BlobsTable;
  objects: ObjectsTable;
  object_segments: ObjectSegmentsTable;
  multipart_uploads: MultipartUploadsTable;
  upload_parts: UploadPartsTable;
  repositories: RepositoriesTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_refs: ManifestRefsTable;
  tags: TagsTable;
  registry_uploads: RegistryUploadsTable;
  registry_upload_chunks: RegistryUploadChunksTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  access_keys: AccessKeysTable;
  policies: PoliciesTable;
  identity_state: IdentityStateTable;
  audit_log: AuditLogTable;
}

export interface UsersTable {
  name: string;
  /** PHC string (argon2id); null for users who sign in only through OIDC. */
  password_hash: string | null;
  display_name: string | null;
  email: string | null;
  /** 0 or 1. */
  disabled: number;
  created_at: number;
}

export interface GroupsTable {
  name: string;
  description: string | null;
  created_at: number;
}

export interface GroupMembersTable {
  group_name: string;
  user_name: string;
}

export interface AccessKeysTable {
  access_key_id: string;
  user_name: string;
  /** The secret sealed with the server key (core/identity/secrets.ts). */
  secret_ciphertext: string;
  description: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface PoliciesTable {
  name: string;
  /** JSON of the policy document. */
  document: string;
  created_at: number;
  updated_at: number;
}

/** One row, id 1: `generation` counts identity changes (IdentityMeta.generation). */
export interface IdentityStateTable {
  id: number;
  generation: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  principal: string;
  access_key_id: string | null;
  action: string;
  resource: string;
  outcome: AuditEntry['outcome'];
  source_ip: string | null;
  request_id: string | null;
  /** JSON of the detail map, or null. */
  detail: string | null;
}

export interface RepositoriesTable {
  name: string;
  created_at: number;
}

/** A repository's link of a client-facing digest to the stored (sha256) blob. */
export interface RepositoryBlobsTable {
  repository: string;
  digest: string;
  blob: string;
  size: number;
  touched_at: number;
}

export interface ManifestsTable {
  repository: string;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject: string | null;
  /** JSON of the annotations map, or null. */
  annotations: string | null;
  size: number;
  content: Buffer;
  created_at: number;
}

/** What a manifest references: 'blob' (config, layers) or 'manifest' (index entries), by digest. */
export interface ManifestRefsTable {
  repository: string;
  manifest: string;
  ref: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository: string;
  name: string;
  digest: string;
  updated_at: number;
}

export interface RegistryUploadsTable {
  upload_id: string;
  repository: string;
  created_at: number;
  updated_at: number;
  size: number;
}

export interface RegistryUploadChunksTable {
  upload_id: string;
  seq: number;
  digest: string;
  size: number;
}

export interface BucketsTable {
  name: string;
  region: string;
  created_at: number;
}

/** One row per blob in the BlobStore; the garbage collector's bookkeeping. */
export interface BlobsTable {
  digest: string;
  size: number;
  touched_at: number;
}

export interface ObjectsTable {
  /** Surrogate key, so segments do not repeat (bucket, key); UNIQUE(bucket, key) holds. */
  id: Generated<number>;
  bucket: string;
  key: string;
  size: number;
  etag: string;
  last_modified: number;
  /** JSON of ObjectHeaders. */
  headers: string;
  /** JSON of the x-amz-meta-* map. */
  user_metadata: string;
  checksum_algorithm: ChecksumAlgorithm | null;
  checksum_value: string | null;
  checksum_type: 'FULL_OBJECT' | 'COMPOSITE' | null;
  digest: string | null;
}

export interface ObjectSegmentsTable {
  object_id: number;
  /** Position of the segment in the object, from 0. */
  seq: number;
  digest: string;
  size: number;
  part_number: number | null;
  etag: string | null;
  checksum: string | null;
}

export interface MultipartUploadsTable {
  upload_id: string;
  bucket: string;
  key: string;
  initiated: number;
  headers: string;
  user_metadata: string;
  checksum_algorithm: ChecksumAlgorithm | null;
  checksum_type: 'FULL_OBJECT' | 'COMPOSITE' | null;
}

export interface UploadPartsTable {
  upload_id: string;
  part_number: number;
  digest: string;
  size: number;
  etag: string;
  checksum: string | null;
  last_modified: number;
}

/** A column type as `CreateTableBuilder.addColumn` takes it. */
export type ColumnType = Parameters<CreateTableBuilder<string, string>['addColumn']>[1];

/**
 * What differs between dialects, kept to the schema. Query semantics differ in two places only, and
 * those live in the dialect's Kysely driver, not here: how a transaction begins (SQLite: BEGIN
 * IMMEDIATE for writes; PostgreSQL: the isolation level asked for) and how integers come back.
 */
export interface DialectHooks {
  /** Reported as MetaStore.dialect. */
  readonly name: string;
  /**
   * Adds `id`, a 64-bit primary key the database assigns on insert.
   * SQLite: `integer primary key` (the rowid); PostgreSQL: `bigint generated by default as identity`.
   */
  addIdColumn<TB extends string, C extends string>(table: CreateTableBuilder<TB, C>): CreateTableBuilder<TB, C | 'id'>;
  /** Text that sorts and compares as UTF-8 bytes. SQLite: 'text' (BINARY); PostgreSQL: text COLLATE "C". */
  readonly byteOrderText: ColumnType;
  /** Binary data. SQLite: 'blob'; PostgreSQL: 'bytea'. */
  readonly bytes: ColumnType;
}

/**
 * Runs `work` in a transaction that changes rows. Concurrent writers are serialised by the driver:
 * SQLite takes the database write lock at BEGIN (IMMEDIATE), so a transaction never fails half-way
 * on a lock upgrade. A PostgreSQL dialect runs these at READ COMMITTED and relies on the row locks
 * the statements take (see each method's comment); where two writers may insert the same new key,
 * it must retry on unique violation (or run SERIALIZABLE and retry on 40001) — in this one place.
 */
export async function inWriteTransaction<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  const result = await db.transaction().execute(work);
  await durabilityBarriers.get(db)?.();
  return result;
}

/**
 * A dialect may acknowledge a commit before it is on stable storage and make it durable afterwards,
 * outside the connection, so that concurrent commits share one flush (group commit): SQLite commits
 * in WAL mode without syncing and then fdatasyncs the WAL once for every commit that finished
 * meanwhile. inWriteTransaction returns only after the barrier: what a caller acknowledges is durable.
 */
const durabilityBarriers = new WeakMap<Kysely<Database>, () => Promise<void>>();

export function setDurabilityBarrier(db: Kysely<Database>, barrier: () => Promise<void>): void {
  durabilityBarriers.set(db, barrier);
}

/** Runs `work`, made of several reads, against one consistent snapshot. */
export function inReadTransaction<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work);
}

const MAX_CODE_POINT = 0x10ffff;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The smallest string greater, in UTF-8 byte order, than every string that starts with `prefix`,
 * so that `key >= prefix AND key < bound` selects exactly the keys with that prefix (using the
 * index; LIKE would treat `%`/`_` as wildcards and may fold case). Null when there is no such bound
 * (empty prefix, or only U+10FFFF code points): then `key >= prefix` alone is exact.
 *
 * UTF-8 byte order is code point order, so the bound increments the last code point that can be
 * incremented and drops those after it. It works on code points, not UTF-16 units: the successor
 * of U+FFFF is U+10000 (a surrogate pair), of U+D7FF is U+E000 (surrogates have no UTF-8 form).
 */
export function prefixUpperBound(prefix: string): string | null {
  if (LONE_SURROGATE.test(prefix)) throw new RangeError('prefix is not well-formed Unicode (lone surrogate)');
  const codePoints = Array.from(prefix, (char) => char.codePointAt(0) as number);
  while (codePoints.length > 0) {
    const last = codePoints.pop() as number;
    if (last < MAX_CODE_POINT) {
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}

/** Splits rows into batches small enough for one INSERT (SQLite allows 32,766 bound parameters). */
export function* batches<T>(rows: readonly T[], size = 500): Generator<T[]> {
  for (let start = 0; start < rows.length; start += size) yield rows.slice(start, start + size);
}

/** Parses a JSON column this store wrote with JSON.stringify (which leaves out undefined fields). */
export function fromJson<T>(text: string): T {
  return JSON.parse(text) as T;
}
