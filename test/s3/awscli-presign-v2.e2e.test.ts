/**
 * Signature V2 end to end, with the clients that still produce it: aws-cli v1's `aws s3 presign` with
 * no configuration at all (it signs V2 unless `s3.signature_version = s3v4` is set), and boto3 with
 * Config(signature_version='s3') for V2 header auth (`Authorization: AWS <akid>:<signature>`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { requireTool, run } from '../helpers/clients.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let server: TestServer | undefined;
const bucket = 'presign-v2';

before(async () => {
  server = await startServer();
  await server.app.buckets.create(bucket);
});

after(async () => server?.stop());

/** `aws s3 presign` with the harness environment only: AWS_CONFIG_FILE names a file that does not exist. */
async function presign(uri: string, ...args: string[]): Promise<string> {
  const aws = requireTool('ASTORE_TEST_AWS');
  const result = await run(aws, ['s3', 'presign', uri, '--endpoint-url', server!.endpoint, ...args], { env: server!.clientEnv });
  assert.equal(result.code, 0, `aws s3 presign exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim();
}

describe('aws s3 presign out of the box (Signature V2)', () => {
  test('the URL fetches the exact bytes; one made with --expires-in 1 is AccessDenied "Request has expired" 2 s later', async () => {
    // Given an object whose key needs percent-encoding in the path
    const key = 'v2/file name ü+(1).bin';
    const content = randomBytes(2048);
    await server!.app.objects.put({ bucket, key, body: Readable.from([content]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });

    // When aws-cli presigns it with no signature_version configured
    const [url, shortUrl] = await Promise.all([presign(`s3://${bucket}/${key}`), presign(`s3://${bucket}/${key}`, '--expires-in', '1')]);
    const signedAt = Date.now();
    assert.match(url, /[?&]AWSAccessKeyId=/);
    assert.match(url, /[?&]Signature=/);
    assert.doesNotMatch(url, /X-Amz-Algorithm/);

    // Then the URL serves the object
    const res = await fetch(url);
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content);

    // And the short-lived one has expired 2 s later
    await new Promise((r) => setTimeout(r, Math.max(0, signedAt + 2000 - Date.now())));
    const expired = await fetch(shortUrl);
    assert.equal(expired.status, 403);
    const body = await expired.text();
    assert.match(body, /<Code>AccessDenied<\/Code>/);
    assert.match(body, /<Message>Request has expired<\/Message>/);
  });

  test('the URL with another key in its path is SignatureDoesNotMatch, the StringToSign in the error', async () => {
    await server!.app.objects.put({ bucket, key: 'v2/other', body: Readable.from([Buffer.from('other')]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
    const url = await presign(`s3://${bucket}/v2/other`);
    const forged = await fetch(url.replace('/v2/other', '/v2/secret'));
    assert.equal(forged.status, 403);
    assert.match(await forged.text(), /<Code>SignatureDoesNotMatch<\/Code>[\s\S]*<StringToSign>GET\n\n\n\d+\n\/presign-v2\/v2\/secret<\/StringToSign>/);
  });
});

describe('boto3 with signature_version=s3 (Signature V2 header auth)', () => {
  test('put_object with Content-MD5 and metadata, get_object, list_objects, delete_object; a bad Content-MD5 is BadDigest', async () => {
    const python = requireTool('ASTORE_TEST_PYTHON');
    const script = `
import base64, hashlib, json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client('s3', endpoint_url=sys.argv[1], config=Config(signature_version='s3', s3={'addressing_style': 'path'}))
bucket, body = sys.argv[2], b'signed with hmac-sha1 \\xe2\\x9c\\x93'
md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
put = s3.put_object(Bucket=bucket, Key='hdr/a b+c.txt', Body=body, ContentType='text/plain', ContentMD5=md5, Metadata={'color': 'blue'})
got = s3.get_object(Bucket=bucket, Key='hdr/a b+c.txt')
listed = s3.list_objects(Bucket=bucket, Prefix='hdr/')
try:
    s3.put_object(Bucket=bucket, Key='hdr/bad', Body=body, ContentMD5=base64.b64encode(b'0' * 16).decode())
    bad = 'none'
except ClientError as e:
    bad = e.response['Error']['Code']
s3.delete_object(Bucket=bucket, Key='hdr/a b+c.txt')
after = s3.list_objects(Bucket=bucket, Prefix='hdr/')
print(json.dumps({
    'putEtag': put['ETag'], 'body': got['Body'].read().hex(), 'type': got['ContentType'], 'meta': got['Metadata'],
    'keys': [o['Key'] for o in listed.get('Contents', [])], 'bad': bad, 'after': [o['Key'] for o in after.get('Contents', [])],
}))
`;
    const result = await run(python, ['-c', script, server!.endpoint, bucket], { env: server!.clientEnv });
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    const body = Buffer.from('signed with hmac-sha1 ✓');
    assert.deepEqual(out, {
      putEtag: `"${createHash('md5').update(body).digest('hex')}"`,
      body: body.toString('hex'),
      type: 'text/plain',
      meta: { color: 'blue' },
      keys: ['hdr/a b+c.txt'],
      bad: 'BadDigest',
      after: [],
    });
  });
});
