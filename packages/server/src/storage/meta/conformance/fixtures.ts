import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isAstoreError } from '../../../core/errors.ts';
import type { BucketRecord, MetaStore, ObjectRecord, ObjectSummary, PartRecord, UploadRecord } from '../types.ts';

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

export async function rejectsWith(promise: Promise<unknown>, code: 'NoSuchBucket' | 'NoSuchUpload'): Promise<void> {
  await assert.rejects(promise, (err: unknown) => isAstoreError(err, code));
}

export type StoreRef = () => MetaStore;
