import { after, before, describe, test } from 'node:test';
import { runBoto3Section } from '../helpers/boto3.ts';
import { requireTool } from '../helpers/clients.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** boto3 1.44.5 end to end: each test runs one section of boto3_suite.py (see helpers/boto3.ts). */
let server: TestServer;

before(async () => {
  requireTool('ASTORE_TEST_PYTHON');
  server = await startServer();
});
after(async () => server?.stop());

describe('boto3: buckets', () => {
  test('create/head/list/location/delete, BucketAlreadyOwnedByYou, BucketNotEmpty, NoSuchBucket, InvalidBucketName', async () => {
    await runBoto3Section(server, 'buckets', [
      'create, head, list, location, delete',
      'creating an existing bucket is BucketAlreadyOwnedByYou',
      'deleting a bucket with an object is BucketNotEmpty and keeps it',
      'missing bucket is NoSuchBucket (404) for head, location, list, put, delete',
      'InvalidBucketName for Bad_Name and the reserved names v2 and api',
    ]);
  });
});

describe('boto3: objects', () => {
  test('CRUD with headers and metadata, response-* overrides, ranges, conditional GET/PUT, copy, delete_objects', async () => {
    await runBoto3Section(server, 'objects', [
      'put, get, head, delete with metadata and content headers',
      'an object without Content-Type is binary/octet-stream; empty objects work',
      'non-ASCII metadata values round-trip as RFC 2047 encoded words',
      'response-* query overrides on GET',
      'Range requests: first-last, open-ended, suffix, unsatisfiable',
      'conditional GET and HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since',
      'conditional PUT: If-None-Match * on an existing key is 412 and keeps the object',
      'copy_object with COPY and REPLACE directives, across keys with special characters',
      'delete_objects, non-quiet and quiet',
      'cleanup',
    ]);
  });
});

describe('boto3: payloads and checksums', () => {
  test('header and trailer payload modes, every checksum algorithm, BadDigest keeps the old object, s3transfer multipart', async () => {
    await runBoto3Section(server, 'payloads', [
      'default put_object over http: signed payload with an x-amz-checksum-crc32 header',
      "put_object with a file object: aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER (boto3's https mode)",
      'explicit checksum algorithms on put, returned by GetObject with ChecksumMode ENABLED',
      'a wrong checksum or Content-MD5 is BadDigest and leaves the previous object byte for byte',
      'upload_fileobj of 20 MiB: s3transfer multipart with CRC32, composite checksum, download_fileobj',
      'upload_file of 21 MiB in 5 MiB parts and download_file',
      'cleanup',
    ]);
  });
});

describe('boto3: multipart', () => {
  test('UploadPartCopy with range, ListParts, ListMultipartUploads, abort, complete errors, composite checksums', async () => {
    await runBoto3Section(server, 'multipart', [
      'create, upload parts, UploadPartCopy with range, ListParts, ListMultipartUploads, complete',
      'abort: the upload and its parts are gone',
      'complete errors: InvalidPart, InvalidPartOrder, EntityTooSmall; the upload survives them',
      'multipart with ChecksumAlgorithm: per-part checksums and a composite -N checksum',
      'cleanup',
    ]);
  });
});

describe('boto3: errors and presigned URLs', () => {
  test('S3 error documents: NoSuchKey, SignatureDoesNotMatch, InvalidAccessKeyId, KeyTooLongError, RequestTimeTooSkewed, oversized headers', async () => {
    await runBoto3Section(server, 'errors', [
      'NoSuchKey and NoSuchBucket are S3 error documents with a RequestId',
      'a wrong secret key is SignatureDoesNotMatch (403)',
      'an unknown access key is InvalidAccessKeyId (403)',
      'a 1025-byte key is KeyTooLongError; 1024 bytes of UTF-8 are fine',
      'X-Amz-Date an hour off is RequestTimeTooSkewed (403)',
      '20 KiB of x-amz-meta-* headers is a 400 S3 error, not a 500',
      'cleanup',
    ]);
  });

  test('generate_presigned_url GET and PUT fetched with urllib; tampered and expired URLs are refused', async () => {
    await runBoto3Section(server, 'presigned', [
      "presigned GET (SigV4 and boto3's default SigV2), with response-* overrides",
      'presigned PUT, with a signed Content-Type',
      'tampered and expired presigned URLs are refused',
      'cleanup',
    ]);
  });
});
