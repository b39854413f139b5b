import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import type { ObjectRecord } from '../types.ts';
import { type StoreRef, T0, bucketRecord, byteOrder, digestOf, objectRecord, rejectsWith, summaryOf } from './fixtures.ts';

/** Keys whose UTF-8 byte order differs from UTF-16 order, case order and LIKE semantics. */
const LISTING_KEYS = [
  'a', 'a/b', 'a/b/c', 'a b', 'ab', 'A', 'B', 'b', 'Z', 'key with spaces', ' leading space',
  '%', '%x', '_', '_x', 'x%', 'é', 'éa', 'e\u0301', '日本', '日本語/x', '\uffef', '\uffff', '\uffffz',
  '😀', '😀/x', '😁', '\u{10fffe}', '\u{10ffff}', '\u{10ffff}a',
];

export function objectTests(store: StoreRef): void {
  beforeEach(async () => {
    await store().buckets.create(bucketRecord('b'));
  });

  test('put then get round-trips every field', async () => {
    const object = objectRecord('b', 'dir/ファイル ☕.bin', {
      size: 15 * 1024 * 1024 + 7,
      etag: '"0123456789abcdef0123456789abcdef-3"',
      lastModified: new Date(T0 + 123),
      headers: {
        contentType: 'application/x-tar; charset="binary"',
        contentEncoding: 'gzip',
        contentDisposition: 'attachment; filename="é.tar"',
        contentLanguage: 'fr-CA',
        cacheControl: 'max-age=60',
        expires: 'Thu, 01 Dec 2044 16:00:00 GMT',
      },
      userMetadata: { author: 'Zoë Ñandú', emoji: '😀 ✓', quote: 'say "hi"\n\\', empty: '' },
      checksum: { algorithm: 'CRC64NVME', value: 'AAAAAAAAAAA=', type: 'FULL_OBJECT' },
      digest: digestOf('whole'),
      segments: [
        { digest: digestOf('part-z'), size: 5 * 1024 * 1024, partNumber: 1, etag: '"aa"', checksum: 'AQID' },
        { digest: digestOf('part-a'), size: 5 * 1024 * 1024, partNumber: 2, etag: '"bb"', checksum: 'BAUG' },
        { digest: digestOf('part-m'), size: 5 * 1024 * 1024 + 7, partNumber: 4, etag: '"cc"' },
      ],
    });
    assert.equal(await store().objects.put(object), null);
    assert.deepEqual(await store().objects.get('b', object.key), object);
  });

  test('a minimal record round-trips without invented fields', async () => {
    const empty = objectRecord('b', 'empty', { size: 0, segments: [] });
    const single = objectRecord('b', 'single');
    await store().objects.put(empty);
    await store().objects.put(single);
    assert.deepEqual(await store().objects.get('b', 'empty'), empty);
    assert.deepEqual(await store().objects.get('b', 'single'), single);
  });

  test('segments keep their order across many parts, including parts with the same bytes', async () => {
    const segments = Array.from({ length: 1_200 }, (_, i) => ({ digest: digestOf(`s${(1_199 - i) % 700}`), size: 1, partNumber: i + 1, etag: `"${i}"` }));
    const object = objectRecord('b', 'big', { size: segments.length, segments });
    await store().objects.put(object);
    assert.deepEqual(await store().objects.get('b', 'big'), object);
  });

  test('get returns null for an absent key or bucket', async () => {
    assert.equal(await store().objects.get('b', 'nothing'), null);
    assert.equal(await store().objects.get('no-bucket', 'nothing'), null);
  });

  test('overwrite returns the replaced record and get returns only the new one', async () => {
    const first = objectRecord('b', 'k', {
      userMetadata: { v: '1' },
      checksum: { algorithm: 'SHA256', value: 'abc=', type: 'COMPOSITE' },
      segments: [
        { digest: digestOf('1a'), size: 1 },
        { digest: digestOf('1b'), size: 2 },
      ],
    });
    const second = objectRecord('b', 'k', { userMetadata: { v: '2' }, etag: '"second"', segments: [{ digest: digestOf('2'), size: 3 }] });
    await store().objects.put(first);
    assert.deepEqual(await store().objects.put(second), first);
    assert.deepEqual(await store().objects.get('b', 'k'), second);
    assert.deepEqual(await store().objects.list({ bucket: 'b', limit: 10 }), [summaryOf(second)]);
  });

  test('delete returns the deleted record, then null', async () => {
    const object = objectRecord('b', 'gone', { userMetadata: { a: 'b' } });
    await store().objects.put(object);
    assert.deepEqual(await store().objects.delete('b', 'gone'), object);
    assert.equal(await store().objects.get('b', 'gone'), null);
    assert.equal(await store().objects.delete('b', 'gone'), null);
  });

  test('put into a missing bucket throws NoSuchBucket and touches no blob', async () => {
    const object = objectRecord('missing', 'k');
    await rejectsWith(store().objects.put(object), 'NoSuchBucket');
    assert.equal(await store().blobs.get(object.segments[0]!.digest), null);
    assert.equal(await store().objects.get('missing', 'k'), null);
  });

  test('any is true only while the bucket holds an object', async () => {
    await store().buckets.create(bucketRecord('other'));
    assert.equal(await store().objects.any('b'), false);
    await store().objects.put(objectRecord('other', 'k'));
    assert.equal(await store().objects.any('b'), false);
    await store().objects.put(objectRecord('b', 'k'));
    assert.equal(await store().objects.any('b'), true);
    await store().objects.delete('b', 'k');
    assert.equal(await store().objects.any('b'), false);
  });

  test('list returns keys in UTF-8 byte order, as summaries, only from its bucket', async () => {
    await store().buckets.create(bucketRecord('other'));
    await store().objects.put(objectRecord('other', 'a'));
    const objects = new Map(LISTING_KEYS.map((key) => [key, objectRecord('b', key, { digest: digestOf(key) })]));
    objects.set('a', objectRecord('b', 'a', { checksum: { algorithm: 'CRC32', value: 'AAAAAA==', type: 'FULL_OBJECT' } }));
    for (const object of objects.values()) await store().objects.put(object);

    const listed = await store().objects.list({ bucket: 'b', limit: 1_000 });
    const expectedKeys = [...LISTING_KEYS].sort(byteOrder);
    assert.deepEqual(
      listed.map((summary) => summary.key),
      expectedKeys,
    );
    assert.deepEqual(listed, expectedKeys.map((key) => summaryOf(objects.get(key)!)));
  });

  test('list by prefix selects exactly the keys that start with it (no case folding, no wildcards)', async () => {
    for (const key of LISTING_KEYS) await store().objects.put(objectRecord('b', key));
    const prefixes = ['a', 'a/', 'A', '%', '_', 'é', 'e', '日本', '\uffff', '😀', '\u{10ffff}', 'key with', 'zz', ''];
    for (const prefix of prefixes) {
      const listed = await store().objects.list({ bucket: 'b', prefix, limit: 1_000 });
      const expected = LISTING_KEYS.filter((key) => key.startsWith(prefix)).sort(byteOrder);
      assert.deepEqual(
        listed.map((summary) => summary.key),
        expected,
        `prefix ${JSON.stringify(prefix)}`,
      );
    }
  });

  test('list pages with after and limit, alone and with a prefix', async () => {
    for (const key of LISTING_KEYS) await store().objects.put(objectRecord('b', key));
    for (const prefix of [undefined, 'a', '\uffff', '😀']) {
      const expected = LISTING_KEYS.filter((key) => prefix === undefined || key.startsWith(prefix)).sort(byteOrder);
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store().objects.list({ bucket: 'b', prefix, after, limit: 2 });
        assert.ok(page.length <= 2);
        if (page.length === 0) break;
        seen.push(...page.map((summary) => summary.key));
        after = page.at(-1)!.key;
      }
      assert.deepEqual(seen, expected, `prefix ${JSON.stringify(prefix)}`);
    }
    // `after` need not be a stored key, and sorts by bytes too.
    const afterEmoji = await store().objects.list({ bucket: 'b', after: '\uffffzz', limit: 3 });
    assert.deepEqual(
      afterEmoji.map((summary) => summary.key),
      ['😀', '😀/x', '😁'],
    );
    assert.deepEqual(await store().objects.list({ bucket: 'b', limit: 0 }), []);
  });

  test('concurrent puts of one key leave exactly one whole record', async () => {
    const versions = Array.from({ length: 8 }, (_, i) =>
      objectRecord('b', 'race', {
        etag: `"v${i}"`,
        segments: Array.from({ length: i + 1 }, (_, s) => ({ digest: digestOf(`race-${i}-${s}`), size: 1 })),
        size: i + 1,
      }),
    );
    const reads: Array<Promise<ObjectRecord | null>> = [];
    await Promise.all(
      versions.map(async (version) => {
        reads.push(store().objects.get('b', 'race'));
        await store().objects.put(version);
      }),
    );
    const final = await store().objects.get('b', 'race');
    assert.ok(final);
    assert.deepEqual(final, versions.find((version) => version.etag === final.etag));
    for (const read of await Promise.all(reads)) {
      if (read !== null) assert.deepEqual(read, versions.find((version) => version.etag === read.etag));
    }
    assert.equal((await store().objects.list({ bucket: 'b', limit: 10 })).length, 1);
  });
}
