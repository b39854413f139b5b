import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { FormatError } from '../types.ts';

/**
 * The byte-level helpers every format shares. Each takes `what` (a phrase naming the field, e.g.
 * "the DSSE payload") so that a FormatError says exactly which part of a document is wrong.
 */

/** Standard or URL-safe alphabet, padded or not (DSSE and protobuf JSON accept both). */
const base64Pattern = /^[A-Za-z0-9+/_-]*={0,2}$/;
const base64UrlPattern = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes base64 strictly: a character outside the alphabet, misplaced padding or an impossible
 * length is a FormatError (Buffer.from(..., 'base64') would silently skip such characters).
 */
export function decodeBase64(text: unknown, what: string): Buffer {
  if (typeof text !== 'string') throw new FormatError(`${what} must be a base64 string`);
  const body = text.replace(/=+$/, '');
  if (!base64Pattern.test(text) || text.length - body.length > 2 || body.length % 4 === 1 || (text.length !== body.length && text.length % 4 !== 0)) {
    throw new FormatError(`${what} is not valid base64`);
  }
  return Buffer.from(body.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Decodes unpadded base64url (JWS, RFC 7515 §2). */
export function decodeBase64Url(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !base64UrlPattern.test(text) || text.length % 4 === 1) throw new FormatError(`${what} is not valid base64url`);
  return Buffer.from(text, 'base64url');
}

/** True when the whole text is one base64 token (a bare signature file), surrounding whitespace aside. */
export function looksLikeBase64(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length > 0 && base64Pattern.test(trimmed) && trimmed.replace(/=+$/, '').length % 4 !== 1;
}

/** Parses JSON bytes (a UTF-8 byte-order mark aside); a document that is not JSON is a FormatError naming it. */
export function parseJson(bytes: Buffer | string, what: string): unknown {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    throw new FormatError(`${what} is not JSON: ${(err as Error).message}`);
  }
}

/** Validates a value with a zod schema; the FormatError names the first offending path. */
export function checkShape<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length > 0 ? ` at ${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '')}` : '';
  throw new FormatError(`${what} is malformed${path}: ${issue.message}`);
}

export type DigestAlgorithm = 'sha256' | 'sha384' | 'sha512';

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Parses "sha256:<hex>" (or sha384/sha512) as OCI writes digests; lower-case hex only. */
export function parseDigest(digest: unknown, what: string): { algorithm: DigestAlgorithm; digest: Buffer } {
  const m = typeof digest === 'string' ? /^(sha256|sha384|sha512):([0-9a-f]+)$/.exec(digest) : null;
  const algorithm = m?.[1] as DigestAlgorithm | undefined;
  if (!m || !algorithm || m[2]!.length !== hexLength[algorithm]) {
    throw new FormatError(`${what} must be a digest such as sha256:<64 hex digits>, not ${JSON.stringify(digest)}`);
  }
  return { algorithm, digest: Buffer.from(m[2]!, 'hex') };
}

/** "sha256:<hex>" of a digest's bytes. */
export function formatDigest(algorithm: DigestAlgorithm, digest: Buffer): string {
  return `${algorithm}:${digest.toString('hex')}`;
}

export function sha256Of(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The DER bodies of the PEM blocks with this label, in order ("CERTIFICATE" for a chain). */
export function pemBlocks(pem: string, label: string, what: string): Buffer[] {
  const blocks: Buffer[] = [];
  const pattern = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  for (const m of pem.matchAll(pattern)) blocks.push(decodeBase64(m[1]!.replace(/\s+/g, ''), `${what} (PEM block ${blocks.length + 1})`));
  if (blocks.length === 0) throw new FormatError(`${what} holds no PEM ${label}`);
  return blocks;
}
