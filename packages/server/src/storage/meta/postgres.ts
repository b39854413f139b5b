import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { type Database, type DialectHooks, type WritePolicy, setWritePolicy } from './db.ts';
import { KyselyMetaStore } from './kysely-store.ts';
import { type AvailabilityOptions, GuardedPool, defaultAvailability } from './postgres-availability.ts';

export interface PostgresMetaStoreOptions {
  /** `postgresql://user:password@host:port/database`, with `?sslmode=...` and the rest libpq-style. */
  connectionString: string;
  /**
   * Connections in the pool (default 10). A transaction holds one until it ends: deleteIfGarbage holds
   * it while the blob's bytes are removed, and a touch of the same blob waits on another one meanwhile.
   */
  poolSize?: number;
  /** The server's statement_timeout for this store's connections, ms; absent or 0: the server's default. */
  statementTimeoutMs?: number;
  /** How long a transaction or query waits for a connection (a free one in the pool, or a new one), ms (default 30 000). */
  connectTimeoutMs?: number;
  /** Shown in pg_stat_activity (default 'astore'). */
  applicationName?: string;
  /** The circuit breaker over the server's availability (postgres-availability.ts); defaults: 5 failures, 2 000 ms. */
  availability?: Partial<AvailabilityOptions>;
}

/**
 * Opens (and migrates as needed) the PostgreSQL MetaStore: a pg Pool under Kysely's PostgresDialect.
 * Replicas may share the database and open it at once: the migrator holds an advisory lock, so each
 * migration applies once. Write transactions run at READ COMMITTED under postgresWritePolicy (see
 * db.ts inWriteTransaction); reads of several statements at REPEATABLE READ, read only.
 *
 * While the server is down or unreachable, every call fails with AstoreError('ServiceUnavailable'),
 * at once while its circuit is open, and the store recovers by itself when the server is back
 * (GuardedPool, postgres-availability.ts).
 */
export async function openPostgresMetaStore(options: PostgresMetaStoreOptions): Promise<KyselyMetaStore> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 30_000,
    application_name: options.applicationName ?? 'astore',
    // The client's own bound a little above the server's: a server that vanished mid-query (no reset)
    // cannot hold a request for the TCP timeout. The connection is then discarded (GuardedPool).
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs, query_timeout: options.statementTimeoutMs + 5_000 } : {}),
    types: { getTypeParser },
    // Notices a server that vanished without closing the connection (a host down, a network cut) on
    // idle connections too, rather than at the next query only.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle connection the server closed (restart, failover) is dropped by the pool, which opens a new
  // one for the next query; without a listener the error event would end the process.
  pool.on('error', () => {});
  const guarded = new GuardedPool(pool, { ...defaultAvailability, ...options.availability });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: guarded }) });
  setWritePolicy(db, postgresWritePolicy);
  const store = new KyselyMetaStore(db, postgresHooks);
  try {
    await requireUtf8(db);
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

export const postgresHooks: DialectHooks = {
  name: 'postgres',
  addIdColumn: (table) => table.addColumn('id', 'bigint', (col) => col.primaryKey().generatedByDefaultAsIdentity()),
  // The "C" collation compares the UTF-8 bytes (memcmp), whatever the database's default collation.
  byteOrderText: sql`text collate "C"`,
  bytes: 'bytea',
};

/** SQLSTATEs of a transaction that lost to a concurrent one (db.ts inWriteTransaction says which arise where). */
const retryableStates: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505', // unique_violation: another writer inserted the same key first
  '23503', // foreign_key_violation: another writer deleted the parent, or referenced the row deleted
]);

export const postgresWritePolicy: WritePolicy = {
  isolationLevel: 'read committed',
  maxAttempts: 10,
  retryable: (err) => err instanceof pg.DatabaseError && err.code !== undefined && retryableStates.has(err.code),
};

/**
 * int8 (bigint) comes back as a JS number, as better-sqlite3 returns it: every bigint column holds
 * milliseconds, byte sizes, ids or counters, far below 2^53. A value that is not a safe integer is
 * an error, never a rounded number.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} is beyond Number.MAX_SAFE_INTEGER`);
  return value;
}

const INT8_OID = 20;

/** The pool's own type parsers, so the process-wide pg.types stay as they are for other users of pg. */
function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') return parseInt8;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

/** Keys and names are UTF-8 text compared as bytes: a database in another encoding would change both. */
async function requireUtf8(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ server_encoding: string }>`show server_encoding`.execute(db);
  const encoding = rows[0]?.server_encoding;
  if (encoding !== 'UTF8') throw new Error(`the PostgreSQL database must use the UTF8 encoding, not ${encoding ?? 'unknown'} (CREATE DATABASE ... ENCODING 'UTF8')`);
}
