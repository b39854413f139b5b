import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { accessKeyId, region, secretKey } from '../helpers/server.ts';
import { signRequest } from '../helpers/sign.ts';

// Tools for the crash-safety test: deterministic bodies that never sit whole in memory, requests
// whose bodies the test streams by hand (so it knows how many bytes the server got when the kill
// lands), read-back by sha256, and an audit of what the server left in its data dir.

const chunkBytes = 1024 * 1024;
const zeros = Buffer.alloc(chunkBytes);

/** `size` pseudo-random bytes named by `seed`: the AES-128-CTR keystream under sha256(seed). */
export interface ByteRun {
  seed: string;
  size: number;
}

/** Anything a StreamedRequest can send: read front to back in chunks. */
export interface BodySource {
  readonly remaining: number;
  /** The next at most `max` bytes (fewer at the end). */
  read(max: number): Buffer;
}

export class RunReader implements BodySource {
  private readonly cipher: ReturnType<typeof createCipheriv>;
  private left: number;

  constructor(run: ByteRun) {
    this.cipher = createCipheriv('aes-128-ctr', createHash('sha256').update(run.seed).digest().subarray(0, 16), Buffer.alloc(16));
    this.left = run.size;
  }

  get remaining(): number {
    return this.left;
  }

  read(max: number): Buffer {
    const n = Math.min(max, this.left, chunkBytes);
    this.left -= n;
    return this.cipher.update(zeros.subarray(0, n));
  }
}

export class BufferReader implements BodySource {
  private offset = 0;
  constructor(private readonly buffer: Buffer) {}
  get remaining(): number {
    return this.buffer.length - this.offset;
  }
  read(max: number): Buffer {
    const chunk = this.buffer.subarray(this.offset, this.offset + Math.min(max, chunkBytes));
    this.offset += chunk.length;
    return chunk;
  }
}

/** The whole run in memory: only for multipart parts (a few MiB). */
export function runBytes(run: ByteRun): Buffer {
  const reader = new RunReader(run);
  const chunks: Buffer[] = [];
  while (reader.remaining > 0) chunks.push(reader.read(chunkBytes));
  return Buffer.concat(chunks);
}

/** One version of an object: its bytes (one run per part) and what S3 must report for it. */
export interface Version {
  label: string;
  parts: readonly ByteRun[];
  size: number;
  /** Hex sha256 of the whole object. */
  sha256: string;
  /** Quoted, as S3 returns it: md5 of the bytes, or for a multipart object md5 of the part md5s, then -N. */
  etag: string;
  partEtags: string[];
  /** "sha256:<hex>" of every blob the object names: one per part. */
  blobDigests: string[];
}

export function describeVersion(label: string, parts: readonly ByteRun[], multipart: boolean): Version {
  const whole = createHash('sha256');
  const partEtags: string[] = [];
  const blobDigests: string[] = [];
  const partMd5s: Buffer[] = [];
  for (const run of parts) {
    const sha = createHash('sha256');
    const md5 = createHash('md5');
    const reader = new RunReader(run);
    while (reader.remaining > 0) {
      const chunk = reader.read(chunkBytes);
      whole.update(chunk);
      sha.update(chunk);
      md5.update(chunk);
    }
    const md5Bytes = md5.digest();
    partMd5s.push(md5Bytes);
    partEtags.push(`"${md5Bytes.toString('hex')}"`);
    blobDigests.push(`sha256:${sha.digest('hex')}`);
  }
  const etag = multipart
    ? `"${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${parts.length}"`
    : partEtags[0]!;
  return { label, parts, size: parts.reduce((n, p) => n + p.size, 0), sha256: whole.digest('hex'), etag, partEtags, blobDigests };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({ endpoint, region, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId, secretAccessKey: secretKey } });
}

/** What HEAD and GET of a key showed; null where the key was absent (404). */
export interface Seen {
  head: { size: number; etag: string } | null;
  get: { contentLength: number; size: number; sha256: string; etag: string } | null;
  /** Anything but a 200 or a 404, or a body cut short: never acceptable. */
  errors: string[];
}

export async function readBack(client: S3Client, bucket: string, key: string): Promise<Seen> {
  const seen: Seen = { head: null, get: null, errors: [] };
  const failed = (what: string, err: unknown) => {
    const e = err as Error & { $response?: { statusCode?: number } };
    if (httpStatus(err) !== 404) seen.errors.push(`${what} failed: ${httpStatus(err) ?? e.$response?.statusCode ?? 'no status'} ${e.name}: ${e.message.split('\n')[0]}`);
  };
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    seen.head = { size: head.ContentLength ?? -1, etag: head.ETag ?? '' };
  } catch (err) {
    failed('HEAD', err);
  }
  try {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const sha = createHash('sha256');
    let size = 0;
    for await (const chunk of got.Body as Readable) {
      sha.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    seen.get = { contentLength: got.ContentLength ?? -1, size, sha256: sha.digest('hex'), etag: got.ETag ?? '' };
  } catch (err) {
    failed('GET', err);
  }
  return seen;
}

/** The version `seen` shows, if it shows one of `candidates` whole and consistently (HEAD, GET, ETag, length). */
export function matchVersion(seen: Seen, candidates: ReadonlyArray<Version | undefined>): Version | undefined {
  const { head, get } = seen;
  if (!head || !get || seen.errors.length > 0) return undefined;
  return candidates.find(
    (v) =>
      v !== undefined &&
      get.sha256 === v.sha256 &&
      get.size === v.size &&
      get.contentLength === v.size &&
      get.etag === v.etag &&
      head.size === v.size &&
      head.etag === v.etag,
  );
}

export function describeSeen(seen: Seen): string {
  const failed = (what: string) => seen.errors.some((e) => e.startsWith(what));
  const head = seen.head ? `HEAD size ${seen.head.size} ETag ${seen.head.etag}` : failed('HEAD') ? [] : 'HEAD 404';
  const get = seen.get
    ? `GET ${seen.get.size} bytes (Content-Length ${seen.get.contentLength}) sha256 ${seen.get.sha256} ETag ${seen.get.etag}`
    : failed('GET') ? [] : 'GET 404';
  return [head, get, ...seen.errors].flat().join('; ');
}

export function describeVersionBrief(v: Version | undefined): string {
  return v ? `${v.label} (${v.size} bytes, sha256 ${v.sha256}, ETag ${v.etag})` : 'absent';
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One signed S3 request whose body the test writes by hand: `sendUntil(n)` stops once n bytes were
 * handed to the socket (so the server has had at most n), `finish()` sends the rest. It never
 * rejects: a request cut by the kill ends with `error` set and no `response`. `response` is set
 * only when a response arrived whole, i.e. the server acknowledged (or refused) the request.
 */
export class StreamedRequest {
  bytesSent = 0;
  response: RawResponse | undefined;
  error: Error | undefined;
  /** performance.now() when finish() began sending the rest, and when the whole response was in. */
  releasedAt: number | undefined;
  answeredAt: number | undefined;
  /** Resolves once the request is over: answered, failed or closed. */
  readonly settled: Promise<void>;
  /** Resolves when a whole response arrived (never, if the request is cut). */
  readonly answered: Promise<RawResponse>;
  private closed = false;

  private constructor(
    private readonly req: ClientRequest,
    private readonly body: BodySource,
  ) {
    let settle!: () => void;
    let answer!: (r: RawResponse) => void;
    this.settled = new Promise((r) => (settle = r));
    this.answered = new Promise((r) => (answer = r));
    const done = () => {
      this.closed = true;
      settle();
    };
    let responding = false;
    req.on('response', (res) => {
      responding = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        this.answeredAt = performance.now();
        this.response = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
        answer(this.response);
      });
      res.on('close', done);
      res.on('error', (err) => (this.error ??= err));
    });
    req.on('error', (err) => {
      this.error ??= err;
      done();
    });
    req.on('close', () => {
      this.closed = true;
      // Without a response, 'close' is the end; with one, its stream's 'close' is.
      if (!responding) setImmediate(done);
    });
  }

  /**
   * Opens the request and sends its headers. `payloadSha256` is the hex sha256 of the body, or
   * UNSIGNED-PAYLOAD.
   */
  static async open(
    port: number,
    input: { method: string; path: string; query?: Record<string, string>; body: BodySource; payloadSha256: string; headers?: Record<string, string> },
  ): Promise<StreamedRequest> {
    const host = `127.0.0.1:${port}`;
    const length = input.body.remaining;
    const headers = await signRequest(host, {
      method: input.method,
      path: input.path,
      query: input.query,
      headers: { 'content-length': String(length), 'x-amz-content-sha256': input.payloadSha256, ...input.headers },
    });
    const search = new URLSearchParams(input.query ?? {}).toString();
    const req = request({
      host: '127.0.0.1',
      port,
      method: input.method,
      path: search ? `${input.path}?${search}` : input.path,
      headers,
      agent: false,
    });
    req.flushHeaders();
    return new StreamedRequest(req, input.body);
  }

  /** Writes body bytes until `bytesSent` reaches `upTo` (or the request is closed). */
  async sendUntil(upTo: number): Promise<void> {
    while (this.bytesSent < upTo && this.body.remaining > 0 && !this.closed) {
      const chunk = this.body.read(Math.min(chunkBytes, upTo - this.bytesSent));
      this.bytesSent += chunk.length;
      if (!this.req.write(chunk)) await this.drained();
    }
  }

  /**
   * Sends body bytes until `bytesSent` reaches `upTo`, in 64 KiB steps spread evenly until
   * `deadline` (a performance.now() time), the last step at the deadline: a kill right after lands
   * while the server is still taking bytes in.
   */
  async sendPaced(upTo: number, deadline: number): Promise<void> {
    const begin = performance.now();
    const steps = Math.ceil(Math.max(0, upTo - this.bytesSent) / (64 * 1024));
    for (let i = 1; i <= steps && !this.closed; i++) {
      await sleepUntil(begin + ((deadline - begin) * i) / steps);
      await this.sendUntil(Math.min(upTo, this.bytesSent + 64 * 1024));
    }
  }

  /** Sends the rest of the body and ends the request; resolves once it is handed to the socket. */
  async finish(): Promise<void> {
    this.releasedAt = performance.now();
    await this.sendUntil(Infinity);
    if (this.closed) return;
    await new Promise<void>((resolve) => this.req.end(resolve));
  }

  destroy(): void {
    this.req.destroy();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.req.off('drain', done);
        this.req.off('close', done);
        resolve();
      };
      this.req.on('drain', done);
      this.req.on('close', done);
    });
  }
}

/** Resolves at `t` (a performance.now() time), to within a fraction of a millisecond. */
export async function sleepUntil(t: number): Promise<void> {
  while (t - performance.now() > 2) await sleep(1);
  while (performance.now() < t) await new Promise((r) => setImmediate(r));
}

/** Where the fs BlobStore under `dataDir` keeps the blob of `digest` ("sha256:<hex>"). */
export function blobPath(dataDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(dataDir, 'blobs', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/** Polls until `path` exists: when it was first seen, or undefined if `giveUp` settled first. */
export async function fileAppears(path: string, giveUp: Promise<unknown>): Promise<number | undefined> {
  let over = false;
  void giveUp.then(() => (over = true));
  for (;;) {
    if (existsSync(path)) return performance.now();
    if (over) return undefined;
    await new Promise((r) => setImmediate(r));
  }
}

/** Files the server left in its data dir, sorted by what they are. */
export interface DataDirAudit {
  /** blobs/.tmp/<uuid>: a put in flight; removed when the store opens. */
  tmpFiles: string[];
  /** blobs/staging/<uuid>: an ingest in flight or cut by a crash; removed by GC after the grace. */
  stagingFiles: string[];
  /** blobs/blobs/sha256/<xx>/<hex> as "sha256:<hex>" → size. */
  blobFiles: Map<string, number>;
  /** Anything else: symlinks, stray files, unknown directories. Must stay empty. */
  unexpected: string[];
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const allowedDirs = [/^blobs$/, /^blobs\/\.tmp$/, /^blobs\/staging$/, /^blobs\/blobs$/, /^blobs\/blobs\/sha256$/, /^blobs\/blobs\/sha256\/[0-9a-f]{2}$/];

/** Walks `dataDir` (lstat, so symlinks are reported, never followed) and classifies every entry. */
export async function auditDataDir(dataDir: string): Promise<DataDirAudit> {
  const audit: DataDirAudit = { tmpFiles: [], stagingFiles: [], blobFiles: new Map(), unexpected: [] };
  async function walk(rel: string): Promise<void> {
    const names = await readdir(join(dataDir, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      // A running server's GC may delete an entry between readdir and lstat: a vanished entry is
      // simply not there any more.
      const s = await lstat(join(dataDir, path)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (!s) continue;
      if (s.isDirectory()) {
        if (allowedDirs.some((re) => re.test(path))) await walk(path);
        else audit.unexpected.push(`${path}/`);
        continue;
      }
      if (!s.isFile()) {
        audit.unexpected.push(`${path} (not a regular file)`);
        continue;
      }
      const blob = /^blobs\/blobs\/sha256\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(path);
      if (rel === '' && /^(meta\.db(-wal|-shm)?|server-key)$/.test(name)) continue;
      else if (rel === 'blobs/.tmp' && uuid.test(name)) audit.tmpFiles.push(path);
      else if (rel === 'blobs/staging' && uuid.test(name)) audit.stagingFiles.push(path);
      else if (blob && blob[2]!.startsWith(blob[1]!)) audit.blobFiles.set(`sha256:${blob[2]}`, s.size);
      else audit.unexpected.push(path);
    }
  }
  await walk('');
  return audit;
}
