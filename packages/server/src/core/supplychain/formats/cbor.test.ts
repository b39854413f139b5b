import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCbor, encodeCborArray } from './cbor.ts';

const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');

test('RFC 8949 appendix A examples decode', () => {
  assert.equal(decodeCbor(hex('00'), 'x'), 0);
  assert.equal(decodeCbor(hex('1903e8'), 'x'), 1000);
  assert.equal(decodeCbor(hex('1b000000e8d4a51000'), 'x'), 1_000_000_000_000);
  assert.equal(decodeCbor(hex('3863'), 'x'), -100);
  assert.equal(decodeCbor(hex('f93c00'), 'x'), 1);
  assert.equal(decodeCbor(hex('fb3ff199999999999a'), 'x'), 1.1);
  assert.equal(decodeCbor(hex('f4'), 'x'), false);
  assert.equal(decodeCbor(hex('f6'), 'x'), null);
  assert.equal(decodeCbor(hex('6449455446'), 'x'), 'IETF');
  assert.deepEqual(decodeCbor(hex('4401020304'), 'x'), hex('01020304'));
  assert.deepEqual(decodeCbor(hex('83 01 82 02 03 82 04 05'), 'x'), [1, [2, 3], [4, 5]]);
  assert.deepEqual(decodeCbor(hex('a2 01 02 61 61 03'), 'x'), new Map<number | string, unknown>([[1, 2], ['a', 3]]));
  assert.deepEqual(decodeCbor(hex('c1 1a 514b67b0'), 'x'), { tag: 1, value: 1363896240 });
});

test('malformed CBOR is refused', () => {
  assert.throws(() => decodeCbor(hex('1b ffffffffffffffff'), 'the item'), /too large/);
  assert.throws(() => decodeCbor(hex('5f'), 'the item'), /indefinite-length/);
  assert.throws(() => decodeCbor(hex('a2 01 02 01 03'), 'the item'), /repeats the CBOR map key 1/);
  assert.throws(() => decodeCbor(hex('a1 80 01'), 'the item'), /map key that is neither/);
  assert.throws(() => decodeCbor(hex('00 00'), 'the item'), /1 bytes after its CBOR item/);
  assert.throws(() => decodeCbor(Buffer.alloc(40, 0x81), 'the item'), /deeper than 16/);
});

test('a Sig_structure encodes as COSE requires', () => {
  const encoded = encodeCborArray(['Signature1', hex('a10126'), Buffer.alloc(0), Buffer.alloc(300, 1)]);
  assert.deepEqual(decodeCbor(encoded, 'x'), ['Signature1', hex('a10126'), Buffer.alloc(0), Buffer.alloc(300, 1)]);
  assert.deepEqual(encoded.subarray(0, 13), hex('84 6a 5369676e617475726531 43'));
});
