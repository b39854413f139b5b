import { spawn } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from './clients.ts';
import { PortInUse, onFreePort, tailOf } from './process.ts';

export interface FakeGcsServer {
  /** http://127.0.0.1:<port>, no trailing slash: the `apiEndpoint` for the SDK. */
  url: string;
  /** Creates a bucket with a fresh name (JSON API, no SDK) and returns the name. */
  createBucket(): Promise<string>;
  /** Deletes every object in `bucket`, then the bucket. */
  removeBucket(bucket: string): Promise<void>;
  /** Names of the objects in `bucket` under `prefix`, sorted (every page). */
  objectNames(bucket: string, prefix?: string): Promise<string[]>;
  /** Writes an object directly (a one-request media upload), bypassing any BlobStore. */
  putObject(bucket: string, name: string, body: Buffer): Promise<void>;
  /** The last lines the server logged. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM (SIGKILL after 10 s), then removes the temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

const startTimeoutMs = 30_000;
let bucketSeq = 0;
const stopTimeoutMs = 10_000;

/**
 * Starts a fake-gcs-server of its own (ASTORE_TEST_FAKE_GCS, built by scripts/install-fake-gcs.sh) on a
 * free loopback port, plain http, and waits for its healthcheck (about 0.3 s). Objects live in its memory
 * (`-backend memory`); its log goes to a temp directory, removed by stop(). A test file starts one in
 * `before` and stops it in `after`; each store it opens should use a bucket of its own.
 */
export async function startFakeGcs(): Promise<FakeGcsServer> {
  const bin = requireTool('ASTORE_TEST_FAKE_GCS');
  const dir = await mkdtemp(join(tmpdir(), 'astore-fake-gcs-'));
  return onFreePort(dir, (port) => launch(bin, dir, port));
}


async function launch(bin: string, dir: string, port: number): Promise<FakeGcsServer> {
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, `fake-gcs-${port}.log`);
  const log = openSync(logFile, 'w');
  // The defaults are https on 0.0.0.0; -public-host and -external-url make the URLs it hands out
  // (resumable session URIs, media links) point back at this address.
  const child = spawn(
    bin,
    [
      '-scheme', 'http',
      '-host', '127.0.0.1',
      '-port', String(port),
      // The filesystem backend maps names to nested paths, so `a` and `a/b` cannot both exist and a
      // trailing `/` is lost; the memory backend keeps GCS's flat namespace. (Uploads are held in memory
      // by either backend.)
      '-backend', 'memory',
      '-public-host', `127.0.0.1:${port}`,
      '-external-url', url,
      '-log-level', 'warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  if (child.pid === undefined) {
    await new Promise((r) => setImmediate(r));
    throw new Error(`cannot start ${bin} (from scripts/install-fake-gcs.sh): ${spawnError?.message ?? 'no pid'}`);
  }
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const alive = () => child.exitCode === null && child.signalCode === null;

  // If the test process exits without stop() (a failed before(), an uncaught error), the server goes too.
  const killOnExit = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  child.unref();

  const logTail = (lines = 40) => tailOf(logFile, lines);
  let stopped: Promise<void> | undefined;
  async function terminate(): Promise<void> {
    process.removeListener('exit', killOnExit);
    if (alive()) child.kill('SIGTERM');
    const deadline = Date.now() + stopTimeoutMs;
    while (alive() && Date.now() < deadline) await sleep(50);
    if (alive()) child.kill('SIGKILL');
    await exited;
  }
  const stop = () => (stopped ??= terminate().then(() => rm(dir, { recursive: true, force: true })));

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!alive()) {
      const tail = await logTail();
      await terminate();
      if (/address already in use/i.test(tail)) throw new PortInUse(`port ${port} is taken`);
      throw new Error(`fake-gcs-server (${bin}) exited during start-up (code ${child.exitCode ?? child.signalCode}); its log:\n${tail}`);
    }
    try {
      const res = await fetch(`${url}/_internal/healthcheck`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = await logTail();
      await terminate();
      throw new Error(`fake-gcs-server did not answer /_internal/healthcheck within ${startTimeoutMs / 1000} s; its log:\n${tail}`);
    }
    await sleep(50);
  }
  /** A JSON API call; throws on a status outside `ok`. */
  async function api(method: string, path: string, body?: Buffer | string, ok: number[] = [200, 204]): Promise<unknown> {
    const res = await fetch(`${url}${path}`, { method, ...(body !== undefined && { body }), signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (!ok.includes(res.status)) throw new Error(`fake-gcs-server ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }
  async function objectNames(bucket: string, prefix = ''): Promise<string[]> {
    const names: string[] = [];
    let pageToken = '';
    do {
      const query = new URLSearchParams({ prefix, ...(pageToken && { pageToken }) });
      const page = (await api('GET', `/storage/v1/b/${bucket}/o?${query}`)) as { items?: { name: string }[]; nextPageToken?: string };
      names.push(...(page.items ?? []).map((o) => o.name));
      pageToken = page.nextPageToken ?? '';
    } while (pageToken);
    return names.sort();
  }

  return {
    url,
    async createBucket() {
      const bucket = `astore-${process.pid}-${++bucketSeq}-${randomBytes(4).toString('hex')}`;
      await api('POST', '/storage/v1/b?project=test', JSON.stringify({ name: bucket }));
      return bucket;
    },
    async removeBucket(bucket) {
      for (const name of await objectNames(bucket)) await api('DELETE', `/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`, undefined, [200, 204, 404]);
      await api('DELETE', `/storage/v1/b/${bucket}`);
    },
    objectNames,
    async putObject(bucket, name, body) {
      await api('POST', `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`, body);
    },
    logTail,
    stop,
  };
}


/** One request that went through a GcsProxy. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/upload/storage/v1/b/<bucket>/o?uploadType=resumable&upload_id=...`. */
  path: string;
  /** The request's Content-Range header ('' when absent): chunk requests of resumable uploads carry one. */
  contentRange: string;
  /** The upload session (`upload_id`) the request belongs to, if any. */
  session?: string;
  /** Set once fake-gcs-server answered a forwarded request. */
  status?: number;
  responseHeaders?: IncomingHttpHeaders;
}

/**
 * What to do with a request: forward it to fake-gcs-server, drop the connection before reading the
 * body (the client sees ECONNRESET or EPIPE), never answer (the client must abort), or answer itself.
 */
export type ProxyDecision = 'forward' | 'reset' | 'hang' | { status: number; headers?: Record<string, string>; body?: string };

export interface GcsProxy {
  /** http://127.0.0.1:<port>: give this to the SDK as apiEndpoint. */
  url: string;
  /** Every request so far, in arrival order. */
  requests: ProxiedRequest[];
  /** Decides the fate of each later request (forward when unset or when it returns undefined). */
  intercept(decide: ((request: ProxiedRequest) => ProxyDecision | undefined) | undefined): void;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of fake-gcs-server that records the traffic and can inject failures. It keeps
 * the Host header, so the resumable session URIs fake-gcs-server hands out point back at the proxy and
 * chunk requests pass through it too. Bodies are piped, never held. It runs in the test process, so do
 * not measure memory through it.
 */
export async function startGcsProxy(target: string): Promise<GcsProxy> {
  const requests: ProxiedRequest[] = [];
  let decide: ((request: ProxiedRequest) => ProxyDecision | undefined) | undefined;
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    const session = new URL(path, 'http://proxy').searchParams.get('upload_id') ?? undefined;
    const recorded: ProxiedRequest = { method: req.method ?? 'GET', path, contentRange: String(req.headers['content-range'] ?? ''), ...(session && { session }) };
    requests.push(recorded);
    const decision = decide?.(recorded) ?? 'forward';
    if (decision === 'reset') {
      req.socket.destroy();
      return;
    }
    if (decision === 'hang') {
      req.resume();
      return;
    }
    if (typeof decision === 'object') {
      req.resume();
      req.once('end', () => {
        res.writeHead(decision.status, decision.headers);
        res.end(decision.body);
      });
      return;
    }
    const upstream = httpRequest(`${target}${path}`, { method: req.method, headers: req.headers }, (answer) => {
      recorded.status = answer.statusCode;
      recorded.responseHeaders = answer.headers;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.once('error', () => res.destroy());
    // A client that goes away mid-body must look the same to fake-gcs-server.
    req.once('close', () => {
      if (!req.complete) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    intercept(next) {
      decide = next;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
