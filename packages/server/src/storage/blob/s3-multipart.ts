import { Writable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

// Multipart uploads and copies for the S3 driver (./s3.ts): everything that holds an UploadId, and so
// must abort it on every way out short of CompleteMultipartUpload.

const debug = debuglog('astore:blob:s3');

/** S3 allows at most 10,000 parts per object. */
const maxParts = 10_000;

/**
 * Create/Complete/AbortMultipartUpload and the delete ending a move are not cancelled by the caller's
 * signal (see ObjectUpload and S3BlobStore.move); this bounds them instead, so a hung backend cannot
 * hang a caller for ever.
 */
const housekeepingTimeoutMs = 300_000;
export const housekeepingSignal = (): AbortSignal => AbortSignal.timeout(housekeepingTimeoutMs);

export interface MultipartSettings {
  bucket: string;
  partSize: number;
  /** Parts in flight at once, per put or copy. */
  queueSize: number;
  /** Send CRC32 checksums with PutObject and every part (S3's `when_supported`). */
  checksums: boolean;
}

/**
 * One put's bytes on their way to S3: `sink` takes the body; `commit` makes it visible; `discard` undoes
 * whatever a failed put began. Memory: the part being filled plus at most `queueSize` parts in flight.
 */
export class ObjectUpload {
  size = 0;
  readonly sink: Writable;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextPartNumber = 1;
  private created?: Promise<string>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  private failure?: { error: unknown };
  /** Set once discard starts: nothing new may be sent, or it would outlive the abort. */
  private discarded = false;
  /** Cancels part uploads on the caller's abort or on the first failure. */
  private readonly cancel: ReturnType<typeof linkedController>;

  constructor(
    private readonly client: S3Client,
    private readonly settings: MultipartSettings,
    private readonly objectKey: string,
    signal: AbortSignal | undefined,
  ) {
    this.cancel = linkedController(signal);
    this.sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.accept(chunk).then(() => callback(), callback),
      final: (callback) => this.flush().then(() => callback(), callback),
    });
  }

  /** Makes the object visible: PutObject of the whole body, or CompleteMultipartUpload. */
  async commit(signal: AbortSignal | undefined): Promise<void> {
    const { bucket, checksums } = this.settings;
    if (!this.created) {
      const body = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      await this.client.send(
        new PutObjectCommand({ Bucket: bucket, Key: this.objectKey, Body: body, ContentLength: body.length, ...(checksums && { ChecksumAlgorithm: 'CRC32' }) }),
        { abortSignal: signal },
      );
      return;
    }
    const uploadId = await this.created;
    this.parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: this.objectKey, UploadId: uploadId, MultipartUpload: { Parts: this.parts } }),
      { abortSignal: housekeepingSignal() },
    );
    debug('put %s in %d parts', this.objectKey, this.parts.length);
  }

  /** Cancels parts in flight, waits for them, then aborts the multipart upload if one was created. */
  async discard(): Promise<void> {
    this.discarded = true;
    this.cancel.abort();
    this.pending = [];
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    const uploadId = await this.created?.catch(() => undefined);
    if (uploadId) await abortUpload(this.client, this.settings.bucket, this.objectKey, uploadId);
  }

  /** Unhooks from the caller's signal; called once put settles either way. */
  release(): void {
    this.cancel.dispose();
  }

  private async accept(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Strictly more than a part: a body of exactly one part stays a single PutObject.
    while (this.pendingBytes > this.settings.partSize) await this.send(this.take(this.settings.partSize));
  }

  /** The body has ended: the remainder is the last part, if this is a multipart upload at all. */
  private async flush(): Promise<void> {
    if (this.created && this.pendingBytes > 0) await this.send(this.take(this.pendingBytes));
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    if (this.failure) throw this.failure.error;
  }

  /** Starts one part upload once fewer than queueSize are in flight (this wait is the backpressure). */
  private async send(part: Buffer): Promise<void> {
    while (this.inFlight.size >= this.settings.queueSize) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.error;
    if (this.discarded) throw new Error('put discarded');
    const partNumber = this.nextPartNumber++;
    if (partNumber > maxParts) {
      throw new Error(`blob exceeds ${maxParts} parts of ${this.settings.partSize} bytes; raise partSizeBytes`);
    }
    this.created ??= this.createUpload();
    const upload: Promise<void> = this.uploadPart(partNumber, part)
      .catch((error: unknown) => this.fail(error))
      .finally(() => this.inFlight.delete(upload));
    this.inFlight.add(upload);
  }

  private async createUpload(): Promise<string> {
    const { bucket, checksums } = this.settings;
    // Not cancelled by the caller's signal: discard must learn the upload id to abort it.
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: this.objectKey, ...(checksums && { ChecksumAlgorithm: 'CRC32' }) }),
      { abortSignal: housekeepingSignal() },
    );
    return created.UploadId!;
  }

  private async uploadPart(partNumber: number, body: Buffer): Promise<void> {
    const { bucket, checksums } = this.settings;
    const uploadId = await this.created!;
    if (this.discarded) return;
    const uploaded = await this.client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: this.objectKey,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
        ...(checksums && { ChecksumAlgorithm: 'CRC32' }),
      }),
      { abortSignal: this.cancel.signal },
    );
    this.parts.push({ PartNumber: partNumber, ETag: uploaded.ETag, ...(uploaded.ChecksumCRC32 && { ChecksumCRC32: uploaded.ChecksumCRC32 }) });
  }

  /** The first failure wins; it cancels the other parts and ends the pipeline now, not at the next chunk. */
  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.cancel.abort();
    this.sink.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  /** The first `bytes` pending bytes as one buffer (a copy: parts are sent as single buffers). */
  private take(bytes: number): Buffer {
    const part = Buffer.allocUnsafe(bytes);
    let filled = 0;
    while (filled < bytes) {
      const head = this.pending[0]!;
      const used = Math.min(head.length, bytes - filled);
      head.copy(part, filled, 0, used);
      filled += used;
      if (used === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(used);
    }
    this.pendingBytes -= bytes;
    return part;
  }
}

/**
 * Copies `source` (of `size` bytes) to `target` part by part, server-side, in parts of `partSize` (raised
 * to stay within 10,000 parts). Every part is pinned to the source's ETag, so an overwrite of the source
 * mid-copy fails the copy (PreconditionFailed) rather than mixing two blobs. On any failure the upload is
 * aborted and `target` is untouched.
 */
export async function copyMultipart(
  client: S3Client,
  settings: MultipartSettings,
  copy: { source: string; target: string; size: number; etag: string | undefined; partSize: number },
  signal?: AbortSignal,
): Promise<void> {
  const { bucket, queueSize } = settings;
  const { source, target, size, etag } = copy;
  const partSize = Math.max(copy.partSize, Math.ceil(size / maxParts));
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: target }), { abortSignal: housekeepingSignal() });
  const uploadId = created.UploadId!;
  const cancel = linkedController(signal);
  try {
    const parts: CompletedPart[] = [];
    let next = 0;
    const worker = async () => {
      for (let start = next * partSize; start < size; start = next * partSize) {
        const partNumber = ++next;
        const end = Math.min(start + partSize, size) - 1;
        const copied = await client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: target,
            UploadId: uploadId,
            PartNumber: partNumber,
            CopySource: copySource(bucket, source),
            CopySourceRange: `bytes=${start}-${end}`,
            ...(etag && { CopySourceIfMatch: etag }),
          }),
          { abortSignal: cancel.signal },
        );
        parts.push({ PartNumber: partNumber, ETag: copied.CopyPartResult?.ETag });
      }
    };
    await settleAll(Array.from({ length: queueSize }, worker), cancel);
    signal?.throwIfAborted();
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: target, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      { abortSignal: housekeepingSignal() },
    );
    debug('copied %s to %s in %d parts', source, target, parts.length);
  } catch (err) {
    await abortUpload(client, bucket, target, uploadId);
    if (err instanceof S3ServiceException && err.name === 'PreconditionFailed') {
      throw new Error(`copy of ${source}: the source changed during the copy`, { cause: err });
    }
    throw err;
  } finally {
    cancel.dispose();
  }
}

/** x-amz-copy-source: bucket/key, each key segment URL-encoded. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

async function abortUpload(client: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal: housekeepingSignal() });
  } catch (err) {
    // The parts stay invisible; only a lifecycle rule or a later sweep reclaims their space.
    if (!(err instanceof S3ServiceException && err.name === 'NoSuchUpload')) debug('abort of upload %s for %s failed: %o', uploadId, key, err);
  }
}

/** Runs the tasks; on the first failure cancels the rest, waits for them all, and rethrows it. */
async function settleAll(tasks: Promise<void>[], cancel: AbortController): Promise<void> {
  const results = await Promise.allSettled(tasks.map((t) => t.catch((err: unknown) => (cancel.abort(), Promise.reject(err)))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** An AbortController that also aborts when `signal` does; dispose() unhooks it from `signal`. */
function linkedController(signal: AbortSignal | undefined): AbortController & { dispose: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return Object.assign(controller, { dispose: () => signal?.removeEventListener('abort', onAbort) });
}
