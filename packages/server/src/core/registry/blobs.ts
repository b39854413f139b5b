import { createHash, randomUUID } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import type { ByteRange } from '../../storage/blob/types.ts';
import type { LayerRecord, MetaStore, RegistryUploadRecord } from '../../storage/meta/types.ts';
import { blobKey, type ContentStore } from '../content.ts';
import { AstoreError } from '../errors.ts';
import { resolveRange, type RangeSpec } from '../ranges.ts';
import { type DigestAlgorithm, parseDigest } from './references.ts';

export interface RegistryBlobOptions {
  maxBlobBytes: number;
  /** A link older than this is refreshed when a client asks whether the blob exists (see statBlob). */
  linkRefreshMs: number;
  /** Blob GETs of at least this many bytes redirect to a presigned backend URL, where the backend presigns. */
  redirectAboveBytes?: number;
  /** Lifetime of those URLs. */
  redirectSeconds?: number;
}

export interface BlobRead {
  layer: LayerRecord;
  range?: ByteRange;
  body: () => Promise<Readable>;
}

/**
 * Registry blobs over the shared content store. A repository sees a blob through its link (see
 * LayerRecord); the bytes are the content store's sha256 blob, so a layer and an S3 object with the
 * same bytes are one blob. Upload sessions live in the MetaStore: each chunk is stored as a blob as it
 * arrives, so a session survives a restart and can be continued on another replica; completing it
 * verifies the client's digest over the chunks and links the result.
 */
export class RegistryBlobService {
  constructor(
    private readonly meta: MetaStore,
    private readonly content: ContentStore,
    private readonly options: RegistryBlobOptions,
  ) {}

  /**
   * The link, or BLOB_UNKNOWN. A client that sees a blob exists skips its upload and references it in
   * a manifest soon after: a link near the GC grace period is refreshed so that it stays long enough.
   */
  async statBlob(repository: string, digest: string): Promise<LayerRecord> {
    const unknown = () => new AstoreError('BlobUnknown', `blob ${digest} is not in repository ${repository}`, { digest });
    const layer = await this.meta.registry.getLayer(repository, parseDigest(digest).digest);
    if (!layer) throw unknown();
    if (Date.now() - layer.touchedAt.getTime() > this.options.linkRefreshMs) {
      // Collected between the read and the refresh: say so now, not when the manifest is pushed.
      if (!(await this.meta.registry.touchLayer(repository, layer.digest))) throw unknown();
    }
    return layer;
  }

  /**
   * Where a client may fetch a blob directly from the backend instead of through astore (a presigned
   * URL), when the backend can presign and the blob is at least `redirectAboveBytes`; else undefined.
   */
  async redirectFor(layer: LayerRecord): Promise<string | undefined> {
    const presign = this.content.blobs.presignGet;
    const threshold = this.options.redirectAboveBytes;
    if (!presign || threshold === undefined || layer.size < threshold) return undefined;
    return presign.call(this.content.blobs, blobKey(layer.blob), this.options.redirectSeconds ?? 300);
  }

  async readBlob(repository: string, digest: string, range?: RangeSpec, signal?: AbortSignal): Promise<BlobRead> {
    const layer = await this.statBlob(repository, digest);
    const resolved = range === undefined ? undefined : resolveRange(range, layer.size);
    return { layer, range: resolved, body: () => this.content.read([{ digest: layer.blob, size: layer.size }], resolved, signal) };
  }

  async deleteBlob(repository: string, digest: string): Promise<void> {
    if (!(await this.meta.registry.unlinkBlob(repository, parseDigest(digest).digest))) {
      throw new AstoreError('BlobUnknown', `blob ${digest} is not in repository ${repository}`, { digest });
    }
  }

  /**
   * Links a blob another repository has. `from` names the source the client asked for (its pull
   * permission checked by the caller); without it (automatic mount) a repository that has the blob and
   * that `mayPullFrom` accepts serves. Null when no source has it: the client then uploads as usual.
   */
  async mount(repository: string, digest: string, from: string | undefined, mayPullFrom: (source: string) => Promise<boolean>): Promise<LayerRecord | null> {
    const { digest: canonical } = parseDigest(digest);
    const source = from !== undefined ? await this.meta.registry.getLayer(from, canonical) : await this.meta.registry.findLayer(canonical);
    if (!source || (from === undefined && !(await mayPullFrom(source.repository)))) return null;
    return this.meta.registry.mountLayer(source, repository);
  }

  async startUpload(repository: string): Promise<RegistryUploadRecord> {
    const now = new Date();
    const upload = { uploadId: randomUUID(), repository, createdAt: now };
    await this.meta.registry.createUpload(upload);
    return { ...upload, updatedAt: now, size: 0, chunks: [] };
  }

  async getUpload(repository: string, uploadId: string): Promise<RegistryUploadRecord> {
    const upload = await this.meta.registry.getUpload(uploadId);
    if (!upload || upload.repository !== repository) throw new AstoreError('BlobUploadUnknown', undefined, { uploadId });
    return upload;
  }

  /**
   * Stores `body` as the next chunk. `start` (from Content-Range) must be the upload's current size,
   * else 416 before any byte is read; `length`, when the client declared it, must match the body.
   */
  async appendChunk(repository: string, uploadId: string, body: Readable, expect: { start?: number; length?: number } = {}, signal?: AbortSignal): Promise<RegistryUploadRecord> {
    const upload = await this.getUpload(repository, uploadId);
    const chunk = await this.storeChunk(upload, body, expect, signal);
    return chunk ? this.meta.registry.appendChunk(uploadId, upload.size, chunk) : upload;
  }

  /**
   * Completes an upload: an optional last chunk, then the digest check over all chunks, then the link,
   * atomically with the session's removal. The last chunk is recorded only with the completion, so
   * DIGEST_INVALID leaves the session as it was (the client may retry, with the right digest).
   */
  async finishUpload(
    repository: string,
    uploadId: string,
    digest: string,
    last?: { body: Readable; start?: number; length?: number },
    signal?: AbortSignal,
  ): Promise<LayerRecord> {
    const expected = parseDigest(digest);
    const upload = await this.getUpload(repository, uploadId);
    const chunk = last ? await this.storeChunk(upload, last.body, last, signal) : undefined;
    const chunks = chunk ? [...upload.chunks, chunk] : upload.chunks;
    const blob = await this.assemble(chunks, expected.algorithm, expected.digest, signal);
    const link = { repository, digest: expected.digest, blob: blob.digest, size: blob.size };
    await this.meta.registry.completeUpload(uploadId, link, upload.size);
    return { ...link, touchedAt: new Date() };
  }

  /**
   * Stores a chunk's bytes as a blob, checking it continues `upload` (else 416 before any byte is read)
   * and has the declared length; undefined for an empty chunk. The caller records it in the session.
   */
  private async storeChunk(
    upload: RegistryUploadRecord,
    body: Readable,
    expect: { start?: number; length?: number },
    signal?: AbortSignal,
  ): Promise<{ digest: string; size: number } | undefined> {
    const offset = expect.start ?? upload.size;
    if (offset !== upload.size) {
      body.resume();
      throw new AstoreError('RangeNotSatisfiable', `the upload has ${upload.size} bytes; a chunk starting at ${offset} does not follow them`, { size: upload.size });
    }
    if (expect.length === 0) {
      body.resume();
      return undefined;
    }
    const stored = await this.content.ingest(body, {
      md5: false,
      maxBytes: this.options.maxBlobBytes - upload.size,
      signal,
      verify: ({ size }) => {
        if (expect.length !== undefined && size !== expect.length) {
          throw new AstoreError('SizeInvalid', `the chunk has ${size} bytes, not the ${expect.length} declared`);
        }
      },
    });
    return stored.size === 0 ? undefined : { digest: stored.digest, size: stored.size };
  }

  async cancelUpload(repository: string, uploadId: string): Promise<void> {
    await this.getUpload(repository, uploadId);
    if (!(await this.meta.registry.deleteUpload(uploadId))) throw new AstoreError('BlobUploadUnknown', undefined, { uploadId });
  }

  /** A whole blob in one request (POST with `digest`, or the monolithic PUT): no session is kept. */
  async putBlob(repository: string, digest: string, body: Readable, length?: number, signal?: AbortSignal): Promise<LayerRecord> {
    const expected = parseDigest(digest);
    const tap = expected.algorithm === 'sha256' ? undefined : new HashTap(expected.algorithm);
    const stored = await this.content.ingest(tap ? through(body, tap) : body, {
      md5: false,
      maxBytes: this.options.maxBlobBytes,
      signal,
      verify: (digests) => {
        if (length !== undefined && digests.size !== length) throw new AstoreError('SizeInvalid', `the body has ${digests.size} bytes, not the ${length} declared`);
        const actual = tap ? tap.digest() : digests.digest;
        if (actual !== expected.digest) throw new AstoreError('DigestInvalid', `the content's digest is ${actual}, not ${expected.digest}`, { digest: expected.digest });
      },
    });
    const link = { repository, digest: expected.digest, blob: stored.digest, size: stored.size };
    await this.meta.registry.linkBlob(link);
    return { ...link, touchedAt: new Date() };
  }

  /**
   * The stored sha256 blob holding the upload's bytes, checked against the client's digest. One chunk
   * is already that blob (for a sha512 digest it is read once to hash it); several are concatenated
   * into a new blob (hashed while written), and the chunk blobs are left to the garbage collector.
   */
  private async assemble(
    chunks: readonly { digest: string; size: number }[],
    algorithm: DigestAlgorithm,
    expected: string,
    signal?: AbortSignal,
  ): Promise<{ digest: string; size: number }> {
    const mismatch = (actual: string) => new AstoreError('DigestInvalid', `the uploaded content's digest is ${actual}, not ${expected}`, { digest: expected });
    const only = chunks.length === 1 ? chunks[0]! : undefined;
    if (only && algorithm === 'sha256') {
      if (only.digest !== expected) throw mismatch(only.digest);
      return only;
    }
    if (only) {
      const tap = new HashTap(algorithm);
      for await (const _ of through(await this.content.read([only], undefined, signal), tap)) void _;
      if (tap.digest() !== expected) throw mismatch(tap.digest());
      return only;
    }
    const tap = algorithm === 'sha256' ? undefined : new HashTap(algorithm);
    const source = chunks.length === 0 ? Readable.from([]) : await this.content.read(chunks, undefined, signal);
    const stored = await this.content.ingest(tap ? through(source, tap) : source, {
      md5: false,
      signal,
      verify: (digests) => {
        const actual = tap ? tap.digest() : digests.digest;
        if (actual !== expected) throw mismatch(actual);
      },
    });
    return { digest: stored.digest, size: stored.size };
  }
}

/** `source` piped into `tap`, errors included (either side failing destroys both). */
function through(source: Readable, tap: Transform): Transform {
  pipeline(source, tap, () => {});
  return tap;
}

/** Pass-through stream hashing what flows through it with one algorithm. */
class HashTap extends Transform {
  private readonly hash;
  private result: string | undefined;

  constructor(private readonly algorithm: DigestAlgorithm) {
    super();
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: () => void): void {
    this.result = `${this.algorithm}:${this.hash.digest('hex')}`;
    done();
  }

  digest(): string {
    if (this.result === undefined) throw new Error('HashTap: stream not finished');
    return this.result;
  }
}
