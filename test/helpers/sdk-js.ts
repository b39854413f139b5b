import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { CreateBucketCommand, S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import { accessKeyId, region, secretKey, startServer, type TestServer } from './server.ts';

/**
 * The AWS SDK for JavaScript v3 pointed at a test server: path-style, no retries (a 5xx or a wrong
 * answer shows up as it is), and the SDK's own checksum defaults stated so the environment cannot
 * change them.
 */
export function sdkClient(endpoint: string, config: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_SUPPORTED',
    responseChecksumValidation: 'WHEN_SUPPORTED',
    ...config,
  });
}

type ParsedError = S3ServiceException & { Code?: string; RequestId?: string };

/** Awaits a call that must fail with S3 error `code` (the SDK's error name) and HTTP `status`. */
export async function expectS3Error(call: Promise<unknown>, code: string, status: number): Promise<ParsedError> {
  let failure: unknown;
  try {
    await call;
  } catch (err) {
    failure = err;
  }
  assert.ok(failure instanceof S3ServiceException, `expected ${code} (${status}), got ${failure === undefined ? 'success' : String(failure)}`);
  assert.equal(failure.name, code, `error code (message: ${failure.message})`);
  assert.equal(failure.$metadata.httpStatusCode, status, `HTTP status of ${code}`);
  return failure as ParsedError;
}

/** An S3 XML error document: Code, a Message and a RequestId equal to the x-amz-request-id header. */
export function assertErrorDocument(err: ParsedError, code: string): void {
  assert.equal(err.Code, code, 'Code in the XML body');
  assert.ok(err.message && err.message !== 'UnknownError', `${code} has no Message`);
  assert.match(err.$metadata.requestId ?? '', /^[0-9A-F]{16}$/, 'x-amz-request-id');
  assert.equal(err.RequestId, err.$metadata.requestId, 'RequestId in the XML body vs x-amz-request-id');
}

/** Request headers of every request `client` sends, in order (to assert which payload mode it used). */
export function recordRequests(client: S3Client): Array<Record<string, string>> {
  const sent: Array<Record<string, string>> = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      sent.push(Object.fromEntries(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])));
      return next(args);
    },
    { step: 'finalizeRequest', name: 'astoreRecordRequests', priority: 'low' },
  );
  return sent;
}

// --- checksums, computed here independently of the server and of the SDK ------------------------------

export type Algorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

function reflectedTable(poly: bigint): bigint[] {
  return Array.from({ length: 256 }, (_, i) => {
    let c = BigInt(i);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    return c;
  });
}

const crcTables = { CRC32C: reflectedTable(0x82f63b78n), CRC64NVME: reflectedTable(0x9a6c9329ac4bc9b5n) };

/** A reflected CRC with all-ones init and final xor (CRC-32C, CRC-64/NVME); small inputs only. */
function crc(table: bigint[], data: Uint8Array, mask: bigint): bigint {
  let c = mask;
  for (const byte of data) c = table[Number((c ^ BigInt(byte)) & 0xffn)]! ^ (c >> 8n);
  return c ^ mask;
}

export function rawChecksum(algorithm: Algorithm, data: Uint8Array): Buffer {
  switch (algorithm) {
    case 'CRC32': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(data));
      return out;
    }
    case 'CRC32C': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(Number(crc(crcTables.CRC32C, data, 0xffffffffn)));
      return out;
    }
    case 'CRC64NVME': {
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(crc(crcTables.CRC64NVME, data, 0xffffffffffffffffn));
      return out;
    }
    case 'SHA1':
      return createHash('sha1').update(data).digest();
    case 'SHA256':
      return createHash('sha256').update(data).digest();
  }
}

/** S3's encoding of a checksum: base64 of the big-endian digest. */
export const checksumOf = (algorithm: Algorithm, data: Uint8Array): string => rawChecksum(algorithm, data).toString('base64');

/** S3 COMPOSITE checksum of a multipart object: checksum of the concatenated raw part checksums, then -N. */
export function compositeChecksum(algorithm: Algorithm, parts: Uint8Array[]): string {
  return `${checksumOf(algorithm, Buffer.concat(parts.map((p) => rawChecksum(algorithm, p))))}-${parts.length}`;
}

export const md5Etag = (data: Uint8Array): string => `"${createHash('md5').update(data).digest('hex')}"`;
export const md5Base64 = (data: Uint8Array): string => createHash('md5').update(data).digest('base64');

/** S3 ETag of a multipart object: md5 of the concatenated binary part MD5s, then -N. */
export function multipartEtag(parts: Uint8Array[]): string {
  const joined = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
  return `"${createHash('md5').update(joined).digest('hex')}-${parts.length}"`;
}

/** Decodes RFC 2047 encoded words (=?UTF-8?B?...?= / =?UTF-8?Q?...?=), as S3 returns non-ASCII metadata. */
export function rfc2047Decode(value: string): string {
  return value.replace(/=\?UTF-8\?([BQ])\?([^?]*)\?=/gi, (_, encoding: string, text: string) =>
    encoding.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (__, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8'),
  );
}

export interface SdkFixture {
  server: TestServer;
  s3: S3Client;
}

/** A fresh server (see startServer) and a JS SDK client for it, with `bucket` created. */
export async function openSdkFixture(bucket: string): Promise<SdkFixture> {
  const server = await startServer();
  const s3 = sdkClient(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return { server, s3 };
}

/** Undoes openSdkFixture; safe after a failed or partial open. */
export async function closeSdkFixture(fixture: Partial<SdkFixture>): Promise<void> {
  fixture.s3?.destroy();
  await fixture.server?.stop();
}

/** The whole body of a GetObject output. */
export const bytesOf = async (output: { Body?: { transformToByteArray(): Promise<Uint8Array> } }) => Buffer.from(await output.Body!.transformToByteArray());
