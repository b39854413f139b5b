import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AstoreError, isAstoreError } from '../../core/errors.ts';
import { ResilientBlobStore, backendFailure } from './resilient.ts';
import { BlobNotFoundError, type BlobStore } from './types.ts';

/** A backend that fails while `down` is set, counting calls (a fake is fine: this is pure policy). */
function flakyStore() {
  const state = { down: false, calls: 0, failNext: 0 };
  const answer = async <T>(value: T): Promise<T> => {
    state.calls++;
    if (state.down || state.failNext-- > 0) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED' });
    return value;
  };
  const store: BlobStore = {
    name: 'flaky',
    stat: (key) => (key === 'missing' ? (state.calls++, Promise.reject(new BlobNotFoundError(key))) : answer({ size: 1 })),
    get: () => answer(Readable.from([Buffer.from('x')])),
    put: () => answer({ size: 1 }),
    move: () => answer(undefined),
    delete: () => answer(undefined),
    async *list() {
      yield await answer({ key: 'a', size: 1 });
    },
    close: async () => {},
  };
  return { store, state };
}

const fast = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5, breakAfterFailures: 3, halfOpenAfterMs: 100 };

test('a transient failure is retried and the call succeeds', async () => {
  const { store, state } = flakyStore();
  const resilient = new ResilientBlobStore(store, fast);
  state.failNext = 2;
  assert.deepEqual(await resilient.stat('k'), { size: 1 });
  assert.equal(state.calls, 3);
  assert.equal(resilient.state, 'up');
});

test('a missing blob is an answer: not retried, never opens the circuit', async () => {
  const { store, state } = flakyStore();
  const resilient = new ResilientBlobStore(store, fast);
  for (let i = 0; i < 10; i++) await assert.rejects(resilient.stat('missing'), BlobNotFoundError);
  assert.equal(state.calls, 10);
  assert.equal(resilient.state, 'up');
});

test('a put is not retried (its body is consumed once)', async () => {
  const { store, state } = flakyStore();
  const resilient = new ResilientBlobStore(store, fast);
  state.failNext = 1;
  await assert.rejects(resilient.put('k', Readable.from([])), /ECONNREFUSED/);
  assert.equal(state.calls, 1);
});

test('a backend that stays down opens the circuit: calls fail at once with ServiceUnavailable, and recover when it is back', async () => {
  const { store, state } = flakyStore();
  const resilient = new ResilientBlobStore(store, fast);
  state.down = true;
  for (let i = 0; i < 3; i++) await assert.rejects(resilient.stat('k'), /ECONNREFUSED/);
  assert.equal(resilient.state, 'down');
  const before = state.calls;
  await assert.rejects(resilient.get('k'), (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && /flaky blob store is unavailable \(connect ECONNREFUSED/.test(err.message));
  await assert.rejects(resilient.put('k', Readable.from([])), (err: unknown) => isAstoreError(err, 'ServiceUnavailable'));
  assert.equal(state.calls, before, 'an open circuit does not touch the backend');

  state.down = false;
  await sleep(120);
  assert.deepEqual(await resilient.stat('k'), { size: 1 }, 'one trial call closes the circuit');
  assert.equal(resilient.state, 'up');
  const listed = [];
  for await (const item of resilient.list('')) listed.push(item.key);
  assert.deepEqual(listed, ['a']);
});

test('a backend that cannot be reached is a ServiceUnavailable from the first failed call on, not an internal error', async () => {
  const { store, state } = flakyStore();
  const resilient = new ResilientBlobStore(store, fast);
  state.failNext = 3;
  await assert.rejects(resilient.stat('k'), (err: unknown) => isAstoreError(err, 'ServiceUnavailable') && /flaky blob store failed \(connect ECONNREFUSED/.test(err.message));
  assert.equal(state.calls, 3, 'retried before it failed');
  assert.equal(resilient.state, 'up', 'one failed call does not open the circuit');
});

test('backend answers map by their status: 5xx to ServiceUnavailable, 429 and SlowDown to SlowDown, 4xx and bugs stay as they are', () => {
  const withStatus = (status: number, name = 'Error') => Object.assign(new Error(`status ${status}`), { name, $metadata: { httpStatusCode: status } });
  assert.equal(backendFailure(withStatus(500)), 'ServiceUnavailable');
  assert.equal(backendFailure(withStatus(503, 'SlowDown')), 'SlowDown');
  assert.equal(backendFailure(Object.assign(new Error('throttled'), { statusCode: 429 })), 'SlowDown');
  assert.equal(backendFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'ServiceUnavailable');
  assert.equal(backendFailure(new Error('wrapped', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) })), 'ServiceUnavailable');
  assert.equal(backendFailure(withStatus(403, 'AccessDenied')), undefined);
  assert.equal(backendFailure(new TypeError('x is undefined')), undefined);
});

test("an error of the client's body during a put (an AstoreError) is passed on and never opens the circuit", async () => {
  const failing: BlobStore = { ...flakyStore().store, put: () => Promise.reject(new AstoreError('EntityTooLarge')) };
  const resilient = new ResilientBlobStore(failing, fast);
  for (let i = 0; i < 5; i++) await assert.rejects(resilient.put('k', Readable.from([])), (err: unknown) => isAstoreError(err, 'EntityTooLarge'));
  assert.equal(resilient.state, 'up');
});
