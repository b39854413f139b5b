import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from './clients.ts';
import { PortInUse, onFreePort, tailOf } from './process.ts';

/** Azurite's one built-in account; its key is published in Azurite's README, not a secret. */
export const azuriteAccountName = 'devstoreaccount1';
export const azuriteAccountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  /** http://127.0.0.1:<port>/devstoreaccount1, no trailing slash (path-style account URL). */
  accountUrl: string;
  accountName: string;
  accountKey: string;
  /** A shared-key connection string for the account. */
  connectionString: string;
  /** The last lines Azurite wrote (stdout and stderr). */
  logTail(lines?: number): Promise<string>;
  /** SIGINT (Azurite exits in about 1 s), SIGKILL after 10 s; removes the data directory. Safe to call twice. */
  stop(): Promise<void>;
}

const startTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;

/**
 * Starts Azurite's blob service (ASTORE_TEST_AZURITE, e.g. node_modules/.bin/azurite-blob) on a free
 * loopback port with its data in a temp directory, and waits until it answers HTTP. A missing Azurite
 * fails the caller: these tests never skip. One server per test file; each test isolates itself in a
 * container of its own.
 *
 * `--disableTelemetry` matters beyond privacy: without it Azurite 3.37 does not exit on SIGINT.
 */
export async function startAzurite(): Promise<AzuriteServer> {
  const bin = requireTool('ASTORE_TEST_AZURITE');
  const home = await mkdtemp(join(tmpdir(), 'astore-azurite-'));
  try {
    await mkdir(join(home, 'data'));
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  return onFreePort(home, (port) => launch(bin, home, port));
}


async function launch(bin: string, home: string, port: number): Promise<AzuriteServer> {
  const accountUrl = `http://127.0.0.1:${port}/${azuriteAccountName}`;
  const logFile = join(home, 'azurite.log');
  const log = openSync(logFile, 'w');
  const child = spawn(
    bin,
    [
      '--blobHost', '127.0.0.1',
      '--blobPort', String(port),
      '--location', join(home, 'data'),
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
      // No access log: the large-blob tests make thousands of requests.
      '--silent',
    ],
    { cwd: home, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const spawnFailed = new Promise<Error>((res) => child.once('error', res));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const running = () => child.exitCode === null && child.signalCode === null;
  let stopped: Promise<void> | undefined;

  // If the test process exits without stop() (a failed before(), an uncaught error), Azurite goes too.
  const killOnExit = () => {
    if (running()) child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  };
  const killOnSignal = (signal: NodeJS.Signals) => {
    killOnExit();
    process.kill(process.pid, signal);
  };
  process.once('exit', killOnExit);
  process.once('SIGINT', killOnSignal);
  process.once('SIGTERM', killOnSignal);
  // Azurite must not keep the test process alive on its own.
  child.unref();

  const logTail = (lines = 40) => tailOf(logFile, lines);

  async function terminate(): Promise<void> {
    process.removeListener('exit', killOnExit);
    process.removeListener('SIGINT', killOnSignal);
    process.removeListener('SIGTERM', killOnSignal);
    if (child.pid === undefined) return;
    if (running()) child.kill('SIGINT');
    const killed = setTimeout(() => running() && child.kill('SIGKILL'), stopTimeoutMs);
    await exited;
    clearTimeout(killed);
  }

  function stop(): Promise<void> {
    stopped ??= terminate().then(() => rm(home, { recursive: true, force: true }));
    return stopped;
  }

  // Ready when the blob endpoint answers anything (an unauthenticated request gets 403).
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    const failure = await Promise.race([spawnFailed, sleep(0).then(() => undefined)]);
    if (failure) {
      await terminate();
      throw new Error(`cannot start Azurite (${bin}, from ASTORE_TEST_AZURITE): ${failure.message}`);
    }
    if (!running()) {
      const tail = await logTail();
      await terminate();
      if (/EADDRINUSE/.test(tail)) throw new PortInUse(`port ${port} is taken`);
      throw new Error(`Azurite (${bin}) exited during start-up (code ${child.exitCode ?? child.signalCode}); its output:\n${tail}`);
    }
    try {
      await fetch(`${accountUrl}?comp=list`, { signal: AbortSignal.timeout(2_000) });
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = await logTail();
      await terminate();
      throw new Error(`Azurite did not answer on ${accountUrl} within ${startTimeoutMs / 1000} s; its output:\n${tail}`);
    }
    await sleep(100);
  }

  return {
    accountUrl,
    accountName: azuriteAccountName,
    accountKey: azuriteAccountKey,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${azuriteAccountName};AccountKey=${azuriteAccountKey};BlobEndpoint=${accountUrl};`,
    logTail,
    stop,
  };
}

