import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isAstoreError } from '../errors.ts';
import { SecretBox } from './secrets.ts';
import { SessionIssuer } from './sessions.ts';

const principal = { kind: 'user' as const, name: 'alice', groups: ['devs'], roles: ['astore-dev'] };

test('a session token resolves to its secret and principal, only for its own key', () => {
  const sessions = new SessionIssuer(new SecretBox(randomBytes(32)));
  const issued = sessions.issue(principal, 900);
  assert.ok(SessionIssuer.isSessionKey(issued.accessKeyId));
  assert.deepEqual(sessions.resolve(issued.accessKeyId, issued.sessionToken), { secret: issued.secretAccessKey, principal });
  const other = sessions.issue(principal, 900);
  assert.equal(sessions.resolve(issued.accessKeyId, other.sessionToken), null, 'a token names its own key');
  assert.equal(sessions.resolve(issued.accessKeyId, `${issued.sessionToken.slice(0, -4)}AAAA`), null, 'a tampered token opens to nothing');
  assert.equal(new SessionIssuer(new SecretBox(randomBytes(32))).resolve(issued.accessKeyId, issued.sessionToken), null, 'another server key cannot open it');
});

test('an expired session is ExpiredToken', () => {
  const sessions = new SessionIssuer(new SecretBox(randomBytes(32)));
  const issued = sessions.issue(principal, 900, new Date(Date.now() - 901_000));
  assert.throws(() => sessions.resolve(issued.accessKeyId, issued.sessionToken), (err: unknown) => isAstoreError(err, 'ExpiredToken'));
});
