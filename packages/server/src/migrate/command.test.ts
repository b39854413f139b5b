import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { migrateCommand } from './command.ts';

/** The command's contract with the shell: usage errors exit 2 with the usage, --help exits 0. */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await migrateCommand(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) } });
  return { code, stdout, stderr };
}

describe('astore migrate (command line)', () => {
  test('--help prints the usage and exits 0', async () => {
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: astore migrate --from <config> --to <config>/);
    assert.match(stdout, /--dry-run/);
    assert.match(stdout, /Exit codes: 0 done/);
  });

  for (const [args, message] of [
    [['--from', 'a.yaml'], /both --from and --to are required/],
    [['--from', 'a.yaml', '--to', 'b.yaml', '--concurrency', '0'], /--concurrency must be an integer from 1 to 64/],
    [['--from', 'a.yaml', '--to', 'b.yaml', '--concurrency', 'many'], /--concurrency must be an integer/],
    [['--from', 'a.yaml', '--to', 'b.yaml', '--bogus'], /Unknown option '--bogus'/],
    [['--from', 'a.yaml', '--to', 'b.yaml', 'extra'], /positional/],
  ] as const) {
    test(`usage error: ${args.join(' ')} exits 2`, async () => {
      const { code, stderr } = await run([...args]);
      assert.equal(code, 2);
      assert.match(stderr, message);
      assert.match(stderr, /Usage: astore migrate/);
    });
  }

  test('an invalid configuration file exits 2, naming the key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'astore-migrate-cli-'));
    try {
      await writeFile(join(dir, 'from.json'), JSON.stringify({ dataDir: join(dir, 'a') }));
      await writeFile(join(dir, 'to.json'), JSON.stringify({ dataDir: join(dir, 'b'), storage: { meta: { driver: 'postgres' } } }));
      const { code, stderr } = await run(['--from', join(dir, 'from.json'), '--to', join(dir, 'to.json')]);
      assert.equal(code, 2);
      assert.match(stderr, /storage\.meta/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a source without a MetaStore is refused: exit 1, and --json says why', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'astore-migrate-cli-'));
    try {
      await writeFile(join(dir, 'from.json'), JSON.stringify({ dataDir: join(dir, 'a') }));
      await writeFile(join(dir, 'to.json'), JSON.stringify({ dataDir: join(dir, 'b') }));
      const { code, stdout } = await run(['--from', join(dir, 'from.json'), '--to', join(dir, 'to.json'), '--json']);
      assert.equal(code, 1);
      const report = JSON.parse(stdout) as { ok: boolean; refused: string };
      assert.equal(report.ok, false);
      assert.match(report.refused, /the source has no MetaStore at sqlite:.*meta\.db/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
