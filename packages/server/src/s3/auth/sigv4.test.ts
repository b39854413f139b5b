import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { isAstoreError, type ErrorCode } from '../../core/errors.ts';
import { signingKey } from './signing.ts';
import { verifySigV4, type Credential, type CredentialLookup, type SignedRequest } from './sigv4.ts';
import { Sha256 } from '../../../../../test/helpers/sha256.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures: a credential store, a reference signer (@smithy/signature-v4, what the AWS SDK uses)
// ---------------------------------------------------------------------------------------------

const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const REGION = 'us-east-1';
const SIGNING_DATE = new Date('2024-03-05T10:20:30Z');
const HOST = 'localhost:9000';

const credentials: Record<string, Credential> = {
  [ACCESS_KEY]: { accessKeyId: ACCESS_KEY, secretKey: SECRET, principal: 'user:alice' },
};
const lookup: CredentialLookup = async (id) => credentials[id] ?? null;
const options = (now: Date = SIGNING_DATE, extra: Partial<{ region: string; maxSkewSeconds: number }> = {}) => ({
  lookup,
  region: extra.region ?? REGION,
  now,
  maxSkewSeconds: extra.maxSkewSeconds ?? 900,
});

function signer(secret = SECRET, region = REGION, accessKeyId = ACCESS_KEY): SignatureV4 {
  // uriEscapePath: false is what the S3 client uses: the path is signed as sent.
  return new SignatureV4({ service: 's3', region, sha256: Sha256, uriEscapePath: false, credentials: { accessKeyId, secretAccessKey: secret } });
}

/** The AWS SDK's path encoding for S3 keys (encodeURIComponent plus !'()*), '/' kept. */
function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

type Query = Record<string, string | string[]>;

function rawQueryOf(query: Query): string {
  return Object.entries(query)
    .flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${encodeRfc3986(name)}=${encodeRfc3986(v)}`))
    .join('&');
}

interface HttpRequestLike {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Query;
  headers: Record<string, string>;
  body?: unknown;
}

function toSignedRequest(request: HttpRequestLike, rawQuery = rawQueryOf(request.query)): SignedRequest {
  return {
    method: request.method,
    url: request.path + (rawQuery === '' ? '' : '?' + rawQuery),
    rawHeaders: Object.entries(request.headers).flat(),
  };
}

interface SignInput {
  method?: string;
  path?: string;
  query?: Query;
  headers?: Record<string, string>;
  body?: unknown;
  secret?: string;
  region?: string;
  accessKeyId?: string;
  date?: Date;
}

function requestLike(input: SignInput): HttpRequestLike {
  return {
    method: input.method ?? 'GET',
    protocol: 'http:',
    hostname: 'localhost',
    port: 9000,
    path: input.path ?? '/bucket/key.txt',
    query: input.query ?? {},
    headers: { host: HOST, ...input.headers },
    body: input.body,
  };
}

/** Header auth, signed by smithy; returns the smithy request (decoded query) for further tampering. */
async function signHeaderAuth(input: SignInput = {}): Promise<HttpRequestLike> {
  const signed = await signer(input.secret, input.region, input.accessKeyId).sign(requestLike(input) as never, {
    signingDate: input.date ?? SIGNING_DATE,
  });
  return signed as unknown as HttpRequestLike;
}

async function presign(input: SignInput & { expiresIn?: number } = {}): Promise<HttpRequestLike> {
  const presigned = await signer(input.secret, input.region, input.accessKeyId).presign(requestLike(input) as never, {
    signingDate: input.date ?? SIGNING_DATE,
    expiresIn: input.expiresIn ?? 3600,
  });
  return presigned as unknown as HttpRequestLike;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected an AstoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

// ---------------------------------------------------------------------------------------------
// The worked examples of the AWS S3 documentation (sigv4-header-based-auth, sigv4-query-string-auth)
// ---------------------------------------------------------------------------------------------

describe('AWS documentation examples', () => {
  const docNow = new Date('2013-05-24T00:00:00Z');
  const docOptions = { ...options(docNow), region: 'us-east-1' };

  test('GET object with Range (header auth) verifies', async () => {
    const result = await verifySigV4(
      {
        method: 'GET',
        url: '/test.txt',
        rawHeaders: [
          'Host', 'examplebucket.s3.amazonaws.com',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
          'Range', 'bytes=0-9',
          'x-amz-content-sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
          'x-amz-date', '20130524T000000Z',
        ],
      },
      docOptions,
    );
    assert.equal(result.kind, 'signed');
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'signed', sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' });
    assert.equal(result.kind === 'signed' && result.credential.principal, 'user:alice');
  });

  test('PUT object with a $ in the key and a Date header verifies', async () => {
    const result = await verifySigV4(
      {
        method: 'PUT',
        url: '/test%24file.text',
        rawHeaders: [
          'Host', 'examplebucket.s3.amazonaws.com',
          'Date', 'Fri, 24 May 2013 00:00:00 GMT',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
          'x-amz-date', '20130524T000000Z',
          'x-amz-storage-class', 'REDUCED_REDUNDANCY',
          'x-amz-content-sha256', '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
        ],
      },
      docOptions,
    );
    assert.equal(result.kind, 'signed');
  });

  test('GET bucket lifecycle (value-less query parameter) verifies', async () => {
    const result = await verifySigV4(
      {
        method: 'GET',
        url: '/?lifecycle',
        rawHeaders: [
          'Host', 'examplebucket.s3.amazonaws.com',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
          'x-amz-date', '20130524T000000Z',
          'x-amz-content-sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        ],
      },
      docOptions,
    );
    assert.equal(result.kind, 'signed');
  });

  test('GET bucket with max-keys and prefix (query sorted) verifies', async () => {
    const result = await verifySigV4(
      {
        method: 'GET',
        url: '/?prefix=J&max-keys=2',
        rawHeaders: [
          'Host', 'examplebucket.s3.amazonaws.com',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
          'x-amz-date', '20130524T000000Z',
          'x-amz-content-sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        ],
      },
      docOptions,
    );
    assert.equal(result.kind, 'signed');
  });

  test('presigned GET verifies, and is UNSIGNED-PAYLOAD', async () => {
    const result = await verifySigV4(
      {
        method: 'GET',
        url:
          '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
          '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
          '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
        rawHeaders: ['Host', 'examplebucket.s3.amazonaws.com'],
      },
      { ...docOptions, now: new Date('2013-05-24T12:00:00Z') },
    );
    assert.equal(result.kind, 'signed');
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'unsigned' });
  });

  test('STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT yields the documented seed signature', async () => {
    const result = await verifySigV4(
      {
        method: 'PUT',
        url: '/examplebucket/chunkObject.txt',
        rawHeaders: [
          'Host', 's3.amazonaws.com',
          'x-amz-date', '20130524T000000Z',
          'x-amz-storage-class', 'REDUCED_REDUNDANCY',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
          'x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'Content-Encoding', 'aws-chunked',
          'x-amz-decoded-content-length', '66560',
          'Content-Length', '66824',
        ],
      },
      docOptions,
    );
    assert.equal(result.kind, 'signed');
    if (result.kind !== 'signed') return;
    assert.deepEqual(result.payload, { kind: 'streaming-signed', trailer: false });
    assert.equal(result.chunkSigning.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
    assert.equal(result.chunkSigning.amzDate, '20130524T000000Z');
    assert.equal(result.chunkSigning.scope, '20130524/us-east-1/s3/aws4_request');
  });
});

// ---------------------------------------------------------------------------------------------
// Requests signed by @smithy/signature-v4
// ---------------------------------------------------------------------------------------------

describe('header auth', () => {
  test('no Authorization and no X-Amz-Signature is anonymous', async () => {
    const result = await verifySigV4({ method: 'GET', url: '/bucket/key?list-type=2', rawHeaders: ['Host', HOST] }, options());
    assert.deepEqual(result, { kind: 'anonymous' });
  });

  test('a signed payload verifies and reports the hash the body must match', async () => {
    const body = Buffer.from('hello, astore');
    const signed = await signHeaderAuth({ method: 'PUT', body, headers: { 'content-type': 'text/plain', 'x-amz-meta-color': 'blue' } });
    const result = await verifySigV4(toSignedRequest(signed), options());
    assert.equal(result.kind, 'signed');
    if (result.kind !== 'signed') return;
    assert.deepEqual(result.payload, { kind: 'signed', sha256: sha256Hex(body) });
    assert.equal(result.credential.accessKeyId, ACCESS_KEY);
    assert.equal(result.chunkSigning.seedSignature, /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization ?? '')?.[1]);
  });

  test('UNSIGNED-PAYLOAD verifies as unsigned', async () => {
    const signed = await signHeaderAuth({ method: 'PUT', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const result = await verifySigV4(toSignedRequest(signed), options());
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'unsigned' });
  });

  for (const [value, payload] of [
    ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { kind: 'streaming-signed', trailer: false }],
    ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { kind: 'streaming-signed', trailer: true }],
    ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', { kind: 'streaming-unsigned-trailer' }],
  ] as const) {
    test(`x-amz-content-sha256 ${value} selects ${payload.kind}`, async () => {
      const signed = await signHeaderAuth({
        method: 'PUT',
        headers: { 'x-amz-content-sha256': value, 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '10' },
      });
      const result = await verifySigV4(toSignedRequest(signed), options());
      assert.deepEqual(result.kind === 'signed' && result.payload, payload);
    });
  }

  test('SigV4a streaming payload is NotImplemented', async () => {
    const signed = await signHeaderAuth({ method: 'PUT', headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD' } });
    await rejectsWith(verifySigV4(toSignedRequest(signed), options()), 'NotImplemented');
  });

  test('an unknown x-amz-content-sha256 value is InvalidArgument', async () => {
    const signed = await signHeaderAuth({ method: 'PUT', headers: { 'x-amz-content-sha256': 'abc' } });
    await rejectsWith(verifySigV4(toSignedRequest(signed), options()), 'InvalidArgument');
  });

  test('a missing x-amz-content-sha256 is InvalidRequest', async () => {
    const signed = await signer().sign(requestLike({}) as never, { signingDate: SIGNING_DATE });
    const request = toSignedRequest(signed as unknown as HttpRequestLike);
    const i = request.rawHeaders.indexOf('x-amz-content-sha256');
    request.rawHeaders.splice(i, 2);
    await rejectsWith(verifySigV4(request, options()), 'InvalidRequest', /x-amz-content-sha256/);
  });

  const awkwardKeys = [
    'my file with spaces.txt',
    'données/日本語/ключ.bin',
    'a+b=c&d.txt',
    'wow!(really)*.txt',
    "tilde~and'quote",
    '100%-done%2F.txt',
    'emoji-🎉.png',
    'dir//double/./dot/../x',
    '$dollar@at,comma;semi:colon',
  ];
  for (const key of awkwardKeys) {
    test(`key ${JSON.stringify(key)} verifies`, async () => {
      const signed = await signHeaderAuth({ path: '/bucket/' + encodeKeyPath(key) });
      const result = await verifySigV4(toSignedRequest(signed), options());
      assert.equal(result.kind, 'signed');
    });
  }

  test('an equivalent but differently encoded path verifies (decode, then UriEncode)', async () => {
    const key = 'é~x y';
    const signed = await signHeaderAuth({ path: '/bucket/' + encodeKeyPath(key) });
    const request = toSignedRequest(signed);
    // lower-case hex, an encoded unreserved '~' and an encoded ASCII letter
    request.url = '/bucket/%c3%a9%7E%78%20y';
    assert.equal((await verifySigV4(request, options())).kind, 'signed');
  });

  test('an encoded slash stays distinct from a path separator', async () => {
    const signed = await signHeaderAuth({ path: '/bucket/' + encodeKeyPath('a/b') }); // a/b: '/' kept
    const request = toSignedRequest(signed);
    request.url = '/bucket/a%2Fb';
    await rejectsWith(verifySigV4(request, options()), 'SignatureDoesNotMatch');
  });

  test('repeated and empty query parameters verify in any order', async () => {
    const query = { 'list-type': '2', prefix: '', delimiter: '/', 'x-id': ['b', 'a', 'a'], 'key with space': 'v+1 ü' };
    const signed = await signHeaderAuth({ path: '/bucket', query });
    const rawQuery = 'x-id=a&key%20with%20space=v%2B1%20%C3%BC&x-id=b&delimiter=%2F&prefix&list-type=2&x-id=a';
    const result = await verifySigV4(toSignedRequest(signed, rawQuery), options());
    assert.equal(result.kind, 'signed');
  });

  test("a '+' in the query is a space, as S3 reads it", async () => {
    const signed = await signHeaderAuth({ path: '/bucket', query: { prefix: 'a b' } });
    assert.equal((await verifySigV4(toSignedRequest(signed, 'prefix=a+b'), options())).kind, 'signed');
  });

  test('repeated headers are joined with commas and inner spaces collapsed', async () => {
    const signed = await signHeaderAuth({ headers: { 'x-amz-meta-list': 'a,b', 'x-amz-meta-spaced': 'one two' } });
    const request = toSignedRequest(signed);
    const rawHeaders: string[] = [];
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      const [name, value] = [request.rawHeaders[i] as string, request.rawHeaders[i + 1] as string];
      if (name === 'x-amz-meta-list') rawHeaders.push('X-Amz-Meta-List', 'a', 'x-amz-meta-list', 'b');
      else if (name === 'x-amz-meta-spaced') rawHeaders.push('X-AMZ-META-SPACED', '  one    two ');
      else rawHeaders.push(name, value);
    }
    assert.equal((await verifySigV4({ ...request, rawHeaders }, options())).kind, 'signed');
  });

  test('the Date header is accepted when x-amz-date is absent', async () => {
    // Reference: the documentation example above signs with x-amz-date; here only Date is sent.
    const amzDate = '20240305T102030Z';
    const scope = `20240305/${REGION}/s3/aws4_request`;
    const date = 'Tue, 05 Mar 2024 10:20:30 GMT';
    const canonical = ['GET', '/bucket/k', '', `date:${date}`, `host:${HOST}`, 'x-amz-content-sha256:UNSIGNED-PAYLOAD', '', 'date;host;x-amz-content-sha256', 'UNSIGNED-PAYLOAD'].join('\n');
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    const signature = createHmac('sha256', signingKey(SECRET, '20240305', REGION, 's3')).update(stringToSign).digest('hex');
    const result = await verifySigV4(
      {
        method: 'GET',
        url: '/bucket/k',
        rawHeaders: [
          'Host', HOST, 'Date', date, 'x-amz-content-sha256', 'UNSIGNED-PAYLOAD',
          'Authorization', `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/${scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature=${signature}`,
        ],
      },
      options(),
    );
    assert.equal(result.kind, 'signed');
  });

  test('no Date and no x-amz-date is AccessDenied', async () => {
    const signed = await signHeaderAuth();
    const request = toSignedRequest(signed);
    request.rawHeaders.splice(request.rawHeaders.indexOf('x-amz-date'), 2);
    await rejectsWith(verifySigV4(request, options()), 'AccessDenied', /Date or x-amz-date/);
  });
});

describe('header auth failures', () => {
  test('a wrong secret is SignatureDoesNotMatch', async () => {
    const signed = await signHeaderAuth({ secret: 'not-the-secret' });
    await rejectsWith(verifySigV4(toSignedRequest(signed), options()), 'SignatureDoesNotMatch');
  });

  test('an unknown access key is InvalidAccessKeyId', async () => {
    const signed = await signHeaderAuth({ accessKeyId: 'AKIDUNKNOWN' });
    await rejectsWith(verifySigV4(toSignedRequest(signed), options()), 'InvalidAccessKeyId');
  });

  test('a tampered signed header is SignatureDoesNotMatch', async () => {
    const signed = await signHeaderAuth({ headers: { 'x-amz-meta-color': 'blue' } });
    const request = toSignedRequest(signed);
    request.rawHeaders[request.rawHeaders.indexOf('blue')] = 'red';
    await rejectsWith(verifySigV4(request, options()), 'SignatureDoesNotMatch');
  });

  test('a tampered path is SignatureDoesNotMatch', async () => {
    const signed = await signHeaderAuth({ path: '/bucket/a.txt' });
    await rejectsWith(verifySigV4({ ...toSignedRequest(signed), url: '/bucket/b.txt' }, options()), 'SignatureDoesNotMatch');
  });

  test('a tampered query is SignatureDoesNotMatch', async () => {
    const signed = await signHeaderAuth({ path: '/bucket', query: { prefix: 'a' } });
    await rejectsWith(verifySigV4(toSignedRequest(signed, 'prefix=b'), options()), 'SignatureDoesNotMatch');
    await rejectsWith(verifySigV4(toSignedRequest(signed, 'prefix=a&max-keys=1'), options()), 'SignatureDoesNotMatch');
  });

  test('a tampered method is SignatureDoesNotMatch', async () => {
    const signed = await signHeaderAuth({ method: 'GET' });
    await rejectsWith(verifySigV4({ ...toSignedRequest(signed), method: 'DELETE' }, options()), 'SignatureDoesNotMatch');
  });

  test('an unsigned x-amz-* header is AccessDenied', async () => {
    const signed = await signHeaderAuth();
    const request = toSignedRequest(signed);
    request.rawHeaders.push('x-amz-copy-source', '/other/secret.txt');
    await rejectsWith(verifySigV4(request, options()), 'AccessDenied', /not signed/);
  });

  test('clock skew beyond the limit is RequestTimeTooSkewed, either way', async () => {
    const signed = toSignedRequest(await signHeaderAuth());
    await rejectsWith(verifySigV4(signed, options(new Date(SIGNING_DATE.getTime() + 901_000))), 'RequestTimeTooSkewed');
    await rejectsWith(verifySigV4(signed, options(new Date(SIGNING_DATE.getTime() - 901_000))), 'RequestTimeTooSkewed');
    assert.equal((await verifySigV4(signed, options(new Date(SIGNING_DATE.getTime() + 899_000)))).kind, 'signed');
  });

  test('a scope for another region is AuthorizationHeaderMalformed naming the expected region', async () => {
    const signed = await signHeaderAuth({ region: 'eu-west-1' });
    await assert.rejects(verifySigV4(toSignedRequest(signed), options()), (err: unknown) => {
      assert.ok(isAstoreError(err, 'AuthorizationHeaderMalformed'));
      assert.match(err.message, /'eu-west-1' is wrong; expecting 'us-east-1'/);
      assert.equal(err.detail.Region, 'us-east-1');
      return true;
    });
  });

  test('a scope for another service is AuthorizationHeaderMalformed', async () => {
    const signed = await new SignatureV4({ service: 'iam', region: REGION, sha256: Sha256, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET } })
      .sign(requestLike({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }) as never, { signingDate: SIGNING_DATE });
    await rejectsWith(verifySigV4(toSignedRequest(signed as unknown as HttpRequestLike), options()), 'AuthorizationHeaderMalformed', /service 'iam'/);
  });

  const withAuthorization = async (mutate: (authorization: string) => string) => {
    const request = toSignedRequest(await signHeaderAuth());
    const i = request.rawHeaders.indexOf('authorization') + 1;
    request.rawHeaders[i] = mutate(request.rawHeaders[i] as string);
    return request;
  };

  for (const [name, mutate] of [
    ['missing Signature', (a: string) => a.replace(/, Signature=[0-9a-f]+/, '')],
    ['missing SignedHeaders', (a: string) => a.replace(/, SignedHeaders=[^,]+/, '')],
    ['missing Credential', (a: string) => a.replace(/Credential=[^,]+, /, '')],
    ['a credential with too few parts', (a: string) => a.replace(/\/s3\/aws4_request/, '/aws4_request')],
    ['a wrong terminal', (a: string) => a.replace('aws4_request', 'aws5_request')],
    ['a component without =', (a: string) => a + ', junk'],
    ['a repeated component', (a: string) => a + ', Signature=00'],
    ['host not signed', (a: string) => a.replace('SignedHeaders=host;', 'SignedHeaders=')],
    ['a credential date other than X-Amz-Date', (a: string) => a.replace('/20240305/', '/20240304/')],
    ['nothing after the algorithm', () => 'AWS4-HMAC-SHA256'],
  ] as const) {
    test(`an Authorization header with ${name} is AuthorizationHeaderMalformed`, async () => {
      await rejectsWith(verifySigV4(await withAuthorization(mutate), options()), 'AuthorizationHeaderMalformed');
    });
  }

  test('a malformed signature value is SignatureDoesNotMatch', async () => {
    const request = await withAuthorization((a) => a.replace(/Signature=[0-9a-f]+/, 'Signature=xyz'));
    await rejectsWith(verifySigV4(request, options()), 'SignatureDoesNotMatch');
  });

  test('other authorization schemes are refused with the right code', async () => {
    await rejectsWith(verifySigV4(await withAuthorization(() => 'AWS AKID:c2lnbmF0dXJl'), options()), 'InvalidRequest', /AWS4-HMAC-SHA256/);
    await rejectsWith(verifySigV4(await withAuthorization(() => 'Bearer abc'), options()), 'InvalidArgument', /Unsupported Authorization Type/);
    await rejectsWith(
      verifySigV4(await withAuthorization((a) => a.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')), options()),
      'NotImplemented',
    );
  });

  test('two Authorization headers are AuthorizationHeaderMalformed', async () => {
    const request = toSignedRequest(await signHeaderAuth());
    const i = request.rawHeaders.indexOf('authorization');
    request.rawHeaders.push('Authorization', request.rawHeaders[i + 1] as string);
    await rejectsWith(verifySigV4(request, options()), 'AuthorizationHeaderMalformed');
  });

  test('Authorization together with query auth is InvalidArgument', async () => {
    const request = toSignedRequest(await signHeaderAuth());
    request.url += '?X-Amz-Signature=00';
    await rejectsWith(verifySigV4(request, options()), 'InvalidArgument', /Only one auth mechanism/);
  });

  test('SigV2 query auth is InvalidRequest, not anonymous', async () => {
    const request = { method: 'GET', url: '/bucket/k?AWSAccessKeyId=AKID&Expires=1&Signature=abc', rawHeaders: ['Host', HOST] };
    await rejectsWith(verifySigV4(request, options()), 'InvalidRequest');
  });
});

describe('query auth (presigned URLs)', () => {
  test('a presigned GET verifies and is UNSIGNED-PAYLOAD', async () => {
    const presigned = await presign({ path: '/bucket/' + encodeKeyPath('reports/2024 Q1 ü+!~.pdf'), body: Readable.from([]) });
    assert.ok(presigned.query['X-Amz-Signature']);
    const result = await verifySigV4(toSignedRequest(presigned), options(new Date(SIGNING_DATE.getTime() + 3000_000)));
    assert.equal(result.kind, 'signed');
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'unsigned' });
  });

  test('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD (as the SDK presigner sends it) verifies', async () => {
    const presigned = await presign({ method: 'PUT', headers: { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } });
    assert.equal(presigned.query['X-Amz-Content-Sha256'], 'UNSIGNED-PAYLOAD');
    const result = await verifySigV4(toSignedRequest(presigned), options());
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'unsigned' });
  });

  test('a presigned URL with a payload hash yields a signed payload', async () => {
    const sha = sha256Hex('exact body');
    const presigned = await presign({ method: 'PUT', headers: { 'x-amz-content-sha256': sha } });
    const result = await verifySigV4(toSignedRequest(presigned), options());
    assert.deepEqual(result.kind === 'signed' && result.payload, { kind: 'signed', sha256: sha });
  });

  test('presigned with extra query parameters and hoisted x-amz-* headers verifies', async () => {
    const presigned = await presign({
      query: { 'response-content-disposition': 'attachment; filename="a b.txt"', versionId: '', 'x-id': 'GetObject' },
      headers: { 'x-amz-meta-owner': 'alice' },
      body: Readable.from([]),
    });
    assert.equal(presigned.query['x-amz-meta-owner'], 'alice');
    assert.equal((await verifySigV4(toSignedRequest(presigned), options())).kind, 'signed');
  });

  test('an expired presigned URL is AccessDenied "Request has expired"', async () => {
    const presigned = toSignedRequest(await presign({ expiresIn: 60, body: Readable.from([]) }));
    assert.equal((await verifySigV4(presigned, options(new Date(SIGNING_DATE.getTime() + 60_000)))).kind, 'signed');
    await rejectsWith(verifySigV4(presigned, options(new Date(SIGNING_DATE.getTime() + 61_000))), 'AccessDenied', /^Request has expired$/);
  });

  test('a presigned URL dated in the future beyond the skew is AccessDenied "Request is not valid yet"', async () => {
    const presigned = toSignedRequest(await presign({ body: Readable.from([]) }));
    await rejectsWith(verifySigV4(presigned, options(new Date(SIGNING_DATE.getTime() - 901_000))), 'AccessDenied', /not valid yet/);
    assert.equal((await verifySigV4(presigned, options(new Date(SIGNING_DATE.getTime() - 899_000)))).kind, 'signed');
  });

  test('a wrong secret, unknown key, tampered path or query fail', async () => {
    await rejectsWith(verifySigV4(toSignedRequest(await presign({ secret: 'nope', body: Readable.from([]) })), options()), 'SignatureDoesNotMatch');
    await rejectsWith(verifySigV4(toSignedRequest(await presign({ accessKeyId: 'AKIDNOPE', body: Readable.from([]) })), options()), 'InvalidAccessKeyId');
    const presigned = await presign({ path: '/bucket/a.txt', body: Readable.from([]) });
    await rejectsWith(verifySigV4({ ...toSignedRequest(presigned), url: toSignedRequest(presigned).url.replace('/a.txt', '/b.txt') }, options()), 'SignatureDoesNotMatch');
    const longer = toSignedRequest(presigned, rawQueryOf({ ...presigned.query, 'X-Amz-Expires': '7200' }));
    await rejectsWith(verifySigV4(longer, options()), 'SignatureDoesNotMatch');
  });

  test('an unsigned x-amz-* header on a presigned request is AccessDenied', async () => {
    const request = toSignedRequest(await presign({ method: 'PUT', body: Readable.from([]) }));
    request.rawHeaders.push('x-amz-copy-source', '/other/secret.txt');
    await rejectsWith(verifySigV4(request, options()), 'AccessDenied', /not signed/);
  });

  test('a scope for another region is AuthorizationQueryParametersError', async () => {
    const presigned = await presign({ region: 'eu-west-1', body: Readable.from([]) });
    await rejectsWith(verifySigV4(toSignedRequest(presigned), options()), 'AuthorizationQueryParametersError', /expecting 'us-east-1'/);
  });

  const alterQuery = async (mutate: (query: Query) => void) => {
    const presigned = await presign({ body: Readable.from([]) });
    const query = { ...presigned.query };
    mutate(query);
    return toSignedRequest(presigned, rawQueryOf(query));
  };

  for (const [name, mutate] of [
    ['X-Amz-Expires missing', (q: Query) => delete q['X-Amz-Expires']],
    ['X-Amz-Date missing', (q: Query) => delete q['X-Amz-Date']],
    ['X-Amz-SignedHeaders missing', (q: Query) => delete q['X-Amz-SignedHeaders']],
    ['X-Amz-Expires of 0', (q: Query) => (q['X-Amz-Expires'] = '0')],
    ['X-Amz-Expires beyond a week', (q: Query) => (q['X-Amz-Expires'] = '604801')],
    ['X-Amz-Expires not a number', (q: Query) => (q['X-Amz-Expires'] = '1e3')],
    ['a malformed X-Amz-Date', (q: Query) => (q['X-Amz-Date'] = '2024-03-05T10:20:30Z')],
    ['an unknown algorithm', (q: Query) => (q['X-Amz-Algorithm'] = 'AWS4-HMAC-SHA1')],
    ['a malformed credential', (q: Query) => (q['X-Amz-Credential'] = 'AKID/20240305/us-east-1')],
    ['a repeated X-Amz-Signature', (q: Query) => (q['X-Amz-Signature'] = ['0', '1'])],
    ['host not signed', (q: Query) => (q['X-Amz-SignedHeaders'] = 'x-amz-date')],
  ] as const) {
    test(`${name} is AuthorizationQueryParametersError`, async () => {
      await rejectsWith(verifySigV4(await alterQuery(mutate), options()), 'AuthorizationQueryParametersError');
    });
  }

  test('X-Amz-Signature alone is a failed query auth, not anonymous', async () => {
    const request = { method: 'GET', url: '/bucket/k?X-Amz-Signature=abc', rawHeaders: ['Host', HOST] };
    await rejectsWith(verifySigV4(request, options()), 'AuthorizationQueryParametersError');
  });
});

describe('signing keys', () => {
  test('derived keys are cached per (secret, date, region, service) and the cache is bounded', () => {
    const first = signingKey(SECRET, '20240305', REGION, 's3');
    assert.equal(signingKey(SECRET, '20240305', REGION, 's3'), first, 'a repeated derivation is served from the cache');
    assert.notEqual(signingKey('other', '20240305', REGION, 's3'), first);
    for (let i = 0; i < 500; i++) signingKey(`secret-${i}`, '20240305', REGION, 's3');
    const again = signingKey(SECRET, '20240305', REGION, 's3');
    assert.notEqual(again, first, 'old entries were evicted');
    assert.deepEqual(again, first, 'the derivation itself is deterministic');
  });
});
