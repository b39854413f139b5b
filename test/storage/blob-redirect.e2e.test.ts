import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startMinio, type MinioServer } from '../helpers/minio.ts';
import { basicAuth } from '../helpers/oci.ts';
import { RegistryHttp } from '../helpers/registry-http.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/**
 * On the S3 driver with presigned GETs enabled, a registry blob download at or above
 * oci.redirectBlobsAboveBytes answers 307 to a presigned URL of the backend (the bytes do not pass
 * through astore); smaller blobs, HEAD and ranged GETs are served as before.
 */
let minio: MinioServer;
let server: TestServer;
let registry: RegistryHttp;

before(async () => {
  minio = await startMinio();
  const bucket = await minio.createBucket();
  server = await startServer({
    storage: {
      blob: {
        driver: 's3',
        s3: { endpoint: minio.endpoint, region: minio.region, bucket, forcePathStyle: true, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey, presignedGetSeconds: 120 },
      },
    },
    oci: { redirectBlobsAboveBytes: 64 * 1024 },
  });
  registry = new RegistryHttp(server.endpoint);
});

after(async () => {
  await server?.stop();
  await minio?.stop();
});

test('a large registry blob redirects to the backend; a small one, HEAD and ranges are served directly', async () => {
  const large = randomBytes(256 * 1024);
  const small = randomBytes(1024);
  const { layers } = await registry.pushImage('redirect/app', 'v1', [large, small]);
  const [largeDigest, smallDigest] = layers as [string, string];

  const redirected = await registry.request('GET', `/v2/redirect/app/blobs/${largeDigest}`);
  // fetch follows redirects by default: the bytes arrived, from MinIO.
  assert.equal(redirected.status, 200);
  assert.equal(redirected.url.startsWith(minio.endpoint), true, `served from ${redirected.url}`);
  assert.equal(`sha256:${createHash('sha256').update(Buffer.from(await redirected.arrayBuffer())).digest('hex')}`, largeDigest);

  const manual = await fetch(`${server.endpoint}/v2/redirect/app/blobs/${largeDigest}`, { redirect: 'manual', headers: { authorization: basicAuth() } });
  assert.equal(manual.status, 307);
  assert.match(manual.headers.get('location') ?? '', /X-Amz-Signature=/);
  assert.equal(manual.headers.get('docker-content-digest'), largeDigest);

  const direct = await registry.request('GET', `/v2/redirect/app/blobs/${smallDigest}`);
  assert.equal(direct.status, 200);
  assert.equal(direct.url.startsWith(server.endpoint), true, 'a small blob is served by astore');
  const head = await registry.request('HEAD', `/v2/redirect/app/blobs/${largeDigest}`);
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(large.length));
  const ranged = await registry.request('GET', `/v2/redirect/app/blobs/${largeDigest}`, { headers: { range: 'bytes=0-9' } });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), large.subarray(0, 10));

  // A registry client pulls the image through the redirect.
  assert.deepEqual(await registry.pullImage('redirect/app', 'v1'), [large, small]);
});
