import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { crc32, crc32c } from '@node-rs/crc32';
import { Crc64Nvme } from './crc64nvme.ts';
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
      return new Crc64Nvme();
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
  /** '' when not computed (IngestOptions.md5 false). */
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
  private readonly md5: Hash | undefined;
  private readonly extra: [ChecksumAlgorithm, Checksummer][];
  private size = 0;
  private result: ContentDigests | undefined;

  constructor(
    algorithms: Iterable<ChecksumAlgorithm> = [],
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    /** The MD5 costs more than the sha256 (on CPUs with SHA extensions); only S3 ETags need it. */
    md5 = true,
  ) {
    super();
    this.md5 = md5 ? createHash('md5') : undefined;
    this.extra = [...new Set(algorithms)].map((a) => [a, createChecksummer(a)]);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      done(new AstoreError('EntityTooLarge', `Your proposed upload exceeds the maximum allowed size of ${this.maxBytes} bytes`));
      return;
    }
    this.sha256.update(chunk);
    this.md5?.update(chunk);
    for (const [, c] of this.extra) c.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256Hex = this.sha256.digest('hex');
    this.result = {
      size: this.size,
      digest: `sha256:${sha256Hex}`,
      sha256Hex,
      md5Hex: this.md5?.digest('hex') ?? '',
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

/** Reflected polynomials and widths of the CRCs S3 can combine (all with init = xorout = all ones). */
const crcParameters: Partial<Record<ChecksumAlgorithm, { width: bigint; poly: bigint }>> = {
  CRC32: { width: 32n, poly: 0xedb88320n },
  CRC32C: { width: 32n, poly: 0x82f63b78n },
  CRC64NVME: { width: 64n, poly: 0x9a6c9329ac4bc9b5n },
};

export function isCombinableCrc(algorithm: ChecksumAlgorithm): boolean {
  return crcParameters[algorithm] !== undefined;
}

/**
 * The CRC of a concatenation from the CRCs and lengths of its pieces, without the bytes (zlib's
 * crc32_combine generalised to any reflected CRC): crc(A‖B) = crc(A)·x^(8·|B|) mod P ⊕ crc(B).
 * This is how an S3 FULL_OBJECT checksum of a multipart object is computed from its parts.
 */
export function combineCrc(algorithm: ChecksumAlgorithm, parts: { checksum: string; size: number }[]): string {
  const params = crcParameters[algorithm];
  if (!params) throw new Error(`${algorithm} cannot be combined`);
  const { width, poly } = params;
  const top = 1n << (width - 1n);
  const multiplyModP = (a: bigint, b: bigint): bigint => {
    let product = 0n;
    for (let m = top; m > 0n; m >>= 1n) {
      if (a & m) {
        product ^= b;
        if ((a & (m - 1n)) === 0n) break;
      }
      b = b & 1n ? (b >> 1n) ^ poly : b >> 1n;
    }
    return product;
  };
  // powers[k] = x^(2^k) mod P, in the reflected representation (x^0 is the top bit).
  const powers: bigint[] = [top >> 1n];
  for (let k = 1; k < 64; k++) powers.push(multiplyModP(powers[k - 1]!, powers[k - 1]!));
  const xToThe8n = (bytes: number): bigint => {
    let p = top;
    let n = BigInt(bytes);
    for (let k = 3; n > 0n; n >>= 1n, k++) if (n & 1n) p = multiplyModP(powers[k]!, p);
    return p;
  };
  const bytes = Number(width / 8n);
  const read = (b64: string) => BigInt(`0x${Buffer.from(b64, 'base64').toString('hex') || '0'}`);
  let crc = 0n;
  parts.forEach((part, i) => {
    const value = read(part.checksum);
    crc = i === 0 ? value : multiplyModP(xToThe8n(part.size), crc) ^ value;
  });
  return Buffer.from(crc.toString(16).padStart(bytes * 2, '0'), 'hex').toString('base64');
}
