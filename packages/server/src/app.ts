import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { resolveRootCredentials, type RootCredentials } from './auth/credentials.ts';
import type { Config } from './config/schema.ts';
import { BucketService } from './core/buckets.ts';
import { ContentStore } from './core/content.ts';
import { GarbageCollector } from './core/gc.ts';
import { bootstrapAdminPolicy, configuredPolicies } from './core/identity/configured.ts';
import { hashPassword, validatePassword } from './core/identity/passwords.ts';
import { SecretBox, loadServerKey } from './core/identity/secrets.ts';
import { IdentityService } from './core/identity/service.ts';
import { OidcVerifier } from './core/identity/oidc.ts';
import { MultipartService } from './core/multipart.ts';
import { RegistryBlobService } from './core/registry/blobs.ts';
import { ManifestService } from './core/registry/manifests.ts';
import { ObjectService } from './core/objects.ts';
import { FileKeyProvider } from './core/supplychain/keys.ts';
import { SupplyChainService } from './core/supplychain/service.ts';
import { type ResilientBlobStore, blobStoreDrivers, resilient } from './storage/blob/index.ts';
import type { BlobStore } from './storage/blob/types.ts';
import { metaStoreDrivers } from './storage/meta/index.ts';
import type { MetaStore } from './storage/meta/types.ts';

/** Everything below the protocols, wired from configuration. */
export interface App {
  config: Readonly<Config>;
  log: Logger;
  /** The configured driver behind retries and a circuit breaker (its state feeds readiness). */
  blobs: ResilientBlobStore;
  meta: MetaStore;
  content: ContentStore;
  buckets: BucketService;
  objects: ObjectService;
  multipart: MultipartService;
  registryBlobs: RegistryBlobService;
  manifests: ManifestService;
  gc: GarbageCollector;
  supplyChain: SupplyChainService;
  root: RootCredentials;
  identity: IdentityService;
  secrets: SecretBox;
  /** Keys of their own (registry tokens) are derived from it. */
  serverKey: Buffer;
  close(): Promise<void>;
}

export async function openApp(config: Readonly<Config>, log: Logger): Promise<App> {
  const dataDir = resolve(config.dataDir);
  const blobs = resilient(await openBlobStore(config, dataDir), config.storage.blob.resilience);
  const meta = await openMetaStore(config, dataDir);
  const root = await resolveRootCredentials(dataDir, config.auth);
  const serverKey = await loadServerKey(dataDir, config.auth.serverKey);
  const secrets = new SecretBox(serverKey);
  const identity = new IdentityService(
    meta,
    secrets,
    {
      root,
      configuredPolicies: configuredPolicies({
        anonymousReadBuckets: config.s3.anonymousReadBuckets,
        anonymousPullRepositories: config.oci.anonymousPullRepositories,
      }),
      auditAllowedReadSampling: config.audit.allowedReadSampling,
      refreshMs: 1000,
    },
    log.child({ module: 'identity' }),
    config.auth.oidc ? new OidcVerifier(config.auth.oidc) : undefined,
  );
  if (config.auth.bootstrapAdmin) await bootstrapAdmin(meta, config.auth.bootstrapAdmin, log);
  const content = new ContentStore(blobs, meta);
  const objects = new ObjectService(meta, content, config.s3.maxObjectSizeBytes);
  const multipart = new MultipartService(meta, content, objects, {
    minPartBytes: config.s3.minPartSizeBytes,
    maxPartBytes: 5 * 1024 ** 3,
  });
  const gc = new GarbageCollector(
    meta,
    blobs,
    {
      graceMs: config.gc.graceSeconds * 1000,
      multipartExpiryMs: config.gc.multipartExpirySeconds * 1000,
      registryUploadExpiryMs: config.gc.registryUploadExpirySeconds * 1000,
      untaggedManifestsMs: config.gc.untaggedManifestsAfterSeconds * 1000,
      intervalMs: config.gc.enabled ? config.gc.intervalSeconds * 1000 : 0,
    },
    log.child({ module: 'gc' }),
  );
  const registryBlobs = new RegistryBlobService(meta, content, {
    maxBlobBytes: config.oci.maxBlobBytes,
    // Refreshed when a client checks for it with less than half the grace period left.
    linkRefreshMs: (config.gc.graceSeconds * 1000) / 2,
    ...(config.storage.blob.s3?.presignedGetSeconds !== undefined && {
      redirectAboveBytes: config.oci.redirectBlobsAboveBytes,
      redirectSeconds: config.storage.blob.s3.presignedGetSeconds,
    }),
  });
  const manifests = new ManifestService(meta, { maxManifestBytes: config.oci.maxManifestBytes });
  const supplyChain = new SupplyChainService(
    meta,
    content,
    registryBlobs,
    manifests,
    new FileKeyProvider(config.supplychain.keys.path ?? resolve(dataDir, 'signing-keys'), secrets),
    {
      maxDocumentBytes: config.supplychain.maxDocumentBytes,
      refreshMs: config.supplychain.refreshSeconds * 1000,
      auditAllowedSampling: config.audit.allowedReadSampling,
    },
    log.child({ module: 'supplychain' }),
  );
  return {
    config,
    log,
    blobs,
    meta,
    content,
    buckets: new BucketService(meta, config.s3.region),
    objects,
    multipart,
    registryBlobs,
    manifests,
    gc,
    supplyChain,
    root,
    identity,
    secrets,
    serverKey,
    async close() {
      await gc.stop();
      await meta.close();
      await blobs.close();
    },
  };
}

/**
 * Creates the configured administrator (and its all-allowing policy) when missing. An existing user
 * is left as it is: its password may have been changed since.
 */
async function bootstrapAdmin(meta: MetaStore, admin: { name: string; password: string }, log: Logger): Promise<void> {
  if (!(await meta.identity.getUser(admin.name))) {
    validatePassword(admin.password);
    const now = new Date();
    const audit = { at: now, principal: 'root', action: 'admin:CreateUser', resource: `api:users/${admin.name}`, outcome: 'success' as const, detail: { bootstrap: true } };
    if (await meta.identity.createUser({ name: admin.name, passwordHash: await hashPassword(admin.password), disabled: false, createdAt: now }, audit)) {
      log.info({ user: admin.name }, 'bootstrap administrator created');
    }
  }
  const policy = bootstrapAdminPolicy(admin.name);
  if (!(await meta.identity.getPolicy(policy.name))) {
    const now = new Date();
    await meta.identity.putPolicy(
      { name: policy.name, document: JSON.stringify(policy), createdAt: now, updatedAt: now },
      { at: now, principal: 'root', action: 'admin:PutPolicy', resource: `api:policies/${policy.name}`, outcome: 'success', detail: { bootstrap: true } },
    );
  }
}

/** The configured BlobStore driver with its section of the configuration. */
export function openBlobStore(config: Readonly<Config>, dataDir: string): Promise<BlobStore> {
  const blob = config.storage.blob;
  switch (blob.driver) {
    case 'fs':
      return blobStoreDrivers.fs({ path: blob.fs.path ?? resolve(dataDir, 'blobs') });
    case 's3':
      return blobStoreDrivers.s3({ ...blob.s3! });
    case 'azure':
      return blobStoreDrivers.azure({ ...blob.azure! });
    case 'gcs':
      return blobStoreDrivers.gcs({ ...blob.gcs! });
  }
}

/** The configured MetaStore dialect, migrated. */
export function openMetaStore(config: Readonly<Config>, dataDir: string): Promise<MetaStore> {
  const meta = config.storage.meta;
  if (meta.driver === 'postgres') return metaStoreDrivers.postgres({ ...meta.postgres!, applicationName: 'astore' });
  return metaStoreDrivers.sqlite({ path: meta.sqlite.path ?? resolve(dataDir, 'meta.db'), synchronous: meta.sqlite.synchronous });
}
