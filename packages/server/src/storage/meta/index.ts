import { type PostgresMetaStoreOptions, openPostgresMetaStore } from './postgres.ts';
import { type SqliteMetaStoreOptions, openSqliteMetaStore } from './sqlite.ts';
import type { MetaStore } from './types.ts';

export type * from './types.ts';
export { KyselyMetaStore } from './kysely-store.ts';
export { type PostgresMetaStoreOptions, openPostgresMetaStore } from './postgres.ts';
export { type SqliteMetaStoreOptions, openSqliteMetaStore } from './sqlite.ts';

/**
 * MetaStore dialects by the name configuration uses (`storage.meta.driver`); each factory takes
 * that dialect's validated options and returns a migrated store.
 */
export const metaStoreDrivers = {
  sqlite: (options: SqliteMetaStoreOptions): Promise<MetaStore> => openSqliteMetaStore(options),
  postgres: (options: PostgresMetaStoreOptions): Promise<MetaStore> => openPostgresMetaStore(options),
} as const;

export type MetaStoreDriverName = keyof typeof metaStoreDrivers;
