import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/schema.ts';
import type { Database } from '../storage/meta/db.ts';
import { migrations } from '../storage/meta/migrations.ts';
import { sqliteHooks } from '../storage/meta/sqlite.ts';

/**
 * A plain Kysely connection to a configuration's MetaStore database, beside the MetaStore: the copy
 * reads and writes whole tables, which the MetaStore's domain methods do not (and should not) offer.
 * The source is opened read-only, so a migration can never change it; the target's schema is created
 * by the MetaStore driver itself (openMetaStore) before this connection writes rows into it.
 */
export interface MetaConnection {
  readonly db: Kysely<Database>;
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the database is, without secrets. */
  readonly location: string;
  close(): Promise<void>;
}

/** The data directory, as the server resolves it (relative to the working directory). */
export const dataDirOf = (config: Readonly<Config>): string => resolve(config.dataDir);

/** The SQLite file of a configuration, as app.ts openMetaStore finds it. */
export const sqlitePathOf = (config: Readonly<Config>): string => resolve(config.storage.meta.sqlite.path ?? resolve(dataDirOf(config), 'meta.db'));

/**
 * Opens the database behind `config`'s MetaStore. Null when `mustExist` and a SQLite file is absent
 * (a target a dry run finds empty). A read-only SQLite connection never writes, not even the WAL
 * mode: the server set it when it created the file.
 */
export async function openMetaConnection(config: Readonly<Config>, options: { readOnly: boolean; mustExist?: boolean }): Promise<MetaConnection | null> {
  const meta = config.storage.meta;
  if (meta.driver === 'postgres') {
    const settings = meta.postgres!;
    const pool = new pg.Pool({
      connectionString: settings.connectionString,
      max: 2,
      connectionTimeoutMillis: settings.connectTimeoutMs,
      application_name: 'astore-migrate',
      ...(settings.statementTimeoutMs ? { statement_timeout: settings.statementTimeoutMs } : {}),
      // Every transaction of a source session refuses to write: a bug here cannot change the source.
      ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
      types: { getTypeParser },
    });
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: 'postgres', location: postgresLocation(settings.connectionString), close: () => db.destroy() };
  }
  const path = sqlitePathOf(config);
  if (options.mustExist && !existsSync(path)) return null;
  const database = new BetterSqlite3(path, { readonly: options.readOnly, fileMustExist: true });
  try {
    database.pragma('busy_timeout = 5000');
    if (!options.readOnly) {
      database.pragma('foreign_keys = ON');
      // Each batch is on disk when its insert returns: an interrupted copy resumes from what is there.
      database.pragma('synchronous = FULL');
    }
  } catch (err) {
    database.close();
    throw err;
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', location: `sqlite:${path}`, close: () => db.destroy() };
}

/** The migrations this astore applies, by name, in order (the schema version it expects). */
export function expectedSchema(): string[] {
  // The names do not depend on the dialect's hooks.
  return Object.keys(migrations(sqliteHooks)).sort();
}

/** The migrations applied to a database, in order; empty when it holds no astore schema yet. */
export async function appliedSchema(db: Kysely<Database>): Promise<string[]> {
  const tables = await dataTables(db, { includeBookkeeping: true });
  if (!tables.includes('astore_migration')) return [];
  const { rows } = await sql<{ name: string }>`select name from astore_migration order by name`.execute(db);
  return rows.map((row) => row.name);
}

/** The tables of the database (views and the dialect's own tables left out). */
export async function dataTables(db: Kysely<Database>, options: { includeBookkeeping?: boolean } = {}): Promise<string[]> {
  const tables = await db.introspection.getTables();
  return tables
    .filter((t) => !t.isView && !t.name.startsWith('sqlite_'))
    .filter((t) => options.includeBookkeeping || !t.name.startsWith('astore_migration'))
    .map((t) => t.name)
    .sort();
}

/** A connection string without its password. */
function postgresLocation(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return 'postgresql://(unparsable connection string)';
  }
}

/** Where a configuration's blobs are, without secrets. */
export function blobLocation(config: Readonly<Config>): string {
  const blob = config.storage.blob;
  switch (blob.driver) {
    case 'fs':
      return `fs:${resolve(blob.fs.path ?? resolve(dataDirOf(config), 'blobs'))}`;
    case 's3':
      return `s3://${blob.s3!.bucket}/${blob.s3!.prefix ?? ''}${blob.s3!.endpoint ? ` at ${blob.s3!.endpoint}` : ''}`;
    case 'azure':
      return `azure://${blob.azure!.accountName ?? blob.azure!.accountUrl ?? '(connection string)'}/${blob.azure!.container}/${blob.azure!.prefix ?? ''}`;
    case 'gcs':
      return `gs://${blob.gcs!.bucket}/${blob.gcs!.prefix ?? ''}${blob.gcs!.apiEndpoint ? ` at ${blob.gcs!.apiEndpoint}` : ''}`;
  }
}

/**
 * int8 (bigint) as a JS number, as the PostgreSQL MetaStore reads it (postgres.ts), so that rows
 * compare and insert the same whichever dialect they came from. A value beyond 2^53 is an error,
 * never a rounded number.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} is beyond Number.MAX_SAFE_INTEGER`);
  return value;
}

const INT8_OID = 20;

function getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') return parseInt8;
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}
