import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { crc32, crc32c } from '@node-rs/crc32';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import type { ChecksumAlgorithm } from '../storage/meta/types.ts';
import { AstoreError } from './errors.ts';

export type { ChecksumAlgorithm };
export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** Incremental checksum whose result is the big-endian digest bytes, as S3 encodes it (base64). */
interface Checksummer {
  update(chunk: Buffer): void;
  digest(): Buffer;
}

class CrcChecksummer implements Checksummer {
  private state = 0;
  constructor(private readonly fn: (input: Uint8Array, initial?: number) => number) {}
  update(chunk: Buffer): void {
    this.state = this.fn(chunk, this.state);
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.state >>> 0);
    return out;
  }
}

class Crc64Checksummer implements Checksummer {
  private readonly crc = new Crc64NvmeJs();
  update(chunk: Buffer): void {
    this.crc.update(chunk);
  }
  digest(): Buffer {
    // digest() of the SDK class is async only by signature; its state is two 32-bit halves.
    const { c1, c2 } = this.crc as unknown as { c1: number; c2: number };
    const out = Buffer.alloc(8);
    out.writeUInt32BE((c1 ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((c2 ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}

class HashChecksummer implements Checksummer {
  private readonly hash: Hash;
  constructor(algorithm: string) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  digest(): Buffer {
    return this.hash.digest();
  }
}

export function createChecksummer(algorithm: ChecksumAlgorithm): Checksummer {
  switch (algorithm) {
    case 'CRC32':
      return new CrcChecksummer(crc32);
    case 'CRC32C':
      return new CrcChecksummer(crc32c);
    case 'CRC64NVME':
      return new Crc64Checksummer();
    case 'SHA1':
      return new HashChecksummer('sha1');
    case 'SHA256':
      return new HashChecksummer('sha256');
  }
}

export interface ContentDigests {
  size: number;
  /** "sha256:<hex>", the blob's name. */
  digest: string;
  sha256Hex: string;
  md5Hex: string;
  /** base64 digests for the requested S3 checksum algorithms. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/**
 * A pass-through stream that computes, in the one pass every byte makes, the sha256 that names the
 * blob, the MD5 that S3 uses as ETag and any requested S3 checksums. `digests()` is valid after 'end'
 * (i.e. once the whole body went through).
 */
export class ContentHasher extends Transform {
  private readonly sha256 = createHash('sha256');
  private readonly md5 = createHash('md5');
  private readonly extra: [ChecksumAlgorithm, Checksummer][];
  private size = 0;
  private result: ContentDigests | undefined;

  constructor(
    algorithms: Iterable<ChecksumAlgorithm> = [],
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {
    super();
    this.extra = [...new Set(algorithms)].map((a) => [a, createChecksummer(a)]);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      done(new AstoreError('EntityTooLarge', `Your proposed upload exceeds the maximum allowed size of ${this.maxBytes} bytes`));
      return;
    }
    this.sha256.update(chunk);
    this.md5.update(chunk);
    for (const [, c] of this.extra) c.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256Hex = this.sha256.digest('hex');
    this.result = {
      size: this.size,
      digest: `sha256:${sha256Hex}`,
      sha256Hex,
      md5Hex: this.md5.digest('hex'),
      checksums: Object.fromEntries(this.extra.map(([a, c]) => [a, c.digest().toString('base64')])),
    };
    done();
  }

  digests(): ContentDigests {
    if (!this.result) throw new Error('ContentHasher: body not complete');
    return this.result;
  }
}

/**
 * S3 COMPOSITE checksum of a multipart object: the checksum of the concatenated raw part checksums,
 * base64, suffixed with "-N".
 */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partChecksums: string[]): string {
  const c = createChecksummer(algorithm);
  for (const p of partChecksums) c.update(Buffer.from(p, 'base64'));
  return `${c.digest().toString('base64')}-${partChecksums.length}`;
}

/** S3 multipart ETag: md5 of the concatenated binary part MD5s, hex, then "-N". Unquoted. */
export function multipartEtag(partMd5Hexes: string[]): string {
  const md5 = createHash('md5');
  for (const p of partMd5Hexes) md5.update(Buffer.from(p, 'hex'));
  return `${md5.digest('hex')}-${partMd5Hexes.length}`;
}

/** Expected length in bytes of the raw digest of each algorithm, to validate client-sent values. */
export const checksumLength: Record<ChecksumAlgorithm, number> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };
