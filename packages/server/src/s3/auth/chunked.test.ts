import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { crc32 } from '@node-rs/crc32';
import { AstoreError, isAstoreError, type ErrorCode } from '../../core/errors.ts';
import { createChunkedDecoder, MAX_LINE_BYTES, type ChunkedDecoderOptions } from './chunked.ts';
import { signingKey, type ChunkSigningContext } from './signing.ts';
import { verifySigV4, type Credential } from './sigv4.ts';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

// The STREAMING-AWS4-HMAC-SHA256-PAYLOAD example of the AWS S3 documentation (sigv4-streaming).
const DOC_CONTEXT: ChunkSigningContext = {
  signingKey: signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  seedSignature: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  amzDate: '20130524T000000Z',
  scope: '20130524/us-east-1/s3/aws4_request',
};
const DOC_SIGNATURES = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];
const DOC_PAYLOAD = Buffer.alloc(66560, 'a');

// A context for bodies built here.
const CONTEXT: ChunkSigningContext = {
  signingKey: signingKey('test-secret', '20240305', 'us-east-1', 's3'),
  seedSignature: sha256Hex('seed'),
  amzDate: '20240305T102030Z',
  scope: '20240305/us-east-1/s3/aws4_request',
};

// ---------------------------------------------------------------------------------------------
// Body builders, written from the AWS specification independently of the decoder
// ---------------------------------------------------------------------------------------------

function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

function chunkSignature(ctx: ChunkSigningContext, previous: string, data: Buffer): string {
  return hmac(ctx.signingKey, ['AWS4-HMAC-SHA256-PAYLOAD', ctx.amzDate, ctx.scope, previous, EMPTY_SHA256, sha256Hex(data)].join('\n'));
}

function splitPayload(payload: Buffer, chunkSize: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < payload.length; i += chunkSize) chunks.push(payload.subarray(i, i + chunkSize));
  return chunks;
}

/** STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body; returns the signatures used, too. */
function signedBody(payload: Buffer, chunkSize: number, ctx = CONTEXT, trailerLines?: string[]): { body: Buffer; signatures: string[] } {
  const parts: Buffer[] = [];
  const signatures: string[] = [];
  let previous = ctx.seedSignature;
  for (const data of [...splitPayload(payload, chunkSize), Buffer.alloc(0)]) {
    previous = chunkSignature(ctx, previous, data);
    signatures.push(previous);
    parts.push(Buffer.from(`${data.length.toString(16)};chunk-signature=${previous}\r\n`), data);
    if (data.length > 0) parts.push(Buffer.from('\r\n'));
  }
  if (trailerLines) {
    for (const line of trailerLines) parts.push(Buffer.from(`${line}\r\n`));
    const trailerSignature = hmac(
      ctx.signingKey,
      ['AWS4-HMAC-SHA256-TRAILER', ctx.amzDate, ctx.scope, previous, sha256Hex(trailerLines.map((l) => `${l}\n`).join(''))].join('\n'),
    );
    parts.push(Buffer.from(`x-amz-trailer-signature:${trailerSignature}\r\n`));
  }
  parts.push(Buffer.from('\r\n'));
  return { body: Buffer.concat(parts), signatures };
}

/** STREAMING-UNSIGNED-PAYLOAD-TRAILER body. */
function unsignedTrailerBody(payload: Buffer, chunkSize: number, trailerLines: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const data of splitPayload(payload, chunkSize)) parts.push(Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\n'));
  for (const line of trailerLines) parts.push(Buffer.from(`${line}\r\n`));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

function crc32Base64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data) >>> 0);
  return out.toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Running the decoder
// ---------------------------------------------------------------------------------------------

interface Decoded {
  payload: Buffer;
  trailers: Record<string, string>;
  pieces: number[];
}

async function decode(pieces: Iterable<Buffer>, options: ChunkedDecoderOptions): Promise<Decoded> {
  const decoder = createChunkedDecoder(options);
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces, { objectMode: false }), decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const piece of source) out.push(piece);
  });
  return { payload: Buffer.concat(out), trailers: decoder.trailers(), pieces: out.map((p) => p.length) };
}

function* split(body: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAstoreError(err), `expected AstoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const signedOptions = (extra: Partial<ChunkedDecoderOptions> = {}): ChunkedDecoderOptions => ({
  signing: CONTEXT,
  trailer: false,
  expectedTrailers: [],
  ...extra,
});

// ---------------------------------------------------------------------------------------------

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the AWS documentation example', () => {
  const docBody = Buffer.concat([
    Buffer.from(`10000;chunk-signature=${DOC_SIGNATURES[0]}\r\n`),
    DOC_PAYLOAD.subarray(0, 65536),
    Buffer.from(`\r\n400;chunk-signature=${DOC_SIGNATURES[1]}\r\n`),
    DOC_PAYLOAD.subarray(65536),
    Buffer.from(`\r\n0;chunk-signature=${DOC_SIGNATURES[2]}\r\n\r\n`),
  ]);

  test('the body built here has the documented signatures and Content-Length 66824', () => {
    const { body, signatures } = signedBody(DOC_PAYLOAD, 65536, DOC_CONTEXT);
    assert.deepEqual(signatures, DOC_SIGNATURES);
    assert.equal(body.length, 66824);
    assert.ok(body.equals(docBody));
  });

  test('the decoder accepts the documented body and emits the 66560 bytes', async () => {
    const decoded = await decode(split(docBody, 8192), { signing: DOC_CONTEXT, trailer: false, expectedTrailers: [], decodedLength: 66560 });
    assert.ok(decoded.payload.equals(DOC_PAYLOAD));
  });

  test('one changed byte of data is SignatureDoesNotMatch', async () => {
    const tampered = Buffer.from(docBody);
    tampered[66000] = 0x62; // inside the second chunk's data (bytes 65710..66733)
    await rejectsWith(decode([tampered], { signing: DOC_CONTEXT, trailer: false, expectedTrailers: [] }), 'SignatureDoesNotMatch');
  });
});

describe('signed chunks', () => {
  const payload = Buffer.from(Array.from({ length: 700 }, (_, i) => i % 251));

  test('fed one byte at a time, with trailers', async () => {
    const crc = crc32Base64(payload);
    const { body } = signedBody(payload, 256, CONTEXT, [`x-amz-checksum-crc32:${crc}`]);
    const decoded = await decode(split(body, 1), signedOptions({ trailer: true, expectedTrailers: ['x-amz-checksum-crc32'], decodedLength: 700 }));
    assert.ok(decoded.payload.equals(payload));
    assert.deepEqual(decoded.trailers, { 'x-amz-checksum-crc32': crc });
  });

  test('split in two at every position (inside headers, data and CRLFs)', async () => {
    const small = payload.subarray(0, 150);
    const { body } = signedBody(small, 64, CONTEXT);
    for (let at = 1; at < body.length; at++) {
      const decoded = await decode([body.subarray(0, at), body.subarray(at)], signedOptions({ decodedLength: 150 }));
      assert.ok(decoded.payload.equals(small), `split at ${at}`);
    }
  });

  test('an empty payload is a single final chunk', async () => {
    const { body } = signedBody(Buffer.alloc(0), 64, CONTEXT);
    const decoded = await decode([body], signedOptions({ decodedLength: 0 }));
    assert.equal(decoded.payload.length, 0);
  });

  test('16 MiB in 1 MiB chunks streams through without buffering a chunk', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i * 2654435761 >>> 0, i);
    const { body } = signedBody(big, 1024 * 1024, CONTEXT);
    const decoded = await decode(split(body, 64 * 1024), signedOptions({ decodedLength: big.length }));
    assert.equal(sha256Hex(decoded.payload), sha256Hex(big));
    assert.ok(Math.max(...decoded.pieces) <= 64 * 1024, 'no emitted piece is larger than an input piece');
  });

  test('data is emitted before its chunk has fully arrived', async () => {
    const data = Buffer.alloc(1024 * 1024, 7);
    const { body } = signedBody(data, data.length, CONTEXT);
    const decoder = createChunkedDecoder(signedOptions());
    let emitted = 0;
    decoder.on('data', (piece: Buffer) => (emitted += piece.length));
    decoder.write(body.subarray(0, 512 * 1024));
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(emitted > 400 * 1024, `emitted ${emitted} bytes of the first half`);
    decoder.end(body.subarray(512 * 1024));
    await once(decoder, 'end');
    assert.equal(emitted, data.length);
  });

  test('a wrong chunk signature is SignatureDoesNotMatch', async () => {
    const { body, signatures } = signedBody(payload, 256, CONTEXT);
    const tampered = Buffer.from(body.toString('latin1').replace(signatures[1] as string, 'f'.repeat(64)), 'latin1');
    await rejectsWith(decode([tampered], signedOptions()), 'SignatureDoesNotMatch');
  });

  test('chunks signed with another seed are SignatureDoesNotMatch', async () => {
    const { body } = signedBody(payload, 256, { ...CONTEXT, seedSignature: sha256Hex('other request') });
    await rejectsWith(decode([body], signedOptions()), 'SignatureDoesNotMatch');
  });

  test('a reordered chunk is SignatureDoesNotMatch', async () => {
    const parts = [Buffer.alloc(100, 1), Buffer.alloc(100, 2)];
    const { body } = signedBody(Buffer.concat(parts), 100, CONTEXT);
    const text = body.toString('latin1');
    const first = text.indexOf('64;');
    const second = text.indexOf('64;', first + 1);
    const third = text.indexOf('0;', second + 100);
    const swapped = text.slice(0, first) + text.slice(second, third) + text.slice(first, second) + text.slice(third);
    await rejectsWith(decode([Buffer.from(swapped, 'latin1')], signedOptions()), 'SignatureDoesNotMatch');
  });

  test('a wrong or missing trailer signature, or a changed trailer, fails', async () => {
    const lines = [`x-amz-checksum-crc32:${crc32Base64(payload)}`];
    const options = signedOptions({ trailer: true, expectedTrailers: ['x-amz-checksum-crc32'] });
    const { body } = signedBody(payload, 256, CONTEXT, lines);
    const text = body.toString('latin1');
    const changedValue = text.replace(lines[0] as string, 'x-amz-checksum-crc32:AAAAAA==');
    await rejectsWith(decode([Buffer.from(changedValue, 'latin1')], options), 'SignatureDoesNotMatch');
    const wrongSignature = text.replace(/x-amz-trailer-signature:[0-9a-f]{64}/, `x-amz-trailer-signature:${'0'.repeat(64)}`);
    await rejectsWith(decode([Buffer.from(wrongSignature, 'latin1')], options), 'SignatureDoesNotMatch');
    const missing = text.replace(/x-amz-trailer-signature:[0-9a-f]{64}\r\n/, '');
    await rejectsWith(decode([Buffer.from(missing, 'latin1')], options), 'InvalidRequest', /x-amz-trailer-signature/);
  });

  test('a chunk header without chunk-signature is InvalidRequest', async () => {
    await rejectsWith(decode([Buffer.from('5\r\nhello\r\n0\r\n\r\n')], signedOptions()), 'InvalidRequest', /chunk-signature/);
  });
});

describe('STREAMING-UNSIGNED-PAYLOAD-TRAILER', () => {
  const payload = Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(100));
  const crc = crc32Base64(payload);
  const options: ChunkedDecoderOptions = { trailer: true, expectedTrailers: ['x-amz-checksum-crc32'], decodedLength: payload.length };

  test('decodes the payload and returns the x-amz-checksum-crc32 trailer', async () => {
    const body = unsignedTrailerBody(payload, 1000, [`x-amz-checksum-crc32:${crc}`]);
    const decoded = await decode([body], options);
    assert.ok(decoded.payload.equals(payload));
    assert.deepEqual(decoded.trailers, { 'x-amz-checksum-crc32': crc });
  });

  test('fed one byte at a time', async () => {
    const body = unsignedTrailerBody(payload, 333, [`x-amz-checksum-crc32:${crc}`]);
    const decoded = await decode(split(body, 1), options);
    assert.ok(decoded.payload.equals(payload));
    assert.equal(decoded.trailers['x-amz-checksum-crc32'], crc);
  });

  test('split in two at every position', async () => {
    const small = payload.subarray(0, 90);
    const body = unsignedTrailerBody(small, 40, [`x-amz-checksum-crc32:${crc32Base64(small)}`]);
    for (let at = 1; at < body.length; at++) {
      const decoded = await decode([body.subarray(0, at), body.subarray(at)], { ...options, decodedLength: 90 });
      assert.ok(decoded.payload.equals(small), `split at ${at}`);
    }
  });

  test('a body that stops after the last trailer line (no closing CRLF) is accepted', async () => {
    const body = unsignedTrailerBody(payload, 1000, [`x-amz-checksum-crc32:${crc}`]);
    const decoded = await decode([body.subarray(0, body.length - 2)], options);
    assert.equal(decoded.trailers['x-amz-checksum-crc32'], crc);
  });

  test('a declared trailer that is missing is InvalidRequest', async () => {
    await rejectsWith(decode([unsignedTrailerBody(payload, 1000, [])], options), 'InvalidRequest', /missing/);
  });

  test('an undeclared trailer is InvalidRequest', async () => {
    const body = unsignedTrailerBody(payload, 1000, [`x-amz-checksum-crc32:${crc}`, 'x-amz-checksum-sha1:abc=']);
    await rejectsWith(decode([body], options), 'InvalidRequest', /not declared/);
  });

  test('a trailer line without a colon is InvalidRequest', async () => {
    await rejectsWith(decode([unsignedTrailerBody(payload, 1000, ['garbage'])], options), 'InvalidRequest');
  });
});

describe('framing errors', () => {
  const payload = Buffer.alloc(500, 0x41);
  const { body } = signedBody(payload, 200, CONTEXT);

  test('decoded length shorter or longer than x-amz-decoded-content-length is IncompleteBody', async () => {
    await rejectsWith(decode([body], signedOptions({ decodedLength: 501 })), 'IncompleteBody');
    await rejectsWith(decode([body], signedOptions({ decodedLength: 499 })), 'IncompleteBody');
  });

  test('a body that ends early is IncompleteBody (in data, in a header, before the final chunk)', async () => {
    for (const at of [100, 230, 300, body.length - 90, body.length - 1]) {
      await rejectsWith(decode([body.subarray(0, at)], signedOptions()), 'IncompleteBody', undefined);
    }
  });

  test('a chunk size that does not match its data is IncompleteBody', async () => {
    const unsigned = Buffer.from('5\r\nhello world\r\n0\r\n\r\n');
    await rejectsWith(decode([unsigned], { trailer: true, expectedTrailers: [] }), 'IncompleteBody');
  });

  test('a chunk size that is not hex is InvalidRequest', async () => {
    await rejectsWith(decode([Buffer.from('zz\r\nhello\r\n0\r\n\r\n')], { trailer: true, expectedTrailers: [] }), 'InvalidRequest');
    await rejectsWith(decode([Buffer.from('\r\n')], { trailer: true, expectedTrailers: [] }), 'InvalidRequest');
  });

  test('a line ending in a bare LF is InvalidRequest', async () => {
    await rejectsWith(decode([Buffer.from('5\nhello\r\n0\r\n\r\n')], { trailer: true, expectedTrailers: [] }), 'InvalidRequest', /CRLF/);
  });

  test('an endless header line is refused once it passes the bound, whatever the pieces', async () => {
    const garbage = Buffer.alloc(MAX_LINE_BYTES * 4, 0x31);
    await rejectsWith(decode(split(garbage, 100), { trailer: true, expectedTrailers: [] }), 'InvalidRequest', /too long/);
    await rejectsWith(decode([garbage], signedOptions()), 'InvalidRequest', /too long/);
    const longTrailer = Buffer.concat([Buffer.from('0\r\n'), Buffer.alloc(MAX_LINE_BYTES + 10, 0x61)]);
    await rejectsWith(decode(split(longTrailer, 7), { trailer: true, expectedTrailers: [] }), 'InvalidRequest', /too long/);
  });

  test('data after the final chunk is InvalidRequest', async () => {
    await rejectsWith(decode([body, Buffer.from('extra')], signedOptions()), 'InvalidRequest', /after the end/);
  });

  test('trailer lines when no trailer was declared are InvalidRequest', async () => {
    const withTrailer = signedBody(payload, 200, CONTEXT, ['x-amz-checksum-crc32:AAAAAA==']).body;
    await rejectsWith(decode([withTrailer], signedOptions()), 'InvalidRequest');
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: @aws-sdk/client-s3 against a plain node:http server running verifySigV4 + the decoder
// ---------------------------------------------------------------------------------------------

interface Received {
  method: string;
  url: string;
  payloadKind: string;
  sha256: string;
  length: number;
  crc32: string;
  checksumHeader?: string;
  trailers: Record<string, string>;
}

describe('with @aws-sdk/client-s3 over HTTP', () => {
  const ACCESS_KEY = 'AKIAASTORETEST';
  const SECRET = 'astore/secret+key with spaces';
  const REGION = 'eu-central-1';
  const credential: Credential = { accessKeyId: ACCESS_KEY, secretKey: SECRET, principal: 'user:e2e' };
  const received: Received[] = [];
  let server: http.Server;
  let endpoint = '';

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const auth = await verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', rawHeaders: req.rawHeaders },
      { lookup: async (id) => (id === ACCESS_KEY ? credential : null), region: REGION, now: new Date(), maxSkewSeconds: 900 },
    );
    if (auth.kind !== 'signed') throw new AstoreError('AccessDenied');
    const { payload } = auth;
    const streaming = payload.kind === 'streaming-signed' || payload.kind === 'streaming-unsigned-trailer';
    const decoder = streaming
      ? createChunkedDecoder({
          signing: payload.kind === 'streaming-signed' ? auth.chunkSigning : undefined,
          trailer: payload.kind === 'streaming-unsigned-trailer' || (payload.kind === 'streaming-signed' && payload.trailer),
          expectedTrailers: String(req.headers['x-amz-trailer'] ?? '').split(',').map((n) => n.trim().toLowerCase()).filter(Boolean),
          decodedLength: req.headers['x-amz-decoded-content-length'] === undefined ? undefined : Number(req.headers['x-amz-decoded-content-length']),
        })
      : undefined;
    const hash = createHash('sha256');
    let crc = 0;
    let length = 0;
    const sink = new Writable({
      write(piece: Buffer, _encoding, callback) {
        hash.update(piece);
        crc = crc32(piece, crc);
        length += piece.length;
        callback();
      },
    });
    await (decoder ? pipeline(req, decoder, sink) : pipeline(req, sink));
    const sha256 = hash.digest('hex');
    if (payload.kind === 'signed' && payload.sha256 !== sha256) throw new AstoreError('XAmzContentSHA256Mismatch');
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32BE(crc >>> 0);
    received.push({
      method: req.method ?? '',
      url: req.url ?? '',
      payloadKind: payload.kind,
      sha256,
      length,
      crc32: crcBytes.toString('base64'),
      checksumHeader: req.headers['x-amz-checksum-crc32'] as string | undefined,
      trailers: decoder?.trailers() ?? {},
    });
    if (req.method === 'GET' && (req.url ?? '').includes('list-type=2')) {
      res.setHeader('content-type', 'application/xml');
      res.end('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bucket</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>');
      return;
    }
    res.setHeader('etag', '"d41d8cd98f00b204e9800998ecf8427e"');
    res.end(req.method === 'GET' ? 'object body' : '');
  };

  before(async () => {
    server = http.createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        const error = isAstoreError(err) ? err : new AstoreError('InternalError', String(err));
        res.statusCode = error.spec.status;
        res.setHeader('content-type', 'application/xml');
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${error.spec.s3Code}</Code><Message>${error.message}</Message></Error>`);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.close();
    await once(server, 'close');
  });

  const client = (secret = SECRET) =>
    new S3Client({
      endpoint,
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: secret },
      requestChecksumCalculation: 'WHEN_SUPPORTED',
      maxAttempts: 1,
    });

  test('PutObject with a Buffer: signed payload, CRC32 header, awkward key', async () => {
    const body = Buffer.from('hello from the AWS SDK ✓');
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'dir/my file+name!~(1)%.txt', Body: body }));
    s3.destroy();
    const last = received.at(-1);
    assert.equal(last?.payloadKind, 'signed');
    assert.equal(last?.sha256, sha256Hex(body));
    assert.equal(last?.checksumHeader, crc32Base64(body));
  });

  test('PutObject with a stream: aws-chunked body with an x-amz-checksum-crc32 trailer', async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i));
    const body = Buffer.concat(chunks);
    const s3 = client();
    await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'stream.bin', Body: Readable.from(chunks), ContentLength: body.length }));
    s3.destroy();
    const last = received.at(-1);
    assert.equal(last?.payloadKind, 'streaming-unsigned-trailer');
    assert.equal(last?.length, body.length);
    assert.equal(last?.sha256, sha256Hex(body));
    assert.deepEqual(last?.trailers, { 'x-amz-checksum-crc32': crc32Base64(body) });
  });

  test('GetObject and ListObjectsV2 with an awkward prefix verify', async () => {
    const s3 = client();
    const object = await s3.send(new GetObjectCommand({ Bucket: 'bucket', Key: 'ünï cödé/x y.txt' }));
    assert.equal(await object.Body?.transformToString(), 'object body');
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'bucket', Prefix: 'a b+c/ü', Delimiter: '/', StartAfter: '' }));
    assert.equal(list.KeyCount, 0);
    s3.destroy();
  });

  test('a wrong secret comes back to the client as SignatureDoesNotMatch', async () => {
    const s3 = client('wrong secret');
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: Buffer.from('x') })), (err: Error) => {
      assert.equal(err.name, 'SignatureDoesNotMatch');
      return true;
    });
    s3.destroy();
  });
});
