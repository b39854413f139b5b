import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { versionKey } from './versions.ts';

/** Keys compare as a byte-order text column compares them. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(versionKey(a), 'utf8'), Buffer.from(versionKey(b), 'utf8'));
}

/** Asserts each version sorts strictly before the next. */
function assertAscending(versions: readonly string[]): void {
  for (let i = 1; i < versions.length; i++) {
    const [lower, higher] = [versions[i - 1]!, versions[i]!];
    assert.ok(compareKeys(lower, higher) < 0, `${lower} < ${higher}: ${versionKey(lower)} vs ${versionKey(higher)}`);
  }
  // And sorting shuffled keys gives the same order back.
  const shuffled = [...versions].reverse().sort((a, b) => compareKeys(a, b));
  assert.deepEqual(shuffled, versions);
}

function assertSame(...versions: string[]): void {
  for (const version of versions.slice(1)) assert.equal(versionKey(version), versionKey(versions[0]!), `${version} = ${versions[0]}`);
}

describe('versionKey', () => {
  test('numbers compare numerically, segment by segment', () => {
    assertAscending(['0.1', '0.9', '0.10', '1', '1.2', '1.2.1', '1.10', '2.9', '2.14.1', '2.15.0', '10', '2024.1', '20240101']);
  });

  test('a pre-release sorts before its release and after the one before', () => {
    assertAscending(['2.14.1', '2.15.0-rc1', '2.15.0-rc2', '2.15.0', '2.15.1']);
    assertAscending(['2.0-beta9', '2.0-rc1', '2.0', '2.0.1']);
  });

  test('SemVer pre-release precedence (semver.org item 11)', () => {
    assertAscending(['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0']);
  });

  test('PEP 440 order of dev, a, b, rc, release and post', () => {
    assertAscending(['1.0.dev1', '1.0a1', '1.0a2', '1.0b1', '1.0rc1', '1.0', '1.0.post1', '1.0.post2', '1.1']);
  });

  test('Maven qualifiers', () => {
    assertAscending(['1.0-alpha-1', '1.0-beta-1', '1.0-M1', '1.0-RC1', '1.0-SNAPSHOT', '1.0', '1.0-sp1', '1.0.1']);
    assertSame('2.0', '2.0.Final', '2.0.GA', '2.0.RELEASE', '2.0-final');
  });

  test('revisions and letter suffixes sort after the release, before the next', () => {
    assertAscending(['1.1.1', '1.1.1a', '1.1.1n', '1.1.2']);
    assertAscending(['31.1', '31.1-android', '31.1-jre', '32.0']);
    assertAscending(['1.2.3', '1.2.3-1', '1.2.3-2', '1.2.4']);
    assertAscending(['1.0~rc1', '1.0', '1.0+deb11u1', '1.0.1']);
  });

  test('a leading v, letter case, trailing zeros and separators do not count', () => {
    assertSame('2.15', '2.15.0', 'v2.15.0', 'V2.15', ' 2.15.0.0 ');
    assertSame('1.0-RC1', '1.0-rc1', '1.0rc1', '1.0.rc.1', '1.0-rc-1');
    assertSame('0', '0.0', '');
  });

  test('an epoch sorts after every version without one', () => {
    assertAscending(['99.0', '1:0.1', '1:2.0', '2:0.1']);
    assertSame('0:1.2', '1.2');
    assertSame('1!2.0', '1:2.0');
  });

  test('numbers longer than the padding still compare numerically', () => {
    assertAscending(['9999999999', '10000000000', '99999999999', '100000000000', '100000000000.1']);
    assertAscending(['1.0-rc9999999999', '1.0-rc10000000000']);
  });

  test('keys are ASCII for ASCII versions, and stable', () => {
    assert.equal(versionKey('2.14.1'), '.0000000002.0000000014.0000000001#');
    assert.equal(versionKey('2.15.0-rc1'), '.0000000002.0000000015!:f.0000000001');
    assert.match(versionKey('1.0.0-alpha.beta+build.7'), /^[\x20-\x7e]+$/);
  });
});
