// Turns the OCI load generator's JSON results into the benchmark's markdown report: one table, a row per
// phase, astore next to the CNCF Distribution registry and the loopback limit, ratios and peak RSS; then
// both on MinIO (astore on the S3 driver + PostgreSQL, one replica and two; Distribution on its S3
// driver), and where the CPU went in each phase.
//
//   node --import tsx bench/oci/report.ts --dir <run dir with astore.json, distribution.json,
//     loopback.json, distribution-s3.json, astore-s3pg.json, astore-s3pg-2r.json, machine.md>
//     [--out report.md]
// A missing or unreadable result shows as n/a: a server that did not start still leaves the others' rows.

import type { PhaseResult } from '../common/phase.ts';
import { cpuCell, figure, fmtMs, mib, phaseOf, phaseRows, ratio, Report } from '../common/report.ts';
import { formatSize } from '../common/workloads.ts';

const report = new Report();
const astore = report.load('astore');
const distribution = report.load('distribution');
const loopback = report.load('loopback');
const distributionS3 = report.load('distribution-s3');
const s3pg = { one: report.load('astore-s3pg'), two: report.load('astore-s3pg-2r') };

// Phase order: as the load generator ran them, from whichever target has them. The figure is MiB/s for
// the image, manifests/s for small manifests.
const { order, byName } = phaseRows([loopback, distribution, astore, distributionS3, s3pg.one, s3pg.two]);

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
// On an object store: astore on the S3 driver (its own MinIO, same disk) + PostgreSQL next to
// Distribution on its S3 driver (its own MinIO), two astore replicas next to one, and the embedded
// setups for reference.
if (s3pg.one !== undefined || s3pg.two !== undefined || distributionS3 !== undefined) {
  report.push(
    '',
    '| workload | Distribution on S3 (MinIO) | astore-s3pg (S3 driver on MinIO + PostgreSQL) | s3pg/Distribution-S3 | ' +
      'astore-s3pg, 2 replicas | 2r/1r | astore fs+SQLite | s3pg/fs | s3pg RSS | 2r RSS (sum) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const name of order) {
    const ds = phaseOf(distributionS3, name);
    const one = phaseOf(s3pg.one, name);
    const two = phaseOf(s3pg.two, name);
    if (ds === undefined && one === undefined && two === undefined) continue;
    const a = phaseOf(astore, name);
    report.push(
      `| ${label(byName.get(name) as PhaseResult)} | ${cell(ds)} | ${cell(one)} | ${ratio(figure(one), figure(ds), false)} | ` +
        `${cell(two)} | ${ratio(figure(two), figure(one), false)} | ${cell(a)} | ${ratio(figure(one), figure(a), false)} | ` +
        `${mib(one?.peakRssKiB)} | ${mib(two?.peakRssKiB)} |`,
    );
  }
  report.push('');
  const own = (server: string): readonly (readonly [string, string])[] => [
    ['server', server],
    ['minio', 'MinIO'],
    ['postgres', 'PG'],
    ['client', 'client'],
  ];
  report.push(
    '| workload: CPU, % of one core over the phase | Distribution (fs) | Distribution on S3 | astore fs+SQLite | ' +
      'astore-s3pg | astore-s3pg, 2 replicas |',
    '|---|---|---|---|---|---|',
  );
  for (const name of order) {
    report.push(
      `| ${label(byName.get(name) as PhaseResult)} | ${cpuCell(phaseOf(distribution, name), own('Distribution'))} | ` +
        `${cpuCell(phaseOf(distributionS3, name), own('Distribution'))} | ${cpuCell(phaseOf(astore, name), own('astore'))} | ` +
        `${cpuCell(phaseOf(s3pg.one, name), own('astore'))} | ${cpuCell(phaseOf(s3pg.two, name), own('astore'))} |`,
    );
  }
  report.push('');
  report.pushRunRss([
    ['Distribution on S3', distributionS3],
    ['astore-s3pg', s3pg.one],
    ['astore-s3pg, 2 replicas (sum)', s3pg.two],
  ]);
}
report.pushNotes([astore, distribution, loopback, distributionS3, s3pg.one, s3pg.two]);
report.push('');
report.write();
