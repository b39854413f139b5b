import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { startMinio, type MinioServer } from '../helpers/minio.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { sdkClient } from '../helpers/sdk-js.ts';
import { accessKeyId, secretKey, startServer, type TestServer } from '../helpers/server.ts';
import { Load, type Outcome, requestTimeoutMs, sha256Hex } from './load.ts';

/**
 * Given an astore on MinIO and PostgreSQL under a steady load (S3 PUTs and GETs, registry pushes and
 * pulls), when MinIO and then PostgreSQL stop mid-load, the hard way (MinIO SIGKILLed, PostgreSQL's
 * immediate shutdown: a crash, no goodbye to its sessions; test/resilience/meta-postgres-outage.test.ts
 * covers the fast shutdown's 57P01), and come back on the same port and data:
 * - every failed request is a clear, retryable error: 503 with Retry-After, S3 ServiceUnavailable (or
 *   SlowDown) in XML, registry UNAVAILABLE (or TOOMANYREQUESTS) in JSON; never a 500, never a hang;
 * - /readyz reports the backend down (blobs once the circuit is open; meta at the next probe);
 * - astore serves again by itself, without a restart, within a bound;
 * - every acknowledged write reads back with its exact bytes, and no unacknowledged one is visible
 *   other than whole (a write whose acknowledgement was lost may have landed, whole).
 *
 * The server runs with the shipped resilience defaults (blob circuit: 5 failures, 5 s half-open;
 * metadata circuit: 5 failures, 2 s), only a 5 MiB S3 part size so that larger PUTs are multipart.
 */
const bucket = 'outage';
/** From a backend stopping to the first 503, and to /readyz saying so. */
const detectBoundMs = 15_000;
/** From a backend being back to requests succeeding and /readyz ready again. */
const recoveryBoundMs = 20_000;
/** The longest any request may take, outage or not. */
const requestBoundMs = 20_000;
/** How long /readyz may take: its probes are bounded at 2 s each. */
const readyzBoundMs = 2_500;

let minio: MinioServer;
let postgres: PostgresServer;
let server: TestServer;
let s3: S3Client;
let load: Load;
let readiness: ReadinessLog;

before(async () => {
  [minio, postgres] = await Promise.all([startMinio(), startPostgres({ crashSafe: true })]);
  const blobBucket = await minio.createBucket();
  const connectionString = await postgres.createDatabase('astore_outage');
  server = await startServer({
    storage: {
      blob: {
        driver: 's3',
        s3: {
          endpoint: minio.endpoint,
          region: minio.region,
          bucket: blobBucket,
          forcePathStyle: true,
          accessKeyId: minio.accessKeyId,
          secretAccessKey: minio.secretAccessKey,
          partSizeBytes: 5 * 1024 * 1024,
        },
      },
      meta: { driver: 'postgres', postgres: { connectionString } },
    },
  });
  s3 = sdkClient(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  load = new Load(s3, server.endpoint, bucket);
  readiness = new ReadinessLog(server.endpoint);
  load.start();
  readiness.start();
});

after(async () => {
  await load?.stop();
  await readiness?.stop();
  s3?.destroy();
  await server?.stop();
  await Promise.all([minio?.stop(), postgres?.stop()]);
});

test('warm-up: the load runs clean with both backends up', async () => {
  await waitFor(() => load.acknowledged.size >= 20 && load.pushed.length >= 2, 30_000, '20 acknowledged PUTs and 2 pushes');
  assert.deepEqual(failures(load.outcomes), [], 'no request failed while both backends were up');
});

test('MinIO is killed mid-load: 503 with Retry-After, /readyz blobs down, in-flight uploads fail cleanly; it comes back and astore serves again', async (t) => {
  // An upload whose body is still arriving when MinIO stops (6 MiB over ~2.4 s).
  const slowKey = 'slow/in-flight-when-minio-stops';
  const slowUpload = trickleUpload(slowKey, 6 * 1024 * 1024, 24, 100);
  await sleep(300);

  const downAt = Date.now();
  await minio.down('SIGKILL');
  const firstS3 = await waitFor(() => load.since(downAt, 's3').find((o) => o.status === 503), detectBoundMs, 'a 503 from S3');
  const blobsDown = await waitFor(() => readiness.since(downAt).find((r) => r.status === 503 && r.blobs === 'down'), detectBoundMs, '/readyz blobs down');
  assert.equal(blobsDown.meta, 'up');

  // Every protocol refuses, at once, with its own clear error.
  const ack = [...load.acknowledged.keys()][0]!;
  await expectS3Unavailable(s3.send(new GetObjectCommand({ Bucket: bucket, Key: ack })), /s3 blob store (is unavailable|failed)/);
  await expectS3Unavailable(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'while-minio-down', Body: randomBytes(4096) })), /s3 blob store (is unavailable|failed)/);
  const image = load.pushed[0]!;
  await expectRegistryUnavailable(await registryRequest('GET', `/v2/${image.repository}/blobs/${image.layers[0]}`));
  const upload = await registryRequest('POST', `/v2/${image.repository}/blobs/uploads/`);
  await upload.arrayBuffer();
  assert.equal(upload.status, 202, 'starting an upload needs only the metadata store');
  const blob = randomBytes(4096);
  const location = new URL(upload.headers.get('location')!, server.endpoint);
  location.searchParams.set('digest', `sha256:${sha256Hex(blob)}`);
  await expectRegistryUnavailable(await registryRequest('PUT', location.toString(), blob));

  const slowOutcome = await slowUpload;
  assert.notEqual(slowOutcome, 'ok', 'an upload in flight when MinIO stopped is not acknowledged');
  t.diagnostic(`the upload in flight when MinIO stopped: ${slowOutcome}`);
  await sleep(Math.max(0, downAt + 4_000 - Date.now()));

  const upAt = Date.now();
  await minio.up();
  const recovered = await waitFor(() => load.since(upAt, 's3').find((o) => o.op === 's3:put' && o.status === 'ok'), recoveryBoundMs, 'an acknowledged PUT after MinIO is back');
  const pushed = await waitFor(() => load.since(upAt, 'oci').find((o) => o.op === 'oci:put-blob' && o.status === 'ok'), recoveryBoundMs, 'a registry blob upload after MinIO is back');
  const ready = await waitFor(() => readiness.since(upAt).find((r) => r.status === 200), recoveryBoundMs, '/readyz ready');
  assert.deepEqual([ready.meta, ready.blobs], ['up', 'up']);

  const window = load.since(downAt).filter((o) => o.startedAt < recovered.endedAt);
  assertCleanFailures(window);
  assert.ok(window.some((o) => o.op.startsWith('oci:') && o.status === 503), 'the registry load saw UNAVAILABLE too');
  await expectAbsent(slowKey);
  report(t, 'MinIO', { downAt, upAt, first503: firstS3.endedAt, readyzDown: blobsDown.at, recovered: recovered.endedAt, registryRecovered: pushed.endedAt, ready: ready.at, window });
});

test('PostgreSQL crashes mid-load: 503 with Retry-After, /readyz meta down; it comes back and astore serves again', async (t) => {
  const downAt = Date.now();
  await postgres.down('immediate');
  const firstS3 = await waitFor(() => load.since(downAt, 's3').find((o) => o.status === 503), detectBoundMs, 'a 503 from S3');
  const metaDown = await waitFor(() => readiness.since(downAt).find((r) => r.status === 503 && r.meta === 'down'), detectBoundMs, '/readyz meta down');

  const ack = [...load.acknowledged.keys()][0]!;
  await expectS3Unavailable(s3.send(new GetObjectCommand({ Bucket: bucket, Key: ack })), /PostgreSQL metadata store is unavailable/);
  await expectS3Unavailable(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'while-postgres-down', Body: randomBytes(4096) })), /PostgreSQL metadata store/);
  const image = load.pushed[0]!;
  await expectRegistryUnavailable(await registryRequest('GET', `/v2/${image.repository}/manifests/${image.tag}`));
  await expectRegistryUnavailable(await registryRequest('POST', `/v2/${image.repository}/blobs/uploads/`));
  await sleep(Math.max(0, downAt + 4_000 - Date.now()));

  const upAt = Date.now();
  await postgres.up();
  const recovered = await waitFor(() => load.since(upAt, 's3').find((o) => o.op === 's3:put' && o.status === 'ok'), recoveryBoundMs, 'an acknowledged PUT after PostgreSQL is back');
  const pushed = await waitFor(() => load.since(upAt, 'oci').find((o) => o.op === 'oci:put-manifest' && o.status === 'ok'), recoveryBoundMs, 'a registry push after PostgreSQL is back');
  const ready = await waitFor(() => readiness.since(upAt).find((r) => r.status === 200), recoveryBoundMs, '/readyz ready');
  assert.deepEqual([ready.meta, ready.blobs], ['up', 'up']);

  const window = load.since(downAt).filter((o) => o.startedAt < recovered.endedAt);
  assertCleanFailures(window);
  assert.ok(window.some((o) => o.op.startsWith('oci:') && o.status === 503), 'the registry load saw UNAVAILABLE too');
  await expectAbsent('while-postgres-down');
  report(t, 'PostgreSQL', { downAt, upAt, first503: firstS3.endedAt, readyzDown: metaDown.at, recovered: recovered.endedAt, registryRecovered: pushed.endedAt, ready: ready.at, window });
});

test('after both outages: every acknowledged write reads back exact, no unacknowledged one is visible half-written, nothing hung', async (t) => {
  await sleep(1_000);
  await load.stop();
  await readiness.stop();
  assert.deepEqual(load.corruptReads, [], 'every read during the load returned the acknowledged bytes');
  assertCleanFailures(load.outcomes);
  const slowest = Math.max(...load.outcomes.map((o) => o.endedAt - o.startedAt));
  assert.ok(slowest <= requestBoundMs, `the slowest request took ${slowest} ms`);
  const slowestProbe = Math.max(...readiness.log.map((r) => r.ms));
  assert.ok(slowestProbe <= readyzBoundMs, `the slowest /readyz took ${slowestProbe} ms`);

  // S3: acknowledged keys have their exact bytes; any other key is absent or whole.
  const lost: string[] = [];
  for (const [key, sha] of load.acknowledged) {
    const bytes = await getBytes(key);
    if (bytes === undefined || sha256Hex(bytes) !== sha) lost.push(`${key}: ${bytes === undefined ? 'missing' : `sha256 ${sha256Hex(bytes)}`}`);
  }
  assert.deepEqual(lost, [], 'no acknowledged write is lost or changed');
  let landedUnacknowledged = 0;
  const partial: string[] = [];
  for (const [key, sha] of load.attempted) {
    if (load.acknowledged.has(key)) continue;
    const bytes = await getBytes(key);
    if (bytes === undefined) continue;
    landedUnacknowledged++;
    if (sha256Hex(bytes) !== sha) partial.push(`${key}: ${bytes.length} bytes, not the ones sent`);
  }
  assert.deepEqual(partial, [], 'an unacknowledged write is absent or whole');
  const listed = await listKeys();
  const stray = listed.filter((key) => !load.attempted.has(key));
  assert.deepEqual(stray, [], 'the bucket holds only keys the load wrote');

  // Registry: every acknowledged push pulls with its manifest and layers.
  const lostImages: string[] = [];
  for (const image of load.pushed) {
    const manifest = await registryRequest('GET', `/v2/${image.repository}/manifests/${image.tag}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    const body = Buffer.from(await manifest.arrayBuffer());
    if (manifest.status !== 200 || `sha256:${sha256Hex(body)}` !== image.manifestDigest) lostImages.push(`${image.repository}:${image.tag}: ${manifest.status}`);
    for (const layer of image.layers) {
      const blob = await registryRequest('GET', `/v2/${image.repository}/blobs/${layer}`);
      const bytes = Buffer.from(await blob.arrayBuffer());
      if (blob.status !== 200 || `sha256:${sha256Hex(bytes)}` !== layer) lostImages.push(`${image.repository}@${layer}: ${blob.status}`);
    }
  }
  assert.deepEqual(lostImages, [], 'no acknowledged push is lost');

  const count = (status: Outcome['status']) => load.outcomes.filter((o) => o.status === status).length;
  t.diagnostic(
    `${load.outcomes.length} requests: ${count('ok')} ok, ${count(503)} 503, ${count('transport')} without an answer; ` +
      `${load.acknowledged.size} of ${load.attempted.size} PUTs and ${load.pushed.length} pushes acknowledged, all read back exact; ` +
      `${landedUnacknowledged} unacknowledged PUTs landed whole; slowest request ${slowest} ms, slowest /readyz ${slowestProbe} ms`,
  );
});

// ------------------------------------------------------------------------------------------ helpers

/** The failures among `outcomes` that are not a clean 503: what must never happen. */
function failures(outcomes: Outcome[]): Outcome[] {
  return outcomes.filter((o) => {
    if (o.status === 'ok') return false;
    if (o.status === 503) {
      const codes = o.op.startsWith('s3:') ? ['ServiceUnavailable', 'SlowDown'] : ['UNAVAILABLE', 'TOOMANYREQUESTS'];
      return !codes.includes(o.code ?? '') || o.retryAfter === undefined;
    }
    // A request whose body was still being sent when the server answered 503 and closed the connection
    // may see the connection end instead of the answer; it is not acknowledged, which is what matters.
    if (o.status === 'transport') return !(o.op === 's3:put' || o.op === 'oci:put-blob');
    return true;
  });
}

function assertCleanFailures(outcomes: Outcome[]): void {
  const bad = failures(outcomes);
  assert.deepEqual(
    bad.map((o) => `${o.op} ${o.status} ${o.code ?? ''} retry-after=${o.retryAfter ?? '-'} after ${o.endedAt - o.startedAt} ms: ${o.message ?? ''}`),
    [],
    'every failed request is a 503 with its protocol code and Retry-After',
  );
}

async function expectS3Unavailable(call: Promise<unknown>, message: RegExp): Promise<void> {
  const started = Date.now();
  const err = await call.then(
    () => assert.fail('expected 503 ServiceUnavailable, got success'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof S3ServiceException, String(err));
  assert.equal(err.$metadata.httpStatusCode, 503);
  assert.equal(err.name, 'ServiceUnavailable', 'S3 <Code>');
  assert.match(err.message, message);
  assert.equal((err.$response as { headers?: Record<string, string> } | undefined)?.headers?.['retry-after'], '1');
  // At once while the circuit is open; a call that is the circuit's trial tries the backend first.
  assert.ok(Date.now() - started < 3_000, `answered in ${Date.now() - started} ms`);
}

async function expectRegistryUnavailable(res: Response): Promise<void> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.equal(res.headers.get('retry-after'), '1');
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(body.errors[0]?.code, 'UNAVAILABLE');
  assert.match(body.errors[0]?.message ?? '', /(blob|metadata) store (is unavailable|failed)/);
}

function registryRequest(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  const url = path.startsWith('http') ? path : `${server.endpoint}${path}`;
  const authorization = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;
  return fetch(url, { method, headers: { authorization, ...headers }, body, signal: AbortSignal.timeout(requestTimeoutMs) });
}

/** A PUT whose body arrives in `chunks` chunks, one every `everyMs`: 'ok', or how it failed. */
async function trickleUpload(key: string, size: number, chunks: number, everyMs: number): Promise<string> {
  const chunk = Math.ceil(size / chunks);
  async function* body(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < size; sent += chunk) {
      yield randomBytes(Math.min(chunk, size - sent));
      await sleep(everyMs);
    }
  }
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Readable.from(body()), ContentLength: size }), { abortSignal: AbortSignal.timeout(requestTimeoutMs) });
    return 'ok';
  } catch (err) {
    return err instanceof S3ServiceException ? `${err.$metadata.httpStatusCode} ${err.name}` : `no answer: ${(err as Error).message}`;
  }
}

async function getBytes(key: string): Promise<Uint8Array | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await res.Body!.transformToByteArray();
  } catch (err) {
    if (err instanceof S3ServiceException && err.name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function expectAbsent(key: string): Promise<void> {
  assert.equal(await getBytes(key), undefined, `${key} is not visible`);
}

async function listKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function waitFor<T>(find: () => T | undefined | false, boundMs: number, what: string): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${boundMs} ms`);
    await sleep(50);
  }
}

function report(
  t: TestContext,
  backend: string,
  m: { downAt: number; upAt: number; first503: number; readyzDown: number; recovered: number; registryRecovered: number; ready: number; window: Outcome[] },
): void {
  const failed = m.window.filter((o) => o.status !== 'ok');
  // Why the 503s said they failed: "unavailable (...)" of an open circuit, "failed (...)" before it
  // opened, "lost during COMMIT" of a commit in doubt; the reason without addresses.
  const reasons = new Map<string, number>();
  for (const o of failed) {
    const reason = (/(unavailable|failed|lost during COMMIT|did not answer in time) \(([^);:]*)/.exec(o.message ?? '')?.slice(1).join(': ') ?? String(o.status)).replace(/\d+\.\d+\.\d+\.\d+:\d+/, 'ADDR');
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  t.diagnostic(`${backend}: 503 reasons: ${[...reasons].map(([reason, n]) => `${n}× ${reason}`).join('; ')}`);
  t.diagnostic(
    `${backend}: first 503 after ${m.first503 - m.downAt} ms, /readyz down after ${m.readyzDown - m.downAt} ms; ` +
      `back: S3 PUT acknowledged after ${m.recovered - m.upAt} ms, registry after ${m.registryRecovered - m.upAt} ms, /readyz ready after ${m.ready - m.upAt} ms; ` +
      `${failed.length} of ${m.window.length} requests failed meanwhile (${failed.filter((o) => o.status === 503).length} 503, ${failed.filter((o) => o.status === 'transport').length} without an answer)`,
  );
}

interface ReadinessSample {
  at: number;
  ms: number;
  /** The HTTP status (0: no answer). */
  status: number;
  meta?: string;
  blobs?: string;
}

/** /readyz every 100 ms, as a load balancer would ask. */
class ReadinessLog {
  readonly log: ReadinessSample[] = [];
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(private readonly endpoint: string) {}

  start(): void {
    this.loop = (async () => {
      while (this.running) {
        const started = Date.now();
        try {
          const res = await fetch(`${this.endpoint}/readyz`, { signal: AbortSignal.timeout(10_000) });
          const { meta, blobs } = (await res.json()) as { meta?: string; blobs?: string };
          this.log.push({ at: Date.now(), ms: Date.now() - started, status: res.status, ...(meta !== undefined && { meta }), ...(blobs !== undefined && { blobs }) });
        } catch {
          this.log.push({ at: Date.now(), ms: Date.now() - started, status: 0 });
        }
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  since(at: number): ReadinessSample[] {
    return this.log.filter((sample) => sample.at - sample.ms >= at);
  }
}
