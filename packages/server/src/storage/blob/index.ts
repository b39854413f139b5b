import type { AzureBlobStoreOptions } from './azure.ts';
import { FsBlobStore, type FsBlobStoreOptions } from './fs.ts';
import type { GcsBlobStoreOptions } from './gcs.ts';
import type { S3BlobStoreOptions } from './s3.ts';
import type { BlobStore } from './types.ts';

export { BlobNotFoundError, validateBlobKey } from './types.ts';
export type { BlobListing, BlobStat, BlobStore, ByteRange } from './types.ts';
export { FsBlobStore, validateBlobPrefix, type FsBlobStoreOptions } from './fs.ts';
export { ResilientBlobStore, resilient, type BackendState, type ResilienceOptions } from './resilient.ts';

/**
 * Driver name → factory; each factory takes that driver's validated options from config. The cloud
 * drivers are loaded when chosen: each vendor SDK costs 20-35 MiB of memory just by being imported.
 */
export const blobStoreDrivers = {
  fs: (options: FsBlobStoreOptions): Promise<BlobStore> => FsBlobStore.open(options),
  s3: async (options: S3BlobStoreOptions): Promise<BlobStore> => (await import('./s3.ts')).S3BlobStore.open(options),
  azure: async (options: AzureBlobStoreOptions): Promise<BlobStore> => (await import('./azure.ts')).AzureBlobStore.open(options),
  gcs: async (options: GcsBlobStoreOptions): Promise<BlobStore> => (await import('./gcs.ts')).GcsBlobStore.open(options),
} satisfies Record<string, (options: never) => Promise<BlobStore>>;

export type BlobStoreDriverName = keyof typeof blobStoreDrivers;
