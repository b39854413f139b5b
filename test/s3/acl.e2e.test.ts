import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateBucketCommand, GetBucketAclCommand, GetObjectAclCommand, PutBucketAclCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { expectS3Error, sdkClient } from '../helpers/sdk-js.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Tools such as s3cmd read ACLs: astore answers the one it has (owner FULL_CONTROL) and refuses changes. */
let server: TestServer;
let s3: S3Client;

before(async () => {
  server = await startServer();
  s3 = sdkClient(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: 'acl' }));
  await s3.send(new PutObjectCommand({ Bucket: 'acl', Key: 'k', Body: 'x' }));
});
after(async () => {
  s3?.destroy();
  await server?.stop();
});

test('GetBucketAcl and GetObjectAcl: the owner has FULL_CONTROL', async () => {
  for (const acl of [await s3.send(new GetBucketAclCommand({ Bucket: 'acl' })), await s3.send(new GetObjectAclCommand({ Bucket: 'acl', Key: 'k' }))]) {
    assert.equal(acl.Owner?.ID, 'astore-root');
    assert.deepEqual(acl.Grants?.map((g) => [g.Grantee?.Type, g.Grantee?.ID, g.Permission]), [['CanonicalUser', 'astore-root', 'FULL_CONTROL']]);
  }
  await expectS3Error(s3.send(new GetObjectAclCommand({ Bucket: 'acl', Key: 'missing' })), 'NoSuchKey', 404);
  await expectS3Error(s3.send(new PutBucketAclCommand({ Bucket: 'acl', ACL: 'public-read' })), 'NotImplemented', 501);
});
