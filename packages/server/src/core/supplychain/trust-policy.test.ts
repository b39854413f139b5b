import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAstoreError } from '../errors.ts';
import { TrustPolicySet, parseTrustPolicy, stricter } from './trust-policy.ts';

const base = { name: 'releases', mode: 'enforce-read', resources: ['s3:releases/*', 'oci:app/*'], keys: ['release'] };

test('a trust policy parses with its defaults', () => {
  const policy = parseTrustPolicy(JSON.stringify(base));
  assert.deepEqual(policy, { ...base, certificates: [], identities: [], requireSignature: true, attestations: [] });
});

test('malformed trust policies are refused, naming the problem', () => {
  const refused = (value: unknown, pattern: RegExp) =>
    assert.throws(() => parseTrustPolicy(value), (err: unknown) => isAstoreError(err, 'MalformedPolicy') && pattern.test(err.message));
  refused('{', /not valid JSON/);
  refused({ ...base, mode: 'enforce' }, /mode/);
  refused({ ...base, resources: ['releases/*'] }, /invalid resource "releases\/\*"/);
  refused({ ...base, keyz: [] }, /unknown key "keyz"/);
  refused({ ...base, keys: [] }, /must trust at least one key or certificate/);
  refused({ ...base, keys: [], requireSignature: false, attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }] }, /at least one key/);
});

test('policies cover artifacts by resource glob; off policies cover nothing', () => {
  const set = new TrustPolicySet([
    parseTrustPolicy(base),
    parseTrustPolicy({ name: 'quiet', mode: 'off', resources: ['oci:*'], keys: [] }),
    parseTrustPolicy({ name: 'team', mode: 'audit', resources: ['oci:app/team/*'], keys: ['team'] }),
  ]);
  assert.deepEqual(set.covering({ kind: 's3', bucket: 'releases', key: 'a/b.tgz' }).map((p) => p.name), ['releases']);
  assert.deepEqual(set.covering({ kind: 's3', bucket: 'other', key: 'x' }), []);
  assert.deepEqual(set.covering({ kind: 'oci', repository: 'app/team/web' }).map((p) => p.name), ['releases', 'team']);
  assert.deepEqual(set.covering({ kind: 'oci', repository: 'lib/x' }), []);
});

test('the strictest mode wins', () => {
  assert.equal(stricter('audit', 'enforce-read'), 'enforce-read');
  assert.equal(stricter('enforce-write', 'enforce-read'), 'enforce-write');
  assert.equal(stricter('off', 'audit'), 'audit');
});
