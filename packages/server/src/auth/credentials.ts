import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RootCredentials {
  accessKeyId: string;
  secretKey: string;
  /** Where they came from, for the start-up message: 'config' or the file they were stored in. */
  source: string;
  generated: boolean;
}

export const credentialsFileName = 'root-credentials.json';

/**
 * Root credentials from configuration; if none are configured, the ones stored in the data dir; if
 * there are none yet, freshly generated ones, stored there with mode 0600.
 */
export async function resolveRootCredentials(dataDir: string, configured: { rootAccessKey?: string; rootSecretKey?: string }): Promise<RootCredentials> {
  if (configured.rootAccessKey && configured.rootSecretKey) {
    return { accessKeyId: configured.rootAccessKey, secretKey: configured.rootSecretKey, source: 'config', generated: false };
  }
  const file = join(dataDir, credentialsFileName);
  try {
    const stored = JSON.parse(await readFile(file, 'utf8')) as { accessKeyId?: unknown; secretKey?: unknown };
    if (typeof stored.accessKeyId === 'string' && typeof stored.secretKey === 'string') {
      return { accessKeyId: stored.accessKeyId, secretKey: stored.secretKey, source: file, generated: false };
    }
    throw new Error(`${file} does not hold accessKeyId and secretKey`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const credentials = {
    accessKeyId: `AS${randomBytes(9).toString('hex').toUpperCase()}`,
    secretKey: randomBytes(30).toString('base64url'),
  };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // 'wx': never overwrite credentials another process wrote meanwhile.
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { ...credentials, source: file, generated: true };
}
