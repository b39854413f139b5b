import { AstoreError } from './errors.ts';

/** Paths the server itself serves on the same port; a bucket cannot take their names. */
export const reservedBucketNames = new Set(['v2', 'api', 'metrics', 'healthz', 'readyz', 'ui']);

// S3 requires 3-63 characters; astore also accepts 1 and 2 (documented difference), so that short
// names such as `s3://b` work as they do in many local setups.
const bucketPattern = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;
const ipv4Pattern = /^\d{1,3}(\.\d{1,3}){3}$/;

/** S3 general-purpose bucket naming rules, plus astore's reserved names. Throws InvalidBucketName. */
export function validateBucketName(name: string): void {
  const why =
    !bucketPattern.test(name) ? 'must be 1-63 characters of a-z, 0-9, dots and hyphens, starting and ending with a letter or digit'
    : name.includes('..') ? 'must not contain two adjacent periods'
    : name.includes('.-') || name.includes('-.') ? 'must not contain a period next to a hyphen'
    : ipv4Pattern.test(name) ? 'must not be formatted as an IP address'
    : name.startsWith('xn--') || name.startsWith('sthree-') ? 'must not start with a reserved prefix'
    : name.endsWith('-s3alias') || name.endsWith('--ol-s3') ? 'must not end with a reserved suffix'
    : reservedBucketNames.has(name) ? 'is reserved by astore'
    : undefined;
  if (why) throw new AstoreError('InvalidBucketName', `The specified bucket is not valid: ${why}`, { BucketName: name });
}

export const maxKeyBytes = 1024;

/**
 * Object keys: 1 to 1024 bytes of UTF-8. Keys are never used as file paths (blobs are named by
 * digest), but NUL and unpaired surrogates (not encodable as UTF-8) are refused.
 */
export function validateObjectKey(key: string): void {
  if (key.length === 0) throw new AstoreError('InvalidArgument', 'Object key must not be empty');
  if (Buffer.byteLength(key, 'utf8') > maxKeyBytes) {
    throw new AstoreError('KeyTooLongError', `Your key is too long (maximum ${maxKeyBytes} bytes of UTF-8)`, { Key: key.slice(0, 64) });
  }
  if (key.includes('\0')) throw new AstoreError('InvalidArgument', 'Object key must not contain the NUL character');
  if (!key.isWellFormed()) throw new AstoreError('InvalidArgument', 'Object key must be valid UTF-8');
}
