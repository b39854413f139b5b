import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { runBlobStoreConformance } from '../../packages/server/src/storage/blob/conformance.ts';
import { S3BlobStore, type S3BlobStoreOptions } from '../../packages/server/src/storage/blob/s3.ts';
import { BlobNotFoundError, type BlobStore } from '../../packages/server/src/storage/blob/types.ts';
import { startMinio, type MinioServer } from '../helpers/minio.ts';

/**
 * The S3 BlobStore driver against a real MinIO started here (ASTORE_TEST_MINIO; a missing binary fails,
 * never skips): the shared conformance suite, then what only an object store has — multipart uploads
 * and their clean-up, server-side copies, presigned URLs, listing pages, the key prefix. The memory test
 * runs first, while the process's RSS is not yet padded by memory that earlier tests freed.
 */
const MiB = 1024 * 1024;

// One MinIO for the whole file, started by whichever test needs it first.
let minio: Promise<MinioServer> | undefined;
const server = () => (minio ??= startMinio());
after(async () => {
  await minio?.then((m) => m.stop(), () => {});
});

const optionsFor = (m: MinioServer, bucket: string): S3BlobStoreOptions => ({
  endpoint: m.endpoint,
  region: m.region,
  bucket,
  accessKeyId: m.accessKeyId,
  secretAccessKey: m.secretAccessKey,
  forcePathStyle: true,
});

describe('S3BlobStore on MinIO', () => {
  let m: MinioServer;
  let bucket = '';
  let seq = 0;
  /** A store confined to a fresh prefix of the shared bucket; `release` checks nothing is left there. */
  const openStore = async (options: Partial<S3BlobStoreOptions> = {}) => {
    const prefix = `t${++seq}/`;
    const store = await S3BlobStore.open({ ...optionsFor(m, bucket), prefix, ...options });
    const release = async () => {
      assert.deepEqual(await keys(store, ''), [], `keys left under ${prefix}`);
      assert.deepEqual(await openUploads(m.client, bucket, prefix), [], `multipart uploads left under ${prefix}`);
      await store.close();
    };
    return { store, prefix, release };
  };

  before(async () => {
    m = await server();
    bucket = await m.createBucket();
  });
  after(async () => {
    if (bucket) await m.removeBucket(bucket);
  });

  test('a 200 MiB stream goes up in parts with flat memory, and reads back byte for byte', { timeout: 600_000 }, async () => {
    const partSizeBytes = 5 * MiB;
    const queueSize = 2;
    const { store, prefix, release } = await openStore({ partSizeBytes, queueSize });
    const commands = recordCommands(store.client);
    const total = 200 * MiB;
    const hashIn = createHash('sha256');
    const memory = new MemorySampler();
    const generate = async function* () {
      // Fresh random chunks: the source holds nothing back, so what stays in memory is the driver's.
      for (let sent = 0; sent < total; sent += 256 * 1024) {
        if (sent === total / 2) memory.nextPhase();
        const chunk = randomBytes(256 * 1024);
        hashIn.update(chunk);
        yield chunk;
      }
    };
    const put = await memory.during(() => store.put('big', Readable.from(generate())));
    assert.equal(put.size, total);
    assert.equal(memory.phaseGrowth('rss').length, 2, 'sampled both halves');
    assert.equal(commands.filter((c) => c === 'UploadPartCommand').length, 40, '200 MiB in 5 MiB parts');
    assert.equal(commands.filter((c) => c === 'PutObjectCommand').length, 0);
    const head = await m.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}big` }));
    assert.match(head.ETag ?? '', /-40"$/, 'stored as one multipart object of 40 parts');

    const reading = new MemorySampler();
    const hashOut = createHash('sha256');
    let size = 0;
    await reading.during(async () => {
      for await (const chunk of await store.get('big')) {
        hashOut.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    });
    assert.equal(size, total);
    assert.equal(hashOut.digest('hex'), hashIn.digest('hex'));

    // Live: at most (queueSize + 1) parts. On top of that V8 lets about 64 MiB of dead Buffers (the
    // source's chunks, sent parts) pile up before it collects them, whatever the blob's size.
    const bound = (queueSize + 1) * partSizeBytes + 64 * MiB + 24 * MiB;
    const report = (metric: Metric) => {
      const [first = 0, second = 0] = memory.phaseGrowth(metric);
      console.log(`# 200 MiB put, ${metric}: peak +${mib(first)} MiB over the first 100 MiB, +${mib(second)} MiB over the second; get: +${mib(reading.growth(metric))} MiB`);
      assert.ok(second - first < 24 * MiB, `${metric} kept growing with the blob: +${mib(first)} then +${mib(second)} MiB`);
      assert.ok(memory.growth(metric) < bound, `put grew ${metric} by ${mib(memory.growth(metric))} MiB, more than ${mib(bound)} MiB`);
      assert.ok(reading.growth(metric) < bound, `get grew ${metric} by ${mib(reading.growth(metric))} MiB`);
    };
    report('rss');
    report('arrayBuffers');
    await store.delete('big');
    await release();
  });

  test('a put aborted mid-multipart rejects, keeps the old blob and leaves no upload behind', async () => {
    const { store, prefix, release } = await openStore({ partSizeBytes: 5 * MiB, queueSize: 2 });
    const old = randomBytes(1000);
    await store.put('k', Readable.from([old]));
    let partsDone = 0;
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'UploadPartCommand') partsDone++;
        return out;
      },
      { step: 'initialize', name: 'countParts' },
    );
    const controller = new AbortController();
    const put = store.put('k', endless(), controller.signal);
    try {
      const until = Date.now() + 60_000;
      while (partsDone < 2 && Date.now() < until) await sleep(10);
      assert.ok(partsDone >= 2, 'parts were uploaded before the abort');
      assert.deepEqual(await openUploads(m.client, bucket, prefix), [`${prefix}k`], 'a multipart upload is in progress');
    } finally {
      controller.abort();
    }
    await assert.rejects(put, { name: 'AbortError' });

    assert.deepEqual(await openUploads(m.client, bucket, prefix), [], 'the upload was aborted before put rejected');
    assert.ok((await bytes(store, 'k')).equals(old), 'old blob intact');
    await store.delete('k');
    await release();
  });

  test('a body failing mid-multipart rejects with its own error and leaves no upload behind', async () => {
    const { store, prefix, release } = await openStore({ partSizeBytes: 5 * MiB });
    const failure = new Error('source failed after 12 MiB');
    const failing = async function* () {
      for (let i = 0; i < 12; i++) yield randomBytes(MiB);
      await sleep(50);
      throw failure;
    };
    await assert.rejects(store.put('k', Readable.from(failing())), (err) => err === failure);
    assert.equal(await store.stat('k'), null);
    assert.deepEqual(await openUploads(m.client, bucket, prefix), []);
    await release();
  });

  test('a failing part upload fails the put with that error and aborts the multipart upload', async () => {
    const { store, prefix, release } = await openStore({ partSizeBytes: 5 * MiB, queueSize: 2 });
    const injected = new Error('injected: part 3 lost');
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand' && (args.input as { PartNumber?: number }).PartNumber === 3) throw injected;
        return next(args);
      },
      { step: 'initialize', name: 'failPart3' },
    );
    const body = Readable.from(Array.from({ length: 30 }, () => randomBytes(MiB)));
    await assert.rejects(store.put('k', body), (err) => err === injected);
    assert.ok(body.destroyed, 'the body is not read to its end after a part failed');
    assert.equal(await store.stat('k'), null);
    assert.deepEqual(await openUploads(m.client, bucket, prefix), []);
    await release();
  });

  test('concurrent multipart puts to one key end with one whole value and no upload left', async () => {
    const { store, prefix, release } = await openStore({ partSizeBytes: 5 * MiB, queueSize: 2 });
    const values = Array.from({ length: 3 }, () => randomBytes(12 * MiB));
    await Promise.all(values.map((v) => store.put('k', Readable.from(chunks(v, 256 * 1024)))));
    const stored = sha256(await bytes(store, 'k'));
    assert.ok(values.some((v) => sha256(v) === stored), 'the stored value is one of those put, whole');
    assert.deepEqual(await openUploads(m.client, bucket, prefix), []);
    await store.delete('k');
    await release();
  });

  test('with checksums when_required no CRC32 is sent, and blobs still round-trip', async () => {
    const { store, release } = await openStore({ partSizeBytes: 5 * MiB, checksums: 'when_required' });
    const headers: string[] = [];
    store.client.middlewareStack.add(
      (next) => async (args) => {
        headers.push(...Object.keys((args.request as { headers?: Record<string, string> }).headers ?? {}).map((h) => h.toLowerCase()));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordHeaders' },
    );
    const big = randomBytes(11 * MiB);
    const small = randomBytes(1000);
    await store.put('big', Readable.from(chunks(big, MiB)));
    await store.put('small', Readable.from([small]));
    assert.ok((await bytes(store, 'big')).equals(big));
    assert.ok((await bytes(store, 'small')).equals(small));
    assert.deepEqual(headers.filter((h) => h.startsWith('x-amz-checksum') || h === 'x-amz-sdk-checksum-algorithm'), []);
    await store.delete('big');
    await store.delete('small');
    await release();
  });

  test('ranged gets return exact bytes across part boundaries of a multipart blob', async () => {
    const { store, release } = await openStore({ partSizeBytes: 5 * MiB });
    const data = randomBytes(12 * MiB + 7);
    await store.put('k', Readable.from(chunks(data, 100_000)));
    for (const [start, end] of [
      [0, 0],
      [5 * MiB - 10, 5 * MiB + 10],
      [MiB, 11 * MiB],
      [data.length - 1, data.length - 1],
      [0, data.length - 1],
    ] as const) {
      assert.ok((await bytes(store, 'k', { start, end })).equals(data.subarray(start, end + 1)), `range ${start}-${end}`);
    }
    await store.delete('k');
    await release();
  });

  test('every method refuses an aborted signal, and an abort mid-read ends the stream', async () => {
    const { store, release } = await openStore();
    await store.put('k', Readable.from([randomBytes(3 * MiB)]));
    const aborted = AbortSignal.abort();
    const isAbort = { name: 'AbortError' };
    await assert.rejects(store.stat('k', aborted), isAbort);
    await assert.rejects(store.get('k', undefined, aborted), isAbort);
    await assert.rejects(store.move('k', 'k2', aborted), isAbort);
    await assert.rejects(store.delete('k', aborted), isAbort);
    await assert.rejects(keys(store, '', aborted), isAbort);
    assert.equal((await store.stat('k'))?.size, 3 * MiB, 'nothing happened');

    const controller = new AbortController();
    const stream = await store.get('k', undefined, controller.signal);
    const read = (async () => {
      for await (const _ of stream) controller.abort();
    })();
    await assert.rejects(read, isAbort);
    await store.delete('k');
    await release();
  });

  test('a move above the copy threshold copies server-side in UploadPartCopy parts', async () => {
    const { store, prefix, release } = await openStore({ multipartCopyThresholdBytes: 6 * MiB, copyPartSizeBytes: 5 * MiB });
    const commands = recordCommands(store.client);
    const data = randomBytes(23 * MiB);
    await store.put('staging/u', Readable.from(chunks(data, MiB)));
    await store.move('staging/u', 'blobs/final');
    assert.equal(commands.filter((c) => c === 'UploadPartCopyCommand').length, 5, '23 MiB in 5 MiB copy parts');
    assert.equal(commands.filter((c) => c === 'CopyObjectCommand').length, 0);
    const head = await m.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}blobs/final` }));
    assert.match(head.ETag ?? '', /-5"$/, 'the target is the multipart copy');
    assert.equal(await store.stat('staging/u'), null);
    assert.ok((await bytes(store, 'blobs/final')).equals(data));

    // At or under the threshold: one CopyObject.
    await store.put('small', Readable.from([randomBytes(6 * MiB)]));
    await store.move('small', 'small-moved');
    assert.equal(commands.filter((c) => c === 'CopyObjectCommand').length, 1);
    assert.equal(commands.filter((c) => c === 'UploadPartCopyCommand').length, 5);
    await store.delete('small-moved');
    await store.delete('blobs/final');
    await release();
  });

  test('a multipart move whose source is overwritten mid-copy fails and leaves the target untouched', async () => {
    const { store, prefix, release } = await openStore({ multipartCopyThresholdBytes: 6 * MiB, copyPartSizeBytes: 5 * MiB, queueSize: 1 });
    const original = randomBytes(12 * MiB);
    const target = randomBytes(100);
    await store.put('from', Readable.from(chunks(original, MiB)));
    await store.put('to', Readable.from([target]));
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCopyCommand' && (args.input as { PartNumber?: number }).PartNumber === 2) {
          await m.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}from`, Body: randomBytes(12 * MiB) }));
        }
        return next(args);
      },
      { step: 'initialize', name: 'overwriteSource' },
    );
    await assert.rejects(store.move('from', 'to'), /source changed during the copy/);
    assert.ok((await bytes(store, 'to')).equals(target), 'target untouched');
    assert.equal((await store.stat('from'))?.size, 12 * MiB, 'source kept');
    assert.deepEqual(await openUploads(m.client, bucket, prefix), []);
    await store.delete('from');
    await store.delete('to');
    await release();
  });

  test('a presigned GET serves the blob to plain fetch, honours Range, and expires', async () => {
    const { store, release } = await openStore({ presignedGetSeconds: 600 });
    const data = randomBytes(70_000);
    await store.put('dir/a:b.bin', Readable.from([data]));
    assert.ok(store.presignGet, 'enabled by presignedGetSeconds');

    const url = await store.presignGet('dir/a:b.bin', 60);
    assert.equal(new URL(url).searchParams.get('X-Amz-Expires'), '60');
    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data));
    const ranged = await fetch(url, { headers: { range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(100, 200)));

    const capped = await store.presignGet('dir/a:b.bin', 3600);
    assert.equal(new URL(capped).searchParams.get('X-Amz-Expires'), '600', 'capped at presignedGetSeconds');
    const missing = await fetch(await store.presignGet('dir/none', 60));
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const tampered = await fetch(url.replace('X-Amz-Expires=60', 'X-Amz-Expires=61'));
    assert.equal(tampered.status, 403);
    await tampered.arrayBuffer();
    await assert.rejects(store.presignGet('../escape', 60), /invalid blob key/);

    const shortLived = await store.presignGet('dir/a:b.bin', 1);
    await sleep(2_100);
    const late = await fetch(shortLived);
    assert.equal(late.status, 403, 'expired');
    await late.arrayBuffer();

    const plain = await openStore();
    assert.equal(plain.store.presignGet, undefined, 'absent unless enabled');
    await plain.release();
    await store.delete('dir/a:b.bin');
    await release();
  });

  test('list follows continuation tokens across pages', async () => {
    const { store, release } = await openStore();
    const commands = recordCommands(store.client);
    store.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command') (args.input as { MaxKeys?: number }).MaxKeys = 2;
        return next(args);
      },
      { step: 'initialize', name: 'smallPages' },
    );
    const names = ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'b/6'];
    for (const name of names) await store.put(name, Readable.from([Buffer.from(name)]));
    assert.deepEqual(await keys(store, 'a/'), names.slice(0, 5));
    assert.equal(commands.filter((c) => c === 'ListObjectsV2Command').length, 3, '5 keys in pages of 2');
    for (const name of names) await store.delete(name);
    await release();
  });

  test('the prefix confines the store to its part of the bucket; foreign objects are not listed', async () => {
    const { store, prefix, release } = await openStore();
    await store.put('mine', Readable.from([Buffer.from('mine')]));
    assert.equal((await m.client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}mine` }))).ContentLength, 4);
    // Objects a BlobStore never writes: a folder marker and a name that is not a key; and a neighbour's.
    const foreign = [`${prefix}folder/`, `${prefix}not a key`, `${prefix.slice(0, -1)}-other/x`];
    for (const Key of foreign) await m.client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    assert.deepEqual(await keys(store, ''), ['mine']);
    for (const Key of foreign) await m.client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    await store.delete('mine');
    await release();
  });

  test('open checks the bucket unless it may create it, and refuses bad options by name', async () => {
    const missing = `astore-missing-${randomBytes(4).toString('hex')}`;
    await assert.rejects(S3BlobStore.open(optionsFor(m, missing)), new RegExp(`bucket "${missing}" .* does not exist`));
    const created = await S3BlobStore.open({ ...optionsFor(m, missing), createBucket: true });
    const again = await S3BlobStore.open({ ...optionsFor(m, missing), createBucket: true });
    assert.deepEqual(await keys(again, ''), []);
    await created.close();
    await again.close();
    await m.removeBucket(missing);

    await assert.rejects(S3BlobStore.open({ ...optionsFor(m, bucket), partSizeBytes: MiB }), /partSizeBytes/);
    await assert.rejects(S3BlobStore.open({ ...optionsFor(m, bucket), queueSize: 0 }), /queueSize/);
    await assert.rejects(S3BlobStore.open({ ...optionsFor(m, bucket), presignedGetSeconds: 8 * 24 * 3600 }), /presignedGetSeconds/);
    await assert.rejects(S3BlobStore.open({ ...optionsFor(m, bucket), prefix: '../up' }), /invalid prefix/);
    await assert.rejects(S3BlobStore.open({ ...optionsFor(m, bucket), secretAccessKey: undefined }), /accessKeyId and secretAccessKey/);
    const wrongSecret = S3BlobStore.open({ ...optionsFor(m, bucket), secretAccessKey: 'wrong-secret' });
    await assert.rejects(wrongSecret, /is not reachable/);
  });

  test('a move onto itself keeps the blob; a missing source is BlobNotFoundError', async () => {
    const { store, release } = await openStore();
    const data = randomBytes(5000);
    await store.put('same', Readable.from([data]));
    await store.move('same', 'same');
    assert.ok((await bytes(store, 'same')).equals(data));
    await assert.rejects(store.move('absent', 'same'), (err) => err instanceof BlobNotFoundError && err.key === 'absent');
    assert.ok((await bytes(store, 'same')).equals(data));
    await store.delete('same');
    await release();
  });
});

// Every open gets a bucket of its own (created by the store) and a key prefix inside it, so the driver's
// prefix mapping is under test too; cleanup also fails on a multipart upload left behind.
runBlobStoreConformance('s3 (MinIO)', async () => {
  const m = await server();
  const bucket = `astore-conformance-${randomBytes(6).toString('hex')}`;
  const store = await S3BlobStore.open({ ...optionsFor(m, bucket), prefix: 'tenant-a/', createBucket: true, partSizeBytes: 5 * MiB });
  return {
    store,
    cleanup: async () => {
      try {
        assert.deepEqual(await openUploads(m.client, bucket), [], 'the suite left multipart uploads behind');
      } finally {
        await m.removeBucket(bucket);
      }
    },
  };
});

/**
 * Keys of the multipart uploads in progress in `bucket` under `prefix`. MinIO matches a ListMultipartUploads
 * Prefix against whole object names only (`t1/` finds nothing, `t1/k` finds `t1/k`), so this lists them
 * all and filters here.
 */
async function openUploads(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  do {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker, UploadIdMarker }));
    keys.push(...(page.Uploads ?? []).map((u) => u.Key ?? '').filter((k) => k.startsWith(prefix)));
    ({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : {});
  } while (KeyMarker);
  return keys.sort();
}

/** The name of every command `client` sends from now on, in order. */
function recordCommands(client: S3Client): string[] {
  const sent: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: `record-${Math.random()}` },
  );
  return sent;
}

type Metric = 'rss' | 'arrayBuffers';

/**
 * Peak memory over its level just before `during`, sampled every 10 ms, overall and per phase. Two
 * measures: RSS, what the brief of "flat memory" is about, but blind to memory the allocator kept from
 * earlier tests and reuses; and arrayBuffers, every Buffer byte V8 holds (live, or dead but not yet
 * collected), which no earlier test can hide.
 */
class MemorySampler {
  private baseline = { rss: 0, arrayBuffers: 0 };
  private peaks: Array<{ rss: number; arrayBuffers: number }> = [];

  async during<T>(work: () => Promise<T>): Promise<T> {
    const { rss, arrayBuffers } = process.memoryUsage();
    this.baseline = { rss, arrayBuffers };
    this.peaks = [{ rss, arrayBuffers }];
    const timer = setInterval(() => this.sample(), 10);
    try {
      return await work();
    } finally {
      this.sample();
      clearInterval(timer);
    }
  }

  /** Starts a new phase: later samples count towards its peak. */
  nextPhase(): void {
    const { rss, arrayBuffers } = process.memoryUsage();
    this.peaks.push({ rss, arrayBuffers });
  }

  /** Growth of each phase's peak over the baseline. */
  phaseGrowth(metric: Metric): number[] {
    return this.peaks.map((p) => p[metric] - this.baseline[metric]);
  }

  growth(metric: Metric): number {
    return Math.max(...this.phaseGrowth(metric));
  }

  private sample(): void {
    const { rss, arrayBuffers } = process.memoryUsage();
    const peak = this.peaks[this.peaks.length - 1]!;
    peak.rss = Math.max(peak.rss, rss);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, arrayBuffers);
  }
}

/** A body that never ends: only an abort stops a put of it. */
function endless(): Readable {
  return new Readable({
    read() {
      this.push(randomBytes(MiB));
    },
  });
}

function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) out.push(data.subarray(offset, offset + size));
  return out;
}

async function keys(store: BlobStore, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for await (const listing of store.list(prefix, signal)) out.push(listing.key);
  return out.sort();
}

async function bytes(store: BlobStore, key: string, range?: { start: number; end: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.get(key, range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const mib = (n: number) => (n / MiB).toFixed(1);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
