import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTarget } from './target.ts';

test('path-style targets', () => {
  assert.deepEqual(parseTarget('/', undefined, undefined).bucket, undefined);
  const b = parseTarget('/bucket?list-type=2&prefix=a%2Fb', 'localhost', undefined);
  assert.equal(b.bucket, 'bucket');
  assert.equal(b.key, undefined);
  assert.equal(b.query.get('prefix'), 'a/b');
  const o = parseTarget('/bucket/dir//file%20name%2B%E2%82%AC/', 'h', undefined);
  assert.equal(o.key, 'dir//file name+€/');
  assert.equal(parseTarget('/bucket/', 'h', undefined).key, undefined);
});

test('virtual-host targets when a domain is configured', () => {
  const t = parseTarget('/a/b.txt', 'photos.s3.example.test:8080', 's3.example.test');
  assert.equal(t.bucket, 'photos');
  assert.equal(t.key, 'a/b.txt');
  assert.equal(parseTarget('/photos/a', 's3.example.test', 's3.example.test').bucket, 'photos');
});

test('malformed percent-encoding is refused', () => {
  assert.throws(() => parseTarget('/b/%E2%82', 'h', undefined), /percent-encoded/);
});
