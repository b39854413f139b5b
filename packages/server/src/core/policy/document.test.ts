import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAstoreError } from '../errors.ts';
import { parseCidr, parsePolicyDocument } from './document.ts';

const valid = {
  name: 'team-a.artifacts',
  description: 'team A reads and writes its bucket',
  statements: [
    {
      sid: 'ReadWrite',
      effect: 'allow',
      principals: ['group:team-a', 'role:ci', 'user:alice@example.com'],
      actions: ['s3:GetObject', 's3:Put*', 'oci:pull'],
      resources: ['s3:team-a', 's3:team-a/*', 'oci:team-a/*'],
      conditions: { sourceIp: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1'], notBefore: '2026-01-01T00:00:00Z', notAfter: '2026-12-31T23:59:59+02:00' },
    },
    { effect: 'deny', principals: ['*'], actions: ['*'], resources: ['*'] },
  ],
};

/** The MalformedPolicy message parsePolicyDocument throws for `value`. */
function problem(value: unknown): string {
  try {
    parsePolicyDocument(value);
  } catch (err) {
    assert.ok(isAstoreError(err, 'MalformedPolicy'), `expected MalformedPolicy, got ${String(err)}`);
    assert.equal(err.spec.status, 400);
    return err.message;
  }
  assert.fail('the document was accepted');
}

function withStatement(patch: Record<string, unknown>): unknown {
  return { name: 'p', statements: [{ effect: 'allow', principals: ['*'], actions: ['*'], resources: ['*'], ...patch }] };
}

test('a valid document comes back as it was', () => {
  assert.deepEqual(parsePolicyDocument(valid), valid);
  assert.deepEqual(parsePolicyDocument(JSON.stringify(valid)), valid);
});

test('JSON text that does not parse is MalformedPolicy', () => {
  assert.match(problem('{"name": '), /not valid JSON/);
});

test('unknown keys are refused with their path', () => {
  assert.match(problem({ ...valid, owner: 'x' }), /^\(document\): unknown key "owner"/);
  assert.match(problem(withStatement({ Effect: 'Allow' })), /^statements\[0\]: unknown key "Effect"/);
  assert.match(problem(withStatement({ conditions: { sourceIP: ['10.0.0.1'] } })), /^statements\[0\]\.conditions: unknown key "sourceIP"/);
});

test('names, effects and emptiness', () => {
  assert.match(problem({ ...valid, name: 'bucket:x' }), /^name: invalid policy name "bucket:x"/);
  assert.match(problem({ ...valid, name: 'a'.repeat(129) }), /^name: invalid policy name/);
  assert.match(problem({ ...valid, name: undefined }), /^name: /);
  assert.match(problem({ name: 'p', statements: [] }), /^statements: must hold at least one statement/);
  assert.match(problem(withStatement({ effect: 'Allow' })), /^statements\[0\]\.effect: /);
  assert.match(problem(withStatement({ principals: [] })), /^statements\[0\]\.principals: must list at least one principal/);
  assert.match(problem(withStatement({ actions: [] })), /^statements\[0\]\.actions: must list at least one action/);
  assert.match(problem(withStatement({ resources: [] })), /^statements\[0\]\.resources: must list at least one resource/);
});

test('patterns are checked, each problem naming its index', () => {
  assert.match(problem(withStatement({ actions: ['s3:GetObject', 'S3:GetObject'] })), /^statements\[0\]\.actions\[1\]: invalid action "S3:GetObject"/);
  assert.match(problem(withStatement({ actions: ['s3:'] })), /actions\[0\]: invalid action/);
  assert.match(problem(withStatement({ actions: ['s3:Get Object'] })), /actions\[0\]: invalid action/);
  assert.match(problem(withStatement({ resources: ['team-a/*'] })), /^statements\[0\]\.resources\[0\]: invalid resource "team-a\/\*"/);
  assert.match(problem(withStatement({ resources: ['s3:'] })), /resources\[0\]: invalid resource/);
  assert.match(problem(withStatement({ principals: ['users:bob'] })), /^statements\[0\]\.principals\[0\]: invalid principal "users:bob"/);
  assert.match(problem(withStatement({ principals: ['user:bob smith'] })), /principals\[0\]: invalid principal/);
  assert.match(problem(withStatement({ principals: ['Anonymous'] })), /principals\[0\]: invalid principal/);
  for (const ok of ['*', 'anonymous', 'authenticated', 'user:bob', 'group:team-a', 'role:ci-*']) parsePolicyDocument(withStatement({ principals: [ok] }));
});

test('several problems are reported together', () => {
  const message = problem({ name: 'p', statements: [{ effect: 'allow', principals: ['x'], actions: ['y'], resources: ['z'] }] });
  assert.match(message, /principals\[0\]/);
  assert.match(message, /actions\[0\]/);
  assert.match(message, /resources\[0\]/);
});

test('source addresses must be IPv4/IPv6 addresses or CIDR ranges', () => {
  assert.match(problem(withStatement({ conditions: { sourceIp: ['10.0.0.0/8', '10.0.0.0/33'] } })), /^statements\[0\]\.conditions\.sourceIp\[1\]: "10\.0\.0\.0\/33" is not an IPv4\/IPv6 address or CIDR range/);
  for (const bad of ['10.0.0', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/+8', '2001:db8::/129', 'fe80::1%eth0', 'localhost', ' 10.0.0.1']) {
    assert.match(problem(withStatement({ conditions: { sourceIp: [bad] } })), /sourceIp\[0\]: .* is not an IPv4\/IPv6 address or CIDR range/, bad);
  }
  assert.match(problem(withStatement({ conditions: { sourceIp: [] } })), /sourceIp: must list at least one/);
  assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
  assert.deepEqual(parseCidr('10.1.2.3'), { address: '10.1.2.3', family: 'ipv4' });
});

test('time bounds are ISO instants with a zone, in order', () => {
  assert.match(problem(withStatement({ conditions: { notBefore: '2026-01-01T00:00:00' } })), /^statements\[0\]\.conditions\.notBefore: expected an ISO 8601 instant/);
  assert.match(problem(withStatement({ conditions: { notAfter: 'tomorrow' } })), /conditions\.notAfter: expected an ISO 8601 instant/);
  assert.match(problem(withStatement({ conditions: { notBefore: '2026-02-01T00:00:00Z', notAfter: '2026-01-01T00:00:00Z' } })), /conditions\.notBefore: notBefore is after notAfter/);
  parsePolicyDocument(withStatement({ conditions: { notBefore: '2026-01-01T00:00:00.123+05:30' } }));
});

test('wrong types name the path', () => {
  assert.match(problem(null), /^\(document\): /);
  assert.match(problem(withStatement({ actions: 's3:GetObject' })), /^statements\[0\]\.actions: /);
  assert.match(problem(withStatement({ sid: 7 })), /^statements\[0\]\.sid: /);
});
