import { randomUUID } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { Readable, finished } from 'node:stream';
import type { BlobStore, ByteRange } from '../storage/blob/types.ts';
import type { MetaStore, Segment } from '../storage/meta/types.ts';
import { ContentHasher, type ChecksumAlgorithm, type ContentDigests } from './checksums.ts';

/** Where a digest's bytes live in the BlobStore. */
export function blobKey(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex || !/^[a-f0-9]{64,128}$/.test(hex)) throw new Error(`invalid digest ${digest}`);
  return `blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`;
}

export const stagingPrefix = 'staging/';

export interface IngestOptions {
  /** S3 checksums to compute besides sha256 and MD5. */
  algorithms?: Iterable<ChecksumAlgorithm>;
  /** Refuses the content (throws) before it is stored, e.g. on a checksum mismatch. */
  verify?: (digests: ContentDigests) => void | Promise<void>;
  /** Compute the MD5 (S3 ETags need it; default true). */
  md5?: boolean;
  /** Bodies longer than this are refused with EntityTooLarge, while streaming. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/**
 * The content-addressed store: bytes in, a digest out; the same bytes are stored once.
 *
 * Ingest streams the body through one hashing pass into a staging key, verifies it, refreshes the
 * blob's row (which excludes a concurrent GC of the same digest, see BlobMeta.touch), then moves it
 * under its digest unless those bytes are already there. The caller's commit of the object or part
 * that references the digest must follow within the GC grace period. A failed or aborted ingest
 * leaves nothing visible: the staging key is removed, and a crash leaves only staging keys and
 * unreferenced blobs with rows, which GC removes.
 */
export class ContentStore {
  constructor(
    readonly blobs: BlobStore,
    private readonly meta: MetaStore,
  ) {}

  async ingest(body: Readable, options: IngestOptions = {}): Promise<ContentDigests> {
    const stagingKey = `${stagingPrefix}${randomUUID()}`;
    const hasher = new ContentHasher(options.algorithms, options.maxBytes, options.md5 ?? true);
    // Piped rather than pipelined, so that a failure of the store (a backend that is down) need not
    // destroy the body (see the catch below). A body that fails or ends early still fails the hasher,
    // and so the put; the hasher's own errors reach the put, its consumer.
    hasher.on('error', () => {});
    finished(body, (err) => {
      if (err) hasher.destroy(err);
    });
    body.pipe(hasher);
    try {
      await this.blobs.put(stagingKey, hasher, options.signal, { exclusive: true }); // a fresh key: no other writer
      const digests = hasher.digests();
      await options.verify?.(digests);
      // The row comes before the bytes move into place: every blob file has a row, so GC can always
      // reclaim it, even after a crash before the commit that would reference it. An existing row may
      // be a GC candidate: touch refreshes it (waiting while GC holds it), so afterwards either the
      // bytes are gone and are stored again below, or they stay for the grace period.
      await this.meta.blobs.touch(digests.digest, digests.size);
      const finalKey = blobKey(digests.digest);
      if (await this.blobs.stat(finalKey, options.signal)) {
        await this.blobs.delete(stagingKey);
      } else {
        await this.blobs.move(stagingKey, finalKey, options.signal);
      }
      return digests;
    } catch (err) {
      body.unpipe(hasher);
      hasher.destroy();
      // A request's body is left unread, not destroyed: destroying it would take the connection the
      // error (a 503 while a backend is down) is to be answered on; the protocol layer answers, then
      // closes the connection. Any other body (a blob being copied) is released here.
      if (!(body instanceof IncomingMessage)) body.destroy();
      await this.blobs.delete(stagingKey).catch(() => {});
      throw err;
    }
  }

  /**
   * The bytes of an object made of segments, optionally a range of it (inclusive, within the object),
   * streamed segment by segment: only one blob is open at a time. The first blob is opened before this
   * resolves, so a missing blob is an error the caller can still answer, not a broken response.
   */
  async read(segments: readonly Segment[], range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const total = segments.reduce((n, s) => n + s.size, 0);
    const start = range?.start ?? 0;
    const end = range?.end ?? total - 1;
    const pieces: { digest: string; range: ByteRange }[] = [];
    let offset = 0;
    for (const segment of segments) {
      const segStart = offset;
      const segEnd = offset + segment.size - 1;
      offset += segment.size;
      if (segment.size === 0 || segEnd < start || segStart > end) continue;
      pieces.push({ digest: segment.digest, range: { start: Math.max(start, segStart) - segStart, end: Math.min(end, segEnd) - segStart } });
    }
    const open = (i: number) => this.blobs.get(blobKey(pieces[i]!.digest), pieces[i]!.range, signal);
    const first = pieces.length > 0 ? await open(0) : undefined;
    async function* concatenate(): AsyncGenerator<Buffer> {
      for (let i = 0; i < pieces.length; i++) {
        const stream = i === 0 ? first! : await open(i);
        for await (const chunk of stream) yield chunk as Buffer;
      }
    }
    return Readable.from(concatenate(), { objectMode: false });
  }
}
