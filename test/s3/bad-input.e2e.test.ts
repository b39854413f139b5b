import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { startServer, type TestServer } from '../helpers/server.ts';
import { signRequest, type RawRequest } from '../helpers/sign.ts';
import { errorTable } from '../../packages/server/src/core/errors.ts';
import { blobKey } from '../../packages/server/src/core/content.ts';

let server: TestServer;
let host: string;

async function send(req: RawRequest, sign = true, signOptions: Parameters<typeof signRequest>[2] = {}) {
  const headers = sign ? await signRequest(host, req, signOptions) : { ...req.headers };
  const qs = new URLSearchParams(req.query ?? {}).toString();
  // node:http sends the path exactly as given (fetch would resolve '..' segments).
  const res = await new Promise<{ status: number; text: string; headers: Headers }>((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port: server.port, method: req.method, path: `${req.path}${qs ? `?${qs}` : ''}`, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(response.headers)) if (typeof v === 'string') h.set(k, v);
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString(), headers: h });
      });
    });
    r.on('error', reject);
    r.end(req.body);
  });
  return { ...res, code: /<Code>([^<]+)<\/Code>/.exec(res.text)?.[1] };
}

before(async () => {
  server = await startServer({ s3: { anonymousReadBuckets: ['public'] } });
  host = `127.0.0.1:${server.port}`;
  for (const bucket of ['b', 'public']) assert.equal((await send({ method: 'PUT', path: `/${bucket}` })).status, 200);
});
after(async () => server?.stop());

describe('bad input gets the S3 error, never a 500, and stores nothing', () => {
  test('an unsigned request is AccessDenied, with RequestId matching x-amz-request-id', async () => {
    const res = await send({ method: 'GET', path: '/b' }, false);
    assert.equal(res.status, 403);
    assert.equal(res.code, 'AccessDenied');
    const requestId = res.headers.get('x-amz-request-id');
    assert.match(requestId ?? '', /^[0-9A-F]{16}$/);
    assert.ok(res.text.includes(`<RequestId>${requestId}</RequestId>`));
    assert.ok(res.text.includes('<Resource>/b</Resource>'));
  });

  test('anonymous reads only where configured, never writes', async () => {
    await send({ method: 'PUT', path: '/public/readme.txt', body: 'hello' });
    const read = await send({ method: 'GET', path: '/public/readme.txt' }, false);
    assert.equal(read.status, 200);
    assert.equal(read.text, 'hello');
    assert.equal((await send({ method: 'GET', path: '/public' }, false)).status, 200);
    assert.equal((await send({ method: 'PUT', path: '/public/x', body: 'no' }, false)).code, 'AccessDenied');
    assert.equal((await send({ method: 'DELETE', path: '/public/readme.txt' }, false)).code, 'AccessDenied');
    assert.equal((await send({ method: 'GET', path: '/b/readme.txt' }, false)).code, 'AccessDenied');
  });

  test('a wrong secret is SignatureDoesNotMatch and stores nothing', async () => {
    const res = await send({ method: 'PUT', path: '/b/wrong-secret', body: 'x' }, true, { secretKey: 'not-the-secret' });
    assert.equal(res.status, 403);
    assert.equal(res.code, 'SignatureDoesNotMatch');
    assert.equal((await send({ method: 'HEAD', path: '/b/wrong-secret' })).status, 404);
  });

  test('malformed XML bodies', async () => {
    const del = await send({ method: 'POST', path: '/b', query: { delete: '' }, body: '<Delete><Object><Key>a</Key></Object' });
    assert.equal(del.status, 400);
    assert.equal(del.code, 'MalformedXML');
    const wrongRoot = await send({ method: 'POST', path: '/b', query: { delete: '' }, body: '<Nope/>' });
    assert.equal(wrongRoot.code, 'MalformedXML');
    const create = await send({ method: 'PUT', path: '/c-malformed', body: '<CreateBucketConfiguration><LocationConstraint>' });
    assert.equal(create.code, 'MalformedXML');
    assert.equal((await send({ method: 'HEAD', path: '/c-malformed' })).status, 404);
  });

  test('invalid bucket names, reserved names included', async () => {
    for (const name of ['Bad_Name', 'a..b', '192.168.1.1', '-x', 'v2', 'api', 'metrics', 'healthz']) {
      const res = await send({ method: 'PUT', path: `/${name}` });
      assert.equal(res.code, 'InvalidBucketName', name);
      assert.equal(res.status, 400);
    }
  });

  test('keys: too long, NUL, not UTF-8', async () => {
    const long = await send({ method: 'PUT', path: `/b/${'k'.repeat(1025)}`, body: 'x' });
    assert.equal(long.code, 'KeyTooLongError');
    const nul = await send({ method: 'PUT', path: '/b/a%00b', body: 'x' });
    assert.equal(nul.status, 400);
    assert.equal(nul.code, 'InvalidArgument');
    const badUtf8 = await send({ method: 'PUT', path: '/b/a%FFb', body: 'x' });
    assert.equal(badUtf8.status, 400);
  });

  test('keys that look like path traversal are plain keys: nothing is written outside the data dir', async () => {
    for (const key of ['../../escape.txt', '..%2F..%2Fescape2.txt', '/abs/escape3.txt']) {
      const put = await send({ method: 'PUT', path: `/b/${key}`, body: 'trapped' });
      assert.equal(put.status, 200, key);
      assert.equal((await send({ method: 'GET', path: `/b/${key}` })).text, 'trapped');
    }
    const parent = join(server.dataDir, '..');
    const siblings = await readdir(parent);
    assert.ok(!siblings.some((n) => n.startsWith('escape')), 'a file escaped the data dir');
  });

  test('oversized header section and metadata', async () => {
    const huge = await send({ method: 'PUT', path: '/b/huge', body: 'x', headers: { 'x-amz-meta-big': 'v'.repeat(20 * 1024) } });
    assert.equal(huge.status, 400);
    assert.equal(huge.code, 'RequestHeaderSectionTooLarge');
    const meta = await send({ method: 'PUT', path: '/b/meta', body: 'x', headers: { 'x-amz-meta-a': 'v'.repeat(1500), 'x-amz-meta-b': 'v'.repeat(1500) } });
    assert.equal(meta.code, 'MetadataTooLarge');
    assert.equal((await send({ method: 'HEAD', path: '/b/meta' })).status, 404);
  });

  test('Content-MD5 mismatch is BadDigest and keeps the previous version', async () => {
    await send({ method: 'PUT', path: '/b/md5', body: 'version one' });
    const bad = await send({ method: 'PUT', path: '/b/md5', body: 'version two', headers: { 'content-md5': Buffer.alloc(16).toString('base64') } });
    assert.equal(bad.code, 'BadDigest');
    const invalid = await send({ method: 'PUT', path: '/b/md5', body: 'version two', headers: { 'content-md5': 'not-base64!' } });
    assert.equal(invalid.code, 'InvalidDigest');
    assert.equal((await send({ method: 'GET', path: '/b/md5' })).text, 'version one');
  });

  test('a body that does not match its signed sha256 is XAmzContentSHA256Mismatch', async () => {
    const headers = await signRequest(host, { method: 'PUT', path: '/b/sha', body: 'signed body' });
    const res = await fetch(`${server.endpoint}/b/sha`, { method: 'PUT', headers, body: 'other body!' });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /<Code>XAmzContentSHA256Mismatch<\/Code>/);
    assert.equal((await send({ method: 'HEAD', path: '/b/sha' })).status, 404);
  });

  test('a request dated an hour ago is RequestTimeTooSkewed', async () => {
    const res = await send({ method: 'GET', path: '/b' }, true, { date: new Date(Date.now() - 3600_000) });
    assert.equal(res.code, 'RequestTimeTooSkewed');
  });

  test('unsupported sub-resources are NotImplemented and unknown methods MethodNotAllowed', async () => {
    assert.equal((await send({ method: 'GET', path: '/b', query: { cors: '' } })).code, 'NotImplemented');
    assert.equal((await send({ method: 'GET', path: '/b', query: { policy: '' } })).code, 'NoSuchBucketPolicy');
    assert.equal((await send({ method: 'PUT', path: '/b/k', query: { tagging: '' }, body: '<Tagging/>' })).code, 'NotImplemented');
    assert.equal((await send({ method: 'POST', path: '/b/k' })).code, 'MethodNotAllowed');
  });

  test('range beyond the end is InvalidRange with Content-Range', async () => {
    await send({ method: 'PUT', path: '/b/ten', body: '0123456789' });
    const res = await send({ method: 'GET', path: '/b/ten', headers: { range: 'bytes=10-20' } });
    assert.equal(res.status, 416);
    assert.equal(res.code, 'InvalidRange');
    assert.equal(res.headers.get('content-range'), 'bytes */10');
  });
});

test('a blob missing under an object (outside damage) is a clean InternalError, no path leaked', async () => {
  await send({ method: 'PUT', path: '/b/damaged', body: 'will lose its bytes' });
  const object = await server.app.objects.head('b', 'damaged');
  await server.app.blobs.delete(blobKey(object.digest!));
  const res = await send({ method: 'GET', path: '/b/damaged' });
  assert.equal(res.status, 500);
  assert.equal(res.code, 'InternalError');
  assert.ok(!res.text.includes('sha256'), 'no internal path or digest on the wire');
  assert.equal(res.headers.get('etag'), null);
});

test('every error in the table has a status and an S3 code: the one named by its key, or for an error S3 lacks the nearest', () => {
  for (const [code, spec] of Object.entries(errorTable)) {
    if (spec.s3Code !== code) assert.ok(errorTable[spec.s3Code as keyof typeof errorTable]?.s3Code === spec.s3Code, code);
    assert.ok(spec.status >= 300 && spec.status < 600, code);
    assert.ok(spec.title.length > 0, code);
  }
});

test('methods and URLs no route answers still get S3 XML errors', async () => {
  const options = await send({ method: 'OPTIONS', path: '/b/k' }, false);
  assert.equal(options.code, 'MethodNotAllowed');
  const malformed = await send({ method: 'GET', path: '/b/%E2%82' });
  assert.equal(malformed.status, 400);
  assert.ok(malformed.code, 'an S3 error code');
});
