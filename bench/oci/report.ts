// Turns the OCI load generator's JSON results into the benchmark's markdown report: one table, a row per
// phase, astore next to the CNCF Distribution registry and the loopback limit, ratios and peak RSS.
//
//   node --import tsx bench/oci/report.ts --dir <run dir with astore.json, distribution.json,
//     loopback.json, machine.md> [--out report.md]
// A missing or unreadable result shows as n/a: a server that did not start still leaves the others' rows.

import type { PhaseResult } from '../common/phase.ts';
import { figure, fmtMs, mib, phaseOf, phaseRows, ratio, Report } from '../common/report.ts';
import { formatSize } from '../common/workloads.ts';

const report = new Report();
const astore = report.load('astore');
const distribution = report.load('distribution');
const loopback = report.load('loopback');

// Phase order: as the load generator ran them, from whichever target has them. The figure is MiB/s for
// the image, manifests/s for small manifests.
const { order, byName } = phaseRows([loopback, distribution, astore]);

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

function fmtSeconds(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return '-';
  return (ms / 1000).toFixed(2);
}

report.push(
  '| workload | astore | Distribution | loopback HTTP | astore/Distribution | astore/loopback | astore RSS | ' +
    'Distribution RSS |',
  '|---|---|---|---|---|---|---|---|',
);
for (const name of order) {
  const a = phaseOf(astore, name);
  const d = phaseOf(distribution, name);
  const l = phaseOf(loopback, name);
  report.push(
    `| ${label(byName.get(name) as PhaseResult)} | ${cell(a)} | ${cell(d)} | ${cell(l)} | ` +
      `${ratio(figure(a), figure(d), false)} | ${ratio(figure(a), figure(l), true)} | ` +
      `${mib(a?.peakRssKiB)} | ${mib(d?.peakRssKiB)} |`,
  );
}
report.push('');
report.pushRunRss([
  ['astore', astore],
  ['Distribution', distribution],
]);
report.pushNotes([astore, distribution, loopback]);
report.push('');
report.write();
