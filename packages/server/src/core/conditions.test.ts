import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReadPreconditions, checkCopySourcePreconditions, checkWritePreconditions } from './conditions.ts';
import { isAstoreError } from './errors.ts';

const target = { etag: '"abc"', lastModified: new Date('2026-01-02T00:00:00.500Z') };
const before = new Date('2026-01-01T00:00:00Z');
const after = new Date('2026-01-03T00:00:00Z');

test('read preconditions follow the S3 precedence', () => {
  checkReadPreconditions(target, { ifMatch: '"abc"', ifUnmodifiedSince: before }); // If-Match true wins
  assert.throws(() => checkReadPreconditions(target, { ifMatch: 'nope' }), (e) => isAstoreError(e, 'PreconditionFailed'));
  assert.throws(() => checkReadPreconditions(target, { ifUnmodifiedSince: before }), (e) => isAstoreError(e, 'PreconditionFailed'));
  assert.throws(() => checkReadPreconditions(target, { ifNoneMatch: 'abc' }), (e) => isAstoreError(e, 'NotModified'));
  assert.throws(() => checkReadPreconditions(target, { ifModifiedSince: after }), (e) => isAstoreError(e, 'NotModified'));
  // Same second as Last-Modified counts as not modified since.
  assert.throws(() => checkReadPreconditions(target, { ifModifiedSince: new Date('2026-01-02T00:00:00Z') }), (e) => isAstoreError(e, 'NotModified'));
  checkReadPreconditions(target, { ifNoneMatch: '"other"', ifModifiedSince: after }); // If-None-Match false wins
  checkReadPreconditions(target, { ifModifiedSince: before, ifUnmodifiedSince: after, ifMatch: '*' });
});

test('copy-source conditions never answer 304', () => {
  assert.throws(() => checkCopySourcePreconditions(target, { ifNoneMatch: '"abc"' }), (e) => isAstoreError(e, 'PreconditionFailed'));
});

test('conditional writes', () => {
  assert.throws(() => checkWritePreconditions(target, { ifNoneMatch: '*' }), (e) => isAstoreError(e, 'PreconditionFailed'));
  checkWritePreconditions(null, { ifNoneMatch: '*' });
  assert.throws(() => checkWritePreconditions(target, { ifMatch: '"zzz"' }), (e) => isAstoreError(e, 'PreconditionFailed'));
  checkWritePreconditions(target, { ifMatch: '"abc"' });
});
