import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WalSyncer } from './sqlite.ts';

/** A WalSyncer whose flushes are recorded and finished by hand. */
class ScriptedSyncer extends WalSyncer {
  readonly flushes: { startedAt: number; finish: () => void }[] = [];
  clock = 0;
  constructor() {
    super('/nonexistent-wal');
  }
  protected override flush(): Promise<void> {
    return new Promise((resolve) => this.flushes.push({ startedAt: this.clock, finish: resolve }));
  }
}

test('concurrent commits share flushes, and each waits for a flush that started after it', async () => {
  const s = new ScriptedSyncer();
  const done: string[] = [];
  s.clock = 1;
  const a = s.sync().then(() => done.push('a'));
  s.clock = 2; // b and c commit while a's flush runs: that flush may have missed them
  const b = s.sync().then(() => done.push('b'));
  const c = s.sync().then(() => done.push('c'));
  assert.equal(s.flushes.length, 1);
  s.flushes[0]!.finish();
  await a;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(done, ['a'], 'b and c are not acknowledged by the flush that started before them');
  assert.equal(s.flushes.length, 2, 'one more flush serves both b and c');
  assert.equal(s.flushes[1]!.startedAt, 2);
  s.flushes[1]!.finish();
  await Promise.all([b, c]);
  assert.deepEqual(done.sort(), ['a', 'b', 'c']);
});

test('a failed flush fails the writers waiting on it', async () => {
  class Failing extends WalSyncer {
    protected override flush(): Promise<void> {
      return Promise.reject(new Error('EIO'));
    }
  }
  await assert.rejects(new Failing('/x').sync(), /EIO/);
});
