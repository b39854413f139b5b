import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApp } from '../../packages/server/src/app.ts';
import { parseConfig } from '../../packages/server/src/config/load.ts';
import { createLogger } from '../../packages/server/src/observability/logger.ts';
import { buildServer } from '../../packages/server/src/server.ts';
import type { App } from '../../packages/server/src/app.ts';
import { backendConfig } from './backend.ts';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const accessKeyId = 'AKIDASTORETEST';
export const secretKey = 'astore-test-secret-key-0123456789';
export const region = 'us-east-1';

export interface TestServer {
  endpoint: string;
  port: number;
  dataDir: string;
  app: App;
  /** Environment for AWS clients (aws-cli, boto3) pointed at this server. */
  clientEnv: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Environment for real AWS clients: credentials, region, no config files from $HOME. */
export function awsEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretKey,
    AWS_DEFAULT_REGION: region,
    AWS_REGION: region,
    AWS_CONFIG_FILE: join(dir, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
  };
}

/**
 * Starts astore in this process on a free loopback port with a fresh data dir (removed by stop()).
 * `config` is merged over test defaults (silent log, GC off, small multipart minimum left at 5 MiB).
 */
export async function startServer(config: Record<string, unknown> = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'astore-test-'));
  const parsed = parseConfig({
    dataDir,
    server: { host: '127.0.0.1', port: 0, shutdownGraceSeconds: 5 },
    log: { level: process.env.ASTORE_TEST_LOG ?? 'silent' },
    auth: { rootAccessKey: accessKeyId, rootSecretKey: secretKey },
    gc: { enabled: false },
    ...(await backendConfig()),
    ...config,
  });
  const app = await openApp(parsed, createLogger(parsed.log.level));
  const server = await buildServer(app);
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    app,
    clientEnv: awsEnv(dataDir),
    async stop() {
      await server.close();
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ServerProcess {
  endpoint: string;
  child: ChildProcess;
  /** The last few KiB the server wrote to stderr. */
  stderr(): string;
  /** Waits for exit after SIGKILL or SIGTERM. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Starts `astore serve` as a child process on `dataDir` (kept between restarts) and waits for /healthz. */
export async function spawnServer(dataDir: string, port: number, env: NodeJS.ProcessEnv = {}, options: { logFile?: string } = {}): Promise<ServerProcess> {
  // The server takes every ASTORE_* variable as configuration and refuses unknown keys, so the test
  // runner's own (ASTORE_TEST_AWS, ASTORE_TOOLS_DIR, ...) are not passed on: only those set here are.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ASTORE_')));
  const childEnv: NodeJS.ProcessEnv = {
      ...inherited,
      ASTORE_DATA_DIR: dataDir,
      ASTORE_SERVER__HOST: '127.0.0.1',
      ASTORE_SERVER__PORT: String(port),
      ASTORE_AUTH__ROOT_ACCESS_KEY: accessKeyId,
      ASTORE_AUTH__ROOT_SECRET_KEY: secretKey,
      ASTORE_LOG__LEVEL: 'warn',
      ASTORE_GC__ENABLED: 'false',
      ...env,
  };
  // A variable given as undefined is removed, e.g. to let the server generate root credentials.
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  // With a log file, everything the server writes (its log is on stdout) goes there, whole.
  const log = options.logFile ? openSync(options.logFile, 'a') : undefined;
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'packages/server/src/main.ts'), 'serve'], {
    cwd: repoRoot,
    env: childEnv,
    stdio: ['ignore', log ?? 'ignore', log ?? 'pipe'],
  });
  if (log !== undefined) closeSync(log);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`astore exited during start-up (code ${child.exitCode}):\n${stderr}`);
    try {
      const res = await fetch(`${endpoint}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`astore did not become healthy in 30 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    child,
    stderr: () => stderr,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export { freePort } from './net.ts';
