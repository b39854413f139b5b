import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMetaStoreConformance } from './conformance.ts';
import { prefixUpperBound } from './db.ts';
import { openSqliteMetaStore } from './sqlite.ts';

let tempRoot = '';
let opened = 0;
before(async () => {
  tempRoot = await mkdtemp(join(tmpdir(), 'astore-meta-'));
});
after(async () => {
  await rm(tempRoot, { recursive: true, force: true });
});

runMetaStoreConformance('sqlite file', async () => {
  const dir = join(tempRoot, `store-${++opened}`);
  const store = await openSqliteMetaStore({ path: join(dir, 'nested', 'meta.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

runMetaStoreConformance('sqlite :memory:', async () => {
  const store = await openSqliteMetaStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

describe('openSqliteMetaStore', () => {
  test('migrate is idempotent and data survives close and reopen', async () => {
    const path = join(tempRoot, 'reopen', 'meta.db');
    const first = await openSqliteMetaStore({ path });
    assert.equal(first.dialect, 'sqlite');
    await first.migrate();
    await first.buckets.create({ name: 'kept', region: 'r', createdAt: new Date(1_700_000_000_123) });
    await first.close();

    const second = await openSqliteMetaStore({ path });
    try {
      await second.migrate();
      assert.deepEqual(await second.buckets.list(), [{ name: 'kept', region: 'r', createdAt: new Date(1_700_000_000_123) }]);
    } finally {
      await second.close();
    }
  });
});

describe('prefixUpperBound', () => {
  const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
  const cases: Array<[prefix: string, bound: string | null]> = [
    ['', null],
    ['a', 'b'],
    ['a/', 'a0'],
    ['photos/2024', 'photos/2025'],
    ['é', 'ê'],
    ['\u007f', '\u0080'], // 1-byte to 2-byte UTF-8
    ['\u07ff', '\u0800'], // 2-byte to 3-byte
    ['\ud7ff', '\ue000'], // skips the surrogate block, which has no UTF-8 form
    ['a\uffff', 'a\u{10000}'], // BMP end to the first astral code point, not '\u0000' or a lone surrogate
    ['😀', '😁'],
    ['x\u{1f3ff}', 'x\u{1f400}'], // low surrogate DFFF: increment the code point, not the unit
    ['\u{10fffe}', '\u{10ffff}'],
    ['a\u{10ffff}', 'b'], // the maximum code point cannot grow: drop it, increment the one before
    ['a\u{10ffff}\u{10ffff}', 'b'],
    ['\u{10ffff}', null],
  ];
  /** Test names spell non-ASCII as code points, so reports stay readable. */
  const show = (s: string | null): string =>
    s === null ? 'null' : `'${Array.from(s, (c) => (c >= ' ' && c <= '~' ? c : `<U+${c.codePointAt(0)!.toString(16).toUpperCase()}>`)).join('')}'`;
  for (const [prefix, bound] of cases) {
    test(`${show(prefix)} -> ${show(bound)}`, () => {
      assert.equal(prefixUpperBound(prefix), bound);
    });
  }

  test('every string with the prefix sorts below the bound and the bound does not have the prefix', () => {
    const tails = ['', '\u0000', 'z', '\u07ff', '\uffff', '😀', '\u{10ffff}', '\u{10ffff}'.repeat(4)];
    for (const [prefix] of cases) {
      const bound = prefixUpperBound(prefix);
      if (bound === null) continue;
      assert.ok(!bound.startsWith(prefix));
      assert.ok(Buffer.compare(utf8(prefix), utf8(bound)) < 0);
      for (const tail of tails) assert.ok(Buffer.compare(utf8(prefix + tail), utf8(bound)) < 0, `${prefix}+${tail}`);
    }
  });

  test('refuses a prefix with a lone surrogate', () => {
    assert.throws(() => prefixUpperBound('a\ud800'), RangeError);
  });
});
