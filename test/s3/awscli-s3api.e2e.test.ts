/**
 * `aws s3api` (aws-cli v1) against astore, end to end: buckets, object reads and conditionals,
 * listings, copies, batch deletes and authentication failures. Multipart calls are in
 * awscli-multipart.e2e.test.ts. Listing fixtures are seeded through the domain services, to keep the
 * number of (slow to start) CLI runs down; everything asserted goes over the wire.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { md5Hex, type AwsCli, openAwsCliFixture, closeAwsCliFixture } from '../helpers/awscli.ts';
import type { TestServer } from '../helpers/server.ts';

let server: TestServer | undefined;
let work = '';
let aws: AwsCli;
const bucket = 'calls';

async function seed(key: string, body: Buffer = Buffer.from(key)): Promise<void> {
  await server!.app.objects.put({ bucket, key, body: Readable.from([body]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
}

const keysOf = (listing: { Contents?: Array<{ Key: string }> }): string[] => (listing.Contents ?? []).map((o) => o.Key);
const prefixesOf = (listing: { CommonPrefixes?: Array<{ Prefix: string }> }): string[] => (listing.CommonPrefixes ?? []).map((p) => p.Prefix);

before(async () => ({ server, work, aws } = await openAwsCliFixture('s3api', bucket)));
after(() => closeAwsCliFixture({ server, work }));

describe('aws s3api: buckets', () => {
  test('create-bucket (with LocationConstraint us-east-1 too), head-bucket, get-bucket-location, delete-bucket; another region → InvalidLocationConstraint', async () => {
    const [plain, located, elsewhere] = await Promise.all([
      aws.json(['s3api', 'create-bucket', '--bucket', 'api-plain']),
      aws.json(['s3api', 'create-bucket', '--bucket', 'api-located', '--create-bucket-configuration', 'LocationConstraint=us-east-1']),
      aws.fails(['s3api', 'create-bucket', '--bucket', 'api-elsewhere', '--create-bucket-configuration', 'LocationConstraint=eu-west-1']),
    ]);
    assert.equal(plain.Location, '/api-plain');
    assert.equal(located.Location, '/api-located');
    assert.equal(elsewhere, 'InvalidLocationConstraint');

    const [head, location, headElsewhere] = await Promise.all([
      aws.json(['s3api', 'head-bucket', '--bucket', 'api-plain']),
      aws.json(['s3api', 'get-bucket-location', '--bucket', 'api-located']),
      aws.fails(['s3api', 'head-bucket', '--bucket', 'api-elsewhere']),
    ]);
    assert.equal(head.BucketRegion, 'us-east-1');
    assert.equal(location.LocationConstraint, null, 'us-east-1 is the empty LocationConstraint');
    assert.equal(headElsewhere, '404', 'the refused bucket was not created');

    assert.deepEqual(await aws.json(['s3api', 'delete-bucket', '--bucket', 'api-plain']), {});
    const [headDeleted, deleteAgain] = await Promise.all([
      aws.fails(['s3api', 'head-bucket', '--bucket', 'api-plain']),
      aws.fails(['s3api', 'delete-bucket', '--bucket', 'api-plain']),
    ]);
    assert.equal(headDeleted, '404');
    assert.equal(deleteAgain, 'NoSuchBucket');
  });
});

describe('aws s3api: object reads', () => {
  const content = randomBytes(100);
  let etag = '';

  test('put-object stores the body; get-object returns it whole, and --range bytes=10-19 exactly', async () => {
    const local = join(work, 'put.bin');
    await writeFile(local, content);
    const put = await aws.json(['s3api', 'put-object', '--bucket', bucket, '--key', 'read/obj ü.bin', '--body', local, '--content-type', 'application/x-test']);
    etag = put.ETag;
    assert.equal(etag, `"${md5Hex(content)}"`);

    const [whole, ranged] = await Promise.all([
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/obj ü.bin', join(work, 'whole.bin')]),
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/obj ü.bin', '--range', 'bytes=10-19', join(work, 'range.bin')]),
    ]);
    assert.equal(whole.ETag, etag);
    assert.equal(whole.ContentLength, 100);
    assert.equal(whole.ContentType, 'application/x-test');
    assert.deepEqual(await readFile(join(work, 'whole.bin')), content);
    assert.equal(ranged.ContentRange, 'bytes 10-19/100');
    assert.equal(ranged.ContentLength, 10);
    assert.equal(ranged.ETag, etag);
    assert.deepEqual(await readFile(join(work, 'range.bin')), content.subarray(10, 20));
  });

  test('conditional get-object: --if-none-match <etag> → 304, --if-match <other> → PreconditionFailed, --if-match <etag> → the object', async () => {
    const [notModified, failed, matched] = await Promise.all([
      aws.fails(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/obj ü.bin', '--if-none-match', etag, join(work, 'c1.bin')]),
      aws.fails(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/obj ü.bin', '--if-match', '"0123456789abcdef0123456789abcdef"', join(work, 'c2.bin')]),
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/obj ü.bin', '--if-match', etag, join(work, 'c3.bin')]),
    ]);
    assert.equal(notModified, '304');
    assert.equal(failed, 'PreconditionFailed');
    assert.equal(matched.ETag, etag);
    assert.deepEqual(await readFile(join(work, 'c3.bin')), content);
  });

  test('a missing key: head-object → 404, get-object → NoSuchKey; a missing bucket → NoSuchBucket', async () => {
    const codes = await Promise.all([
      aws.fails(['s3api', 'head-object', '--bucket', bucket, '--key', 'read/missing']),
      aws.fails(['s3api', 'get-object', '--bucket', bucket, '--key', 'read/missing', join(work, 'missing.bin')]),
      aws.fails(['s3api', 'get-object', '--bucket', 'no-such-bucket', '--key', 'x', join(work, 'missing.bin')]),
    ]);
    assert.deepEqual(codes, ['404', 'NoSuchKey', 'NoSuchBucket']);
  });
});

// Auto-paginated CLI output keeps only the aggregated lists; --no-paginate shows the whole response.
describe('aws s3api: listing', () => {
  // In S3 (UTF-8 byte) order; 'list/ü/x' sorts after 'list/z'.
  const keys = ['list/a.txt', 'list/b c.txt', 'list/dir/1', 'list/dir/2', 'list/dir/sub/3', 'list/e+f&g.txt', 'list/q?m#h', 'list/z', 'list/ü/x'];
  before(async () => {
    for (const key of [...keys, 'other/q']) await seed(key);
  });

  test('--prefix with --delimiter rolls keys up into CommonPrefixes, in v1 and v2, also when paged one entry at a time', async () => {
    const query = ['--bucket', bucket, '--prefix', 'list/', '--delimiter', '/'];
    const [v2, v1, v2Paged, v1Paged] = await Promise.all([
      aws.json(['s3api', 'list-objects-v2', ...query, '--no-paginate']),
      aws.json(['s3api', 'list-objects', ...query, '--no-paginate']),
      aws.json(['s3api', 'list-objects-v2', ...query, '--page-size', '1']),
      aws.json(['s3api', 'list-objects', ...query, '--page-size', '1']),
    ]);
    for (const listing of [v2, v1, v2Paged, v1Paged]) {
      assert.deepEqual(keysOf(listing), ['list/a.txt', 'list/b c.txt', 'list/e+f&g.txt', 'list/q?m#h', 'list/z']);
      assert.deepEqual(prefixesOf(listing), ['list/dir/', 'list/ü/']);
    }
    assert.equal(v2.KeyCount, 7);
  });

  test('--max-keys returns one truncated page; --max-items with --starting-token pages through every key', async () => {
    const [page, firstV2, firstV1] = await Promise.all([
      aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'list/', '--max-keys', '3']),
      aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'list/', '--max-items', '3', '--page-size', '2']),
      aws.json(['s3api', 'list-objects', '--bucket', bucket, '--prefix', 'list/', '--max-items', '5', '--page-size', '2']),
    ]);
    assert.deepEqual(keysOf(page), keys.slice(0, 3));
    assert.equal(page.KeyCount, 3);
    assert.equal(page.MaxKeys, 3);
    assert.equal(page.IsTruncated, true);
    assert.equal(typeof page.NextContinuationToken, 'string');
    assert.deepEqual(keysOf(firstV2), keys.slice(0, 3));
    assert.deepEqual(keysOf(firstV1), keys.slice(0, 5));
    assert.equal(typeof firstV2.NextToken, 'string');
    assert.equal(typeof firstV1.NextToken, 'string');

    const [restV2, restV1] = await Promise.all([
      aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'list/', '--page-size', '2', '--starting-token', firstV2.NextToken]),
      aws.json(['s3api', 'list-objects', '--bucket', bucket, '--prefix', 'list/', '--page-size', '2', '--starting-token', firstV1.NextToken]),
    ]);
    assert.deepEqual(keysOf(restV2), keys.slice(3));
    assert.deepEqual(keysOf(restV1), keys.slice(5));
    assert.equal(restV2.NextToken, undefined);
    assert.equal(restV1.NextToken, undefined);
  });

  test('--start-after lists only keys after the given one; --fetch-owner adds Owner, which v2 leaves out otherwise', async () => {
    const [after, withOwner] = await Promise.all([
      aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'list/', '--start-after', 'list/dir/sub/3', '--no-paginate']),
      aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'list/', '--max-keys', '1', '--fetch-owner']),
    ]);
    assert.deepEqual(keysOf(after), ['list/e+f&g.txt', 'list/q?m#h', 'list/z', 'list/ü/x']);
    assert.equal(after.StartAfter, 'list/dir/sub/3');
    assert.equal(after.Contents[0].Owner, undefined);
    assert.deepEqual(Object.keys(withOwner.Contents[0].Owner ?? {}).sort(), ['DisplayName', 'ID']);
    assert.equal(typeof withOwner.Contents[0].Owner.ID, 'string');
  });

  test('--encoding-type url returns percent-encoded keys and prefixes (the CLI leaves them encoded when asked explicitly)', async () => {
    const query = ['--bucket', bucket, '--prefix', 'list/', '--delimiter', '/', '--encoding-type', 'url', '--no-paginate'];
    const [v2, v1] = await Promise.all([aws.json(['s3api', 'list-objects-v2', ...query]), aws.json(['s3api', 'list-objects', ...query])]);
    for (const listing of [v2, v1]) {
      assert.equal(listing.EncodingType, 'url');
      assert.deepEqual(keysOf(listing), ['list/a.txt', 'list/b%20c.txt', 'list/e%2Bf%26g.txt', 'list/q%3Fm%23h', 'list/z']);
      assert.deepEqual(prefixesOf(listing), ['list/dir/', 'list/%C3%BC/']);
    }
  });
});

describe('aws s3api: copy-object', () => {
  test('COPY keeps content type and metadata, REPLACE takes them from the request; --copy-source-if-match mismatch → PreconditionFailed', async () => {
    const content = randomBytes(4321);
    const local = join(work, 'copy-src.bin');
    await writeFile(local, content);
    const src = 'copy/source ü+1.bin';
    const put = await aws.json([
      's3api', 'put-object', '--bucket', bucket, '--key', src, '--body', local,
      '--content-type', 'application/x-source', '--metadata', 'origin=src,level=1', '--cache-control', 'no-cache',
    ]);
    const copySource = `${bucket}/${src}`;
    const [kept, replaced, mismatch] = await Promise.all([
      aws.json(['s3api', 'copy-object', '--bucket', bucket, '--key', 'copy/kept', '--copy-source', copySource]),
      aws.json([
        's3api', 'copy-object', '--bucket', bucket, '--key', 'copy/replaced', '--copy-source', copySource,
        '--metadata-directive', 'REPLACE', '--content-type', 'text/plain', '--metadata', 'fresh=yes',
      ]),
      aws.fails(['s3api', 'copy-object', '--bucket', bucket, '--key', 'copy/never', '--copy-source', copySource, '--copy-source-if-match', '"0123456789abcdef0123456789abcdef"']),
    ]);
    assert.equal(kept.CopyObjectResult.ETag, put.ETag);
    assert.equal(replaced.CopyObjectResult.ETag, put.ETag);
    assert.equal(mismatch, 'PreconditionFailed');

    const [keptHead, replacedHead, never] = await Promise.all([
      aws.json(['s3api', 'get-object', '--bucket', bucket, '--key', 'copy/kept', join(work, 'kept.bin')]),
      aws.json(['s3api', 'head-object', '--bucket', bucket, '--key', 'copy/replaced']),
      aws.fails(['s3api', 'head-object', '--bucket', bucket, '--key', 'copy/never']),
    ]);
    assert.deepEqual(await readFile(join(work, 'kept.bin')), content);
    assert.equal(keptHead.ContentType, 'application/x-source');
    assert.deepEqual(keptHead.Metadata, { origin: 'src', level: '1' });
    assert.equal(keptHead.CacheControl, 'no-cache');
    assert.equal(replacedHead.ContentType, 'text/plain');
    assert.deepEqual(replacedHead.Metadata, { fresh: 'yes' });
    assert.equal(replacedHead.CacheControl, undefined, 'REPLACE drops headers the request does not give');
    assert.equal(replacedHead.ContentLength, content.length);
    assert.equal(never, '404', 'a failed precondition writes nothing');
  });
});

describe('aws s3api: delete-objects', () => {
  test('Quiet false reports every key deleted (missing ones too), Quiet true reports nothing; the keys are gone', async () => {
    for (const key of ['del/1', 'del/2', 'del/ü 3', 'del/4']) await seed(key);
    const [loud, quiet] = await Promise.all([
      aws.json(['s3api', 'delete-objects', '--bucket', bucket, '--delete', JSON.stringify({ Objects: [{ Key: 'del/1' }, { Key: 'del/ü 3' }, { Key: 'del/missing' }], Quiet: false })]),
      aws.json(['s3api', 'delete-objects', '--bucket', bucket, '--delete', JSON.stringify({ Objects: [{ Key: 'del/2' }], Quiet: true })]),
    ]);
    assert.deepEqual(loud.Deleted.map((d: { Key: string }) => d.Key).sort(), ['del/1', 'del/missing', 'del/ü 3']);
    assert.equal(loud.Errors, undefined);
    assert.equal(quiet.Deleted, undefined);
    assert.equal(quiet.Errors, undefined);
    assert.deepEqual(keysOf(await aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'del/'])), ['del/4']);
  });
});

describe('aws s3api: authentication', () => {
  test('a wrong secret → SignatureDoesNotMatch for reads and writes, and the write stores nothing', async () => {
    const wrongSecret = { env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret' } };
    const local = join(work, 'auth.bin');
    await writeFile(local, 'must not be stored');
    const codes = await Promise.all([
      aws.fails(['s3', 'ls'], wrongSecret),
      aws.fails(['s3api', 'put-object', '--bucket', bucket, '--key', 'auth/forged', '--body', local], wrongSecret),
    ]);
    assert.deepEqual(codes, ['SignatureDoesNotMatch', 'SignatureDoesNotMatch']);
    assert.equal(await aws.fails(['s3api', 'head-object', '--bucket', bucket, '--key', 'auth/forged']), '404');
  });

  test('an unknown access key → InvalidAccessKeyId; no credentials (--no-sign-request) → AccessDenied', async () => {
    const codes = await Promise.all([
      aws.fails(['s3', 'ls'], { env: { AWS_ACCESS_KEY_ID: 'AKIDUNKNOWN0000000000' } }),
      aws.fails(['s3', 'ls', '--no-sign-request']),
      aws.fails(['s3api', 'list-objects-v2', '--bucket', bucket, '--no-sign-request']),
    ]);
    assert.deepEqual(codes, ['InvalidAccessKeyId', 'AccessDenied', 'AccessDenied']);
  });
});
