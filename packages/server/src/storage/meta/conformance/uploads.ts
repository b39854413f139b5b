import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import type { UploadRecord } from '../types.ts';
import { type StoreRef, T0, bucketRecord, objectRecord, partRecord, rejectsWith, uploadRecord } from './fixtures.ts';

export function uploadTests(store: StoreRef): void {
  beforeEach(async () => {
    await store().buckets.create(bucketRecord('b'));
  });

  test('create then get round-trips every field; get of an unknown id is null', async () => {
    const upload: UploadRecord = {
      ...uploadRecord('u1', 'b', 'dir/日本 😀.txt', T0 + 5),
      headers: { contentType: 'text/plain', cacheControl: 'no-store' },
      userMetadata: { owner: 'Zoë' },
      checksumAlgorithm: 'CRC32C',
      checksumType: 'COMPOSITE',
    };
    const minimal = uploadRecord('u2', 'b', 'k');
    await store().uploads.create(upload);
    await store().uploads.create(minimal);
    assert.deepEqual(await store().uploads.get('u1'), upload);
    assert.deepEqual(await store().uploads.get('u2'), minimal);
    assert.equal(await store().uploads.get('u3'), null);
  });

  test('create in a missing bucket throws NoSuchBucket', async () => {
    await rejectsWith(store().uploads.create(uploadRecord('u1', 'missing', 'k')), 'NoSuchBucket');
    assert.equal(await store().uploads.get('u1'), null);
  });

  /** Listing order: key (bytes), then initiation time, then id. */
  const listed = [
    uploadRecord('u5', 'b', 'a', T0 + 3),
    uploadRecord('u2', 'b', 'b', T0 + 1),
    uploadRecord('u9', 'b', 'b', T0 + 1),
    uploadRecord('u1', 'b', 'b', T0 + 2),
    uploadRecord('u0', 'b', '\uffff', T0),
    uploadRecord('u3', 'b', '😀', T0),
  ];
  const createListed = async (): Promise<void> => {
    await store().buckets.create(bucketRecord('other'));
    await store().uploads.create(uploadRecord('u-other', 'other', 'a'));
    for (const upload of [...listed].reverse()) await store().uploads.create(upload);
  };
  const ids = (uploads: UploadRecord[]): string[] => uploads.map((upload) => upload.uploadId);

  test('list orders by key in byte order, then initiation, then id, within its bucket and prefix', async () => {
    await createListed();
    assert.deepEqual(await store().uploads.list({ bucket: 'b', limit: 100 }), listed);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', prefix: 'b', limit: 100 })), ['u2', 'u9', 'u1']);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', prefix: '\uffff', limit: 100 })), ['u0']);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', limit: 2 })), ['u5', 'u2']);
  });

  test('list resumes after (keyMarker, uploadIdMarker)', async () => {
    await createListed();
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', keyMarker: 'a', limit: 100 })), ['u2', 'u9', 'u1', 'u0', 'u3']);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', keyMarker: 'b', limit: 100 })), ['u0', 'u3']);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', keyMarker: 'b', uploadIdMarker: 'u2', limit: 100 })), ['u9', 'u1', 'u0', 'u3']);
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', keyMarker: 'b', uploadIdMarker: 'u9', limit: 100 })), ['u1', 'u0', 'u3']);
    // An upload-id marker that no longer exists resumes at the next key.
    assert.deepEqual(ids(await store().uploads.list({ bucket: 'b', keyMarker: 'b', uploadIdMarker: 'gone', limit: 100 })), ['u0', 'u3']);

    const seen: UploadRecord[] = [];
    let marker: { keyMarker?: string; uploadIdMarker?: string } = {};
    for (;;) {
      const page = await store().uploads.list({ bucket: 'b', ...marker, limit: 1 });
      if (page.length === 0) break;
      seen.push(...page);
      marker = { keyMarker: page[0]!.key, uploadIdMarker: page[0]!.uploadId };
    }
    assert.deepEqual(seen, listed);
  });

  test('putPart records a part and replaces one with the same number', async () => {
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const first = partRecord('u1', 1, 'first');
    const second = { ...partRecord('u1', 1, 'second'), checksum: 'Y2hlY2s=' };
    await store().uploads.putPart(first);
    await store().uploads.putPart(second);
    assert.deepEqual(await store().uploads.listParts('u1', 0, 10), [second]);
    assert.notEqual(await store().blobs.get(second.digest), null);
  });

  test('putPart throws NoSuchUpload when the upload is unknown or aborted, and records nothing', async () => {
    await rejectsWith(store().uploads.putPart(partRecord('never', 1)), 'NoSuchUpload');
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    await store().uploads.abort('u1');
    const late = partRecord('u1', 1);
    await rejectsWith(store().uploads.putPart(late), 'NoSuchUpload');
    assert.deepEqual(await store().uploads.listParts('u1', 0, 10), []);
    assert.equal(await store().blobs.get(late.digest), null);
  });

  test('listParts orders by number and pages with afterPart and limit', async () => {
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    await store().uploads.create(uploadRecord('u2', 'b', 'k'));
    for (const n of [3, 1, 10000, 2, 10]) await store().uploads.putPart(partRecord('u1', n));
    await store().uploads.putPart(partRecord('u2', 4));
    const numbers = async (after: number, limit: number): Promise<number[]> =>
      (await store().uploads.listParts('u1', after, limit)).map((part) => part.partNumber);
    assert.deepEqual(await numbers(0, 100), [1, 2, 3, 10, 10000]);
    assert.deepEqual(await numbers(0, 2), [1, 2]);
    assert.deepEqual(await numbers(2, 2), [3, 10]);
    assert.deepEqual(await numbers(3, 100), [10, 10000]);
    assert.deepEqual(await numbers(10000, 100), []);
    assert.deepEqual(await store().uploads.listParts('u1', 1, 1), [partRecord('u1', 2)]);
  });

  test('complete atomically puts the object and removes the upload and its parts', async () => {
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const parts = [partRecord('u1', 1), partRecord('u1', 2)];
    for (const part of parts) await store().uploads.putPart(part);
    const previous = objectRecord('b', 'k', { etag: '"old"' });
    await store().objects.put(previous);
    const object = objectRecord('b', 'k', {
      etag: '"abc-2"',
      size: parts[0]!.size * 2,
      segments: parts.map((part) => ({ digest: part.digest, size: part.size, partNumber: part.partNumber, etag: part.etag })),
    });

    assert.deepEqual(await store().uploads.complete('u1', object), previous);

    assert.deepEqual(await store().objects.get('b', 'k'), object);
    assert.equal(await store().uploads.get('u1'), null);
    assert.deepEqual(await store().uploads.listParts('u1', 0, 10), []);
    assert.deepEqual(await store().uploads.list({ bucket: 'b', limit: 10 }), []);
    // The parts' blobs are now the object's, so only the replaced object's blob is garbage.
    const garbage = await store().blobs.listGarbage(new Date(Date.now() + 60_000), 10);
    assert.deepEqual(
      garbage.map((blob) => blob.digest),
      [previous.segments[0]!.digest],
    );

    await rejectsWith(store().uploads.complete('u1', objectRecord('b', 'k', { etag: '"again"' })), 'NoSuchUpload');
    assert.deepEqual(await store().objects.get('b', 'k'), object);
  });

  test('complete that fails changes nothing', async () => {
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const part = partRecord('u1', 1);
    await store().uploads.putPart(part);
    await rejectsWith(store().uploads.complete('u1', objectRecord('no-such-bucket', 'k')), 'NoSuchBucket');
    assert.notEqual(await store().uploads.get('u1'), null);
    assert.deepEqual(await store().uploads.listParts('u1', 0, 10), [part]);
  });

  test('abort removes the upload and its parts, then reports false', async () => {
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    await store().uploads.putPart(partRecord('u1', 1));
    assert.equal(await store().uploads.abort('u1'), true);
    assert.equal(await store().uploads.get('u1'), null);
    assert.deepEqual(await store().uploads.listParts('u1', 0, 10), []);
    assert.equal(await store().uploads.abort('u1'), false);
  });

  test('listInitiatedBefore returns the older uploads, oldest first, up to limit', async () => {
    await store().uploads.create(uploadRecord('late', 'b', 'a', T0 + 2_000));
    await store().uploads.create(uploadRecord('early', 'b', 'z', T0));
    await store().uploads.create(uploadRecord('middle', 'b', 'm', T0 + 1_000));
    assert.deepEqual(ids(await store().uploads.listInitiatedBefore(new Date(T0), 10)), []);
    assert.deepEqual(ids(await store().uploads.listInitiatedBefore(new Date(T0 + 1_000), 10)), ['early']);
    assert.deepEqual(ids(await store().uploads.listInitiatedBefore(new Date(T0 + 2_001), 10)), ['early', 'middle', 'late']);
    assert.deepEqual(ids(await store().uploads.listInitiatedBefore(new Date(T0 + 2_001), 2)), ['early', 'middle']);
  });
}
