import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { ContentHasher, combineCrc, multipartEtag, compositeChecksum } from './checksums.ts';

async function hashOf(data: Buffer[], algorithms: ConstructorParameters<typeof ContentHasher>[0]) {
  const hasher = new ContentHasher(algorithms);
  await pipeline(Readable.from(data), hasher, new Writable({ write: (_c, _e, cb) => cb() }));
  return hasher.digests();
}

test('known vectors for every algorithm, across chunk boundaries', async () => {
  const d = await hashOf([Buffer.from('hello '), Buffer.from('world')], ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256']);
  assert.equal(d.size, 11);
  assert.equal(d.sha256Hex, 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
  assert.equal(d.digest, 'sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
  assert.equal(d.md5Hex, '5eb63bbbe01eeed093cb22bb8f5acdc3');
  assert.equal(d.checksums.CRC32, Buffer.from('0d4a1185', 'hex').toString('base64'));
  assert.equal(d.checksums.CRC32C, Buffer.from('c99465aa', 'hex').toString('base64'));
  assert.equal(d.checksums.SHA1, Buffer.from('2aae6c35c94fcfb415dbe95f408b9ce91ee846ed', 'hex').toString('base64'));
  assert.equal(d.checksums.SHA256, Buffer.from(d.sha256Hex, 'hex').toString('base64'));
  assert.equal(d.checksums.CRC64NVME?.length, 12); // 8 bytes base64
});

test('CRC64NVME of "123456789" is the published check value', async () => {
  const d = await hashOf([Buffer.from('123456789')], ['CRC64NVME']);
  assert.equal(Buffer.from(d.checksums.CRC64NVME!, 'base64').toString('hex'), 'ae8b14860a799888');
});

test('multipart ETag is md5 of the binary part md5s, then -N', () => {
  // md5("a") and md5("b"), concatenated as bytes, md5 again.
  const etag = multipartEtag(['0cc175b9c0f1b6a831c399e269772661', '92eb5ffee6ae2fec3ad71c777531578f']);
  assert.match(etag, /^[0-9a-f]{32}-2$/);
  assert.notEqual(etag, multipartEtag(['92eb5ffee6ae2fec3ad71c777531578f', '0cc175b9c0f1b6a831c399e269772661']));
});

test('composite checksum has the -N suffix', () => {
  const v = compositeChecksum('CRC32', ['AAAAAA==', 'AAAAAQ==']);
  assert.match(v, /^[A-Za-z0-9+/=]+-2$/);
});

test('combining part CRCs gives the CRC of the whole, for every combinable algorithm', async () => {
  const pieces = [Buffer.from('hello, '), Buffer.alloc(70_000, 7), Buffer.from(''), Buffer.from('world')];
  for (const algorithm of ['CRC32', 'CRC32C', 'CRC64NVME'] as const) {
    const whole = await hashOf([Buffer.concat(pieces)], [algorithm]);
    const parts = [];
    for (const piece of pieces) parts.push({ checksum: (await hashOf([piece], [algorithm])).checksums[algorithm]!, size: piece.length });
    assert.equal(combineCrc(algorithm, parts), whole.checksums[algorithm], algorithm);
  }
});
