/**
 * The MetaStore is the source of truth for everything but the bytes: buckets, objects and the blobs
 * they point at, multipart uploads and their parts. Each method is one transaction: readers see the
 * state before or after it, never a mix. Strings compare as UTF-8 bytes (S3 key order).
 *
 * Every dialect (SQLite, PostgreSQL) passes the conformance suite in ./conformance.ts.
 */
export interface MetaStore {
  readonly dialect: string;
  readonly buckets: BucketMeta;
  readonly objects: ObjectMeta;
  readonly uploads: UploadMeta;
  readonly blobs: BlobMeta;
  readonly registry: RegistryMeta;
  readonly identity: IdentityMeta;
  readonly audit: AuditMeta;
  readonly supplychain: SupplyChainMeta;
  readonly leases: LeaseMeta;
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
  /**
   * Records the sha256 of a multipart object's whole content, computed later, if the object at
   * (bucket, key) still has `etag` and no digest; false otherwise (replaced meanwhile, or known).
   */
  setDigest(bucket: string, key: string, etag: string, digest: string): Promise<boolean>;
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
 * object segment, upload part, repository link, registry upload chunk or supply-chain record names it
 * and it was not touched within the grace period.
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
  /** Where a stored blob is referenced, each list at most `limit` long. */
  references(digest: string, limit: number): Promise<BlobReferences>;
}

export interface BlobReferences {
  objects: { bucket: string; key: string }[];
  multipartParts: { bucket: string; key: string; uploadId: string; partNumber: number }[];
  layers: { repository: string; digest: string }[];
  registryUploads: { repository: string; uploadId: string }[];
  /** Supply-chain records whose document (contentDigest) is the blob, by id. */
  records: { id: string; subject: string }[];
}

// ---------------------------------------------------------------- registry (OCI)

/**
 * A blob as a repository knows it. `digest` is the name clients use (sha256 or sha512); `blob` the
 * stored blob (always sha256 of the same bytes), so both protocols share one copy. A link keeps its
 * blob alive; the garbage collector removes links that no manifest of the repository names once
 * they are older than the grace period (a pushed layer waits that long for its manifest).
 */
export interface LayerRecord {
  repository: string;
  digest: string;
  blob: string;
  size: number;
  touchedAt: Date;
}

export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  artifactType?: string;
  /** Digest of the manifest this one refers to (OCI `subject`). */
  subject?: string;
  annotations?: Record<string, string>;
  size: number;
  /** The exact bytes pushed: a manifest's digest is over them. */
  content: Buffer;
  createdAt: Date;
  /** Blob digests (config, layers) it references; each must be linked in the repository. */
  blobs: string[];
  /** Manifest digests (index entries) it references; each must exist in the repository. */
  manifests: string[];
}

/** A manifest as a listing (referrers) shows it. */
export type ManifestSummary = Omit<ManifestRecord, 'content' | 'blobs' | 'manifests'>;

export interface RegistryUploadRecord {
  uploadId: string;
  repository: string;
  createdAt: Date;
  updatedAt: Date;
  /** Bytes received so far: the sum of the chunks. */
  size: number;
  /** Each PATCH (or PUT body) is stored as a blob, in order. */
  chunks: { digest: string; size: number }[];
}

export interface RegistryMeta {
  /** Repository names in byte order after `after`, at most `limit`. */
  listRepositories(after: string | undefined, limit: number): Promise<string[]>;
  repositoryExists(name: string): Promise<boolean>;

  /** Creates the repository if needed, upserts the link and refreshes the blob's and link's touched_at. */
  linkBlob(link: Omit<LayerRecord, 'touchedAt'>): Promise<void>;
  /**
   * Links in `repository` the blob the `source` link names, if that link still exists (checked in the
   * same transaction, so the blob cannot be collected in between); null otherwise.
   */
  mountLayer(source: { repository: string; digest: string }, repository: string): Promise<LayerRecord | null>;
  getLayer(repository: string, digest: string): Promise<LayerRecord | null>;
  /** Any repository's link of `digest`, for a mount the client did not name a source for. */
  findLayer(digest: string, repositories?: readonly string[]): Promise<LayerRecord | null>;
  /**
   * Refreshes the link's touched_at (a client that saw the blob exists will reference it soon);
   * false when the link is gone (the garbage collector may have just removed it).
   */
  touchLayer(repository: string, digest: string): Promise<boolean>;
  unlinkBlob(repository: string, digest: string): Promise<boolean>;

  /**
   * Atomically: checks every referenced blob is linked and every referenced manifest exists in the
   * repository (else AstoreError('ManifestBlobUnknown') naming the first missing digest), creates the
   * repository if needed, stores the manifest (same digest: same bytes, kept) and points `tags` at it.
   */
  putManifest(manifest: ManifestRecord, tags?: readonly string[]): Promise<void>;
  getManifest(repository: string, reference: { digest: string } | { tag: string }): Promise<ManifestRecord | null>;
  /** Removes the manifest, every tag pointing at it and its references; false when absent. */
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /** Tags in byte order after `after`, at most `limit`; null when the repository does not exist. */
  listTags(repository: string, after: string | undefined, limit: number): Promise<string[] | null>;
  /** Digests of the indexes in the repository that list `digest` (a platform manifest's parents). */
  listParents(repository: string, digest: string, limit: number): Promise<string[]>;
  /** Manifests whose subject is `subject`, optionally only of one artifactType, oldest first. */
  listReferrers(repository: string, subject: string, artifactType?: string): Promise<ManifestSummary[]>;

  createUpload(upload: { uploadId: string; repository: string; createdAt: Date }): Promise<void>;
  getUpload(uploadId: string): Promise<RegistryUploadRecord | null>;
  /**
   * Appends a chunk if the upload's size is still `offset` (else AstoreError('RangeNotSatisfiable')),
   * refreshing the blob's touched_at. Throws AstoreError('BlobUploadUnknown') when the upload is gone.
   */
  appendChunk(uploadId: string, offset: number, chunk: { digest: string; size: number }): Promise<RegistryUploadRecord>;
  /**
   * Atomically removes the upload and links its result; BlobUploadUnknown when it is gone, and
   * RangeNotSatisfiable when `expectedSize` is given and a chunk was appended meanwhile.
   */
  completeUpload(uploadId: string, link: Omit<LayerRecord, 'touchedAt'>, expectedSize?: number): Promise<void>;
  deleteUpload(uploadId: string): Promise<boolean>;
  /** Uploads untouched since `before`, for expiry by the garbage collector. */
  listUploadsUpdatedBefore(before: Date, limit: number): Promise<{ uploadId: string }[]>;

  /**
   * Garbage collection of the registry's own rows, each batch one transaction and re-checked in it:
   * links older than `before` that no manifest of the repository references; returns how many went.
   */
  expireLinks(before: Date, limit: number): Promise<number>;
  /**
   * Manifests created before `before` that no tag points at, no other manifest of the repository
   * references, and whose subject (if any) is gone from the repository; returns how many went.
   */
  deleteUntaggedManifests(before: Date, limit: number): Promise<number>;
}

// ---------------------------------------------------------------- identity (principals and policies)

export interface UserRecord {
  name: string;
  /** PHC string of a memory-hard hash (argon2id); absent for users who sign in only through OIDC. */
  passwordHash?: string;
  displayName?: string;
  email?: string;
  disabled: boolean;
  createdAt: Date;
  /** Group names, sorted (filled on read; ignored on create). */
  groups: string[];
}

export interface GroupRecord {
  name: string;
  description?: string;
  createdAt: Date;
  /** Member user names, sorted (filled on read). */
  members: string[];
}

export interface AccessKeyRecord {
  accessKeyId: string;
  /** The user the key belongs to. */
  user: string;
  /** The secret, encrypted with the server key (SigV4 needs the secret itself, so it is not hashed). */
  secretCiphertext: string;
  description?: string;
  createdAt: Date;
  expiresAt?: Date;
  revokedAt?: Date;
}

export interface PolicyRecord {
  name: string;
  /** JSON of the policy document (core/policy/types.ts PolicyDocument). */
  document: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Page<T> {
  items: T[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/**
 * Users, groups, access keys and policies. Every method that changes something takes an optional
 * audit entry, written in the same transaction as the change (so the log never misses a change and
 * never records one that rolled back).
 */
export interface IdentityMeta {
  /** False (nothing changed) when the name is taken. */
  createUser(user: Omit<UserRecord, 'groups'>, audit?: AuditEntry): Promise<boolean>;
  getUser(name: string): Promise<UserRecord | null>;
  listUsers(after: string | undefined, limit: number): Promise<Page<UserRecord>>;
  /** Null when there is no such user. */
  updateUser(name: string, patch: Partial<Pick<UserRecord, 'passwordHash' | 'displayName' | 'email' | 'disabled'>>, audit?: AuditEntry): Promise<UserRecord | null>;
  /** Removes the user, its access keys and group memberships; false when absent. */
  deleteUser(name: string, audit?: AuditEntry): Promise<boolean>;

  createGroup(group: Omit<GroupRecord, 'members'>, audit?: AuditEntry): Promise<boolean>;
  getGroup(name: string): Promise<GroupRecord | null>;
  listGroups(after: string | undefined, limit: number): Promise<Page<GroupRecord>>;
  deleteGroup(name: string, audit?: AuditEntry): Promise<boolean>;
  /** Throws AstoreError('NoSuchEntity') when the user or the group is missing. Idempotent. */
  addMember(group: string, user: string, audit?: AuditEntry): Promise<void>;
  removeMember(group: string, user: string, audit?: AuditEntry): Promise<boolean>;

  /** Throws AstoreError('NoSuchEntity') when the user is missing. */
  createAccessKey(key: AccessKeyRecord, audit?: AuditEntry): Promise<void>;
  getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | null>;
  /** Keys of one user (or all), ordered by creation. */
  listAccessKeys(user?: string): Promise<AccessKeyRecord[]>;
  revokeAccessKey(accessKeyId: string, at: Date, audit?: AuditEntry): Promise<boolean>;
  deleteAccessKey(accessKeyId: string, audit?: AuditEntry): Promise<boolean>;

  /** Inserts or replaces; returns whether it was created. */
  putPolicy(policy: PolicyRecord, audit?: AuditEntry): Promise<'created' | 'updated'>;
  getPolicy(name: string): Promise<PolicyRecord | null>;
  listPolicies(): Promise<PolicyRecord[]>;
  deletePolicy(name: string, audit?: AuditEntry): Promise<boolean>;
  /**
   * A counter bumped by every change to users, groups, keys or policies, so a process can cache the
   * compiled policy set and principals and notice changes made by another replica.
   */
  generation(): Promise<number>;
}

// ---------------------------------------------------------------- audit log

export interface AuditEntry {
  /** Assigned on append; increasing. */
  id?: number;
  at: Date;
  /** `user:<name>`, `root`, `anonymous`, `role:<name>`, with the access key when one was used. */
  principal: string;
  accessKeyId?: string;
  /** The action decided or performed, e.g. `s3:PutObject`, `admin:CreateUser`. */
  action: string;
  resource: string;
  /** Decisions: allowed / denied; changes: success / failure. */
  outcome: 'allowed' | 'denied' | 'success' | 'failure';
  sourceIp?: string;
  requestId?: string;
  /** Extra facts (the matched statement, an error code); never secrets or tokens. */
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  principal?: string;
  /** Exact action, or a prefix ending in `*` (`s3:*`). */
  action?: string;
  /** Resource prefix. */
  resource?: string;
  outcome?: AuditEntry['outcome'];
  from?: Date;
  to?: Date;
  /** Entries with a greater id (paging forward). */
  afterId?: number;
  limit: number;
}

export interface AuditMeta {
  append(entries: readonly AuditEntry[]): Promise<void>;
  /** Matching entries in id order. */
  query(query: AuditQuery): Promise<AuditEntry[]>;
}

// ---------------------------------------------------------------- supply chain

/**
 * A signature, SBOM or attestation attached to a subject digest. Its document is a stored blob
 * (`contentDigest`, kept alive by this row like an object segment). Where the subject is an S3 object
 * the record also names it (bucket, key); where it came from an OCI referrer (or a cosign
 * `sha256-<hex>.sig/.att` tag) it names the repository and the manifest it was read from.
 */
export interface SupplyChainRecord {
  /** Assigned by the caller (a random UUID). */
  id: string;
  subject: string;
  kind: 'signature' | 'sbom' | 'attestation';
  /** core/supplychain/types.ts RecordFormat. */
  format: string;
  mediaType: string;
  contentDigest: string;
  size: number;
  bucket?: string;
  key?: string;
  repository?: string;
  /** For records read from the registry: the manifest digest (and layer index) they came from. */
  sourceManifest?: string;
  sourceLayer?: number;
  /** Attestations: the predicate type; signatures: the key hint; both optional. */
  predicateType?: string;
  keyHint?: string;
  createdBy: string;
  createdAt: Date;
}

export interface ComponentRow {
  name: string;
  version?: string;
  purl?: string;
  licenses: string[];
  hashes: { algorithm: string; value: string }[];
}

export interface AttestationFactsRow {
  predicateType: string;
  builderId?: string;
  buildType?: string;
  materials: { uri?: string; digest?: Record<string, string> }[];
}

export interface RecordQuery {
  subject?: string;
  bucket?: string;
  key?: string;
  repository?: string;
  kind?: SupplyChainRecord['kind'];
  /** The `next` of the previous page: an opaque cursor, records after it in (createdAt, id) order. */
  after?: string;
  limit: number;
}

/**
 * Which stored artifacts contain a package; at least one of `purl` and `name` (both must match when
 * both are given). A `purl` with a version and no bounds matches that version (compared by versionKey,
 * so `@2.14.1` also finds `@v2.14.1` and `@2.14.1?type=jar`; qualifiers or a subpath in the query
 * must then match exactly); without a version, or with bounds, it matches the package in every
 * version within the bounds (pkg:maven/org.apache.logging.log4j/log4j-core matches every version).
 * `name` matches the component name exactly. Bounds compare versions numerically segment by segment
 * (core/supplychain/versions.ts versionKey): 2.9 < 2.14.1 < 2.15.0-rc1 < 2.15.0; components of
 * unknown version match no bounded query. Results are ordered by version, then by insertion.
 */
export interface ComponentQuery {
  purl?: string;
  name?: string;
  versionMin?: { version: string; inclusive: boolean };
  versionMax?: { version: string; inclusive: boolean };
  /** Only artifacts in this bucket (exact) / in repositories starting with this prefix. */
  bucket?: string;
  repository?: string;
  /** The `next` of the previous page: an opaque cursor. */
  after?: string;
  limit: number;
}

/** One SBOM component row that matched, with the artifact its SBOM is attached to. */
export interface ComponentMatch {
  subject: string;
  recordId: string;
  name: string;
  version?: string;
  purl?: string;
  licenses: string[];
  bucket?: string;
  key?: string;
  repository?: string;
}

/**
 * Artifacts (S3 objects or OCI manifests in scope) that have no attestation matching the facts, by
 * subject digest wherever the attestation was attached. Objects without a whole-object digest
 * (multipart) are skipped; manifests count only when they are not referrers (no OCI subject) and no
 * supply-chain record was read from them (storage/meta/supplychain-queries.ts findLacking).
 */
export interface LackingQuery {
  predicateType: string;
  builderId?: string;
  /** Exactly one of: objects in this bucket (key prefix optional), manifests in repositories with this prefix. */
  bucket?: string;
  keyPrefix?: string;
  repositoryPrefix?: string;
  /** The `next` of the previous page: an opaque cursor. */
  after?: string;
  limit: number;
}

export interface ArtifactRef {
  subject: string;
  bucket?: string;
  key?: string;
  repository?: string;
}

/**
 * Key material the server signs with (kind 'signing', private part held by a KeyProvider under
 * `providerRef`) or only verifies with (kind 'public': an imported public key; kind 'certificate': a
 * trusted root or intermediate CA certificate, for notation). Versions of a key share its `name`; a
 * rotation retires the current version (it still verifies) and adds the next.
 */
export interface KeyRecord {
  /** `<name>/<version>`, e.g. `release/2`. */
  id: string;
  name: string;
  version: number;
  kind: 'signing' | 'public' | 'certificate';
  /** core/supplychain/types.ts KeyAlgorithm, or 'x509' for certificates. */
  algorithm: string;
  /** SPKI PEM (for certificates: the certificate PEM). */
  publicPem: string;
  /** hex sha256 of the SPKI DER: what verification results name. */
  fingerprint: string;
  providerRef?: string;
  createdBy: string;
  createdAt: Date;
  expiresAt?: Date;
  retiredAt?: Date;
  revokedAt?: Date;
}

export interface TrustPolicyRecord {
  name: string;
  /** JSON of the trust policy document (core/supplychain/trust-policy.ts). */
  document: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface VerificationRecord {
  subject: string;
  /** The trust policy evaluated. */
  policy: string;
  status: 'verified' | 'failed' | 'missing';
  reason: string;
  /** Key id (or certificate subject) that verified, when verified. */
  verifiedBy?: string;
  evaluatedAt: Date;
  /** The supply-chain generation it was evaluated at (stale once keys, policies or records change). */
  generation: number;
}

/**
 * Records, their indexed SBOM components and attestation facts, signing/trusted keys, trust
 * policies and stored verification results. Changes are audited (change-audit.ts) in their own
 * transaction; every change to keys, trust policies or records bumps `generation()`, so stored
 * verification results older than it are re-evaluated.
 */
export interface SupplyChainMeta {
  /**
   * Inserts the record with its components / facts in one transaction and upserts its content blob's
   * row (refreshing touched_at), as ObjectMeta.put does for segments. 'exists' (nothing changed) when
   * the id is taken, or for a registry record when one with the same (repository, sourceManifest,
   * sourceLayer) is there. AstoreError('InvalidArgument') when sourceLayer is not an index (>= 0).
   */
  putRecord(record: SupplyChainRecord, extra?: { components?: ComponentRow[]; facts?: AttestationFactsRow }): Promise<'created' | 'exists'>;
  getRecord(id: string): Promise<SupplyChainRecord | null>;
  listRecords(query: RecordQuery): Promise<Page<SupplyChainRecord>>;
  deleteRecord(id: string): Promise<boolean>;
  /** Removes the records read from a registry manifest (when the manifest is deleted); how many. */
  deleteRecordsFromManifest(repository: string, manifest: string): Promise<number>;

  /** AstoreError('InvalidArgument') without purl and name, or with a cursor it did not make. */
  findComponents(query: ComponentQuery): Promise<Page<ComponentMatch>>;
  /** Facts of a subject's attestations, with their record ids. */
  listFacts(subject: string): Promise<(AttestationFactsRow & { recordId: string })[]>;
  /** AstoreError('InvalidArgument') unless exactly one scope is named, or with a bad cursor. */
  findLacking(query: LackingQuery): Promise<Page<ArtifactRef>>;

  /** False when the id is taken. */
  createKey(key: KeyRecord): Promise<boolean>;
  getKey(id: string): Promise<KeyRecord | null>;
  /** All versions of one key name (or all keys), ordered by name then version. */
  listKeys(name?: string): Promise<KeyRecord[]>;
  /** Sets retiredAt / revokedAt / expiresAt; null when absent. */
  updateKey(id: string, patch: Partial<Pick<KeyRecord, 'retiredAt' | 'revokedAt' | 'expiresAt'>>): Promise<KeyRecord | null>;

  putTrustPolicy(policy: TrustPolicyRecord): Promise<'created' | 'updated'>;
  getTrustPolicy(name: string): Promise<TrustPolicyRecord | null>;
  listTrustPolicies(): Promise<TrustPolicyRecord[]>;
  deleteTrustPolicy(name: string): Promise<boolean>;

  putVerification(result: VerificationRecord): Promise<void>;
  getVerification(subject: string, policy: string): Promise<VerificationRecord | null>;
  /** Stored results, newest first, for a subject. */
  listVerifications(subject: string): Promise<VerificationRecord[]>;

  generation(): Promise<number>;
}

// ---------------------------------------------------------------- leases

/** Who holds a lease, and until when (on the clock of the replica that last took or renewed it). */
export interface LeaseRecord {
  name: string;
  holder: string;
  expiresAt: Date;
}

/**
 * Named leases, so that among replicas sharing the store one at a time does a job (the garbage
 * collector's `gc`). A lease is held by one holder id until it expires or is released; a holder that
 * wants to keep it renews it (acquires it again) well before it expires. Expiry is measured on the
 * callers' clocks, as every other timestamp in the store is: replicas' clocks must agree to well within
 * the TTL. A lease is advisory: it saves duplicated work, and what it guards must stay correct without it.
 */
export interface LeaseMeta {
  /**
   * Takes the lease for `ttlMs` from now when it is free, expired, or already `holder`'s (then renewed:
   * its expiry moves to now + ttlMs); false, changing nothing, while another holder's lease runs.
   * Atomic: of concurrent callers (on any replica) for a lease that is free or expired, exactly one
   * gets true. RangeError unless ttlMs is a positive integer.
   */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Frees the lease if `holder` holds it (expired or not); false, changing nothing, otherwise. */
  release(name: string, holder: string): Promise<boolean>;
  /** The lease while it runs; null when it is free or expired. */
  get(name: string): Promise<LeaseRecord | null>;
}
