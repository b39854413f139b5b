import { setTimeout as delay } from 'node:timers/promises';
import type { CreateTableBuilder, Generated, IsolationLevel, Kysely, Transaction } from 'kysely';
import type { AuditEntry, ChecksumAlgorithm, KeyRecord, SupplyChainRecord, VerificationRecord } from './types.ts';

/**
 * The MetaStore schema as Kysely sees it. Portable between SQLite and PostgreSQL:
 * - timestamps are integer milliseconds since the epoch (`bigint` in PostgreSQL);
 * - sizes are 64-bit integers; the driver must hand them back as JS numbers
 *   (better-sqlite3 does; postgres.ts gives its pool an int8 parser);
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
  sc_records: ScRecordsTable;
  sc_components: ScComponentsTable;
  sc_facts: ScFactsTable;
  sc_keys: ScKeysTable;
  sc_trust_policies: ScTrustPoliciesTable;
  sc_verifications: ScVerificationsTable;
  sc_state: ScStateTable;
  leases: LeasesTable;
}

/** A named lease (LeaseMeta): who holds it and until when (ms since the epoch). */
export interface LeasesTable {
  name: string;
  holder: string;
  expires_at: number;
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

/** A signature, SBOM or attestation (SupplyChainRecord); its document is the blob `content_digest`. */
export interface ScRecordsTable {
  id: string;
  subject: string;
  kind: SupplyChainRecord['kind'];
  format: string;
  media_type: string;
  content_digest: string;
  size: number;
  bucket: string | null;
  object_key: string | null;
  repository: string | null;
  source_manifest: string | null;
  /**
   * -1 when the record names no layer. Not null, so that UNIQUE(repository, source_manifest,
   * source_layer) (where NULLs are distinct in both dialects) makes a registry record idempotent even
   * without a layer index; records with no source manifest stay distinct through its NULL.
   */
  source_layer: number;
  predicate_type: string | null;
  key_hint: string | null;
  created_by: string;
  created_at: number;
}

/**
 * One SBOM component of a record. Written once with the record and deleted with it, so the record's
 * subject, bucket, key and repository are copied here: a component query reads one table.
 */
export interface ScComponentsTable {
  /** Assigned on insert; orders components of the same version, and pages them. */
  id: Generated<number>;
  record_id: string;
  subject: string;
  name: string;
  version: string | null;
  /** core/supplychain/versions.ts versionKey of the version (the purl's when the row has none); '' when unknown. */
  version_key: string;
  purl: string | null;
  /** The purl without version, qualifiers and subpath (supplychain-records.ts purlBase). */
  purl_base: string | null;
  /** JSON string array. */
  licenses: string;
  /** JSON array of { algorithm, value }. */
  hashes: string;
  bucket: string | null;
  object_key: string | null;
  repository: string | null;
}

/** The facts of an attestation record (at most one row per record). */
export interface ScFactsTable {
  record_id: string;
  subject: string;
  predicate_type: string;
  builder_id: string | null;
  build_type: string | null;
  /** JSON array of { uri?, digest? }. */
  materials: string;
}

export interface ScKeysTable {
  /** `<name>/<version>`. */
  id: string;
  name: string;
  version: number;
  kind: KeyRecord['kind'];
  algorithm: string;
  public_pem: string;
  fingerprint: string;
  provider_ref: string | null;
  created_by: string;
  created_at: number;
  expires_at: number | null;
  retired_at: number | null;
  revoked_at: number | null;
}

export interface ScTrustPoliciesTable {
  name: string;
  /** JSON of the trust policy document. */
  document: string;
  created_at: number;
  updated_at: number;
}

/** The latest result of evaluating one trust policy for one subject. */
export interface ScVerificationsTable {
  subject: string;
  policy: string;
  status: VerificationRecord['status'];
  reason: string;
  verified_by: string | null;
  evaluated_at: number;
  generation: number;
}

/** One row, id 1: `generation` counts changes to records, keys and trust policies (SupplyChainMeta.generation). */
export interface ScStateTable {
  id: number;
  generation: number;
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
 * What differs between dialects, kept to the schema. Query semantics differ in three places only,
 * and those live in the dialect's Kysely setup, not here: how a write transaction begins and ends
 * (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ COMMITTED under a WritePolicy, see inWriteTransaction),
 * whether row-lock clauses are sent (SQLite drops them) and how integers come back.
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
 * Runs `work` in a transaction that changes rows, so that concurrent writers behave as if they ran
 * one at a time, as the contracts in types.ts and each method's comment assume.
 *
 * SQLite (no write policy): one transaction, as Kysely runs it. SQLite takes the database write lock
 * at BEGIN (IMMEDIATE), so writers are serialised and a transaction never fails half-way on a lock
 * upgrade.
 *
 * PostgreSQL (postgres.ts sets a WritePolicy): READ COMMITTED, the row locks the statements take, and
 * a bounded retry of the whole transaction, rather than SERIALIZABLE. The reasons:
 * - the hot rows every change of a kind updates (identity_state, sc_state: one generation counter
 *   each) and the rows many writers upsert (blobs shared by objects and layers) would make SERIALIZABLE
 *   fail all but one of N concurrent writers per round; under READ COMMITTED the UPDATE waits for the
 *   row lock and re-reads the row, so each writer adds one, no retry;
 * - SERIALIZABLE may fail a transaction at COMMIT, after `work` returned; deleteIfGarbage's
 *   removeBytes has then already run. READ COMMITTED fails only in a statement, before it.
 * The invariants are held, per method, by: the row lock a conditional DELETE or UPDATE takes and its
 * WHERE re-checked on the latest row version (deleteIfGarbage, touch, revokeAccessKey); `.forUpdate()`
 * / `.forKeyShare()` on the row a later statement depends on (an object being replaced, which is
 * updated in place so that waiters find the new version; an upload being completed; a bucket being
 * deleted; a link a manifest names), with a garbage collector re-checking its conditions in a
 * statement after it holds the lock (expireLinks, deleteUntaggedManifests); and the constraints. Where
 * two writers insert the same new key (unique violation), insert a row whose parent another writer
 * just deleted or delete a parent another writer just referenced (foreign-key violation), or deadlock,
 * the loser fails with an error the policy calls retryable: the transaction is rolled back and run
 * again from the start, seeing the winner's commit. SQLite drops the row-lock clauses (sqlite.ts
 * WithoutRowLocks): it has no syntax for them and no need of them.
 *
 * So `work` may run more than once: it must have no effect outside the database, except as its last
 * step (deleteIfGarbage's removeBytes, which a re-run repeats harmlessly).
 */
export async function inWriteTransaction<T>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  const policy = writePolicies.get(db);
  const result = policy ? await withRetries(db, policy, work) : await db.transaction().execute(work);
  await durabilityBarriers.get(db)?.();
  return result;
}

/** How a dialect with concurrent writers runs inWriteTransaction (see there). */
export interface WritePolicy {
  /** Set explicitly, so the server's default_transaction_isolation does not matter. */
  readonly isolationLevel: IsolationLevel;
  /** Runs of `work`, the first included, before the last error is thrown to the caller. */
  readonly maxAttempts: number;
  /** Whether the transaction failed because of a concurrent one, so that running it again may succeed. */
  retryable(err: unknown): boolean;
}

const writePolicies = new WeakMap<Kysely<Database>, WritePolicy>();

export function setWritePolicy(db: Kysely<Database>, policy: WritePolicy): void {
  writePolicies.set(db, policy);
}

async function withRetries<T>(db: Kysely<Database>, policy: WritePolicy, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().setIsolationLevel(policy.isolationLevel).execute(work);
    } catch (err) {
      if (attempt >= policy.maxAttempts || !policy.retryable(err)) throw err;
      // The winner has committed by the time the loser sees the error; the jitter only keeps writers
      // that deadlocked, or lost together, from meeting again in the same order.
      await delay(Math.random() * Math.min(2 ** attempt, 50));
    }
  }
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
