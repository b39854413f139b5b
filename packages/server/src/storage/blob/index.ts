import { AzureBlobStore, type AzureBlobStoreOptions } from './azure.ts';
import { FsBlobStore, type FsBlobStoreOptions } from './fs.ts';
import { GcsBlobStore, type GcsBlobStoreOptions } from './gcs.ts';
import { S3BlobStore, type S3BlobStoreOptions } from './s3.ts';
import type { BlobStore } from './types.ts';

export { BlobNotFoundError, validateBlobKey } from './types.ts';
export type { BlobListing, BlobStat, BlobStore, ByteRange } from './types.ts';
export { FsBlobStore, validateBlobPrefix, type FsBlobStoreOptions } from './fs.ts';
export { ResilientBlobStore, resilient, type BackendState, type ResilienceOptions } from './resilient.ts';

/** Driver name → factory; each factory takes that driver's validated options from config. */
export const blobStoreDrivers = {
  fs: (options: FsBlobStoreOptions): Promise<BlobStore> => FsBlobStore.open(options),
  s3: (options: S3BlobStoreOptions): Promise<BlobStore> => S3BlobStore.open(options),
  azure: (options: AzureBlobStoreOptions): Promise<BlobStore> => AzureBlobStore.open(options),
  gcs: (options: GcsBlobStoreOptions): Promise<BlobStore> => GcsBlobStore.open(options),
} satisfies Record<string, (options: never) => Promise<BlobStore>>;

export type BlobStoreDriverName = keyof typeof blobStoreDrivers;
