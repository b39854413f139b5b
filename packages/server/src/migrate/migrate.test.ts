import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openApp } from '../app.ts';
import { parseConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { blobKey } from '../core/content.ts';
import { createLogger } from '../observability/logger.ts';
import { MigrationRefused, type MigrationReport, runMigration } from './index.ts';
import { copiedTables } from './tables.ts';

/**
 * runMigration from one embedded setup (local disk + SQLite) into another, in temp directories: what
 * the copy carries, how a rerun resumes, what it refuses. The same against S3 + PostgreSQL, through
 * the CLI and the real protocols, is test/storage/migrate.e2e.test.ts.
 */
let root: string;
let dirs = 0;
/** One filled source the tests that do not change it share. */
let shared: Source;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'astore-migrate-'));
  shared = await makeSource();
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const configOf = (dataDir: string): Readonly<Config> => parseConfig({ dataDir, log: { level: 'silent' }, gc: { enabled: false } });
const freshDir = () => join(root, `d${++dirs}`);
const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Source {
  config: Readonly<Config>;
  dataDir: string;
  /** Object key → bytes. */
  objects: Map<string, Buffer>;
  /** Digests of every stored blob. */
  blobs: string[];
}

/** A source filled through the domain services: objects, an image, a user with a key, a policy, a signing key and a signature. */
async function makeSource(): Promise<Source> {
  const dataDir = freshDir();
  const config = configOf(dataDir);
  const app = await openApp(config, createLogger('silent'));
  const objects = new Map<string, Buffer>();
  try {
    await app.buckets.create('data');
    for (const [key, size] of [['empty', 0], ['one', 1], ['small.txt', 1000], ['medium.bin', 300_000], ['large.bin', 1_200_000], ['dup.bin', 1000]] as const) {
      const bytes = key === 'dup.bin' ? objects.get('small.txt')! : randomBytes(size);
      objects.set(key, bytes);
      await app.objects.put({ bucket: 'data', key, body: Readable.from([bytes]), headers: { contentType: 'application/x-test' }, userMetadata: { origin: 'unit' }, checksumAlgorithms: [] });
    }
    const layers = [randomBytes(50_000), randomBytes(20_000)];
    const imageConfig = Buffer.from('{"architecture":"amd64","os":"linux"}');
    for (const layer of layers) await app.registryBlobs.putBlob('team/app', sha256(layer), Readable.from([layer]), layer.length);
    await app.registryBlobs.putBlob('team/app', sha256(imageConfig), Readable.from([imageConfig]), imageConfig.length);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(imageConfig), size: imageConfig.length },
        layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length })),
      }),
    );
    await app.manifests.put('team/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', manifest);
    const now = new Date();
    await app.meta.identity.createUser({ name: 'dana', email: 'dana@example.com', disabled: false, createdAt: now });
    await app.meta.identity.createAccessKey({ accessKeyId: 'AKDANA0001', user: 'dana', secretCiphertext: app.secrets.seal('dana-secret'), createdAt: now });
    await app.meta.identity.putPolicy({ name: 'dana-data', document: '{"statements":[]}', createdAt: now, updatedAt: now });
    await app.supplyChain.keys.create('ci', { generate: 'ecdsa-p256' }, 'root');
    await app.supplyChain.sign({ kind: 's3', bucket: 'data', key: 'small.txt' }, 'ci', 'root');
  } finally {
    await app.close();
  }
  return { config, dataDir, objects, blobs: tableRows(join(dataDir, 'meta.db'), 'blobs').map((row) => row.digest as string) };
}

function tableRows(dbFile: string, table: string): Record<string, unknown>[] {
  const db = new BetterSqlite3(dbFile, { readonly: true });
  try {
    const spec = copiedTables.find((t) => t.name === table)!;
    return db.prepare(`select * from "${table}" order by ${spec.key.map((c) => `"${c}"`).join(', ')}`).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

const blobFile = (dataDir: string, digest: string) => join(dataDir, 'blobs', blobKey(digest));

async function stagingLeftovers(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'blobs', 'staging')).catch(() => []);
}

describe('runMigration, embedded setup to embedded setup', () => {
  test('copies every row, blob and file; the target serves the same data; a second run copies nothing', async () => {
    const targetDir = freshDir();
    const report = await runMigration(shared.config, configOf(targetDir));
    assert.equal(report.ok, true, report.problems.join('\n'));
    assert.equal(report.schema.created, true);
    assert.equal(report.blobs.total, shared.blobs.length);
    assert.equal(report.blobs.copied, shared.blobs.length);
    assert.equal(report.blobs.copiedBytes, report.blobs.totalBytes);

    for (const spec of copiedTables) {
      assert.deepEqual(tableRows(join(targetDir, 'meta.db'), spec.name), tableRows(join(shared.dataDir, 'meta.db'), spec.name), `table ${spec.name}`);
    }
    for (const digest of shared.blobs) assert.deepEqual(await readFile(blobFile(targetDir, digest)), await readFile(blobFile(shared.dataDir, digest)), digest);
    for (const file of ['server-key', 'root-credentials.json']) assert.deepEqual(await readFile(join(targetDir, file)), await readFile(join(shared.dataDir, file)), file);
    const keyFiles = await readdir(join(shared.dataDir, 'signing-keys'));
    assert.equal(keyFiles.length, 1);
    assert.deepEqual(await readFile(join(targetDir, 'signing-keys', keyFiles[0]!)), await readFile(join(shared.dataDir, 'signing-keys', keyFiles[0]!)));
    assert.equal((await stat(join(targetDir, 'server-key'))).mode & 0o777, 0o600);
    assert.deepEqual(await stagingLeftovers(targetDir), []);

    const again = await runMigration(shared.config, configOf(targetDir));
    assert.equal(again.ok, true);
    assert.equal(again.schema.created, false);
    assert.equal(again.metadata.copied, 0);
    assert.equal(again.metadata.present, report.metadata.rows);
    assert.equal(again.blobs.copied, 0);
    assert.equal(again.blobs.present, shared.blobs.length);
    assert.ok(again.files.every((f) => f.action === 'present'), JSON.stringify(again.files));

    // The target serves: the objects' bytes, the user's key (sealed with the carried server key), signing with the carried key file.
    const app = await openApp(configOf(targetDir), createLogger('silent'));
    try {
      for (const [key, bytes] of shared.objects) {
        const read = await app.objects.get('data', key);
        const chunks: Buffer[] = [];
        for await (const chunk of await read.body()) chunks.push(chunk as Buffer);
        assert.deepEqual(Buffer.concat(chunks), bytes, key);
      }
      const resolved = await app.identity.resolveKey('AKDANA0001');
      assert.equal(resolved?.secret, 'dana-secret');
      const signed = await app.supplyChain.sign({ kind: 's3', bucket: 'data', key: 'medium.bin' }, 'ci', 'root');
      assert.equal(signed.records.length, 1);
      // New rows get new ids (the copied ones are taken): an object put and its audit entry succeed.
      await app.objects.put({ bucket: 'data', key: 'new.txt', body: Readable.from([Buffer.from('new')]), headers: {}, userMetadata: {}, checksumAlgorithms: [] });
    } finally {
      await app.close();
    }
  });

  test('small batches page through every table by its key and copy the same rows', async () => {
    const targetDir = freshDir();
    const report = await runMigration(shared.config, configOf(targetDir), { batchRows: 2 });
    assert.equal(report.ok, true, report.problems.join('\n'));
    for (const spec of copiedTables) {
      assert.deepEqual(tableRows(join(targetDir, 'meta.db'), spec.name), tableRows(join(shared.dataDir, 'meta.db'), spec.name), `table ${spec.name}`);
    }
    for (const table of ['blobs', 'objects', 'object_segments', 'manifest_refs']) {
      assert.ok(report.metadata.tables.find((t) => t.table === table)!.sourceRows > 2, `${table} needs more than one batch`);
    }
  });

  test('an interrupted run leaves no partial blob; the rerun copies the rest and nothing twice', async () => {
    const targetDir = freshDir();
    const controller = new AbortController();
    const first = await runMigration(shared.config, configOf(targetDir), {
      concurrency: 2,
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.phase === 'blobs' && progress.copied >= 2) controller.abort();
      },
    });
    assert.equal(first.ok, false);
    assert.equal(first.interrupted, true);
    assert.ok(first.blobs.copied >= 2 && first.blobs.copied < shared.blobs.length, `copied ${first.blobs.copied} of ${shared.blobs.length}`);
    assert.deepEqual(await stagingLeftovers(targetDir), [], 'an abandoned copy removes its staging key');

    const second = await runMigration(shared.config, configOf(targetDir));
    assert.equal(second.ok, true, second.problems.join('\n'));
    assert.equal(second.metadata.copied, 0);
    assert.equal(second.blobs.present, first.blobs.copied);
    assert.equal(first.blobs.copied + second.blobs.copied, shared.blobs.length);
  });

  test('an interruption during the metadata copy resumes too', async () => {
    const targetDir = freshDir();
    const controller = new AbortController();
    const first = await runMigration(shared.config, configOf(targetDir), {
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.phase === 'metadata' && progress.table === 'repositories') controller.abort();
      },
    });
    assert.equal(first.interrupted, true);
    assert.equal(first.blobs.copied, 0);
    const second = await runMigration(shared.config, configOf(targetDir));
    assert.equal(second.ok, true, second.problems.join('\n'));
    assert.ok(second.metadata.present > 0 && second.metadata.copied > 0);
    assert.equal(second.metadata.present + second.metadata.copied, second.metadata.rows);
  });

  test('source bytes that do not hash to their digest are reported, not copied, and fail the run', async () => {
    const source = await makeSource();
    const victim = source.blobs.find((digest) => tableRows(join(source.dataDir, 'meta.db'), 'blobs').some((row) => row.digest === digest && (row.size as number) > 0))!;
    const original = await readFile(blobFile(source.dataDir, victim));
    const corrupted = Buffer.from(original);
    corrupted[0] = corrupted[0]! ^ 0xff;
    await writeFile(blobFile(source.dataDir, victim), corrupted);
    const targetDir = freshDir();

    const report = await runMigration(source.config, configOf(targetDir));
    assert.equal(report.ok, false);
    assert.deepEqual(report.blobs.corrupt, [{ digest: victim, actualDigest: sha256(corrupted), size: original.length, actualSize: corrupted.length }]);
    assert.equal(report.blobs.copied, source.blobs.length - 1);
    assert.match(report.problems.join('\n'), new RegExp(`do not hash to their digest.*${victim}`));
    await assert.rejects(stat(blobFile(targetDir, victim)), { code: 'ENOENT' });
    assert.deepEqual(await stagingLeftovers(targetDir), []);

    await writeFile(blobFile(source.dataDir, victim), original);
    const repaired = await runMigration(source.config, configOf(targetDir));
    assert.equal(repaired.ok, true);
    assert.equal(repaired.blobs.copied, 1);
  });

  test('a blob the source MetaStore lists but its BlobStore lacks is reported and fails the run', async () => {
    const source = await makeSource();
    const victim = source.blobs[0]!;
    await unlink(blobFile(source.dataDir, victim));
    const report = await runMigration(source.config, configOf(freshDir()));
    assert.equal(report.ok, false);
    assert.deepEqual(report.blobs.missing, [victim]);
    assert.match(report.problems.join('\n'), /missing from the source BlobStore/);
  });

  test('refuses a target that holds other values under the same key, naming table, key and column', async () => {
    const targetDir = freshDir();
    assert.equal((await runMigration(shared.config, configOf(targetDir))).ok, true);
    const db = new BetterSqlite3(join(targetDir, 'meta.db'));
    db.prepare(`update users set email = 'someone@else.example' where name = 'dana'`).run();
    db.close();
    await assert.rejects(runMigration(shared.config, configOf(targetDir)), (err: Error) => {
      assert.ok(err instanceof MigrationRefused, String(err));
      assert.match(err.message, /table users/);
      assert.match(err.message, /row name="dana": email is "dana@example.com" in the source, "someone@else.example" in the target/);
      return true;
    });
  });

  test('refuses a target holding the same unique values under another key (an object under another id)', async () => {
    const targetDir = freshDir();
    assert.equal((await runMigration(shared.config, configOf(targetDir))).ok, true);
    const db = new BetterSqlite3(join(targetDir, 'meta.db'));
    db.pragma('foreign_keys = OFF');
    const { id } = db.prepare(`select id from objects where key = 'empty'`).get() as { id: number };
    db.prepare(`update objects set id = 1000 where id = ?`).run(id);
    db.prepare(`update object_segments set object_id = 1000 where object_id = ?`).run(id);
    db.close();
    await assert.rejects(
      runMigration(shared.config, configOf(targetDir)),
      (err: Error) => err instanceof MigrationRefused && err.message.includes(`table objects:\n  row id=${id}: the target holds another row with the same unique values`),
    );
  });

  test('refuses a target whose schema version differs, saying which migrations differ', async () => {
    const targetDir = freshDir();
    assert.equal((await runMigration(shared.config, configOf(targetDir))).ok, true);
    const db = new BetterSqlite3(join(targetDir, 'meta.db'));
    db.prepare(`insert into astore_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')`).run();
    db.close();
    await assert.rejects(runMigration(shared.config, configOf(targetDir)), /target's schema .* only the target has 9999_future/);
  });

  test('refuses a target data directory holding another server key, before writing anything', async () => {
    const targetDir = freshDir();
    await mkdir(targetDir, { recursive: true });
    await writeFile(join(targetDir, 'server-key'), randomBytes(32), { mode: 0o600 });
    await assert.rejects(runMigration(shared.config, configOf(targetDir)), (err: Error) => err instanceof MigrationRefused && /another server key/.test(err.message));
    assert.deepEqual((await readdir(targetDir)).sort(), ['server-key']);
  });

  test('refuses the same stores on both sides', async () => {
    await assert.rejects(runMigration(shared.config, shared.config), /name the same stores/);
  });

  test('a dry run counts and writes nothing', async () => {
    const targetDir = freshDir();
    const report: MigrationReport = await runMigration(shared.config, configOf(targetDir), { dryRun: true });
    assert.equal(report.ok, true);
    assert.equal(report.blobs.total, shared.blobs.length);
    assert.equal(report.blobs.copied, 0);
    const users = report.metadata.tables.find((t) => t.table === 'users');
    assert.deepEqual({ source: users?.sourceRows, target: users?.targetRows }, { source: 1, target: undefined });
    assert.ok(report.files.some((f) => f.what === 'server key' && f.action === 'would copy'));
    await assert.rejects(stat(targetDir), { code: 'ENOENT' });
  });
});
