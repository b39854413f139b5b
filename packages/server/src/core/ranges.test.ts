import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRangeHeader, resolveRange } from './ranges.ts';
import { isAstoreError } from './errors.ts';

test('range forms resolve against the size', () => {
  assert.deepEqual(resolveRange(parseRangeHeader('bytes=0-0')!, 10), { start: 0, end: 0 });
  assert.deepEqual(resolveRange(parseRangeHeader('bytes=5-')!, 10), { start: 5, end: 9 });
  assert.deepEqual(resolveRange(parseRangeHeader('bytes=-3')!, 10), { start: 7, end: 9 });
  assert.deepEqual(resolveRange(parseRangeHeader('bytes=-30')!, 10), { start: 0, end: 9 });
  assert.deepEqual(resolveRange(parseRangeHeader('bytes=8-100')!, 10), { start: 8, end: 9 });
});

test('ignored and unsatisfiable ranges', () => {
  assert.equal(parseRangeHeader('bytes=0-1,3-4'), undefined);
  assert.equal(parseRangeHeader('items=0-1'), undefined);
  assert.equal(parseRangeHeader('bytes=5-1'), undefined);
  assert.throws(() => resolveRange({ start: 10 }, 10), (e) => isAstoreError(e, 'InvalidRange'));
  assert.throws(() => resolveRange({ suffix: 0 }, 10), (e) => isAstoreError(e, 'InvalidRange'));
});
