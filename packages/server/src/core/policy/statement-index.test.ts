import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceKey, resourcePatternKey } from './statement-index.ts';

test('a resource pattern is keyed by its first segment only when it fixes it', () => {
  assert.equal(resourcePatternKey('s3:team-a/*'), 's3:team-a');
  assert.equal(resourcePatternKey('s3:team-a/releases/v?/*'), 's3:team-a');
  assert.equal(resourcePatternKey('s3:team-a'), 's3:team-a');
  assert.equal(resourcePatternKey('api:users/bob'), 'api:users');
  assert.equal(resourcePatternKey('s3:team-a*'), undefined);
  assert.equal(resourcePatternKey('s3:team-?/k'), undefined);
  assert.equal(resourcePatternKey('oci:*'), undefined);
  assert.equal(resourcePatternKey('*'), undefined);
});

test('a resource is keyed by its first segment', () => {
  assert.equal(resourceKey('s3:team-a/k/l'), 's3:team-a');
  assert.equal(resourceKey('s3:team-a'), 's3:team-a');
  assert.equal(resourceKey('s3:team-a/'), 's3:team-a');
  // Whatever a keyed pattern matches has the pattern's key.
  assert.equal(resourceKey('s3:team-a/releases/v1/x'), resourcePatternKey('s3:team-a/releases/v?/*'));
});
