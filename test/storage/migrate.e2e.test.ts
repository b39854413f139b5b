import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import BetterSqlite3 from 'better-sqlite3';
import { blobKey } from '../../packages/server/src/core/content.ts';
import { loadConfig, parseConfig } from '../../packages/server/src/config/load.ts';
import { type MigrationReport, runMigration } from '../../packages/server/src/migrate/index.ts';
import { copiedTables } from '../../packages/server/src/migrate/tables.ts';
import { apiCall } from '../helpers/api.ts';
import { type MinioServer, startMinio } from '../helpers/minio.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { RegistryHttp } from '../helpers/registry-http.ts';
import { bytesOf, sdkClient } from '../helpers/sdk-js.ts';
import { accessKeyId, region, repoRoot, secretKey, startServer } from '../helpers/server.ts';

/**
 * `astore migrate` end to end: an astore on the embedded setup (local disk + SQLite) is filled through
 * its real protocols (S3 objects with the AWS SDK, a multipart one and an unfinished upload, an OCI
 * image over the distribution API, a user with an access key and a policy, a server-held signing key,
 * a signature and an SBOM through the REST API), stopped, and migrated by the CLI, as a child process,
 * into MinIO + PostgreSQL. A dry run writes nothing; corrupt source bytes fail the run and are named;
 * a run killed half-way is resumed by the next, which copies nothing twice; migrating back gives the
 * same rows; and an astore started on the target serves every object byte for byte, the image, the
 * user's key (the server key came along), listing, and signs with the carried key.
 *
 * Needs ASTORE_TEST_MINIO and ASTORE_TEST_POSTGRES (scripts/install-minio.sh, install-postgres.sh):
 * without them the file fails, it never skips.
 */
let minio: MinioServer;
let postgres: PostgresServer;
let work: string;
let sourceDir: string;
const fromFile = () => join(work, 'from.json');

/** What the source held, to compare the target with. */
const objects = new Map<string, { bytes: Buffer; etag: string }>();
let listing: { key: string; etag: string; size: number }[] = [];
let image: { digest: string; layers: string[]; bytes: Buffer[] };
let unfinished: { key: string; uploadId: string; part1: Buffer; etag1: string };
let dana: { accessKeyId: string; secretAccessKey: string };
let signatureRecord: string;
let sbomRecord: string;

const auth = { rootAccessKey: accessKeyId, rootSecretKey: secretKey };
const MiB = 1024 ** 2;

before(async () => {
  [minio, postgres] = await Promise.all([startMinio(), startPostgres()]);
  work = await mkdtemp(join(tmpdir(), 'astore-migrate-e2e-'));
  sourceDir = join(work, 'source');
  await writeFile(fromFile(), JSON.stringify({ dataDir: sourceDir, auth }));
  await fillSource();
});

after(async () => {
  await Promise.all([minio?.stop(), postgres?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

async function fillSource(): Promise<void> {
  const server = await startServer({ dataDir: sourceDir, storage: { blob: { driver: 'fs' }, meta: { driver: 'sqlite' } } });
  const s3 = sdkClient(server.endpoint);
  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => apiCall(server.endpoint, method, path, body, headers);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'data' }));
    const put = async (key: string, bytes: Buffer, extra: Partial<ConstructorParameters<typeof PutObjectCommand>[0]> = {}) => {
      const out = await s3.send(new PutObjectCommand({ Bucket: 'data', Key: key, Body: bytes, ...extra }));
      objects.set(key, { bytes, etag: out.ETag! });
    };
    for (let i = 0; i < 40; i++) await put(`obj/${String(i).padStart(2, '0')}.bin`, randomBytes(64 * 1024 + ((i * 37_123) % (960 * 1024))));
    await put('empty', Buffer.alloc(0));
    await put('docs/readme.txt', Buffer.from('hello, migrated world\n'), { ContentType: 'text/plain; charset=utf-8', Metadata: { origin: 'source', team: 'storage' } });

    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(MiB)];
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big/multipart.bin' }));
    const completed = [];
    for (const [i, part] of parts.entries()) {
      const out = await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/multipart.bin', UploadId: created.UploadId, PartNumber: i + 1, Body: part }));
      completed.push({ PartNumber: i + 1, ETag: out.ETag! });
    }
    const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'data', Key: 'big/multipart.bin', UploadId: created.UploadId, MultipartUpload: { Parts: completed } }));
    objects.set('big/multipart.bin', { bytes: Buffer.concat(parts), etag: done.ETag! });

    const started = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'data', Key: 'big/unfinished.bin' }));
    const part1 = randomBytes(5 * MiB);
    const out1 = await s3.send(new UploadPartCommand({ Bucket: 'data', Key: 'big/unfinished.bin', UploadId: started.UploadId, PartNumber: 1, Body: part1 }));
    unfinished = { key: 'big/unfinished.bin', uploadId: started.UploadId!, part1, etag1: out1.ETag! };

    const registry = new RegistryHttp(server.endpoint);
    const layers = [randomBytes(2 * MiB), randomBytes(300 * 1024)];
    const pushed = await registry.pushImage('team/app', 'v1', layers);
    image = { digest: pushed.digest, layers: pushed.layers, bytes: layers };

    const user = await api('POST', '/api/v1/users', { name: 'dana', password: 'dana-password-0123' });
    assert.equal(user.status, 201, user.text);
    const key = await api('POST', '/api/v1/users/dana/access-keys', { description: 'ci' });
    assert.equal(key.status, 201, key.text);
    dana = { accessKeyId: key.json.accessKeyId, secretAccessKey: key.json.secretAccessKey };
    const policy = await api('PUT', '/api/v1/policies/dana-data', {
      statements: [{ effect: 'allow', principals: ['user:dana'], actions: ['s3:*'], resources: ['s3:data', 's3:data/*'] }],
    });
    assert.equal(policy.status, 201, policy.text);

    assert.equal((await api('PUT', '/api/v1/supplychain/keys/ci', {})).status, 201);
    const signed = await api('POST', '/api/v1/supplychain/signatures?bucket=data&key=obj%2F00.bin', { key: 'ci' });
    assert.equal(signed.status, 201, signed.text);
    signatureRecord = signed.json.records[0].id;
    const sbom = await api('POST', '/api/v1/supplychain/records?bucket=data&key=obj%2F01.bin', spdx(), { 'content-type': 'application/spdx+json' });
    assert.equal(sbom.status, 201, sbom.text);
    sbomRecord = sbom.json.records[0].id;

    listing = await listAll(s3);
    assert.equal(listing.length, objects.size);
  } finally {
    s3.destroy();
    await server.stop(); // removes the server's own temp dir, not sourceDir
  }
}

function spdx(): string {
  return JSON.stringify({
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: 'obj-01',
    documentNamespace: 'https://astore.test/spdx/obj-01',
    creationInfo: { created: '2026-01-02T03:04:05Z', creators: ['Tool: astore-test'] },
    packages: [
      {
        name: 'left-pad',
        SPDXID: 'SPDXRef-Package-0',
        versionInfo: '1.3.0',
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'MIT',
        licenseDeclared: 'MIT',
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:npm/left-pad@1.3.0' }],
      },
    ],
  });
}

async function listAll(s3: S3Client, bucket = 'data'): Promise<{ key: string; etag: string; size: number }[]> {
  const out: { key: string; etag: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 17, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, etag: o.ETag!, size: o.Size! });
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

interface Target {
  name: string;
  file: string;
  dataDir: string;
  bucket: string;
  database: string;
  storage: Record<string, unknown>;
}

let targets = 0;
/** A fresh MinIO bucket, PostgreSQL database and data directory, and a configuration file naming them. */
async function newTarget(): Promise<Target> {
  const name = `target${++targets}`;
  const bucket = await minio.createBucket();
  const database = `migrate_${targets}`;
  const connectionString = await postgres.createDatabase(database);
  const storage = {
    blob: {
      driver: 's3',
      s3: { endpoint: minio.endpoint, region: minio.region, bucket, forcePathStyle: true, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    },
    meta: { driver: 'postgres', postgres: { connectionString } },
  };
  const dataDir = join(work, name);
  const file = join(work, `${name}.json`);
  await writeFile(file, JSON.stringify({ dataDir, storage, auth }));
  return { name, file, dataDir, bucket, database, storage };
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  report?: MigrationReport;
}

/** `astore migrate` as a child process; `killWhen` is polled every 20 ms and SIGKILLs it when true. */
async function migrate(args: string[], killWhen?: () => Promise<boolean>): Promise<Run> {
  const started = Date.now();
  // The CLI ignores ASTORE_* for migrate, but the test runner's own are not passed on anyway.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ASTORE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'packages/server/src/main.ts'), 'migrate', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('exit', (code, signal) => res([code, signal])));
  let polling = killWhen !== undefined;
  const poll = (async () => {
    while (polling && child.exitCode === null) {
      if (await killWhen!().catch(() => false)) {
        child.kill('SIGKILL');
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const [code, signal] = await exited;
  polling = false;
  await poll;
  const run: Run = { code, signal, stdout, stderr, ms: Date.now() - started };
  if (args.includes('--json') && code !== null) {
    try {
      run.report = JSON.parse(stdout) as MigrationReport;
    } catch {
      // asserted by the caller
    }
  }
  return run;
}

const rate = (bytes: number, ms: number) => `${((bytes / MiB) / (ms / 1000)).toFixed(1)} MiB/s`;

async function bucketKeys(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await minio.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

function sqliteRows(file: string, table: string): Record<string, unknown>[] {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const spec = copiedTables.find((t) => t.name === table)!;
    return db.prepare(`select * from "${table}" order by ${spec.key.map((c) => `"${c}"`).join(', ')}`).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

const sourceBlobFile = (digest: string) => join(sourceDir, 'blobs', blobKey(digest));
const sourceBlobCount = () => sqliteRows(join(sourceDir, 'meta.db'), 'blobs').length;

describe('astore migrate: embedded setup to MinIO + PostgreSQL', () => {
  let target: Target;

  test('--dry-run counts what there is and writes nothing', async () => {
    const dry = await newTarget();
    const run = await migrate(['--from', fromFile(), '--to', dry.file, '--dry-run', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = run.report!;
    assert.equal(report.dryRun, true);
    assert.equal(report.blobs.total, sourceBlobCount());
    assert.equal(report.blobs.copied, 0);
    assert.equal(report.metadata.tables.find((t) => t.table === 'objects')?.sourceRows, objects.size);
    assert.deepEqual(report.files.find((f) => f.what === 'server key')?.action, 'would copy');
    assert.deepEqual(await bucketKeys(dry.bucket, ''), []);
    assert.deepEqual(await postgres.query(dry.database, `select table_name from information_schema.tables where table_schema = 'public'`), []);
    await assert.rejects(stat(dry.dataDir), { code: 'ENOENT' });
  });

  test('a source blob whose bytes do not hash to its digest is named, not copied, and fails the run', async (t) => {
    const corruptTarget = await newTarget();
    const victim = image.layers[0]!;
    const original = await readFile(sourceBlobFile(victim));
    const corrupted = Buffer.from(original);
    corrupted[1000] = corrupted[1000]! ^ 0x01;
    await writeFile(sourceBlobFile(victim), corrupted);
    try {
      const run = await migrate(['--from', fromFile(), '--to', corruptTarget.file, '--json']);
      assert.equal(run.code, 1, run.stderr);
      const report = run.report!;
      assert.equal(report.ok, false);
      assert.deepEqual(report.blobs.corrupt.map((b) => b.digest), [victim]);
      assert.match(report.problems.join('\n'), new RegExp(`do not hash to their digest.*${victim}`));
      assert.equal(report.blobs.copied, report.blobs.total - 1);
      const stored = await bucketKeys(corruptTarget.bucket, '');
      assert.equal(stored.includes(blobKey(victim)), false, 'the corrupt blob is not at its key');
      assert.deepEqual(stored.filter((k) => !k.startsWith('blobs/')), [], 'no staging key is left');
      assert.equal(stored.length, report.blobs.total - 1);
      t.diagnostic(`full copy of ${report.blobs.copied} blobs, ${(report.blobs.copiedBytes / MiB).toFixed(1)} MiB, fs -> MinIO at concurrency 4: ` +
        `${rate(report.blobs.copiedBytes, report.blobs.durationMs)} (metadata ${report.metadata.rows} rows in ${report.metadata.durationMs} ms; whole command ${run.ms} ms)`);
    } finally {
      await writeFile(sourceBlobFile(victim), original);
    }
  });

  test('a run killed half-way is resumed by the next, which copies nothing twice', async (t) => {
    target = await newTarget();
    const total = sourceBlobCount();
    const killed = await migrate(['--from', fromFile(), '--to', target.file, '--concurrency', '1'], async () => (await bucketKeys(target.bucket, 'blobs/')).length >= 5);
    assert.equal(killed.signal, 'SIGKILL', `the first run was to be killed half-way, but it exited with ${killed.code}:\n${killed.stderr}`);
    const before = (await bucketKeys(target.bucket, 'blobs/')).length;
    assert.ok(before >= 5 && before < total, `${before} of ${total} blobs copied before the kill`);

    const resumed = await migrate(['--from', fromFile(), '--to', target.file, '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const report = resumed.report!;
    assert.equal(report.ok, true, report.problems.join('\n'));
    assert.equal(report.schema.created, false, 'the first run created the schema');
    assert.equal(report.metadata.copied, 0, 'the first run had copied every row before the blobs');
    assert.equal(report.metadata.present, report.metadata.rows);
    assert.equal(report.blobs.present, before, 'what the first run copied is not copied again');
    assert.equal(report.blobs.copied, total - before);
    assert.deepEqual(await bucketKeys(target.bucket, 'staging/'), [], 'the killed run\'s staging key is gone');
    assert.equal((await bucketKeys(target.bucket, 'blobs/')).length, total);
    assert.equal(report.files.find((f) => f.what === 'server key')?.action, 'present', 'the first run carried the server key');
    assert.deepEqual(await readFile(join(target.dataDir, 'server-key')), await readFile(join(sourceDir, 'server-key')));
    assert.deepEqual(await readdir(join(target.dataDir, 'signing-keys')), await readdir(join(sourceDir, 'signing-keys')));
    t.diagnostic(`resumed: ${report.blobs.copied} blobs, ${(report.blobs.copiedBytes / MiB).toFixed(1)} MiB at ${rate(report.blobs.copiedBytes, report.blobs.durationMs)}; ${report.blobs.present} already there`);

    const again = await migrate(['--from', fromFile(), '--to', target.file, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual([again.report!.metadata.copied, again.report!.blobs.copied, again.report!.blobs.present], [0, 0, total]);
    t.diagnostic(`a third run copies nothing: ${again.ms} ms`);

    for (const table of ['objects', 'audit_log', 'sc_components']) {
      const [row] = await postgres.query<{ max: number | null; last: number | null }>(
        target.database,
        `select (select max(id) from ${table})::int as max, pg_sequence_last_value(pg_get_serial_sequence('${table}', 'id'))::int as last`,
      );
      assert.ok(row!.max !== null, `${table} has rows`);
      assert.equal(row!.last, row!.max, `the ${table} id sequence is moved to the highest copied id`);
    }
  });

  test('migrating back from S3 + PostgreSQL, in batches of 3 rows, gives the very same rows and blobs', async () => {
    // In process, with small batches: every table of more than 3 rows is paged by its key on PostgreSQL
    // (composite keys, its collations), which the CLI's 500-row batches would not reach with this data.
    const backDir = join(work, 'back');
    const report = await runMigration(loadConfig({ file: target.file, env: {} }), parseConfig({ dataDir: backDir, auth }), { batchRows: 3 });
    assert.equal(report.ok, true, report.problems.join('\n'));
    for (const { name } of copiedTables) {
      assert.deepEqual(sqliteRows(join(backDir, 'meta.db'), name), sqliteRows(join(sourceDir, 'meta.db'), name), `table ${name} after SQLite -> PostgreSQL -> SQLite`);
    }
    for (const row of sqliteRows(join(sourceDir, 'meta.db'), 'blobs')) {
      const digest = row.digest as string;
      assert.deepEqual(await readFile(join(backDir, 'blobs', blobKey(digest))), await readFile(sourceBlobFile(digest)), digest);
    }
  });

  test('astore on the target serves every object, the image, the user\'s key, listing and signing', async () => {
    const server = await startServer({ dataDir: target.dataDir, storage: target.storage });
    const s3 = sdkClient(server.endpoint);
    const asDana = new S3Client({ endpoint: server.endpoint, region, forcePathStyle: true, maxAttempts: 1, credentials: dana });
    try {
      for (const [key, { bytes, etag }] of objects) {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'data', Key: key }));
        assert.deepEqual(await bytesOf(got), bytes, `bytes of ${key}`);
        assert.equal(got.ETag, etag, `ETag of ${key}`);
      }
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'data', Key: 'docs/readme.txt' }));
      assert.equal(head.ContentType, 'text/plain; charset=utf-8');
      assert.equal(head.Metadata?.origin, 'source');
      assert.deepEqual(await listAll(s3), listing);

      // The user's access key was sealed with the source's server key: it signs only if that key came along.
      assert.deepEqual(await bytesOf(await asDana.send(new GetObjectCommand({ Bucket: 'data', Key: 'obj/07.bin' }))), objects.get('obj/07.bin')!.bytes);
      await asDana.send(new PutObjectCommand({ Bucket: 'data', Key: 'after/dana.txt', Body: 'written on the target' }));

      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'data' }));
      assert.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [[unfinished.key, unfinished.uploadId]]);
      const part2 = randomBytes(1000);
      const out2 = await s3.send(new UploadPartCommand({ Bucket: 'data', Key: unfinished.key, UploadId: unfinished.uploadId, PartNumber: 2, Body: part2 }));
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'data',
          Key: unfinished.key,
          UploadId: unfinished.uploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: unfinished.etag1 }, { PartNumber: 2, ETag: out2.ETag! }] },
        }),
      );
      assert.deepEqual(await bytesOf(await s3.send(new GetObjectCommand({ Bucket: 'data', Key: unfinished.key }))), Buffer.concat([unfinished.part1, part2]));

      const registry = new RegistryHttp(server.endpoint);
      assert.deepEqual(await registry.pullImage('team/app', 'v1'), image.bytes);
      const manifest = await registry.request('HEAD', '/v2/team/app/manifests/v1', { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(manifest.headers.get('docker-content-digest'), image.digest);
      const tags = await registry.request('GET', '/v2/team/app/tags/list');
      assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);

      const api = (method: string, path: string, body?: unknown) => apiCall(server.endpoint, method, path, body);
      const records = await api('GET', '/api/v1/supplychain/records?bucket=data&key=obj%2F00.bin');
      assert.deepEqual(records.json.records.map((r: { id: string }) => r.id), [signatureRecord]);
      const sbom = await api('GET', `/api/v1/supplychain/records/${sbomRecord}/content`);
      assert.equal(sbom.status, 200);
      assert.equal(sbom.text, spdx());
      const packages = await api('GET', '/api/v1/supplychain/packages?purl=pkg%3Anpm%2Fleft-pad');
      assert.equal(packages.status, 200, packages.text);
      assert.match(packages.text, /obj\/01\.bin/);
      // The private key is in the carried signing-keys directory, sealed with the carried server key.
      const signed = await api('POST', '/api/v1/supplychain/signatures?bucket=data&key=obj%2F02.bin', { key: 'ci' });
      assert.equal(signed.status, 201, signed.text);
    } finally {
      s3.destroy();
      asDana.destroy();
      await server.stop();
    }
  });
});
