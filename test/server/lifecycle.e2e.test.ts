import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, repoRoot, spawnServer, type ServerProcess } from '../helpers/server.ts';
import { signRequest } from '../helpers/sign.ts';

const dirs: string[] = [];
const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'astore-life-'));
  dirs.push(d);
  return d;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('without configured credentials the server generates them once, mode 0600, and says where', async () => {
  const dataDir = await tempDir();
  const port = await freePort();
  const noCreds = { ASTORE_AUTH__ROOT_ACCESS_KEY: undefined, ASTORE_AUTH__ROOT_SECRET_KEY: undefined };
  const first = await spawnServer(dataDir, port, noCreds);
  servers.push(first);
  const file = join(dataDir, 'root-credentials.json');
  await until(() => first.stderr().includes(file));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const creds = JSON.parse(await readFile(file, 'utf8')) as { accessKeyId: string; secretKey: string };
  assert.ok(first.stderr().includes(creds.accessKeyId));
  assert.ok(!first.stderr().includes(creds.secretKey), 'the secret itself is not printed');

  const host = `127.0.0.1:${port}`;
  const headers = await signRequest(host, { method: 'GET', path: '/' }, creds);
  assert.equal((await fetch(`${first.endpoint}/`, { headers })).status, 200);
  await first.kill('SIGTERM');

  const second = await spawnServer(dataDir, port, noCreds);
  servers.push(second);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), creds);
  const again = await signRequest(host, { method: 'GET', path: '/' }, creds);
  assert.equal((await fetch(`${second.endpoint}/`, { headers: again })).status, 200);
  await second.kill('SIGTERM');
});

test('SIGTERM lets an in-flight upload finish, then the process exits', async () => {
  const dataDir = await tempDir();
  const port = await freePort();
  const server = await spawnServer(dataDir, port);
  servers.push(server);
  const host = `127.0.0.1:${port}`;
  assert.equal((await fetch(`${server.endpoint}/b`, { method: 'PUT', headers: await signRequest(host, { method: 'PUT', path: '/b' }) })).status, 200);

  const chunk = Buffer.alloc(64 * 1024, 7);
  const chunks = 24;
  const body = Buffer.concat(Array.from({ length: chunks }, () => chunk));
  const headers = await signRequest(host, { method: 'PUT', path: '/b/slow', body });
  const exited = new Promise<number | null>((r) => server.child.once('exit', (code) => r(code)));
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/b/slow', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      if (sent === chunks) return req.end();
      req.write(chunk);
      sent++;
      if (sent === 4) server.child.kill('SIGTERM'); // mid-upload
      setTimeout(pump, 40);
    };
    pump();
  });
  assert.equal(status, 200, 'the in-flight upload completed');
  assert.equal(await exited, 0, 'the server exited cleanly after finishing');

  const restarted = await spawnServer(dataDir, port);
  servers.push(restarted);
  const get = await fetch(`${restarted.endpoint}/b/slow`, { headers: await signRequest(host, { method: 'GET', path: '/b/slow' }) });
  assert.equal(get.status, 200);
  assert.ok(Buffer.from(await get.arrayBuffer()).equals(body));
  await restarted.kill('SIGTERM');
});

test('an unknown configuration key stops start-up with its name', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'packages/server/src/main.ts'), 'serve'], {
    cwd: repoRoot,
    env: { ...process.env, ASTORE_SERVER__PROT: '1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unknown key: server\.prot/);
});
