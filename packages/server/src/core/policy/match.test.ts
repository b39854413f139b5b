import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob } from './match.ts';

function matches(pattern: string, input: string): boolean {
  return compileGlob(pattern)(input);
}

test('a pattern without wildcards matches only itself, case-sensitively', () => {
  assert.equal(matches('s3:GetObject', 's3:GetObject'), true);
  assert.equal(matches('s3:GetObject', 's3:getobject'), false);
  assert.equal(matches('s3:GetObject', 's3:GetObjectAcl'), false);
  assert.equal(matches('', ''), true);
  assert.equal(matches('', 'a'), false);
});

test('* matches any run, the empty one and / and : included', () => {
  assert.equal(matches('*', ''), true);
  assert.equal(matches('*', 'oci:team/app/sub'), true);
  assert.equal(matches('s3:releases/*', 's3:releases/'), true);
  assert.equal(matches('s3:releases/*', 's3:releases/v1/linux/app.tar.gz'), true);
  assert.equal(matches('s3:releases/*', 's3:releases'), false);
  assert.equal(matches('s3:*', 's3:bucket/a:b'), true);
  assert.equal(matches('*:pull', 'oci:pull'), true);
  assert.equal(matches('s3:Get*', 's3:GetObject'), true);
  assert.equal(matches('s3:Get*', 's3:PutObject'), false);
  assert.equal(matches('*Object', 's3:GetObject'), true);
  assert.equal(matches('*Object', 's3:GetObjectAcl'), false);
  assert.equal(matches('s3:b/*/logs/*.gz', 's3:b/x/y/logs/z.gz'), true);
  assert.equal(matches('s3:b/*/logs/*.gz', 's3:b/x/y/log/z.gz'), false);
  assert.equal(matches('a**b', 'ab'), true);
  assert.equal(matches('a*b*c', 'abc'), true);
  assert.equal(matches('a*b*c', 'acb'), false);
});

test('head and tail may not overlap', () => {
  assert.equal(matches('ab*ba', 'aba'), false);
  assert.equal(matches('ab*ba', 'abba'), true);
  assert.equal(matches('a*a', 'a'), false);
  assert.equal(matches('a*a', 'aa'), true);
  assert.equal(matches('*abc*abc', 'abcabc'), true);
  assert.equal(matches('*abc*abc', 'xabcyabc'), true);
  assert.equal(matches('x*abc*abc', 'xabc'), false);
});

test('? matches exactly one character', () => {
  assert.equal(matches('oci:app-v?', 'oci:app-v1'), true);
  assert.equal(matches('oci:app-v?', 'oci:app-v'), false);
  assert.equal(matches('oci:app-v?', 'oci:app-v10'), false);
  assert.equal(matches('???', 'a/b'), true);
  assert.equal(matches('s3:b/?*', 's3:b/'), false);
  assert.equal(matches('s3:b/?*', 's3:b/k'), true);
  assert.equal(matches('*?x?*', 'axb'), true);
  assert.equal(matches('*?x?*', 'xb'), false);
  assert.equal(matches('a?c*d?f', 'abcXXdef'), true);
  assert.equal(matches('a?c*d?f', 'abcXXdeff'), false);
});

test('? counts code points, not UTF-16 units', () => {
  assert.equal(matches('s3:b/?', 's3:b/😀'), true);
  assert.equal(matches('s3:b/??', 's3:b/😀'), false);
  assert.equal(matches('s3:b/?-*', 's3:b/😀-x'), true);
  assert.equal(matches('*😀?', 'a😀é'), true);
  assert.equal(matches('*😀?', 'a😀'), false);
  assert.equal(matches('s3:b/*', 's3:b/😀'), true);
});

test('regular-expression characters are literal', () => {
  assert.equal(matches('s3:a.b/(x)+[y]$^|\\', 's3:a.b/(x)+[y]$^|\\'), true);
  assert.equal(matches('s3:a.b/*', 's3:aXb/k'), false);
  assert.equal(matches('s3:a.b/*', 's3:a.b/k'), true);
});

test('no catastrophic backtracking on long inputs', () => {
  const long = 's3:b/' + 'a'.repeat(1000);
  const started = performance.now();
  for (const pattern of ['*a*a*a*a*b', '*a*a*a*a*b*', '*?a*?a*?a*?a*b', 's3:*a*a*a*a*a*a*a*a*a*a*a*a*b?']) {
    const glob = compileGlob(pattern);
    for (let i = 0; i < 100; i++) assert.equal(glob(long), false);
  }
  assert.equal(compileGlob('*a*a*a*a*a')(long), true);
  assert.ok(performance.now() - started < 500, 'matching took too long');
});
