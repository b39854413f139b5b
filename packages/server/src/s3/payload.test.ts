import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { isAstoreError } from '../core/errors.ts';
import type { AuthResult, PayloadMode } from './auth/sigv4.ts';
import { readDocument } from './payload.ts';

const signedDelete = '<Delete><Object><Key>harmless</Key></Object></Delete>';
const swappedDelete = '<Delete><Object><Key>victim</Key></Object></Delete>';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function request(body: string, headers: Record<string, string> = {}): IncomingMessage {
  return Object.assign(Readable.from([Buffer.from(body)]), { headers }) as unknown as IncomingMessage;
}

function signed(payload: PayloadMode): AuthResult {
  return {
    kind: 'signed',
    credential: { accessKeyId: 'AKID', secretKey: 'secret', principal: 'root' },
    payload,
    chunkSigning: { signingKey: Buffer.alloc(32), seedSignature: '', amzDate: '', scope: '' },
  };
}

const crc32Base64 = (text: string) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(text));
  return out.toString('base64');
};

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err) => isAstoreError(err) && err.code === code);
}

test('readDocument: a body swapped under its signed x-amz-content-sha256 is XAmzContentSHA256Mismatch', async () => {
  const auth = signed({ kind: 'signed', sha256: sha256(signedDelete) });
  assert.equal(await readDocument(request(signedDelete), auth, 1024), signedDelete);
  await rejectsWith(readDocument(request(swappedDelete), auth, 1024), 'XAmzContentSHA256Mismatch');
  // UNSIGNED-PAYLOAD signs no body: nothing to compare.
  assert.equal(await readDocument(request(swappedDelete), signed({ kind: 'unsigned' }), 1024), swappedDelete);
});

test('readDocument: Content-MD5 is verified; a malformed one is InvalidDigest', async () => {
  const auth = signed({ kind: 'unsigned' });
  const md5 = createHash('md5').update(signedDelete).digest('base64');
  assert.equal(await readDocument(request(signedDelete, { 'content-md5': md5 }), auth, 1024), signedDelete);
  await rejectsWith(readDocument(request(swappedDelete, { 'content-md5': md5 }), auth, 1024), 'BadDigest');
  await rejectsWith(readDocument(request(signedDelete, { 'content-md5': 'nope' }), auth, 1024), 'InvalidDigest');
});

test('readDocument: x-amz-checksum-* is checked only where it describes the body', async () => {
  const auth = signed({ kind: 'unsigned' });
  const headers = { 'x-amz-checksum-crc32': crc32Base64(signedDelete) };
  assert.equal(await readDocument(request(signedDelete, headers), auth, 1024, { bodyChecksum: true }), signedDelete);
  await rejectsWith(readDocument(request(swappedDelete, headers), auth, 1024, { bodyChecksum: true }), 'BadDigest');
  // CompleteMultipartUpload: the header is the whole object's checksum, not the document's.
  assert.equal(await readDocument(request(swappedDelete, headers), auth, 1024), swappedDelete);
});

test('readDocument: a body over the limit is MalformedXML', async () => {
  await rejectsWith(readDocument(request('x'.repeat(2000)), signed({ kind: 'unsigned' }), 1024), 'MalformedXML');
});
