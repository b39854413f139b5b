import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { MetaStore, ObjectChecksum, ObjectHeaders, ObjectRecord, PartRecord, Segment, UploadListQuery, UploadRecord } from '../storage/meta/types.ts';
import { combineCrc, compositeChecksum, isCombinableCrc, multipartEtag, type ChecksumAlgorithm, type ContentDigests } from './checksums.ts';
import type { ContentStore } from './content.ts';
import { AstoreError } from './errors.ts';
import { validateObjectKey } from './names.ts';
import type { ObjectService } from './objects.ts';
import type { Preconditions } from './conditions.ts';
import type { RangeSpec } from './ranges.ts';

export const maxPartNumber = 10_000;

export interface MultipartLimits {
  /** Every part but the last must be at least this big (S3: 5 MiB). */
  minPartBytes: number;
  maxPartBytes: number;
}

export interface UploadPartInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  body: Readable;
  checksumAlgorithms: ChecksumAlgorithm[];
  verify?: (digests: ContentDigests) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  checksum?: string;
}

/**
 * S3 multipart uploads. Each part is ingested as its own blob; completing an upload writes the object
 * row naming the parts' blobs in order, so no byte is copied. Upload state lives in the MetaStore, so
 * any replica can take the next part.
 */
export class MultipartService {
  constructor(
    private readonly meta: MetaStore,
    private readonly content: ContentStore,
    private readonly objects: ObjectService,
    private readonly limits: MultipartLimits,
  ) {}

  async create(input: {
    bucket: string;
    key: string;
    headers: ObjectHeaders;
    userMetadata: Record<string, string>;
    checksumAlgorithm?: ChecksumAlgorithm;
    checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
  }): Promise<UploadRecord> {
    validateObjectKey(input.key);
    if (input.checksumType === 'FULL_OBJECT' && input.checksumAlgorithm && !isCombinableCrc(input.checksumAlgorithm)) {
      throw new AstoreError('InvalidRequest', `The FULL_OBJECT checksum type is not supported for ${input.checksumAlgorithm}; use a CRC algorithm or COMPOSITE`);
    }
    await this.requireBucket(input.bucket);
    const upload: UploadRecord = {
      uploadId: newUploadId(),
      bucket: input.bucket,
      key: input.key,
      initiated: new Date(),
      headers: input.headers,
      userMetadata: input.userMetadata,
      checksumAlgorithm: input.checksumAlgorithm,
      checksumType: input.checksumAlgorithm ? (input.checksumType ?? 'COMPOSITE') : undefined,
    };
    await this.meta.uploads.create(upload);
    return upload;
  }

  /** Throws NoSuchUpload unless the upload exists for exactly this bucket and key. */
  async get(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    const upload = await this.meta.uploads.get(uploadId);
    if (!upload || upload.bucket !== bucket || upload.key !== key) {
      await this.requireBucket(bucket);
      throw new AstoreError('NoSuchUpload', undefined, { UploadId: uploadId });
    }
    return upload;
  }

  async uploadPart(input: UploadPartInput): Promise<{ part: PartRecord; upload: UploadRecord }> {
    validatePartNumber(input.partNumber);
    const upload = await this.get(input.bucket, input.key, input.uploadId);
    const algorithms = [...input.checksumAlgorithms];
    if (upload.checksumAlgorithm && !algorithms.includes(upload.checksumAlgorithm)) algorithms.push(upload.checksumAlgorithm);
    const digests = await this.content.ingest(input.body, {
      algorithms,
      verify: input.verify,
      maxBytes: this.limits.maxPartBytes,
      signal: input.signal,
    });
    return { part: await this.recordPart(upload, input.partNumber, digests), upload };
  }

  /** UploadPartCopy: the (range of the) source object becomes a new part blob. */
  async uploadPartCopy(input: {
    bucket: string;
    key: string;
    uploadId: string;
    partNumber: number;
    source: { bucket: string; key: string; range?: RangeSpec; conditions?: Preconditions };
    signal?: AbortSignal;
  }): Promise<{ part: PartRecord; sourceLastModified: Date }> {
    validatePartNumber(input.partNumber);
    const upload = await this.get(input.bucket, input.key, input.uploadId);
    const read = await this.objects.get(input.source.bucket, input.source.key, {
      range: input.source.range,
      conditions: input.source.conditions,
      signal: input.signal,
    });
    const digests = await this.content.ingest(await read.body(), {
      algorithms: upload.checksumAlgorithm ? [upload.checksumAlgorithm] : [],
      maxBytes: this.limits.maxPartBytes,
      signal: input.signal,
    });
    return { part: await this.recordPart(upload, input.partNumber, digests), sourceLastModified: read.object.lastModified };
  }

  private async recordPart(upload: UploadRecord, partNumber: number, digests: ContentDigests): Promise<PartRecord> {
    const part: PartRecord = {
      uploadId: upload.uploadId,
      partNumber,
      digest: digests.digest,
      size: digests.size,
      etag: `"${digests.md5Hex}"`,
      checksum: upload.checksumAlgorithm ? digests.checksums[upload.checksumAlgorithm] : undefined,
      lastModified: new Date(),
    };
    await this.meta.uploads.putPart(part);
    return part;
  }

  /**
   * `expectedChecksum` is the whole object's checksum the client sent with the request, if any: the
   * FULL_OBJECT CRC, or the COMPOSITE value with its -N suffix. A mismatch is BadDigest.
   */
  async complete(bucket: string, key: string, uploadId: string, requested: CompletedPart[], expectedChecksum?: string): Promise<ObjectRecord> {
    const upload = await this.get(bucket, key, uploadId);
    if (requested.length === 0) throw new AstoreError('MalformedXML', 'You must specify at least one part');
    for (let i = 1; i < requested.length; i++) {
      if (requested[i]!.partNumber <= requested[i - 1]!.partNumber) throw new AstoreError('InvalidPartOrder');
    }
    const stored = new Map<number, PartRecord>();
    for (let after = 0; ; ) {
      const batch = await this.meta.uploads.listParts(uploadId, after, 1000);
      for (const p of batch) stored.set(p.partNumber, p);
      if (batch.length < 1000) break;
      after = batch[batch.length - 1]!.partNumber;
    }
    const segments: Segment[] = requested.map((r, i) => {
      const part = stored.get(r.partNumber);
      if (!part || normaliseEtag(part.etag) !== normaliseEtag(r.etag)) {
        throw new AstoreError('InvalidPart', undefined, { PartNumber: r.partNumber, ETag: r.etag });
      }
      if (r.checksum !== undefined && part.checksum !== undefined && r.checksum !== part.checksum) {
        throw new AstoreError('InvalidPart', `The checksum of part ${r.partNumber} does not match`, { PartNumber: r.partNumber });
      }
      if (i < requested.length - 1 && part.size < this.limits.minPartBytes) {
        throw new AstoreError('EntityTooSmall', undefined, { PartNumber: r.partNumber, ProposedSize: part.size, MinSizeAllowed: this.limits.minPartBytes });
      }
      return { digest: part.digest, size: part.size, partNumber: part.partNumber, etag: part.etag, checksum: part.checksum };
    });
    const checksum = objectChecksum(upload, segments);
    if (expectedChecksum !== undefined && checksum && expectedChecksum !== checksum.value) {
      throw new AstoreError('BadDigest', `The ${checksum.algorithm} you specified for the whole object did not match the calculated checksum.`);
    }
    const object: ObjectRecord = {
      bucket,
      key,
      size: segments.reduce((n, s) => n + s.size, 0),
      etag: `"${multipartEtag(segments.map((s) => normaliseEtag(s.etag!)))}"`,
      lastModified: new Date(),
      headers: upload.headers,
      userMetadata: upload.userMetadata,
      checksum,
      digest: segments.length === 1 ? segments[0]!.digest : undefined,
      segments,
    };
    await this.meta.uploads.complete(uploadId, object);
    return object;
  }

  async abort(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.get(bucket, key, uploadId);
    await this.meta.uploads.abort(uploadId);
  }

  async listParts(bucket: string, key: string, uploadId: string, afterPart: number, maxParts: number) {
    const upload = await this.get(bucket, key, uploadId);
    const parts = await this.meta.uploads.listParts(uploadId, afterPart, maxParts + 1);
    return { upload, parts: parts.slice(0, maxParts), truncated: parts.length > maxParts };
  }

  /**
   * ListMultipartUploads. With a delimiter, keys that contain it after the prefix roll up into
   * common prefixes (counted towards the limit, as in S3), and the scan jumps past each prefix.
   */
  async list(query: UploadListQuery & { delimiter?: string }) {
    await this.requireBucket(query.bucket);
    const { delimiter, limit } = query;
    const prefix = query.prefix ?? '';
    const uploads: UploadRecord[] = [];
    const commonPrefixes: string[] = [];
    let keyMarker = query.keyMarker;
    let uploadIdMarker = query.uploadIdMarker;
    if (delimiter && keyMarker?.startsWith(prefix) && keyMarker.endsWith(delimiter) && keyMarker.indexOf(delimiter, prefix.length) === keyMarker.length - delimiter.length) {
      keyMarker = `${keyMarker}\u{10FFFF}`; // resuming after a common prefix: skip its subtree
      uploadIdMarker = undefined;
    }
    for (;;) {
      const batch = await this.meta.uploads.list({ ...query, keyMarker, uploadIdMarker, limit: limit + 1 });
      let jumped = false;
      for (const upload of batch) {
        const cut = delimiter ? upload.key.indexOf(delimiter, prefix.length) : -1;
        if (uploads.length + commonPrefixes.length === limit) return { uploads, commonPrefixes, truncated: true };
        if (cut >= 0) {
          const cp = upload.key.slice(0, cut + delimiter!.length);
          commonPrefixes.push(cp);
          keyMarker = `${cp}\u{10FFFF}`;
          uploadIdMarker = undefined;
          jumped = true;
          break;
        }
        uploads.push(upload);
        keyMarker = upload.key;
        uploadIdMarker = upload.uploadId;
      }
      if (!jumped && batch.length <= limit) return { uploads, commonPrefixes, truncated: false };
    }
  }

  private async requireBucket(bucket: string): Promise<void> {
    if (!(await this.meta.buckets.get(bucket))) throw new AstoreError('NoSuchBucket', undefined, { BucketName: bucket });
  }
}

/** The object's S3 checksum from its parts' checksums: COMPOSITE (checksum of checksums, -N) or FULL_OBJECT (combined CRC). */
function objectChecksum(upload: UploadRecord, segments: Segment[]): ObjectChecksum | undefined {
  const algorithm = upload.checksumAlgorithm;
  if (!algorithm || segments.some((s) => s.checksum === undefined)) return undefined;
  if (upload.checksumType === 'FULL_OBJECT') {
    return { algorithm, type: 'FULL_OBJECT', value: combineCrc(algorithm, segments.map((s) => ({ checksum: s.checksum!, size: s.size }))) };
  }
  return { algorithm, type: 'COMPOSITE', value: compositeChecksum(algorithm, segments.map((s) => s.checksum!)) };
}

function validatePartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > maxPartNumber) {
    throw new AstoreError('InvalidArgument', `Part number must be an integer between 1 and ${maxPartNumber}, inclusive`, { ArgumentName: 'partNumber' });
  }
}

function normaliseEtag(etag: string): string {
  return etag.trim().replace(/^"|"$/g, '').toLowerCase();
}

/**
 * A random upload id (192 bits, base64url) that starts with a letter: command-line clients take an
 * argument that starts with `-` for an option (`aws s3api upload-part --upload-id -x...` fails).
 */
function newUploadId(): string {
  const id = randomBytes(24).toString('base64url');
  return /^[A-Za-z]/.test(id) ? id : `u${id.slice(1)}`;
}
