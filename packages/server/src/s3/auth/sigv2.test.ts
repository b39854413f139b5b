import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { isAstoreError, type ErrorCode } from '../../core/errors.ts';
import { verifyRequestSignature } from './index.ts';
import type { Credential, CredentialLookup, SignedRequest, VerifyOptions } from './sigv4.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/** The key pair of the AWS documentation examples. */
const DOC_KEY = 'AKIAIOSFODNN7EXAMPLE';
const DOC_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
/** The key pair the botocore vectors below were signed with (the test harness's root key). */
const BOTO_KEY = 'AKIDASTORETEST';
const BOTO_SECRET = 'astore-test-secret-key-0123456789';
/** The botocore vectors were made with time.time() pinned to 2024-03-05T12:00:00Z (1709640000). */
const BOTO_NOW = new Date('2024-03-05T12:00:00Z');

function lookupOf(...pairs: Array<[string, string]>): CredentialLookup {
  const credentials = new Map<string, Credential>(pairs.map(([accessKeyId, secretKey]) => [accessKeyId, { accessKeyId, secretKey, principal: 'root' }]));
  return async (id) => credentials.get(id) ?? null;
}

const lookup = lookupOf([DOC_KEY, DOC_SECRET], [BOTO_KEY, BOTO_SECRET]);

function options(now: Date, extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return { lookup, region: 'us-east-1', now, maxSkewSeconds: 900, ...extra };
}

/** A request as node hands it to the router: raw target, rawHeaders. */
function request(method: string, url: string, headers: Array<[string, string]> = []): SignedRequest {
  return { method, url, rawHeaders: headers.flat() };
}

/** A request from a presigned URL as fetch/curl send it: the target verbatim, Host only. */
function fromUrl(url: string, method = 'GET', headers: Array<[string, string]> = []): SignedRequest {
  const parsed = /^https?:\/\/([^/]+)(\/.*)$/.exec(url);
  assert.ok(parsed, url);
  return request(method, parsed[2] as string, [['Host', parsed[1] as string], ...headers]);
}

async function verifiesAs(req: SignedRequest, opts: VerifyOptions, accessKeyId: string): Promise<void> {
  const result = await verifyRequestSignature(req, opts);
  assert.equal(result.kind, 'signed');
  if (result.kind !== 'signed') return;
  assert.equal(result.credential.accessKeyId, accessKeyId);
  assert.deepEqual(result.payload, { kind: 'unsigned' });
  assert.equal(result.chunkSigning, undefined);
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<Record<string, string | number>> {
  let detail: Record<string, string | number> = {};
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected an AstoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    detail = err.detail as Record<string, string | number>;
    return true;
  });
  return detail;
}

/** An independent V2 signer over a literal StringToSign, to pin the server's string construction. */
const sign = (secret: string, stringToSign: string) => createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64');

// ---------------------------------------------------------------------------------------------
// The worked examples of the AWS S3 Developer Guide, "Authenticating requests (AWS Signature Version 2)"
// ---------------------------------------------------------------------------------------------

describe('AWS S3 Developer Guide examples', () => {
  const vhost = (domain: string, now: string) => options(new Date(now), { domain });

  test('GET object, virtual-host style (awsexamplebucket1, current guide) → qgk2+6Sv9/oM7G3qLEjTH1a1l1g=', async () => {
    const req = request('GET', '/photos/puppy.jpg', [
      ['Host', 'awsexamplebucket1.us-west-1.s3.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 19:36:42 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g='],
    ]);
    await verifiesAs(req, vhost('us-west-1.s3.amazonaws.com', '2007-03-27T19:36:42Z'), DOC_KEY);
  });

  test('GET object, virtual-host style (johnsmith, older guide) → bWq2s1WEIj+Ydj0vQ697zp+IXMU=', async () => {
    const req = request('GET', '/photos/puppy.jpg', [
      ['Host', 'johnsmith.s3.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 19:36:42 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU='],
    ]);
    await verifiesAs(req, vhost('s3.amazonaws.com', '2007-03-27T19:36:42Z'), DOC_KEY);
  });

  test('PUT object with Content-Type → MyyxeRY7whkBe+bq8fHCL/2kKUg=', async () => {
    const req = request('PUT', '/photos/puppy.jpg', [
      ['Content-Type', 'image/jpeg'],
      ['Content-Length', '94328'],
      ['Host', 'johnsmith.s3.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 21:15:45 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg='],
    ]);
    await verifiesAs(req, vhost('s3.amazonaws.com', '2007-03-27T21:15:45Z'), DOC_KEY);
  });

  test('list objects: prefix, max-keys and marker are not signed; the bucket root is /johnsmith/ → htDYFYduRNen8P9ZfE/s9SuKy0U=', async () => {
    const req = request('GET', '/?prefix=photos&max-keys=50&marker=puppy', [
      ['User-Agent', 'Mozilla/5.0'],
      ['Host', 'johnsmith.s3.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 19:42:41 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U='],
    ]);
    await verifiesAs(req, vhost('s3.amazonaws.com', '2007-03-27T19:42:41Z'), DOC_KEY);
  });

  test('the acl sub-resource is signed → c2WLPFtWHVgbEmeEG93a4cG37dM=', async () => {
    const req = request('GET', '/?acl', [
      ['Host', 'johnsmith.s3.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 19:44:46 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM='],
    ]);
    await verifiesAs(req, vhost('s3.amazonaws.com', '2007-03-27T19:44:46Z'), DOC_KEY);
  });

  test('upload with x-amz-* headers: lower-cased, sorted, repeated values joined with , → ilyl83RwaSoYIEdixDQcA4OnAnc=', async () => {
    // The guide sends this to a CNAME (static.johnsmith.net:8080); path-style signs the same resource.
    const req = request('PUT', '/static.johnsmith.net/db-backup.dat.gz', [
      ['User-Agent', 'curl/7.15.5'],
      ['Host', 'localhost:8080'],
      ['Date', 'Tue, 27 Mar 2007 21:06:08 +0000'],
      ['x-amz-acl', 'public-read'],
      ['content-type', 'application/x-download'],
      ['Content-MD5', '4gJE4saaMU4BqNR0kLY+lw=='],
      ['X-Amz-Meta-ReviewedBy', 'joe@johnsmith.net'],
      ['X-Amz-Meta-ReviewedBy', 'jane@johnsmith.net'],
      ['X-Amz-Meta-FileChecksum', '0x02661779'],
      ['X-Amz-Meta-ChecksumAlgorithm', 'crc32'],
      ['Content-Disposition', 'attachment; filename=database.dat'],
      ['Content-Encoding', 'gzip'],
      ['Content-Length', '5913339'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc='],
    ]);
    await verifiesAs(req, options(new Date('2007-03-27T21:06:08Z')), DOC_KEY);
  });

  test('list all my buckets: GET / → qGdzdERIC03wnaRNKh6OqZehG9s=', async () => {
    const req = request('GET', '/', [
      ['Host', 's3.amazonaws.com'],
      ['Date', 'Wed, 28 Mar 2007 01:29:59 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s='],
    ]);
    await verifiesAs(req, options(new Date('2007-03-28T01:29:59Z')), DOC_KEY);
  });

  test('unicode keys: the path is signed as sent, lower-case escapes included → DNEZGsoieTZ92F3bUfSPQcbGmlM=', async () => {
    const req = request('GET', '/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re', [
      ['Host', 's3.amazonaws.com'],
      ['Date', 'Wed, 28 Mar 2007 01:49:49 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM='],
    ]);
    await verifiesAs(req, options(new Date('2007-03-28T01:49:49Z')), DOC_KEY);
  });

  test('query string authentication → NpgCjnDzrM+WFzoENXmpNDUsSn8=, valid until Expires and not a second after', async () => {
    const req = fromUrl('http://johnsmith.s3.amazonaws.com/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620');
    await verifiesAs(req, vhost('s3.amazonaws.com', '2007-03-29T03:40:20Z'), DOC_KEY);
    const detail = await rejectsWith(verifyRequestSignature(req, vhost('s3.amazonaws.com', '2007-03-29T03:40:21Z')), 'AccessDenied', /^Request has expired$/);
    assert.equal(detail.Expires, '2007-03-29T03:40:20.000Z');
  });
});

// ---------------------------------------------------------------------------------------------
// Requests signed by botocore 1.44.5 (HmacV1QueryAuth / HmacV1Auth: aws-cli v1 `aws s3 presign`, boto3
// with Config(signature_version='s3')), generated once with time.time() pinned to BOTO_NOW
// ---------------------------------------------------------------------------------------------

describe('botocore presigned URLs (query auth)', () => {
  const at = (seconds: number) => new Date(BOTO_NOW.getTime() + seconds * 1000);

  for (const [name, url, method, headers] of [
    ['get_object', 'http://127.0.0.1:9000/bucket/photos/puppy.jpg?AWSAccessKeyId=AKIDASTORETEST&Signature=X38TdCUwSohEB6BjBFhoh6bW%2FqI%3D&Expires=1709643600', 'GET', []],
    [
      'get_object of a key with spaces, UTF-8 and !~()*+, with response-content-disposition/-type (signed decoded)',
      'http://127.0.0.1:9000/bucket/reports/2024%20Q1%20%C3%BC%2B%21~%28x%29%2A.pdf?response-content-disposition=attachment%3B%20filename%3D%22a%20b.pdf%22&response-content-type=application%2Fpdf&AWSAccessKeyId=AKIDASTORETEST&Signature=YhIWkRatA2ukfWGlq3eO5Psht7E%3D&Expires=1709640600',
      'GET',
      [],
    ],
    [
      'put_object with ContentType (botocore puts content-type in the query; the client sends the header)',
      'http://127.0.0.1:9000/bucket/up/load.txt?AWSAccessKeyId=AKIDASTORETEST&Signature=UkTpCV71XSySUzOdflTpoldw%2BF8%3D&content-type=text%2Fplain&Expires=1709640900',
      'PUT',
      [['Content-Type', 'text/plain'], ['Content-Length', '5']],
    ],
    [
      'list_objects_v2: path /bucket, signed by botocore as /bucket/',
      'http://127.0.0.1:9000/bucket?list-type=2&prefix=a%20b%2F&encoding-type=url&AWSAccessKeyId=AKIDASTORETEST&Signature=jrz5j2vsNwHj%2BQOTzIBwgC2TYIs%3D&Expires=1709640060',
      'GET',
      [],
    ],
    [
      'upload_part: uploadId (decoded, + kept) and partNumber sorted into the resource',
      'http://127.0.0.1:9000/bucket/big.bin?uploadId=abc%2Fdef%2B1&partNumber=3&AWSAccessKeyId=AKIDASTORETEST&Signature=ikqU5n8hZiCaaXsqPCwg9RLp2nk%3D&Expires=1709640060',
      'PUT',
      [],
    ],
  ] as const) {
    test(`${name} verifies`, async () => {
      await verifiesAs(fromUrl(url, method, headers as unknown as Array<[string, string]>), options(at(30)), BOTO_KEY);
    });
  }

  for (const [name, url] of [
    ['get_object', 'http://bucket.s3.astore.test:9000/photos/puppy.jpg?AWSAccessKeyId=AKIDASTORETEST&Signature=X38TdCUwSohEB6BjBFhoh6bW%2FqI%3D&Expires=1709643600'],
    ['list_objects at the bucket root', 'http://bucket.s3.astore.test:9000/?encoding-type=url&AWSAccessKeyId=AKIDASTORETEST&Signature=XS7gN4VgeOxYwZgVOCvCYLr%2FHsM%3D&Expires=1709643600'],
    ['get_object_acl (value-less sub-resource)', 'http://bucket.s3.astore.test:9000/k?acl&AWSAccessKeyId=AKIDASTORETEST&Signature=%2BqWI0VRY0F6OP%2BWDcOGyyN1FTCc%3D&Expires=1709643600'],
  ] as const) {
    test(`virtual-host style ${name} verifies with s3.domain set`, async () => {
      await verifiesAs(fromUrl(url), options(at(30), { domain: 's3.astore.test' }), BOTO_KEY);
    });
  }

  const puppy = 'http://127.0.0.1:9000/bucket/photos/puppy.jpg?AWSAccessKeyId=AKIDASTORETEST&Signature=X38TdCUwSohEB6BjBFhoh6bW%2FqI%3D&Expires=1709643600';

  test('a presigned URL is valid up to Expires and AccessDenied "Request has expired" after it', async () => {
    await verifiesAs(fromUrl(puppy), options(at(3600)), BOTO_KEY);
    const detail = await rejectsWith(verifyRequestSignature(fromUrl(puppy), options(at(3601))), 'AccessDenied', /^Request has expired$/);
    assert.equal(detail.Expires, '2024-03-05T13:00:00.000Z');
  });

  test('a wrong secret is SignatureDoesNotMatch with the StringToSign (never the secret) in the detail', async () => {
    const opts = options(at(30), { lookup: lookupOf([BOTO_KEY, 'another-secret']) });
    const detail = await rejectsWith(verifyRequestSignature(fromUrl(puppy), opts), 'SignatureDoesNotMatch');
    assert.equal(detail.StringToSign, 'GET\n\n\n1709643600\n/bucket/photos/puppy.jpg');
    assert.equal(detail.SignatureProvided, 'X38TdCUwSohEB6BjBFhoh6bW/qI=');
    assert.equal(detail.AWSAccessKeyId, BOTO_KEY);
    assert.match(String(detail.StringToSignBytes), /^47 45 54 0a 0a 0a 31/);
    assert.ok(!JSON.stringify(detail).includes('another-secret') && !JSON.stringify(detail).includes(BOTO_SECRET));
  });

  test('an unknown access key is InvalidAccessKeyId', async () => {
    const detail = await rejectsWith(verifyRequestSignature(fromUrl(puppy), options(at(30), { lookup: lookupOf() })), 'InvalidAccessKeyId');
    assert.equal(detail.AWSAccessKeyId, BOTO_KEY);
  });

  for (const [name, tamper] of [
    ['another key', (u: string) => u.replace('/photos/puppy.jpg', '/photos/kitten.jpg')],
    ['another bucket', (u: string) => u.replace('/bucket/', '/other/')],
    ['the path re-encoded', (u: string) => u.replace('/puppy.jpg', '/pupp%79.jpg')],
    ['a later Expires', (u: string) => u.replace('Expires=1709643600', 'Expires=1809643600')],
    ['an added sub-resource', (u: string) => u + '&acl'],
    ['an added response override', (u: string) => u + '&response-content-type=text%2Fhtml'],
    ['another access key', (u: string) => u.replace('AWSAccessKeyId=AKIDASTORETEST', 'AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE')],
  ] as const) {
    test(`a presigned URL with ${name} is SignatureDoesNotMatch`, async () => {
      await rejectsWith(verifyRequestSignature(fromUrl(tamper(puppy)), options(at(30))), 'SignatureDoesNotMatch');
    });
  }

  test('another method, or x-amz-* / Content-Type headers the URL did not sign, are SignatureDoesNotMatch', async () => {
    await rejectsWith(verifyRequestSignature(fromUrl(puppy, 'DELETE'), options(at(30))), 'SignatureDoesNotMatch');
    await rejectsWith(verifyRequestSignature(fromUrl(puppy, 'GET', [['x-amz-copy-source', 'bucket/secret']]), options(at(30))), 'SignatureDoesNotMatch');
    const put = 'http://127.0.0.1:9000/bucket/up/load.txt?AWSAccessKeyId=AKIDASTORETEST&Signature=UkTpCV71XSySUzOdflTpoldw%2BF8%3D&content-type=text%2Fplain&Expires=1709640900';
    await rejectsWith(verifyRequestSignature(fromUrl(put, 'PUT', [['Content-Type', 'text/html']]), options(at(30))), 'SignatureDoesNotMatch');
    await rejectsWith(verifyRequestSignature(fromUrl(put, 'PUT'), options(at(30))), 'SignatureDoesNotMatch');
  });

  test('parameters unsigned by V2 (prefix, list-type) may change: V2 protects sub-resources only, as in S3', async () => {
    const list = 'http://127.0.0.1:9000/bucket?list-type=2&prefix=other%2F&AWSAccessKeyId=AKIDASTORETEST&Signature=jrz5j2vsNwHj%2BQOTzIBwgC2TYIs%3D&Expires=1709640060';
    await verifiesAs(fromUrl(list), options(at(30)), BOTO_KEY);
  });
});

describe('botocore header auth (Authorization: AWS)', () => {
  const put = request('PUT', '/bucket/docs/a%20b%2Bc.txt', [
    ['Host', '127.0.0.1:9000'],
    ['Content-Type', 'text/plain'],
    ['Content-MD5', 'hUKCaiFA7XIM7QSDFxM2Qw=='],
    ['x-amz-meta-Color', 'blue'],
    ['x-amz-meta-owner', '  alice  '],
    ['User-Agent', 'Boto3/1.44.5 md/Botocore#1.44.5'],
    ['Expect', '100-continue'],
    ['x-amz-checksum-crc32', 'dux8DQ=='],
    ['x-amz-sdk-checksum-algorithm', 'CRC32'],
    ['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'],
    ['Authorization', 'AWS AKIDASTORETEST:NZX6E7IcjTBTBSDL2LB3BzYNjfc='],
    ['amz-sdk-invocation-id', '7eafddc3-f6f2-4d54-bb04-37d0df2577fe'],
    ['amz-sdk-request', 'attempt=1; max=3'],
    ['Content-Length', '8'],
  ]);

  test('put_object with Content-MD5, Content-Type, metadata and checksum headers verifies', async () => {
    await verifiesAs(put, options(BOTO_NOW), BOTO_KEY);
  });

  test('list_objects (path /bucket, signed as /bucket/) and get_object with Range verify', async () => {
    await verifiesAs(
      request('GET', '/bucket?prefix=docs%2F&encoding-type=url', [
        ['Host', '127.0.0.1:9000'],
        ['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'],
        ['Authorization', 'AWS AKIDASTORETEST:ad/JFCkOfwoF90CXKRScSnlAzhA='],
      ]),
      options(BOTO_NOW),
      BOTO_KEY,
    );
    await verifiesAs(
      request('GET', '/bucket/docs/a%20b%2Bc.txt', [
        ['Host', '127.0.0.1:9000'],
        ['Range', 'bytes=0-3'],
        ['x-amz-checksum-mode', 'ENABLED'],
        ['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'],
        ['Authorization', 'AWS AKIDASTORETEST:G/1QEUtLmUWgLC7g8emKnaF3HXw='],
      ]),
      options(BOTO_NOW),
      BOTO_KEY,
    );
  });

  test('a changed Content-MD5, Content-Type or x-amz-* value is SignatureDoesNotMatch', async () => {
    for (const [name, value] of [['Content-MD5', 'AAAAAAAAAAAAAAAAAAAAAA=='], ['Content-Type', 'text/html'], ['x-amz-meta-owner', 'mallory']] as const) {
      const rawHeaders = [...put.rawHeaders];
      rawHeaders[rawHeaders.indexOf(name) + 1] = value;
      await rejectsWith(verifyRequestSignature({ ...put, rawHeaders }, options(BOTO_NOW)), 'SignatureDoesNotMatch');
    }
    await rejectsWith(verifyRequestSignature({ ...put, rawHeaders: [...put.rawHeaders, 'x-amz-acl', 'public-read'] }, options(BOTO_NOW)), 'SignatureDoesNotMatch');
  });

  test('Date more than maxSkewSeconds away is RequestTimeTooSkewed', async () => {
    await verifiesAs(put, options(new Date(BOTO_NOW.getTime() + 900_000)), BOTO_KEY);
    await rejectsWith(verifyRequestSignature(put, options(new Date(BOTO_NOW.getTime() + 901_000))), 'RequestTimeTooSkewed');
    await rejectsWith(verifyRequestSignature(put, options(new Date(BOTO_NOW.getTime() - 901_000))), 'RequestTimeTooSkewed');
  });
});

describe('x-amz-date instead of Date (s3cmd)', () => {
  const now = new Date('2024-03-05T12:00:00Z');
  const amzDate = 'Tue, 05 Mar 2024 12:00:00 +0000';
  // The date line is empty; x-amz-date is signed among the x-amz-* headers.
  const stringToSign = `DELETE\n\n\n\nx-amz-date:${amzDate}\n/bucket/photos/puppy.jpg`;

  test('the date line is empty and x-amz-date is signed as an x-amz-* header, even when Date is also sent', async () => {
    const signature = sign(DOC_SECRET, stringToSign);
    const headers: Array<[string, string]> = [['Host', 'localhost'], ['x-amz-date', amzDate], ['Authorization', `AWS ${DOC_KEY}:${signature}`]];
    await verifiesAs(request('DELETE', '/bucket/photos/puppy.jpg', headers), options(now), DOC_KEY);
    await verifiesAs(request('DELETE', '/bucket/photos/puppy.jpg', [...headers, ['Date', 'Tue, 05 Mar 2024 11:59:59 GMT']]), options(now), DOC_KEY);
  });

  test('x-amz-date rules the clock skew check', async () => {
    const headers: Array<[string, string]> = [['x-amz-date', amzDate], ['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'], ['Authorization', `AWS ${DOC_KEY}:${sign(DOC_SECRET, stringToSign)}`]];
    await rejectsWith(verifyRequestSignature(request('DELETE', '/bucket/photos/puppy.jpg', headers), options(new Date('2024-03-05T13:00:00Z'))), 'RequestTimeTooSkewed');
  });
});

describe('malformed V2 requests', () => {
  const now = new Date('2024-03-05T12:00:00Z');

  test('V2 query parameters never make a request anonymous', async () => {
    for (const query of ['AWSAccessKeyId=AKIDASTORETEST', 'Signature=abc', 'AWSAccessKeyId=AKIDASTORETEST&Signature=abc']) {
      await rejectsWith(verifyRequestSignature(request('GET', `/bucket/k?${query}`, [['Host', 'h']]), options(now)), 'AccessDenied', /requires the Signature, Expires and AWSAccessKeyId/);
    }
    assert.deepEqual(await verifyRequestSignature(request('GET', '/bucket/k?Expires=1', [['Host', 'h']]), options(now)), { kind: 'anonymous' });
  });

  test('a non-numeric Expires is AccessDenied; a repeated parameter is InvalidArgument', async () => {
    await rejectsWith(verifyRequestSignature(request('GET', '/b/k?AWSAccessKeyId=A&Signature=s&Expires=tomorrow'), options(now)), 'AccessDenied', /seconds since epoch/);
    await rejectsWith(verifyRequestSignature(request('GET', '/b/k?AWSAccessKeyId=A&Signature=s&Signature=t&Expires=1'), options(now)), 'InvalidArgument');
  });

  test('a signature that is not base64 of 20 bytes is SignatureDoesNotMatch', async () => {
    for (const signature of ['abc', 'X38TdCUwSohEB6BjBFhoh6bW/qI', 'X38TdCUwSohEB6BjBFhoh6bW/qI=A', '*38TdCUwSohEB6BjBFhoh6bW/qI=']) {
      const url = `/bucket/photos/puppy.jpg?AWSAccessKeyId=AKIDASTORETEST&Signature=${encodeURIComponent(signature)}&Expires=1709643600`;
      await rejectsWith(verifyRequestSignature(request('GET', url), options(BOTO_NOW)), 'SignatureDoesNotMatch');
    }
  });

  test('an Authorization header that is not AWS <akid>:<signature> is InvalidArgument', async () => {
    for (const value of ['AWS', 'AWS AKIDASTORETEST', 'AWS :sig', 'AWS AKIDASTORETEST:', 'AWS AKID:sig extra']) {
      const req = request('GET', '/b/k', [['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'], ['Authorization', value]]);
      await rejectsWith(verifyRequestSignature(req, options(now)), 'InvalidArgument', /Expected AwsAccessKeyId:signature/);
    }
  });

  test('header auth without a valid Date or x-amz-date is AccessDenied', async () => {
    for (const headers of [[], [['Date', 'not a date']], [['x-amz-date', 'yesterday']]] as Array<Array<[string, string]>>) {
      const req = request('GET', '/b/k', [...headers, ['Authorization', 'AWS AKIDASTORETEST:X38TdCUwSohEB6BjBFhoh6bW/qI=']]);
      await rejectsWith(verifyRequestSignature(req, options(now)), 'AccessDenied', /Date or x-amz-date/);
    }
  });

  test('V2 query auth together with an Authorization header or SigV4 query auth is InvalidArgument', async () => {
    const v2 = 'AWSAccessKeyId=AKIDASTORETEST&Signature=X38TdCUwSohEB6BjBFhoh6bW%2FqI%3D&Expires=1709643600';
    const withHeader = request('GET', `/bucket/photos/puppy.jpg?${v2}`, [['Date', 'Tue, 05 Mar 2024 12:00:00 GMT'], ['Authorization', 'AWS AKIDASTORETEST:X38TdCUwSohEB6BjBFhoh6bW/qI=']]);
    await rejectsWith(verifyRequestSignature(withHeader, options(BOTO_NOW)), 'InvalidArgument', /Only one auth mechanism/);
    const withV4 = request('GET', `/bucket/photos/puppy.jpg?${v2}&X-Amz-Signature=00`);
    await rejectsWith(verifyRequestSignature(withV4, options(BOTO_NOW)), 'InvalidArgument', /Only one auth mechanism/);
  });
});

describe('verifyRequestSignature dispatch', () => {
  test('no credentials at all is anonymous', async () => {
    assert.deepEqual(await verifyRequestSignature(request('GET', '/bucket/key?list-type=2', [['Host', 'h']]), options(BOTO_NOW)), { kind: 'anonymous' });
  });

  test('SigV4 still goes to verifySigV4 (the AWS GET-with-Range example) and keeps its chunk-signing context', async () => {
    const result = await verifyRequestSignature(
      request('GET', '/test.txt', [
        ['Host', 'examplebucket.s3.amazonaws.com'],
        ['Authorization', 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'],
        ['Range', 'bytes=0-9'],
        ['x-amz-content-sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
        ['x-amz-date', '20130524T000000Z'],
      ]),
      options(new Date('2013-05-24T00:00:00Z')),
    );
    assert.equal(result.kind, 'signed');
    assert.equal(result.kind === 'signed' && result.chunkSigning?.seedSignature, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });
});
