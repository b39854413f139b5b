import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { accessKeyId, startServer, type TestServer } from '../helpers/server.ts';

/**
 * Bad input and authentication on the registry: each refusal is the distribution spec's JSON error
 * with the status and code it names, and leaves nothing behind.
 */
let server: TestServer;
let registry: RegistryHttp;

before(async () => {
  server = await startServer({ oci: { anonymousPullRepositories: ['public/*'], maxManifestBytes: 64 * 1024 } });
  registry = new RegistryHttp(server.endpoint);
});

after(async () => {
  await server?.stop();
});

async function expectError(res: Response, status: number, code: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = JSON.parse(text) as { errors: { code: string; message: string }[] };
  assert.equal(body.errors[0]?.code, code, text);
  assert.ok(body.errors[0]!.message.length > 0);
  return body.errors[0]!.message;
}

const manifestOf = (config: string, layers: string[] = []) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: layers.map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: 1 })),
  });

const putManifest = (repository: string, reference: string, body: string, contentType = 'application/vnd.oci.image.manifest.v1+json') =>
  registry.request('PUT', `/v2/${repository}/manifests/${reference}`, { body, headers: { 'content-type': contentType } });

describe('authentication', () => {
  test('no credentials: 401 UNAUTHORIZED with a Bearer challenge for the scope the request needs', async () => {
    const res = await fetch(`${server.endpoint}/v2/private/app/tags/list`);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${server.endpoint}/v2/token",service="astore",scope="repository:private/app:pull"`);
    await expectError(res, 401, 'UNAUTHORIZED');
    // With anonymous pulls configured the base endpoint answers anyone, so clients may go on without credentials.
    assert.equal((await fetch(`${server.endpoint}/v2/`)).status, 200);
  });

  test('a wrong secret is refused, never downgraded to anonymous', async () => {
    const auth = `Basic ${Buffer.from(`${accessKeyId}:wrong`).toString('base64')}`;
    const res = await fetch(`${server.endpoint}/v2/public/app/tags/list`, { headers: { authorization: auth } });
    await expectError(res, 401, 'UNAUTHORIZED');
  });

  test('anonymous pulls only where configured, and never pushes', async () => {
    await registry.pushImage('public/app', 'v1', [randomBytes(100)]);
    const tags = await fetch(`${server.endpoint}/v2/public/app/tags/list`);
    assert.equal(tags.status, 200);
    assert.deepEqual(await tags.json(), { name: 'public/app', tags: ['v1'] });
    assert.equal((await fetch(`${server.endpoint}/v2/public/app/manifests/v1`)).status, 200);
    await expectError(await fetch(`${server.endpoint}/v2/public/app/blobs/uploads/`, { method: 'POST' }), 401, 'UNAUTHORIZED');
    await expectError(await fetch(`${server.endpoint}/v2/public/app/manifests/v1`, { method: 'DELETE' }), 401, 'UNAUTHORIZED');
    await expectError(await fetch(`${server.endpoint}/v2/_catalog`), 401, 'UNAUTHORIZED');
  });
});

describe('names and digests', () => {
  test('invalid repository names are NAME_INVALID', async () => {
    for (const name of ['Upper/case', 'a/.hidden', 'a//b', '-lead', 'a/b_', `${'a'.repeat(256)}`]) {
      await expectError(await registry.request('GET', `/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    }
    // Percent-encoded traversal decodes to an invalid name, never to a path.
    await expectError(await registry.request('GET', '/v2/a%2F..%2F..%2Fetc/tags/list'), 400, 'NAME_INVALID');
  });

  test('invalid or unsupported digests are DIGEST_INVALID', async () => {
    await expectError(await registry.request('GET', '/v2/bad/app/blobs/sha256:abc'), 400, 'DIGEST_INVALID');
    const message = await expectError(await registry.request('GET', `/v2/bad/app/blobs/md5:${'a'.repeat(32)}`), 400, 'DIGEST_INVALID');
    assert.match(message, /unsupported digest algorithm "md5"/);
    await expectError(await registry.request('GET', `/v2/bad/app/blobs/sha256:${'A'.repeat(64)}`), 400, 'DIGEST_INVALID');
  });

  test('unknown things are 404 with their own codes', async () => {
    await expectError(await registry.request('GET', `/v2/bad/app/blobs/sha256:${'0'.repeat(64)}`), 404, 'BLOB_UNKNOWN');
    await expectError(await registry.request('GET', '/v2/bad/app/manifests/nope'), 404, 'MANIFEST_UNKNOWN');
    await expectError(await registry.request('GET', '/v2/never/pushed/tags/list'), 404, 'NAME_UNKNOWN');
    await expectError(await registry.request('PATCH', '/v2/bad/app/blobs/uploads/00000000-0000-0000-0000-000000000000', { body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('uploads', () => {
  test('a wrong digest is DIGEST_INVALID and links nothing', async () => {
    const bytes = randomBytes(1000);
    const wrong = sha256Digest(randomBytes(10));
    await expectError(await registry.request('POST', `/v2/bad/up/blobs/uploads/?digest=${wrong}`, { body: bytes }), 400, 'DIGEST_INVALID');
    await expectError(await registry.request('GET', `/v2/bad/up/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await registry.request('HEAD', `/v2/bad/up/blobs/${sha256Digest(bytes)}`)).status, 404);
  });

  test('a Content-Length that disagrees with Content-Range is SIZE_INVALID', async () => {
    const start = await registry.request('POST', '/v2/bad/up/blobs/uploads/');
    const location = new URL(start.headers.get('location')!, server.endpoint).toString();
    await expectError(
      await registry.request('PATCH', location, { body: Buffer.alloc(10), headers: { 'content-range': '0-19' } }),
      400,
      'SIZE_INVALID',
    );
    const status = await registry.request('GET', location);
    assert.equal(status.headers.get('range'), '0-0', 'nothing was appended');
  });

  test('a cancelled upload is gone', async () => {
    const start = await registry.request('POST', '/v2/bad/up/blobs/uploads/');
    const location = new URL(start.headers.get('location')!, server.endpoint).toString();
    assert.equal((await registry.request('DELETE', location)).status, 204);
    await expectError(await registry.request('GET', location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('manifests', () => {
  test('a manifest naming a blob the repository lacks is MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = sha256Digest(Buffer.from('{}'));
    const message = await expectError(await putManifest('bad/man', 'v1', manifestOf(missing)), 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.match(message, new RegExp(missing));
    await expectError(await registry.request('GET', '/v2/bad/man/manifests/v1'), 404, 'MANIFEST_UNKNOWN');
  });

  test('malformed manifests are MANIFEST_INVALID naming the problem', async () => {
    const config = await registry.pushBlob('bad/man', Buffer.from('{}'));
    assert.match(await expectError(await putManifest('bad/man', 'v1', '{not json'), 400, 'MANIFEST_INVALID'), /not JSON/);
    assert.match(await expectError(await putManifest('bad/man', 'v1', JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] })), 400, 'MANIFEST_INVALID'), /config/);
    assert.match(
      await expectError(await putManifest('bad/man', 'v1', manifestOf(config), 'application/vnd.oci.image.index.v1+json'), 400, 'MANIFEST_INVALID'),
      /differs from its Content-Type/,
    );
    assert.match(
      await expectError(await putManifest('bad/man', 'v1', JSON.stringify({ schemaVersion: 1, name: 'x' }), 'application/vnd.docker.distribution.manifest.v1+json'), 400, 'MANIFEST_INVALID'),
      /unsupported manifest media type/,
    );
  });

  test('a manifest pushed by a digest it does not have is DIGEST_INVALID', async () => {
    const config = await registry.pushBlob('bad/man', Buffer.from('{}'));
    await expectError(await putManifest('bad/man', sha256Digest(Buffer.from('other')), manifestOf(config)), 400, 'DIGEST_INVALID');
  });

  test('a manifest over the size limit is 413 SIZE_INVALID', async () => {
    const config = await registry.pushBlob('bad/man', Buffer.from('{}'));
    const huge = JSON.parse(manifestOf(config)) as Record<string, unknown>;
    huge.annotations = { padding: 'x'.repeat(70 * 1024) };
    await expectError(await putManifest('bad/man', 'big', JSON.stringify(huge)), 413, 'SIZE_INVALID');
  });

  test('invalid tags are refused', async () => {
    const config = await registry.pushBlob('bad/man', Buffer.from('{}'));
    await expectError(await putManifest('bad/man', '.hidden', manifestOf(config)), 400, 'MANIFEST_INVALID');
    await expectError(await putManifest('bad/man', 'x'.repeat(129), manifestOf(config)), 400, 'MANIFEST_INVALID');
  });

  test('unsupported methods are UNSUPPORTED', async () => {
    await expectError(await registry.request('POST', '/v2/bad/man/manifests/v1'), 405, 'UNSUPPORTED');
  });
});
