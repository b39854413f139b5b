import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { Crc64Nvme } from './crc64nvme.ts';

test('CRC-64/NVME check value', () => {
  const crc = new Crc64Nvme();
  crc.update(Buffer.from('123456789'));
  assert.equal(crc.digest().toString('hex'), 'ae8b14860a799888');
});

test('agrees with the AWS SDK implementation on random data split at random points', async () => {
  for (let round = 0; round < 20; round++) {
    const data = randomBytes(1 + Math.floor(Math.random() * 5000));
    const ours = new Crc64Nvme();
    const theirs = new Crc64NvmeJs();
    for (let i = 0; i < data.length; ) {
      const n = 1 + Math.floor(Math.random() * 97);
      ours.update(data.subarray(i, i + n));
      theirs.update(data.subarray(i, i + n));
      i += n;
    }
    assert.equal(ours.digest().toString('hex'), Buffer.from(await theirs.digest()).toString('hex'));
  }
});
