import { ApiError, IdempotencyStrategy, Storage, type Bucket } from '@google-cloud/storage';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { debuglog } from 'node:util';
import { validateBlobPrefix } from './fs.ts';
import { chunkQuantum, ResumableUpload } from './gcs-upload.ts';
import {
  BlobNotFoundError,
  validateBlobKey,
  type BlobListing,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './types.ts';

export { GcsUploadError } from './gcs-upload.ts';

const debug = debuglog('astore:blob:gcs');

const defaultChunkSize = 8 * 1024 * 1024;
const listPageSize = 1000;

export interface GcsBlobStoreOptions {
  /** The bucket; it must exist unless `createBucket` is set. */
  bucket: string;
  /** Prepended to every key to form the object name, e.g. `astore/` (a valid key prefix). Default ''. */
  prefix?: string;
  /** Project for bucket creation; otherwise taken from the credentials. */
  projectId?: string;
  /**
   * Another endpoint than https://storage.googleapis.com, e.g. an emulator: `http://127.0.0.1:4443`.
   * The SDK sends NO credentials to a custom endpoint unless `useAuthWithCustomEndpoint` is set (that
   * is how it talks to fake-gcs-server: `apiEndpoint` + any `projectId`, no credentials, no
   * STORAGE_EMULATOR_HOST). Set `useAuthWithCustomEndpoint` for a real endpoint such as a Private
   * Service Connect one.
   */
  apiEndpoint?: string;
  useAuthWithCustomEndpoint?: boolean;
  /** A service-account key file; without it, Application Default Credentials (the SDK's default). */
  keyFilename?: string;
  /**
   * Bytes per resumable-upload request, a multiple of 256 KiB; default 8 MiB (Google's recommended
   * minimum). A put buffers at most about one chunk in memory; a body shorter than one chunk goes up in
   * a single request after the session is created.
   */
  chunkSizeBytes?: number;
  /** Create the bucket at open when it is missing (needs storage.buckets.create). Default false. */
  createBucket?: boolean;
}

/**
 * BlobStore on Google Cloud Storage: the blob at key `k` is the object `<prefix>k` in one bucket.
 *
 * Contract notes (what to check when something looks wrong):
 * - put uses a resumable upload session: the body goes up in chunkSizeBytes requests and the object
 *   exists only when the last request (carrying the total size and an X-Goog-Hash crc32c, which GCS
 *   checks before it finalises) succeeds; until then readers see the previous generation. A failed or
 *   aborted put never sends that last request, aborts the request in flight and cancels the session
 *   (DELETE on the session URI), so no object appears; an unfinished session holds no object and GCS
 *   drops it after a week. The session is created lazily, when the first chunk is full or the body
 *   ends, so a put that fails before that costs no request. An abort that lands after the last request
 *   was sent may still find the object written (the outcome of that request is unknown).
 * - The session is created through the SDK (credentials, endpoint, retries), but the chunks are sent by
 *   this driver, not by the SDK's upload stream: that stream does not abort its in-flight request when
 *   destroyed without an error, and checks hashes only after the object is visible (deleting it on a
 *   mismatch). The session URI authorises the chunk requests by itself.
 * - move is a rewrite (server-side copy, atomic for readers of `to`; the SDK follows rewrite tokens
 *   for objects that take several calls) of the generation of `from` it found, then a delete of `from`
 *   conditional on that generation, so a newer `from` written meanwhile survives. A crash between the
 *   two leaves a complete copy at both keys.
 * - delete and the rewrite are retried by the SDK (IdempotencyStrategy.RetryAlways): replacing an object
 *   with the same bytes and deleting an absent one are both harmless here.
 * - GCS names are flat: a key that is only a prefix of other keys is an absent blob, and unlike on fs a
 *   key may be a blob and a prefix of others at once.
 * - The SDK calls (stat, delete, list pages, move's steps) cannot be cancelled mid-request: the signal
 *   is checked between them. get and put streams stop at once.
 *
 * Environment: the SDK itself reads STORAGE_EMULATOR_HOST; when it is set, the JSON API calls go there,
 * unauthenticated, whatever `apiEndpoint` says. Nothing here sets or needs it; keep it unset.
 *
 * fake-gcs-server quirks (v1.56.1; the conformance suite runs against it): an upload status query
 * (an empty PUT whose Content-Range names neither range nor total) FINALISES the object with what it
 * has so far, so after a failed chunk
 * request it would store a truncated blob (the test answers that query itself, as GCS would); it
 * ignores ifGenerationMatch on delete and X-Goog-Hash on uploads (the crc32c comparison after the last
 * chunk still catches a corrupt upload); it keeps every upload in memory and rehashes it per chunk.
 */
export class GcsBlobStore implements BlobStore {
  readonly name = 'gcs';

  private constructor(
    private readonly bucket: Bucket,
    private readonly prefix: string,
    private readonly chunkSize: number,
  ) {}

  static async open(options: GcsBlobStoreOptions): Promise<GcsBlobStore> {
    const prefix = options.prefix ?? '';
    validateBlobPrefix(prefix);
    const chunkSize = options.chunkSizeBytes ?? defaultChunkSize;
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % chunkQuantum !== 0) {
      throw new Error(`gcs: chunkSizeBytes must be a positive multiple of 256 KiB, got ${chunkSize}`);
    }
    if (!options.bucket) throw new Error('gcs: bucket is required');
    const storage = new Storage({
      ...(options.projectId !== undefined && { projectId: options.projectId }),
      ...(options.apiEndpoint !== undefined && { apiEndpoint: options.apiEndpoint }),
      ...(options.useAuthWithCustomEndpoint !== undefined && { useAuthWithCustomEndpoint: options.useAuthWithCustomEndpoint }),
      ...(options.keyFilename !== undefined && { keyFilename: options.keyFilename }),
      retryOptions: { autoRetry: true, idempotencyStrategy: IdempotencyStrategy.RetryAlways },
    });
    const bucket = storage.bucket(options.bucket);
    if (options.createBucket) {
      const [exists] = await bucket.exists();
      if (!exists) {
        await bucket.create().catch((err: unknown) => {
          if (errorStatus(err) !== 409) throw err; // 409: created meanwhile
        });
        debug('created bucket %s', options.bucket);
      }
    }
    // Fail at open, not at the first request, on a missing bucket or unusable credentials. Listing is
    // what the store needs anyway; storage.buckets.get is not in roles/storage.objectAdmin.
    await bucket.getFiles({ prefix, maxResults: 1, autoPaginate: false }).catch((err: unknown) => {
      if (errorStatus(err) === 404) throw new Error(`gcs: bucket ${options.bucket} does not exist (set createBucket to create it)`);
      throw err;
    });
    debug('opened gs://%s/%s', options.bucket, prefix);
    return new GcsBlobStore(bucket, prefix, chunkSize);
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobStat | null> {
    const name = this.objectName(key);
    signal?.throwIfAborted();
    const metadata = await this.metadataOf(name);
    return metadata ? { size: metadata.size } : null;
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const name = this.objectName(key);
    signal?.throwIfAborted();
    // Ranged reads are not hash-checked (GCS hashes whole objects); whole reads are, by the SDK.
    const stream = this.bucket.file(name).createReadStream(range ? { start: range.start, end: range.end } : {});
    // The request starts on the first read and its status arrives as 'response' (2xx) or 'error'
    // (anything else, after the SDK read the error body): wait for it, so absence is an error of get.
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown) => {
        stream.off('response', onResponse);
        stream.off('error', settle);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) return resolve();
        stream.destroy();
        reject(errorStatus(err) === 404 ? new BlobNotFoundError(key) : err);
      };
      const onResponse = (res: { statusCode?: number }) => {
        if (res.statusCode !== undefined && res.statusCode < 300) settle();
      };
      const onAbort = () => settle(signal?.reason);
      stream.on('response', onResponse);
      stream.on('error', settle);
      signal?.addEventListener('abort', onAbort, { once: true });
      stream.read(0);
    });
    // A network error before the caller attaches its handlers must not be an uncaught 'error' event;
    // the stream is still destroyed with it, so for-await and pipeline report it.
    stream.on('error', (err) => debug('get %s: %o', key, err));
    return signal ? addAbortSignal(signal, stream) : stream;
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<BlobStat> {
    const name = this.objectName(key);
    signal?.throwIfAborted();
    const upload = new ResumableUpload(this.bucket.file(name), this.chunkSize);
    try {
      await pipeline(body, upload, { signal });
    } catch (err) {
      debug('put %s failed: %o', key, err);
      throw err;
    }
    return { size: upload.size };
  }

  async move(from: string, to: string, signal?: AbortSignal): Promise<void> {
    const source = this.objectName(from);
    const target = this.objectName(to);
    signal?.throwIfAborted();
    const metadata = await this.metadataOf(source);
    if (!metadata) throw new BlobNotFoundError(from);
    if (source === target) return;
    signal?.throwIfAborted();
    const pinned = this.bucket.file(source, { generation: metadata.generation });
    await pinned.copy(this.bucket.file(target)).catch((err: unknown) => {
      throw errorStatus(err) === 404 ? new BlobNotFoundError(from) : err;
    });
    // 412: `from` was replaced after the copy; the newer blob is not ours to delete.
    await this.bucket
      .file(source)
      .delete({ ignoreNotFound: true, ifGenerationMatch: metadata.generation })
      .catch((err: unknown) => {
        if (errorStatus(err) !== 412) throw err;
      });
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const name = this.objectName(key);
    signal?.throwIfAborted();
    await this.bucket.file(name).delete({ ignoreNotFound: true });
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing> {
    validateBlobPrefix(prefix);
    let pageToken: string | undefined;
    do {
      signal?.throwIfAborted();
      const [files, next] = await this.bucket.getFiles({
        prefix: this.prefix + prefix,
        autoPaginate: false,
        maxResults: listPageSize,
        ...(pageToken !== undefined && { pageToken }),
      });
      for (const file of files) {
        const key = file.name.slice(this.prefix.length);
        if (!isValidKey(key)) continue; // an object some other writer put under our prefix
        const { size, updated } = file.metadata;
        yield { key, size: Number(size), ...(updated !== undefined && { modifiedAt: new Date(updated) }) };
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  async close(): Promise<void> {}

  private objectName(key: string): string {
    validateBlobKey(key);
    return this.prefix + key;
  }

  /** Size and generation of the live object `name`, or null when there is none. */
  private async metadataOf(name: string): Promise<{ size: number; generation: number } | null> {
    try {
      const [metadata] = await this.bucket.file(name).getMetadata();
      return { size: Number(metadata.size), generation: Number(metadata.generation) };
    } catch (err) {
      if (errorStatus(err) === 404) return null;
      throw err;
    }
  }
}

function errorStatus(err: unknown): number | undefined {
  if (err instanceof ApiError) return err.code;
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
}

function isValidKey(key: string): boolean {
  try {
    validateBlobKey(key);
    return true;
  } catch {
    return false;
  }
}
