import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { StoreRef } from './fixtures.ts';

const MINUTE = 60_000;

/** Waits until the lease `name` has expired (get() says free), at most `limitMs`. */
async function untilExpired(store: StoreRef, name: string, limitMs = 5_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while ((await store().leases.get(name)) !== null) {
    assert.ok(Date.now() < deadline, `lease ${name} did not expire within ${limitMs} ms`);
    await delay(20);
  }
}

export function leaseTests(store: StoreRef): void {
  test('a free lease goes to the first holder; another holder is refused while it runs', async () => {
    const before = Date.now();
    assert.equal(await store().leases.acquire('gc', 'replica-a', MINUTE), true);
    assert.equal(await store().leases.acquire('gc', 'replica-b', MINUTE), false);
    const lease = await store().leases.get('gc');
    assert.equal(lease?.name, 'gc');
    assert.equal(lease?.holder, 'replica-a', 'the refused acquire changed nothing');
    assert.ok(lease.expiresAt.getTime() >= before + MINUTE && lease.expiresAt.getTime() <= Date.now() + MINUTE, lease.expiresAt.toISOString());
  });

  test('acquiring a lease one holds renews it: the expiry moves to now + TTL', async () => {
    assert.equal(await store().leases.acquire('gc', 'replica-a', 1_000), true);
    const first = (await store().leases.get('gc'))!.expiresAt.getTime();
    await delay(5);
    assert.equal(await store().leases.acquire('gc', 'replica-a', MINUTE), true);
    const renewed = (await store().leases.get('gc'))!.expiresAt.getTime();
    assert.ok(renewed >= first + MINUTE - 1_000, `renewed to ${renewed}, was ${first}`);
  });

  test('an expired lease goes to the next holder, and its old holder can neither renew nor release it', async () => {
    assert.equal(await store().leases.acquire('gc', 'replica-a', 500), true);
    assert.equal(await store().leases.acquire('gc', 'replica-b', MINUTE), false);
    await untilExpired(store, 'gc');
    assert.equal(await store().leases.acquire('gc', 'replica-b', MINUTE), true);
    assert.equal(await store().leases.acquire('gc', 'replica-a', MINUTE), false);
    assert.equal(await store().leases.release('gc', 'replica-a'), false);
    assert.equal((await store().leases.get('gc'))?.holder, 'replica-b');
  });

  test('renewing before expiry keeps the lease past its first TTL', async () => {
    const ttlMs = 500;
    const until = Date.now() + 3 * ttlMs;
    assert.equal(await store().leases.acquire('gc', 'replica-a', ttlMs), true);
    while (Date.now() < until) {
      assert.equal(await store().leases.acquire('gc', 'replica-b', MINUTE), false, 'the other holder is refused throughout');
      await delay(ttlMs / 5);
      assert.equal(await store().leases.acquire('gc', 'replica-a', ttlMs), true, 'renewal');
    }
    assert.equal((await store().leases.get('gc'))?.holder, 'replica-a');
  });

  test('release frees the lease for its holder only; a released lease is free at once', async () => {
    assert.equal(await store().leases.acquire('gc', 'replica-a', MINUTE), true);
    assert.equal(await store().leases.release('gc', 'replica-b'), false);
    assert.equal((await store().leases.get('gc'))?.holder, 'replica-a');
    assert.equal(await store().leases.release('gc', 'replica-a'), true);
    assert.equal(await store().leases.get('gc'), null);
    assert.equal(await store().leases.release('gc', 'replica-a'), false, 'releasing twice');
    assert.equal(await store().leases.acquire('gc', 'replica-b', MINUTE), true);
  });

  test('leases of different names are independent', async () => {
    assert.equal(await store().leases.acquire('gc', 'replica-a', MINUTE), true);
    assert.equal(await store().leases.acquire('reindex', 'replica-b', MINUTE), true);
    assert.equal(await store().leases.get('nothing'), null);
    assert.equal(await store().leases.release('gc', 'replica-a'), true);
    assert.equal((await store().leases.get('reindex'))?.holder, 'replica-b');
  });

  test('a TTL that is not a positive integer is refused', async () => {
    for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await assert.rejects(store().leases.acquire('gc', 'replica-a', ttl), RangeError, String(ttl));
    }
    assert.equal(await store().leases.get('gc'), null);
  });

  test('20 holders racing for a free lease, then for the expired one: exactly one wins each time', async () => {
    const holders = Array.from({ length: 20 }, (_, i) => `replica-${i}`);
    const race = async (ttlMs: number): Promise<string[]> => {
      const won = await Promise.all(holders.map((holder) => store().leases.acquire('gc', holder, ttlMs)));
      return holders.filter((_, i) => won[i]);
    };
    // Long enough to outlast the race itself on a slow machine, short enough to wait out.
    const first = await race(1_000);
    assert.equal(first.length, 1, `winners: ${first.join()}`);
    assert.equal((await store().leases.get('gc'))?.holder, first[0]);

    await untilExpired(store, 'gc');
    const second = await race(MINUTE);
    assert.equal(second.length, 1, `winners: ${second.join()}`);
    assert.equal((await store().leases.get('gc'))?.holder, second[0]);
    // While it runs, every other holder is refused and its holder renews.
    const again = await race(MINUTE);
    assert.deepEqual(again, second);
  });
}
