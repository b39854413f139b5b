import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runBlobStoreConformance } from '../../packages/server/src/storage/blob/conformance.ts';
import { GcsBlobStore, GcsUploadError, type GcsBlobStoreOptions } from '../../packages/server/src/storage/blob/gcs.ts';
import { BlobNotFoundError, type BlobStore, type ByteRange } from '../../packages/server/src/storage/blob/types.ts';
import { startFakeGcs, startGcsProxy, type FakeGcsServer, type GcsProxy, type ProxiedRequest } from '../helpers/fake-gcs.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** The smallest chunk GCS allows: many chunk requests from small blobs. */
const smallChunk = 256 * KiB;

// One fake-gcs-server for the whole file, started by whichever test needs it first.
let fakeGcs: Promise<FakeGcsServer> | undefined;
const server = () => (fakeGcs ??= startFakeGcs());
after(async () => {
  await fakeGcs?.then((g) => g.stop(), () => {});
});

// The emulator set-up that works with @google-cloud/storage 7.22: apiEndpoint (the SDK then sends no
// credentials) and any projectId.
const optionsFor = (g: FakeGcsServer, bucket: string): GcsBlobStoreOptions => ({ bucket, apiEndpoint: g.url, projectId: 'test' });

describe('GcsBlobStore on fake-gcs-server', () => {
  let g: FakeGcsServer;
  /** Every store below talks through it (unless a test says otherwise), so tests see and break the traffic. */
  let proxy: GcsProxy;
  let bucket = '';
  let seq = 0;
  /**
   * A store confined to a fresh prefix of the shared bucket, 256 KiB chunks; `traffic()` is what it sent
   * since, `release` checks nothing is left under the prefix and clears any interception.
   */
  const openStore = async (options: Partial<GcsBlobStoreOptions> = {}) => {
    const prefix = `t${++seq}/`;
    const store = await GcsBlobStore.open({ ...optionsFor(g, bucket), apiEndpoint: proxy.url, prefix, chunkSizeBytes: smallChunk, ...options });
    const mark = proxy.requests.length;
    const release = async () => {
      proxy.intercept(undefined);
      assert.deepEqual(await g.objectNames(bucket, prefix), [], `objects left under ${prefix}`);
      await store.close();
    };
    return { store, prefix, release, traffic: () => uploadTraffic(proxy.requests.slice(mark)) };
  };

  before(async () => {
    g = await server();
    proxy = await startGcsProxy(g.url);
    bucket = await g.createBucket();
  });
  after(async () => {
    await proxy?.stop();
    if (bucket) await g.removeBucket(bucket);
  });

  test('a 200 MiB stream goes up in 8 MiB chunks with flat memory, and reads back byte for byte', { timeout: 600_000 }, async () => {
    const chunkSizeBytes = 8 * MiB;
    // Straight to fake-gcs-server: the proxy runs in this process and would count in its memory.
    const { store, release } = await openStore({ chunkSizeBytes, apiEndpoint: g.url });
    const total = 200 * MiB;
    const hashIn = createHash('sha256');
    const generate = async function* () {
      // 256 KiB chunks of fresh random bytes: the source holds nothing back, so memory is the driver's.
      for (let sent = 0; sent < total; sent += 256 * KiB) {
        const chunk = randomBytes(256 * KiB);
        hashIn.update(chunk);
        yield chunk;
      }
    };

    const upload = await peakMemoryGrowth(() => store.put('big', Readable.from(generate())));
    assert.equal(upload.result.size, total);
    assert.equal((await store.stat('big'))?.size, total);

    const download = await peakMemoryGrowth(async () => {
      const hashOut = createHash('sha256');
      let size = 0;
      for await (const chunk of await store.get('big')) {
        hashOut.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      return { size, digest: hashOut.digest('hex') };
    });
    assert.equal(download.result.size, total);
    assert.equal(download.result.digest, hashIn.digest('hex'));

    // The driver holds the body's buffers for one chunk; the rest is garbage not yet collected (the
    // generator's 200 MiB go through in 256 KiB buffers), V8 and socket slack.
    const bound = chunkSizeBytes + 56 * MiB;
    console.log(
      `# 200 MiB put: RSS +${mib(upload.rss)} MiB, buffers +${mib(upload.buffers)} MiB (bound ${mib(bound)} MiB); ` +
        `get: RSS +${mib(download.rss)} MiB, buffers +${mib(download.buffers)} MiB`,
    );
    assert.ok(upload.rss < bound, `put grew RSS by ${mib(upload.rss)} MiB, more than ${mib(bound)} MiB`);
    assert.ok(upload.buffers < bound, `put grew buffers by ${mib(upload.buffers)} MiB, more than ${mib(bound)} MiB`);
    assert.ok(download.rss < 64 * MiB, `get grew RSS by ${mib(download.rss)} MiB`);
    assert.ok(download.buffers < 64 * MiB, `get grew buffers by ${mib(download.buffers)} MiB`);
    await store.delete('big');
    await release();
  });

  test('sizes around chunk multiples round-trip in one session; only the last request finalises', async () => {
    const { store, release } = await openStore();
    for (const size of [0, 1, smallChunk - 1, smallChunk, smallChunk + 1, 2 * smallChunk, 3 * smallChunk + 12_345]) {
      const data = randomBytes(size);
      const mark = proxy.requests.length;
      assert.equal((await store.put('k', Readable.from(chunks(data, 40_000)))).size, size);
      const sent = uploadTraffic(proxy.requests.slice(mark));
      assert.equal(sent.sessions, 1, `${size} bytes: one session`);
      assert.equal(sent.chunks.length, Math.max(1, Math.ceil(size / smallChunk)), `${size} bytes: one request per chunk`);
      for (const [i, range] of sent.chunks.entries()) {
        const expected = i < sent.chunks.length - 1
          ? `bytes ${i * smallChunk}-${(i + 1) * smallChunk - 1}/*`
          : size === 0 ? 'bytes */0' : `bytes ${i * smallChunk}-${size - 1}/${size}`;
        assert.equal(range, expected, `${size} bytes: chunk ${i}`);
      }
      assert.ok((await bytes(store, 'k')).equals(data), `${size} bytes read back`);
    }
    await store.delete('k');
    await release();
  });

  test('a put aborted mid-upload rejects, keeps the old blob, shows nothing and cancels its session', async () => {
    const { store, release, traffic } = await openStore();
    const old = randomBytes(1000);
    await store.put('k', Readable.from([old]));
    const earlier = traffic().chunks.length;
    const controller = new AbortController();
    const put = store.put('k', endless(), controller.signal);
    await waitFor(() => traffic().chunks.length >= earlier + 3, 'chunks were uploaded before the abort', 30_000);
    assert.ok((await bytes(store, 'k')).equals(old), 'readers see the old blob during the upload');
    controller.abort();
    await within(5_000, assert.rejects(put, { name: 'AbortError' }), 'put ignored its abort signal');
    await waitFor(() => traffic().cancels === 1, 'the session was cancelled (DELETE on its URI)');
    assert.ok(traffic().chunks.slice(earlier).every((r) => r.endsWith('/*')), 'no request named a total');
    assert.ok((await bytes(store, 'k')).equals(old), 'old blob intact');
    assert.deepEqual(await keys(store, ''), ['k']);
    await store.delete('k');
    await release();
  });

  test('an abort ends a chunk request that is still in flight', async () => {
    const { store, release, traffic } = await openStore();
    // The third chunk request is never answered, as over a stalled connection.
    let n = 0;
    proxy.intercept((r) => (isChunk(r) && ++n === 3 ? 'hang' : undefined));
    const controller = new AbortController();
    const put = store.put('k', endless(), controller.signal);
    await waitFor(() => traffic().chunks.length === 3, 'the third chunk request started', 30_000);
    await sleep(100);
    controller.abort();
    await within(2_000, assert.rejects(put, { name: 'AbortError' }), 'put waited for the hanging request');
    assert.equal(await store.stat('k'), null);
    await release();
  });

  test('a body failing mid-upload rejects with its own error and leaves no object', async () => {
    const { store, release, traffic } = await openStore();
    const old = randomBytes(1000);
    await store.put('old', Readable.from([old]));
    const failure = new Error('source failed after 1 MiB');
    const failing = async function* () {
      for (let i = 0; i < 16; i++) yield randomBytes(64 * KiB);
      await sleep(20);
      throw failure;
    };
    const before = traffic().chunks.length;
    await assert.rejects(store.put('new', Readable.from(failing())), (err) => err === failure);
    await assert.rejects(store.put('old', Readable.from(failing())), (err) => err === failure);
    assert.equal(traffic().chunks.length - before, 6, '3 chunks of each had gone up before the failure');
    await waitFor(() => traffic().cancels === 2, 'both sessions were cancelled');
    assert.equal(await store.stat('new'), null);
    assert.ok((await bytes(store, 'old')).equals(old), 'old blob intact');
    await store.delete('old');
    await release();
  });

  test('a chunk GCS refuses fails the put with that status, stops reading the body and leaves no object', async () => {
    const { store, release, traffic } = await openStore();
    let n = 0;
    proxy.intercept((r) =>
      isChunk(r) && ++n === 2 ? { status: 403, body: JSON.stringify({ error: { code: 403, message: 'injected: access denied' } }) } : undefined,
    );
    const body = Readable.from(Array.from({ length: 20 }, () => randomBytes(256 * KiB)));
    await assert.rejects(store.put('k', body), (err) => err instanceof GcsUploadError && err.status === 403 && /injected/.test(err.message));
    await waitFor(() => traffic().cancels === 1, 'the session was cancelled');
    assert.equal(traffic().chunks.length, 2, 'no retry of a refused chunk');
    assert.ok(body.destroyed, 'the body is not read to its end');
    assert.equal(await store.stat('k'), null);
    await release();
  });

  test('a chunk lost to a dropped connection is sent again from where the session got to', async () => {
    const { store, release, traffic } = await openStore();
    // The connection of chunk request 2 is dropped before its body is read. fake-gcs-server finalises
    // an upload on a status query (`bytes */*`), so the proxy answers that query the way GCS does: 308
    // with the Range the session has persisted.
    let n = 0;
    proxy.intercept((r) => {
      if (!isChunk(r)) return undefined;
      if (r.contentRange === 'bytes */*') {
        const persisted = traffic().persisted;
        const headers: Record<string, string> = persisted > 0 ? { range: `bytes=0-${persisted - 1}` } : {};
        return { status: 308, headers };
      }
      return ++n === 2 ? 'reset' : undefined;
    });
    const data = randomBytes(3 * smallChunk + 1000);
    assert.equal((await store.put('k', Readable.from(chunks(data, 50_000)))).size, data.length);
    assert.deepEqual(traffic().chunks, [
      `bytes 0-${smallChunk - 1}/*`,
      `bytes ${smallChunk}-${2 * smallChunk - 1}/*`, // lost
      'bytes */*',
      `bytes ${smallChunk}-${2 * smallChunk - 1}/*`,
      `bytes ${2 * smallChunk}-${3 * smallChunk - 1}/*`,
      `bytes ${3 * smallChunk}-${data.length - 1}/${data.length}`,
    ]);
    assert.ok((await bytes(store, 'k')).equals(data));
    await store.delete('k');
    await release();
  });

  test('ranged gets return exact bytes across chunk boundaries of a multi-chunk blob', async () => {
    const { store, release } = await openStore();
    const data = randomBytes(5 * smallChunk + 7);
    await store.put('k', Readable.from(chunks(data, 100_000)));
    const ranges: [number, number][] = [
      [0, 0],
      [smallChunk - 10, smallChunk + 10],
      [2 * smallChunk - 1, 2 * smallChunk],
      [KiB, 4 * smallChunk],
      [data.length - 1, data.length - 1],
      [0, data.length - 1],
    ];
    for (const [start, end] of ranges) {
      assert.ok((await bytes(store, 'k', { start, end })).equals(data.subarray(start, end + 1)), `range ${start}-${end}`);
    }
    await store.delete('k');
    await release();
  });

  test('move rewrites a multi-chunk blob server-side and deletes the source; onto itself it keeps the blob', async () => {
    const { store, prefix, release } = await openStore();
    const data = randomBytes(4 * smallChunk + 99);
    await store.put('staging/u', Readable.from(chunks(data, 64 * KiB)));
    await store.put('blobs/final', Readable.from([randomBytes(10)]));
    await store.move('staging/u', 'blobs/final');
    assert.deepEqual(await g.objectNames(bucket, prefix), [`${prefix}blobs/final`]);
    assert.ok((await bytes(store, 'blobs/final')).equals(data));

    await store.move('blobs/final', 'blobs/final');
    assert.ok((await bytes(store, 'blobs/final')).equals(data), 'a move onto itself is not a delete');
    await assert.rejects(store.move('absent', 'blobs/final'), (err) => err instanceof BlobNotFoundError && err.key === 'absent');
    assert.ok((await bytes(store, 'blobs/final')).equals(data));
    await store.delete('blobs/final');
    await release();
  });

  test('list follows page tokens past 1000 objects', { timeout: 120_000 }, async () => {
    const { store, prefix, release } = await openStore();
    const names = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    await inParallel(names, 32, (name, i) => g.putObject(bucket, prefix + name, Buffer.alloc(i % 7)));
    await g.putObject(bucket, `${prefix}other/x`, Buffer.from('x'));
    const listed: { key: string; size: number; modifiedAt?: Date }[] = [];
    for await (const l of store.list('many/')) listed.push(l);
    assert.deepEqual(listed.map((l) => l.key).sort(), names);
    const sizes = new Map(listed.map((l) => [l.key, l.size]));
    assert.ok(names.every((name, i) => sizes.get(name) === i % 7), 'sizes');
    assert.ok(listed.every((l) => l.modifiedAt instanceof Date && !Number.isNaN(l.modifiedAt.getTime())), 'modifiedAt');
    await inParallel([...names, 'other/x'], 32, (name) => store.delete(name));
    await release();
  });

  test('the prefix confines the store to its part of the bucket; foreign objects are not listed', async () => {
    const { store, prefix, release } = await openStore();
    await store.put('mine', Readable.from([Buffer.from('mine')]));
    // A flat namespace: unlike the fs driver, a key can also be the prefix of others.
    await store.put('mine/too', Readable.from([Buffer.from('too')]));
    assert.deepEqual(await g.objectNames(bucket, prefix), [`${prefix}mine`, `${prefix}mine/too`]);
    assert.ok((await bytes(store, 'mine')).equals(Buffer.from('mine')));
    await store.delete('mine/too');
    // Objects a BlobStore never writes: a folder placeholder and a name that is not a key; and a neighbour's.
    const foreign = [`${prefix}folder/`, `${prefix}not a key`, `${prefix.slice(0, -1)}-other/x`];
    for (const name of foreign) await g.putObject(bucket, name, Buffer.from('x'));
    assert.deepEqual(await keys(store, ''), ['mine']);
    await assert.rejects(store.get('folder'), BlobNotFoundError);
    for (const name of foreign) await deleteObject(g, bucket, name);
    await store.delete('mine');
    await release();
  });

  test('open checks the bucket unless it may create it, and refuses bad options by name', async () => {
    const missing = `astore-missing-${randomBytes(4).toString('hex')}`;
    await assert.rejects(GcsBlobStore.open(optionsFor(g, missing)), new RegExp(`bucket ${missing} does not exist`));
    const created = await GcsBlobStore.open({ ...optionsFor(g, missing), createBucket: true });
    const again = await GcsBlobStore.open({ ...optionsFor(g, missing), createBucket: true });
    assert.deepEqual(await keys(again, ''), []);
    await created.close();
    await again.close();
    await g.removeBucket(missing);

    await assert.rejects(GcsBlobStore.open({ ...optionsFor(g, bucket), chunkSizeBytes: 100_000 }), /chunkSizeBytes/);
    await assert.rejects(GcsBlobStore.open({ ...optionsFor(g, bucket), chunkSizeBytes: 0 }), /chunkSizeBytes/);
    await assert.rejects(GcsBlobStore.open({ ...optionsFor(g, bucket), prefix: '../up' }), /invalid blob key prefix/);
  });

  test('every method refuses an aborted signal, and an abort mid-read ends the stream', async () => {
    const { store, release } = await openStore();
    await store.put('k', Readable.from([randomBytes(3 * MiB)]));
    const aborted = AbortSignal.abort();
    const isAbort = { name: 'AbortError' };
    await assert.rejects(store.stat('k', aborted), isAbort);
    await assert.rejects(store.get('k', undefined, aborted), isAbort);
    await assert.rejects(store.put('k2', Readable.from([Buffer.from('x')]), aborted), isAbort);
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
});

// After the driver tests, so the 200 MiB test measures RSS from a small baseline (RSS never shrinks).
// Every open gets a bucket of its own, created by the store, and a key prefix inside it, so createBucket
// and the prefix mapping are under test too. 8 MiB chunks: the suite's 64 MiB blob goes up in 8 requests.
runBlobStoreConformance('gcs (fake-gcs-server)', async () => {
  const g = await server();
  const bucket = `astore-conformance-${randomBytes(6).toString('hex')}`;
  const store = await GcsBlobStore.open({ ...optionsFor(g, bucket), prefix: 'tenant-a/', createBucket: true, chunkSizeBytes: 8 * MiB });
  return { store, cleanup: () => g.removeBucket(bucket) };
});

/** The resumable-upload traffic among `requests`: sessions created, chunk requests, cancellations. */
function uploadTraffic(requests: ProxiedRequest[]): { sessions: number; chunks: string[]; cancels: number; persisted: number } {
  const chunkRequests = requests.filter(isChunk);
  // The bytes the session confirmed last (a 308's `Range: bytes=0-N`), for answering status queries.
  const confirmed = chunkRequests.map((r) => /^bytes=0-(\d+)$/.exec(String(r.responseHeaders?.range ?? ''))).filter((m) => m !== null);
  return {
    sessions: requests.filter((r) => r.method === 'POST' && r.path.includes('uploadType=resumable')).length,
    chunks: chunkRequests.map((r) => r.contentRange),
    cancels: requests.filter((r) => r.method === 'DELETE' && r.session).length,
    persisted: confirmed.length > 0 ? Number(confirmed.at(-1)![1]) + 1 : 0,
  };
}

/** A request of a resumable upload that carries (or asks about) bytes. */
function isChunk(r: ProxiedRequest): boolean {
  return r.method === 'PUT' && r.session !== undefined;
}

async function deleteObject(g: FakeGcsServer, bucket: string, name: string): Promise<void> {
  const res = await fetch(`${g.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`, { method: 'DELETE' });
  await res.arrayBuffer();
  assert.ok(res.status === 200 || res.status === 204, `delete ${name}: ${res.status}`);
}

/**
 * Runs `work` while sampling memory every 20 ms; growth is the peak over the value just before. RSS is
 * what the brief asks about, but it never shrinks, so an earlier test that grew it hides growth here;
 * `arrayBuffers` (where Buffers live, garbage not yet collected included) does not have that blind spot.
 */
async function peakMemoryGrowth<T>(work: () => Promise<T>): Promise<{ result: T; rss: number; buffers: number }> {
  const before = process.memoryUsage();
  let rss = before.rss;
  let buffers = before.arrayBuffers;
  const sample = () => {
    const now = process.memoryUsage();
    rss = Math.max(rss, now.rss);
    buffers = Math.max(buffers, now.arrayBuffers);
  };
  const sampler = setInterval(sample, 20);
  try {
    const result = await work();
    sample();
    return { result, rss: rss - before.rss, buffers: buffers - before.arrayBuffers };
  } finally {
    clearInterval(sampler);
  }
}

/** A body that never ends: only an abort stops a put of it. */
function endless(): Readable {
  return new Readable({
    read() {
      this.push(randomBytes(64 * KiB));
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

async function bytes(store: BlobStore, key: string, range?: ByteRange): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.get(key, range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function inParallel<T>(items: T[], width: number, work: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

/** `promise`, or a failure naming `what` if it takes longer than `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  const timer = new AbortController();
  const timeout = sleep(ms, undefined, { signal: timer.signal }).then(() => assert.fail(what));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    timer.abort();
    timeout.catch(() => {});
  }
}

const mib = (n: number) => (n / MiB).toFixed(1);
