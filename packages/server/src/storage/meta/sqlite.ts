import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  SelectQueryNode,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  type TransactionSettings,
  type UnknownRow,
} from 'kysely';
import { type Database, type DialectHooks, setDurabilityBarrier } from './db.ts';
import { KyselyMetaStore } from './kysely-store.ts';

export interface SqliteMetaStoreOptions {
  /** Database file; its directory is created. ':memory:' for a private in-memory database (tests). */
  path: string;
  /** SQLite `synchronous` in WAL mode: 'full' (default) fsyncs every commit, 'normal' only checkpoints. */
  synchronous?: 'full' | 'normal';
}

/**
 * Opens (creating and migrating as needed) the SQLite MetaStore. One better-sqlite3 connection
 * serves the process: Kysely queues every query and transaction on it, so transactions never
 * interleave within the process. WAL lets other processes (the CLI) read meanwhile.
 */
export async function openSqliteMetaStore(options: SqliteMetaStoreOptions): Promise<KyselyMetaStore> {
  const inMemory = options.path === ':memory:';
  if (!inMemory) await mkdir(dirname(options.path), { recursive: true });
  const database = new BetterSqlite3(options.path);
  try {
    if (!inMemory) database.pragma('journal_mode = WAL');
    // Commits never sync inside the connection; with synchronous 'full' (the default) the WAL is
    // fdatasynced by the durability barrier before any write is acknowledged (see WalSyncer).
    database.pragma(inMemory ? 'synchronous = FULL' : 'synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
  } catch (err) {
    database.close();
    throw err;
  }
  const db = new Kysely<Database>({
    dialect: new TransactionalSqliteDialect({ database: withStatementCache(database) }),
    plugins: [new WithoutRowLocks()],
  });
  const walSyncer = !inMemory && options.synchronous !== 'normal' ? new WalSyncer(`${options.path}-wal`) : undefined;
  if (walSyncer) setDurabilityBarrier(db, () => walSyncer.sync());
  const store = new KyselyMetaStore(db, sqliteHooks, async () => walSyncer?.close());
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/**
 * Kysely prepares every query anew; preparing costs more than running a small statement. The SQL
 * texts are few (queries are built from a fixed set of shapes), so prepared statements are kept by
 * text, bounded. Safe on the one connection: Kysely runs one statement at a time and never iterates.
 */
function withStatementCache(database: BetterSqlite3.Database, max = 256): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = database.prepare.bind(database);
  return new Proxy(database, {
    get(target, property, receiver) {
      if (property !== 'prepare') return Reflect.get(target, property, receiver) as unknown;
      return (sql: string) => {
        let statement = cache.get(sql);
        if (!statement) {
          statement = prepare(sql);
          if (cache.size >= max) cache.delete(cache.keys().next().value!);
          cache.set(sql, statement);
        }
        return statement;
      };
    },
  });
}

/**
 * Group commit for SQLite in WAL mode. Transactions commit with synchronous=NORMAL (no sync inside
 * the connection, so the event loop never blocks on the disk); before a writer is answered, one
 * fdatasync of the WAL file, started after its commit, makes the commit durable. Writers that commit
 * while a sync runs share the next one. This is what synchronous=FULL guarantees (the WAL is on disk
 * before the commit is acknowledged), with the sync off the event loop and shared. The WAL file keeps
 * its inode while the connection is open (checkpoints rewrite it from the start, never replace it).
 */
export class WalSyncer {
  private handle: Promise<FileHandle> | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  constructor(private readonly walPath: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.flush().finally(() => (this.running = undefined));
      return this.running;
    }
    // A sync already running may have started before our commit: wait for the one after it.
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.sync();
    });
    return this.next;
  }

  protected async flush(): Promise<void> {
    this.handle ??= open(this.walPath, 'r+');
    await (await this.handle).datasync();
  }

  async close(): Promise<void> {
    await this.running?.catch(() => {});
    await (await this.handle?.catch(() => undefined))?.close();
  }
}

export const sqliteHooks: DialectHooks = {
  name: 'sqlite',
  addIdColumn: (table) => table.addColumn('id', 'integer', (col) => col.primaryKey()),
  // BINARY collation compares UTF-8 text with memcmp: byte order, as S3 lists keys.
  byteOrderText: 'text',
  bytes: 'blob',
};

/**
 * Write transactions begin IMMEDIATE: they take the database write lock up front (waiting up to
 * busy_timeout for another process), instead of upgrading a read lock half-way, which in WAL mode
 * fails with SQLITE_BUSY_SNAPSHOT when another process wrote meanwhile. Read-only transactions
 * begin DEFERRED and read one snapshot.
 */
class TransactionalSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection, settings?: TransactionSettings): Promise<void> {
    const begin = settings?.accessMode === 'read only' ? 'begin deferred' : 'begin immediate';
    await connection.executeQuery(CompiledQuery.raw(begin));
  }
}

class TransactionalSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new TransactionalSqliteDriver(this.#config);
  }
}

/**
 * The shared queries take row locks (`for update`, `for key share`) where PostgreSQL needs them
 * (db.ts inWriteTransaction). SQLite has no such clause and no need of one: a write transaction holds
 * the whole database from BEGIN IMMEDIATE. This drops them from the top-level SELECT they are written
 * on, so SQLite runs exactly the statements it ran before they were written.
 */
class WithoutRowLocks implements KyselyPlugin {
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    const node = args.node;
    if (!SelectQueryNode.is(node) || !node.endModifiers?.some(isRowLock)) return node;
    const endModifiers = node.endModifiers.filter((modifier) => !isRowLock(modifier));
    return { ...node, endModifiers: endModifiers.length > 0 ? endModifiers : undefined };
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

const rowLockModifiers: ReadonlySet<string> = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare', 'NoWait', 'SkipLocked']);

function isRowLock(modifier: { kind: string; modifier?: string }): boolean {
  return modifier.kind === 'SelectModifierNode' && modifier.modifier !== undefined && rowLockModifiers.has(modifier.modifier);
}
