import type { PostgresMetaStoreOptions } from './postgres.ts';
import { type SqliteMetaStoreOptions, openSqliteMetaStore } from './sqlite.ts';
import type { MetaStore } from './types.ts';

export type * from './types.ts';
export { KyselyMetaStore } from './kysely-store.ts';
export type { PostgresMetaStoreOptions } from './postgres.ts';
export { type SqliteMetaStoreOptions, openSqliteMetaStore } from './sqlite.ts';

/**
 * MetaStore dialects by the name configuration uses (`storage.meta.driver`); each factory takes
 * that dialect's validated options and returns a migrated store.
 */
export const metaStoreDrivers = {
  sqlite: (options: SqliteMetaStoreOptions): Promise<MetaStore> => openSqliteMetaStore(options),
  // Loaded when chosen, like the cloud blob drivers.
  postgres: async (options: PostgresMetaStoreOptions): Promise<MetaStore> => (await import('./postgres.ts')).openPostgresMetaStore(options),
} as const;

export type MetaStoreDriverName = keyof typeof metaStoreDrivers;
