import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { runBoto3Section } from '../helpers/boto3.ts';
import { requireTool } from '../helpers/clients.ts';
import { sdkClient } from '../helpers/sdk-js.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/**
 * ListObjects v1 and v2 over 2500 keys with both SDKs: every key and common prefix exactly once, in
 * UTF-8 byte order, through every page, with and without delimiter, and encoding-type=url. Writing 2500
 * objects costs far more than listing them, so the keys are written once (by the JS SDK) and both
 * boto3 (boto3_checks/listing.py) and the JS SDK list the same bucket.
 */
const bucket = 'listing';

// Keys a URL or an XML document can get wrong; several share prefixes with the generated ones.
// boto3_checks/listing.py names some of them: keep them in step.
const specialKeys = [
  'with space',
  'with space/inner file',
  'plus+sign',
  'a+b c',
  'percent%25literal',
  'percent%',
  'unicode/日本語.txt',
  'ünïcödé',
  'emoji-😀',
  'tilde~star*paren()',
  'quote\'"',
  'amp&lt;gt>',
  'question?mark#hash',
  'semi;colon=equals,comma',
  'dir-05/ leading space',
  'trailing/',
  'tab\there',
];
const utf8Order = (keys: Iterable<string>) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
const allKeys = utf8Order([
  ...Array.from({ length: 2000 }, (_, i) => `dir-${String(i % 20).padStart(2, '0')}/file-${String(i).padStart(4, '0')}`),
  ...Array.from({ length: 483 }, (_, i) => `top-${String(i).padStart(4, '0')}`),
  ...specialKeys,
]);

/** What a delimiter listing of `keys` must return: keys without it, and the distinct prefixes up to it. */
function rolledUp(keys: string[], delimiter = '/') {
  return {
    contents: keys.filter((k) => !k.includes(delimiter)),
    prefixes: utf8Order(new Set(keys.filter((k) => k.includes(delimiter)).map((k) => k.slice(0, k.indexOf(delimiter) + 1)))),
  };
}

let server: TestServer;
let s3: S3Client;
let keysFile: string;

before(async () => {
  requireTool('ASTORE_TEST_PYTHON');
  server = await startServer();
  s3 = sdkClient(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  assert.equal(allKeys.length, 2500);
  keysFile = join(server.dataDir, 'listing-keys.json');
  await writeFile(keysFile, JSON.stringify(allKeys));
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < allKeys.length) {
        const key = allKeys[next++]!;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
      }
    }),
  );
});
after(async () => {
  s3?.destroy();
  await server?.stop();
});

async function listV2(input: { Prefix?: string; Delimiter?: string }, pageSize: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let pages = 0;
  for await (const page of paginateListObjectsV2({ client: s3, pageSize }, { Bucket: bucket, ...input })) {
    pages++;
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
    assert.equal(page.KeyCount, (page.Contents?.length ?? 0) + (page.CommonPrefixes?.length ?? 0), 'KeyCount');
  }
  return { keys, prefixes, pages };
}

/** ListObjects (v1) has no SDK paginator: continue from NextMarker, or from the last key without a delimiter. */
async function listV1(input: { Prefix?: string; Delimiter?: string }, maxKeys: number) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let pages = 0;
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: bucket, ...input, Marker: marker, MaxKeys: maxKeys }));
    pages++;
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    prefixes.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
    if (!page.IsTruncated) return { keys, prefixes, pages };
    if (input.Delimiter) assert.ok(page.NextMarker, 'a truncated delimiter listing has a NextMarker');
    marker = page.NextMarker ?? page.Contents?.at(-1)?.Key;
    assert.ok(marker, 'somewhere to continue from');
  }
}

describe('listing 2500 keys with boto3', () => {
  test('list_objects and list_objects_v2 paginators, delimiters, prefixes, StartAfter, encoding-type=url', async () => {
    await runBoto3Section(
      server,
      'listing',
      [
        'list_objects_v2 paginator without delimiter: every key once, in order',
        'list_objects (v1) paginator without delimiter: every key once, in order',
        "v1 and v2 paginators with delimiter '/': keys and common prefixes once each, in order",
        'prefix and delimiter inside a directory, including a prefix with a space',
        'StartAfter and MaxKeys on list_objects_v2',
        'encoding-type=url: keys and prefixes come back percent-encoded',
      ],
      { ASTORE_LISTING_BUCKET: bucket, ASTORE_LISTING_KEYS: keysFile },
    );
  });
});

describe('listing 2500 keys with the JS SDK', () => {
  test('paginateListObjectsV2 without delimiter: every key once, in UTF-8 byte order', async () => {
    for (const pageSize of [1000, 377]) {
      const { keys, prefixes, pages } = await listV2({}, pageSize);
      assert.equal(pages, Math.ceil(allKeys.length / pageSize));
      assert.deepEqual(keys, allKeys, `page size ${pageSize}`);
      assert.deepEqual(prefixes, []);
    }
  });

  test('ListObjects (v1) without delimiter, continuing from the last key', async () => {
    for (const maxKeys of [1000, 401]) {
      const { keys, pages } = await listV1({}, maxKeys);
      assert.equal(pages, Math.ceil(allKeys.length / maxKeys));
      assert.deepEqual(keys, allKeys, `max-keys ${maxKeys}`);
    }
  });

  test("v1 and v2 with delimiter '/': keys and common prefixes once each, in order, at page sizes 1000 and 7", async () => {
    const expected = rolledUp(allKeys);
    for (const size of [1000, 7]) {
      for (const [name, listing] of [['v2', await listV2({ Delimiter: '/' }, size)], ['v1', await listV1({ Delimiter: '/' }, size)]] as const) {
        assert.deepEqual(listing.keys, expected.contents, `${name}/${size} keys`);
        assert.deepEqual(listing.prefixes, expected.prefixes, `${name}/${size} common prefixes`);
      }
    }
  });

  test('prefix with delimiter inside a directory, a prefix with a space, a prefix that is not a directory', async () => {
    for (const prefix of ['dir-05/', 'with space/', 'unicode/', 'dir-1']) {
      const under = rolledUp(allKeys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)));
      const expected = { keys: under.contents.map((k) => prefix + k), prefixes: under.prefixes.map((p) => prefix + p) };
      for (const [name, listing] of [['v2', await listV2({ Prefix: prefix, Delimiter: '/' }, 40)], ['v1', await listV1({ Prefix: prefix, Delimiter: '/' }, 40)]] as const) {
        assert.deepEqual({ keys: listing.keys, prefixes: listing.prefixes }, expected, `${name} under ${JSON.stringify(prefix)}`);
      }
    }
  });

  test('EncodingType url: keys and prefixes come back percent-encoded and decode to the keys', async () => {
    type Input = { Prefix?: string; Delimiter?: string; MaxKeys?: number };
    const listers = [
      (input: Input) => s3.send(new ListObjectsV2Command({ Bucket: bucket, EncodingType: 'url', ...input })),
      (input: Input) => s3.send(new ListObjectsCommand({ Bucket: bucket, EncodingType: 'url', ...input })),
    ];
    for (const list of listers) {
      const page = await list({ MaxKeys: 1000 });
      assert.equal(page.EncodingType, 'url');
      const encoded = (page.Contents ?? []).map((o) => o.Key!);
      assert.deepEqual(encoded.filter((k) => !/^[\x21-\x7e]+$/.test(k)), [], 'every key is encoded to printable ASCII');
      assert.deepEqual(encoded.map((k) => decodeURIComponent(k)), allKeys.slice(0, 1000));
      const spaced = await list({ Prefix: 'with space/', Delimiter: '/' });
      assert.equal(spaced.Prefix, 'with%20space/');
      assert.deepEqual(spaced.Contents?.map((o) => o.Key), ['with%20space/inner%20file']);
    }
    const plus = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'plus+', EncodingType: 'url' }));
    assert.deepEqual(plus.Contents?.map((o) => o.Key), ['plus%2Bsign']);
    const percent = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'percent%', EncodingType: 'url' }));
    assert.deepEqual(percent.Contents?.map((o) => o.Key), ['percent%25', 'percent%2525literal']);
    const unicode = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'unicode/', Delimiter: '/', EncodingType: 'url' }));
    assert.deepEqual(unicode.Contents?.map((o) => o.Key), [`unicode/${encodeURIComponent('日本語')}.txt`]);
  });

  test('StartAfter and MaxKeys: the page starts strictly after the key and is truncated', async () => {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, StartAfter: 'percent%', MaxKeys: 3 }));
    const start = allKeys.indexOf('percent%') + 1;
    assert.deepEqual(page.Contents?.map((o) => o.Key), allKeys.slice(start, start + 3));
    assert.deepEqual([page.KeyCount, page.IsTruncated], [3, true]);
  });
});
