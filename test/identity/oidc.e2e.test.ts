import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireTool, run } from '../helpers/clients.ts';
import { startKeycloak, type KeycloakServer } from '../helpers/keycloak.ts';
import { accessKeyId as rootKey, region, secretKey as rootSecret, startServer, type TestServer } from '../helpers/server.ts';

/**
 * astore against a real Keycloak (started by the test setup, realm imported from
 * test/identity/keycloak/realm-astore.json): bearer tokens on the REST API, identity tokens as registry
 * passwords (oras, crane), S3 STS AssumeRoleWithWebIdentity through boto3 and aws-cli, token expiry and
 * signing-key rotation. Policies name Keycloak's groups and roles.
 */
let keycloak: KeycloakServer;
let server: TestServer;
let work: string;
const rootAuth = `Basic ${Buffer.from(`${rootKey}:${rootSecret}`).toString('base64')}`;
const devRole = 'arn:aws:iam::000000000000:role/astore-dev';

async function api(method: string, path: string, authorization: string, body?: unknown): Promise<Response> {
  return fetch(`${server.endpoint}${path}`, {
    method,
    headers: { authorization, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

before(async () => {
  keycloak = await startKeycloak();
  server = await startServer({
    auth: {
      rootAccessKey: rootKey,
      rootSecretKey: rootSecret,
      // No clock tolerance, so the expiry test need not wait for it (Keycloak runs on this machine's clock).
      oidc: { issuer: keycloak.issuer, audience: ['astore'], groupsClaim: 'groups', rolesClaim: 'roles', clockToleranceSeconds: 0 },
    },
  });
  work = await mkdtemp(join(tmpdir(), 'astore-oidc-'));
  const policy = {
    statements: [
      { sid: 'DevData', effect: 'allow', principals: ['role:astore-dev'], actions: ['s3:*'], resources: ['s3:dev', 's3:dev/*'] },
      { sid: 'DevRepos', effect: 'allow', principals: ['role:astore-dev'], actions: ['oci:pull', 'oci:push'], resources: ['oci:dev/*'] },
      { sid: 'OpsReadUsers', effect: 'allow', principals: ['group:ops'], actions: ['admin:ListUsers'], resources: ['api:users'] },
    ],
  };
  assert.equal((await api('PUT', '/api/v1/policies/keycloak', rootAuth, policy)).status, 201);
  await server.app.buckets.create('dev');
});

after(async () => {
  await server?.stop();
  await keycloak?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('bearer tokens on the REST API', () => {
  test('a group from the token decides: bob (ops) may list users, alice (devs) may not', async () => {
    const bob = await keycloak.passwordToken('bob', 'bob-password-1');
    const alice = await keycloak.passwordToken('alice', 'alice-password-1');
    assert.equal((await api('GET', '/api/v1/users', `Bearer ${bob}`)).status, 200);
    const denied = await api('GET', '/api/v1/users', `Bearer ${alice}`);
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get('content-type'), 'application/problem+json');
  });

  test('a client-credentials token works; a tampered one is 401', async () => {
    const token = await keycloak.clientCredentialsToken();
    const res = await api('GET', '/api/v1/users', `Bearer ${token}`);
    assert.equal(res.status, 403, 'authenticated (the service account is not in ops), so 403 rather than 401');
    const [h, p, s] = token.split('.');
    const tampered = `${h}.${p}.${s!.slice(0, -4)}AAAA`;
    const bad = await api('GET', '/api/v1/users', `Bearer ${tampered}`);
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic realm="astore"/);
  });
});

describe('registry login with an identity token', () => {
  test('oras and crane push with alice\'s token as the password; outside dev/ they are denied', async () => {
    const token = await keycloak.passwordToken('alice', 'alice-password-1');
    const env = { ...process.env, HOME: work, DOCKER_CONFIG: join(work, 'docker') };
    const registry = `127.0.0.1:${server.port}`;
    const oras = requireTool('ASTORE_TEST_ORAS');
    await writeFile(join(work, 'hello.txt'), 'hello from keycloak');
    const login = await run(oras, ['login', '--plain-http', registry, '-u', 'alice', '--password-stdin'], { env, input: token });
    assert.equal(login.code, 0, login.stderr);
    const push = await run(oras, ['push', '--plain-http', `${registry}/dev/hello:v1`, 'hello.txt'], { env, cwd: work });
    assert.equal(push.code, 0, push.stderr);
    const denied = await run(oras, ['push', '--plain-http', `${registry}/prod/hello:v1`, 'hello.txt'], { env, cwd: work });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /denied|403/i);

    const crane = requireTool('ASTORE_TEST_CRANE');
    const craneLogin = await run(crane, ['auth', 'login', registry, '-u', 'alice', '--password-stdin'], { env, input: token });
    assert.equal(craneLogin.code, 0, craneLogin.stderr);
    const tags = await run(crane, ['ls', '--insecure', `${registry}/dev/hello`], { env });
    assert.equal(tags.code, 0, tags.stderr);
    assert.equal(tags.stdout.trim(), 'v1');
  });
});

describe('S3 STS AssumeRoleWithWebIdentity', () => {
  test('boto3 exchanges a token for credentials that act as the token\'s roles, and nothing more', async () => {
    const python = requireTool('ASTORE_TEST_PYTHON');
    const token = await keycloak.passwordToken('alice', 'alice-password-1');
    const script = `
import boto3, json, sys
from botocore.exceptions import ClientError
endpoint, token, role = sys.argv[1], sys.argv[2], sys.argv[3]
sts = boto3.client('sts', endpoint_url=endpoint, region_name='${region}', aws_access_key_id='x', aws_secret_access_key='x')
out = {}
creds = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName='ci', WebIdentityToken=token, DurationSeconds=900)['Credentials']
out['keyPrefix'] = creds['AccessKeyId'][:4]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=creds['AccessKeyId'],
                  aws_secret_access_key=creds['SecretAccessKey'], aws_session_token=creds['SessionToken'])
s3.put_object(Bucket='dev', Key='from-sts.txt', Body=b'sts')
out['get'] = s3.get_object(Bucket='dev', Key='from-sts.txt')['Body'].read().decode()
try:
    s3.create_bucket(Bucket='not-dev')
    out['other'] = 'allowed'
except ClientError as e:
    out['other'] = e.response['Error']['Code']
try:
    sts.assume_role_with_web_identity(RoleArn='arn:aws:iam::000000000000:role/astore-admin', RoleSessionName='ci', WebIdentityToken=token)
    out['adminRole'] = 'granted'
except ClientError as e:
    out['adminRole'] = e.response['Error']['Code']
bad = boto3.client('s3', endpoint_url=endpoint, region_name='${region}', aws_access_key_id=creds['AccessKeyId'],
                   aws_secret_access_key=creds['SecretAccessKey'], aws_session_token=creds['SessionToken'][:-8] + 'AAAAAAAA')
try:
    bad.get_object(Bucket='dev', Key='from-sts.txt')
    out['tampered'] = 'allowed'
except ClientError as e:
    out['tampered'] = e.response['Error']['Code']
print(json.dumps(out))
`;
    const result = await run(python, ['-c', script, server.endpoint, token, devRole], { env: { ...process.env, AWS_CONFIG_FILE: join(work, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(work, 'none') } });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop()!), {
      keyPrefix: 'ASIA',
      get: 'sts',
      other: 'AccessDenied',
      adminRole: 'AccessDenied',
      tampered: 'InvalidAccessKeyId',
    });
  });

  test('aws-cli assumes the role from AWS_WEB_IDENTITY_TOKEN_FILE', async () => {
    const aws = requireTool('ASTORE_TEST_AWS');
    const tokenFile = join(work, 'web-identity-token');
    await writeFile(tokenFile, await keycloak.passwordToken('alice', 'alice-password-1'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: work,
      AWS_CONFIG_FILE: join(work, 'aws-config-none'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'aws-credentials-none'),
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_ARN: devRole,
      AWS_ROLE_SESSION_NAME: 'cli',
      AWS_ENDPOINT_URL_STS: server.endpoint,
      AWS_DEFAULT_REGION: region,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const ls = await run(aws, ['--endpoint-url', server.endpoint, 's3', 'ls', 's3://dev/'], { env });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /from-sts\.txt/);
    const denied = await run(aws, ['--endpoint-url', server.endpoint, 's3', 'mb', 's3://cli-not-allowed'], { env });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /AccessDenied/);
  });
});

describe('token lifetime and key rotation', () => {
  test('an expired token is refused; after a signing-key rotation new tokens are accepted', async () => {
    await keycloak.setAccessTokenLifespan(5);
    const short = await keycloak.passwordToken('bob', 'bob-password-1');
    await keycloak.setAccessTokenLifespan(300);
    assert.equal((await api('GET', '/api/v1/users', `Bearer ${short}`)).status, 200);
    await new Promise((r) => setTimeout(r, 6500));
    const expired = await api('GET', '/api/v1/users', `Bearer ${short}`);
    assert.equal(expired.status, 401);
    assert.match(((await expired.json()) as { detail: string }).detail, /expired/);

    const before = await keycloak.passwordToken('bob', 'bob-password-1');
    await keycloak.rotateKeys();
    const rotated = await keycloak.passwordToken('bob', 'bob-password-1');
    assert.notEqual(kid(rotated), kid(before), 'Keycloak signs with a new key');
    await new Promise((r) => setTimeout(r, 5500)); // astore refetches the keys at most every 5 s
    assert.equal((await api('GET', '/api/v1/users', `Bearer ${rotated}`)).status, 200, 'a token signed with the new key is accepted');
  });
});

function kid(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}
