import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { checksumOf, compositeChecksum, expectS3Error, md5Base64, md5Etag, multipartEtag, recordRequests, sdkClient, type Algorithm, openSdkFixture, closeSdkFixture, bytesOf } from '../helpers/sdk-js.ts';
import type { TestServer } from '../helpers/server.ts';

/**
 * The payload modes the AWS SDK for JavaScript v3 sends by default (requestChecksumCalculation
 * WHEN_SUPPORTED), every S3 checksum algorithm on PutObject and GetObject, BadDigest, and multipart
 * uploads with their errors and composite checksums.
 */
let server: TestServer;
let s3: S3Client;
const bucket = 'sdk-transfer';
const MiB = 1024 * 1024;
const algorithms: Algorithm[] = ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME'];

before(async () => ({ server, s3 } = await openSdkFixture(bucket)));
after(() => closeSdkFixture({ server, s3 }));

/** A stream of `data` in uneven pieces, as a file or socket would deliver it. */
const streamOf = (data: Buffer) => Readable.from(Array.from({ length: Math.ceil(data.length / 70_001) }, (_, i) => data.subarray(i * 70_001, (i + 1) * 70_001)));
const checksumField = (algorithm: Algorithm) => `Checksum${algorithm}` as const;

async function getWithChecksum(key: string) {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  return { got, body: await bytesOf(got) };
}

describe('sdk-js: default payload modes', () => {
  test('PutObject with a Buffer: signed payload with an x-amz-checksum-crc32 header; GetObject returns the same CRC32', async () => {
    const client = sdkClient(server.endpoint);
    const sent = recordRequests(client);
    const body = randomBytes(100_000);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'buffer', Body: body }));
    const headers = sent.at(-1)!;
    assert.equal(headers['x-amz-checksum-crc32'], checksumOf('CRC32', body));
    assert.match(headers['x-amz-content-sha256'] ?? '', /^[0-9a-f]{64}$/, 'payload signed');
    assert.deepEqual([put.ETag, put.ChecksumCRC32, put.ChecksumType], [md5Etag(body), checksumOf('CRC32', body), 'FULL_OBJECT']);
    // The SDK validates the CRC32 of the body it reads against the header: a wrong one would throw.
    const { got, body: read } = await getWithChecksum('buffer');
    assert.deepEqual([got.ChecksumCRC32, got.ChecksumType], [checksumOf('CRC32', body), 'FULL_OBJECT']);
    assert.deepEqual(read, body);
    client.destroy();
  });

  test('PutObject with a Readable of known length: aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer', async () => {
    const client = sdkClient(server.endpoint);
    const sent = recordRequests(client);
    const body = randomBytes(3 * MiB + 17);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'stream', Body: streamOf(body), ContentLength: body.length, ContentEncoding: 'gzip' }));
    const headers = sent.at(-1)!;
    assert.equal(headers['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    assert.equal(headers['x-amz-trailer'], 'x-amz-checksum-crc32');
    assert.equal(headers['x-amz-decoded-content-length'], String(body.length));
    assert.match(headers['content-encoding'] ?? '', /aws-chunked/);
    assert.deepEqual([put.ETag, put.ChecksumCRC32], [md5Etag(body), checksumOf('CRC32', body)]);
    const { got, body: read } = await getWithChecksum('stream');
    assert.equal(got.ChecksumCRC32, checksumOf('CRC32', body));
    // aws-chunked is transfer framing: only the object's own encoding is stored.
    assert.equal(got.ContentEncoding, 'gzip');
    assert.deepEqual(read, body);
    client.destroy();
  });

  test('without ChecksumMode no checksum comes back; a client that does not ask still gets the bytes', async () => {
    const plain = sdkClient(server.endpoint, { responseChecksumValidation: 'WHEN_REQUIRED' });
    const got = await plain.send(new GetObjectCommand({ Bucket: bucket, Key: 'buffer' }));
    assert.equal(got.ChecksumCRC32, undefined);
    assert.equal((await bytesOf(got)).length, 100_000);
    plain.destroy();
  });
});

describe('sdk-js: checksum algorithms', () => {
  for (const algorithm of algorithms) {
    test(`ChecksumAlgorithm ${algorithm} on a Buffer (header) and on a stream (trailer) is stored and returned with ChecksumMode ENABLED`, async () => {
      const body = randomBytes(20_000);
      const expected = checksumOf(algorithm, body);
      const client = sdkClient(server.endpoint);
      const sent = recordRequests(client);
      for (const [key, Body] of [[`algo/${algorithm}/buffer`, body], [`algo/${algorithm}/stream`, streamOf(body)]] as const) {
        const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body, ContentLength: body.length, ChecksumAlgorithm: algorithm }));
        const headers = sent.at(-1)!;
        const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
        if (Body === body) assert.equal(headers[name], expected, `${key}: ${name} header`);
        else assert.deepEqual([headers['x-amz-trailer'], headers['x-amz-content-sha256']], [name, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'], `${key}: trailer`);
        assert.equal(put[checksumField(algorithm)], expected, `${key} PutObject`);
        const { got, body: read } = await getWithChecksum(key);
        assert.deepEqual([got[checksumField(algorithm)], got.ChecksumType], [expected, 'FULL_OBJECT'], `${key} GetObject`);
        assert.deepEqual(read, body);
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
        assert.equal(head[checksumField(algorithm)], expected, `${key} HeadObject`);
      }
      client.destroy();
    });
  }

  test('a wrong ChecksumCRC32 or Content-MD5 is BadDigest; the previous object is unchanged byte for byte', async () => {
    const original = randomBytes(50_000);
    const before = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'guarded', Body: original }));
    const other = randomBytes(50_000);
    const wrongCrc = checksumOf('CRC32', Buffer.from('something else'));
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'guarded', Body: other, ChecksumCRC32: wrongCrc })), 'BadDigest', 400);
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'guarded', Body: other, ContentMD5: md5Base64(Buffer.from('something else')) })), 'BadDigest', 400);
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'guarded', Body: other, ChecksumSHA256: checksumOf('SHA256', original) })), 'BadDigest', 400);
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'fresh', Body: other, ChecksumCRC32: wrongCrc })), 'BadDigest', 400);
    const { got, body } = await getWithChecksum('guarded');
    assert.deepEqual(body, original);
    assert.deepEqual([got.ETag, got.ChecksumCRC32], [before.ETag, before.ChecksumCRC32]);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'fresh' })), 'NotFound', 404);
    const ok = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'md5', Body: other, ContentMD5: md5Base64(other) }));
    assert.equal(ok.ETag, md5Etag(other));
  });
});

describe('sdk-js: multipart', () => {
  test('UploadPart, UploadPartCopy with a range, ListParts (paged), ListMultipartUploads, Complete: bytes and ETag', async () => {
    const source = randomBytes(12 * MiB);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'mp/source', Body: source }));
    const key = 'mp/ob ject+1';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/x-assembled', Metadata: { m: '1' } }));
    const first = randomBytes(5 * MiB);
    const part1 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: first }));
    assert.equal(part1.ETag, md5Etag(first));
    const second = source.subarray(MiB, 7 * MiB);
    const copied = await s3.send(
      new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, CopySource: `${bucket}/mp/source`, CopySourceRange: `bytes=${MiB}-${7 * MiB - 1}` }),
    );
    assert.equal(copied.CopyPartResult?.ETag, md5Etag(second));
    const third = Buffer.from('tail');
    const part3 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 3, Body: third }));

    const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
    assert.deepEqual(
      listed.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]),
      [[1, part1.ETag, first.length], [2, copied.CopyPartResult?.ETag, second.length], [3, part3.ETag, 4]],
    );
    const page = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId, MaxParts: 2 }));
    assert.deepEqual([page.IsTruncated, page.NextPartNumberMarker], [true, '2']);
    const rest = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId, PartNumberMarker: page.NextPartNumberMarker }));
    assert.deepEqual(rest.Parts?.map((p) => p.PartNumber), [3]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [[key, UploadId]]);

    const parts: CompletedPart[] = [
      { PartNumber: 1, ETag: part1.ETag },
      { PartNumber: 2, ETag: copied.CopyPartResult?.ETag },
      { PartNumber: 3, ETag: part3.ETag },
    ];
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    assert.deepEqual([done.Key, done.ETag], [key, multipartEtag([first, second, third])]);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    assert.deepEqual([got.ContentType, got.Metadata, got.ContentLength], ['application/x-assembled', { m: '1' }, first.length + second.length + 4]);
    assert.ok((await bytesOf(got)).equals(Buffer.concat([first, second, third])), 'completed bytes');
    const part2 = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, PartNumber: 2 }));
    assert.equal(part2.PartsCount, 3);
    assert.ok((await bytesOf(part2)).equals(second), 'GetObject PartNumber=2');
    assert.deepEqual((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [], []);
    await expectS3Error(s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId })), 'NoSuchUpload', 404);
  });

  test('AbortMultipartUpload: the upload and its parts are gone', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp/aborted' }));
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp/aborted', UploadId, PartNumber: 1, Body: 'part one' }));
    assert.equal((await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'mp/aborted', UploadId }))).$metadata.httpStatusCode, 204);
    await expectS3Error(s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp/aborted', UploadId })), 'NoSuchUpload', 404);
    await expectS3Error(s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp/aborted', UploadId, PartNumber: 2, Body: 'x' })), 'NoSuchUpload', 404);
    await expectS3Error(s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp/aborted', UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: md5Etag(Buffer.from('part one')) }] } })), 'NoSuchUpload', 404);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'mp/aborted' })), 'NotFound', 404);
  });

  test('Complete errors: InvalidPart, InvalidPartOrder, EntityTooSmall; the upload survives them', async () => {
    const key = 'mp/errors';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const small: CompletedPart[] = [];
    for (const [i, text] of ['small one', 'small two'].entries()) {
      small.push({ PartNumber: i + 1, ETag: (await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: text }))).ETag });
    }
    const complete = (Parts: CompletedPart[]) => s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts } }));
    await expectS3Error(complete([{ PartNumber: 1, ETag: md5Etag(Buffer.from('other')) }]), 'InvalidPart', 400);
    await expectS3Error(complete([{ PartNumber: 7, ETag: small[0]!.ETag }]), 'InvalidPart', 400);
    await expectS3Error(complete([small[1]!, small[0]!]), 'InvalidPartOrder', 400);
    await expectS3Error(complete(small), 'EntityTooSmall', 400);
    const done = await complete([small[1]!]);
    assert.equal(done.ETag, multipartEtag([Buffer.from('small two')]));
    assert.equal((await bytesOf(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })))).toString(), 'small two');
  });

  for (const algorithm of ['CRC32C', 'SHA1', 'CRC64NVME'] as const) {
    test(`multipart with ChecksumAlgorithm ${algorithm}: part checksums, a composite -N checksum on Complete and GetObject`, async () => {
      const key = `mp/checksummed/${algorithm}`;
      const parts = [randomBytes(5 * MiB), randomBytes(1000)];
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: algorithm }));
      assert.equal(created.ChecksumAlgorithm, algorithm);
      const completed: CompletedPart[] = [];
      for (const [i, part] of parts.entries()) {
        const uploaded = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: part, ChecksumAlgorithm: algorithm }));
        assert.equal(uploaded[checksumField(algorithm)], checksumOf(algorithm, part), `part ${i + 1}`);
        completed.push({ PartNumber: i + 1, ETag: uploaded.ETag, [checksumField(algorithm)]: uploaded[checksumField(algorithm)] });
      }
      const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId }));
      assert.deepEqual(listed.Parts?.map((p) => p[checksumField(algorithm)]), parts.map((p) => checksumOf(algorithm, p)));
      const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: completed } }));
      const expected = compositeChecksum(algorithm, parts);
      assert.deepEqual([done[checksumField(algorithm)], done.ChecksumType], [expected, 'COMPOSITE']);
      const { got, body } = await getWithChecksum(key);
      assert.equal(got[checksumField(algorithm)], expected);
      assert.ok(body.equals(Buffer.concat(parts)), 'bytes');
    });
  }

  for (const algorithm of ['CRC32', 'CRC64NVME'] as const) {
    test(`multipart with ChecksumType FULL_OBJECT ${algorithm}: the combined CRC of the whole object, checked on Complete`, async () => {
      const key = `mp/full-object/${algorithm}`;
      const parts = [randomBytes(5 * MiB + 17), randomBytes(3333)];
      const whole = checksumOf(algorithm, Buffer.concat(parts));
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: algorithm, ChecksumType: 'FULL_OBJECT' }));
      const completed: CompletedPart[] = [];
      for (const [i, part] of parts.entries()) {
        const uploaded = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: part, ChecksumAlgorithm: algorithm }));
        completed.push({ PartNumber: i + 1, ETag: uploaded.ETag, [checksumField(algorithm)]: uploaded[checksumField(algorithm)] });
      }
      const wrong = checksumOf(algorithm, Buffer.from('not the object'));
      await expectS3Error(
        s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: completed }, [checksumField(algorithm)]: wrong, ChecksumType: 'FULL_OBJECT' })),
        'BadDigest',
        400,
      );
      const done = await s3.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: completed }, [checksumField(algorithm)]: whole, ChecksumType: 'FULL_OBJECT' }),
      );
      assert.deepEqual([done[checksumField(algorithm)], done.ChecksumType], [whole, 'FULL_OBJECT']);
      const { got, body } = await getWithChecksum(key);
      assert.deepEqual([got[checksumField(algorithm)], got.ChecksumType], [whole, 'FULL_OBJECT']);
      assert.ok(body.equals(Buffer.concat(parts)), 'bytes');
    });
  }

  test('FULL_OBJECT with a SHA algorithm is refused at CreateMultipartUpload', async () => {
    await expectS3Error(
      s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp/full-sha', ChecksumAlgorithm: 'SHA256', ChecksumType: 'FULL_OBJECT' })),
      'InvalidRequest',
      400,
    );
  });

  test('a part whose declared checksum does not match its bytes is BadDigest', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp/bad', ChecksumAlgorithm: 'SHA256' }));
    await expectS3Error(
      s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp/bad', UploadId, PartNumber: 1, Body: 'data', ChecksumSHA256: checksumOf('SHA256', Buffer.from('other')) })),
      'BadDigest',
      400,
    );
    assert.deepEqual((await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'mp/bad', UploadId }))).Parts ?? [], []);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'mp/bad', UploadId }));
  });
});
