import { rmSync } from 'node:fs';
import { access, appendFile, chown, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type RunResult, requireTool, run } from './clients.ts';
import { freePort } from './net.ts';

export interface PostgresServer {
  readonly port: number;
  /** How long initdb and the start took, ms. */
  readonly startupMs: number;
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` (trust authentication: no password). */
  connectionString(database: string): string;
  /** Creates an empty database (UTF8, C.UTF-8, from template0) and returns its connection string. */
  createDatabase(name: string): Promise<string>;
  /** Drops the database, closing any connection still open to it. */
  dropDatabase(name: string): Promise<void>;
  /** Runs one statement in `database`, on a connection of its own, for assertions on what a store wrote. */
  query<Row extends Record<string, unknown>>(database: string, text: string, params?: unknown[]): Promise<Row[]>;
  /** The last lines of the server's log. */
  logTail(lines?: number): Promise<string>;
  /**
   * For fault tests: stops the server and keeps the cluster, so that up() brings the same data back on
   * the same port. `fast` (default) rolls back open transactions and ends every session with 57P01
   * admin_shutdown; `immediate` is a crash (recovery from the WAL at the next start). A no-op when down.
   */
  down(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the server again after down(), on the same port and data; resolves once it accepts connections. */
  up(): Promise<void>;
  /** `pg_ctl stop -m fast`, then removes the cluster's directory. Safe to call twice. */
  stop(): Promise<void>;
}

const databaseName = /^[a-z_][a-z0-9_]{0,62}$/;

export interface StartPostgresOptions {
  /**
   * Every commit is handed to the OS before it is acknowledged (synchronous_commit on), so that a crash
   * of the server (`down('immediate')`) loses no acknowledged commit; fsync stays off, since the machine
   * itself does not crash. Without it (the default) the last ~half second of commits may be lost then.
   */
  crashSafe?: boolean;
}

/**
 * Starts a throwaway PostgreSQL cluster: initdb in a temp directory, the server on a free loopback port
 * with its socket in that directory, and waits until it accepts connections. The binaries are
 * ASTORE_TEST_POSTGRES's (scripts/install-postgres.sh); without them the test fails, never skips.
 *
 * initdb refuses to run as root, so as root the directory is handed to the `postgres` user and every
 * binary runs as it (runuser). The cluster trades durability for speed (fsync off): it lives for one
 * test file. Takes 1-10 s depending on the load; a test file starts one in `before`, stops it in
 * `after`, and gives each test a database of its own (createDatabase).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = requireTool('ASTORE_TEST_POSTGRES');
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    await access(join(bin, tool), constants.X_OK).catch(() => {
      throw new Error(`${join(bin, tool)} is missing: ASTORE_TEST_POSTGRES must name a PostgreSQL server's bin directory (scripts/install-postgres.sh)`);
    });
  }
  const started = Date.now();
  const asRoot = process.getuid?.() === 0;
  const runAsServer = (tool: string, args: string[]): Promise<RunResult> =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);

  const dir = await mkdtemp(join(tmpdir(), 'astore-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  try {
    if (asRoot) {
      const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')]);
      await chown(dir, uid, gid);
    }
    const initdb = await runAsServer('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions']);
    if (initdb.code !== 0) throw new Error(`initdb failed (${initdb.code}): ${initdb.stderr || initdb.stdout}`);
    // Loopback only, the socket beside the data (not /var/run/postgresql, which may not exist or be
    // another cluster's); no fsync, since the cluster dies with the test file (see crashSafe).
    await appendFile(
      join(data, 'postgresql.conf'),
      [
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        'fsync = off',
        `synchronous_commit = ${options.crashSafe ? 'on' : 'off'}`,
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  // A port taken between freePort() and the server's bind fails the start; try again on another one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const start = await runAsServer('pg_ctl', ['-D', data, '-l', logFile, '-o', `-p ${port}`, '-w', '-t', '120', 'start']);
    if (start.code === 0) return await connected(port);
    const log = await readFile(logFile, 'utf8').catch(() => '');
    if (attempt < 3 && /could not bind|Address already in use/.test(log)) continue;
    await runAsServer('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`pg_ctl start failed (${start.code}): ${start.stderr || start.stdout}\n${log.split('\n').slice(-20).join('\n')}`);
  }

  async function connected(port: number): Promise<PostgresServer> {
    const postmasterPid = async (): Promise<number> => Number((await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    let postmaster = await postmasterPid();
    // If the test process exits without stop() (a failed before(), an uncaught error), the server goes
    // too: SIGQUIT is PostgreSQL's immediate shutdown, the postmaster takes its backends with it.
    const quit = (): void => {
      try {
        if (postmaster > 0) process.kill(postmaster, 'SIGQUIT');
      } catch {
        // already gone
      }
    };
    const killOnExit = (): void => {
      quit();
      rmSync(dir, { recursive: true, force: true });
    };
    const killOnSignal = (signal: NodeJS.Signals): void => {
      killOnExit();
      process.kill(process.pid, signal);
    };
    process.once('exit', killOnExit);
    process.once('SIGINT', killOnSignal);
    process.once('SIGTERM', killOnSignal);

    const connectionString = (database: string): string => `postgresql://postgres@127.0.0.1:${port}/${database}`;
    const newAdmin = (): pg.Client => {
      const client = new pg.Client({ connectionString: connectionString('postgres') });
      client.on('error', () => {});
      return client;
    };
    let admin = newAdmin();
    let isDown = false;
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopped ??= (async () => {
        process.removeListener('exit', killOnExit);
        process.removeListener('SIGINT', killOnSignal);
        process.removeListener('SIGTERM', killOnSignal);
        await admin.end().catch(() => {});
        // After down() there is no server (and the old postmaster's pid may be another process's now).
        if (!isDown) {
          const result = await runAsServer('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
          if (result.code !== 0) quit();
        }
        await rm(dir, { recursive: true, force: true });
      })());
    try {
      await admin.connect();
      await admin.query('select 1');
    } catch (err) {
      await stop();
      throw err;
    }

    return {
      port,
      startupMs: Date.now() - started,
      connectionString,
      async createDatabase(name) {
        if (!databaseName.test(name)) throw new Error(`not a plain database name: ${name}`);
        await admin.query(`create database "${name}" template template0 encoding 'UTF8' locale 'C.UTF-8'`);
        return connectionString(name);
      },
      async dropDatabase(name) {
        if (!databaseName.test(name)) throw new Error(`not a plain database name: ${name}`);
        await admin.query(`drop database if exists "${name}" with (force)`);
      },
      async query<Row extends Record<string, unknown>>(database: string, text: string, params: unknown[] = []) {
        const client = new pg.Client({ connectionString: connectionString(database) });
        await client.connect();
        try {
          return (await client.query<Row>(text, params)).rows;
        } finally {
          await client.end();
        }
      },
      async logTail(lines = 40) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        return log.split('\n').slice(-lines).join('\n');
      },
      async down(mode = 'fast') {
        if (stopped) throw new Error('the cluster was stopped for good (stop())');
        if (isDown) return;
        isDown = true;
        await admin.end().catch(() => {});
        const result = await runAsServer('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
        if (result.code === 0) postmaster = 0;
        if (result.code !== 0) throw new Error(`pg_ctl stop -m ${mode} failed (${result.code}): ${result.stderr || result.stdout}`);
      },
      async up() {
        if (stopped) throw new Error('the cluster was stopped for good (stop()); up() cannot bring it back');
        if (!isDown) return;
        // The same port, so that the pools under test reconnect to it; should another process have
        // taken it meanwhile, this fails rather than moving.
        const start = await runAsServer('pg_ctl', ['-D', data, '-l', logFile, '-o', `-p ${port}`, '-w', '-t', '120', 'start']);
        if (start.code !== 0) throw new Error(`pg_ctl start failed (${start.code}): ${start.stderr || start.stdout}\n${(await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n')}`);
        postmaster = await postmasterPid();
        admin = newAdmin();
        await admin.connect();
        isDown = false;
      },
      stop,
    };
  }
}

/** The `postgres` user's uid (`-u`) or gid (`-g`). */
async function idOf(flag: '-u' | '-g'): Promise<number> {
  const result = await run('id', [flag, 'postgres']);
  const id = Number(result.stdout.trim());
  if (result.code !== 0 || !Number.isInteger(id)) {
    throw new Error(`running as root, and there is no 'postgres' user to run initdb as (initdb refuses root): ${result.stderr}`);
  }
  return id;
}
