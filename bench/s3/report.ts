// Turns the drivers' JSON results into the benchmark's markdown report: one table, a row per phase,
// astore and MinIO next to the raw limits (disk, loopback HTTP), ratios and peak RSS.
//
//   node --import tsx bench/s3/report.ts --dir <run dir with disk.json, loopback.json, astore.json,
//     minio.json, machine.md> [--out report.md]
// A missing or unreadable result shows as n/a: a server that did not start still leaves the others' rows.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DriverResult, PhaseResult } from './phase.ts';
import { formatSize } from './workloads.ts';

const { values: args } = parseArgs({ options: { dir: { type: 'string' }, out: { type: 'string' } } });
if (args.dir === undefined) {
  process.stderr.write('report: --dir is required\n');
  process.exit(2);
}
const dir = args.dir;

/** The 150 MiB acceptance target for astore's RSS while one huge object goes up and down. */
const RSS_TARGET_MIB = 150;

function load(name: string): DriverResult | undefined {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DriverResult;
  } catch {
    return undefined;
  }
}

const drivers = {
  astore: load('astore'),
  minio: load('minio'),
  disk: load('disk'),
  loopback: load('loopback'),
};

// Phase order: as the load generator ran them; any driver's list will do, S3 drivers first.
const order: string[] = [];
const byName = new Map<string, PhaseResult>();
for (const d of [drivers.loopback, drivers.minio, drivers.astore, drivers.disk]) {
  for (const p of d?.phases ?? []) {
    if (!byName.has(p.name)) {
      order.push(p.name);
      byName.set(p.name, p);
    }
  }
}

function phaseOf(d: DriverResult | undefined, name: string): PhaseResult | undefined {
  return d?.phases.find((p) => p.name === name);
}

/** The figure a row compares: MiB/s for large objects, ops/s for small ones. NaN when absent or broken. */
function figure(p: PhaseResult | undefined): number {
  if (p === undefined || p.completed === 0) return Number.NaN;
  const v = p.kind === 'throughput' ? p.mibPerSec : p.opsPerSec;
  return typeof v === 'number' ? v : Number.NaN;
}

function label(p: PhaseResult): string {
  if (p.kind === 'ops') return `${p.op} ${formatSize(p.size)} c=${p.concurrency}`;
  const count = byName.get(p.name)?.planned ?? 1;
  return `${p.op} ${formatSize(p.size)}${count > 1 ? ` ×${count}` : ''} (c=${p.concurrency})`;
}

function cell(p: PhaseResult | undefined): string {
  if (p === undefined) return 'n/a';
  const v = figure(p);
  let text: string;
  if (Number.isNaN(v)) text = 'failed';
  else if (p.kind === 'throughput') text = `${v.toFixed(1)} MiB/s`;
  else text = `${v.toFixed(0)} ops/s · p50 ${fmtMs(p.p50Ms)} · p99 ${fmtMs(p.p99Ms)} ms`;
  const flags: string[] = [];
  if (p.errors > 0) flags.push(`${p.errors} err`);
  if (p.timedOut) flags.push(`time limit, ${p.completed} done`);
  return flags.length > 0 ? `${text} (${flags.join('; ')})` : text;
}

function fmtMs(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

function ratio(a: number, b: number, percent: boolean): string {
  if (Number.isNaN(a) || Number.isNaN(b) || b === 0) return 'n/a';
  return percent ? `${((100 * a) / b).toFixed(0)} %` : `${(a / b).toFixed(2)}×`;
}

function mib(kib: number | undefined): string {
  return kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(0)} MiB`;
}

const lines: string[] = [];
if (existsSync(join(dir, 'machine.md'))) lines.push(readFileSync(join(dir, 'machine.md'), 'utf8').trimEnd(), '');

lines.push(
  '| workload | astore | MinIO | disk | loopback HTTP | limit | astore/limit | astore/MinIO | astore RSS | MinIO RSS |',
  '|---|---|---|---|---|---|---|---|---|---|',
);
for (const name of order) {
  const sample = byName.get(name) as PhaseResult;
  const a = phaseOf(drivers.astore, name);
  const m = phaseOf(drivers.minio, name);
  const d = phaseOf(drivers.disk, name);
  const l = phaseOf(drivers.loopback, name);
  const limits = [figure(d), figure(l)].filter((v) => !Number.isNaN(v));
  const limit = limits.length > 0 ? Math.min(...limits) : Number.NaN;
  const unit = sample.kind === 'throughput' ? 'MiB/s' : 'ops/s';
  const limitText = Number.isNaN(limit) ? 'n/a' : `${limit.toFixed(sample.kind === 'throughput' ? 1 : 0)} ${unit}`;
  lines.push(
    `| ${label(sample)} | ${cell(a)} | ${cell(m)} | ${cell(d)} | ${cell(l)} | ${limitText} | ` +
      `${ratio(figure(a), limit, true)} | ${ratio(figure(a), figure(m), false)} | ` +
      `${mib(a?.peakRssKiB)} | ${mib(m?.peakRssKiB)} |`,
  );
}
lines.push('');

function peakOver(d: DriverResult | undefined, names: string[]): number | undefined {
  const peaks = names.map((n) => phaseOf(d, n)?.peakRssKiB).filter((v): v is number => v !== undefined);
  return peaks.length > 0 ? Math.max(...peaks) : undefined;
}

for (const [server, d] of [
  ['astore', drivers.astore],
  ['MinIO', drivers.minio],
] as const) {
  if (d === undefined) {
    lines.push(`- ${server}: no result (did not run or did not start; see the run log).`);
    continue;
  }
  lines.push(
    `- ${server} RSS idle at start ${mib(d.startRssKiB)}; peak over the run ${mib(d.peakRssKiB)} ` +
      `(kernel high-water mark VmHWM ${mib(d.hwmKiB)}).`,
  );
}
const bigRows: Array<[string, string[]]> = [
  ['1 GiB', ['PUT 1GiB', 'GET 1GiB']],
  ['2 GiB', ['PUT 2GiB', 'GET 2GiB']],
];
for (const [size, names] of bigRows) {
  if (!names.some((n) => byName.has(n))) continue;
  const a = peakOver(drivers.astore, names);
  const m = peakOver(drivers.minio, names);
  const verdict = a === undefined ? 'n/a' : a / 1024 < RSS_TARGET_MIB ? 'PASS' : 'FAIL';
  lines.push(
    `- **astore peak RSS during the ${size} PUT+GET: ${mib(a)}** (target < ${RSS_TARGET_MIB} MiB: ${verdict}); MinIO: ${mib(m)}.`,
  );
}
for (const d of [drivers.astore, drivers.minio, drivers.disk, drivers.loopback]) {
  for (const note of d?.notes ?? []) lines.push(`- ${d?.target}: ${note}`);
  for (const p of d?.phases ?? []) {
    if (p.firstError !== undefined) lines.push(`- ${d?.target} ${p.name}: first error: ${p.firstError}`);
  }
}
lines.push('');

const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
if (args.out !== undefined) writeFileSync(args.out, text);
