import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { bytesOf, sdkClient } from '../helpers/sdk-js.ts';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** One content-addressed store under both protocols: the same bytes are one stored blob. */
let server: TestServer;
let s3: S3Client;
let registry: RegistryHttp;

before(async () => {
  server = await startServer();
  s3 = sdkClient(server.endpoint);
  registry = new RegistryHttp(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: 'artifacts' }));
});

after(async () => {
  s3?.destroy();
  await server?.stop();
});

/** Every blob the store holds (`<algorithm>:<hex>`), listed through the BlobStore: any driver. */
async function storedBlobs(): Promise<string[]> {
  const found: string[] = [];
  for await (const { key } of server.app.blobs.list('blobs/')) {
    const [, algorithm, , hex] = key.split('/');
    found.push(`${algorithm}:${hex}`);
  }
  return found.sort();
}

async function references(digest: string): Promise<{ storedAs: string; references: { objects: unknown[]; layers: unknown[] } }> {
  const res = await registry.request('GET', `/api/v1/blobs/${digest}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { storedAs: string; references: { objects: unknown[]; layers: unknown[] } };
}

test('an S3 PUT of a pushed layer\'s bytes adds no blob, and both reads return them', async () => {
  const layer = randomBytes(300_000);
  const digest = sha256Digest(layer);
  await registry.pushImage('dedupe/app', 'v1', [layer]);
  const before = await storedBlobs();
  assert.ok(before.includes(digest), `the layer is stored once as ${digest}`);

  await s3.send(new PutObjectCommand({ Bucket: 'artifacts', Key: 'releases/app-layer.tar', Body: layer }));
  assert.deepEqual(await storedBlobs(), before, 'the S3 PUT stored no new blob');

  const refs = await references(digest);
  assert.equal(refs.storedAs, digest);
  assert.deepEqual(refs.references.objects, [{ bucket: 'artifacts', key: 'releases/app-layer.tar' }]);
  assert.deepEqual(refs.references.layers, [{ repository: 'dedupe/app', digest }]);

  const object = await s3.send(new GetObjectCommand({ Bucket: 'artifacts', Key: 'releases/app-layer.tar' }));
  assert.ok((await bytesOf(object)).equals(layer));
  const [pulled] = await registry.pullImage('dedupe/app', 'v1');
  assert.ok(pulled!.equals(layer));
});

test('an OCI push of an S3 object\'s bytes adds no blob', async () => {
  const bytes = randomBytes(200_000);
  const digest = sha256Digest(bytes);
  await s3.send(new PutObjectCommand({ Bucket: 'artifacts', Key: 'models/model.bin', Body: bytes }));
  const before = await storedBlobs();

  // The repository has never seen the blob: the client uploads it, and the store keeps the one copy.
  const head = await registry.request('HEAD', `/v2/dedupe/model/blobs/${digest}`);
  assert.equal(head.status, 404);
  const image = await registry.pushImage('dedupe/model', 'latest', [bytes]);
  const added = (await storedBlobs()).filter((blob) => !before.includes(blob));
  assert.equal(added.length, 1, `only the image config is new (${added.join(', ')})`);
  assert.ok(!added.includes(digest));
  assert.equal(image.layers[0], digest);
  assert.equal((await references(digest)).references.layers.length, 1);
});

test('a sha512 registry digest names the same stored sha256 blob', async () => {
  const bytes = randomBytes(50_000);
  const { createHash } = await import('node:crypto');
  const sha512 = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
  const res = await registry.request('POST', `/v2/dedupe/sha512/blobs/uploads/?digest=${sha512}`, { body: bytes });
  assert.equal(res.status, 201, await res.text());
  await s3.send(new PutObjectCommand({ Bucket: 'artifacts', Key: 'sha512.bin', Body: bytes }));
  const refs = await references(sha512);
  assert.equal(refs.storedAs, sha256Digest(bytes));
  assert.equal(refs.references.objects.length, 1);
  assert.deepEqual(refs.references.layers, [{ repository: 'dedupe/sha512', digest: sha512 }]);
});

test('the references API needs credentials and answers problem JSON', async () => {
  const anonymous = await fetch(`${server.endpoint}/api/v1/blobs/sha256:${'0'.repeat(64)}`);
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic /);
  const missing = await registry.request('GET', `/api/v1/blobs/sha256:${'0'.repeat(64)}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('content-type'), 'application/problem+json');
  const problem = (await missing.json()) as { status: number; title: string; code: string };
  assert.equal(problem.status, 404);
  assert.equal(problem.code, 'BlobUnknown');
  const invalid = await registry.request('GET', '/api/v1/blobs/md5:abc');
  assert.equal(invalid.status, 400);
});
