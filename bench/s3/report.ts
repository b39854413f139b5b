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
/** Each server again, fresh, with only the 2 GiB object: the peak-RSS acceptance check. */
const fresh2g = { astore: load('astore-2g'), minio: load('minio-2g') };

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
  else text = `${v.toFixed(0)} ops/s · p50 ${fmtMs(p.p50Ms)} · p99 ${fmtMs(p.p99Ms)} ms · n=${p.completed}`;
  const flags: string[] = [];
  if (p.errors > 0) flags.push(`${p.errors} err`);
  // Small-object phases end at their count or their time limit, both normal; a large-object phase that
  // hits its limit moved less than planned.
  if (p.timedOut && p.kind === 'throughput') flags.push(`time limit, ${p.completed}/${p.planned} done`);
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

/** Peak over some phases of a run, and the RSS when the first of them began. */
function peakOver(d: DriverResult | undefined, names: string[]): { peak: number; start?: number } | undefined {
  const phases = names.map((n) => phaseOf(d, n)).filter((p): p is PhaseResult => p?.peakRssKiB !== undefined);
  if (phases.length === 0) return undefined;
  const start = phases[0]?.startRssKiB;
  return { peak: Math.max(...phases.map((p) => p.peakRssKiB as number)), ...(start === undefined ? {} : { start }) };
}

function peakText(p: { peak: number; start?: number } | undefined): string {
  if (p === undefined) return 'n/a';
  return p.start === undefined ? mib(p.peak) : `${mib(p.peak)} (${mib(p.start)} when it began)`;
}

function verdict(kib: number | undefined): string {
  if (kib === undefined) return 'n/a';
  return kib / 1024 < RSS_TARGET_MIB ? 'PASS' : 'FAIL';
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
const twoGiB = ['PUT 2GiB', 'GET 2GiB'];
const freshAstore = peakOver(fresh2g.astore, twoGiB);
if (fresh2g.astore !== undefined || fresh2g.minio !== undefined) {
  const size = formatSize(phaseOf(fresh2g.astore ?? fresh2g.minio, 'PUT 2GiB')?.size ?? 2 ** 31);
  lines.push(
    `- **astore peak RSS during a ${size} PUT+GET on a fresh process: ${mib(freshAstore?.peak)}** ` +
      `(target < ${RSS_TARGET_MIB} MiB: ${verdict(freshAstore?.peak)}); idle before it ` +
      `${mib(fresh2g.astore?.startRssKiB)}. MinIO, the same: ${mib(peakOver(fresh2g.minio, twoGiB)?.peak)} ` +
      `(idle ${mib(fresh2g.minio?.startRssKiB)}).`,
  );
  for (const [server, d] of [
    ['astore', fresh2g.astore],
    ['MinIO', fresh2g.minio],
  ] as const) {
    for (const name of twoGiB) {
      const p = phaseOf(d, name);
      if (p !== undefined) lines.push(`  - ${server}, fresh: ${name.split(' ')[0]} ${size}: ${cell(p)}`);
    }
  }
}
for (const names of [
  ['PUT 1GiB', 'GET 1GiB'],
  ['PUT 2GiB', 'GET 2GiB'],
]) {
  const phase = byName.get(names[0] as string);
  if (phase === undefined) continue;
  const size = formatSize(phase.size); // 1 GiB and 2 GiB, smaller with BENCH_QUICK=1
  lines.push(
    `- astore peak RSS during the ${size} PUT+GET in the main run: ${peakText(peakOver(drivers.astore, names))}; ` +
      `MinIO: ${peakText(peakOver(drivers.minio, names))}.`,
  );
}
for (const d of [drivers.astore, drivers.minio, drivers.disk, drivers.loopback, fresh2g.astore, fresh2g.minio]) {
  for (const note of d?.notes ?? []) lines.push(`- ${d?.target}: ${note}`);
  for (const p of d?.phases ?? []) {
    if (p.firstError !== undefined) lines.push(`- ${d?.target} ${p.name}: first error: ${p.firstError}`);
  }
}
lines.push('');

const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
if (args.out !== undefined) writeFileSync(args.out, text);
