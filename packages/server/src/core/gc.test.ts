import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import type { BlobStore } from '../storage/blob/types.ts';
import { FsBlobStore } from '../storage/blob/fs.ts';
import { openSqliteMetaStore } from '../storage/meta/sqlite.ts';
import { blobKey, ContentStore, stagingPrefix } from './content.ts';
import { type GcOptions, type GcReport, GarbageCollector, gcLeaseName } from './gc.ts';
import { MultipartService } from './multipart.ts';
import { ObjectService } from './objects.ts';

async function setup(graceMs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'astore-gc-'));
  const blobs = await FsBlobStore.open({ path: join(dir, 'blobs') });
  const meta = await openSqliteMetaStore({ path: join(dir, 'meta.db') });
  const content = new ContentStore(blobs, meta);
  const objects = new ObjectService(meta, content, 1024 ** 3);
  const multipart = new MultipartService(meta, content, objects, { minPartBytes: 0, maxPartBytes: 1024 ** 3 });
  const options: GcOptions = { graceMs, multipartExpiryMs: 60_000, registryUploadExpiryMs: 60_000, untaggedManifestsMs: 0, intervalMs: 0 };
  /** A collector as another replica on the same stores would run it (its own lease holder id). */
  const collector = (over: Partial<GcOptions> = {}, store: BlobStore = blobs) => new GarbageCollector(meta, store, { ...options, ...over }, pino({ level: 'silent' }));
  const gc = collector();
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
  return { blobs, meta, content, objects, multipart, gc, collector, put, read, cleanup };
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

/**
 * `blobs` whose listing of the staging prefix, the last step of a pass, waits until `open()` is
 * called; `reached` resolves when a pass gets there. (Not a blob deletion: that runs inside a
 * transaction, which on SQLite's one connection would hold up the other collector too.)
 */
function gatedStagingList(blobs: BlobStore) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let arrive!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const store = new Proxy(blobs, {
    get(target, property) {
      if (property === 'list') {
        return async function* (prefix: string, signal?: AbortSignal) {
          if (prefix === stagingPrefix) {
            arrive();
            await gate;
          }
          yield* target.list(prefix, signal);
        };
      }
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, open, reached };
}

test('two collectors on one store (two replicas): while one runs, the other skips, naming the holder; then it runs', async () => {
  const s = await setup(0);
  const gated = gatedStagingList(s.blobs);
  const first = s.collector({}, gated.store);
  const second = s.collector();
  let running: Promise<unknown> = Promise.resolve();
  try {
    await s.put('gone', 'garbage bytes');
    await s.objects.delete('b', 'gone');
    const later = new Date(Date.now() + 1000);
    await s.blobs.put(`${stagingPrefix}leftover`, Readable.from([Buffer.from('half')]));
    running = first.runOnce(later);
    await gated.reached; // first is mid-pass, holding the lease

    const skipped = await second.runOnce(later);
    assert.equal(skipped.outcome, 'skipped');
    assert.equal(skipped.heldBy?.holder, first.holder);
    assert.ok(new Date(skipped.heldBy.expiresAt).getTime() > Date.now());
    assert.equal(skipped.deletedStaging, 0);
    assert.ok(await s.blobs.stat(`${stagingPrefix}leftover`), 'the skipping collector deleted nothing');

    gated.open();
    const ran = (await running) as GcReport;
    assert.equal(ran.outcome, 'ran');
    assert.equal(ran.deletedBlobs, 1);
    assert.equal(ran.deletedStaging, 1);
    assert.equal(await s.meta.leases.get(gcLeaseName), null, 'released at the end of the pass');
    assert.equal((await second.runOnce(later)).outcome, 'ran', 'the other collector runs the next pass');
  } finally {
    gated.open();
    await running.catch(() => {});
    await s.cleanup();
  }
});

test('two collectors passing back to back at once: never two passes at a time, and both get turns', async () => {
  const s = await setup(0);
  let active = 0;
  let overlapped = false;
  // Every pass lists the staging prefix once while it holds the lease: count who is inside.
  const watched = (blobs: BlobStore): BlobStore =>
    new Proxy(blobs, {
      get(target, property) {
        if (property === 'list') {
          return async function* (prefix: string, signal?: AbortSignal) {
            active++;
            overlapped ||= active > 1;
            try {
              await new Promise((r) => setTimeout(r, 2));
              yield* target.list(prefix, signal);
            } finally {
              active--;
            }
          };
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const collectors = [s.collector({}, watched(s.blobs)), s.collector({}, watched(s.blobs))];
  try {
    const outcomes = await Promise.all(
      collectors.map(async (gc) => {
        const seen: string[] = [];
        for (let i = 0; i < 30; i++) seen.push((await gc.runOnce()).outcome);
        return seen;
      }),
    );
    assert.equal(overlapped, false, 'two passes ran at once');
    const all = outcomes.flat();
    assert.ok(all.every((outcome) => outcome === 'ran' || outcome === 'skipped'), all.join());
    assert.ok(all.includes('skipped'), 'the collectors met at least once');
    assert.ok(outcomes.every((seen) => seen.includes('ran')), 'each collector ran at least once');
  } finally {
    await s.cleanup();
  }
});

test('a lease left by a replica that died is taken over once it expires', async () => {
  const s = await setup(0);
  try {
    assert.equal(await s.meta.leases.acquire(gcLeaseName, 'crashed-replica', 500), true);
    const skipped = await s.gc.runOnce();
    assert.equal(skipped.outcome, 'skipped');
    assert.equal(skipped.heldBy?.holder, 'crashed-replica');
    while (await s.meta.leases.get(gcLeaseName)) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await s.gc.runOnce()).outcome, 'ran');
  } finally {
    await s.cleanup();
  }
});

test('a pass that outlasts its lease and finds it taken stops at its next step', async () => {
  const s = await setup(0);
  const gated = gatedStagingList(s.blobs);
  const slow = s.collector({ leaseTtlMs: 100 }, gated.store);
  let running: Promise<unknown> = Promise.resolve();
  try {
    await s.put('gone', 'garbage bytes');
    await s.objects.delete('b', 'gone');
    await s.blobs.put(`${stagingPrefix}leftover`, Readable.from([Buffer.from('half')]));
    running = slow.runOnce(new Date(Date.now() + 1000));
    await gated.reached;
    await new Promise((r) => setTimeout(r, 150)); // the lease expires while the listing hangs
    assert.equal(await s.meta.leases.acquire(gcLeaseName, 'other-replica', 60_000), true);
    gated.open();
    const report = (await running) as GcReport;
    assert.equal(report.outcome, 'interrupted');
    assert.equal(report.deletedBlobs, 1, 'what came before counts');
    assert.equal(report.deletedStaging, 0, 'nothing after the lease was lost');
    assert.ok(await s.blobs.stat(`${stagingPrefix}leftover`));
    assert.equal((await s.meta.leases.get(gcLeaseName))?.holder, 'other-replica', 'the other replica keeps its lease');
  } finally {
    gated.open();
    await running.catch(() => {});
    await s.cleanup();
  }
});
