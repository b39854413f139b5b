import { createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyRecord, MetaStore } from '../../storage/meta/types.ts';
import { AstoreError } from '../errors.ts';
import { type KeyProvider, type SigningAlgorithm, fingerprint, generateKeyPair, importPrivateKey, importPublicKey } from './keys.ts';
import type { Signed } from './types.ts';

export const keyNamePattern = /^[A-Za-z0-9._-]{1,128}$/;

/** How a key comes to be: generated here, or imported (private, public-only, or a CA certificate). */
export type NewKey =
  | { generate: SigningAlgorithm }
  | { privateKeyPem: string; passphrase?: string }
  | { publicKeyPem: string }
  | { certificatePem: string };

/**
 * Signing keys and trusted verification material. A key name has versions; the newest unretired,
 * unrevoked signing version signs. Rotation retires the current version (its signatures still
 * verify) and adds the next; revocation marks versions revoked (their signatures fail verification)
 * and forgets the private part.
 */
export class Keyring {
  constructor(
    private readonly meta: MetaStore,
    private readonly provider: KeyProvider,
  ) {}

  async create(name: string, spec: NewKey, createdBy: string, expiresAt?: Date): Promise<KeyRecord> {
    if (!keyNamePattern.test(name)) throw new AstoreError('InvalidArgument', `invalid key name ${JSON.stringify(name)} (letters, digits, ".", "_", "-")`);
    if ((await this.meta.supplychain.listKeys(name)).length > 0) throw new AstoreError('EntityAlreadyExists', `key ${name} exists; rotate it to add a version`);
    return this.addVersion(name, 1, spec, createdBy, expiresAt);
  }

  /** Retires the current signing version and generates (or imports) the next. */
  async rotate(name: string, spec: NewKey | undefined, createdBy: string, expiresAt?: Date): Promise<KeyRecord> {
    const versions = await this.versions(name);
    const current = versions[versions.length - 1]!;
    if (current.kind !== 'signing') throw new AstoreError('InvalidArgument', `key ${name} is a ${current.kind} key; only signing keys rotate`);
    const next = spec ?? { generate: algorithmOf(current) };
    const created = await this.addVersion(name, current.version + 1, next, createdBy, expiresAt);
    const now = new Date();
    for (const v of versions) if (v.retiredAt === undefined && v.revokedAt === undefined) await this.meta.supplychain.updateKey(v.id, { retiredAt: now });
    return created;
  }

  /** Revokes every version (or one); signatures made with them no longer verify. */
  async revoke(name: string, version?: number): Promise<KeyRecord[]> {
    const versions = (await this.versions(name)).filter((v) => version === undefined || v.version === version);
    if (versions.length === 0) throw new AstoreError('NoSuchEntity', `key ${name} has no version ${version}`);
    const now = new Date();
    const revoked: KeyRecord[] = [];
    for (const v of versions) {
      if (v.providerRef !== undefined) await this.provider.destroy(v.providerRef);
      revoked.push((await this.meta.supplychain.updateKey(v.id, { revokedAt: v.revokedAt ?? now }))!);
    }
    return revoked;
  }

  async versions(name: string): Promise<KeyRecord[]> {
    const versions = await this.meta.supplychain.listKeys(name);
    if (versions.length === 0) throw new AstoreError('NoSuchEntity', `no key ${name}`);
    return versions;
  }

  /** The version that signs: the newest signing version neither retired, revoked nor expired. */
  async signingVersion(name: string): Promise<KeyRecord> {
    const now = new Date();
    const usable = (await this.versions(name)).filter(
      (v) => v.kind === 'signing' && v.retiredAt === undefined && v.revokedAt === undefined && (v.expiresAt === undefined || v.expiresAt > now),
    );
    const key = usable[usable.length - 1];
    if (!key) throw new AstoreError('InvalidArgument', `key ${name} has no version that may sign (revoked, expired, or verification-only)`);
    return key;
  }

  sign(key: KeyRecord, signed: Signed): Promise<Buffer> {
    if (key.providerRef === undefined) throw new AstoreError('InvalidArgument', `key ${key.id} has no private part`);
    return this.provider.sign(key.providerRef, signed);
  }

  private async addVersion(name: string, version: number, spec: NewKey, createdBy: string, expiresAt?: Date): Promise<KeyRecord> {
    const id = `${name}/${version}`;
    const base = { id, name, version, createdBy, createdAt: new Date(), ...(expiresAt !== undefined && { expiresAt }) };
    let record: KeyRecord;
    try {
      if ('certificatePem' in spec) {
        const cert = new X509Certificate(spec.certificatePem);
        record = { ...base, kind: 'certificate', algorithm: 'x509', publicPem: cert.toString(), fingerprint: fingerprint(cert.publicKey.export({ type: 'spki', format: 'pem' }).toString()) };
      } else if ('publicKeyPem' in spec) {
        const key = importPublicKey(spec.publicKeyPem);
        record = { ...base, kind: 'public', algorithm: key.algorithm, publicPem: key.publicPem, fingerprint: fingerprint(key.publicPem) };
      } else {
        const key = 'generate' in spec ? generateKeyPair(spec.generate) : importPrivateKey(spec.privateKeyPem, spec.passphrase);
        const providerRef = await this.provider.store(id, key.privatePem);
        record = { ...base, kind: 'signing', algorithm: key.algorithm, publicPem: key.publicPem, fingerprint: fingerprint(key.publicPem), providerRef };
      }
    } catch (err) {
      if (err instanceof AstoreError) throw err;
      throw new AstoreError('InvalidArgument', `the key cannot be used: ${(err as Error).message}`);
    }
    if (!(await this.meta.supplychain.createKey(record))) throw new AstoreError('EntityAlreadyExists', `key ${id} exists`);
    return record;
  }
}

function algorithmOf(key: KeyRecord): SigningAlgorithm {
  if (key.algorithm === 'ecdsa-p256' || key.algorithm === 'ed25519') return key.algorithm;
  if (key.algorithm === 'rsa') {
    const bits = createPublicKey(key.publicPem).asymmetricKeyDetails?.modulusLength ?? 3072;
    return bits >= 4096 ? 'rsa-4096' : 'rsa-3072';
  }
  throw new AstoreError('InvalidArgument', `key ${key.id} (${key.algorithm}) cannot be regenerated; import the next version`);
}

/** A key as the API shows it: never the private part or its reference. */
export function keyView(key: KeyRecord): Record<string, unknown> {
  return {
    id: key.id,
    name: key.name,
    version: key.version,
    kind: key.kind,
    algorithm: key.algorithm,
    fingerprint: key.fingerprint,
    publicKey: key.publicPem,
    createdBy: key.createdBy,
    createdAt: key.createdAt.toISOString(),
    ...(key.expiresAt && { expiresAt: key.expiresAt.toISOString() }),
    ...(key.retiredAt && { retiredAt: key.retiredAt.toISOString() }),
    ...(key.revokedAt && { revokedAt: key.revokedAt.toISOString() }),
    status: key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt <= new Date() ? 'expired' : key.retiredAt ? 'retired' : 'active',
  };
}
