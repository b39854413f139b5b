import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type StoreRef, bucketRecord, digestOf, objectRecord, partRecord, uploadRecord } from './fixtures.ts';

export function blobTests(store: StoreRef): void {
  const FUTURE = (): Date => new Date(Date.now() + 60_000);

  test('touch inserts the row, a later touch refreshes touchedAt and keeps the size', async () => {
    const digest = digestOf('blob');
    const before = Date.now();
    await store().blobs.touch(digest, 42);
    const first = await store().blobs.get(digest);
    assert.ok(first);
    assert.equal(first.digest, digest);
    assert.equal(first.size, 42);
    assert.ok(first.touchedAt.getTime() >= before && first.touchedAt.getTime() <= Date.now());
    await delay(5);
    await store().blobs.touch(digest, 42);
    const second = await store().blobs.get(digest);
    assert.ok(second && second.touchedAt.getTime() > first.touchedAt.getTime());
    assert.equal(second.size, 42);
    assert.equal(await store().blobs.get(digestOf('other')), null);
  });

  test('put and putPart touch the blobs they reference', async () => {
    await store().buckets.create(bucketRecord('b'));
    const object = objectRecord('b', 'k');
    const before = Date.now();
    await store().objects.put(object);
    const blob = await store().blobs.get(object.segments[0]!.digest);
    assert.ok(blob && blob.touchedAt.getTime() >= before);
    assert.equal(blob.size, object.segments[0]!.size);

    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const part = partRecord('u1', 1);
    await store().uploads.putPart(part);
    const partBlob = await store().blobs.get(part.digest);
    assert.ok(partBlob && partBlob.touchedAt.getTime() >= before);
    assert.equal(partBlob.size, part.size);
  });

  test('listGarbage lists only unreferenced blobs touched before the cutoff', async () => {
    await store().buckets.create(bucketRecord('b'));
    const beforeTouch = new Date(Date.now() - 1);
    const free = [digestOf('free-1'), digestOf('free-2')];
    for (const digest of free) await store().blobs.touch(digest, 1);
    const object = objectRecord('b', 'k');
    await store().objects.put(object);
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const part = partRecord('u1', 1);
    await store().uploads.putPart(part);

    const garbage = await store().blobs.listGarbage(FUTURE(), 100);
    assert.deepEqual(garbage.map((blob) => blob.digest).sort(), [...free].sort());
    assert.equal((await store().blobs.listGarbage(FUTURE(), 1)).length, 1);
    assert.deepEqual(await store().blobs.listGarbage(beforeTouch, 100), [], 'touched after the cutoff');

    await store().objects.delete('b', 'k');
    await store().uploads.abort('u1');
    const after = await store().blobs.listGarbage(FUTURE(), 100);
    assert.deepEqual(after.map((blob) => blob.digest).sort(), [...free, object.segments[0]!.digest, part.digest].sort());
  });

  test('deleteIfGarbage deletes an unreferenced old blob, calling removeBytes once', async () => {
    const digest = digestOf('old');
    await store().blobs.touch(digest, 1);
    let removals = 0;
    assert.equal(await store().blobs.deleteIfGarbage(digest, FUTURE(), async () => void removals++), true);
    assert.equal(removals, 1);
    assert.equal(await store().blobs.get(digest), null);
    assert.equal(await store().blobs.deleteIfGarbage(digest, FUTURE(), async () => void removals++), false);
    assert.equal(removals, 1);
  });

  test('deleteIfGarbage refuses a blob referenced by an object or a part, or touched after the cutoff', async () => {
    await store().buckets.create(bucketRecord('b'));
    const object = objectRecord('b', 'k');
    await store().objects.put(object);
    await store().uploads.create(uploadRecord('u1', 'b', 'k'));
    const part = partRecord('u1', 1);
    await store().uploads.putPart(part);
    const fresh = digestOf('fresh');
    const cutoff = new Date(Date.now() - 1);
    await store().blobs.touch(fresh, 1);

    let removals = 0;
    const removeBytes = async (): Promise<void> => void removals++;
    assert.equal(await store().blobs.deleteIfGarbage(object.segments[0]!.digest, FUTURE(), removeBytes), false);
    assert.equal(await store().blobs.deleteIfGarbage(part.digest, FUTURE(), removeBytes), false);
    assert.equal(await store().blobs.deleteIfGarbage(fresh, cutoff, removeBytes), false);
    assert.equal(removals, 0);
    for (const digest of [object.segments[0]!.digest, part.digest, fresh]) assert.notEqual(await store().blobs.get(digest), null);
  });

  test('deleteIfGarbage keeps the row when removeBytes throws, and rethrows', async () => {
    const digest = digestOf('stubborn');
    await store().blobs.touch(digest, 1);
    const failure = new Error('disk on fire');
    await assert.rejects(
      store().blobs.deleteIfGarbage(digest, FUTURE(), async () => {
        throw failure;
      }),
      (err: unknown) => err === failure,
    );
    assert.notEqual(await store().blobs.get(digest), null);
    assert.equal(await store().blobs.deleteIfGarbage(digest, FUTURE(), async () => {}), true);
  });

  test('a touch started while removeBytes runs completes after the deletion and re-creates the row', async () => {
    const digest = digestOf('contended');
    await store().blobs.touch(digest, 7);
    const events: string[] = [];
    let touching: Promise<void> | undefined;
    let touchStartedAt = 0;

    const deleted = await store().blobs.deleteIfGarbage(digest, FUTURE(), async () => {
      touchStartedAt = Date.now();
      touching = store()
        .blobs.touch(digest, 7)
        .then(() => void events.push('touch done'));
      await delay(50);
      events.push('bytes removed');
    });
    await touching;

    assert.equal(deleted, true);
    assert.deepEqual(events, ['bytes removed', 'touch done']);
    const row = await store().blobs.get(digest);
    assert.ok(row, 'the touch re-created the row after the deletion');
    assert.ok(row.touchedAt.getTime() >= touchStartedAt);
    assert.equal(row.size, 7);
  });
}
