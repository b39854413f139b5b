import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { MigrationRefused, type MigrationReport, runMigration } from './index.ts';
import { ProgressDisplay, formatBytes, formatDuration } from './progress.ts';

export const migrateUsage = `Usage: astore migrate --from <config> --to <config> [options]

Copies everything one configuration's stores hold into another's: the metadata (every MetaStore
table), the blobs (each verified against its digest), and the files outside the stores (server key,
root credentials, server-held signing keys). Typically from the embedded setup (local disk + SQLite)
to S3, Azure or GCS + PostgreSQL. The source is only read; stop it, or at least its writes, first.
Interrupted or failed, the same command continues where the target is, copying nothing twice.

Options:
  --from <file>         the source's configuration (YAML or JSON), as the server ran with it
  --to <file>           the target's configuration
  --concurrency <n>     blobs copied at once (default 4, at most 64)
  --dry-run             count what there is and what would be carried; write nothing
  --json                print the report as JSON on stdout (progress stays on stderr)
  -h, --help            show this help

ASTORE_* environment variables are not applied here: they would configure both sides alike.

Exit codes: 0 done (the target can serve), 1 failed, refused or interrupted (the report says why;
run again to continue), 2 usage or configuration error.

Examples:
  astore migrate --from astore.yaml --to astore-s3-postgres.yaml --dry-run
  astore migrate --from astore.yaml --to astore-s3-postgres.yaml --concurrency 8
See docs/migrate.md.`;

interface Output {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
}

/** `astore migrate ...`; returns the exit code. */
export async function migrateCommand(argv: string[], output: Output = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let values: { from?: string; to?: string; concurrency?: string; 'dry-run'?: boolean; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        concurrency: { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return usageError(output, (err as Error).message);
  }
  if (values.help) {
    output.stdout.write(`${migrateUsage}\n`);
    return 0;
  }
  if (!values.from || !values.to) return usageError(output, 'both --from and --to are required');
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) return usageError(output, `--concurrency must be an integer from 1 to 64, not ${values.concurrency}`);

  let from: Readonly<Config>;
  let to: Readonly<Config>;
  try {
    from = loadConfig({ file: values.from, env: {} });
    to = loadConfig({ file: values.to, env: {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    output.stderr.write(`astore migrate: ${err.message}\n`);
    return 2;
  }

  const controller = new AbortController();
  const stop = (signal: string) => {
    if (controller.signal.aborted) process.exit(130);
    output.stderr.write(`\nastore migrate: ${signal}: stopping (again to exit at once); run the same command to continue\n`);
    controller.abort();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const display = new ProgressDisplay(output.stderr);
  let phase: 'metadata' | 'blobs' | undefined;
  try {
    const report = await runMigration(from, to, {
      concurrency,
      dryRun: values['dry-run'] ?? false,
      signal: controller.signal,
      onProgress: (progress) => {
        if (phase === 'metadata' && progress.phase === 'blobs') display.finish('metadata copied');
        phase = progress.phase;
        display.update(progress);
      },
    });
    display.close();
    output.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : summary(report));
    return report.ok ? 0 : 1;
  } catch (err) {
    display.close();
    const refused = err instanceof MigrationRefused;
    const message = refused ? err.message : ((err as Error).stack ?? String(err));
    if (values.json) output.stdout.write(`${JSON.stringify({ ok: false, ...(refused ? { refused: message } : { error: (err as Error).message }) }, null, 2)}\n`);
    output.stderr.write(`astore migrate: ${refused ? 'refused: ' : ''}${message}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}

function usageError(output: Output, message: string): number {
  output.stderr.write(`astore migrate: ${message}\n\n${migrateUsage}\n`);
  return 2;
}

const count = (n: number): string => n.toLocaleString('en-US');

/** The report for a person: what was where, what moved, what is wrong. */
export function summary(report: MigrationReport): string {
  const lines: string[] = [];
  const verdict = report.dryRun ? 'dry run, nothing written' : report.ok ? 'done' : report.interrupted ? 'interrupted' : 'FAILED';
  lines.push(`astore migrate: ${verdict} in ${formatDuration(report.durationMs)}`);
  lines.push(`  source   ${report.source.meta} + ${report.source.blob}`);
  lines.push(`  target   ${report.target.meta} + ${report.target.blob}`);
  lines.push(`  schema   ${report.schema.version}${report.schema.created ? ' (created in the target)' : ''}`);
  const files = report.files.map((f) => `${f.what} ${f.action}`);
  lines.push(`  files    ${files.length > 0 ? files.join(', ') : 'none'}`);
  const meta = report.metadata;
  if (report.dryRun) {
    const targetRows = meta.tables.reduce((n, t) => n + (t.targetRows ?? 0), 0);
    lines.push(`  rows     ${count(meta.rows)} in ${meta.tables.length} tables (the target holds ${count(targetRows)})`);
    lines.push(`  blobs    ${count(report.blobs.total)} (${formatBytes(report.blobs.totalBytes)})`);
  } else {
    lines.push(`  rows     ${count(meta.rows)} in ${meta.tables.length} tables: ${count(meta.copied)} copied, ${count(meta.present)} already there (${formatDuration(meta.durationMs)})`);
    const b = report.blobs;
    lines.push(
      `  blobs    ${count(b.total)} (${formatBytes(b.totalBytes)}): ${count(b.copied)} copied (${formatBytes(b.copiedBytes)}, ${formatBytes(b.bytesPerSecond)}/s), ` +
        `${count(b.present)} already there (${formatDuration(b.durationMs)})`,
    );
  }
  for (const warning of report.warnings) lines.push(`  warning  ${warning}`);
  for (const problem of report.problems) lines.push(`  problem  ${problem}`);
  return `${lines.join('\n')}\n`;
}
