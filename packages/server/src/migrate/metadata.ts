import { type Expression, type Kysely, type SqlBool, sql } from 'kysely';
import type { Database } from '../storage/meta/db.ts';
import { MigrationRefused, showValue } from './errors.ts';
import { type AnyTableSpec, copiedTables } from './tables.ts';

/** What the copy did to one table. */
export interface TableReport {
  table: string;
  /** Rows in the source's snapshot. */
  sourceRows: number;
  /** Rows inserted into the target by this run. */
  copied: number;
  /** Rows the target already held, identical (an earlier run's). */
  present: number;
}

export interface MetadataProgress {
  table: string;
  /** 1-based position of `table` in the copy order. */
  tableNumber: number;
  tables: number;
  rows: number;
  totalRows: number;
}

type Row = Record<string, unknown>;
/** The copy handles every table alike, by name; TableSpec keeps the names checked against Database. */
type AnyDatabase = Kysely<Record<string, Row>>;

const defaultBatchRows = 500;

/**
 * Copies every table of `copiedTables` (tables.ts), in that (foreign-key) order, from one consistent snapshot
 * of the source into the target, in batches by primary key (keyset paging, so each batch is one
 * indexed range read however large the table).
 *
 * Resumable and idempotent: rows the target already holds are compared, not written, and inserts are
 * ON CONFLICT DO NOTHING; ids are copied as they are, so a rerun finds the same keys. A row the target
 * holds with other values under the same key refuses the migration, naming the table, the key and the
 * columns, before that batch writes anything; a row the insert skips because another row of the target
 * holds its unique values (the same bucket and key under another id) refuses it right after.
 * On PostgreSQL the identity sequences are then moved past the highest copied id.
 */
export async function copyMetadata(
  source: Kysely<Database>,
  target: Kysely<Database>,
  options: {
    targetDialect: 'sqlite' | 'postgres';
    /** Rows per batch for every table, instead of each table's own (tests use a few, to page). */
    batchRows?: number;
    signal?: AbortSignal;
    onProgress?: (progress: MetadataProgress) => void;
  },
): Promise<TableReport[]> {
  const reports = await snapshotOf(source, async (snapshot) => {
    const counts = await countRows(snapshot);
    const totalRows = [...counts.values()].reduce((a, b) => a + b, 0);
    const reports: TableReport[] = [];
    let rows = 0;
    for (const [index, spec] of copiedTables.entries()) {
      const report: TableReport = { table: spec.name, sourceRows: counts.get(spec.name) ?? 0, copied: 0, present: 0 };
      reports.push(report);
      const progress = () => options.onProgress?.({ table: spec.name, tableNumber: index + 1, tables: copiedTables.length, rows, totalRows });
      progress();
      for await (const batch of pages(snapshot as unknown as AnyDatabase, spec, options.batchRows ?? spec.batchRows ?? defaultBatchRows)) {
        options.signal?.throwIfAborted();
        const { copied, present } = await copyBatch(target as unknown as AnyDatabase, spec, batch);
        report.copied += copied;
        report.present += present;
        rows += batch.length;
        progress();
      }
    }
    return reports;
  });
  if (options.targetDialect === 'postgres') await moveIdentitySequences(target);
  return reports;
}

/** Rows per table, for every listed table. */
export async function countRows(db: Kysely<Database>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const spec of copiedTables) {
    const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(spec.name)}`.execute(db);
    counts.set(spec.name, Number(rows[0]?.n ?? 0));
  }
  return counts;
}

/**
 * One snapshot for the whole copy, so that the rows copied are consistent with each other even if the
 * source were written meanwhile (it should not be: see docs/migrate.md). SQLite: a read transaction
 * (its snapshot starts at the first read); PostgreSQL: REPEATABLE READ, read only.
 */
function snapshotOf<T>(db: Kysely<Database>, work: (snapshot: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work);
}

/** The table's rows in primary-key order, a batch at a time: `key > last key of the previous batch`. */
async function* pages(db: AnyDatabase, spec: AnyTableSpec, size: number): AsyncGenerator<Row[]> {
  let after: Row | undefined;
  for (;;) {
    let query = db.selectFrom(spec.name).selectAll();
    if (after) query = query.where(keyAfter(spec, after));
    for (const column of spec.key) query = query.orderBy(column);
    const rows = await query.limit(size).execute();
    if (rows.length > 0) yield rows;
    if (rows.length < size) return;
    after = rows[rows.length - 1];
  }
}

/** `(k1, k2, ...) > (v1, v2, ...)`: row-value comparison, in the key columns' own collation and order. */
function keyAfter(spec: AnyTableSpec, row: Row): Expression<SqlBool> {
  const columns = sql.join(spec.key.map((column) => sql.ref(column)));
  const values = sql.join(spec.key.map((column) => row[column]));
  return sql<SqlBool>`(${columns}) > (${values})`;
}

/** The rows of `table` whose keys are those of `rows`: IN for one key column, else an OR of equalities. */
async function rowsWithKeys(db: AnyDatabase, spec: AnyTableSpec, rows: readonly Row[]): Promise<Map<string, Row>> {
  const [only] = spec.key;
  const condition =
    spec.key.length === 1
      ? sql<SqlBool>`${sql.ref(only!)} in (${sql.join(rows.map((row) => row[only!]))})`
      : sql<SqlBool>`${sql.join(rows.map((row) => sql`(${keyEquals(spec, row)})`), sql` or `)}`;
  const found = await db.selectFrom(spec.name).selectAll().where(condition).execute();
  return new Map(found.map((row) => [keyOf(spec, row), row]));
}

/** `k1 = v1 and k2 = v2 ...` for the row's key. */
const keyEquals = (spec: AnyTableSpec, row: Row) => sql<SqlBool>`${sql.join(spec.key.map((column) => sql`${sql.ref(column)} = ${row[column]}`), sql` and `)}`;

const keyOf = (spec: AnyTableSpec, row: Row): string => JSON.stringify(spec.key.map((column) => row[column]));

const showKey = (spec: AnyTableSpec, row: Row): string => spec.key.map((column) => `${column}=${showValue(row[column])}`).join(', ');

/** Inserts the rows the target lacks; compares those it has. */
async function copyBatch(target: AnyDatabase, spec: AnyTableSpec, batch: readonly Row[]): Promise<{ copied: number; present: number }> {
  const existing = await rowsWithKeys(target, spec, batch);
  const missing: Row[] = [];
  const conflicts: string[] = [];
  const raise: Row[] = [];
  for (const row of batch) {
    const held = existing.get(keyOf(spec, row));
    if (!held) {
      missing.push(row);
      continue;
    }
    const differences = differingColumns(spec, row, held);
    if (differences.length > 0) conflicts.push(`row ${showKey(spec, row)}: ${differences.join('; ')}`);
    else if (spec.counters?.some((column) => Number(held[column]) < Number(row[column]))) raise.push(row);
  }
  refuseOnConflicts(spec, conflicts);

  let copied = 0;
  if (missing.length > 0) {
    const result = await target.insertInto(spec.name).values(missing).onConflict((oc) => oc.doNothing()).executeTakeFirst();
    copied = Number(result.numInsertedOrUpdatedRows ?? 0n);
    if (copied < missing.length) {
      // Some rows collided with a target row on a unique constraint other than the primary key (or
      // appeared meanwhile): find which, and say so.
      const now = await rowsWithKeys(target, spec, missing);
      for (const row of missing) {
        const held = now.get(keyOf(spec, row));
        if (!held) conflicts.push(`row ${showKey(spec, row)}: the target holds another row with the same unique values (e.g. the same bucket and key under another id)`);
        else if (differingColumns(spec, row, held).length > 0) conflicts.push(`row ${showKey(spec, row)}: ${differingColumns(spec, row, held).join('; ')}`);
      }
      refuseOnConflicts(spec, conflicts);
    }
  }
  for (const row of raise) {
    const set = sql.join(spec.counters!.map((column) => sql`${sql.ref(column)} = ${row[column]}`));
    await sql`update ${sql.table(spec.name)} set ${set} where ${keyEquals(spec, row)}`.execute(target);
  }
  return { copied, present: batch.length - missing.length };
}

function refuseOnConflicts(spec: AnyTableSpec, conflicts: readonly string[]): void {
  if (conflicts.length === 0) return;
  const shown = conflicts.slice(0, 10).map((line) => `  ${line}`);
  if (conflicts.length > 10) shown.push(`  ... and ${conflicts.length - 10} more in this batch`);
  throw new MigrationRefused(
    `the target already holds different data for the same keys in table ${spec.name}:\n${shown.join('\n')}\n` +
      'The target must be empty or hold an earlier run of this same migration; if the source changed since that run, start again with an empty target.',
  );
}

/** `column: <source value> in the source, <target value> in the target` for each column that differs (counters aside). */
function differingColumns(spec: AnyTableSpec, source: Row, target: Row): string[] {
  const out: string[] = [];
  for (const column of Object.keys(source)) {
    if (spec.counters?.includes(column)) continue;
    if (!sameValue(source[column], target[column])) out.push(`${column} is ${showValue(source[column])} in the source, ${showValue(target[column])} in the target`);
  }
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return false;
}

/**
 * PostgreSQL identity columns hand out ids from a sequence that copied rows did not advance: without
 * this the target's next insert would reuse a copied id. Every identity column of the schema is moved,
 * from the catalog, so a table added later is covered too.
 */
async function moveIdentitySequences(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and is_identity = 'YES'`.execute(db);
  for (const { table_name: table, column_name: column } of rows) {
    await sql`select setval(pg_get_serial_sequence(${table}, ${column}), m)
      from (select max(${sql.ref(column)}) as m from ${sql.table(table)}) as highest where m is not null`.execute(db);
  }
}
