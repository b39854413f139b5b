import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAstoreError } from '../errors.ts';
import { hashPassword, validatePassword, verifyPassword } from './passwords.ts';

describe('hashPassword / verifyPassword', () => {
  test('an argon2id PHC string, salted: the same password hashes differently each time', async () => {
    const first = await hashPassword('correct horse battery staple');
    assert.match(first, /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    assert.notEqual(await hashPassword('correct horse battery staple'), first);
  });

  test('verify accepts the password and refuses any other', async () => {
    const passwordHash = await hashPassword('correct horse battery staple');
    assert.equal(await verifyPassword(passwordHash, 'correct horse battery staple'), true);
    assert.equal(await verifyPassword(passwordHash, 'correct horse battery stapl'), false);
    assert.equal(await verifyPassword(passwordHash, 'Correct horse battery staple'), false);
    assert.equal(await verifyPassword(passwordHash, ''), false);
  });

  test('non-ASCII passwords round-trip', async () => {
    const password = 'pässwörd-😀-密码-long-enough';
    assert.equal(await verifyPassword(await hashPassword(password), password), true);
    assert.equal(await verifyPassword(await hashPassword(password), password.normalize('NFD')), false, 'no normalisation: bytes as given');
  });

  test('a malformed hash or no hash is false, never a throw', async () => {
    for (const bad of [undefined, '', 'not a hash', '$argon2id$v=19$m=19456,t=2,p=1$', '$2b$10$abcdefghijklmnopqrstuv', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$!!!']) {
      assert.equal(await verifyPassword(bad, 'correct horse battery staple'), false, String(bad));
    }
  });
});

describe('validatePassword', () => {
  const refused = (password: string, message: RegExp) =>
    assert.throws(
      () => validatePassword(password),
      (err: unknown) => isAstoreError(err, 'InvalidArgument') && message.test(err.message),
    );

  test('12 to 1024 characters pass', () => {
    validatePassword('a'.repeat(12));
    validatePassword('a'.repeat(1024));
    validatePassword('😀'.repeat(12));
  });

  test('shorter than 12 characters is InvalidArgument', () => {
    refused('', /at least 12 characters/);
    refused('a'.repeat(11), /at least 12 characters/);
    refused('😀'.repeat(11), /at least 12 characters/); // 22 UTF-16 units, 11 characters
  });

  test('longer than 1024 characters is InvalidArgument', () => {
    refused('a'.repeat(1025), /at most 1024 characters/);
  });
});
