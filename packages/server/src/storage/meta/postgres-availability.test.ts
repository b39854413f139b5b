import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { isAstoreError } from '../../core/errors.ts';
import { GuardedPool, isServerUnavailable } from './postgres-availability.ts';

// A fake pg Pool: this is pure policy (which errors mean "down", the circuit, what a broken client
// becomes). test/resilience/meta-postgres-outage.test.ts stops and starts a real server.

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const lost = () => new Error('Connection terminated unexpectedly');
const databaseError = (code: string, message = `error ${code}`) => Object.assign(new pg.DatabaseError(message, 0, 'error'), { code });

interface FakeServer {
  down: boolean;
  connects: number;
  /** While set, connects wait for it. */
  hold?: Promise<void>;
  /** Answers a statement; throws to fail it. */
  answer: (text: string) => void;
  statements: string[];
  /** The `destroy` argument of each release. */
  releases: boolean[];
}

function fakePool(): { pool: pg.Pool; server: FakeServer } {
  const server: FakeServer = { down: false, connects: 0, answer: () => {}, statements: [], releases: [] };
  const client = {
    async query(text: string) {
      server.statements.push(text);
      server.answer(text);
      return { command: 'SELECT', rowCount: 0, rows: [] };
    },
    release(destroy?: boolean) {
      server.releases.push(destroy === true);
    },
  };
  const pool = {
    options: {},
    on() {},
    async connect() {
      server.connects++;
      await server.hold;
      if (server.down) throw refused();
      return client;
    },
    async end() {},
  };
  return { pool: pool as unknown as pg.Pool, server };
}

const limits = { breakAfterFailures: 3, halfOpenAfterMs: 100 };

function open(): { db: Kysely<Record<string, never>>; guarded: GuardedPool; server: FakeServer } {
  const { pool, server } = fakePool();
  const guarded = new GuardedPool(pool, limits);
  return { db: new Kysely({ dialect: new PostgresDialect({ pool: guarded }) }), guarded, server };
}

const unavailable = (pattern: RegExp) => (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && pattern.test(err.message);

test('a server that cannot be reached is ServiceUnavailable naming the cause, not an internal error', async () => {
  const { db, server } = open();
  server.down = true;
  await assert.rejects(sql`select 1`.execute(db), (err: unknown) => {
    assert.ok(isAstoreError(err, 'ServiceUnavailable'));
    assert.match(err.message, /PostgreSQL metadata store is unavailable \(connect ECONNREFUSED 127\.0\.0\.1:5432\); retry shortly$/);
    assert.equal((err.cause as Error).message, refused().message);
    return true;
  });
});

test('after breakAfterFailures the circuit opens: refused at once without connecting; one trial after halfOpenAfterMs closes it', async () => {
  const { db, guarded, server } = open();
  server.down = true;
  for (let i = 0; i < limits.breakAfterFailures; i++) await assert.rejects(sql`select 1`.execute(db), unavailable(/ECONNREFUSED/));
  assert.equal(guarded.state, 'down');
  const connects = server.connects;
  await assert.rejects(sql`select 1`.execute(db), unavailable(/unavailable \(connect ECONNREFUSED/));
  assert.equal(server.connects, connects, 'an open circuit does not try the server');

  server.down = false;
  await sleep(limits.halfOpenAfterMs + 20);
  // The trial is in flight: the others are refused, not queued behind it.
  let letThrough: () => void = () => {};
  server.hold = new Promise<void>((resolve) => (letThrough = resolve));
  const trial = sql`select 1`.execute(db);
  await sleep(5);
  assert.equal(guarded.state, 'probing');
  await assert.rejects(sql`select 1`.execute(db), unavailable(/unavailable/));
  letThrough();
  await trial;
  assert.equal(guarded.state, 'up');
  await sql`select 1`.execute(db);
});

test('a failed trial opens the circuit again for another halfOpenAfterMs', async () => {
  const { db, guarded, server } = open();
  server.down = true;
  for (let i = 0; i < limits.breakAfterFailures; i++) await assert.rejects(sql`select 1`.execute(db));
  await sleep(limits.halfOpenAfterMs + 20);
  const connects = server.connects;
  await assert.rejects(sql`select 1`.execute(db), unavailable(/ECONNREFUSED/));
  assert.equal(server.connects, connects + 1, 'one trial');
  await assert.rejects(sql`select 1`.execute(db), unavailable(/unavailable/));
  assert.equal(server.connects, connects + 1, 'refused again without connecting');
  assert.equal(guarded.state, 'down');
});

test('a connection lost mid-transaction fails it with ServiceUnavailable (the ROLLBACK is not sent on the broken connection), and the client is destroyed', async () => {
  const { db, server } = open();
  server.answer = (text) => {
    if (text.startsWith('insert')) throw lost();
  };
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx);
      await sql`insert into t values (1)`.execute(trx);
    }),
    unavailable(/unavailable \(Connection terminated unexpectedly\)/),
  );
  assert.ok(!server.statements.includes('commit'), 'never committed');
  assert.ok(!server.statements.includes('rollback'), 'nothing more is sent on the broken connection');
  assert.deepEqual(server.releases, [true]);
});

test('a COMMIT whose answer was lost says the change may or may not have been applied; one never sent does not', async () => {
  const { db, server } = open();
  server.answer = (text) => {
    if (text === 'commit') throw lost();
  };
  await assert.rejects(
    db.transaction().execute((trx) => sql`insert into t values (1)`.execute(trx)),
    unavailable(/lost during COMMIT \(Connection terminated unexpectedly\): the change may or may not have been applied/),
  );
  server.answer = (text) => {
    if (text === 'commit') throw new Error('Client has encountered a connection error and is not queryable');
  };
  await assert.rejects(
    db.transaction().execute((trx) => sql`insert into t values (1)`.execute(trx)),
    (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && !/may or may not/.test(err.message),
  );
  assert.deepEqual(server.releases, [true, true]);
});

test("a statement's own errors pass through unchanged and never open the circuit; the client goes back to the pool", async () => {
  const { db, guarded, server } = open();
  server.answer = () => {
    throw databaseError('23505', 'duplicate key value violates unique constraint');
  };
  for (let i = 0; i < limits.breakAfterFailures * 2; i++) {
    await assert.rejects(sql`insert into t values (1)`.execute(db), (err: unknown) => err instanceof pg.DatabaseError && err.code === '23505');
  }
  assert.equal(guarded.state, 'up');
  assert.ok(server.releases.every((destroy) => !destroy));
});

test('statement_timeout (57014) is ServiceUnavailable but does not count as the server being down', async () => {
  const { db, guarded, server } = open();
  server.answer = () => {
    throw databaseError('57014', 'canceling statement due to statement timeout');
  };
  for (let i = 0; i < limits.breakAfterFailures * 2; i++) await assert.rejects(sql`select 1`.execute(db), unavailable(/did not answer in time/));
  assert.equal(guarded.state, 'up');
});

test('which errors mean the server cannot be reached or went away', () => {
  const down = [
    refused(),
    lost(),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated due to connection timeout'),
    new Error('Query read timeout'),
    Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    databaseError('57P01', 'terminating connection due to administrator command'),
    databaseError('57P03', 'the database system is shutting down'),
    databaseError('08006'),
    databaseError('53300', 'sorry, too many clients already'),
    new AggregateError([refused(), refused()]),
    new Error('wrapped', { cause: refused() }),
  ];
  const notDown = [databaseError('40001'), databaseError('23503'), databaseError('42P01'), databaseError('28P01', 'password authentication failed'), new TypeError('x is undefined')];
  assert.deepEqual(down.map((err) => isServerUnavailable(err)), down.map(() => true));
  assert.deepEqual(notDown.map((err) => isServerUnavailable(err)), notDown.map(() => false));
});
