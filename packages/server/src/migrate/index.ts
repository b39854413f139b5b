import { openBlobStore, openMetaStore } from '../app.ts';
import type { Config } from '../config/schema.ts';
import { resilient } from '../storage/blob/index.ts';
import type { BlobStore } from '../storage/blob/types.ts';
import { type BlobReport, copyBlobs } from './blobs.ts';
import { MigrationRefused } from './errors.ts';
import { type CarriedFile, carryFiles } from './files.ts';
import { type TableReport, copyMetadata, countRows } from './metadata.ts';
import type { MigrationProgress } from './progress.ts';
import { type MetaConnection, appliedSchema, blobLocation, dataDirOf, dataTables, expectedSchema, openMetaConnection, sqlitePathOf } from './stores.ts';
import { copiedTables, migratedTables } from './tables.ts';

export { MigrationRefused } from './errors.ts';
export type { MigrationProgress } from './progress.ts';

export interface MigrationOptions {
  /** Blobs copied at once (default 4). */
  concurrency?: number;
  /** Counts what there is and what would be carried; writes nothing anywhere. */
  dryRun?: boolean;
  /** Rows per metadata batch for every table, instead of each table's own (default 500): for tests, which page with a few. */
  batchRows?: number;
  /** Stops the run: in-flight blob copies are abandoned (their staging keys removed), the report says interrupted. */
  signal?: AbortSignal;
  onProgress?: (progress: MigrationProgress) => void;
}

export interface StoresReport {
  meta: string;
  blob: string;
  dataDir: string;
}

export interface MigrationReport {
  /** Everything is in the target, verified: it can serve. */
  ok: boolean;
  dryRun: boolean;
  /** Stopped by the signal before the end; run again to resume. */
  interrupted: boolean;
  source: StoresReport;
  target: StoresReport;
  /** The schema version (last migration applied), and whether this run created the target's schema. */
  schema: { version: string; created: boolean };
  files: CarriedFile[];
  metadata: {
    tables: (TableReport & { targetRows?: number })[];
    rows: number;
    copied: number;
    present: number;
    durationMs: number;
  };
  blobs: BlobReport;
  /** Why `ok` is false, one sentence each (corrupt, missing and failed blobs are named in `blobs`). */
  problems: string[];
  warnings: string[];
  durationMs: number;
}

/**
 * Copies everything one configuration's stores hold into another's: the files outside the stores
 * (files.ts), every MetaStore row (metadata.ts), then every blob (blobs.ts). Safe to run again after
 * an interruption or a failure: it continues where the target is, copying nothing twice.
 *
 * Refuses (MigrationRefused, before writing anything) when the source's schema is not this astore's,
 * the target holds another schema version, or files or rows that differ from the source's. Other
 * failures throw; problems with single blobs do not: they are listed in the report (ok: false).
 * The source is only read, and must not take writes meanwhile (docs/migrate.md).
 */
export async function runMigration(from: Readonly<Config>, to: Readonly<Config>, options: MigrationOptions = {}): Promise<MigrationReport> {
  const started = Date.now();
  const dryRun = options.dryRun ?? false;
  const closers: (() => Promise<void>)[] = [];
  const report: MigrationReport = {
    ok: false,
    dryRun,
    interrupted: false,
    source: { meta: '', blob: blobLocation(from), dataDir: dataDirOf(from) },
    target: { meta: '', blob: blobLocation(to), dataDir: dataDirOf(to) },
    schema: { version: '', created: false },
    files: [],
    metadata: { tables: [], rows: 0, copied: 0, present: 0, durationMs: 0 },
    blobs: emptyBlobReport(),
    problems: [],
    warnings: [],
    durationMs: 0,
  };
  try {
    const source = await openMetaConnection(from, { readOnly: true, mustExist: true });
    if (!source) throw new MigrationRefused(`the source has no MetaStore at ${sqliteLocation(from)}: is --from the configuration the server ran with?`);
    closers.push(source.close);
    report.source.meta = source.location;
    const schema = await checkSourceSchema(source);
    report.schema.version = schema[schema.length - 1] ?? '';

    let target = await openMetaConnection(to, { readOnly: false, mustExist: true });
    if (target) closers.push(target.close);
    report.target.meta = target?.location ?? sqliteLocation(to);
    if (report.source.meta === report.target.meta && report.source.blob === report.target.blob) {
      throw new MigrationRefused(`--from and --to name the same stores (${report.source.meta}, ${report.source.blob})`);
    }
    const targetSchema = target ? await appliedSchema(target.db) : [];
    if (targetSchema.length > 0 && !sameList(targetSchema, schema)) {
      throw new MigrationRefused(
        `the target's schema (${describeSchema(targetSchema)}) is not the source's (${describeSchema(schema)}; ${schemaDifference('the target', targetSchema, 'the source', schema)}): ` +
          'migrate into an empty database, or one an earlier run of this migration filled',
      );
    }

    const files = await carryFiles(from, to, { dryRun });
    report.files = files.files;
    report.warnings.push(...files.warnings);

    if (dryRun) {
      await countOnly(source, targetSchema.length > 0 ? target : null, report);
      report.ok = true;
      return report;
    }

    if (targetSchema.length === 0) {
      // The MetaStore driver creates the schema exactly as the server would on first start.
      await (await openMetaStore(to, dataDirOf(to))).close();
      report.schema.created = true;
      if (!target) {
        target = (await openMetaConnection(to, { readOnly: false }))!;
        closers.push(target.close);
      }
      report.target.meta = target.location;
      const created = await appliedSchema(target.db);
      if (!sameList(created, schema)) throw new MigrationRefused(`the target's new schema (${describeSchema(created)}) is not the source's (${describeSchema(schema)})`);
    }

    const metaStarted = Date.now();
    report.metadata.tables = await copyMetadata(source.db, target!.db, {
      targetDialect: target!.dialect,
      ...(options.batchRows !== undefined && { batchRows: options.batchRows }),
      ...(options.signal && { signal: options.signal }),
      onProgress: (progress) => options.onProgress?.({ phase: 'metadata', ...progress }),
    });
    report.metadata.durationMs = Date.now() - metaStarted;
    for (const table of report.metadata.tables) {
      report.metadata.rows += table.sourceRows;
      report.metadata.copied += table.copied;
      report.metadata.present += table.present;
    }

    const sourceBlobs = await openBlobs(from);
    closers.push(() => sourceBlobs.close());
    const targetBlobs = await openBlobs(to);
    closers.push(() => targetBlobs.close());
    report.blobs = await copyBlobs(source.db, sourceBlobs, targetBlobs, {
      ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
      ...(options.signal && { signal: options.signal }),
      onProgress: (progress) => options.onProgress?.({ phase: 'blobs', ...progress }),
    });
    if (options.signal?.aborted) report.interrupted = true;
  } catch (err) {
    if (!options.signal?.aborted || err instanceof MigrationRefused) throw err;
    report.interrupted = true;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    report.durationMs = Date.now() - started;
  }
  report.problems = problemsOf(report);
  report.ok = report.problems.length === 0;
  return report;
}

/** A dry run's report: rows per table on both sides, the blobs to copy; nothing written. */
async function countOnly(source: MetaConnection, target: MetaConnection | null, report: MigrationReport): Promise<void> {
  const started = Date.now();
  const sourceCounts = await countRows(source.db);
  const targetCounts = target ? await countRows(target.db) : undefined;
  report.metadata.tables = copiedTables.map((spec) => ({
    table: spec.name,
    sourceRows: sourceCounts.get(spec.name) ?? 0,
    copied: 0,
    present: 0,
    ...(targetCounts && { targetRows: targetCounts.get(spec.name) ?? 0 }),
  }));
  report.metadata.rows = [...sourceCounts.values()].reduce((a, b) => a + b, 0);
  report.metadata.durationMs = Date.now() - started;
  const totals = await source.db
    .selectFrom('blobs')
    .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.sum<number | string | null>('size').as('bytes')])
    .executeTakeFirst();
  report.blobs.total = Number(totals?.n ?? 0);
  report.blobs.totalBytes = Number(totals?.bytes ?? 0);
  if (!target) report.warnings.push(`the target has no schema yet: a run creates it (${report.schema.version})`);
}

function problemsOf(report: MigrationReport): string[] {
  const problems: string[] = [];
  const blobs = report.blobs;
  if (report.interrupted) problems.push('interrupted before the end: run the same command again to continue');
  if (blobs.corrupt.length > 0) {
    problems.push(`${blobs.corrupt.length} source blob(s) do not hash to their digest and were not copied: ${blobs.corrupt.map((b) => b.digest).join(', ')}`);
  }
  if (blobs.missing.length > 0) problems.push(`${blobs.missing.length} blob(s) the source MetaStore lists are missing from the source BlobStore: ${blobs.missing.join(', ')}`);
  if (blobs.failed.length > 0) {
    problems.push(`${blobs.failed.length} blob(s) could not be copied (run again to retry): ${blobs.failed.map((b) => `${b.digest} (${b.error})`).join(', ')}`);
  }
  return problems;
}

async function checkSourceSchema(source: MetaConnection): Promise<string[]> {
  const expected = expectedSchema();
  const applied = await appliedSchema(source.db);
  if (applied.length === 0) throw new MigrationRefused(`the source (${source.location}) holds no astore schema`);
  if (!sameList(applied, expected)) {
    throw new MigrationRefused(
      `the source's schema (${describeSchema(applied)}) is not this astore's (${describeSchema(expected)}; ${schemaDifference('the source', applied, 'this astore', expected)}): ` +
        'start the source server once with this version (it upgrades its schema on start), or migrate with the version that wrote it',
    );
  }
  const listed = new Set<string>(migratedTables.map((t) => t.name));
  const unknown = (await dataTables(source.db)).filter((name) => !listed.has(name));
  if (unknown.length > 0) throw new MigrationRefused(`the source holds table(s) this migration does not know and would leave behind: ${unknown.join(', ')}`);
  return applied;
}

function openBlobs(config: Readonly<Config>): Promise<BlobStore> {
  return openBlobStore(config, dataDirOf(config)).then((store) => resilient(store, config.storage.blob.resilience));
}

const sqliteLocation = (config: Readonly<Config>): string => (config.storage.meta.driver === 'sqlite' ? `sqlite:${sqlitePathOf(config)}` : 'postgresql');

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((name, i) => name === b[i]);

const describeSchema = (names: readonly string[]): string => (names.length === 0 ? 'none' : `${names.length} migrations, last ${names[names.length - 1]}`);

/** Which migrations one side has and the other lacks. */
function schemaDifference(sideA: string, a: readonly string[], sideB: string, b: readonly string[]): string {
  const onlyA = a.filter((name) => !b.includes(name));
  const onlyB = b.filter((name) => !a.includes(name));
  return [onlyA.length > 0 && `only ${sideA} has ${onlyA.join(', ')}`, onlyB.length > 0 && `only ${sideB} has ${onlyB.join(', ')}`].filter(Boolean).join('; ');
}

function emptyBlobReport(): BlobReport {
  return { total: 0, totalBytes: 0, copied: 0, copiedBytes: 0, present: 0, replaced: 0, corrupt: [], missing: [], failed: [], stagingRemoved: 0, durationMs: 0, bytesPerSecond: 0 };
}
