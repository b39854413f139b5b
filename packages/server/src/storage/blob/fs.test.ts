import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runBlobStoreConformance } from './conformance.ts';
import { FsBlobStore } from './fs.ts';

runBlobStoreConformance('fs', async () => {
  const sandbox = await mkdtemp(join(tmpdir(), 'astore-blob-fs-'));
  const store = await FsBlobStore.open({ path: join(sandbox, 'root') });
  return { store, cleanup: () => rm(sandbox, { recursive: true, force: true }) };
});

describe('FsBlobStore', () => {
  let sandbox = '';
  let n = 0;
  /** A fresh root inside the sandbox, not yet created. */
  const freshRoot = () => join(sandbox, `root-${++n}`);

  before(async () => {
    sandbox = await mkdtemp(join(tmpdir(), 'astore-blob-fs-'));
  });
  after(async () => {
    await rm(sandbox, { recursive: true, force: true });
  });

  test('open creates a missing root, mode 0700, with an empty .tmp', async () => {
    const root = join(freshRoot(), 'nested');
    const store = await FsBlobStore.open({ path: root });
    assert.equal((await stat(root)).mode & 0o777, 0o700);
    assert.deepEqual(await readdir(root), ['.tmp']);
    assert.deepEqual(await readdir(join(root, '.tmp')), []);
    await store.close();
  });

  test('given leftover temp files from a crash, open removes them and keeps the blobs', async () => {
    const root = freshRoot();
    const first = await FsBlobStore.open({ path: root });
    await first.put('blobs/sha256/ab/kept', Readable.from([Buffer.from('kept')]));
    await first.close();
    await writeFile(join(root, '.tmp', 'crashed-put'), 'partial');
    await mkdir(join(root, '.tmp', 'odd-dir'));
    await writeFile(join(root, '.tmp', 'odd-dir', 'x'), 'x');

    const reopened = await FsBlobStore.open({ path: root });
    assert.deepEqual(await readdir(join(root, '.tmp')), []);
    assert.equal(await readFile(join(root, 'blobs/sha256/ab/kept'), 'utf8'), 'kept');
    assert.deepEqual(await keys(reopened, ''), ['blobs/sha256/ab/kept']);
    await reopened.close();
  });

  test('the temp dir is empty after a put, a failed put and an aborted put', async () => {
    const root = freshRoot();
    const store = await FsBlobStore.open({ path: root });
    const tmpEntries = () => readdir(join(root, '.tmp'));

    await store.put('a/ok', Readable.from([Buffer.from('ok')]));
    assert.deepEqual(await tmpEntries(), []);

    const failing = async function* () {
      yield Buffer.alloc(1000, 1);
      throw new Error('boom');
    };
    await assert.rejects(store.put('a/failed', Readable.from(failing())), /boom/);
    assert.deepEqual(await tmpEntries(), []);

    const controller = new AbortController();
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000, 2));
    const put = store.put('a/aborted', body, controller.signal);
    await waitFor(async () => (await tmpEntries()).length === 1);
    assert.deepEqual(await keys(store, ''), ['a/ok'], 'an in-flight put is not listed');
    controller.abort();
    await assert.rejects(put, { name: 'AbortError' });
    assert.deepEqual(await tmpEntries(), []);
    assert.deepEqual(await keys(store, ''), ['a/ok']);
    await store.close();
  });

  test('hostile keys write, move and delete nothing outside the root', async () => {
    const outer = freshRoot();
    const root = join(outer, 'root');
    await mkdir(outer);
    await writeFile(join(outer, 'secret'), 'secret');
    const store = await FsBlobStore.open({ path: root });
    await store.put('victim', Readable.from([Buffer.from('victim')]));
    const before = await snapshot(outer);

    const hostile = [
      '../secret', '../escape', '..', '.', 'a/../../secret', `${'../'.repeat(12)}tmp/escape`, '/tmp/escape',
      'victim/../../secret', 'a\0b', 'a\\..\\..\\secret', '.tmp', '.tmp/leftover', '', 'a//b', 'a/./b',
    ];
    for (const key of hostile) {
      const label = JSON.stringify(key);
      await assert.rejects(async () => store.put(key, Readable.from([Buffer.from('evil')])), Error, `put ${label}`);
      await assert.rejects(async () => store.move('victim', key), Error, `move to ${label}`);
      await assert.rejects(async () => store.move(key, 'stolen'), Error, `move from ${label}`);
      await assert.rejects(async () => store.delete(key), Error, `delete ${label}`);
      await assert.rejects(async () => store.get(key), Error, `get ${label}`);
      await assert.rejects(async () => store.stat(key), Error, `stat ${label}`);
    }
    for (const prefix of ['../', '../secret', '/', '/tmp', '.tmp/', 'a/../', 'a\0']) {
      await assert.rejects(async () => keys(store, prefix), Error, `list ${JSON.stringify(prefix)}`);
    }
    assert.deepEqual(await snapshot(outer), before, 'no file inside or outside the root changed');
    assert.deepEqual(await keys(store, ''), ['victim']);
    await store.close();
  });

  test('list skips entries that are not valid keys and the temp dir', async () => {
    const root = freshRoot();
    const store = await FsBlobStore.open({ path: root });
    await store.put('x/good', Readable.from([Buffer.from('1')]));
    await writeFile(join(root, 'x', 'not a key'), 'junk');
    await writeFile(join(root, '.tmp', 'in-flight'), 'junk');
    assert.deepEqual(await keys(store, ''), ['x/good']);
    assert.deepEqual(await keys(store, '.t'), []);
    await store.close();
  });
});

async function keys(store: FsBlobStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const listing of store.list(prefix)) out.push(listing.key);
  return out.sort();
}

/** Every file and directory under `dir`, with a hash of each file's content. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = entry.isFile()
      ? createHash('sha256').update(await readFile(path)).digest('hex')
      : 'dir';
  }
  return out;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}
