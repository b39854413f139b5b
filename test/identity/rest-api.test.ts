import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { bytesOf } from '../helpers/sdk-js.ts';
import { accessKeyId as rootKey, freePort, region, secretKey as rootSecret, spawnServer, type ServerProcess } from '../helpers/server.ts';

/**
 * Users, groups, access keys and policies through the REST API, used for real: a key created there
 * signs S3 requests and logs in to the registry; revoked or expired it stops working; a user's password
 * works for the registry; the audit log records every change and decision, queryable and exportable as
 * JSON lines; and no secret ever reaches the server's log.
 */
let dataDir: string;
let server: ServerProcess;
const secrets: string[] = [];

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const rootAuth = basic(rootKey, rootSecret);

async function api(method: string, path: string, body?: unknown, authorization = rootAuth): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${server.endpoint}${path}`, {
    method,
    headers: { authorization, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    // JSON lines or empty
  }
  return { status: res.status, json, headers: res.headers };
}

function s3Client(accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({ endpoint: server.endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
}

let logFile: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'astore-identity-'));
  logFile = join(dataDir, 'server.log');
  server = await spawnServer(dataDir, await freePort(), { ASTORE_LOG__LEVEL: 'debug' }, { logFile });
});

after(async () => {
  await server?.kill('SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
});

describe('users, keys and policies', () => {
  let key: { accessKeyId: string; secretAccessKey: string };

  test('a user and an access key: the secret is shown once, listed never', async () => {
    const password = 'dana-password-0123';
    secrets.push(password);
    const created = await api('POST', '/api/v1/users', { name: 'dana', password, email: 'dana@example.com' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.hasPassword, true);
    assert.equal(JSON.stringify(created.json).includes(password), false);
    assert.equal((await api('POST', '/api/v1/users', { name: 'dana' })).status, 409);
    assert.equal((await api('POST', '/api/v1/users', { name: 'weak', password: 'short' })).status, 400);

    const made = await api('POST', '/api/v1/users/dana/access-keys', { description: 'ci' });
    assert.equal(made.status, 201);
    key = made.json;
    secrets.push(key.secretAccessKey);
    assert.match(key.accessKeyId, /^AK[A-Z0-9]+$/);
    const listed = await api('GET', '/api/v1/users/dana/access-keys');
    assert.equal(listed.json.accessKeys.length, 1);
    assert.equal(listed.json.accessKeys[0].status, 'active');
    assert.equal(JSON.stringify(listed.json).includes(key.secretAccessKey), false, 'a listing never shows the secret');
    const stored = await readFile(join(dataDir, 'meta.db'));
    assert.equal(stored.includes(Buffer.from(key.secretAccessKey)), false, 'the secret is not stored in clear');
  });

  test('the key signs S3 requests only once a policy allows them', async () => {
    const s3 = s3Client(key.accessKeyId, key.secretAccessKey);
    const root = s3Client(rootKey, rootSecret);
    await root.send(new CreateBucketCommand({ Bucket: 'team' }));
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'team', Key: 'a.txt', Body: 'a' })), (err: Error) => err.name === 'AccessDenied');
    const put = await api('PUT', '/api/v1/policies/dana-team', {
      description: 'dana may use bucket team',
      statements: [{ sid: 'Team', effect: 'allow', principals: ['user:dana'], actions: ['s3:*'], resources: ['s3:team', 's3:team/*'] }],
    });
    assert.equal(put.status, 201, JSON.stringify(put.json));
    await s3.send(new PutObjectCommand({ Bucket: 'team', Key: 'a.txt', Body: 'hello' }));
    assert.equal((await bytesOf(await s3.send(new GetObjectCommand({ Bucket: 'team', Key: 'a.txt' })))).toString(), 'hello');
    await assert.rejects(s3.send(new CreateBucketCommand({ Bucket: 'not-dana' })), (err: Error) => err.name === 'AccessDenied');
    s3.destroy();
    root.destroy();
  });

  test('authorize explains a decision with the statement that made it', async () => {
    const allowed = await api('POST', '/api/v1/authorize', { principal: { user: 'dana' }, action: 's3:GetObject', resource: 's3:team/a.txt' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.json.allowed, true);
    assert.deepEqual(allowed.json.matched, { policy: 'dana-team', sid: 'Team', statement: 0 });
    const denied = await api('POST', '/api/v1/authorize', { principal: { user: 'dana' }, action: 's3:GetObject', resource: 's3:other/a.txt' });
    assert.equal(denied.json.allowed, false);
    assert.equal(denied.json.reason, 'default-deny');
  });

  test('the registry takes the access key and the user\'s password; a wrong password is 401', async () => {
    await api('PUT', '/api/v1/policies/dana-registry', {
      statements: [{ effect: 'allow', principals: ['user:dana'], actions: ['oci:pull', 'oci:push'], resources: ['oci:dana/*'] }],
    });
    const byKey = await fetch(`${server.endpoint}/v2/dana/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic(key.accessKeyId, key.secretAccessKey) } });
    assert.equal(byKey.status, 202);
    const byPassword = await fetch(`${server.endpoint}/v2/dana/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('dana', secrets[0]!) } });
    assert.equal(byPassword.status, 202);
    const wrong = await fetch(`${server.endpoint}/v2/dana/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('dana', 'not-her-password') } });
    assert.equal(wrong.status, 401);
    const elsewhere = await fetch(`${server.endpoint}/v2/other/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('dana', secrets[0]!) } });
    assert.equal(elsewhere.status, 403);
    assert.equal(((await elsewhere.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DENIED');
  });

  test('a revoked key stops working at once; an expired one too', async () => {
    const s3 = s3Client(key.accessKeyId, key.secretAccessKey);
    assert.equal((await api('POST', `/api/v1/access-keys/${key.accessKeyId}/revoke`)).status, 200);
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'team', Key: 'a.txt' })), (err: Error) => err.name === 'InvalidAccessKeyId');
    s3.destroy();

    const soon = new Date(Date.now() + 1500).toISOString();
    const short = (await api('POST', '/api/v1/users/dana/access-keys', { expiresAt: soon })).json as { accessKeyId: string; secretAccessKey: string };
    secrets.push(short.secretAccessKey);
    const s3short = s3Client(short.accessKeyId, short.secretAccessKey);
    assert.equal((await bytesOf(await s3short.send(new GetObjectCommand({ Bucket: 'team', Key: 'a.txt' })))).toString(), 'hello');
    await new Promise((r) => setTimeout(r, 1700));
    await assert.rejects(s3short.send(new GetObjectCommand({ Bucket: 'team', Key: 'a.txt' })), (err: Error) => err.name === 'InvalidAccessKeyId');
    s3short.destroy();
  });

  test('a disabled user\'s password and keys stop working', async () => {
    assert.equal((await api('PATCH', '/api/v1/users/dana', { disabled: true })).status, 200);
    const res = await fetch(`${server.endpoint}/v2/dana/app/tags/list`, { headers: { authorization: basic('dana', secrets[0]!) } });
    assert.equal(res.status, 401);
  });
});

describe('the audit log', () => {
  test('changes and decisions are recorded with who, what and the request id; filters and paging work', async () => {
    const changes = await api('GET', '/api/v1/audit?principal=root&action=admin:*');
    assert.equal(changes.status, 200);
    const actions = (changes.json.entries as { action: string }[]).map((e) => e.action);
    for (const action of ['admin:CreateUser', 'admin:CreateAccessKey', 'admin:PutPolicy', 'admin:RevokeAccessKey', 'admin:UpdateUser']) {
      assert.ok(actions.includes(action), `${action} is audited`);
    }
    const denied = await api('GET', '/api/v1/audit?outcome=denied&principal=user:dana');
    assert.ok(denied.json.entries.some((e: { action: string; resource: string }) => e.action === 'oci:push' && e.resource === 'oci:other/app'));
    assert.ok(denied.json.entries.every((e: { requestId?: string; sourceIp?: string }) => e.requestId && e.sourceIp));

    const first = await api('GET', '/api/v1/audit?limit=2');
    assert.equal(first.json.entries.length, 2);
    const second = await api('GET', `/api/v1/audit?limit=2&after=${first.json.next}`);
    assert.ok(second.json.entries[0].id > first.json.entries[1].id);

    const lines = await fetch(`${server.endpoint}/api/v1/audit?format=jsonl`, { headers: { authorization: rootAuth } });
    assert.equal(lines.headers.get('content-type'), 'application/x-ndjson');
    const parsed = (await lines.text()).trim().split('\n').map((line) => JSON.parse(line) as { action: string });
    assert.ok(parsed.length >= actions.length);
  });

  test('no secret appears in the audit log or in the server log', async () => {
    const exported = await (await fetch(`${server.endpoint}/api/v1/audit?format=jsonl`, { headers: { authorization: rootAuth } })).text();
    const log = await readFile(logFile, 'utf8');
    assert.ok(log.length > 1000, 'the server logged this run (at debug level)');
    for (const secret of [...secrets, rootSecret]) {
      assert.equal(exported.includes(secret), false, 'audit log free of secrets');
      assert.equal(log.includes(secret), false, 'server log free of secrets');
    }
  });
});
