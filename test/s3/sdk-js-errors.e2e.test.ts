import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { assertErrorDocument, checksumOf, expectS3Error, sdkClient, openSdkFixture, closeSdkFixture } from '../helpers/sdk-js.ts';
import type { TestServer } from '../helpers/server.ts';
import { signRequest, type RawRequest } from '../helpers/sign.ts';

/**
 * Errors as the AWS SDK for JavaScript v3 sees them, and as raw SigV4-signed requests (built with
 * @smithy/signature-v4) get them: every one an S3 XML <Error> with Code, Message and a RequestId
 * equal to the x-amz-request-id header, with the S3 status, never a 500.
 */
let server: TestServer;
let s3: S3Client;
const bucket = 'sdk-errors';

before(async () => ({ server, s3 } = await openSdkFixture(bucket)));
after(() => closeSdkFixture({ server, s3 }));

interface S3Answer {
  status: number;
  code?: string;
  text: string;
}

/** Sends a request signed with `signOptions` (or `signedBody` in place of the body) and checks its error document. */
async function sendSigned(req: RawRequest, signOptions: Parameters<typeof signRequest>[2] & { signedBody?: string } = {}): Promise<S3Answer> {
  const { signedBody, ...options } = signOptions;
  const headers = await signRequest(`127.0.0.1:${server.port}`, { ...req, body: signedBody ?? req.body }, options);
  delete headers.host; // fetch sets the same Host itself
  const qs = new URLSearchParams(req.query ?? {}).toString();
  const res = await fetch(`${server.endpoint}${req.path}${qs ? `?${qs}` : ''}`, { method: req.method, headers, body: req.body });
  const text = await res.text();
  const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
  if (res.status >= 300) {
    assert.match(res.headers.get('content-type') ?? '', /application\/xml/);
    assert.match(text, /<Message>[^<]+<\/Message>/, 'error Message');
    assert.equal(/<RequestId>([^<]+)<\/RequestId>/.exec(text)?.[1], res.headers.get('x-amz-request-id'), 'RequestId vs x-amz-request-id');
  }
  return { status: res.status, code, text };
}

const deleteDocument = (...keys: string[]) => `<Delete>${keys.map((k) => `<Object><Key>${k}</Key></Object>`).join('')}</Delete>`;

describe('sdk-js: error documents', () => {
  test('NoSuchKey names the key and the resource', async () => {
    const err = await expectS3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/absent key' })), 'NoSuchKey', 404);
    assertErrorDocument(err, 'NoSuchKey');
    assert.equal((err as unknown as { Key?: string }).Key, 'dir/absent key');
  });

  test('a wrong secret is SignatureDoesNotMatch (403) and stores nothing; an unknown key id is InvalidAccessKeyId (403)', async () => {
    const wrongSecret = sdkClient(server.endpoint, { credentials: { accessKeyId: 'AKIDASTORETEST', secretAccessKey: 'not-the-secret-key' } });
    assertErrorDocument(await expectS3Error(wrongSecret.send(new PutObjectCommand({ Bucket: bucket, Key: 'forged', Body: 'x' })), 'SignatureDoesNotMatch', 403), 'SignatureDoesNotMatch');
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'forged' })), 'NotFound', 404);
    const unknown = sdkClient(server.endpoint, { credentials: { accessKeyId: 'AKIDUNKNOWN0000', secretAccessKey: 'whatever-secret' } });
    assertErrorDocument(await expectS3Error(unknown.send(new ListObjectsV2Command({ Bucket: bucket })), 'InvalidAccessKeyId', 403), 'InvalidAccessKeyId');
    wrongSecret.destroy();
    unknown.destroy();
  });

  test('a key of 1025 bytes is KeyTooLongError; 1024 bytes of UTF-8 are fine', async () => {
    const longest = 'é'.repeat(512);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: longest, Body: 'fits' }));
    assert.equal(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: longest }))).Body!.transformToString(), 'fits');
    for (const key of ['k'.repeat(1025), `${longest}k`]) {
      assertErrorDocument(await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' })), 'KeyTooLongError', 400), 'KeyTooLongError');
    }
  });

  test('20 KiB of x-amz-meta-* headers is RequestHeaderSectionTooLarge (400); over Node\'s own limit it is still a 4xx', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`field-${i}`, 'v'.repeat(200)]));
    const err = await expectS3Error(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big-headers', Body: 'x', Metadata: metadata })), 'RequestHeaderSectionTooLarge', 400);
    assertErrorDocument(err, 'RequestHeaderSectionTooLarge');
    await expectS3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big-headers' })), 'NotFound', 404);
    // Past the HTTP parser's cap (64 KiB) Node answers 431 before astore sees the request.
    const huge = await fetch(`${server.endpoint}/${bucket}/huge`, { method: 'PUT', body: 'x', headers: { 'x-amz-meta-huge': 'v'.repeat(100 * 1024) } }).catch((e: unknown) => e);
    if (huge instanceof Response) assert.ok(huge.status >= 400 && huge.status < 500, `status ${huge.status}`);
    // The server keeps answering.
    assert.equal((await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'after', Body: 'ok' }))).$metadata.httpStatusCode, 200);
  });
});

describe('sdk-js: clock skew', () => {
  test('X-Amz-Date an hour off either way is RequestTimeTooSkewed (403), raw and through the SDK', async () => {
    for (const offset of [-3600_000, 3600_000]) {
      const raw = await sendSigned({ method: 'GET', path: `/${bucket}` }, { date: new Date(Date.now() + offset) });
      assert.deepEqual([raw.status, raw.code], [403, 'RequestTimeTooSkewed']);
      const skewed = sdkClient(server.endpoint, { systemClockOffset: offset });
      assertErrorDocument(await expectS3Error(skewed.send(new ListObjectsV2Command({ Bucket: bucket })), 'RequestTimeTooSkewed', 403), 'RequestTimeTooSkewed');
      skewed.destroy();
    }
  });

  test('the SDK corrects its clock from the error (ServerTime / Date) and its next call succeeds', async () => {
    const skewed = sdkClient(server.endpoint, { systemClockOffset: -3600_000 });
    await expectS3Error(skewed.send(new ListObjectsV2Command({ Bucket: bucket })), 'RequestTimeTooSkewed', 403);
    // The SDK retries by itself only when the corrected offset is still large (a machine whose clock is
    // wrong); this one's clock is right, so the correction brings the offset back near zero.
    assert.ok(Math.abs(skewed.config.systemClockOffset ?? -3600_000) < 60_000, `corrected offset ${skewed.config.systemClockOffset}`);
    assert.equal((await skewed.send(new ListObjectsV2Command({ Bucket: bucket }))).$metadata.httpStatusCode, 200);
    skewed.destroy();
  });
});

describe('raw signed requests: DeleteObjects documents', () => {
  test('a malformed DeleteObjects body is MalformedXML (400) and deletes nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'survivor', Body: 'still here' }));
    for (const body of ['<Delete><Object><Key>survivor</Key></Object', '<Delete><Object><Key>survivor</Key></Object></Delete><extra/>', 'not xml at all', '']) {
      const res = await sendSigned({ method: 'POST', path: `/${bucket}`, query: { delete: '' }, body });
      assert.deepEqual([res.status, res.code], [400, 'MalformedXML'], JSON.stringify(body));
    }
    assert.equal(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'survivor' }))).Body!.transformToString(), 'still here');
  });

  test('a DeleteObjects body swapped under its signature is XAmzContentSHA256Mismatch and deletes nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'victim', Body: 'precious' }));
    const res = await sendSigned({ method: 'POST', path: `/${bucket}`, query: { delete: '' }, body: deleteDocument('victim') }, { signedBody: deleteDocument('harmless') });
    assert.deepEqual([res.status, res.code], [400, 'XAmzContentSHA256Mismatch']);
    assert.equal(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'victim' }))).Body!.transformToString(), 'precious');
  });

  test('a DeleteObjects body that does not match its x-amz-checksum-crc32 or Content-MD5 is BadDigest and deletes nothing', async () => {
    const body = deleteDocument('victim');
    const wrongCrc = await sendSigned({ method: 'POST', path: `/${bucket}`, query: { delete: '' }, body, headers: { 'x-amz-checksum-crc32': checksumOf('CRC32', Buffer.from('other')) } });
    assert.deepEqual([wrongCrc.status, wrongCrc.code], [400, 'BadDigest']);
    const wrongMd5 = await sendSigned({ method: 'POST', path: `/${bucket}`, query: { delete: '' }, body, headers: { 'content-md5': Buffer.alloc(16).toString('base64') } });
    assert.deepEqual([wrongMd5.status, wrongMd5.code], [400, 'BadDigest']);
    assert.equal(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'victim' }))).Body!.transformToString(), 'precious');
    const right = await sendSigned({ method: 'POST', path: `/${bucket}`, query: { delete: '' }, body, headers: { 'x-amz-checksum-crc32': checksumOf('CRC32', Buffer.from(body)) } });
    assert.equal(right.status, 200);
    assert.match(right.text, /<Deleted><Key>victim<\/Key><\/Deleted>/);
  });
});
