import type { Database } from '../storage/meta/db.ts';

export type TableName = keyof Database & string;

/** How `astore migrate` copies one MetaStore table. */
export interface TableSpec<T extends TableName> {
  readonly name: T;
  /**
   * The primary key's columns, in the key's order: the copy pages by them (keyset), and a conflict
   * names the row by them.
   */
  readonly key: readonly (keyof Database[T] & string)[];
  /** Rows read and inserted per statement (default 500): fewer where one row can be large. */
  readonly batchRows?: number;
  /**
   * Columns of a counter the schema itself creates (the one-row generation tables start at 0 in a
   * fresh target): raised to the source's value instead of compared. Counters only ever grow, so the
   * higher of the two is the one every cache has already seen or will see as a change.
   */
  readonly counters?: readonly (keyof Database[T] & string)[];
  /**
   * Not copied: the rows describe the source's running processes, not data (a lease names a process
   * of the source's and expires on its own; copied, it would only hold the target's work back).
   */
  readonly transient?: true;
}

/** A TableSpec with its table's column types forgotten: what the copy, which treats all tables alike, takes. */
export interface AnyTableSpec {
  readonly name: TableName;
  readonly key: readonly string[];
  readonly batchRows?: number;
  readonly counters?: readonly string[];
  readonly transient?: true;
}

const table = <T extends TableName>(spec: TableSpec<T>): TableSpec<T> => spec;

/**
 * Every MetaStore table, parents before children (the foreign keys of migrations.ts), so that a row
 * is inserted only after the rows it references. The one list the migration copies from: a table
 * missing here would be silently left behind, so tsc refuses (everyTableListed below), the unit test
 * (tables.test.ts) compares it with db.ts's Database and with what the migrations create, and
 * runMigration refuses a source holding a table not listed.
 */
export const migratedTables = [
  table({ name: 'buckets', key: ['name'] }),
  table({ name: 'blobs', key: ['digest'] }),
  table({ name: 'objects', key: ['id'] }),
  table({ name: 'object_segments', key: ['object_id', 'seq'] }),
  table({ name: 'multipart_uploads', key: ['upload_id'] }),
  table({ name: 'upload_parts', key: ['upload_id', 'part_number'] }),
  table({ name: 'repositories', key: ['name'] }),
  table({ name: 'repository_blobs', key: ['repository', 'digest'] }),
  // A manifest's content is up to oci.maxManifestBytes (4 MiB by default) in the row itself.
  table({ name: 'manifests', key: ['repository', 'digest'], batchRows: 20 }),
  table({ name: 'manifest_refs', key: ['repository', 'manifest', 'kind', 'ref'] }),
  table({ name: 'tags', key: ['repository', 'name'] }),
  table({ name: 'registry_uploads', key: ['upload_id'] }),
  table({ name: 'registry_upload_chunks', key: ['upload_id', 'seq'] }),
  table({ name: 'users', key: ['name'] }),
  table({ name: 'groups', key: ['name'] }),
  table({ name: 'group_members', key: ['group_name', 'user_name'] }),
  table({ name: 'access_keys', key: ['access_key_id'] }),
  table({ name: 'policies', key: ['name'] }),
  table({ name: 'identity_state', key: ['id'], counters: ['generation'] }),
  table({ name: 'audit_log', key: ['id'] }),
  table({ name: 'sc_records', key: ['id'] }),
  table({ name: 'sc_components', key: ['id'] }),
  table({ name: 'sc_facts', key: ['record_id'] }),
  table({ name: 'sc_keys', key: ['id'] }),
  table({ name: 'sc_trust_policies', key: ['name'] }),
  table({ name: 'sc_verifications', key: ['subject', 'policy'] }),
  table({ name: 'sc_state', key: ['id'], counters: ['generation'] }),
  table({ name: 'leases', key: ['name'], transient: true }),
] as const;

/** The tables whose rows are copied, in copy order. */
export const copiedTables: readonly AnyTableSpec[] = (migratedTables as readonly AnyTableSpec[]).filter((spec) => !spec.transient);

type Unlisted = Exclude<TableName, (typeof migratedTables)[number]['name']>;
// A table added to Database but not to migratedTables makes this a type error naming the table.
const everyTableListed: [Unlisted] extends [never] ? true : { unlisted: Unlisted } = true;
void everyTableListed;

/** Tables of the schema that are not data: Kysely's migration bookkeeping. */
export const bookkeepingTables: ReadonlySet<string> = new Set(['astore_migration', 'astore_migration_lock']);
