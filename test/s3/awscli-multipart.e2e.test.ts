/**
 * Multipart uploads with aws-cli v1 against astore, end to end: `aws s3 cp` of a 40 MiB file (the CLI
 * splits it into 8 MiB parts, pinned in the CLI config by openAwsCli) and the s3api multipart calls
 * by hand, including every way CompleteMultipartUpload refuses a part list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { chunk, md5Hex, multipartEtag, sha256Hex, type AwsCli, openAwsCliFixture, closeAwsCliFixture } from '../helpers/awscli.ts';
import type { TestServer } from '../helpers/server.ts';

const MiB = 1024 * 1024;
let server: TestServer | undefined;
let work = '';
let aws: AwsCli;
const bucket = 'multipart';

before(async () => ({ server, work, aws } = await openAwsCliFixture('multipart', bucket)));
after(() => closeAwsCliFixture({ server, work }));

describe('aws s3 cp: multipart transfers', () => {
  const big = randomBytes(40 * MiB);
  const expectedEtag = multipartEtag(chunk(big, 8 * MiB));

  test('cp of a 40 MiB file uploads 5 parts: ETag md5(part md5s)-5, and it downloads byte for byte', async () => {
    const local = join(work, 'big.bin');
    await writeFile(local, big);
    await aws.ok(['s3', 'cp', local, `s3://${bucket}/big/40MiB.bin`, '--only-show-errors']);
    const head = await aws.json(['s3api', 'head-object', '--bucket', bucket, '--key', 'big/40MiB.bin']);
    assert.equal(head.ETag, expectedEtag);
    assert.match(head.ETag, /-5"$/);
    assert.equal(head.ContentLength, big.length);

    const back = join(work, 'big-back.bin');
    await aws.ok(['s3', 'cp', `s3://${bucket}/big/40MiB.bin`, back, '--only-show-errors']);
    assert.equal(sha256Hex(await readFile(back)), sha256Hex(big));
  });

  test('cp from S3 to S3 copies the 40 MiB object part by part (upload-part-copy ranges): same ETag, same bytes', async () => {
    await aws.ok(['s3', 'cp', `s3://${bucket}/big/40MiB.bin`, `s3://${bucket}/big/copy.bin`, '--only-show-errors']);
    // A range across the boundary of parts 1 and 2 proves the copied ranges are laid end to end.
    const head = await aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', 'big/copy.bin', '--range', `bytes=${8 * MiB - 100}-${8 * MiB + 99}`, join(work, 'copy-range.bin')]);
    assert.equal(head.ETag, expectedEtag);
    assert.equal(head.ContentRange, `bytes ${8 * MiB - 100}-${8 * MiB + 99}/${big.length}`);
    assert.deepEqual(await readFile(join(work, 'copy-range.bin')), big.subarray(8 * MiB - 100, 8 * MiB + 100));
  });
});

describe('aws s3api: a multipart upload by hand', () => {
  const key = 'by-hand/assembled ü.bin';
  const part1 = randomBytes(5 * MiB + 123);
  const copySource = randomBytes(6 * MiB);
  const copyRange = { first: 1000, last: 1000 + 5 * MiB }; // 5 MiB + 1 byte, inclusive
  const part2 = copySource.subarray(copyRange.first, copyRange.last + 1);
  const part3 = randomBytes(1000);
  const part4 = randomBytes(10);
  let uploadId = '';
  const etags: string[] = [];

  const partList = (...parts: Array<[number, string]>) => JSON.stringify({ Parts: parts.map(([PartNumber, ETag]) => ({ PartNumber, ETag })) });
  const complete = (parts: string, target = key, id = uploadId) =>
    ['s3api', 'complete-multipart-upload', '--bucket', bucket, '--key', target, '--upload-id', id, '--multipart-upload', parts];

  test('create-multipart-upload, upload-part, upload-part-copy --copy-source-range; list-parts and list-multipart-uploads show them', async () => {
    await server!.app.objects.put({ bucket, key: 'by-hand/copy source', body: Readable.from([copySource]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
    const created = await aws.json([
      's3api', 'create-multipart-upload', '--bucket', bucket, '--key', key, '--content-type', 'application/x-assembled', '--metadata', 'assembled=by-hand',
    ]);
    assert.equal(created.Bucket, bucket);
    assert.equal(created.Key, key);
    uploadId = created.UploadId;
    assert.match(uploadId, /^\S+$/);

    const files = await Promise.all(
      [part1, part3, part4].map(async (data, i) => {
        const path = join(work, `part-${i}.bin`);
        await writeFile(path, data);
        return path;
      }),
    );
    const upload = (partNumber: number, file: string) =>
      aws.json(['s3api', 'upload-part', '--bucket', bucket, '--key', key, '--upload-id', uploadId, '--part-number', String(partNumber), '--body', file]);
    const [r1, r2, r3, r4] = await Promise.all([
      upload(1, files[0]!),
      aws.json([
        's3api', 'upload-part-copy', '--bucket', bucket, '--key', key, '--upload-id', uploadId, '--part-number', '2',
        '--copy-source', `${bucket}/by-hand/copy source`, '--copy-source-range', `bytes=${copyRange.first}-${copyRange.last}`,
      ]),
      upload(3, files[1]!),
      upload(4, files[2]!),
    ]);
    etags.push(r1.ETag, r2.CopyPartResult.ETag, r3.ETag, r4.ETag);
    assert.deepEqual(etags, [part1, part2, part3, part4].map((p) => `"${md5Hex(p)}"`));

    const [parts, uploads] = await Promise.all([
      aws.json(['s3api', 'list-parts', '--bucket', bucket, '--key', key, '--upload-id', uploadId]),
      aws.json(['s3api', 'list-multipart-uploads', '--bucket', bucket]),
    ]);
    assert.deepEqual(
      parts.Parts.map((p: { PartNumber: number; ETag: string; Size: number }) => [p.PartNumber, p.ETag, p.Size]),
      [[1, etags[0], part1.length], [2, etags[1], part2.length], [3, etags[2], part3.length], [4, etags[3], part4.length]],
    );
    assert.deepEqual(uploads.Uploads.map((u: { Key: string; UploadId: string }) => [u.Key, u.UploadId]), [[key, uploadId]]);
  });

  test('complete refuses a too-small non-last part (EntityTooSmall), a wrong ETag (InvalidPart), descending order (InvalidPartOrder); the upload survives', async () => {
    const [e1, e2, e3, e4] = etags as [string, string, string, string];
    const codes = await Promise.all([
      aws.fails(complete(partList([1, e1], [2, e2], [3, e3], [4, e4]))),
      aws.fails(complete(partList([1, '"0123456789abcdef0123456789abcdef"'], [2, e2], [3, e3]))),
      aws.fails(complete(partList([3, e3], [2, e2], [1, e1]))),
    ]);
    assert.deepEqual(codes, ['EntityTooSmall', 'InvalidPart', 'InvalidPartOrder']);
    const parts = await aws.json(['s3api', 'list-parts', '--bucket', bucket, '--key', key, '--upload-id', uploadId]);
    assert.equal(parts.Parts.length, 4);
  });

  test('complete with parts 1-3: ETag md5(part md5s)-3, bytes are their concatenation, get-object --part-number returns each part', async () => {
    const [e1, e2, e3] = etags as [string, string, string];
    const done = await aws.json(complete(partList([1, e1], [2, e2], [3, e3])));
    const expectedEtag = multipartEtag([part1, part2, part3]);
    assert.equal(done.ETag, expectedEtag);
    assert.equal(done.Key, key);

    const whole = Buffer.concat([part1, part2, part3]);
    const [object, first, second, uploads] = await Promise.all([
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', key, join(work, 'assembled.bin')]),
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', key, '--part-number', '1', join(work, 'part-1-back.bin')]),
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', key, '--part-number', '2', join(work, 'part-2-back.bin')]),
      aws.json(['s3api', 'list-multipart-uploads', '--bucket', bucket]),
    ]);
    assert.equal(object.ETag, expectedEtag);
    assert.equal(object.ContentLength, whole.length);
    assert.equal(object.ContentType, 'application/x-assembled');
    assert.deepEqual(object.Metadata, { assembled: 'by-hand' });
    assert.equal(sha256Hex(await readFile(join(work, 'assembled.bin'))), sha256Hex(whole));

    assert.equal(first.PartsCount, 3);
    assert.equal(first.ContentRange, `bytes 0-${part1.length - 1}/${whole.length}`);
    assert.deepEqual(await readFile(join(work, 'part-1-back.bin')), part1);
    assert.equal(second.ContentRange, `bytes ${part1.length}-${part1.length + part2.length - 1}/${whole.length}`);
    assert.deepEqual(await readFile(join(work, 'part-2-back.bin')), part2);
    assert.equal(uploads.Uploads, undefined, 'a completed upload is no longer listed');
  });

  test('abort-multipart-upload discards an upload: list-parts and complete → NoSuchUpload, no object appears', async () => {
    const target = 'by-hand/aborted';
    const { UploadId: id } = await aws.json(['s3api', 'create-multipart-upload', '--bucket', bucket, '--key', target]);
    const file = join(work, 'aborted-part.bin');
    await writeFile(file, randomBytes(100));
    const { ETag: etag } = await aws.json(['s3api', 'upload-part', '--bucket', bucket, '--key', target, '--upload-id', id, '--part-number', '1', '--body', file]);
    assert.deepEqual(await aws.json(['s3api', 'abort-multipart-upload', '--bucket', bucket, '--key', target, '--upload-id', id]), {});
    const codes = await Promise.all([
      aws.fails(['s3api', 'list-parts', '--bucket', bucket, '--key', target, '--upload-id', id]),
      aws.fails(complete(partList([1, etag]), target, id)),
      aws.fails(['s3api', 'head-object', '--bucket', bucket, '--key', target]),
    ]);
    assert.deepEqual(codes, ['NoSuchUpload', 'NoSuchUpload', '404']);
  });
});
