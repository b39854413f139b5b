import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { requireTool } from './clients.ts';
import { freePort } from './net.ts';
import { PortInUse, tailOf } from './process.ts';

export interface MinioServer {
  /** http://127.0.0.1:<port>, no trailing slash. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A plain SDK client with the root credentials, path-style, for setting up and checking state. */
  client: S3Client;
  /** Creates a bucket with a fresh name and returns the name. */
  createBucket(): Promise<string>;
  /** Aborts every multipart upload, deletes every object, then the bucket itself. */
  removeBucket(bucket: string): Promise<void>;
  /** The last lines MinIO wrote (stdout and stderr). */
  logTail(lines?: number): Promise<string>;
  /**
   * For fault tests: ends the MinIO process (SIGTERM, a graceful stop, by default; SIGKILL for a crash)
   * and keeps its port, data and credentials, so that up() brings the same service back. A no-op when down.
   */
  down(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts MinIO again after down() on the same port, data and credentials; resolves once it answers. */
  up(): Promise<void>;
  /** SIGTERM (SIGKILL after 10 s), then removes the data directory. Safe to call twice. */
  stop(): Promise<void>;
}

const startTimeoutMs = 60_000;
const stopTimeoutMs = 10_000;
let bucketSeq = 0;

/**
 * Starts a MinIO of its own (ASTORE_TEST_MINIO, from scripts/install-minio.sh) on a free loopback port,
 * with a temp directory holding its data and certs dir (so nothing lands in ~/.minio), and waits until
 * /minio/health/live answers. Takes 1-3 s and about 150 MB: a test file starts one and shares it.
 *
 * MinIO reads MINIO_* (and some AWS_*) variables as configuration, so none leak in from the caller. The
 * AWS SDK for JavaScript v3 does not read AWS_CA_BUNDLE (unlike rclone or the Python SDK), and plain-http
 * loopback needs no CA, so the test process's environment is left as it is.
 */
export async function startMinio(): Promise<MinioServer> {
  const binary = requireTool('ASTORE_TEST_MINIO');
  const home = await mkdtemp(join(tmpdir(), 'astore-minio-'));
  try {
    await mkdir(join(home, 'data'));
    await mkdir(join(home, 'certs'));
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const credentials = { accessKeyId: 'astore-test', secretAccessKey: randomBytes(18).toString('base64url') };
  // If the test process exits without stop() (a failed before(), an uncaught error), MinIO goes too.
  let current: MinioProcess | undefined;
  const killOnExit = () => {
    current?.kill();
    rmSync(home, { recursive: true, force: true });
  };
  const killOnSignal = (signal: NodeJS.Signals) => {
    killOnExit();
    process.kill(process.pid, signal);
  };
  process.once('exit', killOnExit);
  process.once('SIGINT', killOnSignal);
  process.once('SIGTERM', killOnSignal);
  const forget = async () => {
    process.removeListener('exit', killOnExit);
    process.removeListener('SIGINT', killOnSignal);
    process.removeListener('SIGTERM', killOnSignal);
    await rm(home, { recursive: true, force: true });
  };

  // A port taken between freePort() and MinIO's bind fails the start; try again on other ones.
  let ports: { port: number; consolePort: number };
  for (let attempt = 1; ; attempt++) {
    ports = { port: await freePort(), consolePort: await freePort() };
    try {
      await launch(binary, home, ports, credentials, (spawned) => (current = spawned));
      break;
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt === 3) {
        await forget();
        throw err;
      }
    }
  }

  const endpoint = `http://127.0.0.1:${ports.port}`;
  const region = 'us-east-1';
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
  let stopped: Promise<void> | undefined;

  return {
    endpoint,
    region,
    ...credentials,
    client,
    async createBucket() {
      const bucket = `astore-${process.pid}-${++bucketSeq}-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    async removeBucket(bucket) {
      for (;;) {
        const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        for (const u of uploads.Uploads ?? []) {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
        }
        if (!uploads.IsTruncated) break;
      }
      for (;;) {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
        const objects = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
        if (objects.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
        if (!page.IsTruncated) break;
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
    logTail: (lines = 40) => tailOf(join(home, 'minio.log'), lines),
    async down(signal = 'SIGTERM') {
      await current?.terminate(signal);
      current = undefined;
    },
    async up() {
      if (stopped) throw new Error('MinIO was stopped for good (stop()); up() cannot bring it back');
      if (current?.running()) return;
      // The same port: the clients under test keep their endpoint. Should another process have taken it
      // meanwhile, this fails (PortInUse) rather than moving.
      await launch(binary, home, ports, credentials, (spawned) => (current = spawned));
    },
    stop() {
      stopped ??= (async () => {
        client.destroy();
        await current?.terminate('SIGTERM');
        current = undefined;
        await forget();
      })();
      return stopped;
    },
  };
}


interface MinioProcess {
  running(): boolean;
  /** SIGKILL at once, synchronously (for the process's exit handler). */
  kill(): void;
  /** `signal`, SIGKILL after 10 s, and waits until it has exited. */
  terminate(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/**
 * Runs MinIO on `home` and the ports, and waits until /minio/health/live answers. `spawned` learns of
 * the process as soon as it exists, so that the caller's exit handler can kill one that is still starting.
 */
async function launch(
  binary: string,
  home: string,
  { port, consolePort }: { port: number; consolePort: number },
  credentials: { accessKeyId: string; secretAccessKey: string },
  spawned: (minio: MinioProcess) => void,
): Promise<MinioProcess> {
  const endpoint = `http://127.0.0.1:${port}`;
  const logFile = join(home, 'minio.log');
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MINIO_|AWS_)/.test(k)));
  const log = openSync(logFile, 'a');
  const child = spawn(
    binary,
    ['server', join(home, 'data'), '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--certs-dir', join(home, 'certs')],
    {
      cwd: home,
      stdio: ['ignore', log, log],
      env: { ...inherited, MINIO_ROOT_USER: credentials.accessKeyId, MINIO_ROOT_PASSWORD: credentials.secretAccessKey, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
    },
  );
  closeSync(log);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  if (child.pid === undefined) {
    await new Promise((r) => setImmediate(r));
    throw new Error(`cannot start MinIO ${binary} (scripts/install-minio.sh): ${spawnError?.message ?? 'no pid'}`);
  }
  const pid: number = child.pid;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const running = () => child.exitCode === null && child.signalCode === null;
  child.unref();

  const minio: MinioProcess = {
    running,
    kill() {
      if (running()) process.kill(pid, 'SIGKILL');
    },
    async terminate(signal) {
      if (running()) child.kill(signal);
      const deadline = Date.now() + stopTimeoutMs;
      while (running() && Date.now() < deadline) await sleep(50);
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
  spawned(minio);

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!running()) {
      const tail = await tailOf(logFile, 40);
      await minio.terminate('SIGTERM');
      if (/address already in use/i.test(tail)) throw new PortInUse(`port ${port} or ${consolePort} is taken`);
      throw new Error(`MinIO (${binary}) exited during start-up (code ${child.exitCode ?? child.signalCode}); the last lines of its log:\n${tail}`);
    }
    try {
      const res = await fetch(`${endpoint}/minio/health/live`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return minio;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = await tailOf(logFile, 40);
      await minio.terminate('SIGTERM');
      throw new Error(`MinIO did not answer /minio/health/live within ${startTimeoutMs / 1000} s; the last lines of its log:\n${tail}`);
    }
    await sleep(100);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

