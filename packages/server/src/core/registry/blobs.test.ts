import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FsBlobStore } from '../../storage/blob/fs.ts';
import { openSqliteMetaStore } from '../../storage/meta/sqlite.ts';
import type { MetaStore, RegistryMeta } from '../../storage/meta/types.ts';
import { ContentStore, blobKey, stagingPrefix } from '../content.ts';
import { type ErrorCode, isAstoreError } from '../errors.ts';
import { type RegistryBlobOptions, RegistryBlobService } from './blobs.ts';

const options: RegistryBlobOptions = { maxBlobBytes: 1024 * 1024, linkRefreshMs: 60_000 };
const sha256 = (bytes: string | Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const sha512 = (bytes: string | Buffer): string => `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
const body = (...pieces: string[]): Readable => Readable.from(pieces.map((piece) => Buffer.from(piece)));
const FUTURE = (): Date => new Date(Date.now() + 60_000);

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected AstoreError(${code}), got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** A RegistryBlobService over an fs BlobStore in a temp dir and a MetaStore (':memory:' unless a file is asked for). */
class Fixture {
  private constructor(
    readonly dir: string,
    public blobStore: FsBlobStore,
    public meta: MetaStore,
    public service: RegistryBlobService,
  ) {}

  static async open(metaFile = false): Promise<Fixture> {
    const dir = await mkdtemp(join(tmpdir(), 'astore-registry-blobs-'));
    const blobStore = await FsBlobStore.open({ path: join(dir, 'blobs') });
    const meta = await openSqliteMetaStore({ path: metaFile ? join(dir, 'meta.db') : ':memory:' });
    return new Fixture(dir, blobStore, meta, new RegistryBlobService(meta, new ContentStore(blobStore, meta), options));
  }

  /** Closes and reopens both stores (file MetaStore only): what a process restart sees. */
  async restart(): Promise<void> {
    await this.meta.close();
    await this.blobStore.close();
    this.blobStore = await FsBlobStore.open({ path: join(this.dir, 'blobs') });
    this.meta = await openSqliteMetaStore({ path: join(this.dir, 'meta.db') });
    this.service = new RegistryBlobService(this.meta, new ContentStore(this.blobStore, this.meta), options);
  }

  async keys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const entry of this.blobStore.list(prefix)) keys.push(entry.key);
    return keys.sort();
  }

  /** Blob rows nothing references: chunks left behind, refused content that got a row. */
  async garbage(): Promise<string[]> {
    return (await this.meta.blobs.listGarbage(FUTURE(), 100)).map((blob) => blob.digest).sort();
  }

  async read(repository: string, digest: string): Promise<string> {
    return text(await (await this.service.readBlob(repository, digest)).body());
  }

  async close(): Promise<void> {
    await this.meta.close();
    await this.blobStore.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

let f: Fixture;
beforeEach(async () => {
  f = await Fixture.open();
});
afterEach(async () => {
  await f.close();
});

describe('putBlob (monolithic)', () => {
  test('sha256: stores the blob once and links it under its digest', async () => {
    const digest = sha256('hello layer');
    const layer = await f.service.putBlob('lib/app', digest, body('hello ', 'layer'), 11);
    assert.deepEqual({ ...layer, touchedAt: undefined }, { repository: 'lib/app', digest, blob: digest, size: 11, touchedAt: undefined });
    assert.equal(await f.read('lib/app', digest), 'hello layer');
    assert.deepEqual(await f.keys('blobs/'), [blobKey(digest)]);
    assert.deepEqual(await f.garbage(), []);
  });

  test('sha512: linked under the sha512 digest, stored as the sha256 blob of the same bytes', async () => {
    const digest = sha512('hello layer');
    const layer = await f.service.putBlob('lib/app', digest, body('hello layer'));
    assert.equal(layer.digest, digest);
    assert.equal(layer.blob, sha256('hello layer'));
    assert.equal(await f.read('lib/app', digest), 'hello layer');
    assert.deepEqual(await f.keys('blobs/'), [blobKey(sha256('hello layer'))]);
    await rejectsWith(f.service.statBlob('lib/app', sha256('hello layer')), 'BlobUnknown');
  });

  for (const [name, wrong] of [
    ['sha256', sha256('other bytes')],
    ['sha512', sha512('other bytes')],
  ] as const) {
    test(`${name}: content with another digest is DigestInvalid and leaves nothing visible`, async () => {
      await rejectsWith(f.service.putBlob('lib/app', wrong, body('actual bytes')), 'DigestInvalid');
      await rejectsWith(f.service.statBlob('lib/app', wrong), 'BlobUnknown');
      assert.deepEqual(await f.keys('blobs/'), []);
      assert.deepEqual(await f.keys(stagingPrefix), []);
      assert.equal(await f.meta.blobs.get(sha256('actual bytes')), null);
    });
  }

  test('a body of another length than declared is SizeInvalid; one over the limit EntityTooLarge', async () => {
    await rejectsWith(f.service.putBlob('r', sha256('four'), body('four'), 5), 'SizeInvalid');
    const big = 'x'.repeat(options.maxBlobBytes + 1);
    await rejectsWith(f.service.putBlob('r', sha256(big), body(big)), 'EntityTooLarge');
    assert.deepEqual(await f.keys('blobs/'), []);
    assert.deepEqual(await f.keys(stagingPrefix), []);
  });

  test('an invalid digest is DigestInvalid before the body is read', async () => {
    await rejectsWith(f.service.putBlob('r', 'sha256:abc', body('x')), 'DigestInvalid');
    await rejectsWith(f.service.putBlob('r', `md5:${'a'.repeat(32)}`, body('x')), 'DigestInvalid');
  });

  test('the empty blob', async () => {
    const layer = await f.service.putBlob('r', sha256(''), body());
    assert.equal(layer.size, 0);
    assert.equal(await f.read('r', sha256('')), '');
  });
});

describe('upload sessions', () => {
  const pieces = ['first chunk|', 'second|', 'third and last'];
  const whole = pieces.join('');

  /** Appends `chunks` in order, declaring each one's start and length. */
  async function upload(repository: string, chunks: readonly string[]): Promise<string> {
    const session = await f.service.startUpload(repository);
    let offset = 0;
    for (const chunk of chunks) {
      const after = await f.service.appendChunk(repository, session.uploadId, body(chunk), { start: offset, length: chunk.length });
      offset += chunk.length;
      assert.equal(after.size, offset);
    }
    return session.uploadId;
  }

  test('three chunks then finish: one blob of the chunks in order, linked; the chunk blobs are left to GC', async () => {
    const uploadId = await upload('lib/app', pieces);
    const session = await f.service.getUpload('lib/app', uploadId);
    assert.deepEqual(
      session.chunks,
      pieces.map((piece) => ({ digest: sha256(piece), size: piece.length })),
    );

    const layer = await f.service.finishUpload('lib/app', uploadId, sha256(whole));
    assert.deepEqual({ ...layer, touchedAt: undefined }, { repository: 'lib/app', digest: sha256(whole), blob: sha256(whole), size: whole.length, touchedAt: undefined });
    assert.equal(await f.read('lib/app', sha256(whole)), whole);
    await rejectsWith(f.service.getUpload('lib/app', uploadId), 'BlobUploadUnknown');
    assert.deepEqual(await f.garbage(), pieces.map(sha256).sort());
    assert.deepEqual(await f.keys(stagingPrefix), []);
  });

  test('chunks without a declared start follow each other; finish may carry the last chunk', async () => {
    const session = await f.service.startUpload('r');
    await f.service.appendChunk('r', session.uploadId, body(pieces[0]!));
    await f.service.appendChunk('r', session.uploadId, body(pieces[1]!));
    await f.service.finishUpload('r', session.uploadId, sha256(whole), { body: body(pieces[2]!), start: pieces[0]!.length + pieces[1]!.length });
    assert.equal(await f.read('r', sha256(whole)), whole);
  });

  test('a chunk that does not start at the end of the upload is RangeNotSatisfiable and stores nothing', async () => {
    const uploadId = await upload('r', [pieces[0]!]);
    const before = await f.service.getUpload('r', uploadId);
    const keys = await f.keys('blobs/');
    for (const start of [0, pieces[0]!.length - 1, pieces[0]!.length + 1]) {
      await rejectsWith(f.service.appendChunk('r', uploadId, body(pieces[1]!), { start }), 'RangeNotSatisfiable');
    }
    assert.deepEqual(await f.service.getUpload('r', uploadId), before);
    assert.deepEqual(await f.keys('blobs/'), keys);
    assert.equal(await f.meta.blobs.get(sha256(pieces[1]!)), null);
  });

  test('a chunk of another length than declared is SizeInvalid; the session is unchanged', async () => {
    const uploadId = await upload('r', [pieces[0]!]);
    const before = await f.service.getUpload('r', uploadId);
    await rejectsWith(f.service.appendChunk('r', uploadId, body('abc'), { length: 4 }), 'SizeInvalid');
    assert.deepEqual(await f.service.getUpload('r', uploadId), before);
  });

  test('a single chunk finished with sha256 is linked as it is: no second blob', async () => {
    const uploadId = await upload('r', ['only chunk']);
    const layer = await f.service.finishUpload('r', uploadId, sha256('only chunk'));
    assert.equal(layer.blob, sha256('only chunk'));
    assert.deepEqual(await f.keys('blobs/'), [blobKey(sha256('only chunk'))]);
    assert.deepEqual(await f.garbage(), []);
    assert.equal(await f.read('r', sha256('only chunk')), 'only chunk');
  });

  test('sha512: several chunks are assembled into the sha256 blob, linked under the sha512 digest', async () => {
    const uploadId = await upload('r', pieces);
    const layer = await f.service.finishUpload('r', uploadId, sha512(whole));
    assert.equal(layer.digest, sha512(whole));
    assert.equal(layer.blob, sha256(whole));
    assert.equal(await f.read('r', sha512(whole)), whole);
  });

  test('sha512: a single chunk is checked and linked as it is', async () => {
    const uploadId = await upload('r', ['only chunk']);
    const layer = await f.service.finishUpload('r', uploadId, sha512('only chunk'));
    assert.equal(layer.blob, sha256('only chunk'));
    assert.deepEqual(await f.keys('blobs/'), [blobKey(sha256('only chunk'))]);
  });

  test('finishing an empty session stores and links the empty blob', async () => {
    const session = await f.service.startUpload('r');
    const layer = await f.service.finishUpload('r', session.uploadId, sha256(''));
    assert.equal(layer.size, 0);
    assert.equal(await f.read('r', sha256('')), '');
  });

  for (const [name, chunks] of [
    ['one chunk', ['only chunk']],
    ['several chunks', pieces],
  ] as const) {
    for (const [algorithm, hash] of [
      ['sha256', sha256],
      ['sha512', sha512],
    ] as const) {
      test(`${name}, ${algorithm}: the wrong digest is DigestInvalid, the session stays and finishes with the right one`, async () => {
        const uploadId = await upload('r', chunks);
        const before = await f.service.getUpload('r', uploadId);
        const content = chunks.join('');
        await rejectsWith(f.service.finishUpload('r', uploadId, hash('something else')), 'DigestInvalid');
        assert.deepEqual(await f.service.getUpload('r', uploadId), before);
        await rejectsWith(f.service.statBlob('r', hash('something else')), 'BlobUnknown');
        assert.deepEqual(await f.keys(stagingPrefix), []);
        if (chunks.length > 1) assert.equal(await f.meta.blobs.get(sha256(content)), null, 'no assembled blob');
        await f.service.finishUpload('r', uploadId, hash(content));
        assert.equal(await f.read('r', hash(content)), content);
      });
    }
  }

  test(
    'a wrong digest on a finish carrying the last chunk leaves the session as it was',
    async () => {
      const uploadId = await upload('r', [pieces[0]!]);
      const before = await f.service.getUpload('r', uploadId);
      await rejectsWith(f.service.finishUpload('r', uploadId, sha256('wrong'), { body: body(pieces[1]!) }), 'DigestInvalid');
      assert.deepEqual(await f.service.getUpload('r', uploadId), before);
    },
  );

  test('a session survives a restart: new stores and service continue and finish it', async () => {
    await f.close();
    f = await Fixture.open(true);
    const uploadId = await upload('r', pieces.slice(0, 2));
    await f.restart();
    const session = await f.service.getUpload('r', uploadId);
    assert.equal(session.size, pieces[0]!.length + pieces[1]!.length);
    await f.service.appendChunk('r', uploadId, body(pieces[2]!), { start: session.size });
    await f.service.finishUpload('r', uploadId, sha256(whole));
    assert.equal(await f.read('r', sha256(whole)), whole);
  });

  test('another service over the same stores continues a session (another replica)', async () => {
    const uploadId = await upload('r', pieces.slice(0, 1));
    const replica = new RegistryBlobService(f.meta, new ContentStore(f.blobStore, f.meta), options);
    await replica.appendChunk('r', uploadId, body(pieces[1]!), { start: pieces[0]!.length });
    await f.service.appendChunk('r', uploadId, body(pieces[2]!));
    await replica.finishUpload('r', uploadId, sha256(whole));
    assert.equal(await f.read('r', sha256(whole)), whole);
  });

  test('cancel ends the session and leaves its chunks to GC', async () => {
    const uploadId = await upload('r', pieces.slice(0, 2));
    await f.service.cancelUpload('r', uploadId);
    await rejectsWith(f.service.getUpload('r', uploadId), 'BlobUploadUnknown');
    await rejectsWith(f.service.appendChunk('r', uploadId, body('more')), 'BlobUploadUnknown');
    await rejectsWith(f.service.finishUpload('r', uploadId, sha256(whole)), 'BlobUploadUnknown');
    await rejectsWith(f.service.cancelUpload('r', uploadId), 'BlobUploadUnknown');
    assert.deepEqual(await f.garbage(), pieces.slice(0, 2).map(sha256).sort());
  });

  test("a session is only visible in its own repository", async () => {
    const uploadId = await upload('r', [pieces[0]!]);
    await rejectsWith(f.service.getUpload('other', uploadId), 'BlobUploadUnknown');
    await rejectsWith(f.service.appendChunk('other', uploadId, body('x')), 'BlobUploadUnknown');
    await rejectsWith(f.service.finishUpload('other', uploadId, sha256(pieces[0]!)), 'BlobUploadUnknown');
    await rejectsWith(f.service.cancelUpload('other', uploadId), 'BlobUploadUnknown');
    assert.equal((await f.service.getUpload('r', uploadId)).size, pieces[0]!.length);
    await rejectsWith(f.service.getUpload('r', 'no-such-upload'), 'BlobUploadUnknown');
  });
});

describe('mount, read, stat and delete', () => {
  test('mount from a named repository links the same blob; null when the source lacks it', async () => {
    const digest = sha512('shared layer');
    const source = await f.service.putBlob('team/base', digest, body('shared layer'));
    const mounted = await f.service.mount('team/app', digest, 'team/base', async () => false);
    assert.ok(mounted);
    assert.equal(mounted.repository, 'team/app');
    assert.equal(mounted.digest, digest);
    assert.equal(mounted.blob, source.blob);
    assert.equal(mounted.size, source.size);
    assert.equal(await f.read('team/app', digest), 'shared layer');
    assert.deepEqual(await f.keys('blobs/'), [blobKey(source.blob)], 'no copy of the bytes');

    assert.equal(await f.service.mount('team/other', digest, 'team/nothing', async () => true), null);
    await rejectsWith(f.service.statBlob('team/other', digest), 'BlobUnknown');
    await rejectsWith(f.service.mount('team/other', 'sha256:short', 'team/base', async () => true), 'DigestInvalid');
  });

  test('mount without a source takes a repository that has the blob, only if the caller may pull from it', async () => {
    const digest = sha256('shared layer');
    await f.service.putBlob('team/base', digest, body('shared layer'));
    const asked: string[] = [];
    assert.equal(await f.service.mount('a', digest, undefined, async (source) => (asked.push(source), false)), null);
    assert.deepEqual(asked, ['team/base']);
    await rejectsWith(f.service.statBlob('a', digest), 'BlobUnknown');
    assert.equal((await f.service.mount('b', digest, undefined, async (source) => source === 'team/base'))?.blob, digest);
    assert.equal(await f.read('b', digest), 'shared layer');
  });

  test('readBlob with a range returns those bytes', async () => {
    const digest = sha256('0123456789');
    await f.service.putBlob('r', digest, body('01234', '56789'));
    const read = async (range: Parameters<RegistryBlobService['readBlob']>[2]) => {
      const result = await f.service.readBlob('r', digest, range);
      return { range: result.range, text: await text(await result.body()) };
    };
    assert.deepEqual(await read({ start: 2, end: 5 }), { range: { start: 2, end: 5 }, text: '2345' });
    assert.deepEqual(await read({ start: 7 }), { range: { start: 7, end: 9 }, text: '789' });
    assert.deepEqual(await read({ start: 8, end: 100 }), { range: { start: 8, end: 9 }, text: '89' });
    assert.deepEqual(await read({ suffix: 3 }), { range: { start: 7, end: 9 }, text: '789' });
    assert.deepEqual(await read(undefined), { range: undefined, text: '0123456789' });
    await rejectsWith(f.service.readBlob('r', digest, { start: 10 }), 'InvalidRange');
    await rejectsWith(f.service.readBlob('r', sha256('absent')), 'BlobUnknown');
  });

  test('statBlob refreshes a link older than linkRefreshMs, not a recent one', async () => {
    const digest = sha256('layer');
    await f.service.putBlob('r', digest, body('layer'));
    const first = await f.meta.registry.getLayer('r', digest);
    await delay(5);
    await f.service.statBlob('r', digest);
    assert.deepEqual(await f.meta.registry.getLayer('r', digest), first, 'within linkRefreshMs');

    const eager = new RegistryBlobService(f.meta, new ContentStore(f.blobStore, f.meta), { ...options, linkRefreshMs: 0 });
    await eager.statBlob('r', digest);
    const refreshed = await f.meta.registry.getLayer('r', digest);
    assert.ok(first && refreshed && refreshed.touchedAt > first.touchedAt);
  });

  test('statBlob of a link collected between the read and the refresh is BlobUnknown', async () => {
    const digest = sha256('layer');
    await f.service.putBlob('r', digest, body('layer'));
    await delay(2);
    const registry: RegistryMeta = Object.create(f.meta.registry, {
      getLayer: {
        value: async (repository: string, wanted: string) => {
          const found = await f.meta.registry.getLayer(repository, wanted);
          await f.meta.registry.unlinkBlob(repository, wanted);
          return found;
        },
      },
    });
    const racing: MetaStore = Object.create(f.meta, { registry: { value: registry } });
    const eager = new RegistryBlobService(racing, new ContentStore(f.blobStore, f.meta), { ...options, linkRefreshMs: 0 });
    await rejectsWith(eager.statBlob('r', digest), 'BlobUnknown');
  });

  test('deleteBlob unlinks the blob from that repository only; the bytes are left to GC', async () => {
    const digest = sha256('layer');
    await f.service.putBlob('a', digest, body('layer'));
    await f.service.mount('b', digest, 'a', async () => true);
    await f.service.deleteBlob('a', digest);
    await rejectsWith(f.service.statBlob('a', digest), 'BlobUnknown');
    await rejectsWith(f.service.deleteBlob('a', digest), 'BlobUnknown');
    assert.equal(await f.read('b', digest), 'layer');
    await f.service.deleteBlob('b', digest);
    assert.deepEqual(await f.garbage(), [digest]);
  });
});
