import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { type ErrorCode, isAstoreError } from '../errors.ts';
import { digestOf, isDigest, isTag, maxRepositoryNameLength, parseDigest, parseReference, validateRepositoryName, validateTag } from './references.ts';

const sha256 = `sha256:${'0123456789abcdef'.repeat(4)}`;
const sha512 = `sha512:${'0123456789abcdef'.repeat(8)}`;

/** Asserts `fn` throws AstoreError(code) whose message matches `message`. */
function throwsCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected AstoreError(${code}), got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('validateRepositoryName', () => {
  const valid = [
    'a',
    'ubuntu',
    'library/ubuntu',
    'org/team/project/image',
    'my-app',
    'my--app',
    'my.app',
    'my_app',
    'my__app',
    'a0/9z',
    'x'.repeat(maxRepositoryNameLength),
    `${'a'.repeat(127)}/${'b'.repeat(127)}`,
  ];
  for (const name of valid) {
    test(`accepts ${JSON.stringify(name.length > 40 ? `${name.slice(0, 20)}…(${name.length})` : name)}`, () => {
      assert.equal(validateRepositoryName(name), name);
    });
  }

  const invalid: Array<[name: string, why: string]> = [
    ['', 'empty'],
    ['Ubuntu', 'upper case'],
    ['library/Ubuntu', 'upper case in a nested component'],
    ['..', 'dot-dot'],
    ['a/../b', 'dot-dot component'],
    ['a/./b', 'dot component'],
    ['/a', 'leading slash'],
    ['a/', 'trailing slash'],
    ['a//b', 'empty component'],
    ['-a', 'leading separator'],
    ['a-', 'trailing separator'],
    ['a._b', 'two separators in a row'],
    ['a___b', 'three underscores'],
    ['a b', 'space'],
    ['a:b', 'colon'],
    ['a\\b', 'backslash'],
    ['é', 'non-ASCII'],
    ['x'.repeat(maxRepositoryNameLength + 1), '256 characters'],
  ];
  for (const [name, why] of invalid) {
    test(`refuses ${why} with NameInvalid`, () => {
      throwsCode(() => validateRepositoryName(name), 'NameInvalid', /^invalid repository name: "/);
    });
  }

  test('the message of a very long name is cut short', () => {
    assert.throws(
      () => validateRepositoryName('A'.repeat(10_000)),
      (err: unknown) => isAstoreError(err, 'NameInvalid') && err.message.length < 400,
    );
  });
});

describe('tags', () => {
  const valid = ['latest', 'v1.0.0', '1.0', 'A', '_private', 'a-b_c.D', '0', 'x'.repeat(128)];
  const invalid = ['', '.hidden', '-rc', 'a/b', 'a:b', 'a+b', 'a b', 'é', 'x'.repeat(129)];
  for (const tag of valid) {
    test(`accepts ${JSON.stringify(tag.length > 40 ? `${tag.slice(0, 10)}…(${tag.length})` : tag)}`, () => {
      assert.equal(isTag(tag), true);
      assert.equal(validateTag(tag), tag);
    });
  }
  for (const tag of invalid) {
    test(`refuses ${JSON.stringify(tag.length > 40 ? `${tag.slice(0, 10)}…(${tag.length})` : tag)} with TagInvalid`, () => {
      assert.equal(isTag(tag), false);
      throwsCode(() => validateTag(tag), 'TagInvalid', /^invalid tag: "/);
    });
  }
});

describe('parseDigest', () => {
  test('accepts sha256 and sha512 in canonical form', () => {
    assert.deepEqual(parseDigest(sha256), { digest: sha256, algorithm: 'sha256', hex: sha256.slice(7) });
    assert.deepEqual(parseDigest(sha512), { digest: sha512, algorithm: 'sha512', hex: sha512.slice(7) });
    assert.equal(isDigest(sha256), true);
    assert.equal(isDigest(sha512), true);
  });

  const malformed: Array<[value: string, why: string]> = [
    [sha256.slice(0, -1), 'sha256 with 63 hex digits'],
    [`${sha256}0`, 'sha256 with 65 hex digits'],
    [`sha256:${sha512.slice(7)}`, 'sha256 with 128 hex digits'],
    [`sha512:${sha256.slice(7)}`, 'sha512 with 64 hex digits'],
    [sha256.toUpperCase(), 'upper-case algorithm and hex'],
    [`sha256:${'0123456789ABCDEF'.repeat(4)}`, 'upper-case hex'],
    [`sha256:${'g'.repeat(64)}`, 'non-hex digits'],
    [sha256.slice(7), 'no algorithm'],
    ['sha256', 'no hex'],
    ['sha256:', 'empty hex'],
    [`:${sha256.slice(7)}`, 'empty algorithm'],
    [` ${sha256}`, 'leading space'],
    [`${sha256}\n`, 'trailing newline'],
    [`sha256:../../${'a'.repeat(58)}`, 'a path'],
  ];
  for (const [value, why] of malformed) {
    test(`refuses ${why} with DigestInvalid`, () => {
      assert.equal(isDigest(value), false);
      throwsCode(() => parseDigest(value), 'DigestInvalid', /^invalid digest "/);
    });
  }

  const unsupported: Array<[value: string, algorithm: string]> = [
    [`md5:${'a'.repeat(32)}`, 'md5'],
    [`sha384:${'a'.repeat(96)}`, 'sha384'],
    [`blake3:${'a'.repeat(64)}`, 'blake3'],
    [`sha256+b64u:${'a'.repeat(43)}`, 'sha256+b64u'],
  ];
  for (const [value, algorithm] of unsupported) {
    test(`refuses the unknown algorithm ${algorithm} with DigestInvalid saying so`, () => {
      assert.equal(isDigest(value), false);
      throwsCode(() => parseDigest(value), 'DigestInvalid', new RegExp(`^unsupported digest algorithm "${algorithm.replace('+', '\\+')}" \\(sha256 and sha512 are\\)$`));
    });
  }

  test('the error carries the digest (cut short) as detail', () => {
    assert.throws(
      () => parseDigest(`md5:${'a'.repeat(1_000)}`),
      (err: unknown) => isAstoreError(err, 'DigestInvalid') && String(err.detail.digest).length === 200,
    );
  });
});

describe('parseReference', () => {
  test('a digest is a digest, anything else a tag', () => {
    assert.deepEqual(parseReference(sha256), { digest: sha256 });
    assert.deepEqual(parseReference(sha512), { digest: sha512 });
    assert.deepEqual(parseReference('latest'), { tag: 'latest' });
    assert.deepEqual(parseReference('v1.2.3'), { tag: 'v1.2.3' });
  });

  test('with a colon it must be a valid digest: DigestInvalid, never a tag', () => {
    throwsCode(() => parseReference('sha256:abc'), 'DigestInvalid', /invalid digest/);
    throwsCode(() => parseReference(`md5:${'a'.repeat(32)}`), 'DigestInvalid', /unsupported digest algorithm "md5"/);
    throwsCode(() => parseReference('latest:1'), 'DigestInvalid');
  });

  test('an invalid tag is TagInvalid', () => {
    throwsCode(() => parseReference('.hidden'), 'TagInvalid');
    throwsCode(() => parseReference(''), 'TagInvalid');
    throwsCode(() => parseReference('x'.repeat(129)), 'TagInvalid');
  });
});

describe('digestOf', () => {
  test('hashes the bytes with the algorithm named, in canonical form', () => {
    const bytes = Buffer.from('hello\n');
    assert.equal(digestOf('sha256', bytes), `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    assert.equal(digestOf('sha512', bytes), `sha512:${createHash('sha512').update(bytes).digest('hex')}`);
    assert.equal(digestOf('sha256', Buffer.alloc(0)), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.ok(isDigest(digestOf('sha512', bytes)));
  });
});
