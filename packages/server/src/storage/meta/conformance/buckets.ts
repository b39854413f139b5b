import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type StoreRef, T0, bucketRecord, objectRecord, partRecord, uploadRecord } from './fixtures.ts';

export function bucketTests(store: StoreRef): void {
  test('create returns true, then false for a taken name without changing the bucket', async () => {
    assert.equal(await store().buckets.create(bucketRecord('alpha', 'eu-west-1')), true);
    assert.equal(await store().buckets.create(bucketRecord('alpha', 'us-west-2')), false);
    assert.deepEqual(await store().buckets.get('alpha'), bucketRecord('alpha', 'eu-west-1'));
  });

  test('get returns the bucket to the millisecond, null when absent', async () => {
    const bucket = { name: 'b1', region: 'ap-south-1', createdAt: new Date(T0 + 1) };
    await store().buckets.create(bucket);
    assert.deepEqual(await store().buckets.get('b1'), bucket);
    assert.equal(await store().buckets.get('b2'), null);
  });

  test('list returns all buckets ordered by name', async () => {
    for (const name of ['charlie', 'alpha', 'bravo-2', 'bravo']) await store().buckets.create(bucketRecord(name));
    assert.deepEqual(
      (await store().buckets.list()).map((bucket) => bucket.name),
      ['alpha', 'bravo', 'bravo-2', 'charlie'],
    );
  });

  test('delete: missing, not-empty while an object is in it, deleted once empty', async () => {
    assert.equal(await store().buckets.delete('nope'), 'missing');
    await store().buckets.create(bucketRecord('full'));
    await store().objects.put(objectRecord('full', 'k'));
    assert.equal(await store().buckets.delete('full'), 'not-empty');
    assert.notEqual(await store().buckets.get('full'), null);
    await store().objects.delete('full', 'k');
    assert.equal(await store().buckets.delete('full'), 'deleted');
    assert.equal(await store().buckets.get('full'), null);
    assert.equal(await store().buckets.delete('full'), 'missing');
  });

  test('delete removes the bucket’s uploads and their parts, leaving other buckets’ uploads', async () => {
    await store().buckets.create(bucketRecord('doomed'));
    await store().buckets.create(bucketRecord('kept'));
    await store().uploads.create(uploadRecord('u-doomed', 'doomed', 'k'));
    await store().uploads.create(uploadRecord('u-kept', 'kept', 'k'));
    await store().uploads.putPart(partRecord('u-doomed', 1));
    await store().uploads.putPart(partRecord('u-kept', 1));

    assert.equal(await store().buckets.delete('doomed'), 'deleted');

    assert.equal(await store().uploads.get('u-doomed'), null);
    assert.deepEqual(await store().uploads.listParts('u-doomed', 0, 10), []);
    assert.notEqual(await store().uploads.get('u-kept'), null);
    assert.equal((await store().uploads.listParts('u-kept', 0, 10)).length, 1);
    // The part's blob is now unreferenced: a garbage candidate.
    const garbage = await store().blobs.listGarbage(new Date(Date.now() + 60_000), 10);
    assert.deepEqual(
      garbage.map((blob) => blob.digest),
      [partRecord('u-doomed', 1).digest],
    );
  });
}
