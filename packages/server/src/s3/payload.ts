import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { checksumAlgorithms, checksumLength, createChecksummer, type ChecksumAlgorithm, type ContentDigests } from '../core/checksums.ts';
import { AstoreError } from '../core/errors.ts';
import { createChunkedDecoder } from './auth/chunked.ts';
import type { AuthResult } from './auth/sigv4.ts';

/** The body of a write request, decoded, with what must hold of it before it may be stored. */
export interface Payload {
  body: Readable;
  /** Algorithms whose checksums must be computed while streaming. */
  algorithms: ChecksumAlgorithm[];
  /** The S3 checksum the client asked for (header, trailer or x-amz-sdk-checksum-algorithm). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Throws BadDigest / XAmzContentSHA256Mismatch / InvalidRequest; called once the body is complete. */
  verify: (digests: ContentDigests) => void;
}

const headerOf = (algorithm: ChecksumAlgorithm) => `x-amz-checksum-${algorithm.toLowerCase()}`;

function parseAlgorithm(value: string, source: string): ChecksumAlgorithm {
  const algorithm = value.toUpperCase() as ChecksumAlgorithm;
  if (!checksumAlgorithms.includes(algorithm)) {
    throw new AstoreError('InvalidRequest', `Value for ${source} is not supported: ${value}`);
  }
  return algorithm;
}

function validBase64Digest(value: string, bytes: number): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length === bytes;
}

/**
 * Decodes the request body according to the signature's payload mode (plain, aws-chunked with chunk
 * signatures, aws-chunked with trailers), and gathers the integrity checks the request asks for:
 * Content-MD5, x-amz-content-sha256 (signed payload), x-amz-checksum-* as header or trailer.
 */
export function openPayload(req: IncomingMessage, auth: AuthResult): Payload {
  const h = req.headers;
  const contentLength = h['content-length'];
  if (contentLength === undefined && h['transfer-encoding'] === undefined) throw new AstoreError('MissingContentLength');

  const mode = auth.kind === 'signed' ? auth.payload : ({ kind: 'unsigned' } as const);
  const streaming = mode.kind === 'streaming-signed' || mode.kind === 'streaming-unsigned-trailer';
  const trailerNames = String(h['x-amz-trailer'] ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const hasTrailer = mode.kind === 'streaming-unsigned-trailer' || (mode.kind === 'streaming-signed' && mode.trailer);
  if (trailerNames.length > 0 && !hasTrailer) throw new AstoreError('InvalidRequest', 'x-amz-trailer requires a trailer payload mode in x-amz-content-sha256');

  // Which S3 checksum, if any: a header value, a declared trailer, or x-amz-sdk-checksum-algorithm.
  let checksumAlgorithm: ChecksumAlgorithm | undefined;
  let headerValue: string | undefined;
  for (const algorithm of checksumAlgorithms) {
    const value = h[headerOf(algorithm)];
    if (typeof value === 'string') {
      if (checksumAlgorithm) throw new AstoreError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
      if (!validBase64Digest(value, checksumLength[algorithm])) throw new AstoreError('InvalidDigest', `Value for ${headerOf(algorithm)} header is invalid.`);
      checksumAlgorithm = algorithm;
      headerValue = value;
    }
  }
  const checksumTrailer = trailerNames.find((n) => n.startsWith('x-amz-checksum-'));
  if (checksumTrailer) {
    if (checksumAlgorithm) throw new AstoreError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    checksumAlgorithm = parseAlgorithm(checksumTrailer.slice('x-amz-checksum-'.length), 'x-amz-trailer');
  }
  const sdkAlgorithm = h['x-amz-sdk-checksum-algorithm'];
  if (typeof sdkAlgorithm === 'string' && !checksumAlgorithm) checksumAlgorithm = parseAlgorithm(sdkAlgorithm, 'x-amz-sdk-checksum-algorithm');

  const contentMd5 = h['content-md5'];
  if (contentMd5 !== undefined && !validBase64Digest(String(contentMd5), 16)) throw new AstoreError('InvalidDigest');

  let body: Readable = req;
  let trailers: () => Record<string, string> = () => ({});
  if (streaming) {
    const decodedLength = h['x-amz-decoded-content-length'];
    if (decodedLength === undefined && mode.kind === 'streaming-signed') throw new AstoreError('MissingContentLength', 'x-amz-decoded-content-length is required for aws-chunked uploads');
    const decoder = createChunkedDecoder({
      signing: mode.kind === 'streaming-signed' && auth.kind === 'signed' ? auth.chunkSigning : undefined,
      trailer: hasTrailer,
      expectedTrailers: trailerNames,
      decodedLength: decodedLength === undefined ? undefined : Number(decodedLength),
    });
    req.on('error', (err) => decoder.destroy(err));
    body = req.pipe(decoder);
    trailers = () => decoder.trailers();
  }

  return {
    body,
    algorithms: checksumAlgorithm ? [checksumAlgorithm] : [],
    checksumAlgorithm,
    verify(digests) {
      if (contentMd5 !== undefined && Buffer.from(String(contentMd5), 'base64').toString('hex') !== digests.md5Hex) {
        throw new AstoreError('BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
      if (mode.kind === 'signed' && mode.sha256 !== digests.sha256Hex) {
        throw new AstoreError('XAmzContentSHA256Mismatch', undefined, { ClientComputedContentSHA256: mode.sha256, S3ComputedContentSHA256: digests.sha256Hex });
      }
      if (!checksumAlgorithm) return;
      const expected = headerValue ?? trailers()[headerOf(checksumAlgorithm)];
      if (expected === undefined) {
        if (checksumTrailer) throw new AstoreError('InvalidRequest', `The trailer ${checksumTrailer} was declared but not sent`);
        return; // only x-amz-sdk-checksum-algorithm: compute and store, nothing to compare
      }
      if (!validBase64Digest(expected, checksumLength[checksumAlgorithm])) throw new AstoreError('InvalidDigest', `Value for ${headerOf(checksumAlgorithm)} is invalid.`);
      if (expected !== digests.checksums[checksumAlgorithm]) {
        throw new AstoreError('BadDigest', `The ${checksumAlgorithm} you specified did not match the calculated checksum.`);
      }
    },
  };
}

/**
 * Reads a small request body (an XML document: DeleteObjects, CompleteMultipartUpload, CreateBucket)
 * and verifies it before anything acts on it: against the signed x-amz-content-sha256, Content-MD5 and,
 * when `bodyChecksum` is set, the x-amz-checksum-* header. Otherwise a DeleteObjects body could be
 * swapped under its signature. CompleteMultipartUpload must not set `bodyChecksum`: there the header
 * is the whole object's checksum, not the document's. Bodies over `maxBytes` are MalformedXML.
 */
export async function readDocument(req: IncomingMessage, auth: AuthResult, maxBytes: number, options: { bodyChecksum?: boolean } = {}): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new AstoreError('MalformedXML', `The XML you provided is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  const mode = auth.kind === 'signed' ? auth.payload : undefined;
  if (mode?.kind === 'signed') {
    const sha256 = createHash('sha256').update(body).digest('hex');
    if (sha256 !== mode.sha256) throw new AstoreError('XAmzContentSHA256Mismatch', undefined, { ClientComputedContentSHA256: mode.sha256, S3ComputedContentSHA256: sha256 });
  }
  const contentMd5 = req.headers['content-md5'];
  if (contentMd5 !== undefined) {
    if (!validBase64Digest(String(contentMd5), 16)) throw new AstoreError('InvalidDigest');
    if (Buffer.from(String(contentMd5), 'base64').toString('hex') !== createHash('md5').update(body).digest('hex')) {
      throw new AstoreError('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
  }
  for (const algorithm of options.bodyChecksum ? checksumAlgorithms : []) {
    const expected = req.headers[headerOf(algorithm)];
    if (typeof expected !== 'string') continue;
    if (!validBase64Digest(expected, checksumLength[algorithm])) throw new AstoreError('InvalidDigest', `Value for ${headerOf(algorithm)} header is invalid.`);
    const checksummer = createChecksummer(algorithm);
    checksummer.update(body);
    if (checksummer.digest().toString('base64') !== expected) {
      throw new AstoreError('BadDigest', `The ${algorithm} you specified did not match the calculated checksum.`);
    }
  }
  return body.toString('utf8');
}
