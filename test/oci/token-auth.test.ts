import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RegistryHttp } from '../helpers/registry-http.ts';
import { accessKeyId, secretKey, startServer, type TestServer } from '../helpers/server.ts';

/**
 * The registry token flow, as Docker, podman, crane and oras clients follow it: a 401 names the token
 * endpoint and the scope; the endpoint grants, for the caller's credentials, the asked actions the
 * policy engine allows; the token then works as a bearer for exactly those.
 */
let server: TestServer;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

before(async () => {
  server = await startServer({ oci: { anonymousPullRepositories: ['public/*'] } });
  await new RegistryHttp(server.endpoint).pushImage('public/app', 'v1', [Buffer.from('layer')]);
  await new RegistryHttp(server.endpoint).pushImage('team/app', 'v1', [Buffer.from('team layer')]);
  // A user who may pull team/app but not push to it.
  const root = basic(accessKeyId, secretKey);
  const post = (path: string, body: unknown, method = 'POST') =>
    fetch(`${server.endpoint}${path}`, { method, headers: { authorization: root, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post('/api/v1/users', { name: 'reader', password: 'reader-password-1' })).status, 201);
  assert.equal(
    (await post('/api/v1/policies/reader', { statements: [{ effect: 'allow', principals: ['user:reader'], actions: ['oci:pull'], resources: ['oci:team/*'] }] }, 'PUT')).status,
    201,
  );
});

after(async () => {
  await server?.stop();
});

async function token(scope: string, authorization?: string): Promise<{ token: string; access: unknown }> {
  const res = await fetch(`${server.endpoint}/v2/token?service=astore&scope=${encodeURIComponent(scope)}`, { headers: authorization ? { authorization } : {} });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
  assert.equal(body.token, body.access_token);
  assert.equal(body.expires_in, 300);
  const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { access: unknown };
  return { token: body.token, access: claims.access };
}

test('the challenge names the endpoint and the scope; the token grants only what policies allow', async () => {
  const challenge = await fetch(`${server.endpoint}/v2/team/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(challenge.status, 401);
  assert.equal(challenge.headers.get('www-authenticate'), `Bearer realm="${server.endpoint}/v2/token",service="astore",scope="repository:team/app:pull,push"`);

  const reader = await token('repository:team/app:pull,push', basic('reader', 'reader-password-1'));
  assert.deepEqual(reader.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }], 'push is not granted');
  const bearer = { authorization: `Bearer ${reader.token}` };
  assert.equal((await fetch(`${server.endpoint}/v2/team/app/manifests/v1`, { headers: bearer })).status, 200);
  const push = await fetch(`${server.endpoint}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: bearer });
  assert.equal(push.status, 403, 'not allowed by any policy: DENIED, no token would help');
  const other = await fetch(`${server.endpoint}/v2/public/app/manifests/v1`, { headers: bearer });
  assert.equal(other.status, 401, 'allowed (public), but outside this token: ask for one with that scope');
  assert.match(other.headers.get('www-authenticate') ?? '', /scope="repository:public\/app:pull"/);
});

test('anonymous tokens carry what anonymous may do; wrong credentials get no token', async () => {
  const anonymous = await token('repository:public/app:pull');
  assert.deepEqual(anonymous.access, [{ type: 'repository', name: 'public/app', actions: ['pull'] }]);
  assert.equal((await fetch(`${server.endpoint}/v2/public/app/manifests/v1`, { headers: { authorization: `Bearer ${anonymous.token}` } })).status, 200);
  const none = await token('repository:team/app:pull');
  assert.deepEqual(none.access, []);
  const wrong = await fetch(`${server.endpoint}/v2/token?service=astore&scope=repository:team/app:pull`, { headers: { authorization: basic('reader', 'wrong') } });
  assert.equal(wrong.status, 401);
});

test('a forged or altered token is refused', async () => {
  const { token: good } = await token('repository:team/app:pull', basic(accessKeyId, secretKey));
  const [h, p, s] = good.split('.');
  const widened = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), access: [{ type: 'repository', name: 'team/app', actions: ['push'] }] })).toString('base64url');
  const res = await fetch(`${server.endpoint}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${h}.${widened}.${s}` } });
  assert.equal(res.status, 401);
});
