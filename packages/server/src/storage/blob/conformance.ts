import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { BlobNotFoundError, type BlobStore, type ByteRange } from './types.ts';

const MiB = 1024 * 1024;

export interface ConformanceTarget {
  store: BlobStore;
  /** Removes whatever `open` created (temp dir, bucket, container...). */
  cleanup: () => Promise<void>;
}

interface TestContext {
  store: BlobStore;
  /** A key unique to this test: every key a test writes is under its own prefix. */
  key: (name: string) => string;
  prefix: string;
}

/**
 * The one test suite every BlobStore driver passes, against the real backend:
 * `runBlobStoreConformance('s3', () => openMinioStore())`. Each test writes under its own prefix and
 * must delete what it wrote: a test that leaves keys behind (its own, or a driver's temp objects
 * showing through list) fails.
 */
export function runBlobStoreConformance(name: string, open: () => Promise<ConformanceTarget>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let target: ConformanceTarget | undefined;
    const runPrefix = `conformance-${randomUUID()}/`;
    let seq = 0;

    before(async () => {
      target = await open();
    });
    after(async () => {
      if (!target) return;
      try {
        assert.deepEqual(await listKeys(target.store, runPrefix), [], 'the suite left keys behind');
      } finally {
        await target.store.close();
        await target.cleanup();
      }
    });

    function blobTest(title: string, body: (ctx: TestContext) => Promise<void>, options: { timeout?: number } = {}): void {
      it(title, options, async () => {
        assert.ok(target, 'open() failed');
        const { store } = target;
        const prefix = `${runPrefix}t${++seq}/`;
        try {
          await body({ store, prefix, key: (n) => prefix + n });
        } catch (err) {
          for (const k of await listKeys(store, prefix).catch(() => [])) await store.delete(k).catch(() => {});
          throw err;
        }
        assert.deepEqual(await listKeys(store, prefix), [], `test left keys behind under ${prefix}`);
      });
    }

    blobTest('put then get returns the same bytes, and put reports the size', async ({ store, key }) => {
      const k = key('blobs/sha256/ab/roundtrip');
      const bytes = randomBytes(300_000);
      assert.equal((await store.put(k, chunked(bytes, 7_000))).size, bytes.length);
      assert.ok((await getBytes(store, k)).equals(bytes));
      await store.delete(k);
    });

    blobTest('stat gives the size of a blob (empty ones too), and null when absent', async ({ store, key }) => {
      const k = key('stat');
      const empty = key('empty');
      assert.equal(await store.stat(k), null);
      await store.put(k, Readable.from([randomBytes(1234)]));
      assert.equal((await store.stat(k))?.size, 1234);
      assert.equal((await store.put(empty, Readable.from([]))).size, 0);
      assert.equal((await store.stat(empty))?.size, 0);
      assert.equal((await getBytes(store, empty)).length, 0);
      await store.delete(k);
      await store.delete(empty);
      assert.equal(await store.stat(k), null);
    });

    blobTest('a ranged get returns exactly the bytes asked for, ends inclusive', async ({ store, key }) => {
      const k = key('ranged');
      const bytes = randomBytes(100_000);
      await store.put(k, chunked(bytes, 8_192));
      const ranges: ByteRange[] = [
        { start: 0, end: 0 },
        { start: 49_000, end: 51_234 },
        { start: bytes.length - 1, end: bytes.length - 1 },
        { start: 0, end: bytes.length - 1 },
      ];
      for (const range of ranges) {
        const expected = bytes.subarray(range.start, range.end + 1);
        assert.ok((await getBytes(store, k, range)).equals(expected), `range ${range.start}-${range.end}`);
      }
      await store.delete(k);
    });

    blobTest('an overwrite becomes visible whole, only once put resolves', async ({ store, key }) => {
      const k = key('overwrite');
      const before = randomBytes(50_000);
      const after = randomBytes(20_000);
      await store.put(k, Readable.from([before]));
      const started = deferred();
      const body = held([after.subarray(0, 10_000)], started);
      const put = store.put(k, body);
      await started.promise;
      assert.ok((await getBytes(store, k)).equals(before), 'a reader sees the old blob during the put');
      assert.equal((await store.stat(k))?.size, before.length);
      body.push(after.subarray(10_000));
      body.push(null);
      assert.equal((await put).size, after.length);
      assert.ok((await getBytes(store, k)).equals(after));
      await store.delete(k);
    });

    blobTest('a put whose body fails midway rejects and leaves the old blob intact', async ({ store, key, prefix }) => {
      const k = key('failing');
      const fresh = key('failing-new');
      const old = randomBytes(40_000);
      await store.put(k, Readable.from([old]));
      const failure = new Error('source failed midway');
      const failing = async function* () {
        yield randomBytes(30_000);
        yield randomBytes(30_000);
        await sleep(10);
        throw failure;
      };
      await assert.rejects(store.put(k, Readable.from(failing())), (err) => err === failure);
      await assert.rejects(store.put(fresh, Readable.from(failing())), (err) => err === failure);
      assert.ok((await getBytes(store, k)).equals(old), 'old blob byte-for-byte intact');
      assert.equal(await store.stat(fresh), null);
      assert.deepEqual(await listKeys(store, prefix), [k], 'no new key visible');
      await store.delete(k);
    });

    blobTest('a put aborted through its signal rejects and leaves the old blob intact', async ({ store, key, prefix }) => {
      const k = key('aborted');
      const fresh = key('aborted-new');
      const old = randomBytes(40_000);
      await store.put(k, Readable.from([old]));
      for (const target of [k, fresh]) {
        // The body never ends: only the signal can end this put.
        const controller = new AbortController();
        const started = deferred();
        const put = store.put(target, held([randomBytes(30_000), randomBytes(30_000)], started), controller.signal);
        await started.promise;
        controller.abort();
        await within(10_000, assert.rejects(put, { name: 'AbortError' }), 'put ignored its abort signal');
      }
      await assert.rejects(store.put(fresh, Readable.from([randomBytes(10)]), AbortSignal.abort()), { name: 'AbortError' });
      assert.ok((await getBytes(store, k)).equals(old), 'old blob byte-for-byte intact');
      assert.equal(await store.stat(fresh), null);
      assert.deepEqual(await listKeys(store, prefix), [k], 'no new key visible');
      await store.delete(k);
    });

    blobTest('concurrent puts to one key end with one whole value, never a mix', async ({ store, key, prefix }) => {
      const k = key('contended');
      const values = Array.from({ length: 6 }, () => randomBytes(MiB));
      const interleaved = async function* (bytes: Buffer) {
        for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
          yield bytes.subarray(offset, offset + 64 * 1024);
          await nextTurn();
        }
      };
      const results = await Promise.all(values.map((v) => store.put(k, Readable.from(interleaved(v)))));
      assert.ok(results.every((r) => r.size === MiB));
      const stored = sha256(await getBytes(store, k));
      assert.ok(values.some((v) => sha256(v) === stored), 'stored value is one of the values put');
      assert.deepEqual(await listKeys(store, prefix), [k]);
      await store.delete(k);
    });

    blobTest('move replaces the target and removes the source', async ({ store, key, prefix }) => {
      const from = key('staging/upload-1');
      const to = key('blobs/sha256/cd/final');
      const moved = randomBytes(5_000);
      await store.put(from, Readable.from([moved]));
      await store.put(to, Readable.from([randomBytes(9_000)]));
      await store.move(from, to);
      assert.ok((await getBytes(store, to)).equals(moved));
      assert.equal(await store.stat(from), null);
      const deeper = key('new/parents/here/final');
      await store.move(to, deeper);
      assert.ok((await getBytes(store, deeper)).equals(moved), 'move creates missing parents');
      assert.deepEqual(await listKeys(store, prefix), [deeper]);
      await store.delete(deeper);
    });

    blobTest('get and move of a missing key throw BlobNotFoundError; nothing is touched', async ({ store, key }) => {
      const missing = key('missing/blob');
      const target = key('dir/target');
      const kept = randomBytes(100);
      await store.put(target, Readable.from([kept]));
      const notFound = (err: unknown) => err instanceof BlobNotFoundError && err.key === missing;
      await assert.rejects(store.get(missing), notFound);
      await assert.rejects(store.get(missing, { start: 0, end: 0 }), notFound);
      await assert.rejects(store.move(missing, target), notFound);
      // A prefix of other keys is not a blob, whatever the backend stores for it.
      await assert.rejects(store.get(key('dir')), (err) => err instanceof BlobNotFoundError);
      await assert.rejects(store.move(key('dir'), key('elsewhere')), (err) => err instanceof BlobNotFoundError);
      assert.equal(await store.stat(key('dir')), null);
      await store.delete(key('dir'));
      assert.ok((await getBytes(store, target)).equals(kept));
      await store.delete(target);
    });

    blobTest('delete is idempotent', async ({ store, key }) => {
      const k = key('deleted');
      await store.put(k, Readable.from([randomBytes(10)]));
      await store.delete(k);
      assert.equal(await store.stat(k), null);
      await assert.rejects(store.get(k), BlobNotFoundError);
      await store.delete(k);
      await store.delete(key('never-written'));
    });

    blobTest('list returns exactly the keys under a prefix, with sizes', async ({ store, key, prefix }) => {
      const sizes: Record<string, number> = {
        'blobs/sha256/ab/x1': 1,
        'blobs/sha256/ab/x2': 2,
        'blobs/sha256/abc/x3': 3,
        'blobs/sha256/cd/x4': 4,
        'staging/u1': 5,
        'staging-other/u2': 6,
      };
      for (const [name, size] of Object.entries(sizes)) await store.put(key(name), Readable.from([randomBytes(size)]));
      const expect = async (sub: string, names: string[]) => {
        const listed = await collect(store.list(prefix + sub));
        assert.deepEqual(listed.map((l) => l.key).sort(), names.map(key).sort(), `list(${JSON.stringify(sub)})`);
        for (const l of listed) assert.equal(l.size, sizes[l.key.slice(prefix.length)], `size of ${l.key}`);
      };
      await expect('', Object.keys(sizes));
      await expect('blobs/sha256/ab', ['blobs/sha256/ab/x1', 'blobs/sha256/ab/x2', 'blobs/sha256/abc/x3']);
      await expect('blobs/sha256/ab/', ['blobs/sha256/ab/x1', 'blobs/sha256/ab/x2']);
      await expect('staging/', ['staging/u1']);
      await expect('staging', ['staging/u1', 'staging-other/u2']);
      await expect('nothing/', []);
      await expect('blobs/sha256/ab/x1', ['blobs/sha256/ab/x1']);
      for (const name of Object.keys(sizes)) await store.delete(key(name));
    });

    blobTest('invalid keys are refused by every method', async ({ store, key, prefix }) => {
      const valid = key('valid');
      await store.put(valid, Readable.from([randomBytes(10)]));
      const invalid = ['../x', '/abs', 'a/../b', '', 'a//b', 'a\0b', `${prefix}../../escape`, 'a/', '.', 'a\\b', 'x'.repeat(513)];
      for (const bad of invalid) {
        const label = JSON.stringify(bad);
        const refused = (err: unknown) => err instanceof Error && !(err instanceof BlobNotFoundError);
        await assert.rejects(async () => store.stat(bad), refused, `stat ${label}`);
        await assert.rejects(async () => store.get(bad), refused, `get ${label}`);
        await assert.rejects(async () => store.put(bad, Readable.from([Buffer.from('x')])), refused, `put ${label}`);
        await assert.rejects(async () => store.move(valid, bad), refused, `move to ${label}`);
        await assert.rejects(async () => store.move(bad, valid), refused, `move from ${label}`);
        await assert.rejects(async () => store.delete(bad), refused, `delete ${label}`);
        if (bad !== '' && bad !== 'a/' && bad !== '.') {
          await assert.rejects(async () => collect(store.list(bad)), refused, `list ${label}`);
        }
      }
      assert.deepEqual(await listKeys(store, prefix), [valid], 'nothing moved or written');
      await store.delete(valid);
    });

    blobTest('a 64 MiB blob streams in and out with a matching sha256', async ({ store, key }) => {
      const k = key('large');
      const hashIn = createHash('sha256');
      const generate = async function* () {
        for (let i = 0; i < 64; i++) {
          const chunk = randomBytes(MiB);
          hashIn.update(chunk);
          yield chunk;
        }
      };
      assert.equal((await store.put(k, Readable.from(generate()))).size, 64 * MiB);
      assert.equal((await store.stat(k))?.size, 64 * MiB);
      const hashOut = createHash('sha256');
      for await (const chunk of await store.get(k)) hashOut.update(chunk as Buffer);
      assert.equal(hashOut.digest('hex'), hashIn.digest('hex'));
      await store.delete(k);
    }, { timeout: 120_000 });
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function listKeys(store: BlobStore, prefix: string): Promise<string[]> {
  return (await collect(store.list(prefix))).map((l) => l.key).sort();
}

async function getBytes(store: BlobStore, key: string, range?: ByteRange): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key, range)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) chunks.push(bytes.subarray(offset, offset + size));
  return Readable.from(chunks);
}

/** A body that yields `head`, signals `started` when asked for more, then waits for the test to push. */
function held(head: Buffer[], started: { resolve: () => void }): Readable {
  let pushed = false;
  return new Readable({
    read() {
      if (pushed) return started.resolve();
      pushed = true;
      for (const chunk of head) this.push(chunk);
    },
  });
}

/** `promise`, or a failure naming `what` if it takes longer than `ms` (a hang would cancel the suite). */
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

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
