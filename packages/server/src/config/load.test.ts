import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envToConfig, loadConfig, parseConfig, ConfigError } from './load.ts';

test('defaults give the embedded setup', () => {
  const config = parseConfig({});
  assert.equal(config.server.port, 8080);
  assert.equal(config.dataDir, './data');
  assert.equal(config.storage.blob.driver, 'fs');
  assert.equal(config.storage.meta.driver, 'sqlite');
});

test('unknown keys are refused with their full name', () => {
  assert.throws(() => parseConfig({ server: { prot: 1 } }), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /unknown key: server\.prot/);
    return true;
  });
  assert.throws(() => parseConfig({ bogus: true }), /unknown key: bogus/);
});

test('environment follows the ASTORE_A__B_C rule and wins over the file', () => {
  assert.deepEqual(envToConfig({ ASTORE_SERVER__PORT: '9000', ASTORE_AUTH__ROOT_SECRET_KEY: 'abc', OTHER: 'x', ASTORE_TOOLS_DIR: '/t', ASTORE_TEST_AWS: 'aws' }), {
    server: { port: 9000 },
    auth: { rootSecretKey: 'abc' },
  });
  const config = loadConfig({ env: { ASTORE_SERVER__PORT: '9001', ASTORE_S3__ANONYMOUS_READ_BUCKETS: '["pub"]' } });
  assert.equal(config.server.port, 9001);
  assert.deepEqual(config.s3.anonymousReadBuckets, ['pub']);
});

test('configuration is frozen', () => {
  const config = parseConfig({});
  assert.throws(() => {
    (config.server as { port: number }).port = 1;
  });
});

test('root credentials must come as a pair', () => {
  assert.throws(() => parseConfig({ auth: { rootAccessKey: 'abc' } }), /set together/);
});

test('a YAML config file is read, then the environment wins', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'astore-config-'));
  try {
    const file = join(dir, 'astore.yaml');
    await writeFile(file, 'server:\n  port: 9100\nlog:\n  level: warn\n');
    const config = loadConfig({ file, env: { ASTORE_LOG__LEVEL: 'error' } });
    assert.equal(config.server.port, 9100);
    assert.equal(config.log.level, 'error');
    await writeFile(file, 'server:\n  nope: 1\n');
    assert.throws(() => loadConfig({ file, env: {} }), /unknown key: server\.nope/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config show redacts every secret, wherever it is', async () => {
  const { redactSecrets } = await import('./load.ts');
  const shown = redactSecrets({
    auth: { rootAccessKey: 'AKID', rootSecretKey: 's3cr3t', serverKey: 'k', bootstrapAdmin: { name: 'admin', password: 'pw' } },
    storage: { blob: { s3: { accessKeyId: 'AK', secretAccessKey: 'sk' }, azure: { accountName: 'acct', accountKey: 'ak', connectionString: 'cs' } }, meta: { postgres: { connectionString: 'postgres://u:p@h/db' } } },
  });
  assert.equal(JSON.stringify(shown).match(/s3cr3t|"pw"|"sk"|"ak"|"cs"|u:p@/), null);
  assert.equal(shown.auth.rootAccessKey, 'AKID');
  assert.equal(shown.storage.blob.s3.accessKeyId, 'AK');
  assert.equal(shown.storage.blob.azure.accountName, 'acct');
});
