import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type ErrorCode, isAstoreError } from '../../../core/errors.ts';
import type { BucketRecord, LayerRecord, ManifestRecord, ManifestSummary, MetaStore, ObjectRecord, ObjectSummary, PartRecord, UploadRecord } from '../types.ts';

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
