import assert from 'node:assert/strict';
import { randomBytes, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { blobKey } from '../../packages/server/src/core/content.ts';
import type { GcReport } from '../../packages/server/src/core/gc.ts';
import { type ApiAnswer, apiCall } from '../helpers/api.ts';
import { sharedBackendConfig } from '../helpers/backend.ts';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { bytesOf, md5Etag, multipartEtag, sdkClient } from '../helpers/sdk-js.ts';
import { accessKeyId, secretKey, startServer, type TestServer } from '../helpers/server.ts';

/**
 * Two astore processes (in-process servers here) sharing one PostgreSQL database and one MinIO bucket,
 * and what docs/replicas.md says replicas must share besides: the server key, the root credentials and
 * the signing-key directory. Whatever a client starts on one replica it can continue on the other:
 * objects, multipart uploads, registry upload sessions, manifests, users, keys and policies (after
 * the other replica's identity cache catches up, about a second), signing keys, the audit log. Garbage
 * collection asked of both at once runs on one (the `gc` lease) and removes only garbage.
 *
 * The tests run in order and build on each other, as a client going back and forth would.
 */
const graceSeconds = 1;
let a: TestServer;
let b: TestServer;
let keysDir: string;
let s3a: S3Client;
let s3b: S3Client;
let registryA: RegistryHttp;
let registryB: RegistryHttp;

/** Everything the tests stored and expect to survive garbage collection. */
const live = {
  objects: new Map<string, Buffer>(),
  multipart: { key: 'big/object.bin', bytes: Buffer.alloc(0) },
  image: { repository: 'team/app', tag: 'v1', layer: Buffer.alloc(0) },
  signature: { recordId: '', document: '' },
};

before(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'astore-replicas-keys-'));
  const shared = {
    ...(await sharedBackendConfig()),
    // startServer merges top-level sections as they are: these replace its auth and gc sections whole.
    auth: { rootAccessKey: accessKeyId, rootSecretKey: secretKey, serverKey: randomBytes(32).toString('base64') },
    // The file key provider's directory on storage both reach (a shared volume, in production).
    supplychain: { keys: { path: keysDir } },
    gc: { enabled: false, graceSeconds },
  };
  a = await startServer(shared);
  b = await startServer(shared);
  s3a = sdkClient(a.endpoint);
  s3b = sdkClient(b.endpoint);
  registryA = new RegistryHttp(a.endpoint);
  registryB = new RegistryHttp(b.endpoint);
});

after(async () => {
  s3a?.destroy();
  s3b?.destroy();
  await Promise.all([a?.stop(), b?.stop()]);
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

/**
 * Polls `probe` until it returns a value (not undefined), for changes that reach the other replica
 * through a cache refreshed about every second; fails after `timeoutMs` with what the last probe saw.
 */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'no value';
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? `${last.name}: ${last.message}` : String(last)})`);
    await delay(50);
  }
}

function expectStatus(answer: ApiAnswer | Response, status: number, what: string): void {
  assert.equal(answer.status, status, answer instanceof Response ? what : `${what}: ${answer.text}`);
}

test('objects written through A read back byte for byte, with their metadata, and list through B', async () => {
  await s3a.send(new CreateBucketCommand({ Bucket: 'shared' }));
  live.objects.set('docs/readme.txt', Buffer.from('written through replica A\n'));
  live.objects.set('bin/random.bin', randomBytes(1024 * 1024 + 3));
  live.objects.set('empty', Buffer.alloc(0));
  for (const [key, bytes] of live.objects) {
    const put = await s3a.send(new PutObjectCommand({ Bucket: 'shared', Key: key, Body: bytes, ContentType: 'application/x-test', Metadata: { origin: 'replica-a' } }));
    assert.equal(put.ETag, md5Etag(bytes));
  }

  const listed = await s3b.send(new ListObjectsV2Command({ Bucket: 'shared' }));
  assert.deepEqual(
    listed.Contents?.map((object) => [object.Key, object.Size, object.ETag]),
    [...live.objects].sort(([x], [y]) => (x < y ? -1 : 1)).map(([key, bytes]) => [key, bytes.length, md5Etag(bytes)]),
  );
  for (const [key, bytes] of live.objects) {
    const got = await s3b.send(new GetObjectCommand({ Bucket: 'shared', Key: key }));
    assert.ok((await bytesOf(got)).equals(bytes), key);
    assert.equal(got.ContentType, 'application/x-test');
    assert.deepEqual(got.Metadata, { origin: 'replica-a' });
  }
});

test('a multipart upload started on A is listed, continued and completed on B, and reads back on A', async () => {
  const { key } = live.multipart;
  const parts = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(100 * 1024 + 7)];
  live.multipart.bytes = Buffer.concat(parts);
  const { UploadId } = await s3a.send(new CreateMultipartUploadCommand({ Bucket: 'shared', Key: key, ContentType: 'application/x-big', Metadata: { started: 'a' } }));
  assert.ok(UploadId);
  const first = await s3a.send(new UploadPartCommand({ Bucket: 'shared', Key: key, UploadId, PartNumber: 1, Body: parts[0] }));
  assert.equal(first.ETag, md5Etag(parts[0]!));

  const uploads = await s3b.send(new ListMultipartUploadsCommand({ Bucket: 'shared' }));
  assert.deepEqual(uploads.Uploads?.map((upload) => [upload.Key, upload.UploadId]), [[key, UploadId]]);
  const listedParts = await s3b.send(new ListPartsCommand({ Bucket: 'shared', Key: key, UploadId }));
  assert.deepEqual(listedParts.Parts?.map((part) => [part.PartNumber, part.Size, part.ETag]), [[1, parts[0]!.length, first.ETag]]);

  const etags = [first.ETag!];
  for (const [i, body] of parts.slice(1).entries()) {
    etags.push((await s3b.send(new UploadPartCommand({ Bucket: 'shared', Key: key, UploadId, PartNumber: i + 2, Body: body }))).ETag!);
  }
  const completed = await s3b.send(
    new CompleteMultipartUploadCommand({ Bucket: 'shared', Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
  );
  assert.equal(completed.ETag, multipartEtag(parts));

  const got = await s3a.send(new GetObjectCommand({ Bucket: 'shared', Key: key }));
  assert.ok((await bytesOf(got)).equals(live.multipart.bytes), 'the whole object, read on A');
  assert.equal(got.ETag, multipartEtag(parts));
  assert.equal(got.ContentType, 'application/x-big');
  assert.deepEqual(got.Metadata, { started: 'a' });
  assert.deepEqual((await s3a.send(new ListMultipartUploadsCommand({ Bucket: 'shared' }))).Uploads ?? [], []);
});

test('an OCI chunked upload started on A (POST, PATCH) is continued and finished on B (PATCH, PUT); the image pushed on B pulls on A', async () => {
  const { repository, tag } = live.image;
  const layer = randomBytes(300 * 1024);
  live.image.layer = layer;
  const digest = sha256Digest(layer);
  const chunks = [layer.subarray(0, 100_000), layer.subarray(100_000, 250_000), layer.subarray(250_000)];
  const octets = { 'content-type': 'application/octet-stream' };

  const started = await registryA.request('POST', `/v2/${repository}/blobs/uploads/`);
  expectStatus(started, 202, 'POST on A');
  const session = new URL(started.headers.get('location')!, a.endpoint);
  // The session is named by its path alone: the same path on the other replica.
  const path = `${session.pathname}${session.search}`;
  const first = await registryA.request('PATCH', path, { body: chunks[0], headers: { ...octets, 'content-range': `0-${chunks[0]!.length - 1}` } });
  expectStatus(first, 202, 'PATCH on A');
  assert.equal(first.headers.get('range'), `0-${chunks[0]!.length - 1}`);

  const status = await registryB.request('GET', path);
  expectStatus(status, 204, 'upload status on B');
  assert.equal(status.headers.get('range'), `0-${chunks[0]!.length - 1}`, 'B sees the bytes A received');
  const second = await registryB.request('PATCH', path, { body: chunks[1], headers: { ...octets, 'content-range': `${chunks[0]!.length}-${250_000 - 1}` } });
  expectStatus(second, 202, 'PATCH on B');
  assert.equal(second.headers.get('range'), `0-${250_000 - 1}`);
  const finishing = new URL(path, b.endpoint);
  finishing.searchParams.set('digest', digest);
  const finished = await registryB.request('PUT', finishing.toString(), { body: chunks[2], headers: octets });
  expectStatus(finished, 201, 'PUT on B');
  assert.equal(finished.headers.get('docker-content-digest'), digest);

  // pushImage finds the layer by HEAD on B and uploads only the config, then the manifest.
  const pushed = await registryB.pushImage(repository, tag, [layer]);
  assert.deepEqual(pushed.layers, [digest]);
  const pulled = await registryA.pullImage(repository, tag);
  assert.equal(pulled.length, 1);
  assert.ok(pulled[0]!.equals(layer), 'the layer, pulled from A');
  const tags = await registryA.request('GET', `/v2/${repository}/tags/list`);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, [tag]);
});

test('a registry token issued by A is honoured by B (both derive the token key from the shared server key)', async () => {
  const { repository, tag } = live.image;
  const root = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;
  const issued = await fetch(`${a.endpoint}/v2/token?service=astore&scope=${encodeURIComponent(`repository:${repository}:pull`)}`, { headers: { authorization: root } });
  expectStatus(issued, 200, 'token from A');
  const { token } = (await issued.json()) as { token: string };
  const manifest = await fetch(`${b.endpoint}/v2/${repository}/manifests/${tag}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  expectStatus(manifest, 200, 'manifest from B with A’s token');
});

test('a user, access key and policy created on A sign requests on B once its cache catches up; a key revoked on A stops working on B', async (t) => {
  expectStatus(await apiCall(a.endpoint, 'POST', '/api/v1/users', { name: 'dana' }), 201, 'create user on A');
  const created = await apiCall(a.endpoint, 'POST', '/api/v1/users/dana/access-keys', { description: 'replicas' });
  expectStatus(created, 201, 'create access key on A');
  const key = created.json as { accessKeyId: string; secretAccessKey: string };
  const policy = await apiCall(a.endpoint, 'PUT', '/api/v1/policies/dana-shared', {
    statements: [{ effect: 'allow', principals: ['user:dana'], actions: ['s3:*'], resources: ['s3:shared', 's3:shared/dana/*'] }],
  });
  expectStatus(policy, 201, 'put policy on A');

  const dana = sdkClient(b.endpoint, { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey } });
  try {
    const bytes = Buffer.from('dana, through B');
    const since = Date.now();
    await eventually('dana’s key and policy on B', async () => {
      await dana.send(new PutObjectCommand({ Bucket: 'shared', Key: 'dana/note.txt', Body: bytes }));
      return true;
    });
    t.diagnostic(`B accepted the key ${Date.now() - since} ms after A stored the policy`);
    live.objects.set('dana/note.txt', bytes);
    assert.ok((await bytesOf(await s3a.send(new GetObjectCommand({ Bucket: 'shared', Key: 'dana/note.txt' })))).equals(bytes));
    await assert.rejects(dana.send(new PutObjectCommand({ Bucket: 'shared', Key: 'elsewhere.txt', Body: 'x' })), (err: Error) => err.name === 'AccessDenied');

    expectStatus(await apiCall(a.endpoint, 'POST', `/api/v1/access-keys/${key.accessKeyId}/revoke`), 200, 'revoke on A');
    const revokedAt = Date.now();
    const refusal = await eventually('the revoked key refused on B', async () => {
      try {
        await bytesOf(await dana.send(new GetObjectCommand({ Bucket: 'shared', Key: 'dana/note.txt' })));
        return undefined;
      } catch (err) {
        return (err as Error).name;
      }
    });
    assert.equal(refusal, 'InvalidAccessKeyId');
    t.diagnostic(`B refused the key ${Date.now() - revokedAt} ms after A revoked it`);
  } finally {
    dana.destroy();
  }
});

test('the audit log read on B has the changes made through A, in order', async () => {
  const answer = await apiCall(b.endpoint, 'GET', '/api/v1/audit?action=admin:*&principal=root');
  expectStatus(answer, 200, 'audit on B');
  const entries = (answer.json as { entries: { action: string; resource: string; outcome: string }[] }).entries.map((e) => `${e.action} ${e.resource} ${e.outcome}`);
  const made = [
    'admin:CreateUser api:users/dana success',
    'admin:CreateAccessKey api:users/dana success',
    'admin:PutPolicy api:policies/dana-shared success',
    'admin:RevokeAccessKey api:access-keys/',
  ];
  const positions = made.map((change) => entries.findIndex((entry) => entry.startsWith(change)));
  assert.ok(positions.every((p) => p >= 0), `missing from ${entries.join('\n')}`);
  assert.deepEqual([...positions].sort((x, y) => x - y), positions, 'in the order they were made');
  const buckets = await apiCall(b.endpoint, 'GET', '/api/v1/audit?action=s3:CreateBucket');
  assert.ok((buckets.json as { entries: { resource: string }[] }).entries.some((e) => e.resource === 's3:shared'), 'the bucket created through A');
});

test('a signing key created on A signs on B (supplychain.keys.path on shared storage)', async () => {
  expectStatus(await apiCall(a.endpoint, 'PUT', '/api/v1/supplychain/keys/release', {}), 201, 'create key on A');
  const target = 'bucket=shared&key=docs/readme.txt';
  const signed = await eventually('the key known on B', async () => {
    const answer = await apiCall(b.endpoint, 'POST', `/api/v1/supplychain/signatures?${target}`, { key: 'release' });
    return answer.status === 201 ? (answer.json as { key: string; publicKey: string; signature: string; records: { id: string }[] }) : undefined;
  });
  assert.equal(signed.key, 'release/1');
  const document = live.objects.get('docs/readme.txt')!;
  assert.ok(verify('sha256', document, signed.publicKey, Buffer.from(signed.signature, 'base64')), 'an ECDSA P-256 signature over the object');
  live.signature = { recordId: signed.records[0]!.id, document: signed.signature };
  const records = await apiCall(a.endpoint, 'GET', `/api/v1/supplychain/records?${target}`);
  assert.deepEqual(
    (records.json as { records: { id: string }[] }).records.map((record) => record.id),
    [live.signature.recordId],
  );
});

test('GC asked of both replicas at once runs on one, the other skips for the lease; garbage goes, nothing live is lost', async (t) => {
  const doomed = randomBytes(64 * 1024);
  await s3a.send(new PutObjectCommand({ Bucket: 'shared', Key: 'doomed.bin', Body: doomed }));
  await s3b.send(new DeleteObjectCommand({ Bucket: 'shared', Key: 'doomed.bin' }));
  const doomedKey = blobKey(sha256Digest(doomed));
  assert.ok(await a.app.blobs.stat(doomedKey), 'the bytes are there before the pass');
  // Unreferenced blobs are kept for the grace period: let it pass (a clock, not a cache, to wait for).
  await delay(graceSeconds * 1000 + 200);

  const holders = new Map([
    [a.endpoint, a.app.gc.holder],
    [b.endpoint, b.app.gc.holder],
  ]);
  const reports: GcReport[] = [];
  let skippedOnce = false;
  // Both requests arrive within a few ms and a pass lasts longer, so the first round normally meets;
  // a round where one pass ended before the other began is legitimate, and is tried again.
  for (let round = 0; round < 5 && !skippedOnce; round++) {
    const answers = await Promise.all([a.endpoint, b.endpoint].map((endpoint) => apiCall(endpoint, 'POST', '/api/v1/gc/runs')));
    const [fromA, fromB] = answers.map((answer) => {
      expectStatus(answer, 200, 'POST /api/v1/gc/runs');
      return answer.json as GcReport;
    }) as [GcReport, GcReport];
    assert.notDeepEqual([fromA.outcome, fromB.outcome], ['skipped', 'skipped'], 'one of them ran');
    for (const [report, other] of [
      [fromA, b.endpoint],
      [fromB, a.endpoint],
    ] as const) {
      assert.ok(report.outcome === 'ran' || report.outcome === 'skipped', report.outcome);
      if (report.outcome === 'skipped') {
        skippedOnce = true;
        assert.equal(report.heldBy?.holder, holders.get(other), 'the lease was the other replica’s');
        assert.equal(report.deletedBlobs, 0);
      }
    }
    reports.push(fromA, fromB);
  }
  assert.ok(skippedOnce, `no pass skipped for the lease in ${reports.length / 2} rounds: ${JSON.stringify(reports)}`);
  t.diagnostic(`outcomes per round (A, B): ${JSON.stringify(reports.map((report) => report.outcome))}`);
  assert.ok(reports.reduce((sum, report) => sum + report.deletedBlobs, 0) >= 1, 'garbage was collected');
  assert.equal(await b.app.blobs.stat(doomedKey), null, 'the deleted object’s bytes are gone from the shared bucket');
  assert.equal(await a.app.meta.leases.get('gc'), null, 'the lease is released after the pass');

  // Everything live, through both replicas.
  for (const [endpoint, s3] of [
    ['A', s3a],
    ['B', s3b],
  ] as const) {
    for (const [key, bytes] of live.objects) {
      assert.ok((await bytesOf(await s3.send(new GetObjectCommand({ Bucket: 'shared', Key: key })))).equals(bytes), `${key} on ${endpoint}`);
    }
    const multipart = await s3.send(new GetObjectCommand({ Bucket: 'shared', Key: live.multipart.key }));
    assert.ok((await bytesOf(multipart)).equals(live.multipart.bytes), `the multipart object on ${endpoint}`);
  }
  for (const registry of [registryA, registryB]) {
    const [layer] = await registry.pullImage(live.image.repository, live.image.tag);
    assert.ok(layer?.equals(live.image.layer), `the image from ${registry.endpoint}`);
  }
  const content = await apiCall(b.endpoint, 'GET', `/api/v1/supplychain/records/${live.signature.recordId}/content`);
  expectStatus(content, 200, 'the signature record’s document');
  assert.equal(content.text, live.signature.document);
});
