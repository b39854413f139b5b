import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type ErrorCode, isAstoreError } from '../../../core/errors.ts';
import type {
  AccessKeyRecord,
  AuditEntry,
  BucketRecord,
  GroupRecord,
  IdentityMeta,
  LayerRecord,
  ManifestRecord,
  ManifestSummary,
  MetaStore,
  ObjectRecord,
  ObjectSummary,
  PartRecord,
  PolicyRecord,
  UploadRecord,
  UserRecord,
} from '../types.ts';

/** Records and helpers shared by the conformance tests; all timestamps are whole milliseconds. */
export const T0 = Date.UTC(2024, 1, 29, 12, 34, 56, 789);

export function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

export function bucketRecord(name: string, region = 'us-east-1'): BucketRecord {
  return { name, region, createdAt: new Date(T0) };
}

export function objectRecord(bucket: string, key: string, overrides: Partial<ObjectRecord> = {}): ObjectRecord {
  return {
    bucket,
    key,
    size: 3,
    etag: `"${createHash('md5').update(key).digest('hex')}"`,
    lastModified: new Date(T0),
    headers: {},
    userMetadata: {},
    segments: [{ digest: digestOf(`${bucket}/${key}`), size: 3 }],
    ...overrides,
  };
}

/** The record a listing returns for `object`. */
export function summaryOf(object: ObjectRecord): ObjectSummary {
  const { segments: _segments, headers: _headers, userMetadata: _userMetadata, ...summary } = object;
  return summary;
}

export function uploadRecord(uploadId: string, bucket: string, key: string, initiatedMs = T0): UploadRecord {
  return { uploadId, bucket, key, initiated: new Date(initiatedMs), headers: {}, userMetadata: {} };
}

export function partRecord(uploadId: string, partNumber: number, label = `${uploadId}#${partNumber}`): PartRecord {
  return {
    uploadId,
    partNumber,
    digest: digestOf(label),
    size: 5 * 1024 * 1024,
    etag: `"${createHash('md5').update(label).digest('hex')}"`,
    lastModified: new Date(T0 + partNumber),
  };
}

/** S3 order: keys compare as UTF-8 bytes (not as JavaScript's UTF-16 code units). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Asserts `promise` rejects with AstoreError(code) whose detail includes `detail`, when given. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, detail?: Record<string, string | number>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected AstoreError(${code}), got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const [name, value] of Object.entries(detail ?? {})) assert.equal(err.detail[name], value, `detail.${name}`);
    return true;
  });
}

export type StoreRef = () => MetaStore;

// ---------------------------------------------------------------- registry

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export function sha512Of(label: string): string {
  return `sha512:${createHash('sha512').update(label).digest('hex')}`;
}

/** A repository's link of a layer whose client-facing digest is the stored blob's (sha256). */
export function layerLink(repository: string, label: string, size = 3): Omit<LayerRecord, 'touchedAt'> {
  const digest = digestOf(label);
  return { repository, digest, blob: digest, size };
}

/**
 * A manifest whose bytes name `label` (not valid OCI JSON: the store keeps bytes, it does not parse
 * them); its digest is the sha256 of those bytes.
 */
export function manifestRecord(repository: string, label: string, fields: Partial<Omit<ManifestRecord, 'repository' | 'digest' | 'size' | 'content'>> = {}): ManifestRecord {
  const content = Buffer.from(`{"label":${JSON.stringify(label)}}`);
  return {
    repository,
    digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
    mediaType: OCI_MANIFEST,
    size: content.length,
    content,
    createdAt: new Date(T0),
    blobs: [],
    manifests: [],
    ...fields,
  };
}

/** The references of a manifest are a set: the store need not keep their order. */
export function sortedRefs(manifest: ManifestRecord | null): ManifestRecord | null {
  return manifest && { ...manifest, blobs: [...manifest.blobs].sort(), manifests: [...manifest.manifests].sort() };
}

/** What listReferrers returns for `manifest`. */
export function manifestSummaryOf(manifest: ManifestRecord): ManifestSummary {
  const { content: _content, blobs: _blobs, manifests: _manifests, ...summary } = manifest;
  return summary;
}

// ---------------------------------------------------------------- identity and audit

export function userRecord(name: string, fields: Partial<Omit<UserRecord, 'name' | 'groups'>> = {}): Omit<UserRecord, 'groups'> {
  return { name, disabled: false, createdAt: new Date(T0), ...fields };
}

export function groupRecord(name: string, fields: Partial<Omit<GroupRecord, 'name' | 'members'>> = {}): Omit<GroupRecord, 'members'> {
  return { name, createdAt: new Date(T0), ...fields };
}

export function accessKeyRecord(accessKeyId: string, user: string, fields: Partial<Omit<AccessKeyRecord, 'accessKeyId' | 'user'>> = {}): AccessKeyRecord {
  return { accessKeyId, user, secretCiphertext: `v1.sealed.${accessKeyId}`, createdAt: new Date(T0), ...fields };
}

export function policyRecord(name: string, fields: Partial<Omit<PolicyRecord, 'name'>> = {}): PolicyRecord {
  return {
    name,
    document: JSON.stringify({ name, statements: [{ effect: 'allow', principals: ['*'], actions: ['s3:GetObject'], resources: ['s3:public/*'] }] }),
    createdAt: new Date(T0),
    updatedAt: new Date(T0),
    ...fields,
  };
}

export function auditEntry(action: string, resource: string, fields: Partial<Omit<AuditEntry, 'action' | 'resource'>> = {}): AuditEntry {
  return { at: new Date(T0), principal: 'root', action, resource, outcome: 'success', ...fields };
}

/** Every audit entry, oldest first. */
export async function allAuditEntries(store: MetaStore): Promise<AuditEntry[]> {
  return store.audit.query({ limit: 100_000 });
}

/** A call of an IdentityMeta method that changes something (or should, but must not). */
export interface IdentityStep {
  action: string;
  run: (identity: IdentityMeta, audit?: AuditEntry) => Promise<unknown>;
}

/** One call of every changing IdentityMeta method, in an order where each of them changes something. */
export const identityChanges: readonly IdentityStep[] = [
  { action: 'admin:CreateUser', run: (id, audit) => id.createUser(userRecord('u'), audit) },
  { action: 'admin:CreateGroup', run: (id, audit) => id.createGroup(groupRecord('g'), audit) },
  { action: 'admin:AddGroupMember', run: (id, audit) => id.addMember('g', 'u', audit) },
  { action: 'admin:UpdateUser', run: (id, audit) => id.updateUser('u', { email: 'u@example.com' }, audit) },
  { action: 'admin:CreateAccessKey', run: (id, audit) => id.createAccessKey(accessKeyRecord('AKU', 'u'), audit) },
  { action: 'admin:RevokeAccessKey', run: (id, audit) => id.revokeAccessKey('AKU', new Date(T0 + 1), audit) },
  { action: 'admin:DeleteAccessKey', run: (id, audit) => id.deleteAccessKey('AKU', audit) },
  { action: 'admin:PutPolicy', run: (id, audit) => id.putPolicy(policyRecord('p'), audit) },
  { action: 'admin:UpdatePolicy', run: (id, audit) => id.putPolicy(policyRecord('p', { updatedAt: new Date(T0 + 1) }), audit) },
  { action: 'admin:DeletePolicy', run: (id, audit) => id.deletePolicy('p', audit) },
  { action: 'admin:RemoveGroupMember', run: (id, audit) => id.removeMember('g', 'u', audit) },
  { action: 'admin:DeleteGroup', run: (id, audit) => id.deleteGroup('g', audit) },
  { action: 'admin:DeleteUser', run: (id, audit) => id.deleteUser('u', audit) },
];

/** Creates user `u` in group `g` with key `AKU`: the state identityNonChanges run against. */
export async function identityNonChangesSetup(identity: IdentityMeta): Promise<void> {
  await identity.createUser(userRecord('u'));
  await identity.createGroup(groupRecord('g'));
  await identity.addMember('g', 'u');
  await identity.createAccessKey(accessKeyRecord('AKU', 'u'));
}

/** Calls that report no change (false, null) or throw, against identityNonChangesSetup's state. */
export const identityNonChanges: readonly IdentityStep[] = [
  { action: 'createUser taken', run: (id, audit) => id.createUser(userRecord('u', { email: 'x@example.com' }), audit) },
  { action: 'updateUser missing', run: (id, audit) => id.updateUser('nobody', { email: 'x@example.com' }, audit) },
  { action: 'deleteUser missing', run: (id, audit) => id.deleteUser('nobody', audit) },
  { action: 'createGroup taken', run: (id, audit) => id.createGroup(groupRecord('g'), audit) },
  { action: 'deleteGroup missing', run: (id, audit) => id.deleteGroup('nogroup', audit) },
  { action: 'addMember missing group', run: (id, audit) => id.addMember('nogroup', 'u', audit) },
  { action: 'addMember missing user', run: (id, audit) => id.addMember('g', 'nobody', audit) },
  { action: 'removeMember not a member', run: (id, audit) => id.removeMember('g', 'nobody', audit) },
  { action: 'createAccessKey missing user', run: (id, audit) => id.createAccessKey(accessKeyRecord('AKNEW', 'nobody'), audit) },
  { action: 'createAccessKey taken id', run: (id, audit) => id.createAccessKey(accessKeyRecord('AKU', 'u'), audit) },
  { action: 'revokeAccessKey missing', run: (id, audit) => id.revokeAccessKey('AKNONE', new Date(T0), audit) },
  { action: 'deleteAccessKey missing', run: (id, audit) => id.deleteAccessKey('AKNONE', audit) },
  { action: 'deletePolicy missing', run: (id, audit) => id.deletePolicy('nopolicy', audit) },
];

/** Every read of IdentityMeta, once. */
export async function readIdentity(identity: IdentityMeta): Promise<void> {
  await identity.getUser('u');
  await identity.listUsers(undefined, 10);
  await identity.getGroup('g');
  await identity.listGroups(undefined, 10);
  await identity.getAccessKey('AKU');
  await identity.listAccessKeys();
  await identity.listAccessKeys('u');
  await identity.getPolicy('p');
  await identity.listPolicies();
}
