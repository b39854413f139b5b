// The supply-chain MetaStore's benchmark: SBOM ingest rate and the latency of the component and
// lacking-attestation queries over 100k+ component rows, in a file-backed SQLite MetaStore (WAL,
// synchronous=full: every commit is on disk before it is acknowledged), with the query plans that show
// which index each query uses. Prints a markdown report on stdout; the data lives in a temp dir that
// is removed at the end.
//
//   npm run bench:supplychain            (node --import tsx bench/supplychain/run.ts)

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { type CompiledQuery, Kysely, SqliteDialect } from 'kysely';
import type { Database } from '../../packages/server/src/storage/meta/db.ts';
import { openSqliteMetaStore } from '../../packages/server/src/storage/meta/sqlite.ts';
import { findComponents, findLacking } from '../../packages/server/src/storage/meta/supplychain-queries.ts';
import type { ComponentQuery, LackingQuery, MetaStore } from '../../packages/server/src/storage/meta/types.ts';
import { BUCKETS, LOG4J, PROVENANCE, type Artifact, type Package, artifacts, catalogue, random, sha256 } from './dataset.ts';

const ARTIFACTS = 1_500;
const LOG4J_EVERY = 97;
const REPETITIONS = 300;
const WARMUP = 20;

const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(1));
const count = (n: number) => Math.round(n).toLocaleString('en-US');
const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function placeArtifacts(store: MetaStore, all: readonly Artifact[]): Promise<void> {
  const now = new Date();
  for (const bucket of BUCKETS) await store.buckets.create({ name: bucket, region: 'us-east-1', createdAt: now });
  for (const artifact of all) {
    if ('bucket' in artifact.place) {
      await store.objects.put({
        bucket: artifact.place.bucket,
        key: artifact.place.key,
        size: 1024,
        etag: `"${sha256(artifact.subject).slice(0, 32)}"`,
        lastModified: now,
        headers: {},
        userMetadata: {},
        digest: artifact.subject,
        segments: [{ digest: artifact.subject, size: 1024 }],
      });
    } else {
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, artifact: artifact.index }));
      await store.registry.putManifest({
        repository: artifact.place.repository,
        digest: artifact.subject,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: content.length,
        content,
        createdAt: now,
        blobs: [],
        manifests: [],
      });
    }
  }
}

/** Puts every SBOM, one record (one transaction, one WAL sync) at a time; returns the elapsed ms. */
async function ingestSboms(store: MetaStore, all: readonly Artifact[]): Promise<number> {
  const started = performance.now();
  for (const artifact of all) {
    await store.supplychain.putRecord(
      {
        id: `sbom-${artifact.index}`,
        subject: artifact.subject,
        kind: 'sbom',
        format: 'cyclonedx',
        mediaType: 'application/vnd.cyclonedx+json',
        contentDigest: `sha256:${sha256(`sbom ${artifact.index}`)}`,
        size: 2_000 + artifact.components.length * 400,
        ...('bucket' in artifact.place ? { bucket: artifact.place.bucket, key: artifact.place.key } : { repository: artifact.place.repository }),
        createdBy: 'role:ci',
        createdAt: new Date(),
      },
      { components: artifact.components },
    );
  }
  return performance.now() - started;
}

async function ingestProvenance(store: MetaStore, all: readonly Artifact[]): Promise<{ elapsedMs: number; records: number }> {
  const started = performance.now();
  let records = 0;
  for (const artifact of all) {
    if (artifact.builderId === undefined) continue;
    await store.supplychain.putRecord(
      {
        id: `provenance-${artifact.index}`,
        subject: artifact.subject,
        kind: 'attestation',
        format: 'dsse',
        mediaType: 'application/vnd.dsse.envelope.v1+json',
        contentDigest: `sha256:${sha256(`provenance ${artifact.index}`)}`,
        size: 4_000,
        predicateType: PROVENANCE,
        ...('bucket' in artifact.place ? { bucket: artifact.place.bucket, key: artifact.place.key } : { repository: artifact.place.repository }),
        createdBy: 'role:ci',
        createdAt: new Date(),
      },
      { facts: { predicateType: PROVENANCE, builderId: artifact.builderId, buildType: 'https://actions.github.io/buildtypes/workflow/v1', materials: [{ uri: `git+https://example.com/app-${artifact.index}`, digest: { sha1: sha256(String(artifact.index)).slice(0, 40) } }] } },
    );
    records++;
  }
  return { elapsedMs: performance.now() - started, records };
}

interface Measured {
  label: string;
  p50: number;
  p95: number;
  p99: number;
  meanRows: number;
}

/** Latency of `run` over REPETITIONS calls, each with the next of `inputs`, after WARMUP calls. */
async function measure<Q>(label: string, inputs: readonly Q[], run: (input: Q) => Promise<{ items: unknown[] }>): Promise<Measured> {
  for (let i = 0; i < WARMUP; i++) await run(inputs[i % inputs.length]!);
  const samples: number[] = [];
  let rows = 0;
  for (let i = 0; i < REPETITIONS; i++) {
    const input = inputs[i % inputs.length]!;
    const t0 = performance.now();
    const page = await run(input);
    samples.push(performance.now() - t0);
    rows += page.items.length;
  }
  samples.sort((a, b) => a - b);
  return { label, p50: percentile(samples, 50), p95: percentile(samples, 95), p99: percentile(samples, 99), meanRows: rows / REPETITIONS };
}

/** Random range bounds over a package's own versions: from its lowest to a random later one. */
function rangeQueries(packages: readonly Package[], field: 'purl' | 'name', n: number, seed: number): ComponentQuery[] {
  const rnd = random(seed);
  return Array.from({ length: n }, () => {
    const pkg = packages[Math.floor(packages.length * rnd() ** 2)]!;
    const versions = pkg.versions;
    const max = versions[1 + Math.floor(rnd() * (versions.length - 1))]!;
    return { [field]: field === 'purl' ? pkg.purl : pkg.name, versionMin: { version: versions[0]!, inclusive: true }, versionMax: { version: max, inclusive: false }, limit: 100 };
  });
}

/**
 * EXPLAIN QUERY PLAN of the SQL the store runs for `query`: the same query functions run against a
 * second (read-only) connection whose Kysely logs the compiled statement, which is then explained.
 */
async function plan(path: string, run: (db: Kysely<Database>) => Promise<unknown>): Promise<string[]> {
  const connection = new BetterSqlite3(path, { readonly: true });
  let compiled: CompiledQuery | undefined;
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }), log: (event) => void (compiled = event.query) });
  try {
    await run(db);
    const rows = connection.prepare(`EXPLAIN QUERY PLAN ${compiled!.sql}`).all(...(compiled!.parameters as unknown[])) as { id: number; parent: number; detail: string }[];
    const depth = new Map<number, number>([[0, 0]]);
    return rows.map((row) => {
      const level = (depth.get(row.parent) ?? 0) + 1;
      depth.set(row.id, level);
      return `${'  '.repeat(level - 1)}${row.detail}`;
    });
  } finally {
    await db.destroy();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'astore-bench-supplychain-'));
  const path = join(dir, 'meta.db');
  let store: MetaStore | undefined;
  try {
    store = await openSqliteMetaStore({ path });
    const packages = catalogue(3_000);
    const all = artifacts(packages, { count: ARTIFACTS, minComponents: 50, maxComponents: 110, log4jEvery: LOG4J_EVERY, repositories: 40, attested: 0.8 });
    const componentCount = all.reduce((sum, a) => sum + a.components.length, 0);
    const planted = all.filter((a) => a.index % LOG4J_EVERY === 0).length;

    await placeArtifacts(store, all);
    const sbomMs = await ingestSboms(store, all);
    const provenance = await ingestProvenance(store, all);
    const dbBytes = (await stat(path)).size + (await stat(`${path}-wal`).catch(() => ({ size: 0 }))).size;

    // The headline answer, checked before anything is timed.
    const log4jHits = await store.supplychain.findComponents({ purl: `${LOG4J}@2.14.1`, limit: 1_000 });
    if (log4jHits.items.length !== planted) throw new Error(`log4j-core@2.14.1: ${log4jHits.items.length} artifacts, expected ${planted}`);

    const sc = store.supplychain;
    const rnd = random(3);
    const exactInputs = Array.from({ length: 200 }, (): ComponentQuery => {
      const pkg = packages[Math.floor(packages.length * rnd() ** 2)]!;
      return { purl: `${pkg.purl}@${pkg.versions[Math.floor(rnd() * pkg.versions.length)]}`, limit: 100 };
    });
    const log4jRange: ComponentQuery = { purl: LOG4J, versionMin: { version: '2.0-beta9', inclusive: true }, versionMax: { version: '2.15.0', inclusive: false }, limit: 100 };
    const lackingBucket: LackingQuery = { predicateType: PROVENANCE, bucket: 'releases', limit: 100 };
    const lackingRepos: LackingQuery = { predicateType: PROVENANCE, repositoryPrefix: 'team-', limit: 100 };
    const lackingBuilder: LackingQuery = { predicateType: PROVENANCE, builderId: 'https://github.com/actions/runner', bucket: 'builds', keyPrefix: 'builds/1', limit: 100 };
    const results: Measured[] = [
      await measure('purl exact: log4j-core@2.14.1', [{ purl: `${LOG4J}@2.14.1`, limit: 100 }], (q) => sc.findComponents(q)),
      await measure('purl exact: random package@version', exactInputs, (q) => sc.findComponents(q)),
      await measure('purl base + range: log4j-core [2.0-beta9, 2.15.0)', [log4jRange], (q) => sc.findComponents(q)),
      await measure('purl base + range: random package', rangeQueries(packages, 'purl', 200, 4), (q) => sc.findComponents(q)),
      await measure('name + range: random package', rangeQueries(packages, 'name', 200, 5), (q) => sc.findComponents(q)),
      await measure('name, every version: slf4j-api (first page of 100)', [{ name: 'slf4j-api', limit: 100 }], (q) => sc.findComponents(q)),
      await measure('purl base + bucket filter: lodash in builds', [{ purl: 'pkg:npm/lodash', bucket: 'builds', limit: 100 }], (q) => sc.findComponents(q)),
      await measure('findLacking: bucket releases (page of 100)', [lackingBucket], (q) => sc.findLacking(q)),
      await measure('findLacking: repositories team-* (page of 100)', [lackingRepos], (q) => sc.findLacking(q)),
      await measure('findLacking: builder + key prefix in builds', [lackingBuilder], (q) => sc.findLacking(q)),
    ];

    // A deep page: the cursor of the 10th page of slf4j-api, to show paging stays an index seek.
    let after: string | undefined;
    for (let i = 0; i < 10; i++) after = (await sc.findComponents({ name: 'slf4j-api', limit: 100, ...(after !== undefined && { after }) })).next;
    if (after !== undefined) results.push(await measure('name, every version: slf4j-api (11th page)', [{ name: 'slf4j-api', limit: 100, after }], (q) => sc.findComponents(q)));

    const rangeCursor = (await sc.findComponents({ ...log4jRange, limit: 10 })).next;
    const plans: [string, string[]][] = [
      ['purl exact (with qualifiers)', await plan(path, (db) => findComponents(db, { purl: `${LOG4J}@2.14.1?type=jar`, limit: 100 }))],
      ['purl base + range, second page, repository prefix', await plan(path, (db) => findComponents(db, { ...log4jRange, repository: 'team-', ...(rangeCursor !== undefined && { after: rangeCursor }) }))],
      ['name + range', await plan(path, (db) => findComponents(db, { name: 'guava', versionMin: { version: '31', inclusive: true }, limit: 100 }))],
      ['name, every version, 11th page', await plan(path, (db) => findComponents(db, { name: 'slf4j-api', limit: 100, ...(after !== undefined && { after }) }))],
      ['findLacking, bucket', await plan(path, (db) => findLacking(db, lackingBuilder))],
      ['findLacking, repositories', await plan(path, (db) => findLacking(db, lackingRepos))],
    ];

    const sbomRecords = all.length;
    const out = [
      `## Supply-chain MetaStore: ${count(componentCount)} SBOM components in ${count(sbomRecords)} artifacts (SQLite, WAL, synchronous=full)`,
      '',
      `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, node ${process.version}, database in ${tmpdir()}. ${count(packages.length)} packages in the catalogue (long-tailed popularity); log4j-core@2.14.1 planted in ${planted} artifacts; ${count(provenance.records)} provenance attestations. Database ${(dbBytes / 2 ** 20).toFixed(0)} MiB.`,
      '',
      '| ingest | records | per second | components/s | mean per record |',
      '|---|---:|---:|---:|---:|',
      `| SBOMs (one transaction each) | ${count(sbomRecords)} | ${count((sbomRecords / sbomMs) * 1000)} | ${count((componentCount / sbomMs) * 1000)} | ${ms(sbomMs / sbomRecords)} ms |`,
      `| provenance attestations | ${count(provenance.records)} | ${count((provenance.records / provenance.elapsedMs) * 1000)} | - | ${ms(provenance.elapsedMs / provenance.records)} ms |`,
      '',
      `Queries through the store, one at a time, ${REPETITIONS} repetitions after ${WARMUP} warm-up (milliseconds):`,
      '',
      '| query | p50 | p95 | p99 | rows returned (mean) |',
      '|---|---:|---:|---:|---:|',
      ...results.map((r) => `| ${r.label} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${r.meanRows.toFixed(1)} |`),
      '',
      'Query plans (EXPLAIN QUERY PLAN of the SQL the store runs):',
      '',
      ...plans.flatMap(([label, lines]) => [`${label}:`, '```', ...lines, '```', '']),
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
