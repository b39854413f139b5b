import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessKeyIdPattern, generateAccessKey } from './keys.ts';

test('generateAccessKey: AK + 18 upper-case hex digits, and a 40-character base64url secret', () => {
  const { accessKeyId, secret } = generateAccessKey();
  assert.match(accessKeyId, accessKeyIdPattern);
  assert.equal(accessKeyId.length, 20);
  assert.match(secret, /^[A-Za-z0-9_-]{40}$/);
  assert.equal(Buffer.from(secret, 'base64url').length, 30);
});

test('generateAccessKey never repeats an id or a secret', () => {
  const keys = Array.from({ length: 1000 }, generateAccessKey);
  assert.equal(new Set(keys.map((key) => key.accessKeyId)).size, 1000);
  assert.equal(new Set(keys.map((key) => key.secret)).size, 1000);
});
