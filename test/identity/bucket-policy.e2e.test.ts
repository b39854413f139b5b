import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { closeAwsCliFixture, openAwsCliFixture, type AwsCliFixture } from '../helpers/awscli.ts';
import { accessKeyId, secretKey } from '../helpers/server.ts';

/**
 * S3 bucket policies with aws-cli: put, get back as sent, enforced for anonymous readers by the same
 * engine as every other policy, refused when malformed, deleted.
 */
let f: AwsCliFixture;

before(async () => {
  f = await openAwsCliFixture('bucket-policy', 'pub');
  const file = join(f.work, 'hello.txt');
  await writeFile(file, 'hello');
  await f.aws.ok(['s3api', 'put-object', '--bucket', 'pub', '--key', 'hello.txt', '--body', file]);
});

after(async () => {
  await closeAwsCliFixture(f ?? {});
});

const policy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::pub/*' }],
});

test('put-bucket-policy opens anonymous reads; get-bucket-policy returns it; delete closes them again', async () => {
  const anonymous = () => fetch(`${f.server.endpoint}/pub/hello.txt`).then((r) => r.status);
  assert.equal(await anonymous(), 403, 'nothing is anonymous by default');
  assert.equal(await f.aws.fails(['s3api', 'get-bucket-policy', '--bucket', 'pub']), 'NoSuchBucketPolicy');

  await f.aws.ok(['s3api', 'put-bucket-policy', '--bucket', 'pub', '--policy', policy]);
  const got = await f.aws.json<{ Policy: string }>(['s3api', 'get-bucket-policy', '--bucket', 'pub']);
  assert.deepEqual(JSON.parse(got.Policy), JSON.parse(policy));
  assert.equal(await anonymous(), 200);
  assert.equal(await fetch(`${f.server.endpoint}/pub/hello.txt`, { method: 'PUT', body: 'x' }).then((r) => r.status), 403, 'reads only');

  await f.aws.ok(['s3api', 'delete-bucket-policy', '--bucket', 'pub']);
  assert.equal(await anonymous(), 403);

  // Both changes are in the audit log, by the principal that made them.
  const auth = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;
  const audit = (await (await fetch(`${f.server.endpoint}/api/v1/audit?action=s3:*&resource=s3:pub&outcome=success`, { headers: { authorization: auth } })).json()) as {
    entries: { principal: string; action: string; resource: string; requestId?: string }[];
  };
  const policyChanges = audit.entries.filter((e) => e.action.endsWith('BucketPolicy'));
  assert.deepEqual(policyChanges.map((e) => [e.principal, e.action, e.resource]), [
    ['root', 's3:PutBucketPolicy', 's3:pub'],
    ['root', 's3:DeleteBucketPolicy', 's3:pub'],
  ]);
  assert.ok(policyChanges.every((e) => e.requestId));
});

test('a policy the engine cannot express is MalformedPolicy and changes nothing', async () => {
  const outside = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::other/*' }],
  });
  assert.equal(await f.aws.fails(['s3api', 'put-bucket-policy', '--bucket', 'pub', '--policy', outside]), 'MalformedPolicy');
  const notAction = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Deny', Principal: '*', NotAction: 's3:GetObject', Resource: 'arn:aws:s3:::pub/*' }],
  });
  assert.equal(await f.aws.fails(['s3api', 'put-bucket-policy', '--bucket', 'pub', '--policy', notAction]), 'MalformedPolicy');
  assert.equal(await f.aws.fails(['s3api', 'put-bucket-policy', '--bucket', 'pub', '--policy', '{not json']), 'MalformedPolicy');
  assert.equal(await f.aws.fails(['s3api', 'get-bucket-policy', '--bucket', 'pub']), 'NoSuchBucketPolicy');
  assert.equal(await f.aws.fails(['s3api', 'put-bucket-policy', '--bucket', 'missing', '--policy', policy]), 'NoSuchBucket');
});
