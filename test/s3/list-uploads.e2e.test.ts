import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { sdkClient } from '../helpers/sdk-js.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** ListMultipartUploads with prefix and delimiter: uploads roll up into common prefixes, paged. */
let server: TestServer;
let s3: S3Client;
const bucket = 'uploads';
const keys = ['a.bin', 'dir1/x.bin', 'dir1/y.bin', 'dir1/sub/z.bin', 'dir2/x.bin', 'm.bin', 'z.bin'];

before(async () => {
  server = await startServer();
  s3 = sdkClient(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const key of keys) await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
});
after(async () => {
  s3?.destroy();
  await server?.stop();
});

test('with a delimiter, uploads under a prefix roll up into CommonPrefixes', async () => {
  const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Delimiter: '/' }));
  assert.deepEqual(all.Uploads?.map((u) => u.Key), ['a.bin', 'm.bin', 'z.bin']);
  assert.deepEqual(all.CommonPrefixes?.map((p) => p.Prefix), ['dir1/', 'dir2/']);
  assert.equal(all.IsTruncated, false);
  const inDir = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Delimiter: '/', Prefix: 'dir1/' }));
  assert.deepEqual(inDir.Uploads?.map((u) => u.Key), ['dir1/x.bin', 'dir1/y.bin']);
  assert.deepEqual(inDir.CommonPrefixes?.map((p) => p.Prefix), ['dir1/sub/']);
});

test('paging one entry at a time visits every upload and common prefix once, in order', async () => {
  const seen: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (let page = 0; page < 20; page++) {
    const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Delimiter: '/', MaxUploads: 1, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    seen.push(...(res.Uploads ?? []).map((u) => u.Key!), ...(res.CommonPrefixes ?? []).map((p) => p.Prefix!));
    if (!res.IsTruncated) break;
    keyMarker = res.NextKeyMarker;
    uploadIdMarker = res.NextUploadIdMarker;
  }
  assert.deepEqual(seen, ['a.bin', 'dir1/', 'dir2/', 'm.bin', 'z.bin']);
  const flat = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  assert.deepEqual(flat.Uploads?.map((u) => u.Key), [...keys].sort());
});
