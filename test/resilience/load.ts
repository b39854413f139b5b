import { createHash, randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { accessKeyId, secretKey } from '../helpers/server.ts';

/** How long one request may take before the load gives up on it and records a hang. */
export const requestTimeoutMs = 30_000;

/** One request the load made and what came of it. */
export interface Outcome {
  /** `s3:put`, `s3:get`, `oci:start-upload`, `oci:put-blob`, `oci:put-manifest`, `oci:get-manifest`, `oci:get-blob`. */
  op: string;
  startedAt: number;
  endedAt: number;
  /** 'ok' for the expected answer; the HTTP status of any other; 'transport' when no answer came (reset, closed), 'timeout' after requestTimeoutMs. */
  status: 'ok' | number | 'transport' | 'timeout';
  /** The error code: S3 <Code> (the SDK's error name), the registry's errors[0].code. */
  code?: string;
  retryAfter?: string;
  message?: string;
}

export interface PushedImage {
  repository: string;
  tag: string;
  manifestDigest: string;
  /** Layer digest → its bytes' sha256 digest (the same, since the layers are pushed by sha256). */
  layers: string[];
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A steady load on one astore: `s3Workers` workers that each PUT a new key with random bytes and then
 * GET an acknowledged one (checking its bytes), and one registry worker that pushes a small image
 * (config, two layers, a tagged manifest) and pulls an acknowledged one. Every request's outcome is
 * recorded; every acknowledged write too (S3 key → sha256 of its bytes; pushed images), and every
 * attempted one, so that the test can check afterwards that none was lost and none is half there.
 *
 * Every 8th PUT is 6 MiB, above the test's 5 MiB part size: astore's S3 driver stores it as a multipart
 * upload, the others as one PutObject.
 */
export class Load {
  readonly outcomes: Outcome[] = [];
  /** Keys whose PUT was acknowledged (200) → sha256 of the bytes sent. */
  readonly acknowledged = new Map<string, string>();
  /** Every key a PUT was sent for → sha256 of its bytes (each key is written once). */
  readonly attempted = new Map<string, string>();
  readonly pushed: PushedImage[] = [];
  /** Bytes that came back from a GET or a pull different from what was acknowledged. */
  readonly corruptReads: string[] = [];
  private running = false;
  private workers: Promise<void>[] = [];
  private pushSeq = 0;

  constructor(
    private readonly s3: S3Client,
    private readonly endpoint: string,
    private readonly bucket: string,
    private readonly s3Workers = 4,
  ) {}

  start(): void {
    this.running = true;
    this.workers = [...Array.from({ length: this.s3Workers }, (_, worker) => this.s3Worker(worker)), this.registryWorker()];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  /** Outcomes of requests of `kind` ('s3' or 'oci') that started at or after `at`. */
  since(at: number, kind?: 's3' | 'oci'): Outcome[] {
    return this.outcomes.filter((o) => o.startedAt >= at && (kind === undefined || o.op.startsWith(`${kind}:`)));
  }

  // ------------------------------------------------------------------------------------------- S3

  private async s3Worker(worker: number): Promise<void> {
    for (let seq = 0; this.running; seq++) {
      const key = `load/w${worker}/${String(seq).padStart(5, '0')}`;
      const body = randomBytes(seq % 8 === 7 ? 6 * MiB : randomInt(1 * KiB, 512 * KiB));
      const sha = sha256Hex(body);
      this.attempted.set(key, sha);
      const put = await this.s3Call('s3:put', (abortSignal) => this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body }), { abortSignal }));
      if (put !== undefined) this.acknowledged.set(key, sha);
      const keys = [...this.acknowledged.keys()];
      if (keys.length > 0) await this.getAndCheck(keys[randomInt(keys.length)]!);
      // A worker that is refused at once (open circuit) does not spin.
      if (put === undefined) await sleep(20);
    }
  }

  private async getAndCheck(key: string): Promise<void> {
    const bytes = await this.s3Call('s3:get', async (abortSignal) => {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
      return res.Body!.transformToByteArray();
    });
    if (bytes !== undefined && sha256Hex(bytes) !== this.acknowledged.get(key)) this.corruptReads.push(`s3 ${key}: ${bytes.length} bytes, sha256 ${sha256Hex(bytes)}`);
  }

  /** Runs one SDK call, recording its outcome; its result, or undefined when it failed. */
  private async s3Call<T>(op: string, call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    const startedAt = Date.now();
    const signal = AbortSignal.timeout(requestTimeoutMs);
    try {
      const result = await call(signal);
      this.outcomes.push({ op, startedAt, endedAt: Date.now(), status: 'ok' });
      return result;
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } };
      const status = e.$metadata?.httpStatusCode;
      this.outcomes.push({
        op,
        startedAt,
        endedAt: Date.now(),
        status: status ?? (signal.aborted ? 'timeout' : 'transport'),
        code: e.name,
        ...(e.$response?.headers?.['retry-after'] !== undefined && { retryAfter: e.$response.headers['retry-after'] }),
        message: e.message,
      });
      return undefined;
    }
  }

  // ------------------------------------------------------------------------------------- registry

  private async registryWorker(): Promise<void> {
    while (this.running) {
      const n = this.pushSeq++;
      const image = await this.push(`outage/app-${n % 3}`, `v${n}`);
      if (image) this.pushed.push(image);
      if (this.pushed.length > 0) await this.pull(this.pushed[randomInt(this.pushed.length)]!);
      if (!image) await sleep(20);
    }
  }

  private async push(repository: string, tag: string): Promise<PushedImage | undefined> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag }));
    const layers = [randomBytes(randomInt(4 * KiB, 64 * KiB)), randomBytes(randomInt(4 * KiB, 64 * KiB))];
    const digests: string[] = [];
    for (const blob of [config, ...layers]) {
      const digest = await this.pushBlob(repository, blob);
      if (!digest) return undefined;
      digests.push(digest);
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digests[0], size: config.length },
        layers: layers.map((layer, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digests[i + 1], size: layer.length })),
      }),
    );
    const put = await this.registryCall('oci:put-manifest', 'PUT', `/v2/${repository}/manifests/${tag}`, 201, {
      body: manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (!put) return undefined;
    return { repository, tag, manifestDigest: `sha256:${sha256Hex(manifest)}`, layers: digests.slice(1) };
  }

  private async pushBlob(repository: string, bytes: Buffer): Promise<string | undefined> {
    const digest = `sha256:${sha256Hex(bytes)}`;
    const start = await this.registryCall('oci:start-upload', 'POST', `/v2/${repository}/blobs/uploads/`, 202);
    if (!start) return undefined;
    const location = new URL(start.headers.get('location')!, this.endpoint);
    location.searchParams.set('digest', digest);
    const put = await this.registryCall('oci:put-blob', 'PUT', location.toString(), 201, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    return put ? digest : undefined;
  }

  private async pull(image: PushedImage): Promise<void> {
    const res = await this.registryCall('oci:get-manifest', 'GET', `/v2/${image.repository}/manifests/${image.tag}`, 200, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (res && `sha256:${sha256Hex(res.body)}` !== image.manifestDigest) this.corruptReads.push(`${image.repository}:${image.tag}: manifest sha256:${sha256Hex(res.body)}`);
    const layer = image.layers[randomInt(image.layers.length)]!;
    const blob = await this.registryCall('oci:get-blob', 'GET', `/v2/${image.repository}/blobs/${layer}`, 200);
    if (blob && `sha256:${sha256Hex(blob.body)}` !== layer) this.corruptReads.push(`${image.repository}@${layer}: came back as sha256:${sha256Hex(blob.body)}`);
  }

  /** One registry request, recorded; the response and its body when it has the `expected` status. */
  async registryCall(
    op: string,
    method: string,
    path: string,
    expected: number,
    init: { body?: Buffer; headers?: Record<string, string> } = {},
  ): Promise<{ headers: Headers; body: Buffer } | undefined> {
    const startedAt = Date.now();
    const signal = AbortSignal.timeout(requestTimeoutMs);
    const url = path.startsWith('http') ? path : `${this.endpoint}${path}`;
    const authorization = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;
    try {
      const res = await fetch(url, { method, headers: { authorization, ...init.headers }, body: init.body, signal });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status === expected) {
        this.outcomes.push({ op, startedAt, endedAt: Date.now(), status: 'ok' });
        return { headers: res.headers, body };
      }
      let code: string | undefined;
      try {
        code = (JSON.parse(body.toString('utf8')) as { errors?: { code?: string }[] }).errors?.[0]?.code;
      } catch {
        code = `(not JSON: ${res.headers.get('content-type')})`;
      }
      const retryAfter = res.headers.get('retry-after');
      this.outcomes.push({ op, startedAt, endedAt: Date.now(), status: res.status, ...(code !== undefined && { code }), ...(retryAfter !== null && { retryAfter }), message: body.toString('utf8').slice(0, 300) });
      return undefined;
    } catch (err) {
      this.outcomes.push({ op, startedAt, endedAt: Date.now(), status: signal.aborted ? 'timeout' : 'transport', message: String((err as Error).cause ?? err) });
      return undefined;
    }
  }
}
