import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.ts';

/**
 * Upload sessions live in the metadata store: a chunked upload started before a crash (SIGKILL) is
 * continued after the restart, and the blob it produces is the one the client hashed.
 */
let dataDir: string | undefined;
let server: ServerProcess | undefined;

after(async () => {
  await server?.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test('a chunked upload continues after the server is killed and restarted', { timeout: 90_000 }, async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'astore-oci-restart-'));
  const port = await freePort();
  server = await spawnServer(dataDir, port);
  const registry = new RegistryHttp(server.endpoint);
  // By default nothing is anonymous, not even the base endpoint clients probe first.
  const anonymous = await fetch(`${server.endpoint}/v2/`);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="astore"$/);
  const blob = randomBytes(3 * 1024 * 1024 + 17);
  const digest = sha256Digest(blob);
  const first = blob.subarray(0, 2 * 1024 * 1024);
  const rest = blob.subarray(first.length);

  const start = await registry.request('POST', '/v2/restart/app/blobs/uploads/');
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, server.endpoint);
  const patch = await registry.request('PATCH', location.toString(), {
    body: first,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` },
  });
  assert.equal(patch.status, 202, await patch.text());
  assert.equal(patch.headers.get('range'), `0-${first.length - 1}`);

  await server.kill('SIGKILL');
  server = await spawnServer(dataDir, port);

  const status = await registry.request('GET', location.toString());
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), `0-${first.length - 1}`, 'the session kept its offset');
  // A chunk that does not continue the upload is refused with the current range.
  const wrong = await registry.request('PATCH', location.toString(), {
    body: rest,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${rest.length - 1}` },
  });
  assert.equal(wrong.status, 416);
  assert.equal(wrong.headers.get('range'), `0-${first.length - 1}`);

  const finish = new URL(location);
  finish.searchParams.set('digest', digest);
  const put = await registry.request('PUT', finish.toString(), {
    body: rest,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${blob.length - 1}` },
  });
  assert.equal(put.status, 201, await put.text());
  assert.equal(put.headers.get('docker-content-digest'), digest);

  const get = await registry.request('GET', `/v2/restart/app/blobs/${digest}`);
  assert.equal(get.status, 200);
  assert.ok(Buffer.from(await get.arrayBuffer()).equals(blob), 'the assembled blob has the client\'s bytes');
  const gone = await registry.request('GET', location.toString());
  assert.equal(gone.status, 404, 'the completed session is gone');
  assert.equal(((await gone.json()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
});
