import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SecretBox, loadServerKey, serverKeyFileName } from './secrets.ts';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  test('open returns what seal sealed, for any text', () => {
    for (const secret of ['', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'é😀\u0000'.repeat(100)]) {
      assert.equal(box.open(box.seal(secret)), secret);
    }
  });

  test('the sealed form is v1.<12-byte iv>.<ciphertext and 16-byte tag>, base64url, fresh each time', () => {
    const sealed = box.seal('0123456789');
    const [version, iv, body] = sealed.split('.');
    assert.equal(version, 'v1');
    assert.match(sealed, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.equal(Buffer.from(iv!, 'base64url').length, 12);
    assert.equal(Buffer.from(body!, 'base64url').length, 10 + 16);
    assert.notEqual(box.seal('0123456789'), sealed, 'a new IV per seal');
    assert.ok(!sealed.includes(Buffer.from('0123456789').toString('base64url')));
  });

  test('a sealed secret altered anywhere does not open', () => {
    const sealed = box.seal('the secret');
    const [version, iv, body] = sealed.split('.') as [string, string, string];
    const flip = (text: string, at: number): string => {
      const bytes = Buffer.from(text, 'base64url');
      bytes[at]! ^= 1;
      return bytes.toString('base64url');
    };
    const bodyLength = Buffer.from(body, 'base64url').length;
    for (const tampered of [
      `${version}.${flip(iv, 0)}.${body}`,
      `${version}.${iv}.${flip(body, 0)}`, // ciphertext
      `${version}.${iv}.${flip(body, bodyLength - 1)}`, // tag
    ]) {
      assert.throws(() => box.open(tampered), /sealed with another server key, or altered/);
    }
  });

  test('another key does not open it', () => {
    const sealed = box.seal('the secret');
    assert.throws(() => new SecretBox(randomBytes(32)).open(sealed), /sealed with another server key, or altered/);
  });

  test('malformed input is refused with a clear message', () => {
    const sealed = box.seal('x');
    for (const bad of ['', 'plaintext', sealed.replace('v1.', 'v2.'), `${sealed}.extra`, 'v1..', 'v1.AAAA.AAAA']) {
      assert.throws(() => box.open(bad), /not a sealed secret/, bad);
    }
  });

  test('a key that is not 32 bytes is refused', () => {
    assert.throws(() => new SecretBox(randomBytes(16)), /32 bytes/);
  });
});

describe('loadServerKey', () => {
  let root = '';
  let dirs = 0;
  const freshDir = (): string => join(root, `data-${++dirs}`);
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'astore-server-key-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('a configured base64 key is used as given, and no file is written', async () => {
    const key = randomBytes(32);
    const dataDir = freshDir();
    assert.deepEqual(await loadServerKey(dataDir, key.toString('base64')), key);
    assert.deepEqual(await loadServerKey(dataDir, ` ${key.toString('base64url')}\n`), key, 'base64url and surrounding space are accepted');
    await assert.rejects(stat(dataDir), { code: 'ENOENT' });
  });

  test('a configured key that is not base64 of 32 bytes is refused without echoing it', async () => {
    for (const bad of ['', randomBytes(16).toString('base64'), randomBytes(33).toString('base64'), `${randomBytes(32).toString('base64')}!`]) {
      await assert.rejects(loadServerKey(freshDir(), bad), (err: Error) => {
        assert.match(err.message, /base64 of 32 bytes/);
        if (bad !== '') assert.ok(!err.message.includes(bad));
        return true;
      });
    }
  });

  test('without configuration the key is generated into <dataDir>/server-key with mode 0600, then reused', async () => {
    const dataDir = join(freshDir(), 'nested');
    const first = await loadServerKey(dataDir);
    assert.equal(first.length, 32);
    const file = join(dataDir, serverKeyFileName);
    assert.deepEqual(await readFile(file), first);
    if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await loadServerKey(dataDir), first);
    assert.deepEqual(await readdir(dataDir), [serverKeyFileName], 'no temporary file left behind');
  });

  test('concurrent first uses (as by replicas starting together) all get the one key that is on disk', async () => {
    const dataDir = freshDir();
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadServerKey(dataDir)));
    const onDisk = await readFile(join(dataDir, serverKeyFileName));
    for (const key of keys) assert.deepEqual(key, onDisk);
    assert.deepEqual(await readdir(dataDir), [serverKeyFileName]);
  });

  test('a key file of the wrong length is refused and left as it is', async () => {
    const dataDir = freshDir();
    await loadServerKey(dataDir);
    const file = join(dataDir, serverKeyFileName);
    for (const content of [Buffer.alloc(0), randomBytes(31), randomBytes(33), Buffer.from(`${randomBytes(32).toString('base64')}\n`)]) {
      await writeFile(file, content);
      await assert.rejects(loadServerKey(dataDir), new RegExp(`holds ${content.length} bytes, not a 32-byte server key`));
      assert.deepEqual(await readFile(file), content);
    }
  });
});
