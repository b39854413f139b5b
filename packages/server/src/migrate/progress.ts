import type { BlobProgress } from './blobs.ts';
import type { MetadataProgress } from './metadata.ts';

/** What runMigration reports while it runs, phase by phase. */
export type MigrationProgress = ({ phase: 'metadata' } & MetadataProgress) | ({ phase: 'blobs' } & BlobProgress);

/** Where a progress display writes: a TTY gets one line redrawn in place, anything else a line now and then. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * The progress of a migration as one line on stderr: redrawn in place (at most 5 times a second) on a
 * terminal; on anything else (a log file, CI) written out as a new line every `intervalMs` (default
 * 10 s), so a long copy leaves a readable trail and a short one a few lines.
 */
export class ProgressDisplay {
  private lastDraw = -Infinity;
  private drawn = false;
  private readonly rate: RateMeter;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly stream: ProgressStream,
    options: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? (stream.isTTY ? 200 : 10_000);
    this.rate = new RateMeter(5_000, this.now);
  }

  /** Takes every progress event; draws when the interval has passed. */
  update(progress: MigrationProgress): void {
    if (progress.phase === 'blobs') this.rate.sample(progress.transferredBytes);
    const now = this.now();
    if (now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    this.draw(render(progress, this.rate.perSecond()));
  }

  /** Ends the current line with `summary` (a phase done), so the next phase starts on a fresh line. */
  finish(summary: string): void {
    this.draw(summary);
    if (this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
    this.lastDraw = -Infinity;
  }

  private draw(text: string): void {
    if (this.stream.isTTY) {
      const width = this.stream.columns || 120; // 0 when the terminal did not say
      this.stream.write(`\r${text.length >= width ? `${text.slice(0, width - 2)}…` : text}\x1b[K`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Leaves the terminal on a fresh line (before an error message). */
  close(): void {
    if (this.drawn && this.stream.isTTY) this.stream.write('\n');
    this.drawn = false;
  }
}

export function render(progress: MigrationProgress, bytesPerSecond: number): string {
  if (progress.phase === 'metadata') {
    return `metadata  table ${progress.tableNumber}/${progress.tables} ${progress.table}  rows ${count(progress.rows)}/${count(progress.totalRows)} (${percent(progress.rows, progress.totalRows)})`;
  }
  const remaining = progress.totalBytes - progress.doneBytes;
  const eta = bytesPerSecond > 0 ? formatDuration((remaining / bytesPerSecond) * 1000) : remaining > 0 ? '?' : formatDuration(0);
  // The figures that matter most first: a narrow terminal cuts the end of the line.
  return (
    `blobs  ${count(progress.done)}/${count(progress.total)}  ` +
    `${formatBytes(progress.doneBytes)}/${formatBytes(progress.totalBytes)} (${percent(progress.doneBytes, progress.totalBytes)})  ` +
    `${formatBytes(bytesPerSecond)}/s  ETA ${eta}  ` +
    `(copied ${count(progress.copied)}, present ${count(progress.present)}${progress.problems > 0 ? `, problems ${count(progress.problems)}` : ''})`
  );
}

/**
 * A transfer rate over a sliding window: samples of a growing byte counter, the rate being the growth
 * between the oldest sample still in the window and the newest.
 */
export class RateMeter {
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  sample(bytes: number): void {
    const at = this.now();
    const last = this.samples[this.samples.length - 1];
    // One sample per 100 ms is plenty; the counter is reported for every chunk.
    if (last && at - last.at < 100) last.bytes = bytes;
    else this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= this.windowMs) this.samples.shift();
  }

  perSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at === first.at) return 0;
    return Math.max(0, ((last.bytes - first.bytes) / (last.at - first.at)) * 1000);
  }
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 0 B, 1023 B, 1.0 KiB, 12.5 MiB, 3.00 GiB: three significant digits from KiB up. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${units[unit]}`;
}

/** 0:07, 12:34, 1:02:03 (hours:minutes:seconds, rounded up to the second). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

const count = (n: number): string => n.toLocaleString('en-US');
const percent = (part: number, whole: number): string => `${whole > 0 ? Math.floor((part / whole) * 100) : 100}%`;
