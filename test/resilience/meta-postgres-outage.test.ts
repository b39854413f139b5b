import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isAstoreError } from '../../packages/server/src/core/errors.ts';
import { bucketRecord, digestOf, objectRecord } from '../../packages/server/src/storage/meta/conformance/fixtures.ts';
import { openPostgresMetaStore } from '../../packages/server/src/storage/meta/postgres.ts';
import type { MetaStore } from '../../packages/server/src/storage/meta/types.ts';
import { startPostgres, type PostgresServer } from '../helpers/postgres.ts';

/**
 * The PostgreSQL MetaStore against a real server that stops, crashes and comes back on the same port,
 * and a session the server terminates mid-transaction: every call fails with ServiceUnavailable while
 * the server is away (never a raw driver error), the store serves again by itself once it is back, on
 * fresh connections, and an interrupted transaction changes nothing.
 */
let postgres: PostgresServer;
let databases = 0;
const opened: MetaStore[] = [];

before(async () => {
  // Crash-safe: an immediate stop (a crash) must not lose what was committed before it.
  postgres = await startPostgres({ crashSafe: true });
});
after(async () => {
  for (const store of opened) await store.close().catch(() => {});
  await postgres?.stop();
});

async function openStore(applicationName = 'astore'): Promise<{ store: MetaStore; database: string }> {
  const database = `outage_${++databases}`;
  await postgres.createDatabase(database);
  const store = await openPostgresMetaStore({ connectionString: postgres.connectionString(database), poolSize: 4, applicationName });
  opened.push(store);
  return { store, database };
}

for (const mode of ['fast', 'immediate'] as const) {
  test(`the server stopping (${mode}) and coming back: ServiceUnavailable while it is away, then served again by itself on fresh connections`, async (t) => {
    const { store } = await openStore();
    await store.buckets.create(bucketRecord('b'));
    const object = objectRecord('b', 'k');
    await store.objects.put(object);
    // Every connection of the pool open and idle when the server goes.
    await Promise.all(Array.from({ length: 8 }, () => store.objects.get('b', 'k')));

    await postgres.down(mode);
    for (let i = 0; i < 10; i++) {
      const started = Date.now();
      await assert.rejects(store.objects.get('b', 'k'), (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && /PostgreSQL metadata store/.test(err.message));
      await assert.rejects(store.objects.put(objectRecord('b', `while-down-${i}`)), (err: unknown) => isAstoreError(err, 'ServiceUnavailable'));
      assert.ok(Date.now() - started < 2_000, `refused within 2 s, not after a connect timeout (${Date.now() - started} ms)`);
    }

    const upAt = Date.now();
    await postgres.up();
    for (;;) {
      try {
        await store.buckets.get('b');
        break;
      } catch (err) {
        assert.ok(isAstoreError(err, 'ServiceUnavailable'), String(err));
        assert.ok(Date.now() - upAt < 10_000, 'served again within 10 s of the server being back');
        await sleep(50);
      }
    }
    t.diagnostic(`served again ${Date.now() - upAt} ms after the server was back`);
    // No connection broken by the outage is handed out again: all of these run on fresh ones.
    const reads = await Promise.all(Array.from({ length: 20 }, () => store.objects.get('b', 'k')));
    assert.deepEqual(reads, Array(20).fill(object));
    assert.equal((await store.objects.list({ bucket: 'b', limit: 100 })).length, 1, 'no write refused during the outage landed');
  });
}

test('a transaction cut off mid-way by the loss of its connection fails with ServiceUnavailable and changes nothing', async () => {
  const { store, database } = await openStore('astore-cut-off');
  await store.buckets.create(bucketRecord('b'));
  const before = objectRecord('b', 'k', { etag: '"before"' });
  await store.objects.put(before);

  // Another session holds the object's row lock, so the store's put waits mid-transaction, after its
  // first statements; the server then terminates the store's session, as a failover or restart would.
  const holder = new pg.Client({ connectionString: postgres.connectionString(database) });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(`select 1 from objects where bucket = 'b' and key = 'k' for update`);
    const replacement = objectRecord('b', 'k', { etag: '"after"', segments: [{ digest: digestOf('after'), size: 1 }] });
    const put = store.objects.put(replacement);
    put.catch(() => {});
    for (let waited = 0; ; waited += 20) {
      const rows = await postgres.query<{ n: string }>(database, `select count(*) as n from pg_stat_activity where application_name = 'astore-cut-off' and wait_event_type = 'Lock'`);
      if (Number(rows[0]!.n) === 1) break;
      assert.ok(waited < 10_000, 'the put waits for the row lock');
      await sleep(20);
    }
    await postgres.query(database, `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'astore-cut-off' and wait_event_type = 'Lock'`);
    await assert.rejects(put, (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && /terminating connection/.test(err.message) && !/may or may not/.test(err.message));
  } finally {
    await holder.query('rollback').catch(() => {});
    await holder.end();
  }
  assert.deepEqual(await store.objects.get('b', 'k'), before, 'the interrupted put changed nothing');
  const blobs = await postgres.query<{ n: string }>(database, 'select count(*) as n from blobs where digest = $1', [digestOf('after')]);
  assert.equal(Number(blobs[0]!.n), 0, 'nor left a row of its own behind');
});

test('a server that stops answering mid-query, without closing the connection, holds a call no longer than statementTimeoutMs + 5 s', async (t) => {
  const database = `outage_${++databases}`;
  await postgres.createDatabase(database);
  const store = await openPostgresMetaStore({ connectionString: postgres.connectionString(database), poolSize: 1, statementTimeoutMs: 1_000, applicationName: 'astore-frozen' });
  opened.push(store);
  await store.buckets.create(bucketRecord('b'));
  const rows = await postgres.query<{ pid: number }>(database, `select pid from pg_stat_activity where application_name = 'astore-frozen'`);
  assert.equal(rows.length, 1, 'the pool holds one connection');
  const backend = rows[0]!.pid;
  // A frozen backend answers nothing, as a host that vanished would; its own statement_timeout cannot fire.
  process.kill(backend, 'SIGSTOP');
  try {
    const started = Date.now();
    await assert.rejects(store.buckets.get('b'), (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && /Query read timeout/.test(err.message));
    const waited = Date.now() - started;
    assert.ok(waited >= 6_000 && waited < 8_000, `gave up after ${waited} ms`);
    t.diagnostic(`gave up on the frozen server after ${waited} ms`);
  } finally {
    process.kill(backend, 'SIGCONT');
  }
  assert.deepEqual(await store.buckets.get('b'), bucketRecord('b'), 'served again, on a new connection');
});
