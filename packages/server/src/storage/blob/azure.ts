import { randomUUID } from 'node:crypto';
import { addAbortSignal, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import {
  BlobSASPermissions,
  type BlobBeginCopyFromUrlPollState,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';
import { validateBlobPrefix } from './fs.ts';
import {
  BlobNotFoundError,
  validateBlobKey,
  type BlobListing,
  type BlobStat,
  type BlobStore,
  type ByteRange,
  type PutOptions,
} from './types.ts';

const debug = debuglog('astore:blob:azure');

const MiB = 1024 * 1024;
/** Put Block's limit (service version 2019-12-12 and later). */
const maxBlockBytes = 4000 * MiB;
/** Copy Blob From URL's limit: larger sources need the asynchronous Copy Blob. */
const maxSyncCopyBytes = 256 * MiB;
/** Temp blobs of in-flight puts live under `<prefix>.tmp/`; keys whose first segment is `.tmp` are refused. */
const TMP_DIR = '.tmp';
const containerName = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

export interface AzureBlobStoreOptions {
  /**
   * A shared-key connection string (`AccountName=...;AccountKey=...;` plus `BlobEndpoint=...` or
   * `EndpointSuffix=...`). Either this or accountUrl + accountName + accountKey. SAS connection strings
   * are refused: move signs a read SAS for its copy source, which takes the account key.
   */
  connectionString?: string;
  /** `https://<account>.blob.core.windows.net`, or `http://127.0.0.1:10000/devstoreaccount1` for Azurite. */
  accountUrl?: string;
  accountName?: string;
  accountKey?: string;
  /** The container holding the blobs: 3-63 of [a-z0-9-]. */
  container: string;
  /**
   * Prefix of every blob name, '' (default) or ending in '/', e.g. 'astore/'. Stores sharing a container
   * need prefixes that do not nest: one store's temp blobs would look like keys to the other.
   */
  prefix?: string;
  /**
   * Block size of staged uploads (default 8 MiB, at most 4000 MiB). A body no longer than one block goes
   * up in a single Put Blob. A put holds at most (concurrency + 1) blocks in memory.
   */
  blockSizeBytes?: number;
  /** Blocks of one put uploaded in parallel (default 4). */
  concurrency?: number;
  /** Create the container at open if missing (default false: a missing container fails open). */
  createContainer?: boolean;
  /**
   * Copies of blobs up to this size use the synchronous Copy Blob From URL; larger ones the asynchronous
   * Copy Blob, polled to completion. Default and maximum 256 MiB, Azure's limit; lower it only to test.
   */
  syncCopyMaxBytes?: number;
  /** At open, temp blobs older than this (left by a process that crashed mid-put) are deleted. Default 24 h. */
  staleTempAfterMs?: number;
}

/**
 * BlobStore on Azure Blob Storage (block blobs): the blob at key `a/b` is the blob `<prefix>a/b` of the
 * container. Authenticates with the account's shared key.
 *
 * How each contract holds (what to check when a blob "came back", "went missing" or came out mixed):
 * - put: a body that ends within one block is sent as one Put Blob to the key, which replaces the blob
 *   atomically. A longer body is staged block by block on a temp blob of its own, `<prefix>.tmp/<uuid>`,
 *   committed there (Put Block List), copied onto the key server-side, and the temp blob deleted.
 *   Blocks are never staged on the key itself: committing a blob discards the uncommitted blocks
 *   staged on it by anyone else (Azurite 3.35 drops them all; Azure's docs say blocks left out of a
 *   committed list are deleted), so concurrent puts to one key, e.g. six `uploadStream`s, fail with
 *   InvalidBlockList all but one, and a put cannot re-send a stream it has consumed.
 *   A failed or aborted put leaves at most uncommitted blocks on its temp blob: never listed, never
 *   readable, garbage-collected by Azure a week after the last write to them. A crash between commit
 *   and copy leaves a committed temp blob, hidden from list and deleted by an open after staleTempAfterMs.
 * - Abort is honoured until the request that writes the key (the Put Blob or the copy) is sent; from
 *   then on put runs to its end, so a put rejected on abort never left its bytes visible.
 * - move is a server-side copy then a delete of the source: after a crash both may exist (a complete
 *   copy). Sources up to syncCopyMaxBytes (256 MiB) use Copy Blob From URL, which returns once the
 *   copy is done and replaces the target atomically. Larger ones use Copy Blob and poll: Azure does not
 *   promise that readers of the target see the old blob while such a copy is pending (same-account
 *   copies normally complete at once). Stage-blocks-from-URL plus a commit would keep that atomic but
 *   is not implemented by Azurite 3.35 (NotImplemented), so it could not be tested here.
 * - Durability is Azure's: a write is durable once acknowledged. With soft delete or versioning on the
 *   account, deleted and overwritten bytes linger as the account's policy says.
 *
 * Limits: keys with a segment ending in '.' are refused (Azure's naming rules: such names misbehave in
 * URLs); at most 50,000 blocks per blob (390 GiB at 8 MiB blocks); accounts with a hierarchical
 * namespace (ADLS Gen2) are not supported (directories are blobs there).
 */
export class AzureBlobStore implements BlobStore {
  readonly name = 'azure';

  private constructor(
    private readonly container: ContainerClient,
    private readonly prefix: string,
    private readonly blockSize: number,
    private readonly concurrency: number,
    private readonly syncCopyMaxBytes: number,
  ) {}

  /** Connects, checks (or creates) the container and deletes stale temp blobs. */
  static async open(options: AzureBlobStoreOptions): Promise<AzureBlobStore> {
    const prefix = options.prefix ?? '';
    if (prefix !== '' && (!prefix.endsWith('/') || !isValidName(prefix.slice(0, -1)))) {
      throw new Error(`azure: invalid prefix ${JSON.stringify(prefix)}: '' or a valid key followed by '/'`);
    }
    if (!containerName.test(options.container)) throw new Error(`azure: invalid container name ${JSON.stringify(options.container)}`);
    const blockSize = integerOption('blockSizeBytes', options.blockSizeBytes, 8 * MiB, 1, maxBlockBytes);
    const concurrency = integerOption('concurrency', options.concurrency, 4, 1, 64);
    const syncCopyMaxBytes = integerOption('syncCopyMaxBytes', options.syncCopyMaxBytes, maxSyncCopyBytes, 0, maxSyncCopyBytes);
    const staleTempAfterMs = integerOption('staleTempAfterMs', options.staleTempAfterMs, 24 * 3600_000, 0, Number.MAX_SAFE_INTEGER);

    const container = serviceClient(options).getContainerClient(options.container);
    if (options.createContainer) {
      await container.createIfNotExists();
    } else if (!(await container.exists())) {
      throw new Error(`azure: container ${options.container} does not exist at ${container.url} (create it, or set createContainer)`);
    }
    const store = new AzureBlobStore(container, prefix, blockSize, concurrency, syncCopyMaxBytes);
    await store.removeStaleTemps(staleTempAfterMs);
    debug('opened %s (prefix %j)', container.url, prefix);
    return store;
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobStat | null> {
    const blob = this.blobOf(key);
    signal?.throwIfAborted();
    try {
      return { size: (await blob.getProperties({ abortSignal: signal })).contentLength ?? 0 };
    } catch (err) {
      if (isBlobNotFound(err)) return null;
      throw err;
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const blob = this.blobOf(key);
    signal?.throwIfAborted();
    const count = range ? range.end - range.start + 1 : undefined;
    // On a dropped connection the SDK resumes the download, pinned to the first response's ETag: a blob
    // replaced mid-read fails the stream instead of mixing two versions.
    const response = await blob.download(range?.start ?? 0, count, { abortSignal: signal, maxRetryRequests: 5 }).catch((err: unknown) => {
      throw isBlobNotFound(err) ? new BlobNotFoundError(key) : err;
    });
    const body = response.readableStreamBody as Readable | undefined;
    if (!body) throw new Error(`azure: download of ${key} returned no body`);
    return signal ? addAbortSignal(signal, body) : body;
  }

  async put(key: string, body: Readable, signal?: AbortSignal, options?: PutOptions): Promise<BlobStat> {
    const target = this.blobOf(key);
    signal?.throwIfAborted();
    // Aborted by the caller's signal, or by this put when a block fails: stops the body and every request.
    const work = new AbortController();
    const onAbort = () => work.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    addAbortSignal(work.signal, body);
    // Blocks are staged on a temp blob and copied over the key, since committing a block list drops the
    // blocks other writers staged on the same blob; a key nobody else writes (exclusive) takes them itself.
    const inPlace = options?.exclusive === true;
    const staging = new BlockStaging(inPlace ? target : this.container.getBlockBlobClient(`${this.prefix}${TMP_DIR}/${randomUUID()}`), this.blockSize, this.concurrency, work);
    let size = 0;
    try {
      const pending: Buffer[] = [];
      let pendingBytes = 0;
      for await (const chunk of body as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        pending.push(bytes);
        pendingBytes += bytes.length;
        size += bytes.length;
        while (pendingBytes >= this.blockSize) {
          await staging.stage(takeBytes(pending, this.blockSize, staging.buffer()));
          pendingBytes -= this.blockSize;
        }
      }
      const rest = takeBytes(pending, pendingBytes, Buffer.allocUnsafe(pendingBytes));
      if (staging.blocks === 0) {
        work.signal.throwIfAborted();
        // The point of no return: from here the put completes even if the signal fires.
        await target.upload(rest, rest.length);
      } else {
        if (rest.length > 0) await staging.stage(rest);
        if (inPlace) {
          work.signal.throwIfAborted();
          await staging.commit(); // the point of no return
        } else {
          await staging.commit();
          work.signal.throwIfAborted();
          await this.copy(staging.blob, target, size);
          await staging.blob.deleteIfExists().catch((err: unknown) => debug('put %s: temp %s not deleted: %o', key, staging.blob.name, err));
        }
      }
    } catch (err) {
      const cause = staging.failure ?? (signal?.aborted ? abortError(signal) : err);
      debug('put %s failed: %o', key, cause);
      // Destroyed before the abort reaches it through addAbortSignal: an AbortError emitted on a body
      // nobody listens to any more would be an uncaught 'error' event.
      body.destroy();
      work.abort();
      await staging.settle();
      // Uncommitted blocks need no cleanup (Azure garbage-collects them); a committed temp blob does.
      if (staging.blocks > 0 && !inPlace) await staging.blob.deleteIfExists().catch(() => {});
      throw cause;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return { size };
  }

  async move(from: string, to: string, signal?: AbortSignal): Promise<void> {
    const source = this.blobOf(from);
    const target = this.blobOf(to);
    signal?.throwIfAborted();
    const properties = await source.getProperties({ abortSignal: signal }).catch((err: unknown) => {
      throw isBlobNotFound(err) ? new BlobNotFoundError(from) : err;
    });
    // A copy onto itself then a delete would lose the blob.
    if (from === to) return;
    await this.copy(source, target, properties.contentLength ?? 0, signal).catch((err: unknown) => {
      // Deleted since getProperties: the copy's source is missing, whichever way the service words it.
      const sourceGone = isBlobNotFound(err) || (statusOf(err) === 404 && errorCode(err) === 'CannotVerifyCopySource');
      throw sourceGone ? new BlobNotFoundError(from) : err;
    });
    await source.deleteIfExists({ deleteSnapshots: 'include', abortSignal: signal });
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const blob = this.blobOf(key);
    signal?.throwIfAborted();
    await blob.deleteIfExists({ deleteSnapshots: 'include', abortSignal: signal });
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing> {
    validateBlobPrefix(prefix);
    signal?.throwIfAborted();
    const pages = this.container.listBlobsFlat({ prefix: this.prefix + prefix, abortSignal: signal }).byPage({ maxPageSize: 5000 });
    for await (const page of pages) {
      for (const item of page.segment.blobItems) {
        const key = item.name.slice(this.prefix.length);
        if (isTempKey(key) || !isValidName(key)) continue;
        yield { key, size: item.properties.contentLength ?? 0, modifiedAt: item.properties.lastModified };
      }
    }
  }

  async close(): Promise<void> {}

  /** The block blob for `key`; refuses invalid keys, the temp area and names Azure cannot hold. */
  private blobOf(key: string): BlockBlobClient {
    validateBlobKey(key);
    if (isTempKey(key)) throw new Error(`invalid blob key: ${JSON.stringify(key)} (reserved)`);
    if (!isValidName(key)) throw new Error(`invalid blob key: ${JSON.stringify(key)} (Azure blob names cannot have a segment ending in '.')`);
    return this.container.getBlockBlobClient(this.prefix + key);
  }

  /**
   * Copies `source` (of `size` bytes) onto `target` server-side. The source is named by a read SAS
   * valid for a day (an asynchronous copy reads it until done): Copy Blob From URL requires an
   * authorised source even within one account.
   */
  private async copy(source: BlockBlobClient, target: BlockBlobClient, size: number, signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const sourceUrl = await source.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      startsOn: new Date(now - 5 * 60_000), // clock skew
      expiresOn: new Date(now + 24 * 3600_000),
    });
    if (size <= this.syncCopyMaxBytes) {
      const result = await target.syncCopyFromURL(sourceUrl, { abortSignal: signal });
      if (result.copyStatus !== 'success') throw new Error(`azure: copy to ${target.name} ended ${result.copyStatus}`);
      return;
    }
    // Another copy pending on the target (a concurrent move of the same bytes) refuses ours with 409
    // PendingCopyOperation: wait for it, then copy again.
    for (let attempt = 1; ; attempt++) {
      try {
        // beginCopyFromURL sends Copy Blob and returns; its poller's own wait cannot be aborted, so poll here.
        const copy = (await target.beginCopyFromURL(sourceUrl, { abortSignal: signal })).getOperationState() as BlobBeginCopyFromUrlPollState;
        if (copy.error) throw copy.error;
        await this.awaitCopy(target, copy.copyId, copy.isCompleted ? copy.result?.copyStatus : 'pending', signal);
        return;
      } catch (err) {
        if (errorCode(err) !== 'PendingCopyOperation' || attempt === 60) throw err;
        await sleep(1_000, undefined, { signal });
      }
    }
  }

  /** Polls an asynchronous copy until it ends; an abort stops the wait, not the copy (the source stays). */
  private async awaitCopy(target: BlockBlobClient, copyId: string | undefined, status: string | undefined, signal?: AbortSignal): Promise<void> {
    let description: string | undefined;
    for (let delay = 50; status === 'pending'; delay = Math.min(delay * 2, 2_000)) {
      await sleep(delay, undefined, { signal });
      const properties = await target.getProperties({ abortSignal: signal });
      if (properties.copyId !== copyId) throw new Error(`azure: copy ${copyId} to ${target.name} was replaced by copy ${properties.copyId}`);
      status = properties.copyStatus;
      description = properties.copyStatusDescription;
    }
    if (status !== 'success') throw new Error(`azure: copy to ${target.name} ended ${status}: ${description ?? 'no description'}`);
  }

  private async removeStaleTemps(olderThanMs: number): Promise<void> {
    const cutoff = Date.now() - olderThanMs;
    for await (const item of this.container.listBlobsFlat({ prefix: `${this.prefix}${TMP_DIR}/` })) {
      if ((item.properties.lastModified?.getTime() ?? 0) > cutoff) continue;
      debug('removing stale temp blob %s', item.name);
      await this.container.getBlockBlobClient(item.name).deleteIfExists();
    }
  }
}

/**
 * The blocks of one put, staged on its own temp blob with at most `concurrency` uploads in flight.
 * The first failure aborts `work` (which stops the body and the other uploads) and is kept in `failure`.
 *
 * Block buffers are reused once their upload is done: a put allocates at most concurrency + 1 of them,
 * whatever the body's size. (With a fresh buffer per block, RSS followed the GC's lag: a 200 MiB put
 * with 8 MiB blocks grew it by 80-100 MiB; with reuse, by 25-60 MiB.)
 */
class BlockStaging {
  private readonly ids: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly free: Buffer[] = [];
  failure: unknown;

  constructor(
    readonly blob: BlockBlobClient,
    private readonly blockSize: number,
    private readonly concurrency: number,
    private readonly work: AbortController,
  ) {}

  get blocks(): number {
    return this.ids.length;
  }

  /** A block buffer not in use by any upload. */
  buffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.blockSize);
  }

  /** Starts uploading `block` (a buffer from buffer(), or the last, shorter block), after waiting for a free slot. */
  async stage(block: Buffer): Promise<void> {
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
    this.work.signal.throwIfAborted();
    // Block IDs must all have the same length within a blob; 50,000 blocks at most.
    const id = Buffer.from(String(this.ids.length).padStart(6, '0')).toString('base64');
    this.ids.push(id);
    const upload: Promise<void> = this.blob
      .stageBlock(id, block, block.length, { abortSignal: this.work.signal })
      .then(
        () => {},
        (err: unknown) => {
          if (this.failure === undefined && !this.work.signal.aborted) {
            this.failure = err;
            this.work.abort(err);
          }
        },
      )
      .finally(() => {
        this.inFlight.delete(upload);
        if (block.length === this.blockSize) this.free.push(block);
      });
    this.inFlight.add(upload);
  }

  /** Waits for every staged block, then commits them, in order, as the temp blob's content. */
  async commit(): Promise<void> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
    this.work.signal.throwIfAborted();
    await this.blob.commitBlockList(this.ids, { abortSignal: this.work.signal });
  }

  /** Resolves once no upload is in flight (none of them rejects). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}

function serviceClient(options: AzureBlobStoreOptions): BlobServiceClient {
  const { connectionString, accountUrl, accountName, accountKey } = options;
  if (connectionString !== undefined) {
    if (accountUrl !== undefined || accountName !== undefined || accountKey !== undefined) {
      throw new Error('azure: give either connectionString or accountUrl + accountName + accountKey, not both');
    }
    const service = BlobServiceClient.fromConnectionString(connectionString);
    if (!(service.credential instanceof StorageSharedKeyCredential)) {
      throw new Error('azure: the connection string must carry AccountName and AccountKey (SAS connection strings are not supported)');
    }
    return service;
  }
  if (!accountUrl || !accountName || !accountKey) {
    throw new Error('azure: give connectionString, or accountUrl + accountName + accountKey');
  }
  return new BlobServiceClient(accountUrl, new StorageSharedKeyCredential(accountName, accountKey));
}

/** Moves the first `n` bytes of `chunks` (which hold at least `n`) into `out`; returns `out`. */
function takeBytes(chunks: Buffer[], n: number, out: Buffer): Buffer {
  let filled = 0;
  while (filled < n) {
    const chunk = chunks[0]!;
    const used = Math.min(chunk.length, n - filled);
    chunk.copy(out, filled, 0, used);
    filled += used;
    if (used === chunk.length) chunks.shift();
    else chunks[0] = chunk.subarray(used);
  }
  return out;
}

/** A valid key whose segments do not end in '.' (Azure strips or mishandles such names). */
function isValidName(key: string): boolean {
  try {
    validateBlobKey(key);
  } catch {
    return false;
  }
  return key.split('/').every((segment) => !segment.endsWith('.'));
}

function isTempKey(key: string): boolean {
  return key === TMP_DIR || key.startsWith(`${TMP_DIR}/`);
}

function integerOption(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new Error(`azure: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const details = (err as { details?: { errorCode?: unknown } }).details;
  const code = details?.errorCode ?? (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** A 404 for the blob itself; a missing container (ContainerNotFound) is a misconfiguration, not an absent blob. */
function isBlobNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return statusOf(err) === 404 && (code === 'BlobNotFound' || code === undefined);
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}
