import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  type TransactionSettings,
} from 'kysely';
import type { Database, DialectHooks } from './db.ts';
import { KyselyMetaStore } from './kysely-store.ts';

export interface SqliteMetaStoreOptions {
  /** Database file; its directory is created. ':memory:' for a private in-memory database (tests). */
  path: string;
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
    database.pragma('synchronous = FULL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
  } catch (err) {
    database.close();
    throw err;
  }
  const db = new Kysely<Database>({ dialect: new TransactionalSqliteDialect({ database }) });
  const store = new KyselyMetaStore(db, sqliteHooks);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

export const sqliteHooks: DialectHooks = {
  name: 'sqlite',
  addIdColumn: (table) => table.addColumn('id', 'integer', (col) => col.primaryKey()),
  // BINARY collation compares UTF-8 text with memcmp: byte order, as S3 lists keys.
  byteOrderText: 'text',
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
