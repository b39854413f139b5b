// A deliberately thin S3 client for the benchmark: node:http with a keep-alive Agent, SigV4 headers from
// @smithy/signature-v4 with `x-amz-content-sha256: UNSIGNED-PAYLOAD` (so the client never hashes a body
// and its CPU cost stays small next to the server's), bodies streamed from body.ts, GET bodies drained
// and counted. Path-style URLs only: http://host:port/<bucket>/<key>.

import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { consumeBody, readText, RequestError } from '../common/http.ts';
import { BodyVerifier, stampOf, writeBody, type VerifyMode } from './body.ts';

export interface S3Target {
  endpoint: URL;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 / HMAC-SHA-256 on node:crypto, in the shape @smithy/signature-v4 expects (its `Checksum`). */
class NodeSha256 {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }

  update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = this.create();
  }

  private create(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
}

export class BenchS3Client {
  private readonly signer: SignatureV4;
  private readonly host: string;
  private readonly port: number;

  constructor(
    readonly target: S3Target,
    /** Unique per run, mixed into every object's stamp so no two objects (or runs) share bytes. */
    readonly runId: string,
    readonly verify: VerifyMode,
  ) {
    this.host = target.endpoint.hostname;
    this.port = Number(target.endpoint.port || 80);
    this.signer = new SignatureV4({
      service: 's3',
      region: target.region,
      credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey },
      sha256: NodeSha256,
      uriEscapePath: false, // S3 signs the path as sent, without a second round of escaping.
    });
  }

  /** PUT /<bucket>; an already existing bucket of ours is fine. */
  async createBucket(agent: http.Agent, signal?: AbortSignal): Promise<void> {
    const res = await this.send(agent, 'PUT', `/${this.target.bucket}`, 0, undefined, signal);
    const body = await readText(res);
    if (res.statusCode === 200) return;
    if (res.statusCode === 409 && /BucketAlreadyOwnedByYou/.test(body)) return;
    throw new RequestError(res.statusCode ?? 0, 'PUT', `/${this.target.bucket}`, body);
  }

  /** PUT of a generated object of `size` bytes; resolves with the bytes sent. */
  async putObject(agent: http.Agent, key: string, size: number, signal?: AbortSignal): Promise<number> {
    const path = this.objectPath(key);
    const res = await this.send(agent, 'PUT', path, size, stampOf(this.runId, key), signal);
    const body = await readText(res);
    if (res.statusCode !== 200) throw new RequestError(res.statusCode ?? 0, 'PUT', path, body);
    return size;
  }

  /** GET of an object written by putObject; drains, counts and checks the body; resolves with its length. */
  async getObject(agent: http.Agent, key: string, size: number, signal?: AbortSignal): Promise<number> {
    const path = this.objectPath(key);
    const res = await this.send(agent, 'GET', path, undefined, undefined, signal);
    if (res.statusCode !== 200) throw new RequestError(res.statusCode ?? 0, 'GET', path, await readText(res));
    const verifier = new BodyVerifier(this.verify, stampOf(this.runId, key));
    await consumeBody(res, `GET ${path}`, (chunk) => verifier.update(chunk));
    verifier.finish(size);
    return verifier.received;
  }

  private objectPath(key: string): string {
    return `/${this.target.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * Signs and sends one request; resolves with the response once its headers arrive. `bodySize`
   * undefined means no body (GET); otherwise the body is generated from `stamp` while it is sent.
   */
  private async send(
    agent: http.Agent,
    method: string,
    path: string,
    bodySize: number | undefined,
    stamp: Buffer | undefined,
    signal?: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = {
      host: `${this.host}:${this.port}`,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    };
    if (bodySize !== undefined) headers['content-length'] = String(bodySize);
    const signed = await this.signer.sign({
      method,
      protocol: 'http:',
      hostname: this.host,
      port: this.port,
      path,
      query: {},
      headers,
    });
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({
        agent,
        host: this.host,
        port: this.port,
        method,
        path,
        headers: signed.headers,
        ...(signal ? { signal } : {}),
      });
      req.once('response', resolve);
      req.once('error', reject);
      if (bodySize === undefined || bodySize === 0 || stamp === undefined) {
        req.end();
      } else {
        // A server may answer (an error) before reading the whole body; the request's own 'error' or
        // 'response' settles the promise, so a failed write is only swallowed here.
        writeBody(req, bodySize, stamp, signal).catch((err: unknown) => {
          req.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      }
    });
  }
}
