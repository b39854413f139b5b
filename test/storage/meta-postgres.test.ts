import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { isAstoreError } from '../../packages/server/src/core/errors.ts';
import { runMetaStoreConformance } from '../../packages/server/src/storage/meta/conformance.ts';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  T0,
  auditEntry,
  bucketRecord,
  digestOf,
  groupRecord,
  layerLink,
  manifestRecord,
  objectRecord,
  policyRecord,
  userRecord,
} from '../../packages/server/src/storage/meta/conformance/fixtures.ts';
import { migrations } from '../../packages/server/src/storage/meta/migrations.ts';
import { type PostgresMetaStoreOptions, openPostgresMetaStore, postgresHooks } from '../../packages/server/src/storage/meta/postgres.ts';
import type { MetaStore, ObjectRecord } from '../../packages/server/src/storage/meta/types.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

// One throwaway cluster for the file, started by the first test that needs it (so that without
// PostgreSQL every test fails, none is cancelled or skipped); every store gets a database of its own,
// dropped afterwards.
let started: Promise<PostgresServer> | undefined;
let server: PostgresServer;
let databases = 0;
/** The next database, created while the current test runs (CREATE DATABASE takes a few hundred ms). */
let nextDatabase: Promise<string> | undefined;
after(async () => {
  await nextDatabase?.catch(() => {});
  await (await started?.catch(() => undefined))?.stop();
});

async function cluster(): Promise<PostgresServer> {
  server = await (started ??= startPostgres());
  return server;
}

async function createDatabase(): Promise<string> {
  const database = `meta_${++databases}`;
  await (await cluster()).createDatabase(database);
  return database;
}

/** An empty database of its own, from the one created ahead, and the next one started. */
function takeDatabase(): Promise<string> {
  const taken = nextDatabase ?? createDatabase();
  nextDatabase = createDatabase();
  nextDatabase.catch(() => {}); // a failure is reported by the test that takes it
  return taken;
}

interface Opened {
  store: MetaStore;
  database: string;
  cleanup: () => Promise<void>;
}

/** A migrated store on a database of its own; cleanup closes it and drops the database. */
async function openFresh(options: Partial<PostgresMetaStoreOptions> = {}): Promise<Opened> {
  const database = await takeDatabase();
  const store = await openPostgresMetaStore({ connectionString: server.connectionString(database), ...options });
  return {
    store,
    database,
    cleanup: async () => {
      await store.close();
      await server.dropDatabase(database);
    },
  };
}

runMetaStoreConformance('postgres', () => openFresh());

const FUTURE = (): Date => new Date(Date.now() + 60_000);

/** Each settled result, as 'ok' or the AstoreError code (anything else is rethrown: no raw database error may escape). */
function outcomes(results: PromiseSettledResult<unknown>[]): string[] {
  return results.map((result) => {
    if (result.status === 'fulfilled') return 'ok';
    if (isAstoreError(result.reason)) return result.reason.code;
    throw result.reason;
  });
}

/** Runs `collect` over and over, `loops` at a time, until every one of `work` has settled; their outcomes. */
async function whileCollecting(work: Promise<unknown>[], collect: () => Promise<unknown>, loops = 2): Promise<string[]> {
  let done = false;
  const settled = Promise.allSettled(work).finally(() => (done = true));
  const collectors = Array.from({ length: loops }, async () => {
    while (!done) await collect();
  });
  const results = await settled;
  await Promise.all(collectors);
  return outcomes(results);
}

async function count(database: string, text: string, params: unknown[] = []): Promise<number> {
  const rows = await server.query<{ n: string }>(database, text, params);
  return Number(rows[0]!.n);
}

describe('openPostgresMetaStore', () => {
  test('two stores opening one empty database at once apply each migration once, and share the data', async () => {
    const database = await takeDatabase();
    const connectionString = server.connectionString(database);
    const [first, second] = await Promise.all([openPostgresMetaStore({ connectionString }), openPostgresMetaStore({ connectionString })]);
    try {
      const applied = await server.query<{ name: string }>(database, 'select name from astore_migration order by name');
      assert.deepEqual(
        applied.map((row) => row.name),
        Object.keys(migrations(postgresHooks)).sort(),
      );
      assert.equal(await count(database, 'select count(*) as n from identity_state'), 1, 'the seed row of a migration is inserted once');
      assert.equal(await first.buckets.create(bucketRecord('shared')), true);
      assert.equal(await second.buckets.create(bucketRecord('shared')), false);
      assert.deepEqual(await second.buckets.list(), [bucketRecord('shared')]);
    } finally {
      await first.close();
      await second.close();
      await server.dropDatabase(database);
    }
  });

  test('data survives close and reopen; migrate again is a no-op', async () => {
    const database = await takeDatabase();
    const connectionString = server.connectionString(database);
    try {
      const first = await openPostgresMetaStore({ connectionString });
      assert.equal(first.dialect, 'postgres');
      await first.buckets.create(bucketRecord('kept'));
      const big = objectRecord('kept', 'big', { size: 5 * 2 ** 40 + 1, segments: [{ digest: digestOf('big'), size: 5 * 2 ** 40 + 1 }] });
      await first.objects.put(big);
      await first.identity.createUser(userRecord('u'), auditEntry('admin:CreateUser', 'api:users/u'));
      await first.close();

      const second = await openPostgresMetaStore({ connectionString });
      try {
        await second.migrate();
        assert.deepEqual(await second.buckets.list(), [bucketRecord('kept')]);
        // Sizes above 2^32 and the bigint ids come back as exact JS numbers.
        assert.deepEqual(await second.objects.get('kept', 'big'), big);
        assert.equal(await second.identity.generation(), 1);
        const [entry] = await second.audit.query({ limit: 10 });
        assert.equal(typeof entry?.id, 'number');
      } finally {
        await second.close();
      }
      assert.equal(await count(database, 'select count(*) as n from astore_migration'), Object.keys(migrations(postgresHooks)).length);
    } finally {
      await server.dropDatabase(database);
    }
  });

  test('refuses a database whose encoding is not UTF8', async () => {
    const database = `meta_${++databases}`;
    await (await cluster()).query('postgres', `create database "${database}" template template0 encoding 'SQL_ASCII' locale 'C'`);
    try {
      await assert.rejects(openPostgresMetaStore({ connectionString: server.connectionString(database) }), /UTF8/);
    } finally {
      await server.dropDatabase(database);
    }
  });

  test('a server that is not there fails the open, it does not hang', async () => {
    await assert.rejects(openPostgresMetaStore({ connectionString: 'postgresql://postgres@127.0.0.1:1/none', connectTimeoutMs: 5_000 }));
  });
});

describe('PostgreSQL: concurrent writers keep the contracts', () => {
  let opened: Opened | undefined;
  const store = (): MetaStore => opened!.store;
  beforeEach(async () => {
    // More connections than writers, opened before the race (a new connection takes longer than a
    // transaction), so the writers really run at once in the server.
    opened = await openFresh({ poolSize: 24 });
    await Promise.all(Array.from({ length: 24 }, () => opened!.store.blobs.references(digestOf('warm-up'), 1)));
  });
  afterEach(async () => {
    await opened?.cleanup();
    opened = undefined;
  });

  test('20 puts of one key at once: each replaces the one before it, one whole record and its segments remain', async () => {
    await store().buckets.create(bucketRecord('b'));
    const versions = Array.from({ length: 20 }, (_, i) =>
      objectRecord('b', 'race', { etag: `"v${i}"`, size: i + 1, segments: Array.from({ length: i + 1 }, (_, s) => ({ digest: digestOf(`race-${i}-${s % 3}`), size: 1 })) }),
    );
    const replaced = await Promise.all(versions.map((version) => store().objects.put(version)));

    // Serial behaviour: exactly one put found no object, and every other version was replaced once.
    assert.equal(replaced.filter((record) => record === null).length, 1);
    const replacedEtags = replaced.flatMap((record) => (record ? [record.etag] : []));
    assert.equal(new Set(replacedEtags).size, 19);
    const final = await store().objects.get('b', 'race');
    assert.ok(final);
    assert.ok(!replacedEtags.includes(final.etag), 'the last version is the one nobody replaced');
    assert.deepEqual(final, versions.find((version) => version.etag === final.etag));
    assert.equal(await count(opened!.database, 'select count(*) as n from objects'), 1);
    assert.equal(await count(opened!.database, 'select count(*) as n from object_segments'), final.segments.length, 'no segments of replaced versions');
  });

  test('20 puts of different keys at once, sharing blobs: all land, each blob row once', async () => {
    await store().buckets.create(bucketRecord('b'));
    const shared = [digestOf('shared-1'), digestOf('shared-2'), digestOf('shared-3')];
    // Segments in different orders, so the writers would lock the shared blob rows in different orders.
    const objects = Array.from({ length: 20 }, (_, i) =>
      objectRecord('b', `k${String(i).padStart(2, '0')}`, { size: 4, segments: [...(i % 2 ? shared : [...shared].reverse()), digestOf(`own-${i}`)].map((digest) => ({ digest, size: 1 })) }),
    );
    assert.deepEqual(await Promise.all(objects.map((object) => store().objects.put(object))), Array(20).fill(null));
    assert.deepEqual(
      (await store().objects.list({ bucket: 'b', limit: 100 })).map((summary) => summary.key),
      objects.map((object) => object.key),
    );
    assert.equal(await count(opened!.database, 'select count(*) as n from blobs'), 23);
  });

  test('concurrent deletes of one key: exactly one gets the record', async () => {
    await store().buckets.create(bucketRecord('b'));
    const object = objectRecord('b', 'k');
    await store().objects.put(object);
    const deleted = await Promise.all(Array.from({ length: 10 }, () => store().objects.delete('b', 'k')));
    assert.deepEqual(deleted.filter((record) => record !== null), [object]);
  });

  test('deleting a bucket while objects are put into it: it is deleted only if no put landed, and nothing is left in it', async () => {
    for (let round = 0; round < 5; round++) {
      const bucket = `b${round}`;
      await store().buckets.create(bucketRecord(bucket));
      const puts = Array.from({ length: 8 }, (_, i) => store().objects.put(objectRecord(bucket, `k${i}`)));
      const deletion = (async () => {
        await delay(round);
        return store().buckets.delete(bucket);
      })();
      const putOutcomes = outcomes(await Promise.allSettled(puts));
      const result = await deletion;
      const left = await count(opened!.database, 'select count(*) as n from objects where bucket = $1', [bucket]);
      if (result === 'deleted') {
        assert.deepEqual(putOutcomes, Array(8).fill('NoSuchBucket'));
        assert.equal(left, 0);
        assert.equal(await store().buckets.get(bucket), null);
      } else {
        assert.equal(result, 'not-empty');
        assert.equal(left, putOutcomes.filter((outcome) => outcome === 'ok').length);
        assert.ok(putOutcomes.every((outcome) => outcome === 'ok' || outcome === 'NoSuchBucket'));
      }
    }
  });

  test('touch racing deleteIfGarbage: a blob has its row exactly when it has its bytes', async () => {
    // The bytes, as ContentStore.ingest and the collector treat them: ingest touches the row, then
    // stores the bytes if they are missing; the collector removes them under the row's lock.
    const bytes = new Set<string>();
    const digests = Array.from({ length: 20 }, (_, i) => digestOf(`contended-${i}`));
    for (const digest of digests) {
      await store().blobs.touch(digest, 1);
      bytes.add(digest);
    }
    const ingest = async (digest: string): Promise<void> => {
      await store().blobs.touch(digest, 1);
      bytes.add(digest);
    };
    const collect = (digest: string): Promise<boolean> =>
      store().blobs.deleteIfGarbage(digest, FUTURE(), async () => {
        await delay(5);
        bytes.delete(digest);
      });
    await Promise.all(
      digests.flatMap((digest, i) => [
        collect(digest),
        (async () => {
          await delay(i % 4);
          await ingest(digest);
        })(),
        (async () => {
          await delay(3);
          await collect(digest);
        })(),
      ]),
    );
    for (const digest of digests) {
      assert.equal((await store().blobs.get(digest)) !== null, bytes.has(digest), digest);
    }
  });

  test('putManifest racing expireLinks: a stored manifest has every blob it names linked', async () => {
    for (let round = 0; round < 12; round++) {
      // Many layers, so the push holds its links for a while; the collector starts at a different
      // moment of the push each round: before it, during it, after it.
      const layers = Array.from({ length: 200 }, (_, i) => layerLink('r', `round-${round}-layer-${i}`));
      await Promise.all(layers.map((layer) => store().registry.linkBlob(layer)));
      const manifest = manifestRecord('r', `m${round}`, { blobs: layers.map((layer) => layer.digest) });
      const push = store().registry.putManifest(manifest, [`t${round}`]);
      await delay(round % 6);
      const [pushed] = outcomes(await Promise.allSettled([push, store().registry.expireLinks(FUTURE(), 1_000)]));
      if (pushed === 'ok') {
        for (const layer of layers) assert.notEqual(await store().registry.getLayer('r', layer.digest), null, `m${round} names ${layer.digest}`);
      } else {
        assert.equal(pushed, 'ManifestBlobUnknown');
        assert.equal(await store().registry.getManifest('r', { tag: `t${round}` }), null);
      }
    }
  });

  test('re-pushing manifests with tags while deleteUntaggedManifests runs: every tag points at a stored manifest', async () => {
    const manifests = Array.from({ length: 20 }, (_, i) => manifestRecord('r', `old-${i}`, { createdAt: new Date(T0) }));
    // Each manifest is first pushed untagged and old (a leftover the collector takes), then re-pushed with a tag.
    const pushes = manifests.map(async (manifest, i) => {
      await delay(i);
      await store().registry.putManifest(manifest);
      await store().registry.putManifest({ ...manifest, createdAt: new Date() }, [`t${i}`]);
    });
    assert.deepEqual(await whileCollecting(pushes, () => store().registry.deleteUntaggedManifests(new Date(T0 + 1_000), 100)), Array(20).fill('ok'));
    const tags = await store().registry.listTags('r', undefined, 100);
    assert.equal(tags?.length, 20);
    for (const tag of tags!) assert.notEqual(await store().registry.getManifest('r', { tag }), null, tag);
    assert.equal(await count(opened!.database, 'select count(*) as n from tags t where not exists (select 1 from manifests m where m.repository = t.repository and m.digest = t.digest)'), 0);
  });

  test('pushing indexes while deleteUntaggedManifests runs: every manifest a stored index names is stored', async () => {
    const children = Array.from({ length: 20 }, (_, i) => manifestRecord('r', `child-${i}`, { createdAt: new Date(T0) }));
    const indexes = children.map((child, i) => manifestRecord('r', `index-${i}`, { mediaType: OCI_INDEX, manifests: [child.digest], createdAt: new Date() }));
    // Each child is pushed untagged and old (a leftover the collector takes), then an index naming it.
    const pushes = indexes.map(async (index, i) => {
      await delay(i);
      await store().registry.putManifest(children[i]!);
      await store().registry.putManifest(index, [`t${i}`]);
    });
    const pushOutcomes = await whileCollecting(pushes, () => store().registry.deleteUntaggedManifests(new Date(T0 + 1_000), 100));
    assert.ok(pushOutcomes.every((outcome) => outcome === 'ok' || outcome === 'ManifestBlobUnknown'), pushOutcomes.join());
    for (const [i, index] of indexes.entries()) {
      const stored = await store().registry.getManifest('r', { digest: index.digest });
      assert.equal(stored !== null, pushOutcomes[i] === 'ok');
      if (stored) assert.notEqual(await store().registry.getManifest('r', { digest: children[i]!.digest }), null, `index-${i} names child-${i}`);
    }
  });

  test('linkBlob and putManifest of one layer in many repositories at once: every repository, link and manifest lands', async () => {
    const repositories = Array.from({ length: 12 }, (_, i) => `team/app-${i % 6}`);
    const layer = digestOf('base layer');
    await Promise.all(
      repositories.map(async (repository, i) => {
        await store().registry.linkBlob({ repository, digest: layer, blob: layer, size: 3 });
        await store().registry.putManifest(manifestRecord(repository, `image-${i}`, { blobs: [layer] }), ['latest']);
      }),
    );
    assert.deepEqual(await store().registry.listRepositories(undefined, 100), [...new Set(repositories)].sort());
    assert.equal((await store().blobs.references(layer, 100)).layers.length, 6);
    assert.equal(await count(opened!.database, 'select count(*) as n from manifests'), 12);
    assert.equal(await count(opened!.database, 'select count(*) as n from blobs'), 1);
    for (const repository of new Set(repositories)) assert.equal((await store().registry.getManifest(repository, { tag: 'latest' }))?.mediaType, OCI_MANIFEST);
  });

  test('appendChunk racing completeUpload with the expected size: one wins, the other fails as the contract says', async () => {
    for (let round = 0; round < 10; round++) {
      const uploadId = `u${round}`;
      await store().registry.createUpload({ uploadId, repository: 'r', createdAt: new Date(T0) });
      await store().registry.appendChunk(uploadId, 0, { digest: digestOf(`${uploadId}-first`), size: 2 });
      const link = { repository: 'r', digest: digestOf(`${uploadId}-whole`), blob: digestOf(`${uploadId}-whole`), size: 2 };
      const [append, complete] = outcomes(
        await Promise.allSettled([store().registry.appendChunk(uploadId, 2, { digest: digestOf(`${uploadId}-late`), size: 1 }), store().registry.completeUpload(uploadId, link, 2)]),
      );
      const linked = (await store().registry.getLayer('r', link.digest)) !== null;
      if (complete === 'ok') {
        assert.equal(append, 'BlobUploadUnknown');
        assert.ok(linked);
        assert.equal(await store().registry.getUpload(uploadId), null);
      } else {
        assert.equal(complete, 'RangeNotSatisfiable');
        assert.equal(append, 'ok');
        assert.ok(!linked);
        assert.equal((await store().registry.getUpload(uploadId))?.size, 3);
      }
    }
  });

  test('concurrent completes of one multipart upload: one completes, the others get NoSuchUpload', async () => {
    await store().buckets.create(bucketRecord('b'));
    await store().uploads.create({ uploadId: 'mp', bucket: 'b', key: 'k', initiated: new Date(T0), headers: {}, userMetadata: {} });
    const object: ObjectRecord = objectRecord('b', 'k');
    const results = outcomes(await Promise.allSettled(Array.from({ length: 6 }, () => store().uploads.complete('mp', object))));
    assert.deepEqual([...results].sort(), ['NoSuchUpload', 'NoSuchUpload', 'NoSuchUpload', 'NoSuchUpload', 'NoSuchUpload', 'ok']);
    assert.deepEqual(await store().objects.get('b', 'k'), object);
  });

  test('concurrent identity changes of every kind each bump the generation once and write one audit entry', async () => {
    await store().identity.createUser(userRecord('member'));
    await store().identity.createGroup(groupRecord('team'));
    const before = await store().identity.generation();
    const audit = (action: string) => auditEntry(action, 'api:identity');
    const changes = [
      ...Array.from({ length: 10 }, (_, i) => store().identity.createUser(userRecord(`user-${i}`), audit('admin:CreateUser'))),
      ...Array.from({ length: 5 }, (_, i) => store().identity.createGroup(groupRecord(`group-${i}`), audit('admin:CreateGroup'))),
      // The same policy from ten writers: one creates it, nine update it; all count.
      ...Array.from({ length: 10 }, (_, i) => store().identity.putPolicy(policyRecord('shared', { updatedAt: new Date(T0 + i) }), audit('admin:PutPolicy'))),
      // The same membership five times: idempotent, and each call counts.
      ...Array.from({ length: 5 }, () => store().identity.addMember('team', 'member', audit('admin:AddGroupMember'))),
    ];
    const results = await Promise.all(changes);
    assert.equal(results.filter((result) => result === 'created').length, 1);
    assert.equal(results.filter((result) => result === 'updated').length, 9);
    assert.equal(await store().identity.generation(), before + 30);
    const entries = await store().audit.query({ limit: 100 });
    assert.equal(entries.length, 30);
    assert.equal(new Set(entries.map((entry) => entry.id)).size, 30);
    assert.deepEqual((await store().identity.getGroup('team'))?.members, ['member']);
  });

  test('deleting a user while keys are created and memberships added for it: no key or membership outlives the user', async () => {
    for (let round = 0; round < 5; round++) {
      const user = `user-${round}`;
      await store().identity.createUser(userRecord(user));
      await store().identity.createGroup(groupRecord(`group-${round}`));
      const writes = [
        ...Array.from({ length: 4 }, (_, i) =>
          store().identity.createAccessKey({ accessKeyId: `AK${round}X${i}`, user, secretCiphertext: 'sealed', createdAt: new Date(T0) }),
        ),
        store().identity.addMember(`group-${round}`, user),
      ];
      const deletion = (async () => {
        await delay(round);
        return store().identity.deleteUser(user);
      })();
      const writeOutcomes = outcomes(await Promise.allSettled(writes));
      assert.equal(await deletion, true);
      assert.ok(writeOutcomes.every((outcome) => outcome === 'ok' || outcome === 'NoSuchEntity'), writeOutcomes.join());
      assert.equal(await store().identity.getUser(user), null);
      assert.deepEqual(await store().identity.listAccessKeys(user), []);
      assert.deepEqual((await store().identity.getGroup(`group-${round}`))?.members, []);
    }
  });
});
