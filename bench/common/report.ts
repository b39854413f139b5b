// The pieces both benchmark reports (bench/s3/report.ts, bench/oci/report.ts) are made of: the run dir's
// results, phases joined by name across drivers, the figures and ratios in a cell, the machine header and
// the lines under the table. A missing or unreadable result is `undefined` and shows as n/a.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DriverResult, PhaseResult } from './phase.ts';

/**
 * The report's rows: every phase name in the order the load generator ran them, taken from the first of
 * `drivers` that has it, with that driver's result as the row's sample.
 */
export function phaseRows(drivers: readonly (DriverResult | undefined)[]): {
  order: string[];
  byName: Map<string, PhaseResult>;
} {
  const order: string[] = [];
  const byName = new Map<string, PhaseResult>();
  for (const d of drivers) {
    for (const p of d?.phases ?? []) {
      if (!byName.has(p.name)) {
        order.push(p.name);
        byName.set(p.name, p);
      }
    }
  }
  return { order, byName };
}

export function phaseOf(d: DriverResult | undefined, name: string): PhaseResult | undefined {
  return d?.phases.find((p) => p.name === name);
}

/**
 * The figure a row compares: MiB/s for throughput phases, ops/s (S3 objects, OCI manifests) for the
 * others. NaN when absent or broken.
 */
export function figure(p: PhaseResult | undefined): number {
  if (p === undefined || p.completed === 0) return Number.NaN;
  const v = p.kind === 'throughput' ? p.mibPerSec : p.opsPerSec;
  return typeof v === 'number' ? v : Number.NaN;
}

export function fmtMs(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

/** a/b as `0.57×`, or as `28 %` with `percent`; n/a when either is missing. */
export function ratio(a: number, b: number, percent: boolean): string {
  if (Number.isNaN(a) || Number.isNaN(b) || b === 0) return 'n/a';
  return percent ? `${((100 * a) / b).toFixed(0)} %` : `${(a / b).toFixed(2)}×`;
}

export function mib(kib: number | undefined): string {
  return kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(0)} MiB`;
}

/**
 * One report being written: `--dir <run dir> [--out report.md]` from argv (a usage error without --dir),
 * the run's results read from the dir, markdown lines collected, then printed and written to --out.
 */
export class Report {
  readonly dir: string;
  readonly out: string | undefined;
  /** The report so far: the run's header (machine.md, written by run.sh) and a blank line, when present. */
  readonly lines: string[] = [];

  constructor() {
    const { values: args } = parseArgs({ options: { dir: { type: 'string' }, out: { type: 'string' } } });
    if (args.dir === undefined) {
      process.stderr.write('report: --dir is required\n');
      process.exit(2);
    }
    this.dir = args.dir;
    this.out = args.out;
    const machine = join(this.dir, 'machine.md');
    if (existsSync(machine)) this.lines.push(readFileSync(machine, 'utf8').trimEnd(), '');
  }

  /** `<dir>/<name>.json`, the result of one load generator run; undefined when missing or unreadable. */
  load(name: string): DriverResult | undefined {
    const path = join(this.dir, `${name}.json`);
    if (!existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as DriverResult;
    } catch {
      return undefined;
    }
  }

  push(...lines: string[]): void {
    this.lines.push(...lines);
  }

  /** A line per server on its idle and peak RSS over the whole run. */
  pushRunRss(servers: readonly (readonly [string, DriverResult | undefined])[]): void {
    for (const [server, d] of servers) {
      this.lines.push(
        d === undefined
          ? `- ${server}: no result (did not run or did not start; see the run log).`
          : `- ${server} RSS idle at start ${mib(d.startRssKiB)}; peak over the run ${mib(d.peakRssKiB)} ` +
              `(kernel high-water mark VmHWM ${mib(d.hwmKiB)}).`,
      );
    }
  }

  /** The drivers' notes and each failed phase's first error. */
  pushNotes(drivers: readonly (DriverResult | undefined)[]): void {
    for (const d of drivers) {
      for (const note of d?.notes ?? []) this.lines.push(`- ${d?.target}: ${note}`);
      for (const p of d?.phases ?? []) {
        if (p.firstError !== undefined) this.lines.push(`- ${d?.target} ${p.name}: first error: ${p.firstError}`);
      }
    }
  }

  /** Prints the report and writes it to --out when given. */
  write(): void {
    const text = `${this.lines.join('\n')}\n`;
    process.stdout.write(text);
    if (this.out !== undefined) writeFileSync(this.out, text);
  }
}

/**
 * A phase's CPU time as shares of one core over the phase's wall time, `labels` naming (and ordering)
 * the processes recorded: `astore 95 · MinIO 61 · PG 22 · client 30 = 208 %`. n/a without figures.
 */
export function cpuCell(p: PhaseResult | undefined, labels: readonly (readonly [string, string])[]): string {
  const cpu = p?.cpu;
  if (cpu === undefined || cpu.wallMs <= 0) return 'n/a';
  const wall = cpu.wallMs / 1000;
  let total = 0;
  const parts: string[] = [];
  for (const [key, label] of labels) {
    const seconds = cpu.seconds[key];
    if (seconds === undefined) continue;
    total += seconds;
    parts.push(`${label} ${((100 * seconds) / wall).toFixed(0)}`);
  }
  return `${parts.join(' · ')} = ${((100 * total) / wall).toFixed(0)} %`;
}
