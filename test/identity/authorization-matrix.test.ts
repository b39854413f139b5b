import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { signRequest } from '../helpers/sign.ts';
import { accessKeyId as rootKey, secretKey as rootSecret, startServer, type TestServer } from '../helpers/server.ts';

/**
 * The authorization matrix: several principals x actions across S3, OCI and the REST API, each
 * allowed or denied exactly as the policies say, every denial (and every allowed write) in the audit
 * log with who, what and the request id. Requests go over the wire with each principal's own access
 * key (SigV4 for S3, HTTP basic for the registry and the API).
 */
type Principal = 'root' | 'alice' | 'bob' | 'carol' | 'anonymous';
type Key = { id: string; secret: string };

let server: TestServer;
const keys = new Map<Principal, Key>();
let host: string;

const basic = (key: Key) => `Basic ${Buffer.from(`${key.id}:${key.secret}`).toString('base64')}`;

/** A REST call with `key` (root's by default; null: anonymous, no credentials at all). */
async function api(method: string, path: string, body?: unknown, key: Key | null = { id: rootKey, secret: rootSecret }): Promise<Response> {
  return fetch(`${server.endpoint}${path}`, {
    method,
    headers: { ...(key && { authorization: basic(key) }), ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function ok(res: Promise<Response>, status = 200): Promise<unknown> {
  const r = await res;
  const text = await r.text();
  assert.equal(r.status, status, text);
  return text ? JSON.parse(text) : undefined;
}

async function s3(who: Principal, method: string, path: string, body = ''): Promise<number> {
  const res = await s3Response(who, method, path, body);
  await res.arrayBuffer();
  return res.status;
}

async function s3Response(who: Principal, method: string, path: string, body = '', extra: Record<string, string> = {}): Promise<Response> {
  const key = keys.get(who);
  const [pathOnly, search = ''] = path.split('?', 2) as [string, string?];
  const query = Object.fromEntries(new URLSearchParams(search));
  const headers = key ? await signRequest(host, { method, path: pathOnly, query, body, headers: extra }, { accessKeyId: key.id, secretKey: key.secret }) : extra;
  return fetch(`${server.endpoint}${path}`, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
}

async function oci(who: Principal, method: string, path: string, body?: string, contentType?: string): Promise<number> {
  const key = keys.get(who);
  const res = await fetch(`${server.endpoint}${path}`, {
    method,
    headers: { ...(key && { authorization: basic(key) }), ...(contentType && { 'content-type': contentType }) },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

before(async () => {
  server = await startServer();
  host = new URL(server.endpoint).host;
  keys.set('root', { id: rootKey, secret: rootSecret });
  for (const name of ['alice', 'bob', 'carol']) {
    await ok(api('POST', '/api/v1/users', { name, password: `${name}-password-1234` }), 201);
    const key = (await ok(api('POST', `/api/v1/users/${name}/access-keys`, { description: 'matrix' }), 201)) as { accessKeyId: string; secretAccessKey: string };
    keys.set(name as Principal, { id: key.accessKeyId, secret: key.secretAccessKey });
  }
  await ok(api('POST', '/api/v1/groups', { name: 'devs' }), 201);
  await ok(api('PUT', '/api/v1/groups/devs/members/alice'), 204);
  await ok(api('POST', '/api/v1/groups', { name: 'ops' }), 201);
  await ok(api('PUT', '/api/v1/groups/ops/members/bob'), 204);
  await ok(api('POST', '/api/v1/groups', { name: 'empty' }), 201);
  await ok(
    api('PUT', '/api/v1/policies/devs', {
      statements: [
        { sid: 'DevBucket', effect: 'allow', principals: ['group:devs'], actions: ['s3:GetObject', 's3:PutObject', 's3:ListBucket'], resources: ['s3:dev', 's3:dev/*'] },
        { sid: 'DevRepos', effect: 'allow', principals: ['group:devs'], actions: ['oci:pull', 'oci:push'], resources: ['oci:dev/*'] },
        { sid: 'NoProtected', effect: 'deny', principals: ['group:devs'], actions: ['s3:PutObject'], resources: ['s3:dev/protected/*'] },
      ],
    }),
    201,
  );
  await ok(
    api('PUT', '/api/v1/policies/ops', {
      statements: [
        { sid: 'OpsEverything', effect: 'allow', principals: ['group:ops'], actions: ['s3:*', 'oci:*'], resources: ['s3:*', 'oci:*'] },
        { sid: 'OpsReadUsers', effect: 'allow', principals: ['group:ops'], actions: ['admin:ListUsers', 'admin:GetUser'], resources: ['api:users', 'api:users/*'] },
        { sid: 'NoSecrets', effect: 'deny', principals: ['user:bob'], actions: ['*'], resources: ['s3:secrets', 's3:secrets/*', 'oci:secrets/*'] },
      ],
    }),
    201,
  );
  // Fixtures made by root: buckets, objects, a repository with an image.
  for (const bucket of ['dev', 'secrets', 'pub']) assert.equal(await s3('root', 'PUT', `/${bucket}`), 200);
  for (const path of ['/dev/a.txt', '/secrets/s.txt', '/pub/p.txt']) assert.equal(await s3('root', 'PUT', path, 'x'), 200);
  // A bucket policy (IAM JSON through the S3 API) opens reads of one bucket to everyone.
  const policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::pub/*' }],
  });
  assert.equal(await s3('root', 'PUT', '/pub?policy', policy), 204);
});

after(async () => {
  await server?.stop();
});

/** Each row: what is done, and which principals may do it. */
const matrix: { name: string; run: (who: Principal) => Promise<number>; allowed: Principal[]; action: string; resource: string }[] = [
  { name: 'S3 GET dev/a.txt', run: (w) => s3(w, 'GET', '/dev/a.txt'), allowed: ['root', 'alice', 'bob'], action: 's3:GetObject', resource: 's3:dev/a.txt' },
  { name: 'S3 PUT dev/new.txt', run: (w) => s3(w, 'PUT', '/dev/new.txt', 'n'), allowed: ['root', 'alice', 'bob'], action: 's3:PutObject', resource: 's3:dev/new.txt' },
  { name: 'S3 PUT dev/protected/x', run: (w) => s3(w, 'PUT', '/dev/protected/x', 'p'), allowed: ['root', 'bob'], action: 's3:PutObject', resource: 's3:dev/protected/x' },
  { name: 'S3 DELETE dev/a.txt', run: (w) => s3(w, 'DELETE', '/dev/a.txt-not-there'), allowed: ['root', 'bob'], action: 's3:DeleteObject', resource: 's3:dev/a.txt-not-there' },
  { name: 'S3 list dev', run: (w) => s3(w, 'GET', '/dev?list-type=2'), allowed: ['root', 'alice', 'bob'], action: 's3:ListBucket', resource: 's3:dev' },
  { name: 'S3 GET secrets/s.txt', run: (w) => s3(w, 'GET', '/secrets/s.txt'), allowed: ['root'], action: 's3:GetObject', resource: 's3:secrets/s.txt' },
  { name: 'S3 GET pub/p.txt (bucket policy)', run: (w) => s3(w, 'GET', '/pub/p.txt'), allowed: ['root', 'alice', 'bob', 'carol', 'anonymous'], action: 's3:GetObject', resource: 's3:pub/p.txt' },
  { name: 'S3 PUT pub/p2.txt', run: (w) => s3(w, 'PUT', '/pub/p2.txt', 'q'), allowed: ['root', 'bob'], action: 's3:PutObject', resource: 's3:pub/p2.txt' },
  { name: 'S3 create bucket', run: (w) => s3(w, 'PUT', `/made-by-${w}`), allowed: ['root', 'bob'], action: 's3:CreateBucket', resource: 's3:made-by-' },
  { name: 'S3 delete bucket', run: (w) => s3(w, 'DELETE', `/made-by-${w}`), allowed: ['root', 'bob'], action: 's3:DeleteBucket', resource: 's3:made-by-' },
  { name: 'S3 list buckets', run: (w) => s3(w, 'GET', '/'), allowed: ['root', 'bob'], action: 's3:ListAllMyBuckets', resource: 's3:' },
  { name: 'S3 HEAD dev/a.txt', run: (w) => s3(w, 'HEAD', '/dev/a.txt'), allowed: ['root', 'alice', 'bob'], action: 's3:GetObject', resource: 's3:dev/a.txt' },
  { name: 'S3 bucket location', run: (w) => s3(w, 'GET', '/dev?location'), allowed: ['root', 'bob'], action: 's3:GetBucketLocation', resource: 's3:dev' },
  { name: 'S3 list multipart uploads', run: (w) => s3(w, 'GET', '/dev?uploads'), allowed: ['root', 'bob'], action: 's3:ListBucketMultipartUploads', resource: 's3:dev' },
  { name: 'S3 get bucket policy', run: (w) => s3(w, 'GET', '/pub?policy'), allowed: ['root', 'bob'], action: 's3:GetBucketPolicy', resource: 's3:pub' },
  { name: 'S3 delete bucket policy of dev', run: (w) => s3(w, 'DELETE', '/dev?policy'), allowed: ['root', 'bob'], action: 's3:DeleteBucketPolicy', resource: 's3:dev' },
  {
    name: 'S3 put bucket policy on dev',
    // Harmless (for nobody), so that a success changes no later decision.
    run: (w) => s3(w, 'PUT', '/dev?policy', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'nobody' }, Action: 's3:GetObject', Resource: 'arn:aws:s3:::dev/*' }] })),
    allowed: ['root', 'bob'],
    action: 's3:PutBucketPolicy',
    resource: 's3:dev',
  },
  { name: 'S3 bucket ACL', run: (w) => s3(w, 'GET', '/dev?acl'), allowed: ['root', 'bob'], action: 's3:GetBucketAcl', resource: 's3:dev' },
  { name: 'S3 object ACL', run: (w) => s3(w, 'GET', '/dev/a.txt?acl'), allowed: ['root', 'bob'], action: 's3:GetObjectAcl', resource: 's3:dev/a.txt' },
  { name: 'S3 start a multipart upload', run: (w) => s3(w, 'POST', `/dev/mp-${w}?uploads`), allowed: ['root', 'alice', 'bob'], action: 's3:PutObject', resource: 's3:dev/mp-' },
  { name: 'S3 list parts', run: (w) => s3(w, 'GET', '/dev/a.txt?uploadId=none'), allowed: ['root', 'bob'], action: 's3:ListMultipartUploadParts', resource: 's3:dev/a.txt' },
  { name: 'S3 abort an upload', run: (w) => s3(w, 'DELETE', '/dev/a.txt?uploadId=none'), allowed: ['root', 'bob'], action: 's3:AbortMultipartUpload', resource: 's3:dev/a.txt' },
  { name: 'OCI push to dev/app', run: (w) => oci(w, 'POST', '/v2/dev/app/blobs/uploads/'), allowed: ['root', 'alice', 'bob'], action: 'oci:push', resource: 'oci:dev/app' },
  { name: 'OCI pull dev/app tags', run: (w) => oci(w, 'GET', '/v2/dev/app/tags/list'), allowed: ['root', 'alice', 'bob'], action: 'oci:pull', resource: 'oci:dev/app' },
  { name: 'OCI push to secrets/app', run: (w) => oci(w, 'POST', '/v2/secrets/app/blobs/uploads/'), allowed: ['root'], action: 'oci:push', resource: 'oci:secrets/app' },
  { name: 'OCI catalog', run: (w) => oci(w, 'GET', '/v2/_catalog'), allowed: ['root', 'bob'], action: 'oci:catalog', resource: 'oci:' },
  { name: 'OCI delete dev/app:nope', run: (w) => oci(w, 'DELETE', '/v2/dev/app/manifests/nope'), allowed: ['root', 'bob'], action: 'oci:delete', resource: 'oci:dev/app' },
  { name: 'OCI pull secrets/app', run: (w) => oci(w, 'GET', '/v2/secrets/app/tags/list'), allowed: ['root'], action: 'oci:pull', resource: 'oci:secrets/app' },
  { name: 'REST list users', run: (w) => rest(w, 'GET', '/api/v1/users'), allowed: ['root', 'bob'], action: 'admin:ListUsers', resource: 'api:users' },
  { name: 'REST create user', run: (w) => rest(w, 'POST', '/api/v1/users', { name: `by-${w}` }), allowed: ['root'], action: 'admin:CreateUser', resource: 'api:users' },
  { name: 'REST get user alice', run: (w) => rest(w, 'GET', '/api/v1/users/alice'), allowed: ['root', 'bob'], action: 'admin:GetUser', resource: 'api:users/alice' },
  { name: 'REST list groups', run: (w) => rest(w, 'GET', '/api/v1/groups'), allowed: ['root'], action: 'admin:ListGroups', resource: 'api:groups' },
  { name: 'REST create access key for carol', run: (w) => rest(w, 'POST', '/api/v1/users/carol/access-keys', {}), allowed: ['root'], action: 'admin:CreateAccessKey', resource: 'api:users/carol' },
  { name: 'REST read audit', run: (w) => rest(w, 'GET', '/api/v1/audit?limit=1'), allowed: ['root'], action: 'admin:ReadAudit', resource: 'api:audit' },
  { name: 'REST authorize', run: (w) => rest(w, 'POST', '/api/v1/authorize', { principal: { user: 'alice' }, action: 's3:GetObject', resource: 's3:dev/a' }), allowed: ['root'], action: 'admin:Authorize', resource: 'api:authorize' },
  { name: 'REST run GC', run: (w) => rest(w, 'POST', '/api/v1/gc/runs'), allowed: ['root'], action: 'admin:RunGc', resource: 'api:gc' },
  { name: 'REST update user carol', run: (w) => rest(w, 'PATCH', '/api/v1/users/carol', { displayName: `by ${w}` }), allowed: ['root'], action: 'admin:UpdateUser', resource: 'api:users/carol' },
  { name: 'REST list policies', run: (w) => rest(w, 'GET', '/api/v1/policies'), allowed: ['root'], action: 'admin:ListPolicies', resource: 'api:policies' },
  { name: 'REST get policy devs', run: (w) => rest(w, 'GET', '/api/v1/policies/devs'), allowed: ['root'], action: 'admin:GetPolicy', resource: 'api:policies/devs' },
  { name: 'REST get group devs', run: (w) => rest(w, 'GET', '/api/v1/groups/devs'), allowed: ['root'], action: 'admin:GetGroup', resource: 'api:groups/devs' },
  { name: 'REST list alice\'s keys', run: (w) => rest(w, 'GET', '/api/v1/users/alice/access-keys'), allowed: ['root'], action: 'admin:ListAccessKeys', resource: 'api:users/alice' },
  { name: 'REST get a blob', run: (w) => rest(w, 'GET', `/api/v1/blobs/sha256:${'0'.repeat(64)}`), allowed: ['root'], action: 'admin:GetBlob', resource: 'api:blobs/' },
  { name: 'REST add a member', run: (w) => rest(w, 'PUT', '/api/v1/groups/empty/members/carol'), allowed: ['root'], action: 'admin:AddGroupMember', resource: 'api:groups/empty' },
  { name: 'REST remove a member', run: (w) => rest(w, 'DELETE', '/api/v1/groups/empty/members/carol'), allowed: ['root'], action: 'admin:RemoveGroupMember', resource: 'api:groups/empty' },
  { name: 'REST revoke a key', run: (w) => rest(w, 'POST', '/api/v1/access-keys/AKNOTHERE/revoke'), allowed: ['root'], action: 'admin:RevokeAccessKey', resource: 'api:access-keys/AKNOTHERE' },
  { name: 'REST delete a key', run: (w) => rest(w, 'DELETE', '/api/v1/access-keys/AKNOTHERE'), allowed: ['root'], action: 'admin:DeleteAccessKey', resource: 'api:access-keys/AKNOTHERE' },
  { name: 'REST delete a policy', run: (w) => rest(w, 'DELETE', '/api/v1/policies/not-there'), allowed: ['root'], action: 'admin:DeletePolicy', resource: 'api:policies/not-there' },
  { name: 'REST delete a group', run: (w) => rest(w, 'DELETE', '/api/v1/groups/not-there'), allowed: ['root'], action: 'admin:DeleteGroup', resource: 'api:groups/not-there' },
  { name: 'REST delete a user', run: (w) => rest(w, 'DELETE', '/api/v1/users/not-there'), allowed: ['root'], action: 'admin:DeleteUser', resource: 'api:users/not-there' },
  {
    name: 'REST put policy',
    // A harmless policy (for nobody), so that root's success changes no later decision.
    run: (w) => rest(w, 'PUT', `/api/v1/policies/by-${w}`, { statements: [{ effect: 'allow', principals: ['user:nobody'], actions: ['s3:GetObject'], resources: ['s3:x/*'] }] }),
    allowed: ['root'],
    action: 'admin:PutPolicy',
    resource: 'api:policies/by-',
  },
];

async function rest(who: Principal, method: string, path: string, body?: unknown): Promise<number> {
  const res = await api(method, path, body, keys.get(who) ?? null);
  await res.arrayBuffer();
  return res.status;
}

test('every principal is allowed or denied exactly as the policies say, and every denial is audited', async () => {
  const principals: Principal[] = ['root', 'alice', 'bob', 'carol', 'anonymous'];
  const unexpected: string[] = [];
  let denials = 0;
  for (const row of matrix) {
    for (const who of principals) {
      const status = await row.run(who);
      const allowed = status < 400 || status === 404;
      const expected = row.allowed.includes(who);
      if (allowed !== expected) unexpected.push(`${row.name} as ${who}: HTTP ${status}, expected ${expected ? 'allowed' : 'denied'}`);
      if (!expected) {
        denials++;
        assert.ok([401, 403].includes(status), `${row.name} as ${who}: a denial is 401 or 403, not ${status}`);
      }
    }
  }
  assert.deepEqual(unexpected, [], `0 unexpected allows and 0 unexpected denies (${matrix.length * principals.length} decisions)`);

  // Every denial of a non-root principal is in the audit log with its principal, action and resource.
  await new Promise((r) => setTimeout(r, 200)); // decisions are recorded without holding up the response
  const entries = (await ok(api('GET', '/api/v1/audit?outcome=denied&limit=1000'))) as { entries: { principal: string; action: string; resource: string; requestId?: string }[] };
  assert.equal(entries.entries.length, denials, 'one audit entry per denial');
  for (const row of matrix) {
    for (const who of principals.filter((p) => !row.allowed.includes(p))) {
      const principal = who === 'anonymous' ? 'anonymous' : `user:${who}`;
      const found = entries.entries.find((e) => e.principal === principal && e.action === row.action && e.resource.startsWith(row.resource));
      assert.ok(found, `audit entry for ${row.name} denied to ${who}`);
      assert.ok(found.requestId, 'the entry names the request');
    }
  }

  // Every change that committed is in the log, written in its own transaction, with its author.
  const changes = (await ok(api('GET', '/api/v1/audit?outcome=success&action=s3:PutObject&resource=s3:dev/&limit=1000'))) as { entries: { principal: string; resource: string }[] };
  const authors = (resource: string) => changes.entries.filter((e) => e.resource === resource).map((e) => e.principal).sort();
  assert.deepEqual(authors('s3:dev/new.txt'), ['root', 'user:alice', 'user:bob']);
  assert.deepEqual(authors('s3:dev/protected/x'), ['root', 'user:bob'], 'the denied PUTs changed nothing and recorded no change');
  const pushes = (await ok(api('GET', '/api/v1/audit?outcome=success&action=oci:*&limit=1000'))) as { entries: { action: string; resource: string }[] };
  assert.deepEqual(pushes.entries, [], 'starting uploads changes nothing that is audited as a change');
});

test('a multi-object delete is decided per key; a copy also needs read access to its source', async () => {
  const deleteBody = '<Delete><Object><Key>gone-1</Key></Object><Object><Key>gone-2</Key></Object></Delete>';
  const md5 = createHash('md5').update(deleteBody).digest('base64');
  const asAlice = await (await s3Response('alice', 'POST', '/dev?delete', deleteBody, { 'content-md5': md5 })).text();
  assert.equal((asAlice.match(/<Code>AccessDenied<\/Code>/g) ?? []).length, 2, asAlice);
  const asBob = await (await s3Response('bob', 'POST', '/dev?delete', deleteBody, { 'content-md5': md5 })).text();
  assert.equal((asBob.match(/<Deleted>/g) ?? []).length, 2, asBob);

  const copy = (who: Principal, source: string, target: string) => s3Response(who, 'PUT', target, '', { 'x-amz-copy-source': source }).then(async (r) => (await r.arrayBuffer(), r.status));
  assert.equal(await copy('alice', '/dev/a.txt', '/dev/copied.txt'), 200);
  assert.equal(await copy('alice', '/secrets/s.txt', '/dev/leaked.txt'), 403, 'the target is hers, the source is not');
  assert.equal(await copy('bob', '/secrets/s.txt', '/dev/leaked.txt'), 403, 'explicitly denied on the source');
  assert.equal(await copy('root', '/secrets/s.txt', '/dev/leaked-by-root.txt'), 200);
});

