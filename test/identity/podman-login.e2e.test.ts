import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTool, run } from '../helpers/clients.ts';
import { accessKeyId, secretKey, startServer, type TestServer } from '../helpers/server.ts';

/**
 * `podman login` (Debian's podman) through the registry's Bearer token flow: with an access key, with a
 * user's password; a wrong password is refused.
 */
let server: TestServer;
let work: string;

before(async () => {
  server = await startServer();
  work = await mkdtemp(join(tmpdir(), 'astore-podman-'));
  const root = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;
  const res = await fetch(`${server.endpoint}/api/v1/users`, {
    method: 'POST',
    headers: { authorization: root, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'erin', password: 'erin-password-1' }),
  });
  assert.equal(res.status, 201);
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('podman login works with an access key and with a password, and refuses a wrong one', async () => {
  const podman = requireTool('ASTORE_TEST_PODMAN');
  const env = { PATH: process.env.PATH, HOME: work, XDG_RUNTIME_DIR: work, REGISTRY_AUTH_FILE: join(work, 'auth.json') };
  const registry = `127.0.0.1:${server.port}`;
  const login = (user: string, password: string) =>
    run(podman, ['login', '--tls-verify=false', '--username', user, '--password-stdin', registry], { env, input: password, timeoutMs: 60_000 });

  const byKey = await login(accessKeyId, secretKey);
  assert.equal(byKey.code, 0, byKey.stderr);
  assert.match(byKey.stdout, /Login Succeeded/);
  const byPassword = await login('erin', 'erin-password-1');
  assert.equal(byPassword.code, 0, byPassword.stderr);
  const wrong = await login('erin', 'not-erins-password');
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /invalid username\/password|unauthorized/i);
});
