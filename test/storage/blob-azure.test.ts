import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { AzureBlobStore, type AzureBlobStoreOptions } from '../../packages/server/src/storage/blob/azure.ts';
import { runBlobStoreConformance, type ConformanceTarget } from '../../packages/server/src/storage/blob/conformance.ts';
import { BlobNotFoundError, type BlobStore } from '../../packages/server/src/storage/blob/types.ts';
import { startAzurite, type AzuriteServer } from '../helpers/azurite.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

// One Azurite for the whole file, started by the first test that needs it; every store gets a fresh
// container, deleted afterwards.
let azurite: Promise<AzuriteServer> | undefined;
const server = (): Promise<AzuriteServer> => (azurite ??= startAzurite());
after(async () => {
  await (await azurite?.catch(() => undefined))?.stop();
});

interface Opened extends ConformanceTarget {
  store: AzureBlobStore;
  /** The store's container, seen directly: temp blobs, uncommitted blobs and names outside the prefix. */
  container: ContainerClient;
}

/**
 * A store on a container of its own. cleanup deletes the container and fails if any committed blob
 * was left in it, under the store's prefix or not (a leaked temp blob, say).
 */
async function openStore(options: Partial<AzureBlobStoreOptions> = {}): Promise<Opened> {
  const az = await server();
  const name = `astore-${randomUUID()}`;
  const store = await AzureBlobStore.open({ connectionString: az.connectionString, container: name, createContainer: true, ...options });
  const container = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(name);
  const cleanup = async () => {
    const left = await blobNames(container);
    await container.deleteIfExists();
    assert.deepEqual(left, [], `blobs left in container ${name}`);
  };
  return { store, container, cleanup };
}

runBlobStoreConformance('azure (Azurite)', () => openStore());

// Every put of 256 KiB or more goes through staged blocks on a temp blob, and a copy of more than
// 1 MiB is asynchronous, so the suite covers those paths too, under a key prefix.
runBlobStoreConformance('azure (Azurite), 256 KiB blocks, async copies over 1 MiB, key prefix', () =>
  openStore({ blockSizeBytes: 256 * KiB, syncCopyMaxBytes: MiB, prefix: 'tenant/a/' }),
);

describe('AzureBlobStore on Azurite', () => {
  test('a 200 MiB body streams in blocks and back out, with memory flat', { timeout: 300_000 }, async () => {
    const { store, cleanup } = await openStore(); // defaults: 8 MiB blocks, 4 in flight
    try {
      const size = 200 * MiB;
      const hashIn = createHash('sha256');
      const generate = async function* () {
        for (let i = 0; i < size / MiB; i++) {
          const chunk = randomBytes(MiB);
          hashIn.update(chunk);
          yield chunk;
        }
      };
      const putMemory = await peakRssGrowth(async () => {
        // One chunk buffered ahead, so what is measured is the driver's memory, not the test's.
        assert.equal((await store.put('big/blob', Readable.from(generate(), { highWaterMark: 1 }))).size, size);
      });
      assert.equal((await store.stat('big/blob'))?.size, size);
      const hashOut = createHash('sha256');
      const getMemory = await peakRssGrowth(async () => {
        for await (const chunk of await store.get('big/blob')) hashOut.update(chunk as Buffer);
      });
      assert.equal(hashOut.digest('hex'), hashIn.digest('hex'));
      console.log(`200 MiB blob: peak RSS growth ${mib(putMemory)} during put, ${mib(getMemory)} during get`);
      // A put holds (concurrency + 1) blocks of 8 MiB, 40 MiB, plus up to a block of body chunks not yet
      // copied into one; the rest is the SDK's, the allocator's and the GC's lag.
      assert.ok(putMemory < 80 * MiB, `put grew RSS by ${mib(putMemory)}`);
      assert.ok(getMemory < 64 * MiB, `get grew RSS by ${mib(getMemory)}`);
      await store.delete('big/blob');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('given an existing blob, a put whose body fails after blocks were staged rejects with that error; nothing new is committed', async () => {
    const { store, container, cleanup } = await openStore({ blockSizeBytes: 64 * KiB });
    try {
      const old = randomBytes(100 * KiB);
      await store.put('kept', Readable.from([old]));
      const failure = new Error('source failed after five blocks');
      const failing = async function* () {
        for (let i = 0; i < 5; i++) yield randomBytes(64 * KiB);
        await sleep(50);
        throw failure;
      };
      await assert.rejects(store.put('kept', Readable.from(failing())), (err) => err === failure);
      await assert.rejects(store.put('fresh', Readable.from(failing())), (err) => err === failure);
      assert.ok((await bytesOf(store, 'kept')).equals(old), 'old blob byte-for-byte intact');
      assert.equal(await store.stat('fresh'), null);
      assert.deepEqual(await blobNames(container), ['kept'], 'no committed blob but the old one');
      assertOnlyTempUncommitted(await blobNames(container, { uncommitted: true }));
      await store.delete('kept');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('a put aborted after blocks were staged rejects with AbortError; an existing blob keeps its content, a new key stays absent', async () => {
    const { store, container, cleanup } = await openStore({ blockSizeBytes: 64 * KiB });
    try {
      const old = randomBytes(100 * KiB);
      await store.put('kept', Readable.from([old]));
      for (const key of ['kept', 'fresh']) {
        const controller = new AbortController();
        // Four blocks, then a body that never ends: only the signal can end this put.
        const body = new Readable({ read() {} });
        for (let i = 0; i < 4; i++) body.push(randomBytes(64 * KiB));
        const earlier = new Set(await blobNames(container, { uncommitted: true }));
        const put = store.put(key, body, controller.signal);
        put.catch(() => {});
        await waitFor(async () => (await uncommittedTempBlocks(container, earlier)) >= 4);
        controller.abort();
        await assert.rejects(put, { name: 'AbortError' });
        assert.ok(body.destroyed, 'the body is destroyed');
      }
      assert.ok((await bytesOf(store, 'kept')).equals(old), 'old blob byte-for-byte intact');
      assert.equal(await store.stat('fresh'), null);
      assert.deepEqual(await blobNames(container), ['kept'], 'no committed blob but the old one');
      // Staged blocks of an aborted put may outlive it on the temp blob, uncommitted: Azure discards
      // uncommitted blocks a week after the last write to them, and nothing ever reads them.
      assertOnlyTempUncommitted(await blobNames(container, { uncommitted: true }));
      await store.delete('kept');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('ranged gets of a multi-block blob cross block boundaries exactly', async () => {
    const { store, cleanup } = await openStore({ blockSizeBytes: 64 * KiB });
    try {
      const bytes = randomBytes(MiB + 3);
      await store.put('ranged', Readable.from(chunks(bytes, 10_000)));
      const last = bytes.length - 1;
      for (const [start, end] of [[0, 0], [65_535, 65_536], [60_000, 200_000], [64 * KiB, 128 * KiB - 1], [last - 10, last], [0, last]] as const) {
        assert.ok((await bytesOf(store, 'ranged', { start, end })).equals(bytes.subarray(start, end + 1)), `range ${start}-${end}`);
      }
      await store.delete('ranged');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('move copies server-side, synchronously up to syncCopyMaxBytes and asynchronously above', async () => {
    const { store, container, cleanup } = await openStore({ blockSizeBytes: 256 * KiB, syncCopyMaxBytes: MiB });
    try {
      for (const size of [MiB, 3 * MiB + 5]) {
        const moved = randomBytes(size);
        await store.put('staging/upload', Readable.from(chunks(moved, 64 * KiB)));
        await store.put('blobs/final', Readable.from([randomBytes(10)]));
        await store.move('staging/upload', 'blobs/final');
        assert.ok((await bytesOf(store, 'blobs/final')).equals(moved), `${size} bytes moved`);
        assert.equal(await store.stat('staging/upload'), null, 'source removed');
        assert.deepEqual(await blobNames(container), ['blobs/final']);
      }
      await store.move('blobs/final', 'blobs/final');
      assert.equal((await store.stat('blobs/final'))?.size, 3 * MiB + 5, 'a move onto itself keeps the blob');
      await assert.rejects(store.move('staging/missing', 'blobs/final'), (err) => err instanceof BlobNotFoundError && err.key === 'staging/missing');
      assert.equal((await store.stat('blobs/final'))?.size, 3 * MiB + 5, 'a failed move leaves the target');
      await store.delete('blobs/final');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('concurrent multi-block puts to one key stage on temp blobs of their own; the key ends with one whole value', async () => {
    // Staging blocks on the key itself fails here: each commit discards the others' uncommitted blocks.
    const { store, container, cleanup } = await openStore({ blockSizeBytes: 64 * KiB });
    try {
      const values = Array.from({ length: 6 }, () => randomBytes(MiB));
      const interleaved = async function* (bytes: Buffer) {
        for (let offset = 0; offset < bytes.length; offset += 32 * KiB) {
          yield bytes.subarray(offset, offset + 32 * KiB);
          await new Promise((r) => setImmediate(r));
        }
      };
      const results = await Promise.all(values.map((v) => store.put('contended', Readable.from(interleaved(v)))));
      assert.ok(results.every((r) => r.size === MiB));
      const stored = sha256(await bytesOf(store, 'contended'));
      assert.ok(values.some((v) => sha256(v) === stored), 'stored value is one of the values put');
      assert.deepEqual(await blobNames(container), ['contended'], 'every temp blob was removed');
      await store.delete('contended');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('an exclusive put (a fresh key, as ingest uses) stages its blocks on the key itself: no temp blob, no copy', async () => {
    const { store, container, cleanup } = await openStore({ blockSizeBytes: 64 * KiB });
    try {
      const value = randomBytes(MiB + 123);
      const seen: string[] = [];
      const watcher = setInterval(() => {
        void blobNames(container, { uncommitted: true }).then((names) => seen.push(...names));
      }, 5);
      const stat = await store.put('staging/fresh', Readable.from([value]), undefined, { exclusive: true });
      clearInterval(watcher);
      assert.equal(stat.size, value.length);
      assert.equal(sha256(await bytesOf(store, 'staging/fresh')), sha256(value));
      assert.deepEqual(await blobNames(container), ['staging/fresh']);
      assert.equal(seen.filter((name) => name.includes('.tmp/')).length, 0, `no temp blob was used: ${[...new Set(seen)].join(', ')}`);
      await store.delete('staging/fresh');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('temp blobs are hidden from list and reserved; a later open removes stale ones', async () => {
    const { store, container, cleanup } = await openStore();
    try {
      await store.put('user/blob', Readable.from([Buffer.from('user')]));
      // What a process that crashed between committing its temp blob and copying it leaves behind.
      await container.getBlockBlobClient('.tmp/crashed-put').upload(Buffer.from('partial'), 7);
      assert.deepEqual(await keys(store, ''), ['user/blob']);
      assert.deepEqual(await keys(store, '.t'), []);
      await assert.rejects(store.put('.tmp/x', Readable.from([Buffer.from('x')])), /reserved/);
      await assert.rejects(store.get('.tmp/crashed-put'), /reserved/);

      const az = await server();
      const recent = await AzureBlobStore.open({ connectionString: az.connectionString, container: container.containerName });
      assert.deepEqual(await blobNames(container), ['.tmp/crashed-put', 'user/blob'], 'a recent temp blob may be an in-flight put: kept');
      await recent.close();
      const later = await AzureBlobStore.open({ connectionString: az.connectionString, container: container.containerName, staleTempAfterMs: 0 });
      assert.deepEqual(await blobNames(container), ['user/blob'], 'a stale temp blob is removed');
      await later.close();
      await store.delete('user/blob');
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('keys Azure cannot name faithfully (a segment ending in ".") are refused', async () => {
    const { store, container, cleanup } = await openStore();
    try {
      for (const key of ['x.', 'a./b', 'a/b.']) {
        await assert.rejects(store.put(key, Readable.from([Buffer.from('x')])), /ending in '\.'/, `put ${key}`);
        await assert.rejects(store.stat(key), /ending in '\.'/, `stat ${key}`);
      }
      assert.deepEqual(await blobNames(container), []);
    } finally {
      await store.close();
      await cleanup();
    }
  });

  test('open fails on a missing container unless asked to create it, and on a SAS connection string', async () => {
    const az = await server();
    const missing = `astore-missing-${randomUUID().slice(0, 8)}`;
    await assert.rejects(AzureBlobStore.open({ connectionString: az.connectionString, container: missing }), /does not exist/);
    await assert.rejects(
      AzureBlobStore.open({ connectionString: `BlobEndpoint=${az.accountUrl};SharedAccessSignature=sv=2020-08-04&sig=x`, container: missing }),
      /AccountKey/,
    );
    await assert.rejects(AzureBlobStore.open({ connectionString: az.connectionString, container: 'Bad_Name' }), /container name/);
    const store = await AzureBlobStore.open({ accountUrl: az.accountUrl, accountName: az.accountName, accountKey: az.accountKey, container: missing, createContainer: true });
    await store.put('k', Readable.from([Buffer.from('v')]));
    assert.equal((await bytesOf(store, 'k')).toString(), 'v');
    await store.close();
    await BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(missing).delete();
  });
});

/** Blob names in the container, sorted; with `uncommitted`, blobs that only have staged blocks too. */
async function blobNames(container: ContainerClient, options: { uncommitted?: boolean } = {}): Promise<string[]> {
  const names: string[] = [];
  for await (const item of container.listBlobsFlat({ includeUncommitedBlobs: options.uncommitted ?? false })) names.push(item.name);
  return names.sort();
}

/** Uncommitted blocks staged on temp blobs (other than those in `skip`), over all of them. */
async function uncommittedTempBlocks(container: ContainerClient, skip: Set<string>): Promise<number> {
  let blocks = 0;
  for await (const item of container.listBlobsFlat({ prefix: '.tmp/', includeUncommitedBlobs: true })) {
    if (skip.has(item.name)) continue;
    const list = await container.getBlockBlobClient(item.name).getBlockList('uncommitted');
    blocks += list.uncommittedBlocks?.length ?? 0;
  }
  return blocks;
}

function assertOnlyTempUncommitted(names: string[]): void {
  const stray = names.filter((n) => n !== 'kept' && !n.startsWith('.tmp/'));
  assert.deepEqual(stray, [], 'uncommitted blocks only on temp blobs, never on a key');
}

async function keys(store: BlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const listing of store.list(prefix)) out.push(listing.key);
  return out.sort();
}

async function bytesOf(store: BlobStore, key: string, range?: { start: number; end: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.get(key, range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) out.push(bytes.subarray(offset, offset + size));
  return out;
}

/** Runs `body`, sampling RSS every 10 ms; returns the peak RSS minus the RSS just before. */
async function peakRssGrowth(body: () => Promise<void>): Promise<number> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
  try {
    await body();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, process.memoryUsage.rss()) - baseline;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
