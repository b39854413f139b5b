import type { Readable } from 'node:stream';
import type { ByteRange } from '../storage/blob/types.ts';
import type { MetaStore, ObjectChecksum, ObjectHeaders, ObjectRecord } from '../storage/meta/types.ts';
import type { ChecksumAlgorithm, ContentDigests } from './checksums.ts';
import { checkCopySourcePreconditions, checkReadPreconditions, checkWritePreconditions, type Preconditions } from './conditions.ts';
import type { ContentStore } from './content.ts';
import { AstoreError } from './errors.ts';
import { listObjects, type ListPage, type ListQuery } from './listing.ts';
import { validateObjectKey } from './names.ts';
import { resolveRange, type RangeSpec } from './ranges.ts';

export interface PutObjectInput {
  bucket: string;
  key: string;
  body: Readable;
  headers: ObjectHeaders;
  userMetadata: Record<string, string>;
  /** Checksums to compute; `storeChecksum` names the one kept with the object (S3 returns it on GET). */
  checksumAlgorithms: ChecksumAlgorithm[];
  storeChecksum?: ChecksumAlgorithm;
  /** Refuses the content before it becomes visible (Content-MD5, x-amz-content-sha256, checksums). */
  verify?: (digests: ContentDigests) => void | Promise<void>;
  conditions?: Pick<Preconditions, 'ifMatch' | 'ifNoneMatch'>;
  signal?: AbortSignal;
}

export interface GetObjectOptions {
  range?: RangeSpec;
  partNumber?: number;
  conditions?: Preconditions;
  signal?: AbortSignal;
}

export interface ObjectRead {
  object: ObjectRecord;
  /** Present when a range or part was asked for. */
  range?: ByteRange;
  /** Number of parts of a multipart object (S3 x-amz-mp-parts-count when partNumber is given). */
  partsCount?: number;
  body: () => Promise<Readable>;
}

export interface CopyObjectInput {
  source: { bucket: string; key: string; conditions?: Preconditions };
  bucket: string;
  key: string;
  /** REPLACE takes headers and metadata from the request; COPY (default) keeps the source's. */
  metadataDirective: 'COPY' | 'REPLACE';
  headers: ObjectHeaders;
  userMetadata: Record<string, string>;
}

export class ObjectService {
  constructor(
    private readonly meta: MetaStore,
    private readonly content: ContentStore,
    private readonly maxObjectBytes: number,
  ) {}

  async put(input: PutObjectInput): Promise<ObjectRecord> {
    validateObjectKey(input.key);
    await this.requireBucket(input.bucket);
    if (input.conditions) checkWritePreconditions(await this.meta.objects.get(input.bucket, input.key), input.conditions);
    const digests = await this.content.ingest(input.body, {
      algorithms: input.checksumAlgorithms,
      verify: input.verify,
      maxBytes: this.maxObjectBytes,
      signal: input.signal,
    });
    const checksum: ObjectChecksum | undefined =
      input.storeChecksum && digests.checksums[input.storeChecksum]
        ? { algorithm: input.storeChecksum, value: digests.checksums[input.storeChecksum]!, type: 'FULL_OBJECT' }
        : undefined;
    const object: ObjectRecord = {
      bucket: input.bucket,
      key: input.key,
      size: digests.size,
      etag: `"${digests.md5Hex}"`,
      lastModified: new Date(),
      headers: input.headers,
      userMetadata: input.userMetadata,
      checksum,
      digest: digests.digest,
      segments: [{ digest: digests.digest, size: digests.size, checksum: checksum?.value }],
    };
    // Re-check a conditional write at commit time too: another writer may have won meanwhile.
    if (input.conditions) checkWritePreconditions(await this.meta.objects.get(input.bucket, input.key), input.conditions);
    await this.meta.objects.put(object);
    return object;
  }

  /** Throws NoSuchBucket / NoSuchKey. */
  async head(bucket: string, key: string): Promise<ObjectRecord> {
    const object = await this.meta.objects.get(bucket, key);
    if (object) return object;
    await this.requireBucket(bucket);
    throw new AstoreError('NoSuchKey', undefined, { Key: key });
  }

  async get(bucket: string, key: string, options: GetObjectOptions = {}): Promise<ObjectRead> {
    const object = await this.head(bucket, key);
    if (options.conditions) checkReadPreconditions(object, options.conditions);
    let range: ByteRange | undefined;
    let partsCount: number | undefined;
    if (options.partNumber !== undefined) {
      ({ range, partsCount } = partRange(object, options.partNumber));
    } else if (options.range) {
      range = resolveRange(options.range, object.size);
    }
    return {
      object,
      range,
      partsCount,
      body: () => this.content.read(object.segments, range, options.signal),
    };
  }

  /** Deleting a missing key succeeds, as in S3; a missing bucket is NoSuchBucket. */
  async delete(bucket: string, key: string): Promise<ObjectRecord | null> {
    const deleted = await this.meta.objects.delete(bucket, key);
    if (!deleted) await this.requireBucket(bucket);
    return deleted;
  }

  /** Copies by reference: the new object names the same blobs, no byte is read or written. */
  async copy(input: CopyObjectInput): Promise<ObjectRecord> {
    validateObjectKey(input.key);
    await this.requireBucket(input.bucket);
    const source = await this.head(input.source.bucket, input.source.key);
    if (input.source.conditions) checkCopySourcePreconditions(source, input.source.conditions);
    const sameObject = input.source.bucket === input.bucket && input.source.key === input.key;
    if (sameObject && input.metadataDirective === 'COPY') {
      throw new AstoreError(
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }
    const replace = input.metadataDirective === 'REPLACE';
    const object: ObjectRecord = {
      ...source,
      bucket: input.bucket,
      key: input.key,
      lastModified: new Date(),
      headers: replace ? input.headers : source.headers,
      userMetadata: replace ? input.userMetadata : source.userMetadata,
    };
    await this.meta.objects.put(object);
    return object;
  }

  async list(query: ListQuery): Promise<ListPage> {
    await this.requireBucket(query.bucket);
    return listObjects(this.meta, query);
  }

  private async requireBucket(bucket: string): Promise<void> {
    if (!(await this.meta.buckets.get(bucket))) throw new AstoreError('NoSuchBucket', undefined, { BucketName: bucket });
  }
}

/** The byte range of part `n`: a multipart object's segment, or part 1 = the whole of a simple object. */
function partRange(object: ObjectRecord, n: number): { range: ByteRange; partsCount?: number } {
  const multipart = object.segments.some((s) => s.partNumber !== undefined);
  if (!multipart) {
    if (n !== 1) throw new AstoreError('InvalidPartNumber');
    return { range: { start: 0, end: object.size - 1 } };
  }
  let offset = 0;
  for (const segment of object.segments) {
    if (segment.partNumber === n) return { range: { start: offset, end: offset + segment.size - 1 }, partsCount: object.segments.length };
    offset += segment.size;
  }
  throw new AstoreError('InvalidPartNumber');
}
