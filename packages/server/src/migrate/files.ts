import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { credentialsFileName } from '../auth/credentials.ts';
import type { Config } from '../config/schema.ts';
import { syncDirectory } from '../core/durable.ts';
import { loadServerKey, serverKeyFileName } from '../core/identity/secrets.ts';
import { MigrationRefused } from './errors.ts';
import { dataDirOf } from './stores.ts';

/**
 * State that lives outside the two stores, in the data directory (or where configuration puts it),
 * and that the target must share with the source:
 *
 * - the server key (`<dataDir>/server-key`, or `auth.serverKey`): access-key secrets in the MetaStore
 *   and the signing-key files are sealed with it. With another key the target could not verify a
 *   single SigV4 signature of a user's access key, nor sign. Required, and must be identical;
 * - the root credentials (`<dataDir>/root-credentials.json`, or `auth.rootAccessKey`/`rootSecretKey`):
 *   without them the target generates new ones on first start. Carried; a difference is a warning;
 * - the server-held signing keys (`supplychain.keys.path`, default `<dataDir>/signing-keys`): the
 *   private parts of the keys listed in sc_keys. Required for signing; a file the target holds with
 *   other bytes under the same name refuses the migration.
 *
 * Files are written with mode 0600 under a temporary name and published with link(), which never
 * replaces a file: a file the target already has is compared, never overwritten.
 */
export interface CarriedFile {
  what: 'server key' | 'root credentials' | 'signing key';
  /** copied: written by this run; present: the target already has the same; configured: set in the
   *  target's configuration (and the same); same: source and target use the same file; none: the
   *  source has none; would copy: a dry run's plan. */
  action: 'copied' | 'present' | 'configured' | 'same' | 'none' | 'would copy';
  from?: string;
  to?: string;
}

export interface FilesReport {
  files: CarriedFile[];
  warnings: string[];
}

interface Plan {
  files: CarriedFile[];
  warnings: string[];
  copies: { from: string; to: string; bytes: Buffer }[];
}

/** Checks, then carries the files. Refuses (MigrationRefused) before writing anything when a check fails. */
export async function carryFiles(from: Readonly<Config>, to: Readonly<Config>, options: { dryRun: boolean }): Promise<FilesReport> {
  const plan: Plan = { files: [], warnings: [], copies: [] };
  await planServerKey(from, to, plan);
  await planRootCredentials(from, to, plan);
  await planSigningKeys(from, to, plan);
  if (options.dryRun) {
    for (const file of plan.files) if (file.action === 'copied') file.action = 'would copy';
  } else {
    for (const copy of plan.copies) await publish(copy.to, copy.bytes);
  }
  return { files: plan.files, warnings: plan.warnings };
}

async function planServerKey(from: Readonly<Config>, to: Readonly<Config>, plan: Plan): Promise<void> {
  const sourceFile = join(dataDirOf(from), serverKeyFileName);
  const targetFile = join(dataDirOf(to), serverKeyFileName);
  // loadServerKey validates a configured key without touching files; a stored one is read as it is.
  const sourceKey = from.auth.serverKey !== undefined ? await loadServerKey(dataDirOf(from), from.auth.serverKey) : await readOptional(sourceFile);
  if (sourceKey && sourceKey.length !== 32) throw new MigrationRefused(`${sourceFile} holds ${sourceKey.length} bytes, not a 32-byte server key`);
  const differs =
    'the access-key secrets in the MetaStore and the signing-key files are sealed with the server key: with another one the target can decrypt none of them';
  if (to.auth.serverKey !== undefined) {
    const targetKey = await loadServerKey(dataDirOf(to), to.auth.serverKey);
    if (sourceKey && !sourceKey.equals(targetKey)) {
      throw new MigrationRefused(`the target configuration's auth.serverKey is not the source's server key (${from.auth.serverKey !== undefined ? 'its auth.serverKey' : sourceFile}); ${differs}`);
    }
    plan.files.push({ what: 'server key', action: 'configured' });
    return;
  }
  if (from.auth.serverKey !== undefined) {
    throw new MigrationRefused(`the source's server key is set in its configuration (auth.serverKey): set the same auth.serverKey in the target configuration; ${differs}`);
  }
  if (sourceFile === targetFile) {
    plan.files.push({ what: 'server key', action: 'same', from: sourceFile });
    return;
  }
  const targetKey = await readOptional(targetFile);
  if (!sourceKey) {
    if (targetKey) plan.warnings.push(`the source has no server key but the target has ${targetFile}`);
    plan.files.push({ what: 'server key', action: 'none', from: sourceFile });
    return;
  }
  if (targetKey && !targetKey.equals(sourceKey)) {
    throw new MigrationRefused(`${targetFile} holds another server key than ${sourceFile}; ${differs}. Remove it if the target has never been used, or migrate into a fresh data directory`);
  }
  if (!targetKey) plan.copies.push({ from: sourceFile, to: targetFile, bytes: sourceKey });
  plan.files.push({ what: 'server key', action: targetKey ? 'present' : 'copied', from: sourceFile, to: targetFile });
}

async function planRootCredentials(from: Readonly<Config>, to: Readonly<Config>, plan: Plan): Promise<void> {
  const sourceFile = join(dataDirOf(from), credentialsFileName);
  const targetFile = join(dataDirOf(to), credentialsFileName);
  const fromConfig = from.auth.rootAccessKey !== undefined ? { accessKeyId: from.auth.rootAccessKey, secretKey: from.auth.rootSecretKey } : undefined;
  const sourceBytes = fromConfig ? null : await readOptional(sourceFile);
  const source = fromConfig ?? (sourceBytes ? parseCredentials(sourceBytes, sourceFile) : undefined);
  if (to.auth.rootAccessKey !== undefined) {
    if (source && (source.accessKeyId !== to.auth.rootAccessKey || source.secretKey !== to.auth.rootSecretKey)) {
      plan.warnings.push(`the target configuration sets other root credentials (${to.auth.rootAccessKey}) than the source's (${source.accessKeyId})`);
    }
    plan.files.push({ what: 'root credentials', action: 'configured' });
    return;
  }
  if (fromConfig) {
    plan.warnings.push(
      `the source's root credentials (${fromConfig.accessKeyId}) are set in its configuration: set auth.rootAccessKey and auth.rootSecretKey in the target configuration too, or the target generates new ones on first start`,
    );
    plan.files.push({ what: 'root credentials', action: 'none' });
    return;
  }
  if (sourceFile === targetFile) {
    plan.files.push({ what: 'root credentials', action: 'same', from: sourceFile });
    return;
  }
  if (!sourceBytes || !source) {
    plan.files.push({ what: 'root credentials', action: 'none', from: sourceFile });
    return;
  }
  const targetBytes = await readOptional(targetFile);
  if (targetBytes) {
    const target = parseCredentials(targetBytes, targetFile);
    if (target.accessKeyId !== source.accessKeyId || target.secretKey !== source.secretKey) {
      plan.warnings.push(`${targetFile} holds other root credentials (${target.accessKeyId}) than ${sourceFile} (${source.accessKeyId}); left as they are`);
    }
    plan.files.push({ what: 'root credentials', action: 'present', from: sourceFile, to: targetFile });
    return;
  }
  plan.copies.push({ from: sourceFile, to: targetFile, bytes: sourceBytes });
  plan.files.push({ what: 'root credentials', action: 'copied', from: sourceFile, to: targetFile });
}

async function planSigningKeys(from: Readonly<Config>, to: Readonly<Config>, plan: Plan): Promise<void> {
  const keysDir = (config: Readonly<Config>) => resolve(config.supplychain.keys.path ?? join(dataDirOf(config), 'signing-keys'));
  const sourceDir = keysDir(from);
  const targetDir = keysDir(to);
  let names: string[];
  try {
    // One file per key version; names starting with '.' are the provider's temporary files.
    names = (await readdir(sourceDir, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    names = [];
  }
  if (sourceDir === targetDir) {
    if (names.length > 0) plan.files.push({ what: 'signing key', action: 'same', from: sourceDir });
    return;
  }
  for (const name of names) {
    const sourceFile = join(sourceDir, name);
    const targetFile = join(targetDir, name);
    const bytes = await readFile(sourceFile);
    const held = await readOptional(targetFile);
    if (held && !held.equals(bytes)) {
      throw new MigrationRefused(`${targetFile} holds another signing key than ${sourceFile}: a signing key of the target would be replaced; migrate into a fresh key directory`);
    }
    if (!held) plan.copies.push({ from: sourceFile, to: targetFile, bytes });
    plan.files.push({ what: 'signing key', action: held ? 'present' : 'copied', from: sourceFile, to: targetFile });
  }
}

function parseCredentials(bytes: Buffer, file: string): { accessKeyId: string; secretKey: string | undefined } {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { accessKeyId?: unknown; secretKey?: unknown };
    if (typeof parsed.accessKeyId === 'string' && typeof parsed.secretKey === 'string') return { accessKeyId: parsed.accessKeyId, secretKey: parsed.secretKey };
  } catch {
    // reported below
  }
  throw new MigrationRefused(`${file} does not hold accessKeyId and secretKey`);
}

async function readOptional(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes `bytes` at `file` (mode 0600, durable) unless a file is there already. */
async function publish(file: string, bytes: Buffer): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.migrate-${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, bytes, { mode: 0o600, flag: 'wx', flush: true });
    await link(temporary, file);
    await syncDirectory(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process wrote it since the check: keep it only if it is the same.
    if (!(await readFile(file)).equals(bytes)) throw new MigrationRefused(`${file} appeared meanwhile with other content`);
  } finally {
    await unlink(temporary).catch(() => {});
  }
}
