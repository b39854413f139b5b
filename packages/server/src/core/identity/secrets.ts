import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from '../durable.ts';

export const serverKeyFileName = 'server-key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/**
 * Encrypts access-key secrets for the MetaStore (SigV4 needs the secret itself, so it cannot be
 * hashed). AES-256-GCM with a fresh 96-bit IV per secret; sealed form `v1.<iv>.<ciphertext+tag>`,
 * both base64url. The version prefix leaves room for another algorithm or key without guessing.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`the server key must be ${KEY_BYTES} bytes, not ${key.length}`);
    this.#key = Buffer.from(key);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  /** Throws when `sealed` is malformed, or was sealed with another key or altered since. */
  open(sealed: string): string {
    const [version, ivText, bodyText, ...rest] = sealed.split('.');
    if (version !== VERSION || ivText === undefined || bodyText === undefined || rest.length > 0) {
      throw new Error(`not a sealed secret (expected ${VERSION}.<iv>.<ciphertext>)`);
    }
    const iv = Buffer.from(ivText, 'base64url');
    const body = Buffer.from(bodyText, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new Error('not a sealed secret (IV or ciphertext of the wrong length)');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new Error('the secret cannot be decrypted: it was sealed with another server key, or altered', { cause: err });
    }
  }
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * The server key: from configuration (base64 of 32 bytes) if given; else the raw 32 bytes in
 * `<dataDir>/server-key`, generated with mode 0600 on first use. Losing the key makes every stored
 * access-key secret unreadable, so a file of any other length is refused, never replaced.
 */
export async function loadServerKey(dataDir: string, configured?: string): Promise<Buffer> {
  if (configured !== undefined) {
    const text = configured.trim();
    const key = BASE64.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
    // The key itself is never part of the message.
    if (key.length !== KEY_BYTES) throw new Error(`the configured server key must be base64 of ${KEY_BYTES} bytes (e.g. the output of \`openssl rand -base64 32\`)`);
    return key;
  }
  const file = join(dataDir, serverKeyFileName);
  const existing = await readKeyFile(file);
  if (existing) return existing;

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Written in full under a private name, then published with link(), which fails when the name
  // exists: a process starting at the same time never overwrites our key, nor reads a half-written one.
  const key = randomBytes(KEY_BYTES);
  const temporary = join(dataDir, `.${serverKeyFileName}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, key, { mode: 0o600, flag: 'wx', flush: true });
    await link(temporary, file);
    await syncDirectory(dataDir);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readKeyFile(file);
    if (!winner) throw new Error(`${file} vanished while it was being created`, { cause: err });
    return winner;
  } finally {
    await unlink(temporary).catch(() => {});
  }
}

/** The key in `file`; null when there is no file. */
async function readKeyFile(file: string): Promise<Buffer | null> {
  let key: Buffer;
  try {
    key = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (key.length !== KEY_BYTES) {
    throw new Error(`${file} holds ${key.length} bytes, not a ${KEY_BYTES}-byte server key; restore it from a backup (a new key cannot decrypt the stored access-key secrets)`);
  }
  return key;
}
