import type { File } from '@google-cloud/storage';
import { crc32c } from '@node-rs/crc32';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';

const debug = debuglog('astore:blob:gcs');

/** Resumable uploads move in multiples of this (a GCS rule for every chunk but the last). */
export const chunkQuantum = 256 * 1024;
/** Attempts per upload chunk on a network error, timeout, 408, 429 or 5xx (the SDK retries its own requests). */
const chunkAttempts = 5;
/** A chunk request idle (no bytes moving) this long is abandoned and retried. */
const chunkRequestTimeoutMs = 120_000;

/**
 * The sink of one put: a GCS resumable upload (https://cloud.google.com/storage/docs/performing-resumable-uploads)
 * driven chunk by chunk. A chunk is sent only once more bytes are buffered than one chunk holds, so the
 * last chunk (sent from _final with the total size and crc32c) is the only one that can finalise the
 * object. Memory: the body's own buffers for at most one chunk plus one write, never copied (they are
 * written to the socket as they are), whatever the blob's size.
 */
export class ResumableUpload extends Writable {
  /** Bytes the session has persisted: the offset of the next chunk. */
  private offset = 0;
  private crc = 0;
  private pieces: Buffer[] = [];
  private buffered = 0;
  private uri: string | undefined;
  private finished = false;
  /** Aborts the request in flight and the retry wait when the stream is destroyed (error or signal). */
  private readonly stop = new AbortController();

  constructor(
    private readonly file: File,
    private readonly chunkSize: number,
  ) {
    super({ highWaterMark: chunkQuantum });
  }

  get size(): number {
    return this.offset;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.crc = crc32c(chunk, this.crc);
    this.pieces.push(chunk);
    this.buffered += chunk.length;
    void this.drainFullChunks().then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    void this.sendLast().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.stop.abort(err ?? new Error('upload destroyed'));
    this.pieces = [];
    this.buffered = 0;
    const uri = this.uri;
    if (uri && !this.finished) {
      // Best effort: GCS answers 499 and forgets the session; an unfinished session never becomes an object.
      call('DELETE', uri, {}, [], AbortSignal.timeout(10_000)).catch((cancelErr: unknown) =>
        debug('cancelling the upload session of %s failed: %o', this.file.name, cancelErr),
      );
    }
    callback(err);
  }

  private async drainFullChunks(): Promise<void> {
    while (this.buffered > this.chunkSize) await this.send(this.take(this.chunkSize), false);
  }

  private async sendLast(): Promise<void> {
    const last = this.take(this.buffered);
    const total = this.offset + byteLength(last);
    const object = await this.send(last, true);
    if (!object) throw new Error(`gcs upload of ${this.file.name}: the last chunk did not finalise the object`);
    const expected = crcBase64(this.crc);
    if (Number(object.size) !== total || object.crc32c !== expected) {
      // GCS checks X-Goog-Hash before it finalises; this catches servers that do not (emulators).
      await this.file.delete({ ignoreNotFound: true, ifGenerationMatch: object.generation }).catch(() => {});
      throw new Error(`gcs upload of ${this.file.name}: stored ${object.size} bytes with crc32c ${object.crc32c}, sent ${total} with ${expected}`);
    }
    this.finished = true;
  }

  /** The first `n` buffered bytes, as the pieces (or views of pieces) that hold them. */
  private take(n: number): Buffer[] {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const piece = this.pieces[0]!;
      if (piece.length <= need) {
        parts.push(piece);
        this.pieces.shift();
        need -= piece.length;
      } else {
        parts.push(piece.subarray(0, need));
        this.pieces[0] = piece.subarray(need);
        need = 0;
      }
    }
    this.buffered -= n;
    return parts;
  }

  /**
   * Sends `chunk` at `this.offset` until the session has persisted all of it (GCS may keep less than
   * a request carried; the rest is sent again). Returns the object's metadata when `last` finalised it.
   * After a failed request (network error, timeout, 408, 429, 5xx) it waits, asks the session how far it
   * got, and goes on from there; the chunk stays in memory until it is persisted.
   */
  private async send(chunk: Buffer[], last: boolean): Promise<ObjectResource | undefined> {
    this.uri ??= await this.createSession();
    const start = this.offset;
    const end = start + byteLength(chunk); // exclusive
    let failures = 0;
    let unsure = false;
    for (;;) {
      this.stop.signal.throwIfAborted();
      const before = this.offset;
      let outcome: ChunkOutcome;
      try {
        if (unsure) {
          // A status query. (fake-gcs-server finalises the object on this one.)
          outcome = await this.request({ 'content-range': 'bytes */*' }, []);
        } else {
          const rest = skip(chunk, this.offset - start);
          const headers: Record<string, string> = {
            'content-range': this.offset < end ? `bytes ${this.offset}-${end - 1}/${last ? end : '*'}` : `bytes */${end}`,
          };
          if (last) headers['x-goog-hash'] = `crc32c=${crcBase64(this.crc)}`;
          outcome = await this.request(headers, rest);
        }
      } catch (err) {
        if (this.stop.signal.aborted || !isTransient(err)) throw err;
        outcome = { retry: err };
      }
      if ('retry' in outcome) {
        if (++failures >= chunkAttempts) throw outcome.retry;
        debug('upload of %s at %d: attempt %d failed: %o', this.file.name, this.offset, failures, outcome.retry);
        await sleep(250 * 2 ** failures * (0.5 + Math.random()), undefined, { signal: this.stop.signal });
        unsure = true;
        continue;
      }
      if ('object' in outcome) {
        if (!last) throw new Error(`gcs upload of ${this.file.name}: the session finalised before its last chunk`);
        this.offset = Number(outcome.object.size);
        return outcome.object;
      }
      if (outcome.persisted < start) {
        throw new Error(`gcs upload of ${this.file.name}: the session lost bytes (it has ${outcome.persisted}, ${start} were confirmed)`);
      }
      this.offset = Math.min(outcome.persisted, end);
      if (this.offset === end && !last) return undefined;
      // A request that moved nothing forward counts as a failure, so a stuck session cannot loop forever.
      if (!unsure && this.offset === before && ++failures >= chunkAttempts) {
        throw new Error(`gcs upload of ${this.file.name}: the session does not accept bytes at ${this.offset}`);
      }
      unsure = false;
    }
  }

  private async request(headers: Record<string, string>, body: Buffer[]): Promise<ChunkOutcome> {
    const reply = await call('PUT', this.uri!, headers, body, this.stop.signal);
    if (reply.status === 200 || reply.status === 201) return { object: JSON.parse(reply.body) as ObjectResource };
    if (reply.status === 308) {
      // `Range: bytes=0-N` names the persisted bytes; no header means none.
      const match = /^bytes=0-(\d+)$/.exec(String(reply.headers.range ?? ''));
      return { persisted: match ? Number(match[1]) + 1 : 0 };
    }
    const err = new GcsUploadError(this.file.name, reply.status, reply.body);
    if (reply.status === 408 || reply.status === 429 || reply.status >= 500) return { retry: err };
    throw err;
  }

  private async createSession(): Promise<string> {
    this.stop.signal.throwIfAborted();
    const [uri] = await this.file.createResumableUpload({ metadata: { contentType: 'application/octet-stream' } });
    this.stop.signal.throwIfAborted();
    return uri;
  }
}

interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One request to a session URI, which authorises it by itself (no credentials are sent). node:http
 * rather than fetch(): fetch copies a Buffer body, and a stream body would go without Content-Length.
 * The body's buffers are written as they are. Caveat: HTTP(S)_PROXY is not honoured here (the SDK's
 * own requests do honour it).
 */
function call(method: string, uri: string, headers: Record<string, string>, body: readonly Buffer[], signal: AbortSignal): Promise<HttpReply> {
  const url = new URL(uri);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers: { ...headers, 'content-length': String(byteLength(body)) }, signal }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.setTimeout(chunkRequestTimeoutMs, () => req.destroy(new RequestTimeoutError(method, chunkRequestTimeoutMs)));
    for (const part of body) req.write(part);
    req.end();
  });
}

class RequestTimeoutError extends Error {
  constructor(method: string, ms: number) {
    super(`gcs upload: ${method} request idle for ${ms / 1000} s`);
    this.name = 'TimeoutError';
  }
}

type ChunkOutcome = { object: ObjectResource } | { persisted: number } | { retry: unknown };

interface ObjectResource {
  size: string;
  crc32c?: string;
  generation: string;
}

/** A resumable-upload request GCS refused. */
export class GcsUploadError extends Error {
  constructor(
    readonly objectName: string,
    readonly status: number,
    body: string,
  ) {
    super(`gcs upload of ${objectName}: HTTP ${status}: ${body.slice(0, 500)}`);
    this.name = 'GcsUploadError';
  }
}

function crcBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}

const networkErrors = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN']);

/** A network failure or an idle request (not an abort): worth asking the session where it got to. */
function isTransient(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return typeof code === 'string' && networkErrors.has(code);
}

function byteLength(parts: readonly Buffer[]): number {
  return parts.reduce((n, part) => n + part.length, 0);
}

/** `parts` without their first `n` bytes. */
function skip(parts: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const part of parts) {
    if (n >= part.length) {
      n -= part.length;
      continue;
    }
    out.push(n > 0 ? part.subarray(n) : part);
    n = 0;
  }
  return out;
}
