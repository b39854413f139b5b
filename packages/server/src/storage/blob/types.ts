import type { Readable } from 'node:stream';

/**
 * A BlobStore moves bytes by key. It knows nothing of digests, buckets or repositories: content
 * addressing, dedupe, upload sessions and GC live once in core/. Keys are relative, '/'-separated,
 * made of [A-Za-z0-9._:/-] segments, never '.' or '..', never absolute (see validateBlobKey).
 *
 * Every driver passes the conformance suite in ./conformance.ts against the real backend.
 */
export interface BlobStore {
  /** Driver name, for logs and metrics ("fs", "s3", ...). */
  readonly name: string;

  /** Size of the blob at `key`, or null when absent. */
  stat(key: string, signal?: AbortSignal): Promise<BlobStat | null>;

  /**
   * A stream of the bytes at `key`, from `range.start` to `range.end` inclusive when given.
   * Throws BlobNotFoundError when absent. The range must lie within the blob (callers check).
   */
  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;

  /**
   * Stores the whole of `body` at `key`, replacing any blob there. Atomic: until the promise resolves
   * no reader sees the new bytes, and a failed, aborted or crashed put leaves the old blob (or nothing)
   * in place, never a partial one. Durable once resolved (fsync or the backend's equivalent).
   * If `body` errors, put rejects with that error.
   */
  put(key: string, body: Readable, signal?: AbortSignal, options?: PutOptions): Promise<BlobStat>;

  /**
   * Moves the blob at `from` to `to`, replacing any blob at `to`; atomic for readers of `to`, and
   * `to` is durable once resolved. After a crash `from` may still exist too (a complete copy).
   * Throws BlobNotFoundError when `from` is absent.
   */
  move(from: string, to: string, signal?: AbortSignal): Promise<void>;

  /** Deletes the blob at `key`; deleting an absent key is not an error. */
  delete(key: string, signal?: AbortSignal): Promise<void>;

  /** Every key under `prefix` (a key prefix, not only a directory), in no particular order. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing>;

  /**
   * Optional: a URL from which a plain HTTP GET, without credentials, reads the blob at `key` (Range
   * headers honoured), valid for at most `expiresInSeconds` (a driver may cap it lower). It does not
   * check that the blob exists: fetching the URL of an absent key fails at fetch time (404). Anyone
   * holding the URL can read the blob until it expires. Absent on drivers that cannot hand out URLs (fs)
   * or where the deployment did not enable them; callers then stream through `get`.
   */
  presignGet?(key: string, expiresInSeconds: number): Promise<string>;

  /** Releases resources (connections, timers). */
  close(): Promise<void>;
}

export interface PutOptions {
  /**
   * The caller guarantees no other put or move targets this key while this put runs (a fresh staging
   * key). A driver may then build the blob in place, e.g. stage blocks on the key itself, instead of
   * first building it elsewhere and copying it over (what protects concurrent writers of one key).
   */
  exclusive?: boolean;
}

export interface BlobStat {
  size: number;
}

export interface BlobListing {
  key: string;
  size: number;
  /** When the blob was last written, where the backend tells. */
  modifiedAt?: Date;
}

/** Inclusive byte range, as in HTTP Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export class BlobNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`blob not found: ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

const keySegment = /^[A-Za-z0-9._:-]+$/;

/** Throws unless `key` is a safe relative key; drivers call this before touching the backend. */
export function validateBlobKey(key: string): void {
  const segments = key.split('/');
  const ok =
    key.length > 0 &&
    key.length <= 512 &&
    segments.every((s) => s !== '.' && s !== '..' && keySegment.test(s));
  if (!ok) throw new Error(`invalid blob key: ${JSON.stringify(key)}`);
}
