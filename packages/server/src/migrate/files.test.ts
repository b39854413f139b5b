import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { MigrationRefused } from './errors.ts';
import { carryFiles } from './files.ts';

/** The state outside the stores: which files are carried, compared, or refused. */
let root: string;
let dirs = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'astore-migrate-files-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const key = randomBytes(32);
const configOf = (dataDir: string, extra: Record<string, unknown> = {}): Readonly<Config> => parseConfig({ dataDir, ...extra });

/** A source data directory with a server key, root credentials and two signing-key files. */
async function sourceDir(): Promise<string> {
  const dir = join(root, `s${++dirs}`);
  await mkdir(join(dir, 'signing-keys'), { recursive: true });
  await writeFile(join(dir, 'server-key'), key);
  await writeFile(join(dir, 'root-credentials.json'), JSON.stringify({ accessKeyId: 'ASROOT', secretKey: 'root-secret' }));
  await writeFile(join(dir, 'signing-keys', 'ci~1.key'), 'sealed-1');
  await writeFile(join(dir, 'signing-keys', 'ci~2.key'), 'sealed-2');
  await writeFile(join(dir, 'signing-keys', '.abc.tmp'), 'a provider temp file');
  return dir;
}

describe('carryFiles', () => {
  test('copies the server key, root credentials and signing keys; again, finds them present', async () => {
    const source = await sourceDir();
    const target = join(root, `t${++dirs}`);
    const first = await carryFiles(configOf(source), configOf(target), { dryRun: false });
    assert.deepEqual(first.files.map((f) => `${f.what}: ${f.action}`), ['server key: copied', 'root credentials: copied', 'signing key: copied', 'signing key: copied']);
    assert.deepEqual(await readFile(join(target, 'server-key')), key);
    assert.deepEqual((await readdir(join(target, 'signing-keys'))).sort(), ['ci~1.key', 'ci~2.key']);
    const second = await carryFiles(configOf(source), configOf(target), { dryRun: false });
    assert.ok(second.files.every((f) => f.action === 'present'));
    assert.deepEqual(second.warnings, []);
  });

  test('a dry run says what it would copy and writes nothing', async () => {
    const source = await sourceDir();
    const target = join(root, `t${++dirs}`);
    const plan = await carryFiles(configOf(source), configOf(target), { dryRun: true });
    assert.ok(plan.files.every((f) => f.action === 'would copy'));
    await assert.rejects(readdir(target), { code: 'ENOENT' });
  });

  test('refuses a target signing-key file with other bytes under the same name, before copying anything', async () => {
    const source = await sourceDir();
    const target = join(root, `t${++dirs}`);
    await mkdir(join(target, 'signing-keys'), { recursive: true });
    await writeFile(join(target, 'signing-keys', 'ci~2.key'), 'another key');
    await assert.rejects(carryFiles(configOf(source), configOf(target), { dryRun: false }), (err: Error) => err instanceof MigrationRefused && /ci~2\.key holds another signing key/.test(err.message));
    await assert.rejects(readFile(join(target, 'server-key')), { code: 'ENOENT' });
  });

  test('a server key in the source configuration must be in the target configuration too, the same', async () => {
    const source = await sourceDir();
    const configured = { auth: { serverKey: key.toString('base64') } };
    await assert.rejects(carryFiles(configOf(source, configured), configOf(join(root, `t${++dirs}`)), { dryRun: false }), /set the same auth.serverKey in the target configuration/);
    const other = { auth: { serverKey: randomBytes(32).toString('base64') } };
    await assert.rejects(carryFiles(configOf(source, configured), configOf(join(root, `t${++dirs}`), other), { dryRun: false }), /auth.serverKey is not the source's server key/);
    const same = await carryFiles(configOf(source, configured), configOf(join(root, `t${++dirs}`), configured), { dryRun: false });
    assert.equal(same.files[0]?.action, 'configured');
    // A key file in the source and the same key configured in the target agree.
    const fromFile = await carryFiles(configOf(source), configOf(join(root, `t${++dirs}`), configured), { dryRun: false });
    assert.equal(fromFile.files[0]?.action, 'configured');
  });

  test('root credentials only in the source configuration are a warning, not copied', async () => {
    const source = await sourceDir();
    const auth = { auth: { rootAccessKey: 'ASCONFIG', rootSecretKey: 'config-secret-0123' } };
    const report = await carryFiles(configOf(source, auth), configOf(join(root, `t${++dirs}`)), { dryRun: false });
    assert.equal(report.files.find((f) => f.what === 'root credentials')?.action, 'none');
    assert.match(report.warnings.join('\n'), /set auth.rootAccessKey and auth.rootSecretKey in the target configuration/);
  });
});
