// Turns the OCI load generator's JSON results into the benchmark's markdown report: one table, a row per
// phase, astore next to the CNCF Distribution registry and the loopback limit, ratios and peak RSS.
//
//   node --import tsx bench/oci/report.ts --dir <run dir with astore.json, distribution.json,
//     loopback.json, machine.md> [--out report.md]
// A missing or unreadable result shows as n/a: a server that did not start still leaves the others' rows.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DriverResult, PhaseResult } from '../s3/phase.ts';
import { formatSize } from '../s3/workloads.ts';

const { values: args } = parseArgs({ options: { dir: { type: 'string' }, out: { type: 'string' } } });
if (args.dir === undefined) {
  process.stderr.write('report: --dir is required\n');
  process.exit(2);
}
const dir = args.dir;

function load(name: string): DriverResult | undefined {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DriverResult;
  } catch {
    return undefined;
  }
}

const astore = load('astore');
const distribution = load('distribution');
const loopback = load('loopback');

// Phase order: as the load generator ran them, from whichever target has them.
const order: string[] = [];
const byName = new Map<string, PhaseResult>();
for (const d of [loopback, distribution, astore]) {
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

/** MiB/s for the image, manifests/s for small manifests; NaN when absent or broken. */
function figure(p: PhaseResult | undefined): number {
  if (p === undefined || p.completed === 0) return Number.NaN;
  const v = p.kind === 'throughput' ? p.mibPerSec : p.opsPerSec;
  return typeof v === 'number' ? v : Number.NaN;
}

function label(p: PhaseResult): string {
  const [verb] = p.name.split(' ');
  if (p.kind === 'throughput') {
    return `${verb} image, ${p.planned} layers, ${formatSize(p.size)} (c=${p.concurrency})`;
  }
  const planned = Math.max(p.planned, phaseOf(loopback, p.name)?.planned ?? 0);
  return `${verb} ${planned} manifests (c=${p.concurrency})`;
}

function cell(p: PhaseResult | undefined): string {
  if (p === undefined) return 'n/a';
  const v = figure(p);
  let text: string;
  if (Number.isNaN(v)) text = 'failed';
  else if (p.kind === 'throughput') {
    text = `${v.toFixed(1)} MiB/s · layer p50 ${fmtSeconds(p.p50Ms)} · p99 ${fmtSeconds(p.p99Ms)} s`;
  } else {
    text = `${v.toFixed(0)} ops/s · p50 ${fmtMs(p.p50Ms)} · p99 ${fmtMs(p.p99Ms)} ms · n=${p.completed}`;
  }
  const flags: string[] = [];
  if (p.errors > 0) flags.push(`${p.errors} err`);
  if (p.completed < p.planned) flags.push(`${p.completed}/${p.planned} done${p.timedOut ? ', time limit' : ''}`);
  return flags.length > 0 ? `${text} (${flags.join('; ')})` : text;
}

function fmtMs(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

function fmtSeconds(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  return (ms / 1000).toFixed(2);
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
  '| workload | astore | Distribution | loopback HTTP | astore/Distribution | astore/loopback | astore RSS | ' +
    'Distribution RSS |',
  '|---|---|---|---|---|---|---|---|',
);
for (const name of order) {
  const a = phaseOf(astore, name);
  const d = phaseOf(distribution, name);
  const l = phaseOf(loopback, name);
  lines.push(
    `| ${label(byName.get(name) as PhaseResult)} | ${cell(a)} | ${cell(d)} | ${cell(l)} | ` +
      `${ratio(figure(a), figure(d), false)} | ${ratio(figure(a), figure(l), true)} | ` +
      `${mib(a?.peakRssKiB)} | ${mib(d?.peakRssKiB)} |`,
  );
}
lines.push('');

for (const [server, d] of [
  ['astore', astore],
  ['Distribution', distribution],
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
for (const d of [astore, distribution, loopback]) {
  for (const note of d?.notes ?? []) lines.push(`- ${d?.target}: ${note}`);
  for (const p of d?.phases ?? []) {
    if (p.firstError !== undefined) lines.push(`- ${d?.target} ${p.name}: first error: ${p.firstError}`);
  }
}
lines.push('');

const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
if (args.out !== undefined) writeFileSync(args.out, text);
