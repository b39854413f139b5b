import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { FsBlobStore } from '../storage/blob/fs.ts';
import { openSqliteMetaStore } from '../storage/meta/sqlite.ts';
import { blobKey, ContentStore, stagingPrefix } from './content.ts';
import { GarbageCollector } from './gc.ts';
import { MultipartService } from './multipart.ts';
import { ObjectService } from './objects.ts';

async function setup(graceMs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'astore-gc-'));
  const blobs = await FsBlobStore.open({ path: join(dir, 'blobs') });
  const meta = await openSqliteMetaStore({ path: join(dir, 'meta.db') });
  const content = new ContentStore(blobs, meta);
  const objects = new ObjectService(meta, content, 1024 ** 3);
  const multipart = new MultipartService(meta, content, objects, { minPartBytes: 0, maxPartBytes: 1024 ** 3 });
  const gc = new GarbageCollector(meta, blobs, { graceMs, multipartExpiryMs: 60_000, registryUploadExpiryMs: 60_000, untaggedManifestsMs: 0, intervalMs: 0 }, pino({ level: 'silent' }));
  await meta.buckets.create({ name: 'b', region: 'us-east-1', createdAt: new Date() });
  const put = (key: string, text: string) =>
    objects.put({ bucket: 'b', key, body: Readable.from([Buffer.from(text)]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
  const read = async (key: string) => {
    const r = await objects.get('b', key);
    const chunks: Buffer[] = [];
    for await (const c of await r.body()) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };
  const cleanup = async () => {
    await meta.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { blobs, meta, content, objects, multipart, gc, put, read, cleanup };
}

const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

test('the same bytes under two keys are stored once', async () => {
  const s = await setup(0);
  try {
    const a = await s.put('a', 'same bytes');
    const b = await s.put('b', 'same bytes');
    assert.equal(a.digest, b.digest);
    const keys = [];
    for await (const e of s.blobs.list('blobs/')) keys.push(e.key);
    assert.deepEqual(keys, [blobKey(digestOf('same bytes'))]);
  } finally {
    await s.cleanup();
  }
});

test('GC removes blobs no object references, keeps referenced ones', async () => {
  const s = await setup(0);
  try {
    await s.put('keep', 'kept bytes');
    await s.put('gone', 'deleted bytes');
    await s.put('over', 'old version');
    await s.put('over', 'new version');
    await s.objects.delete('b', 'gone');
    const report = await s.gc.runOnce(new Date(Date.now() + 1000));
    assert.equal(report.deletedBlobs, 2);
    assert.equal(await s.blobs.stat(blobKey(digestOf('deleted bytes'))), null);
    assert.equal(await s.blobs.stat(blobKey(digestOf('old version'))), null);
    assert.equal(await s.read('keep'), 'kept bytes');
    assert.equal(await s.read('over'), 'new version');
  } finally {
    await s.cleanup();
  }
});

test('GC keeps unreferenced blobs within the grace period', async () => {
  const s = await setup(60_000);
  try {
    await s.put('x', 'recent');
    await s.objects.delete('b', 'x');
    assert.equal((await s.gc.runOnce()).deletedBlobs, 0);
    assert.ok(await s.blobs.stat(blobKey(digestOf('recent'))));
  } finally {
    await s.cleanup();
  }
});

test('GC aborts expired multipart uploads and reclaims their parts, and removes stale staging keys', async () => {
  const s = await setup(0);
  try {
    const upload = await s.multipart.create({ bucket: 'b', key: 'mp', headers: {}, userMetadata: {} });
    await s.multipart.uploadPart({ bucket: 'b', key: 'mp', uploadId: upload.uploadId, partNumber: 1, body: Readable.from([Buffer.from('part one')]), checksumAlgorithms: [] });
    await s.blobs.put(`${stagingPrefix}crash-leftover`, Readable.from([Buffer.from('half')]));
    const report = await s.gc.runOnce(new Date(Date.now() + 120_000));
    assert.equal(report.expiredUploads, 1);
    assert.equal(report.deletedBlobs, 1);
    assert.equal(report.deletedStaging, 1);
    assert.equal(await s.meta.uploads.get(upload.uploadId), null);
    assert.equal(await s.blobs.stat(`${stagingPrefix}crash-leftover`), null);
  } finally {
    await s.cleanup();
  }
});

test('GC running while the same bytes are uploaded again never loses them', async () => {
  // Grace must exceed the time from an ingest's touch to its commit; 300 ms is ample here. Each
  // round leaves the bytes unreferenced for 0-600 ms, so GC deletes them in some rounds and races
  // the re-upload in others.
  const s = await setup(300);
  const stop = { now: false };
  let collector: Promise<number> = Promise.resolve(0);
  try {
    collector = (async () => {
      let passes = 0;
      while (!stop.now) {
        await s.gc.runOnce();
        passes++;
        await new Promise((r) => setTimeout(r, 5));
      }
      return passes;
    })();
    for (let i = 0; i < 16; i++) {
      const text = `payload ${i % 2}`;
      await s.put('k', text);
      await s.objects.delete('b', 'k');
      await new Promise((r) => setTimeout(r, (i * 97) % 600));
      await s.put('k', text);
      assert.equal(await s.read('k'), text);
    }
    stop.now = true;
    assert.ok((await collector) > 0);
  } finally {
    stop.now = true;
    await collector.catch(() => {});
    await s.cleanup();
  }
});
