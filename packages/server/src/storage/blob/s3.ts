import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { debuglog } from 'node:util';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { validateBlobPrefix } from './fs.ts';
import { copyMultipart, copySource, housekeepingSignal, ObjectUpload, type MultipartSettings } from './s3-multipart.ts';
import {
  BlobNotFoundError,
  validateBlobKey,
  type BlobListing,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './types.ts';

const debug = debuglog('astore:blob:s3');

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's limits: parts (but the last) of 5 MiB to 5 GiB; CopyObject up to 5 GiB. */
const minPartSize = 5 * MiB;
const maxPartSize = 5 * GiB;
/** SigV4 presigned URLs live at most 7 days. */
const maxPresignSeconds = 7 * 24 * 3600;

export interface S3BlobStoreOptions {
  /** Service URL of an S3-compatible service (MinIO, Ceph...); omitted for AWS, where `region` picks it. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix inside the bucket, e.g. `astore/`: the blob `a/b` is the object `astore/a/b`. Default none. */
  prefix?: string;
  /** Static credentials (both or neither); without them the SDK's default chain (env, profile, IMDS...). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** `http://endpoint/bucket/key` rather than `http://bucket.endpoint/key`; most self-hosted services need it. */
  forcePathStyle?: boolean;
  /** Bodies longer than this go up as a multipart upload of parts this big. 5 MiB–5 GiB; default 16 MiB. */
  partSizeBytes?: number;
  /** Parts of one put (or copy) in flight at once; default 4. A put holds at most (queueSize + 1) parts in memory. */
  queueSize?: number;
  /** Blobs larger than this move by multipart UploadPartCopy rather than CopyObject. At most (and default) 5 GiB. */
  multipartCopyThresholdBytes?: number;
  /** Part size of a multipart copy (raised to stay within 10,000 parts); server-side, costs no memory. Default 512 MiB. */
  copyPartSizeBytes?: number;
  /** When set, `presignGet` hands out URLs valid for at most this many seconds (≤ 7 days); otherwise it is absent. */
  presignedGetSeconds?: number;
  /**
   * `when_supported` (default): CRC32 on every PutObject/UploadPart, checked by the service, and response
   * checksums verified on whole-blob reads. `when_required`: only where S3 demands one, for services that
   * refuse the newer checksum headers.
   */
  checksums?: 'when_supported' | 'when_required';
  /** Create the bucket on open (an existing bucket of ours is fine). Otherwise open checks that it exists. */
  createBucket?: boolean;
}

interface Settings extends MultipartSettings {
  prefix: string;
  copyThreshold: number;
  copyPartSize: number;
}

/**
 * BlobStore on an S3 bucket (AWS or any S3-compatible service): the blob at key `k` is the object
 * `<prefix>k`. The driver streams; it never holds a whole blob in memory.
 *
 * Contract mapping (what to check when a blob looks wrong):
 * - put: a body up to one part is one PutObject; a longer one a multipart upload, whose parts are
 *   invisible until CompleteMultipartUpload. Both are atomic on S3, so readers see the old object or the
 *   new one. On any failure (body error, part error, abort) the upload is aborted before put rejects; if
 *   that AbortMultipartUpload itself fails the parts linger unseen (a bucket lifecycle rule
 *   AbortIncompleteMultipartUpload reclaims them). The signal is honoured until the commit request
 *   (PutObject, CompleteMultipartUpload) is sent; a Complete is then awaited, not cancelled, since
 *   cancelling it client-side cannot say whether the server committed.
 * - move: CopyObject (or UploadPartCopy parts pinned to the source's ETag, above the copy threshold),
 *   then DeleteObject of the source. After a failure between the two, both keys hold the blob.
 * - delete: DeleteObject, idempotent on S3. list: ListObjectsV2 pages; objects under the prefix whose
 *   names are not valid keys (folder markers, foreign objects) are skipped.
 * - Durability is the service's: S3 acknowledges a write once it is stored redundantly.
 *
 * Limits: a blob has at most 10,000 parts, so at most 10,000 × partSizeBytes (156 GiB at 16 MiB).
 */
export class S3BlobStore implements BlobStore {
  readonly name = 's3';
  /** Present when presigned GETs are enabled (`presignedGetSeconds`). */
  readonly presignGet?: (key: string, expiresInSeconds: number) => Promise<string>;

  private constructor(
    /** The SDK client, exposed for instrumentation (metrics, tests); the store owns and closes it. */
    readonly client: S3Client,
    private readonly settings: Settings,
    presignedGetSeconds: number | undefined,
  ) {
    if (presignedGetSeconds !== undefined) {
      this.presignGet = (key, expiresInSeconds) => this.presign(key, Math.min(expiresInSeconds, presignedGetSeconds));
    }
  }

  /** Connects, then creates the bucket (`createBucket`) or checks that it exists and is reachable. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const settings = resolveSettings(options);
    const checksums = settings.checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
    const client = new S3Client({
      region: options.region,
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.accessKeyId !== undefined && {
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey!, sessionToken: options.sessionToken },
      }),
      // Stated, so AWS_REQUEST_CHECKSUM_CALCULATION and friends in the environment cannot change them.
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
    });
    const store = new S3BlobStore(client, settings, options.presignedGetSeconds);
    const where = `S3 bucket ${JSON.stringify(settings.bucket)} at ${options.endpoint ?? `AWS ${options.region}`}`;
    try {
      if (options.createBucket) {
        await store.createBucket(options.region);
      } else {
        await client.send(new HeadBucketCommand({ Bucket: settings.bucket }), { abortSignal: housekeepingSignal() }).catch((err: unknown) => {
          const hint = statusOf(err) === 404 ? 'does not exist (set createBucket to create it)' : `is not reachable: ${describe(err)}`;
          throw new Error(`${where} ${hint}`, { cause: err });
        });
      }
    } catch (err) {
      client.destroy();
      throw err;
    }
    debug('opened %s, prefix %j', where, settings.prefix);
    return store;
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobStat | null> {
    const objectKey = this.objectKey(key);
    signal?.throwIfAborted();
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: objectKey }), { abortSignal: signal });
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const objectKey = this.objectKey(key);
    signal?.throwIfAborted();
    const request = { Bucket: this.settings.bucket, Key: objectKey, ...(range && { Range: `bytes=${range.start}-${range.end}` }) };
    const response = await this.client.send(new GetObjectCommand(request), { abortSignal: signal }).catch((err: unknown) => {
      throw isNotFound(err) ? new BlobNotFoundError(key) : err;
    });
    const body = response.Body;
    if (!(body instanceof Readable)) throw new Error(`S3 GetObject ${objectKey}: expected a stream body`);
    return signal ? addAbortSignal(signal, body) : body;
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<BlobStat> {
    const objectKey = this.objectKey(key);
    signal?.throwIfAborted();
    const upload = new ObjectUpload(this.client, this.settings, objectKey, signal);
    try {
      await pipeline(body, upload.sink, { signal });
      signal?.throwIfAborted();
      await upload.commit(signal);
    } catch (err) {
      debug('put %s failed, aborting its upload: %o', key, err);
      await upload.discard();
      throw err;
    } finally {
      upload.release();
    }
    return { size: upload.size };
  }

  async move(from: string, to: string, signal?: AbortSignal): Promise<void> {
    const source = this.objectKey(from);
    const target = this.objectKey(to);
    signal?.throwIfAborted();
    const { bucket } = this.settings;
    const notFound = (err: unknown) => {
      throw isNotFound(err) ? new BlobNotFoundError(from) : err;
    };
    const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: source }), { abortSignal: signal }).catch(notFound);
    if (source === target) return;
    const size = head.ContentLength ?? 0;
    if (size > this.settings.copyThreshold) {
      const copy = { source, target, size, etag: head.ETag, partSize: this.settings.copyPartSize };
      await copyMultipart(this.client, this.settings, copy, signal).catch(notFound);
    } else {
      await this.client.send(new CopyObjectCommand({ Bucket: bucket, Key: target, CopySource: copySource(bucket, source) }), { abortSignal: signal }).catch(notFound);
    }
    // The copy committed the move; the source's removal is not cancelled, so a resolved copy does not
    // leave a second copy behind merely because the caller gave up.
    await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: source }), { abortSignal: housekeepingSignal() });
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const objectKey = this.objectKey(key);
    signal?.throwIfAborted();
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: objectKey }), { abortSignal: signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing> {
    validateBlobPrefix(prefix);
    const own = this.settings.prefix;
    let continuationToken: string | undefined;
    do {
      signal?.throwIfAborted();
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: own + prefix, ContinuationToken: continuationToken }),
        { abortSignal: signal },
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(own.length);
        if (key === undefined || !isValidKey(key)) continue;
        yield { key, size: object.Size ?? 0, ...(object.LastModified && { modifiedAt: object.LastModified }) };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private objectKey(key: string): string {
    validateBlobKey(key);
    return this.settings.prefix + key;
  }

  private async createBucket(region: string): Promise<void> {
    // Outside us-east-1 AWS wants the region restated; S3-compatible services accept either form.
    const configuration = region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } };
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.settings.bucket, ...configuration }), { abortSignal: housekeepingSignal() });
    } catch (err) {
      if (!(err instanceof S3ServiceException && err.name === 'BucketAlreadyOwnedByYou')) throw err;
    }
  }

  private async presign(key: string, expiresInSeconds: number): Promise<string> {
    const objectKey = this.objectKey(key);
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1) throw new Error(`presignGet: expiry must be a positive whole number of seconds, got ${expiresInSeconds}`);
    // The SDK's own stack resolves the endpoint (path or virtual-host style, region...) and serialises the
    // GET; this middleware takes the request just before signing and presigns it instead of sending it.
    const command = new GetObjectCommand({ Bucket: this.settings.bucket, Key: objectKey });
    const stack = this.client.middlewareStack.clone();
    let url = '';
    stack.addRelativeTo(
      (_next: unknown, context: Record<string, unknown>) => async (args: { request: unknown }) => {
        const request = args.request as { protocol: string; hostname: string; port?: number; path: string; headers: Record<string, string> };
        const signer = new SignatureV4({
          credentials: this.client.config.credentials,
          region: (context.signing_region as string | undefined) ?? (await this.client.config.region()),
          service: 's3',
          sha256: this.client.config.sha256,
          // S3 signs the path as sent, not escaped a second time.
          uriEscapePath: false,
        });
        const host = request.headers.host ?? `${request.hostname}${request.port ? `:${request.port}` : ''}`;
        const presigned = await signer.presign(
          { ...request, method: 'GET', query: {}, headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
          { expiresIn: expiresInSeconds },
        );
        const query = new URLSearchParams(presigned.query as Record<string, string>).toString().replace(/\+/g, '%20');
        url = `${request.protocol}//${host}${request.path}?${query}`;
        return { output: { $metadata: {} }, response: {} };
      },
      { relation: 'before', toMiddleware: 'httpSigningMiddleware', name: 'astorePresignGet', override: true },
    );
    await command.resolveMiddleware(stack, this.client.config, {})({ input: command.input });
    return url;
  }
}

function resolveSettings(options: S3BlobStoreOptions): Settings {
  const partSize = options.partSizeBytes ?? 16 * MiB;
  const queueSize = options.queueSize ?? 4;
  const copyThreshold = options.multipartCopyThresholdBytes ?? maxPartSize;
  const copyPartSize = options.copyPartSizeBytes ?? 512 * MiB;
  const within = (name: string, value: number, min: number, max: number) => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new Error(`S3 blob store: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  };
  within('partSizeBytes', partSize, minPartSize, maxPartSize);
  within('queueSize', queueSize, 1, 64);
  within('multipartCopyThresholdBytes', copyThreshold, 0, maxPartSize);
  within('copyPartSizeBytes', copyPartSize, minPartSize, maxPartSize);
  if (options.presignedGetSeconds !== undefined) within('presignedGetSeconds', options.presignedGetSeconds, 1, maxPresignSeconds);
  if (!options.bucket) throw new Error('S3 blob store: bucket is required');
  if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
    throw new Error('S3 blob store: give both accessKeyId and secretAccessKey, or neither (the SDK default chain)');
  }
  let prefix = options.prefix ?? '';
  if (prefix !== '') {
    prefix = prefix.replace(/\/+$/, '');
    if (!isValidKey(prefix)) throw new Error(`S3 blob store: invalid prefix ${JSON.stringify(options.prefix)} (a key path such as "astore/blobs")`);
    prefix += '/';
  }
  return { bucket: options.bucket, prefix, partSize, queueSize, copyThreshold, copyPartSize, checksums: (options.checksums ?? 'when_supported') === 'when_supported' };
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** NoSuchKey (GET, CopyObject) or NotFound (HEAD, which has no body to name the error). */
function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NoSuchKey' || (err.name === 'NotFound' && statusOf(err) === 404));
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function isValidKey(key: string): boolean {
  try {
    validateBlobKey(key);
    return true;
  } catch {
    return false;
  }
}
