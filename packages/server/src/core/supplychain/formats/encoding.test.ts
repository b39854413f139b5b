import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { FormatError } from '../types.ts';
import { checkShape, decodeBase64, decodeBase64Url, looksLikeBase64, parseDigest, parseJson, pemBlocks } from './encoding.ts';

test('base64 is decoded strictly: standard or URL-safe, padded or not, nothing else', () => {
  assert.deepEqual(decodeBase64('+/8=', 'x'), Buffer.from([0xfb, 0xff]));
  assert.deepEqual(decodeBase64('-_8', 'x'), Buffer.from([0xfb, 0xff]));
  assert.deepEqual(decodeBase64('', 'x'), Buffer.alloc(0));
  for (const bad of ['a', 'ab=', 'abc==', 'ab===', 'a b c d', 'ab$d', 'AAAA=', '=AAA', 'AA==AA==']) {
    assert.throws(() => decodeBase64(bad, 'the field'), (err) => err instanceof FormatError && err.message === 'the field is not valid base64', bad);
  }
  assert.throws(() => decodeBase64(42, 'the field'), /the field must be a base64 string/);
  assert.deepEqual(decodeBase64Url('-_8', 'x'), Buffer.from([0xfb, 0xff]));
  assert.throws(() => decodeBase64Url('+/8=', 'the header'), /the header is not valid base64url/);
});

test('looksLikeBase64 recognises a signature file (one base64 token, newline allowed)', () => {
  assert.equal(looksLikeBase64('MEUCIQ==\n'), true);
  assert.equal(looksLikeBase64('{"a":1}'), false);
  assert.equal(looksLikeBase64('two words'), false);
  assert.equal(looksLikeBase64('   '), false);
});

test('digests, JSON, PEM and shapes fail with a message naming the field', () => {
  assert.deepEqual(parseDigest(`sha384:${'ab'.repeat(48)}`, 'd'), { algorithm: 'sha384', digest: Buffer.alloc(48, 0xab) });
  for (const bad of [`sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, 'sha256', 7]) {
    assert.throws(() => parseDigest(bad, 'the subject'), /the subject must be a digest such as sha256:<64 hex digits>/);
  }
  assert.deepEqual(parseJson(Buffer.from('\uFEFF{"a":1}'), 'doc'), { a: 1 });
  assert.throws(() => parseJson(Buffer.from('{'), 'the doc'), /the doc is not JSON/);
  assert.throws(() => pemBlocks('nothing here', 'CERTIFICATE', 'the chain'), /the chain holds no PEM CERTIFICATE/);
  assert.throws(() => checkShape(z.object({ a: z.array(z.object({ b: z.string() })) }), { a: [{ b: 1 }] }, 'the thing'), /the thing is malformed at a\[0\]\.b: /);
});
