/**
 * `aws s3` (the high-level commands of aws-cli v1) against astore, end to end: buckets, cp, ls, sync,
 * mv, rm, rb and presign. Multipart transfers are in awscli-multipart.e2e.test.ts, s3api calls in
 * awscli-s3api.e2e.test.ts. Fixtures the assertions do not depend on being written over S3 are
 * seeded through the domain services, to keep the number of (slow to start) CLI runs down.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { md5Hex, openAwsCli, treeDigests, type AwsCli, openAwsCliFixture, closeAwsCliFixture } from '../helpers/awscli.ts';
import type { TestServer } from '../helpers/server.ts';
import { run } from '../helpers/clients.ts';

let server: TestServer | undefined;
let work = '';
let aws: AwsCli;
const bucket = 'objects';

async function seed(key: string, body: Buffer, target = bucket): Promise<void> {
  await server!.app.objects.put({ bucket: target, key, body: Readable.from([body]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
}

/** `aws s3 ls` lines: `2024-01-01 00:00:00 <name>` (buckets) or `... <size> <key>` (objects). */
function lsEntries(stdout: string): Array<{ size?: number; name: string }> {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const object = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+) (.*)$/.exec(line);
      if (object) return { size: Number(object[1]), name: object[2]! };
      const bucketLine = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$/.exec(line);
      if (bucketLine) return { name: bucketLine[1]! };
      const prefix = /^ +PRE (.*)$/.exec(line);
      if (prefix) return { name: prefix[1]! };
      throw new Error(`unexpected aws s3 ls line: ${JSON.stringify(line)}`);
    });
}

before(async () => ({ server, work, aws } = await openAwsCliFixture('objects', bucket)));
after(() => closeAwsCliFixture({ server, work }));

describe('aws s3: buckets', () => {
  test('mb creates a bucket that ls lists; mb of an existing bucket → BucketAlreadyOwnedByYou', async () => {
    assert.equal((await aws.ok(['s3', 'mb', 's3://made-by-mb'])).trim(), 'make_bucket: made-by-mb');
    const names = lsEntries(await aws.ok(['s3', 'ls'])).map((e) => e.name);
    assert.deepEqual(names.sort(), [bucket, 'made-by-mb'].sort());
    assert.equal(await aws.fails(['s3', 'mb', 's3://made-by-mb']), 'BucketAlreadyOwnedByYou');
  });

  test('rb of a non-empty bucket → BucketNotEmpty; rm, rm --recursive empty it, then rb removes it', async () => {
    await server!.app.buckets.create('to-remove');
    for (const key of ['top.txt', 'dir/a.txt', 'dir/sub/b c.txt', 'dir/ü.txt']) await seed(key, Buffer.from(key), 'to-remove');

    assert.equal(await aws.fails(['s3', 'rb', 's3://to-remove']), 'BucketNotEmpty');
    await aws.ok(['s3', 'rm', 's3://to-remove/top.txt', '--only-show-errors']);
    const remaining = lsEntries(await aws.ok(['s3', 'ls', 's3://to-remove', '--recursive'])).map((e) => e.name);
    assert.deepEqual(remaining, ['dir/a.txt', 'dir/sub/b c.txt', 'dir/ü.txt']);
    await aws.ok(['s3', 'rm', 's3://to-remove/dir/', '--recursive', '--only-show-errors']);
    assert.equal((await aws.ok(['s3', 'ls', 's3://to-remove', '--recursive'])).trim(), '');
    assert.equal((await aws.ok(['s3', 'rb', 's3://to-remove'])).trim(), 'remove_bucket: to-remove');
    assert.equal(await aws.fails(['s3api', 'head-bucket', '--bucket', 'to-remove']), '404');
  });
});

describe('aws s3: objects', () => {
  test('cp uploads a small file and downloads it byte for byte; the ETag is its md5', async () => {
    const local = join(work, 'small.bin');
    const content = randomBytes(3000);
    await writeFile(local, content);
    assert.equal((await aws.ok(['s3', 'cp', local, `s3://${bucket}/cp/small file.bin`, '--only-show-errors'])).trim(), '');
    const head = await aws.json(['s3api', 'head-object', '--bucket', bucket, '--key', 'cp/small file.bin']);
    assert.equal(head.ETag, `"${md5Hex(content)}"`);
    assert.equal(head.ContentLength, content.length);
    const back = join(work, 'small-back.bin');
    await aws.ok(['s3', 'cp', `s3://${bucket}/cp/small file.bin`, back, '--only-show-errors']);
    assert.deepEqual(await readFile(back), content);
  });

  test('cp --content-type/--metadata/--cache-control/--content-disposition are stored and returned by head-object', async () => {
    const local = join(work, 'headers.txt');
    await writeFile(local, 'with headers\n');
    await aws.ok([
      's3', 'cp', local, `s3://${bucket}/cp/headers.txt`, '--only-show-errors',
      '--content-type', 'text/x-astore; charset=utf-8',
      '--metadata', 'owner=team-a,build-id=1234',
      '--cache-control', 'max-age=60, must-revalidate',
      '--content-disposition', 'attachment; filename="report 1.txt"',
    ]);
    const head = await aws.json(['s3api', 'head-object', '--bucket', bucket, '--key', 'cp/headers.txt']);
    assert.equal(head.ContentType, 'text/x-astore; charset=utf-8');
    assert.deepEqual(head.Metadata, { owner: 'team-a', 'build-id': '1234' });
    assert.equal(head.CacheControl, 'max-age=60, must-revalidate');
    assert.equal(head.ContentDisposition, 'attachment; filename="report 1.txt"');
    assert.equal(head.ContentLength, 13);
  });

  test('cp - uploads standard input and cp <object> - writes the object to standard output', async () => {
    const text = `from stdin ü ${'x'.repeat(5000)}\n`;
    await aws.ok(['s3', 'cp', '-', `s3://${bucket}/cp/stdin.txt`, '--only-show-errors'], { input: text });
    assert.equal(await aws.ok(['s3', 'cp', `s3://${bucket}/cp/stdin.txt`, '-', '--only-show-errors']), text);
  });

  test('ls lists keys with sizes: directories as PRE, everything with --recursive', async () => {
    await seed('ls/a.txt', Buffer.from('abc'));
    await seed('ls/sub dir/b c.txt', Buffer.from('hello'));
    await seed('ls/ü/日本語.txt', Buffer.alloc(0));
    const [flat, recursive] = await Promise.all([
      aws.ok(['s3', 'ls', `s3://${bucket}/ls/`]),
      aws.ok(['s3', 'ls', `s3://${bucket}/ls/`, '--recursive']),
    ]);
    assert.deepEqual(lsEntries(flat), [{ name: 'sub dir/' }, { name: 'ü/' }, { size: 3, name: 'a.txt' }]);
    assert.deepEqual(lsEntries(recursive), [
      { size: 3, name: 'ls/a.txt' },
      { size: 5, name: 'ls/sub dir/b c.txt' },
      { size: 0, name: 'ls/ü/日本語.txt' },
    ]);
  });

  test('mv moves a local file to S3 and an object to another key: the source is gone, the bytes are kept', async () => {
    const local = join(work, 'to-move.bin');
    const content = randomBytes(777);
    await writeFile(local, content);
    await aws.ok(['s3', 'mv', local, `s3://${bucket}/mv/first`, '--only-show-errors']);
    await assert.rejects(stat(local), { code: 'ENOENT' });
    await aws.ok(['s3', 'mv', `s3://${bucket}/mv/first`, `s3://${bucket}/mv/second ü`, '--only-show-errors']);
    const listing = await aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'mv/']);
    assert.deepEqual(
      listing.Contents.map((o: { Key: string; ETag: string; Size: number }) => [o.Key, o.ETag, o.Size]),
      [['mv/second ü', `"${md5Hex(content)}"`, 777]],
    );
  });
});

/** ~30 files: nested directories, empty files, names with spaces, unicode and URL-special characters. */
function syncTreeFiles(): Record<string, Buffer> {
  const files: Record<string, Buffer> = { 'top.txt': randomBytes(2048) };
  for (let i = 1; i <= 5; i++) files[`dir one/file ${i}.txt`] = randomBytes(100 * i);
  for (let i = 1; i <= 4; i++) files[`dir one/nested/deeper/leaf-${i}.bin`] = randomBytes(5000 + i);
  for (let i = 1; i <= 4; i++) files[`ünïcödé/日本語 ファイル ${i}.txt`] = randomBytes(i * 31);
  for (let i = 1; i <= 5; i++) files[`empty/empty-${i}`] = Buffer.alloc(0);
  for (let i = 1; i <= 5; i++) files[`mixed/a b/ç ${i}`] = randomBytes(i);
  for (const name of ['plus+sign.txt', 'amp&eq=.txt', '100% done.txt', "quote'paren(1).txt", 'tilde~semi;colon:.txt', 'sp  two.txt']) {
    files[`mixed/${name}`] = randomBytes(64);
  }
  return files;
}

describe('aws s3: sync', () => {
  test('sync uploads a tree, a second sync uploads nothing, sync down reproduces it byte for byte, --delete removes', async () => {
    const source = join(work, 'sync-source');
    const files = syncTreeFiles();
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(source, path)), { recursive: true });
      await writeFile(join(source, path), content);
    }
    const target = `s3://${bucket}/sync`;
    const uploadLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('upload: '));

    const first = await aws.ok(['s3', 'sync', source, target, '--no-progress']);
    assert.equal(uploadLines(first).length, Object.keys(files).length, first);

    const again = await aws.ok(['s3', 'sync', source, target, '--no-progress']);
    assert.equal(again.trim(), '', 'a second sync of an unchanged tree transfers nothing');

    const down = join(work, 'sync-down');
    await aws.ok(['s3', 'sync', target, down, '--only-show-errors']);
    const expected = await treeDigests(source);
    assert.equal(Object.keys(expected).length, 30);
    assert.deepEqual(await treeDigests(down), expected);

    // Given three files removed and one grown locally, sync --delete deletes three keys and uploads one.
    const removed = ['dir one/file 2.txt', 'ünïcödé/日本語 ファイル 3.txt', 'empty/empty-4'];
    for (const path of removed) await rm(join(source, path));
    await writeFile(join(source, 'top.txt'), randomBytes(4096));
    const withDelete = await aws.ok(['s3', 'sync', source, target, '--delete', '--no-progress']);
    const lines = withDelete.trim().split('\n').sort();
    assert.deepEqual(lines.slice(0, 3), removed.map((path) => `delete: ${target}/${path}`).sort());
    assert.equal(lines.length, 4, withDelete);
    assert.match(lines[3]!, new RegExp(`^upload: \\S*/sync-source/top\\.txt to ${target}/top\\.txt$`)); // the CLI prints a relative local path
    const listing = await aws.json(['s3api', 'list-objects-v2', '--bucket', bucket, '--prefix', 'sync/']);
    const keys = listing.Contents.map((o: { Key: string }) => o.Key.slice('sync/'.length));
    assert.deepEqual(keys, Object.keys(await treeDigests(source)));
  });
});

describe('aws s3: presign', () => {
  test('a presigned URL fetches the exact bytes; one with --expires-in 1 is AccessDenied 2 s later', async () => {
    const content = randomBytes(1500);
    await seed('presign/file name.bin', content);
    const [url, shortUrl] = await Promise.all([
      aws.ok(['s3', 'presign', `s3://${bucket}/presign/file name.bin`]),
      aws.ok(['s3', 'presign', `s3://${bucket}/presign/file name.bin`, '--expires-in', '1']),
    ]);
    const signedAt = Date.now();
    assert.match(url, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
    // Fetched with curl, as a user would: no S3 client, no credentials.
    const out = join(work, 'presigned-download.bin');
    const curl = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', url.trim()]);
    assert.equal(curl.code, 0, `curl failed: ${curl.stderr}`);
    assert.equal(curl.stdout, '200');
    assert.deepEqual(await readFile(out), content);

    await new Promise((r) => setTimeout(r, Math.max(0, signedAt + 2000 - Date.now())));
    const expired = await fetch(shortUrl.trim());
    assert.equal(expired.status, 403);
    const body = await expired.text();
    assert.match(body, /<Code>AccessDenied<\/Code>/);
    assert.match(body, /Request has expired/);
  });

  test('out of the box aws-cli v1 presigns with Signature V2, which astore accepts', async () => {
    // Without `s3.signature_version = s3v4` the CLI signs V2 (HMAC-SHA1); expiry and header auth: awscli-presign-v2.e2e.test.ts.
    const content = randomBytes(700);
    await seed('presign/v2 file.bin', content);
    const v2 = await openAwsCli(server!, work, { presignV4: false });
    const url = (await v2.ok(['s3', 'presign', `s3://${bucket}/presign/v2 file.bin`])).trim();
    assert.match(url, /[?&]AWSAccessKeyId=/);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);
  });
});
