import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAstoreError } from '../errors.ts';
import { bucketPolicyToDocument } from './bucket-policy.ts';
import { PolicyEngine } from './engine.ts';
import type { PolicyPrincipal } from './types.ts';

const policyText = (...statements: unknown[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

function refusal(json: string, bucket = 'photos'): string {
  try {
    bucketPolicyToDocument(bucket, json);
  } catch (err) {
    assert.ok(isAstoreError(err, 'MalformedPolicy'), `expected MalformedPolicy, got ${String(err)}`);
    assert.equal(err.spec.s3Code, 'MalformedPolicy');
    assert.equal(err.detail.BucketName, bucket);
    return err.message;
  }
  assert.fail('the policy was accepted');
}

const publicRead = { Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::photos/*' };

test('the classic public-read policy', () => {
  assert.deepEqual(bucketPolicyToDocument('photos', policyText(publicRead)), {
    name: 'bucket:photos',
    description: 'S3 bucket policy of photos',
    statements: [{ sid: 'PublicRead', effect: 'allow', principals: ['*'], actions: ['s3:GetObject'], resources: ['s3:photos/*'] }],
  });
});

test('principals: *, IAM users and roles, bare user names', () => {
  const convert = (Principal: unknown) => bucketPolicyToDocument('photos', policyText({ ...publicRead, Principal })).statements[0]!.principals;
  assert.deepEqual(convert({ AWS: '*' }), ['*']);
  assert.deepEqual(convert({ AWS: ['arn:aws:iam::123456789012:user/alice', '*'] }), ['*']);
  assert.deepEqual(convert({ AWS: 'arn:aws:iam::123456789012:user/alice' }), ['user:alice']);
  assert.deepEqual(convert({ AWS: ['arn:aws:iam:::user/alice', 'arn:aws:iam::1:role/deployer', 'bob'] }), ['user:alice', 'role:deployer', 'user:bob']);
});

test('actions are kept, with S3 spelling restored and other services refused', () => {
  const convert = (Action: unknown) => bucketPolicyToDocument('photos', policyText({ ...publicRead, Action })).statements[0]!.actions;
  assert.deepEqual(convert(['s3:GetObject', 's3:*', '*', 's3:List*', 's3:PutLifecycleConfiguration']), ['s3:GetObject', 's3:*', '*', 's3:List*', 's3:PutLifecycleConfiguration']);
  assert.deepEqual(convert(['s3:getobject', 'S3:PutObject', 's3:LISTBUCKET']), ['s3:GetObject', 's3:PutObject', 's3:ListBucket']);
  assert.match(refusal(policyText({ ...publicRead, Action: ['s3:GetObject', 's3:get*'] })), /^Statement\[0\]\.Action\[1\]: "s3:get\*": action names are case-sensitive here/);
  assert.match(refusal(policyText({ ...publicRead, Action: 'oci:pull' })), /^Statement\[0\]\.Action\[0\]: "oci:pull": a bucket policy governs S3 actions only/);
  assert.match(refusal(policyText({ ...publicRead, Action: 'GetObject' })), /S3 actions only/);
  assert.match(refusal(policyText({ ...publicRead, Action: [] })), /^Statement\[0\]\.Action: must not be empty/);
  assert.match(refusal(policyText({ ...publicRead, Action: [7] })), /^Statement\[0\]\.Action\[0\]: must be a non-empty string/);
});

test('resources map onto the bucket and stay inside it', () => {
  const convert = (Resource: unknown) => bucketPolicyToDocument('photos', policyText({ ...publicRead, Resource })).statements[0]!.resources;
  assert.deepEqual(convert(['arn:aws:s3:::photos', 'arn:aws:s3:::photos/*', 'arn:aws:s3:::photos/2026/??/*.jpg']), ['s3:photos', 's3:photos/*', 's3:photos/2026/??/*.jpg']);
  for (const outside of ['arn:aws:s3:::videos/*', 'arn:aws:s3:::photos-raw/*', 'arn:aws:s3:::photos*', 'arn:aws:s3:::*', '*', 'arn:aws:s3:::photo?/*', 's3:photos/*']) {
    assert.match(refusal(policyText({ ...publicRead, Resource: ['arn:aws:s3:::photos', outside] })), /^Statement\[0\]\.Resource\[1\]: .* is outside bucket photos/, outside);
  }
  assert.match(refusal(policyText({ ...publicRead, Resource: 'arn:aws:s3:::photos/${aws:username}/*' })), /policy variables are not supported/);
});

test('conditions: IpAddress and the CurrentTime comparisons', () => {
  const document = bucketPolicyToDocument(
    'photos',
    policyText({
      ...publicRead,
      Condition: {
        IpAddress: { 'aws:SourceIp': ['192.0.2.0/24', '2001:db8::/32'] },
        DateGreaterThanEquals: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' },
        DateLessThan: { 'aws:currenttime': ['2026-06-30', '2026-12-31T00:00:00Z'] },
      },
    }),
  );
  assert.deepEqual(document.statements[0]!.conditions, {
    sourceIp: ['192.0.2.0/24', '2001:db8::/32'],
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2026-12-30T23:59:59.999Z',
  });
  const strict = bucketPolicyToDocument('photos', policyText({ ...publicRead, Condition: { DateGreaterThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } } }));
  assert.equal(strict.statements[0]!.conditions!.notBefore, '2026-01-01T00:00:00.001Z');
});

test('conditions the engine cannot express are refused, naming them', () => {
  const withCondition = (Condition: unknown) => refusal(policyText({ ...publicRead, Condition }));
  assert.match(withCondition({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }), /^Statement\[0\]\.Condition\.NotIpAddress: NotIpAddress is not supported/);
  assert.match(withCondition({ Bool: { 'aws:SecureTransport': 'false' } }), /^Statement\[0\]\.Condition\.Bool: condition operator Bool is not supported/);
  assert.match(withCondition({ StringLike: { 's3:prefix': 'home/*' } }), /condition operator StringLike is not supported/);
  assert.match(withCondition({ IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } }), /IpAddressIfExists is not supported/);
  assert.match(withCondition({ IpAddress: { 'aws:VpcSourceIp': '10.0.0.0/8' } }), /^Statement\[0\]\.Condition\.IpAddress\.aws:VpcSourceIp: IpAddress supports the key aws:SourceIp only/);
  assert.match(withCondition({ IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '10.0.0.300'] } }), /IpAddress\.aws:SourceIp\[1\]: "10\.0\.0\.300" is not an IP address/);
  assert.match(withCondition({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8', 'aws:sourceip': '192.0.2.0/24' } }), /aws:sourceip: aws:SourceIp is given twice/);
  assert.match(withCondition({ IpAddress: {} }), /^Statement\[0\]\.Condition\.IpAddress: must be an object of one or more condition keys/);
  assert.match(withCondition({ DateLessThan: { 'aws:EpochTime': '1700000000' } }), /DateLessThan supports the key aws:CurrentTime only/);
  assert.match(withCondition({ DateLessThan: { 'aws:CurrentTime': 'next week' } }), /aws:CurrentTime\[0\]: "next week" is not an ISO 8601 date/);
  assert.match(withCondition({ DateLessThan: { 'aws:CurrentTime': '2026-02-30T00:00:00Z' } }), /"2026-02-30T00:00:00Z" is not an ISO 8601 date/);
  assert.match(withCondition({ DateGreaterThan: { 'aws:CurrentTime': '2027-01-01' }, DateLessThan: { 'aws:CurrentTime': '2026-01-01' } }), /the time window is empty/);
});

test('unsupported and unknown statement fields are refused', () => {
  assert.match(refusal(policyText({ ...publicRead, NotAction: 's3:DeleteObject' })), /^Statement\[0\]\.NotAction: NotAction is not supported/);
  assert.match(refusal(policyText({ ...publicRead, Resource: undefined, NotResource: 'arn:aws:s3:::photos/private/*' })), /NotResource is not supported/);
  assert.match(refusal(policyText({ ...publicRead, Principal: undefined, NotPrincipal: { AWS: 'x' } })), /NotPrincipal is not supported/);
  assert.match(refusal(policyText({ ...publicRead, Effects: 'Allow' })), /^Statement\[0\]: unknown field Effects/);
  assert.match(refusal(policyText(publicRead, { ...publicRead, Effect: 'allow' })), /^Statement\[1\]\.Effect: must be "Allow" or "Deny", not "allow"/);
  assert.match(refusal(policyText({ ...publicRead, Effect: undefined })), /Effect: must be "Allow" or "Deny"/);
});

test('principals the engine cannot express are refused', () => {
  const withPrincipal = (Principal: unknown) => refusal(policyText({ ...publicRead, Principal }));
  assert.match(withPrincipal(undefined), /^Statement\[0\]\.Principal: missing/);
  assert.match(withPrincipal({ AWS: 'arn:aws:iam::123456789012:group/devs' }), /IAM groups cannot be principals/);
  assert.match(withPrincipal({ AWS: 'arn:aws:iam::123456789012:root' }), /root principals are not supported/);
  assert.match(withPrincipal({ AWS: 'arn:aws:sts::123456789012:assumed-role/r/s' }), /is not an IAM user or role ARN/);
  assert.match(withPrincipal({ AWS: 'arn:aws:iam::1:user/division/alice' }), /IAM paths are not supported/);
  assert.match(withPrincipal({ AWS: 'arn:aws:iam::1:user/ci-*' }), /wildcards are only allowed as the whole principal/);
  assert.match(withPrincipal({ AWS: ['arn:aws:iam::1:user/alice', 'arn:aws:iam::1:role/'] }), /^Statement\[0\]\.Principal\.AWS\[1\]: .* does not name a role/);
  assert.match(withPrincipal({ Service: 'cloudfront.amazonaws.com' }), /Service principals are not supported/);
  assert.match(withPrincipal({ CanonicalUser: 'abc' }), /CanonicalUser principals are not supported/);
  assert.match(withPrincipal('alice'), /must be "\*" or \{"AWS": \[\.\.\.\]\}/);
});

test('the document around the statements', () => {
  assert.match(refusal('{"Version": "2012-10-17", '), /^Policy: not valid JSON/);
  assert.match(refusal('[]'), /^Policy: must be a JSON object/);
  assert.match(refusal(JSON.stringify({ Version: '2012-10-17', Statement: [] })), /^Statement: missing/);
  assert.match(refusal(JSON.stringify({ Version: '2012-10-17' })), /^Statement: missing/);
  assert.match(refusal(JSON.stringify({ Version: '2020-01-01', Statement: [publicRead] })), /^Version: must be "2012-10-17"/);
  assert.match(refusal(JSON.stringify({ Version: '2012-10-17', Statement: [publicRead], Extra: 1 })), /^Policy: unknown field Extra/);
  assert.match(refusal(policyText({ ...publicRead, Sid: 'x'.repeat(21_000) })), /^Policy: exceeds the 20480-byte limit/);
  // A single statement object (not an array), an Id and no Version are accepted, as S3 does.
  const single = bucketPolicyToDocument('photos', JSON.stringify({ Id: 'p1', Statement: publicRead }));
  assert.equal(single.statements.length, 1);
});

test('converted policies decide requests in the engine', () => {
  const document = bucketPolicyToDocument(
    'photos',
    policyText(
      publicRead,
      { Sid: 'DeployerWrites', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::1:role/deployer' }, Action: ['s3:PutObject'], Resource: 'arn:aws:s3:::photos/*', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } },
      { Sid: 'NoPrivate', Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: 'arn:aws:s3:::photos/private/*' },
    ),
  );
  const engine = new PolicyEngine([document]);
  const anonymous: PolicyPrincipal = { kind: 'anonymous', name: 'anonymous', groups: [], roles: [] };
  const deployer: PolicyPrincipal = { kind: 'role', name: 'deployer', groups: [], roles: [] };
  const time = new Date();
  assert.deepEqual(engine.authorize({ principal: anonymous, action: 's3:GetObject', resource: 's3:photos/cat.jpg', context: { time } }).matched, { policy: 'bucket:photos', sid: 'PublicRead', statement: 0 });
  assert.equal(engine.authorize({ principal: anonymous, action: 's3:GetObject', resource: 's3:videos/cat.mp4', context: { time } }).reason, 'default-deny');
  assert.equal(engine.authorize({ principal: anonymous, action: 's3:GetObject', resource: 's3:photos/private/me.jpg', context: { time } }).reason, 'explicit-deny');
  assert.equal(engine.authorize({ principal: deployer, action: 's3:PutObject', resource: 's3:photos/new.jpg', context: { time, sourceIp: '10.1.2.3' } }).reason, 'allow');
  assert.equal(engine.authorize({ principal: deployer, action: 's3:PutObject', resource: 's3:photos/new.jpg', context: { time, sourceIp: '8.8.8.8' } }).reason, 'default-deny');
});
