import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requireTool, run } from '../helpers/clients.ts';
import { accessKeyId as rootKey, region, secretKey as rootSecret, startServer, type TestServer } from '../helpers/server.ts';

/**
 * STS AssumeRole with boto3: a user's access key, allowed `sts:AssumeRole` on one role by policy, gets
 * temporary credentials that act as that role (and only it); other roles are refused.
 */
let server: TestServer;
let key: { accessKeyId: string; secretAccessKey: string };
const root = `Basic ${Buffer.from(`${rootKey}:${rootSecret}`).toString('base64')}`;

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.endpoint}${path}`, { method, headers: { authorization: root, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
}

before(async () => {
  server = await startServer();
  await server.app.buckets.create('releases');
  await server.app.buckets.create('other');
  assert.equal((await api('POST', '/api/v1/users', { name: 'deploy-bot' })).status, 201);
  key = (await (await api('POST', '/api/v1/users/deploy-bot/access-keys', {})).json()) as typeof key;
  const policy = await api('PUT', '/api/v1/policies/deployer', {
    statements: [
      { sid: 'MayAssume', effect: 'allow', principals: ['user:deploy-bot'], actions: ['sts:AssumeRole'], resources: ['sts:role/deployer'] },
      { sid: 'Deployer', effect: 'allow', principals: ['role:deployer'], actions: ['s3:*'], resources: ['s3:releases', 's3:releases/*'] },
    ],
  });
  assert.equal(policy.status, 201, await policy.text());
});

after(async () => {
  await server?.stop();
});

test('boto3 assume_role gets credentials acting as the role; other roles and buckets are refused', async () => {
  const python = requireTool('ASTORE_TEST_PYTHON');
  const script = `
import boto3, json, sys
from botocore.exceptions import ClientError
endpoint, ak, sk = sys.argv[1], sys.argv[2], sys.argv[3]
sts = boto3.client('sts', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=ak, aws_secret_access_key=sk)
out = {}
creds = sts.assume_role(RoleArn='arn:aws:iam::000000000000:role/deployer', RoleSessionName='release-42', DurationSeconds=900)['Credentials']
out['keyPrefix'] = creds['AccessKeyId'][:4]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=creds['AccessKeyId'],
                  aws_secret_access_key=creds['SecretAccessKey'], aws_session_token=creds['SessionToken'])
s3.put_object(Bucket='releases', Key='v42.tar', Body=b'release')
out['get'] = s3.get_object(Bucket='releases', Key='v42.tar')['Body'].read().decode()
def code(call):
    try:
        call()
        return 'allowed'
    except ClientError as e:
        return e.response['Error']['Code']
out['other'] = code(lambda: s3.put_object(Bucket='other', Key='x', Body=b'x'))
out['otherRole'] = code(lambda: sts.assume_role(RoleArn='arn:aws:iam::000000000000:role/admin', RoleSessionName='xx'))
out['userDirect'] = code(lambda: boto3.client('s3', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=ak, aws_secret_access_key=sk).put_object(Bucket='releases', Key='y', Body=b'y'))
bad = boto3.client('sts', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=ak, aws_secret_access_key='wrong')
out['wrongSecret'] = code(lambda: bad.assume_role(RoleArn='arn:aws:iam::000000000000:role/deployer', RoleSessionName='xx'))
print(json.dumps(out))
`;
  const result = await run(python, ['-c', script, server.endpoint, key.accessKeyId, key.secretAccessKey], {
    env: { ...process.env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
  });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop()!), {
    keyPrefix: 'ASIA',
    get: 'release',
    other: 'AccessDenied',
    otherRole: 'AccessDenied',
    userDirect: 'AccessDenied',
    wrongSecret: 'SignatureDoesNotMatch',
  });
  const audit = (await (await api('GET', '/api/v1/audit?action=sts:*')).json()) as { entries: { principal: string; action: string; resource: string; outcome: string }[] };
  assert.ok(audit.entries.some((e) => e.principal === 'user:deploy-bot' && e.action === 'sts:AssumeRole' && e.resource === 'sts:role/deployer' && e.outcome === 'success'));
  assert.ok(audit.entries.some((e) => e.action === 'sts:AssumeRole' && e.resource === 'sts:role/admin' && e.outcome === 'denied'));
});
