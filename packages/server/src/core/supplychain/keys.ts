import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateEncrypt, randomBytes, sign, type KeyObject } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { p256 } from '@noble/curves/nist.js';
import { AstoreError } from '../errors.ts';
import type { SecretBox } from '../identity/secrets.ts';
import type { KeyAlgorithm, Signed } from './types.ts';
import { syncDirectory } from '../durable.ts';

/**
 * Signing keys held by the server, for users who have no signing tooling of their own. What astore
 * signs must verify with `cosign verify --key` / `cosign verify-blob --key`, which decides the
 * schemes: ECDSA P-256 with SHA-256 (ASN.1 DER signature), RSA PKCS#1 v1.5 with SHA-256, and pure
 * Ed25519 over the message. Keys are PEM: PKCS#8 private, SPKI public.
 */
export type SigningAlgorithm = 'ecdsa-p256' | 'ed25519' | 'rsa-3072' | 'rsa-4096';

export interface KeyPair {
  algorithm: KeyAlgorithm;
  /** PKCS#8, unencrypted. */
  privatePem: string;
  /** SPKI. */
  publicPem: string;
}

export interface PublicKey {
  algorithm: KeyAlgorithm;
  /** SPKI, re-encoded from what was imported. */
  publicPem: string;
}

/** Smaller RSA keys are refused, for signing and for verification (NIST: 3072 bits past 2030). */
export const minRsaBits = 3072;

export function generateKeyPair(algorithm: SigningAlgorithm): KeyPair {
  const { privateKey } =
    algorithm === 'ecdsa-p256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : algorithm === 'ed25519' ? generateKeyPairSync('ed25519')
    : algorithm === 'rsa-3072' || algorithm === 'rsa-4096' ? generateKeyPairSync('rsa', { modulusLength: algorithm === 'rsa-3072' ? 3072 : 4096, publicExponent: 0x10001 })
    : unsupportedAlgorithm(algorithm);
  return toKeyPair(privateKey);
}

function unsupportedAlgorithm(algorithm: never): never {
  throw new AstoreError('InvalidArgument', `unknown signing algorithm ${JSON.stringify(algorithm)} (expected ecdsa-p256, ed25519, rsa-3072 or rsa-4096)`);
}

/**
 * A private key the user brings: PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with the
 * passphrase), SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` (legacy-encrypted ones need the
 * passphrase too). Returned re-encoded as unencrypted PKCS#8. Throws, naming what is wrong, for a
 * public key or certificate, an encrypted key without (or with the wrong) passphrase, a cosign- or
 * OpenSSH-format key, a curve other than P-256, RSA under 3072 bits, and any other key type.
 */
export function importPrivateKey(pem: string, passphrase?: string): KeyPair {
  const label = pemLabel(pem, ['PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY']);
  const encrypted = label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(pem);
  if (encrypted && !passphrase) throw invalid(`the private key (${label}) is encrypted: give its passphrase`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (err) {
    throw invalid(encrypted ? `the passphrase does not decrypt the private key (${label})` : `the private key (${label}) cannot be read: ${(err as Error).message}`, err);
  }
  const algorithm = keyAlgorithmOf(privateKey, 'signing');
  if (algorithm === 'ecdsa-p384') throw invalid('ECDSA signing keys must be on P-256 (cosign verifies ECDSA with SHA-256); this key is on P-384');
  return toKeyPair(privateKey);
}

/**
 * A verification-only key: SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`. ECDSA on P-256 or P-384,
 * Ed25519, or RSA of 3072 bits or more. A private key is refused rather than reduced to its public
 * half, so that nobody hands the server a secret by mistake.
 */
export function importPublicKey(pem: string): PublicKey {
  pemLabel(pem, ['PUBLIC KEY', 'RSA PUBLIC KEY']);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw invalid(`the public key cannot be read: ${(err as Error).message}`, err);
  }
  return { algorithm: keyAlgorithmOf(publicKey, 'verification'), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Hex sha256 of the key's SPKI DER: the key id cosign and most tools show. */
export function fingerprint(publicPem: string): string {
  const der = createPublicKey({ key: publicPem, format: 'pem' }).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Signs `signed` the way cosign verifies with `--key`: ECDSA P-256 → ASN.1 DER over SHA-256; RSA →
 * PKCS#1 v1.5 with SHA-256; Ed25519 → pure Ed25519 over the message. A precomputed digest must be
 * SHA-256 (the hash cosign verifies with); Ed25519 cannot sign one, since it hashes the message itself.
 */
export function signWithKey(privateKey: KeyObject, signed: Signed): Buffer {
  const algorithm = keyAlgorithmOf(privateKey, 'signing');
  if (signed.kind === 'message') {
    if (algorithm === 'ed25519') return sign(null, signed.message, privateKey);
    if (algorithm === 'ecdsa-p256') return sign('sha256', signed.message, { key: privateKey, dsaEncoding: 'der' });
    if (algorithm === 'rsa') return sign('sha256', signed.message, { key: privateKey, padding: constants.RSA_PKCS1_PADDING });
    throw invalid(`astore does not sign with ${algorithm} keys`);
  }
  if (algorithm === 'ed25519') throw invalid('an Ed25519 key signs the message itself, not a digest: sign the whole blob (cosign verifies pure Ed25519)');
  if (signed.algorithm !== 'sha256') throw invalid(`astore signs SHA-256 digests (what cosign verifies with), not ${signed.algorithm}`);
  if (signed.digest.length !== 32) throw invalid(`a sha256 digest is 32 bytes, not ${signed.digest.length}`);
  if (algorithm === 'ecdsa-p256') {
    // node:crypto always hashes the input; noble signs the digest as it is (RFC 6979 k, hedged with randomness).
    const secret = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
    try {
      return Buffer.from(p256.sign(signed.digest, secret, { prehash: false, format: 'der', extraEntropy: true }));
    } finally {
      secret.fill(0);
    }
  }
  if (algorithm === 'rsa') {
    // A PKCS#1 v1.5 signature is the private-key operation over DigestInfo(sha256) || digest with
    // block-type-1 padding, which is what privateEncrypt does with RSA_PKCS1_PADDING.
    return privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([sha256DigestInfo, signed.digest]));
  }
  throw invalid(`astore does not sign with ${algorithm} keys`);
}

/** DER of DigestInfo { AlgorithmIdentifier sha256 NULL, OCTET STRING (32 bytes) } up to the digest (RFC 8017 §9.2 note 1). */
const sha256DigestInfo = Buffer.from('3031300d060960864801650304020105000420', 'hex');

function toKeyPair(privateKey: KeyObject): KeyPair {
  return {
    algorithm: keyAlgorithmOf(privateKey, 'signing'),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function keyAlgorithmOf(key: KeyObject, use: 'signing' | 'verification'): KeyAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'ed25519';
    case 'ec':
      if (details.namedCurve === 'prime256v1') return 'ecdsa-p256';
      if (details.namedCurve === 'secp384r1') return 'ecdsa-p384';
      throw invalid(`ECDSA ${use} keys must be on P-256${use === 'verification' ? ' or P-384' : ''}; this key is on ${details.namedCurve ?? 'an unnamed curve'}`);
    case 'rsa':
      if ((details.modulusLength ?? 0) < minRsaBits) throw invalid(`RSA keys must have at least ${minRsaBits} bits; this one has ${details.modulusLength}`);
      return 'rsa';
    case 'rsa-pss':
      throw invalid('RSA-PSS keys are not supported (cosign verifies RSA with PKCS#1 v1.5): use a plain RSA key');
    default:
      throw invalid(`${key.asymmetricKeyType ?? 'this'} keys are not supported; use ECDSA P-256, Ed25519 or RSA (${minRsaBits} bits or more)`);
  }
}

const foreignKeyHints: Record<string, string> = {
  'ENCRYPTED SIGSTORE PRIVATE KEY': 'a cosign-encrypted key, which astore cannot read: sign with cosign itself, or let astore generate a key',
  'ENCRYPTED COSIGN PRIVATE KEY': 'a cosign-encrypted key, which astore cannot read: sign with cosign itself, or let astore generate a key',
  'OPENSSH PRIVATE KEY': 'an OpenSSH key: convert it with `ssh-keygen -p -m PKCS8 -f <file>`',
  'PUBLIC KEY': 'a public key; signing needs the private key',
  'RSA PUBLIC KEY': 'a public key; signing needs the private key',
  CERTIFICATE: 'a certificate; give the key itself (for a public key: `openssl x509 -pubkey -noout -in <file>`)',
};

/** The label of the one PEM block of an accepted kind (`EC PARAMETERS`, as openssl writes before a key, is passed over). */
function pemLabel(pem: string, accepted: string[]): string {
  const labels = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!).filter((l) => l !== 'EC PARAMETERS');
  const wanted = accepted.includes('PUBLIC KEY') ? 'a public key PEM' : 'a private key PEM';
  if (labels.length === 0) throw invalid(`not ${wanted} (no -----BEGIN ...----- line)`);
  if (labels.length > 1) throw invalid(`expected one PEM block, found ${labels.length} (${labels.join(', ')})`);
  const label = labels[0]!;
  if (accepted.includes(label)) return label;
  if (label.includes('PRIVATE KEY') && accepted.includes('PUBLIC KEY')) throw invalid(`this is a private key (${label}); a verification key is only the public part`);
  throw invalid(`not ${wanted}: the PEM holds ${foreignKeyHints[label] ?? `a ${label}`}`);
}

function invalid(message: string, cause?: unknown): AstoreError {
  const err = new AstoreError('InvalidArgument', message);
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause });
  return err;
}

// --- where private keys are kept ----------------------------------------------------------------

/** Keeps private keys and signs with them; a cloud KMS can implement it too. */
export interface KeyProvider {
  readonly name: string;
  /**
   * Keeps the private key; returns the reference stored with the key record. Throws InvalidArgument
   * for a bad key id or an unusable key, EntityAlreadyExists when the id holds another key.
   */
  store(keyId: string, privatePem: string): Promise<string>;
  /**
   * Signs `signed` (a message, or a precomputed digest for ECDSA/RSA) the way cosign expects: ECDSA →
   * ASN.1 DER over SHA-256 (P-256), RSA → PKCS#1 v1.5 SHA-256, Ed25519 → pure Ed25519 over the message
   * (a digest-only request with an Ed25519 key throws a clear error). NoSuchEntity for an unknown ref.
   */
  sign(ref: string, signed: Signed): Promise<Buffer>;
  /** Forgets the private key (revocation keeps the public part elsewhere); idempotent. */
  destroy(ref: string): Promise<void>;
}

const refPrefix = 'file:';
const keyIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const maxKeyIdLength = 200;

/**
 * Private keys in `dir`, one file per key, sealed with the server key (SecretBox). A key id is
 * segments of [A-Za-z0-9._-] joined by `/`, each starting with a letter or digit (so no `..`, no
 * hidden or temp names); its file is the id with `/` as `~`, plus `.key`. The sealed text names its
 * key id, so a key file copied under another name does not sign as that key. The reference is
 * `file:<keyId>`.
 */
export class FileKeyProvider implements KeyProvider {
  readonly name = 'file';
  readonly #dir: string;
  readonly #secrets: SecretBox;

  constructor(dir: string, secrets: SecretBox) {
    this.#dir = dir;
    this.#secrets = secrets;
  }

  async store(keyId: string, privatePem: string): Promise<string> {
    const file = this.#fileOf(keyId);
    const { privatePem: pkcs8 } = importPrivateKey(privatePem);
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    // Written in full under a private name, then published with link(), which fails when the name
    // exists: unlike rename(), it never replaces a key already stored under this id.
    const temporary = join(this.#dir, `.${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(temporary, this.#secrets.seal(JSON.stringify({ keyId, privatePem: pkcs8 })), { mode: 0o600, flag: 'wx', flush: true });
      await link(temporary, file);
      await syncDirectory(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A retried store of the same key succeeds; another key under the same id does not.
      if ((await this.#read(keyId)).export({ type: 'pkcs8', format: 'pem' }).toString() !== pkcs8) {
        throw new AstoreError('EntityAlreadyExists', `a different private key is already stored as ${keyId}`);
      }
    } finally {
      await unlink(temporary).catch(() => {});
    }
    return `${refPrefix}${keyId}`;
  }

  async sign(ref: string, signed: Signed): Promise<Buffer> {
    return signWithKey(await this.#read(this.#keyIdOf(ref)), signed);
  }

  async destroy(ref: string): Promise<void> {
    try {
      await unlink(this.#fileOf(this.#keyIdOf(ref)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async #read(keyId: string): Promise<KeyObject> {
    let sealed: string;
    try {
      sealed = await readFile(this.#fileOf(keyId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AstoreError('NoSuchEntity', `no private key is stored as ${keyId}`);
      throw err;
    }
    const content = JSON.parse(this.#secrets.open(sealed)) as { keyId?: unknown; privatePem?: unknown };
    if (content.keyId !== keyId || typeof content.privatePem !== 'string') throw new Error(`the key file of ${keyId} holds another key (${String(content.keyId)})`);
    return createPrivateKey({ key: content.privatePem, format: 'pem' });
  }

  #keyIdOf(ref: string): string {
    if (!ref.startsWith(refPrefix)) throw new AstoreError('InvalidArgument', `not a ${this.name} key reference: ${JSON.stringify(ref)}`);
    return ref.slice(refPrefix.length);
  }

  #fileOf(keyId: string): string {
    if (keyId.length > maxKeyIdLength || !keyIdPattern.test(keyId) || keyId.split('/').some((segment) => segment === '..' || segment === '.')) {
      throw new AstoreError('InvalidArgument', `invalid key id ${JSON.stringify(keyId)}: up to ${maxKeyIdLength} characters, segments of [A-Za-z0-9._-] starting with a letter or digit, joined by /`);
    }
    return join(this.#dir, `${keyId.replaceAll('/', '~')}.key`);
  }
}
