import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isAstoreError } from '../../../core/errors.ts';
import { type StoreRef, T0, digestOf, rejectsWith, sha512Of } from './fixtures.ts';

/** RegistryMeta: blob upload sessions. */
export function registryUploadTests(store: StoreRef): void {
  const registry = () => store().registry;
  const chunk = (label: string, size: number) => ({ digest: digestOf(label), size });
  const ids = (uploads: { uploadId: string }[]): string[] => uploads.map((upload) => upload.uploadId);

  test('createUpload creates the repository and an empty session; getUpload of an unknown id is null', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'lib/app', createdAt: new Date(T0) });
    assert.equal(await registry().repositoryExists('lib/app'), true);
    assert.deepEqual(await registry().getUpload('u1'), {
      uploadId: 'u1',
      repository: 'lib/app',
      createdAt: new Date(T0),
      updatedAt: new Date(T0),
      size: 0,
      chunks: [],
    });
    assert.equal(await registry().getUpload('u2'), null);
  });

  test('appendChunk appends at the current size, keeps chunks in order and touches their blobs', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    const chunks = [chunk('c1', 3), chunk('c2', 4), chunk('c1', 3)];
    const before = Date.now();
    let offset = 0;
    for (const c of chunks) {
      const returned = await registry().appendChunk('u1', offset, c);
      offset += c.size;
      assert.deepEqual(returned, await registry().getUpload('u1'), 'returns the session as stored');
    }
    const upload = await registry().getUpload('u1');
    assert.ok(upload);
    assert.equal(upload.size, 10);
    assert.deepEqual(upload.chunks, chunks, 'in order, the same bytes twice included');
    assert.deepEqual(upload.createdAt, new Date(T0));
    assert.ok(upload.updatedAt.getTime() >= before && upload.updatedAt.getTime() <= Date.now());
    for (const c of chunks) {
      const blob = await store().blobs.get(c.digest);
      assert.ok(blob && blob.touchedAt.getTime() >= before);
      assert.equal(blob.size, c.size);
    }
  });

  test('appendChunk at another offset throws RangeNotSatisfiable and changes nothing', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    await registry().appendChunk('u1', 0, chunk('c1', 3));
    const before = await registry().getUpload('u1');
    for (const offset of [0, 2, 4]) await rejectsWith(registry().appendChunk('u1', offset, chunk('late', 5)), 'RangeNotSatisfiable');
    assert.deepEqual(await registry().getUpload('u1'), before);
    assert.equal(await store().blobs.get(digestOf('late')), null);
  });

  test('appendChunk to an unknown or deleted session throws BlobUploadUnknown and touches nothing', async () => {
    await rejectsWith(registry().appendChunk('never', 0, chunk('c', 1)), 'BlobUploadUnknown');
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    assert.equal(await registry().deleteUpload('u1'), true);
    await rejectsWith(registry().appendChunk('u1', 0, chunk('c', 1)), 'BlobUploadUnknown');
    assert.equal(await store().blobs.get(digestOf('c')), null);
  });

  test('two appends at the same offset at once: one is appended, the other is RangeNotSatisfiable', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    const results = await Promise.allSettled([registry().appendChunk('u1', 0, chunk('a', 2)), registry().appendChunk('u1', 0, chunk('b', 2))]);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(fulfilled.length, 1);
    assert.equal(rejected.length, 1);
    assert.ok(isAstoreError(rejected[0]!.reason, 'RangeNotSatisfiable'));
    const upload = await registry().getUpload('u1');
    assert.equal(upload?.size, 2);
    assert.equal(upload?.chunks.length, 1);
  });

  test('completeUpload removes the session and links its result atomically; a second complete is BlobUploadUnknown', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    await registry().appendChunk('u1', 0, chunk('c1', 3));
    await registry().appendChunk('u1', 3, chunk('c2', 4));
    const link = { repository: 'r', digest: sha512Of('assembled'), blob: digestOf('assembled'), size: 7 };
    const before = Date.now();
    await registry().completeUpload('u1', link);

    assert.equal(await registry().getUpload('u1'), null);
    const layer = await registry().getLayer('r', link.digest);
    assert.ok(layer && layer.touchedAt.getTime() >= before);
    assert.deepEqual({ ...layer, touchedAt: undefined }, { ...link, touchedAt: undefined });
    const blob = await store().blobs.get(link.blob);
    assert.ok(blob && blob.touchedAt.getTime() >= before);
    assert.equal(blob.size, 7);

    const again = { ...link, digest: digestOf('again'), blob: digestOf('again') };
    await rejectsWith(registry().completeUpload('u1', again), 'BlobUploadUnknown');
    await rejectsWith(registry().completeUpload('never', again), 'BlobUploadUnknown');
    assert.equal(await registry().getLayer('r', again.digest), null, 'a refused complete links nothing');
  });

  test('deleteUpload removes the session and its chunks, then reports false', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    await registry().createUpload({ uploadId: 'u2', repository: 'r', createdAt: new Date(T0) });
    await registry().appendChunk('u1', 0, chunk('c1', 3));
    assert.equal(await registry().deleteUpload('u1'), true);
    assert.equal(await registry().getUpload('u1'), null);
    assert.deepEqual((await store().blobs.references(digestOf('c1'), 10)).registryUploads, []);
    assert.equal(await registry().deleteUpload('u1'), false);
    assert.equal(await registry().deleteUpload('never'), false);
    assert.notEqual(await registry().getUpload('u2'), null);
  });

  test('listUploadsUpdatedBefore lists idle sessions, least recently updated first, up to limit; an append refreshes', async () => {
    await registry().createUpload({ uploadId: 'late', repository: 'r', createdAt: new Date(T0 + 2_000) });
    await registry().createUpload({ uploadId: 'early', repository: 'r', createdAt: new Date(T0) });
    await registry().createUpload({ uploadId: 'middle', repository: 'other', createdAt: new Date(T0 + 1_000) });
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(new Date(T0), 10)), []);
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(new Date(T0 + 1_000), 10)), ['early']);
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(new Date(T0 + 2_001), 10)), ['early', 'middle', 'late']);
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(new Date(T0 + 2_001), 2)), ['early', 'middle']);

    const beforeAppend = new Date();
    await delay(2);
    await registry().appendChunk('early', 0, chunk('c', 1));
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(beforeAppend, 10)), ['middle', 'late']);
    assert.deepEqual(ids(await registry().listUploadsUpdatedBefore(new Date(Date.now() + 60_000), 10)), ['middle', 'late', 'early']);
  });
}
