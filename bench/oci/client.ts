// A deliberately thin OCI Distribution client for the benchmark: node:http with a keep-alive Agent, the
// v1.1 HTTP API spoken directly the way real clients push and pull (HEAD before push, POST + monolithic
// PUT for a blob, PUT of the manifest; GET of the manifest, then of each blob). Layer bodies are streamed
// from their files and pulled bodies are sha256-checked as they arrive, so no blob is ever held whole in
// memory. HTTP Basic is sent preemptively on every request when credentials are given (astore).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { consumeBody, readText, RequestError } from '../common/http.ts';
import { MANIFEST_MEDIA_TYPE, sha256Digest, type BlobSource, type Descriptor } from './image.ts';

export interface RegistryTarget {
  /** http://host:port; the API lives under /v2/. */
  base: URL;
  basicAuth?: { user: string; password: string };
}

type Body = { bytes: Buffer } | { path: string; size: number };

export class OciClient {
  private readonly authorization: string | undefined;

  constructor(readonly target: RegistryTarget) {
    const auth = target.basicAuth;
    this.authorization =
      auth === undefined ? undefined : `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  }

  /** GET /v2/: the API is there and accepts our credentials. */
  async ping(agent: http.Agent, signal?: AbortSignal): Promise<void> {
    await this.expect(agent, 'GET', '/v2/', [200], {}, undefined, signal);
  }

  /** HEAD then, unless the repository already has it, POST + monolithic PUT. True when uploaded. */
  async pushBlob(agent: http.Agent, repo: string, blob: BlobSource, signal?: AbortSignal): Promise<boolean> {
    const blobPath = `/v2/${repo}/blobs/${blob.digest}`;
    const head = await this.send(agent, 'HEAD', blobPath, {}, undefined, signal);
    const headBody = await readText(head);
    if (head.statusCode === 200) return false;
    if (head.statusCode !== 404) throw new RequestError(head.statusCode ?? 0, 'HEAD', blobPath, headBody);

    const start = await this.send(agent, 'POST', `/v2/${repo}/blobs/uploads/`, {}, { bytes: Buffer.alloc(0) }, signal);
    const startBody = await readText(start);
    const location = start.headers.location;
    if (start.statusCode !== 202 || location === undefined) {
      const status = start.statusCode ?? 0;
      throw new RequestError(status, 'POST', `/v2/${repo}/blobs/uploads/`, startBody || 'no Location');
    }
    // The Location may be relative or absolute and may carry a query of its own (Distribution's _state).
    const upload = new URL(location, this.target.base);
    const putPath = `${upload.pathname}${upload.search}${upload.search ? '&' : '?'}digest=${blob.digest}`;
    const body: Body = 'bytes' in blob ? { bytes: blob.bytes } : { path: blob.path, size: blob.size };
    const headers = { 'content-type': 'application/octet-stream' };
    await this.expect(agent, 'PUT', putPath, [201], headers, body, signal, upload);
    return true;
  }

  /** PUT of an image manifest; resolves with its digest (sha256 of the bytes sent). */
  async putManifest(
    agent: http.Agent,
    repo: string,
    tag: string,
    bytes: Buffer,
    signal?: AbortSignal,
  ): Promise<string> {
    const headers = { 'content-type': MANIFEST_MEDIA_TYPE };
    await this.expect(agent, 'PUT', `/v2/${repo}/manifests/${tag}`, [201], headers, { bytes }, signal);
    return sha256Digest(bytes);
  }

  /** GET of a manifest by tag; throws unless its bytes hash to `digest`. */
  async getManifest(
    agent: http.Agent,
    repo: string,
    tag: string,
    digest: string,
    signal?: AbortSignal,
  ): Promise<Buffer> {
    const path = `/v2/${repo}/manifests/${tag}`;
    const res = await this.send(agent, 'GET', path, { accept: MANIFEST_MEDIA_TYPE }, undefined, signal);
    const bytes = await readAll(res);
    if (res.statusCode !== 200) throw new RequestError(res.statusCode ?? 0, 'GET', path, bytes.toString('utf8'));
    const got = sha256Digest(bytes);
    if (got !== digest) throw new Error(`GET ${path}: manifest digest ${got}, pushed ${digest}`);
    return bytes;
  }

  /** GET of a blob, hashed and counted as it streams; throws unless digest and size match. */
  async pullBlob(agent: http.Agent, repo: string, blob: Descriptor, signal?: AbortSignal): Promise<number> {
    const path = `/v2/${repo}/blobs/${blob.digest}`;
    const res = await this.send(agent, 'GET', path, {}, undefined, signal);
    if (res.statusCode !== 200) throw new RequestError(res.statusCode ?? 0, 'GET', path, await readText(res));
    const hash = createHash('sha256');
    let received = 0;
    await consumeBody(res, `GET ${path}`, (chunk) => {
      hash.update(chunk);
      received += chunk.length;
    });
    const got = `sha256:${hash.digest('hex')}`;
    if (received !== blob.size || got !== blob.digest) {
      throw new Error(`GET ${path}: received ${received} bytes hashing to ${got}, expected ${blob.size} bytes`);
    }
    return received;
  }

  /** Sends a request and throws unless its status is one of `ok`; the (small) response body is drained. */
  private async expect(
    agent: http.Agent,
    method: string,
    path: string,
    ok: number[],
    headers: Record<string, string>,
    body: Body | undefined,
    signal?: AbortSignal,
    url?: URL,
  ): Promise<void> {
    const res = await this.send(agent, method, path, headers, body, signal, url);
    const text = await readText(res);
    if (!ok.includes(res.statusCode ?? 0)) throw new RequestError(res.statusCode ?? 0, method, path, text);
  }

  /**
   * Sends one request to `url`'s host (default: the target) and resolves once the response headers
   * arrive. A file body is piped from disk with backpressure; a buffer is sent in one write.
   */
  private send(
    agent: http.Agent,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Body | undefined,
    signal?: AbortSignal,
    url: URL = this.target.base,
  ): Promise<http.IncomingMessage> {
    const all: Record<string, string> = { 'user-agent': 'astore-bench-oci', ...headers };
    if (this.authorization !== undefined) all['authorization'] = this.authorization;
    if (body !== undefined) all['content-length'] = String('bytes' in body ? body.bytes.length : body.size);
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({
        agent,
        host: url.hostname,
        port: Number(url.port || 80),
        method,
        path,
        headers: all,
        ...(signal ? { signal } : {}),
      });
      req.once('response', resolve);
      req.once('error', reject);
      if (body === undefined) req.end();
      else if ('bytes' in body) req.end(body.bytes);
      else {
        // A server may answer (an error) before reading the whole body; the request's own 'error' or
        // 'response' settles the promise, so a failed pipe only tears the request down here.
        pipeline(createReadStream(body.path, { highWaterMark: 1024 * 1024 }), req).catch((err: unknown) => {
          req.destroy(err instanceof Error ? err : new Error(String(err)));
        });
      }
    });
  }
}

/** Reads a whole (small: manifest or error JSON) response body. */
async function readAll(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
