import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { assertErrorDocument, expectS3Error, md5Etag, rfc2047Decode, openSdkFixture, closeSdkFixture, bytesOf } from '../helpers/sdk-js.ts';
import type { TestServer } from '../helpers/server.ts';
import { presignUrl } from '../helpers/sign.ts';

/**
 * The AWS SDK for JavaScript v3 end to end, path-style: buckets, objects with their headers and
 * metadata, ranges, conditional requests, copy, batch delete and presigned URLs fetched with plain HTTP.
 * Payload modes, checksums and multipart are in sdk-js-transfer.e2e.test.ts, listing in
 * sdk-listing.e2e.test.ts, error documents in sdk-js-errors.e2e.test.ts.
 */
let server: TestServer;
let s3: S3Client;
const bucket = 'sdk-objects';

before(async () => ({ server, s3 } = await openSdkFixture(bucket)));
after(() => closeSdkFixture({ server, s3 }));

describe('sdk-js: buckets', () => {
  test('create, head (region), list, location (empty for us-east-1), delete', async () => {
    const name = 'sdk-lifecycle';
    assert.equal((await s3.send(new CreateBucketCommand({ Bucket: name }))).$metadata.httpStatusCode, 200);
    assert.equal((await s3.send(new HeadBucketCommand({ Bucket: name }))).BucketRegion, 'us-east-1');
    const listed = await s3.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === name && b.CreationDate instanceof Date), 'listed with a CreationDate');
    assert.equal((await s3.send(new GetBucketLocationCommand({ Bucket: name }))).LocationConstraint ?? '', '');
    assert.equal((await s3.send(new DeleteBucketCommand({ Bucket: name }))).$metadata.httpStatusCode, 204);
    await expectS3Error(s3.send(new HeadBucketCommand({ Bucket: name })), 'NotFound', 404);
  });

  test('given a bucket with an object, DeleteBucket is BucketNotEmpty and the object stays', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'sdk-notempty' }));
    await s3.send(new PutObjectCommand({ Bucket: 'sdk-notempty', Key: 'keep', Body: 'kept' }));
    assertErrorDocument(await expectS3Error(s3.send(new DeleteBucketCommand({ Bucket: 'sdk-notempty' })), 'BucketNotEmpty', 409), 'BucketNotEmpty');
    assert.equal((await bytesOf(await s3.send(new GetObjectCommand({ Bucket: 'sdk-notempty', Key: 'keep' })))).toString(), 'kept');
    await expectS3Error(s3.send(new CreateBucketCommand({ Bucket: 'sdk-notempty' })), 'BucketAlreadyOwnedByYou', 409);
  });

  test('a missing bucket is NoSuchBucket for location, list, put and delete', async () => {
    const missing = 'sdk-missing';
    assertErrorDocument(await expectS3Error(s3.send(new GetBucketLocationCommand({ Bucket: missing })), 'NoSuchBucket', 404), 'NoSuchBucket');
    await expectS3Error(s3.send(new ListObjectsV2Command({ Bucket: missing })), 'NoSuchBucket', 404);
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: missing, Key: 'k', Body: 'x' })), 'NoSuchBucket', 404);
    await expectS3Error(s3.send(new DeleteBucketCommand({ Bucket: missing })), 'NoSuchBucket', 404);
  });

  test('Bad_Name and the reserved names v2 and api are InvalidBucketName, and nothing is created', async () => {
    for (const name of ['Bad_Name', 'v2', 'api']) {
      assertErrorDocument(await expectS3Error(s3.send(new CreateBucketCommand({ Bucket: name })), 'InvalidBucketName', 400), 'InvalidBucketName');
    }
    const names = (await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? [];
    assert.deepEqual(names.filter((n) => ['Bad_Name', 'v2', 'api'].includes(n!)), []);
  });
});

describe('sdk-js: objects', () => {
  test('put/get/head/delete keep the bytes, content headers and metadata; a deleted key is NoSuchKey', async () => {
    const body = gzipSync(Buffer.alloc(5000, 'astore '));
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'docs/report.json',
        Body: body,
        ContentType: 'application/json',
        ContentDisposition: 'attachment; filename="report.json"',
        ContentEncoding: 'gzip',
        ContentLanguage: 'en-GB',
        CacheControl: 'max-age=60, public',
        Metadata: { colour: 'blue', 'multi-word': 'a b' },
      }),
    );
    assert.equal(put.ETag, md5Etag(body));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.json' }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'docs/report.json' }));
    for (const response of [got, head]) {
      assert.equal(response.ETag, md5Etag(body));
      assert.equal(response.ContentLength, body.length);
      assert.equal(response.ContentType, 'application/json');
      assert.equal(response.ContentDisposition, 'attachment; filename="report.json"');
      assert.equal(response.ContentEncoding, 'gzip');
      assert.equal(response.ContentLanguage, 'en-GB');
      assert.equal(response.CacheControl, 'max-age=60, public');
      assert.deepEqual(response.Metadata, { colour: 'blue', 'multi-word': 'a b' });
      assert.ok(response.LastModified instanceof Date);
    }
    // gzip is the object's own encoding: the stored bytes come back, not decompressed.
    assert.deepEqual(await bytesOf(got), body);
    assert.equal((await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'docs/report.json' }))).$metadata.httpStatusCode, 204);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'docs/report.json' })), 'NotFound', 404);
    assertErrorDocument(await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'docs/report.json' })), 'NoSuchKey', 404), 'NoSuchKey');
    // Deleting a missing key succeeds, as in S3.
    assert.equal((await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'docs/report.json' }))).$metadata.httpStatusCode, 204);
  });

  test('non-ASCII metadata sent as RFC 2047 encoded words round-trips; raw non-ASCII is SignatureDoesNotMatch, as on S3', async () => {
    const sent = { b: '=?UTF-8?B?0J/RgNC40LLQtdGC?=', q: '=?UTF-8?Q?caf=C3=A9_=E2=9C=93?=' };
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'meta', Body: 'm', Metadata: sent }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'meta' }));
    assert.deepEqual(Object.fromEntries(Object.entries(head.Metadata ?? {}).map(([k, v]) => [k, rfc2047Decode(v)])), { b: 'Привет', q: 'café ✓' });
    // Node sends 'é' as UTF-8 bytes while S3 (and astore) read header bytes as latin-1 when checking the
    // signature; S3 answers SignatureDoesNotMatch too, which is why its SDK guides say "encode it".
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'raw-meta', Body: 'm', Metadata: { raw: 'café' } })), 'SignatureDoesNotMatch', 403);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'raw-meta' })), 'NotFound', 404);
  });

  test('response-* overrides on GetObject change the response headers only', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'override', Body: 'override me', ContentType: 'text/plain' }));
    const got = await s3.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: 'override',
        ResponseContentType: 'application/x-override',
        ResponseContentDisposition: 'inline; filename="o.txt"',
        ResponseContentEncoding: 'identity',
        ResponseContentLanguage: 'fr',
        ResponseCacheControl: 'no-store',
      }),
    );
    assert.deepEqual(
      [got.ContentType, got.ContentDisposition, got.ContentEncoding, got.ContentLanguage, got.CacheControl],
      ['application/x-override', 'inline; filename="o.txt"', 'identity', 'fr', 'no-store'],
    );
    assert.equal((await bytesOf(got)).toString(), 'override me');
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'override' }))).ContentType, 'text/plain');
  });

  test('Range: first-last, open-ended, suffix, past the end; unsatisfiable is InvalidRange (416)', async () => {
    const body = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'ranged', Body: body }));
    for (const [range, start, end] of [['bytes=0-0', 0, 0], ['bytes=100-1099', 100, 1099], ['bytes=9000-', 9000, 9999], ['bytes=-250', 9750, 9999], ['bytes=9990-20000', 9990, 9999]] as const) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'ranged', Range: range }));
      assert.equal(got.$metadata.httpStatusCode, 206, range);
      assert.equal(got.ContentRange, `bytes ${start}-${end}/10000`, range);
      assert.equal(got.ContentLength, end - start + 1, range);
      assert.deepEqual(await bytesOf(got), body.subarray(start, end + 1), range);
    }
    await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'ranged', Range: 'bytes=10000-' })), 'InvalidRange', 416);
  });

  test('conditional GET/HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since → 200, 304 or 412', async () => {
    const { ETag: etag } = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cond', Body: 'conditional' }));
    const { LastModified: modified } = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond' }));
    const before = new Date(modified!.getTime() - 86_400_000);
    const later = new Date(modified!.getTime() + 86_400_000);
    const other = '"0123456789abcdef0123456789abcdef"';
    const get = (conditions: Partial<ConstructorParameters<typeof GetObjectCommand>[0]>) => s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cond', ...conditions }));

    assert.equal((await bytesOf(await get({ IfMatch: etag }))).toString(), 'conditional');
    assert.equal((await get({ IfNoneMatch: other })).ETag, etag);
    assert.equal((await get({ IfModifiedSince: before })).ETag, etag);
    assert.equal((await get({ IfUnmodifiedSince: later })).ETag, etag);
    assertErrorDocument(await expectS3Error(get({ IfMatch: other }), 'PreconditionFailed', 412), 'PreconditionFailed');
    await expectS3Error(get({ IfUnmodifiedSince: before }), 'PreconditionFailed', 412);
    // 304 has no body: the SDK cannot name the error, only its status.
    assert.equal((await expectS3Error(get({ IfNoneMatch: etag }), 'Unknown', 304)).$metadata.httpStatusCode, 304);
    await expectS3Error(get({ IfModifiedSince: later }), 'Unknown', 304);
    // A true If-Match wins over a false If-Unmodified-Since; If-None-Match over If-Modified-Since.
    assert.equal((await get({ IfMatch: etag, IfUnmodifiedSince: before })).ETag, etag);
    await expectS3Error(get({ IfNoneMatch: etag, IfModifiedSince: before }), 'Unknown', 304);
    // HEAD answers carry no body either (astore adds x-amz-error-code, which the SDK does not read).
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond', IfMatch: other })), 'Unknown', 412);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cond', IfNoneMatch: etag })), 'Unknown', 304);
  });

  test('conditional PUT: If-None-Match * on an existing key and a stale If-Match are 412; the object is kept', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'first', IfNoneMatch: '*' }));
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'second', IfNoneMatch: '*' })), 'PreconditionFailed', 412);
    await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'third', IfMatch: md5Etag(Buffer.from('x')) })), 'PreconditionFailed', 412);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'create-only' }));
    assert.equal(got.ETag, first.ETag);
    assert.equal((await bytesOf(got)).toString(), 'first');
    const replaced = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'fourth', IfMatch: first.ETag }));
    assert.equal(replaced.ETag, md5Etag(Buffer.from('fourth')));
  });

  test('CopyObject COPY keeps headers and metadata, REPLACE takes the request\'s; source keys with special characters', async () => {
    const body = Buffer.alloc(70_000, 'copy me ');
    const source = 'src dir/ä+b%c.bin';
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: source, Body: body, ContentType: 'application/x-src', Metadata: { origin: 'source' } }));
    const copySource = `${bucket}/${encodeURIComponent(source)}`;
    const copied = await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy/kept', CopySource: copySource }));
    assert.equal(copied.CopyObjectResult?.ETag, put.ETag);
    const kept = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/kept' }));
    assert.deepEqual([kept.ContentType, kept.Metadata], ['application/x-src', { origin: 'source' }]);
    assert.deepEqual(await bytesOf(kept), body);
    await s3.send(
      new CopyObjectCommand({ Bucket: bucket, Key: 'copy/replaced', CopySource: copySource, MetadataDirective: 'REPLACE', ContentType: 'text/x-new', Metadata: { origin: 'replaced' } }),
    );
    const replaced = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'copy/replaced' }));
    assert.deepEqual([replaced.ContentType, replaced.Metadata], ['text/x-new', { origin: 'replaced' }]);
    assert.deepEqual(await bytesOf(replaced), body);
    await expectS3Error(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: source, CopySource: copySource })), 'InvalidRequest', 400);
    await expectS3Error(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy/none', CopySource: `${bucket}/absent` })), 'NoSuchKey', 404);
    await expectS3Error(s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy/none', CopySource: copySource, CopySourceIfMatch: '"00"' })), 'PreconditionFailed', 412);
  });

  test('DeleteObjects: non-quiet reports every key (missing ones too), quiet reports nothing; the keys are gone', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'sdk-batch' }));
    const keys = ['b/0', 'b/1', 'b/2', 'b/with space+plus', 'b/ünï'];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: 'sdk-batch', Key: key, Body: key }));
    const loud = await s3.send(new DeleteObjectsCommand({ Bucket: 'sdk-batch', Delete: { Objects: [...keys.slice(0, 3), 'b/never'].map((Key) => ({ Key })) } }));
    assert.deepEqual(loud.Deleted?.map((d) => d.Key).sort(), ['b/0', 'b/1', 'b/2', 'b/never']);
    assert.deepEqual(loud.Errors ?? [], []);
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: 'sdk-batch', Delete: { Objects: keys.slice(3).map((Key) => ({ Key })), Quiet: true } }));
    assert.deepEqual([quiet.Deleted ?? [], quiet.Errors ?? []], [[], []]);
    assert.equal((await s3.send(new ListObjectsV2Command({ Bucket: 'sdk-batch' }))).KeyCount, 0);
    await s3.send(new DeleteBucketCommand({ Bucket: 'sdk-batch' }));
  });
});

describe('sdk-js: presigned URLs (@smithy/signature-v4 presign) fetched with plain HTTP', () => {
  test('presigned GET returns the bytes, with a response-* override; a tampered URL is SignatureDoesNotMatch', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/file name+1.txt', Body: 'presigned bytes', ContentType: 'text/plain' }));
    const path = `/${bucket}/dir/${encodeURIComponent('file name+1.txt')}`;
    const res = await fetch(await presignUrl(server.endpoint, { method: 'GET', path }));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'presigned bytes');
    assert.equal(res.headers.get('etag'), md5Etag(Buffer.from('presigned bytes')));
    const withOverride = await fetch(await presignUrl(server.endpoint, { method: 'GET', path, query: { 'response-content-disposition': 'attachment' } }));
    assert.equal(withOverride.headers.get('content-disposition'), 'attachment');
    await withOverride.arrayBuffer();
    const tampered = await fetch((await presignUrl(server.endpoint, { method: 'GET', path })).replace('X-Amz-Expires=300', 'X-Amz-Expires=301'));
    assert.equal(tampered.status, 403);
    assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  });

  test('presigned PUT stores the bytes; a signed Content-Type must be sent as signed; an expired URL is AccessDenied', async () => {
    const url = await presignUrl(server.endpoint, { method: 'PUT', path: `/${bucket}/uploaded/${encodeURIComponent('ü.bin')}` });
    const res = await fetch(url, { method: 'PUT', body: 'uploaded via presigned PUT' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), md5Etag(Buffer.from('uploaded via presigned PUT')));
    assert.equal((await bytesOf(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'uploaded/ü.bin' })))).toString(), 'uploaded via presigned PUT');

    const typed = await presignUrl(server.endpoint, { method: 'PUT', path: `/${bucket}/typed`, headers: { 'content-type': 'application/x-typed' } });
    assert.equal((await fetch(typed, { method: 'PUT', body: 'typed', headers: { 'content-type': 'application/x-typed' } })).status, 200);
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'typed' }))).ContentType, 'application/x-typed');
    const wrongType = await fetch(typed, { method: 'PUT', body: 'typed', headers: { 'content-type': 'text/plain' } });
    assert.equal(wrongType.status, 403);
    assert.match(await wrongType.text(), /<Code>SignatureDoesNotMatch<\/Code>/);

    const expired = await presignUrl(server.endpoint, { method: 'PUT', path: `/${bucket}/late` }, { expiresIn: 60, date: new Date(Date.now() - 3600_000) });
    const late = await fetch(expired, { method: 'PUT', body: 'too late' });
    assert.equal(late.status, 403);
    assert.match(await late.text(), /<Code>AccessDenied<\/Code>/);
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'late' })), 'NotFound', 404);
  });
});
