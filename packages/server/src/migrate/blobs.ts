import { createHash, randomUUID } from 'node:crypto';
import { Transform, pipeline } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { type Kysely, sql } from 'kysely';
import { blobKey, stagingPrefix } from '../core/content.ts';
import { BlobNotFoundError, type BlobStore } from '../storage/blob/types.ts';
import type { Database } from '../storage/meta/db.ts';

const debug = debuglog('astore:migrate:blobs');

/** What the blob copy did. */
export interface BlobReport {
  /** Blobs the source MetaStore lists, and their bytes. */
  total: number;
  totalBytes: number;
  /** Copied by this run (verified, then moved to their key). */
  copied: number;
  copiedBytes: number;
  /** Already at their key in the target with the right size (an earlier run's): not read again. */
  present: number;
  /** Of `copied`: the target held the key with another size, and it was replaced. */
  replaced: number;
  /** Source bytes that do not hash to their digest (or are not the listed size): not copied. */
  corrupt: CorruptBlob[];
  /** Listed in the source MetaStore, absent from the source BlobStore. */
  missing: string[];
  /** Failed for another reason (after retries); the next run tries them again. */
  failed: { digest: string; error: string }[];
  /** Staging keys of an interrupted earlier run, removed from the target. */
  stagingRemoved: number;
  /** Wall time of the copy, and the copy rate over it (bytes copied, not skipped). */
  durationMs: number;
  bytesPerSecond: number;
}

export interface CorruptBlob {
  digest: string;
  /** What the bytes hash to. */
  actualDigest: string;
  size: number;
  actualSize: number;
}

export interface BlobProgress {
  /** Blobs settled (copied, present or failed) of `total`. */
  done: number;
  total: number;
  /** Bytes settled, of `totalBytes` (present blobs count whole; the ETA is from these). */
  doneBytes: number;
  totalBytes: number;
  copied: number;
  present: number;
  /** Corrupt, missing and failed blobs so far. */
  problems: number;
  /** Bytes moved so far, including blobs in flight: the rate is from these. */
  transferredBytes: number;
}

export interface BlobCopyOptions {
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  /** Attempts per blob for errors other than corrupt or missing source bytes (default 3). */
  attempts?: number;
  signal?: AbortSignal;
  onProgress?: (progress: BlobProgress) => void;
}

/** Where this command stages copies: under the server's staging prefix, so the target's GC also removes leftovers. */
export const migrateStagingPrefix = `${stagingPrefix}migrate-`;

const pageSize = 1000;
const hashAlgorithms: ReadonlySet<string> = new Set(['sha256', 'sha512']);

/**
 * Copies every blob the source MetaStore lists (`blobs` table) that the target BlobStore lacks.
 *
 * The MetaStore's list, not a listing of the source BlobStore: it is exactly the set the copied
 * metadata references, with sizes known up front (progress, ETA); bytes without a row (remains of a
 * crash, staging keys) are garbage and are left behind.
 *
 * Each blob streams source get → hash → target put at a staging key; only when the bytes hash to
 * the digest (and have the listed size) is the staging key moved to `blobs/<algorithm>/<xx>/<hex>`.
 * So a blob at its key in the target is always complete and verified, an interruption at any point
 * leaves at most a staging key (removed by the next run, or by the target's GC), and "present at its
 * key with the right size" is a safe test for "already copied". Nothing is held in memory beyond the
 * streams' buffers, `concurrency` blobs at a time.
 */
export async function copyBlobs(source: Kysely<Database>, sourceStore: BlobStore, targetStore: BlobStore, options: BlobCopyOptions = {}): Promise<BlobReport> {
  const started = Date.now();
  const signal = options.signal;
  const attempts = options.attempts ?? 3;
  let stagingRemoved = 0;
  for await (const leftover of targetStore.list(migrateStagingPrefix, signal)) {
    await targetStore.delete(leftover.key, signal);
    stagingRemoved++;
  }

  const { rows } = await sql<{ n: number | string; bytes: number | string | null }>`select count(*) as n, sum(size) as bytes from blobs`.execute(source);
  const report: BlobReport = {
    total: Number(rows[0]?.n ?? 0),
    totalBytes: Number(rows[0]?.bytes ?? 0),
    copied: 0,
    copiedBytes: 0,
    present: 0,
    replaced: 0,
    corrupt: [],
    missing: [],
    failed: [],
    stagingRemoved,
    durationMs: 0,
    bytesPerSecond: 0,
  };
  const progress: BlobProgress = { done: 0, total: report.total, doneBytes: 0, totalBytes: report.totalBytes, copied: 0, present: 0, problems: 0, transferredBytes: 0 };
  const notify = () => options.onProgress?.(progress);
  notify();

  const copyOne = async (blob: { digest: string; size: number }): Promise<void> => {
    const key = blobKey(blob.digest);
    const held = await targetStore.stat(key, signal);
    if (held?.size === blob.size) {
      report.present++;
      progress.present++;
      return;
    }
    for (let attempt = 1; ; attempt++) {
      let moved = 0;
      try {
        const outcome = await transfer(sourceStore, targetStore, blob, key, (n) => {
          moved += n;
          progress.transferredBytes += n;
          notify();
        }, signal);
        if (outcome) {
          debug('%s: the source bytes hash to %s (%d bytes, %d listed): not copied', blob.digest, outcome.actualDigest, outcome.actualSize, outcome.size);
          report.corrupt.push(outcome);
          progress.problems++;
        } else {
          report.copied++;
          report.copiedBytes += blob.size;
          if (held) report.replaced++;
          progress.copied++;
        }
        return;
      } catch (err) {
        progress.transferredBytes -= moved;
        if (signal?.aborted) throw err;
        if (err instanceof BlobNotFoundError) {
          report.missing.push(blob.digest);
          progress.problems++;
          return;
        }
        debug('%s: attempt %d of %d failed: %o', blob.digest, attempt, attempts, err);
        if (attempt >= attempts) {
          report.failed.push({ digest: blob.digest, error: (err as Error).message ?? String(err) });
          progress.problems++;
          return;
        }
        await delay(250 * 2 ** (attempt - 1), undefined, { signal });
      }
    }
  };

  // Async generators queue concurrent next() calls, so the workers can share one.
  const queue = listBlobs(source);
  const worker = async (): Promise<void> => {
    for (let next = await queue.next(); !next.done; next = await queue.next()) {
      if (signal?.aborted) return;
      const blob = next.value;
      try {
        if (!hashAlgorithms.has(blob.digest.split(':')[0]!)) throw new Error(`unsupported digest algorithm (sha256 or sha512 expected)`);
        await copyOne(blob);
      } catch (err) {
        if (signal?.aborted) return;
        report.failed.push({ digest: blob.digest, error: (err as Error).message ?? String(err) });
        progress.problems++;
      }
      progress.done++;
      progress.doneBytes += blob.size;
      notify();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  } finally {
    await queue.return(undefined);
  }
  report.durationMs = Date.now() - started;
  report.bytesPerSecond = report.durationMs > 0 ? Math.round((report.copiedBytes / report.durationMs) * 1000) : 0;
  return report;
}

/** Every blob row, in digest order, a page at a time. */
async function* listBlobs(db: Kysely<Database>): AsyncGenerator<{ digest: string; size: number }> {
  let after: string | undefined;
  for (;;) {
    let query = db.selectFrom('blobs').select(['digest', 'size']);
    if (after !== undefined) query = query.where('digest', '>', after);
    const page = await query.orderBy('digest').limit(pageSize).execute();
    yield* page;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.digest;
  }
}

/**
 * One attempt at one blob: returns null when copied and verified, the mismatch when the source bytes
 * are not what the digest says (the staging copy is then removed). Throws on any other failure,
 * BlobNotFoundError when the source lacks the blob, after removing the staging copy.
 */
async function transfer(
  sourceStore: BlobStore,
  targetStore: BlobStore,
  blob: { digest: string; size: number },
  key: string,
  onBytes: (n: number) => void,
  signal?: AbortSignal,
): Promise<CorruptBlob | null> {
  const [algorithm, hex] = blob.digest.split(':') as [string, string];
  const body = await sourceStore.get(key, undefined, signal);
  const hash = createHash(algorithm);
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  // A source error destroys the meter, and the put fails with it.
  pipeline(body, meter, () => {});
  const staging = `${migrateStagingPrefix}${randomUUID()}`;
  try {
    await targetStore.put(staging, meter, signal);
    const actual = hash.digest('hex');
    if (actual !== hex || size !== blob.size) {
      await targetStore.delete(staging);
      return { digest: blob.digest, actualDigest: `${algorithm}:${actual}`, size: blob.size, actualSize: size };
    }
    await targetStore.move(staging, key, signal);
    return null;
  } catch (err) {
    body.destroy();
    await targetStore.delete(staging).catch(() => {});
    throw err;
  }
}
