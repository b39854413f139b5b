// Turns the drivers' JSON results into the benchmark's markdown report: one table, a row per phase,
// astore and MinIO next to the raw limits (disk, loopback HTTP), ratios and peak RSS; then astore as a
// policy-bound user next to root; then astore on the S3 driver + PostgreSQL (one replica, two) next to
// MinIO accessed directly, and where the CPU went in each phase.
//
//   node --import tsx bench/s3/report.ts --dir <run dir with disk.json, loopback.json, astore.json,
//     minio.json, astore-user.json, astore-s3pg.json, astore-s3pg-2r.json, machine.md> [--out report.md]
// A missing or unreadable result shows as n/a: a server that did not start still leaves the others' rows.

import type { DriverResult, PhaseResult } from '../common/phase.ts';
import { cpuCell, figure, fmtMs, mib, phaseOf, phaseRows, ratio, Report } from '../common/report.ts';
import { formatSize } from '../common/workloads.ts';

const report = new Report();

/** The 150 MiB acceptance target for astore's RSS while one huge object goes up and down. */
const RSS_TARGET_MIB = 150;

const drivers = {
  astore: report.load('astore'),
  minio: report.load('minio'),
  disk: report.load('disk'),
  loopback: report.load('loopback'),
};
/** Each server again, fresh, with only the 2 GiB object: the peak-RSS acceptance check. */
const fresh2g = { astore: report.load('astore-2g'), minio: report.load('minio-2g') };
/** astore on the S3 blob driver (its own MinIO) + PostgreSQL: one process, then two replicas. */
const s3pg = { one: report.load('astore-s3pg'), two: report.load('astore-s3pg-2r') };

// Phase order: as the load generator ran them; any driver's list will do, S3 drivers first.
const { order, byName } = phaseRows([drivers.loopback, drivers.minio, drivers.astore, drivers.disk, s3pg.one, s3pg.two]);

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

report.push(
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
  report.push(
    `| ${label(sample)} | ${cell(a)} | ${cell(m)} | ${cell(d)} | ${cell(l)} | ${limitText} | ` +
      `${ratio(figure(a), limit, true)} | ${ratio(figure(a), figure(m), false)} | ` +
      `${mib(a?.peakRssKiB)} | ${mib(m?.peakRssKiB)} |`,
  );
}
report.push('');

// The cost of authorization: the same workloads signed by a policy-bound user (every request decided
// by the policy engine, allowed decisions audited) next to root (which bypasses the engine).
const asUser = report.load('astore-user');
if (asUser !== undefined) {
  report.push(
    '| workload | astore as root | astore as a policy-bound user (engine + audit) | user/root |',
    '|---|---|---|---|',
  );
  for (const name of order) {
    const sample = byName.get(name) as PhaseResult;
    const root = phaseOf(drivers.astore, name);
    const user = phaseOf(asUser, name);
    if (user === undefined) continue;
    report.push(`| ${label(sample)} | ${cell(root)} | ${cell(user)} | ${ratio(figure(user), figure(root), false)} |`);
  }
  report.push('');
}

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

report.pushRunRss([
  ['astore', drivers.astore],
  ['MinIO', drivers.minio],
]);
const twoGiB = ['PUT 2GiB', 'GET 2GiB'];
const freshAstore = peakOver(fresh2g.astore, twoGiB);
if (fresh2g.astore !== undefined || fresh2g.minio !== undefined) {
  const size = formatSize(phaseOf(fresh2g.astore ?? fresh2g.minio, 'PUT 2GiB')?.size ?? 2 ** 31);
  report.push(
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
      if (p !== undefined) report.push(`  - ${server}, fresh: ${name.split(' ')[0]} ${size}: ${cell(p)}`);
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
  report.push(
    `- astore peak RSS during the ${size} PUT+GET in the main run: ${peakText(peakOver(drivers.astore, names))}; ` +
      `MinIO: ${peakText(peakOver(drivers.minio, names))}.`,
  );
}
// What astore adds on top of an object store: astore on the S3 driver (a MinIO of its own, same disk)
// + PostgreSQL, next to the `minio` target, MinIO accessed directly by the same load generator; two
// replicas on the same backends next to one; and astore's embedded setup (fs + SQLite) for reference.
if (s3pg.one !== undefined || s3pg.two !== undefined) {
  report.push(
    '',
    '| workload | MinIO direct | astore-s3pg (S3 driver on MinIO + PostgreSQL) | s3pg/MinIO | astore-s3pg, 2 replicas | ' +
      '2r/1r | astore fs+SQLite | s3pg/fs | s3pg RSS | 2r RSS (sum) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const name of order) {
    const one = phaseOf(s3pg.one, name);
    const two = phaseOf(s3pg.two, name);
    if (one === undefined && two === undefined) continue;
    const m = phaseOf(drivers.minio, name);
    const a = phaseOf(drivers.astore, name);
    report.push(
      `| ${label(byName.get(name) as PhaseResult)} | ${cell(m)} | ${cell(one)} | ${ratio(figure(one), figure(m), false)} | ` +
        `${cell(two)} | ${ratio(figure(two), figure(one), false)} | ${cell(a)} | ${ratio(figure(one), figure(a), false)} | ` +
        `${mib(one?.peakRssKiB)} | ${mib(two?.peakRssKiB)} |`,
    );
  }
  report.push('');
  // Where the CPU went: on a small machine the client, MinIO, PostgreSQL and astore share the cores.
  const own: readonly (readonly [string, string])[] = [
    ['server', 'astore'],
    ['client', 'client'],
  ];
  const backed: readonly (readonly [string, string])[] = [
    ['server', 'astore'],
    ['minio', 'MinIO'],
    ['postgres', 'PG'],
    ['client', 'client'],
  ];
  report.push(
    '| workload: CPU, % of one core over the phase | MinIO direct | astore fs+SQLite | astore-s3pg | astore-s3pg, 2 replicas |',
    '|---|---|---|---|---|',
  );
  for (const name of order) {
    const one = phaseOf(s3pg.one, name);
    const two = phaseOf(s3pg.two, name);
    if (one === undefined && two === undefined) continue;
    report.push(
      `| ${label(byName.get(name) as PhaseResult)} | ${cpuCell(phaseOf(drivers.minio, name), [
        ['server', 'MinIO'],
        ['client', 'client'],
      ])} | ${cpuCell(phaseOf(drivers.astore, name), own)} | ${cpuCell(one, backed)} | ${cpuCell(two, backed)} |`,
    );
  }
  report.push('');
  report.pushRunRss([
    ['astore-s3pg', s3pg.one],
    ['astore-s3pg, 2 replicas (sum)', s3pg.two],
  ]);
}

report.pushNotes([
  drivers.astore,
  drivers.minio,
  drivers.disk,
  drivers.loopback,
  fresh2g.astore,
  fresh2g.minio,
  report.load('astore-user'),
  s3pg.one,
  s3pg.two,
]);
report.push('');
report.write();
