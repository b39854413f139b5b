// Object bodies: generated while they are sent, never held whole in memory, and checkable on the way back.
//
// Every object is one shared 1 MiB pseudo-random pattern repeated, with its first STAMP_LEN bytes
// replaced by a stamp unique to (run, key). The stamp matters: astore is content-addressed, and objects
// with identical bytes would be deduplicated, so it would write less than MinIO for the same workload.
// The pattern is pseudo-random so that no layer (filesystem, disk) can compress it.

import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';

export const PATTERN_LEN = 1024 * 1024;
/** Bytes per write; divides PATTERN_LEN so a chunk never wraps around the pattern. */
export const CHUNK_LEN = 256 * 1024;
export const STAMP_LEN = 32;

/** The same bytes in every process (the loopback sink regenerates them): xorshift32 from a fixed seed. */
export const PATTERN: Buffer = (() => {
  const buf = Buffer.allocUnsafe(PATTERN_LEN);
  let x = 0x9e3779b9;
  for (let i = 0; i < PATTERN_LEN; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  return buf;
})();

export function stampOf(runId: string, key: string): Buffer {
  return createHash('sha256').update(`${runId}\0${key}`).digest();
}

/**
 * Chunks of an object of `size` bytes whose first bytes are `stamp`. Yields views of PATTERN (no copy),
 * except the first chunk, copied once to carry the stamp.
 */
export function* bodyChunks(size: number, stamp: Buffer): Generator<Buffer> {
  let offset = 0;
  while (offset < size) {
    const len = Math.min(CHUNK_LEN, size - offset);
    const start = offset % PATTERN_LEN;
    let chunk = PATTERN.subarray(start, start + len);
    if (offset === 0) {
      chunk = Buffer.from(chunk);
      stamp.copy(chunk, 0, 0, Math.min(STAMP_LEN, len));
    }
    yield chunk;
    offset += len;
  }
}

/** Writes the body to `out` honouring backpressure, then ends it. Rejects if `out` fails or closes early. */
export async function writeBody(out: Writable, size: number, stamp: Buffer, signal?: AbortSignal): Promise<void> {
  for (const chunk of bodyChunks(size, stamp)) {
    if (out.destroyed) throw new Error('body stream closed before the whole body was written');
    if (!out.write(chunk)) await drained(out, signal);
  }
  out.end();
}

/** Resolves on 'drain'; rejects if the stream errors or closes first (a reset connection), or on abort. */
function drained(out: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = (): void => done();
    const onError = (err: Error): void => done(err);
    const onClose = (): void => done(new Error('body stream closed before the whole body was written'));
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export type VerifyMode = 'off' | 'fast' | 'full';

/**
 * Checks a received body chunk by chunk. `fast` compares the stamp and 16 bytes at the start of every
 * chunk (a misplaced or foreign chunk fails; a flipped bit in the middle may pass); `full` memcmps every
 * byte against the pattern (several GB/s, still cheap next to the network path).
 */
export class BodyVerifier {
  private offset = 0;
  private failure: string | undefined;

  constructor(
    private readonly mode: VerifyMode,
    private readonly stamp: Buffer,
  ) {}

  get received(): number {
    return this.offset;
  }

  update(chunk: Buffer): void {
    if (this.mode !== 'off' && this.failure === undefined) {
      const checkLen = this.mode === 'full' ? chunk.length : Math.min(16, chunk.length);
      if (!this.matches(chunk, checkLen)) this.failure = `body differs near byte ${this.offset}`;
      // fast mode: the stamp region is always compared in full, whatever the chunk boundaries.
      else if (this.mode === 'fast' && this.offset < STAMP_LEN && chunk.length > checkLen) {
        const n = Math.min(chunk.length, STAMP_LEN - this.offset);
        if (!this.matches(chunk, n)) this.failure = `stamp differs near byte ${this.offset}`;
      }
    }
    this.offset += chunk.length;
  }

  /** Throws unless exactly `size` bytes arrived and every checked byte matched. */
  finish(size: number): void {
    if (this.offset !== size) throw new Error(`body length ${this.offset}, expected ${size}`);
    if (this.failure !== undefined) throw new Error(this.failure);
  }

  /** Compares chunk[0, len) with the expected bytes at this.offset. */
  private matches(chunk: Buffer, len: number): boolean {
    let i = 0;
    while (i < len) {
      const pos = this.offset + i;
      let expected: Buffer;
      if (pos < STAMP_LEN) {
        expected = this.stamp.subarray(pos, STAMP_LEN);
      } else {
        const start = pos % PATTERN_LEN;
        expected = PATTERN.subarray(start);
      }
      const n = Math.min(expected.length, len - i);
      if (chunk.compare(expected, 0, n, i, i + n) !== 0) return false;
      i += n;
    }
    return true;
  }
}
