import { FsBlobStore, type FsBlobStoreOptions } from './fs.ts';
import type { BlobStore } from './types.ts';

export { BlobNotFoundError, validateBlobKey } from './types.ts';
export type { BlobListing, BlobStat, BlobStore, ByteRange } from './types.ts';
export { FsBlobStore, validateBlobPrefix, type FsBlobStoreOptions } from './fs.ts';

/** Driver name → factory; each factory takes that driver's validated options from config. */
export const blobStoreDrivers = {
  fs: (options: FsBlobStoreOptions): Promise<BlobStore> => FsBlobStore.open(options),
} satisfies Record<string, (options: never) => Promise<BlobStore>>;
