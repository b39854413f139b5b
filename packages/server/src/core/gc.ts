import type { Logger } from 'pino';
import type { BlobStore } from '../storage/blob/types.ts';
import type { MetaStore } from '../storage/meta/types.ts';
import { blobKey, stagingPrefix } from './content.ts';

export interface GcOptions {
  /** Unreferenced blobs and staging leftovers younger than this are kept. */
  graceMs: number;
  /** Multipart uploads initiated longer ago than this are aborted. */
  multipartExpiryMs: number;
  /** Registry upload sessions idle for longer than this are cancelled. */
  registryUploadExpiryMs: number;
  /** Untagged, unreferenced manifests older than this are deleted; 0 keeps them. */
  untaggedManifestsMs: number;
  intervalMs: number;
}

export interface GcReport {
  expiredUploads: number;
  expiredRegistryUploads: number;
  deletedManifests: number;
  expiredLinks: number;
  deletedBlobs: number;
  deletedBytes: number;
  deletedStaging: number;
}

const batchSize = 500;

/**
 * Online garbage collector. Blobs are reference-counted from the MetaStore (no object segment, upload
 * part, repository link or registry upload chunk names them); each candidate is re-checked and deleted under the row lock that excludes
 * a concurrent ingest of the same bytes (BlobMeta.deleteIfGarbage / touch), so uploads go on meanwhile.
 * Staging keys (bytes of uploads in flight, or left by a crash) are removed once older than the grace.
 */
export class GarbageCollector {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<GcReport> | undefined;

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly options: GcOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer || this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.runOnce().catch((err: unknown) => this.log.error({ err }, 'garbage collection failed'));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  /** One full pass; concurrent calls share the pass in progress. */
  runOnce(now = new Date()): Promise<GcReport> {
    this.running ??= this.pass(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(now: Date): Promise<GcReport> {
    const report: GcReport = {
      expiredUploads: 0,
      expiredRegistryUploads: 0,
      deletedManifests: 0,
      expiredLinks: 0,
      deletedBlobs: 0,
      deletedBytes: 0,
      deletedStaging: 0,
    };
    const expiredBefore = new Date(now.getTime() - this.options.multipartExpiryMs);
    for (;;) {
      const uploads = await this.meta.uploads.listInitiatedBefore(expiredBefore, batchSize);
      for (const u of uploads) if (await this.meta.uploads.abort(u.uploadId)) report.expiredUploads++;
      if (uploads.length < batchSize) break;
    }

    const idleBefore = new Date(now.getTime() - this.options.registryUploadExpiryMs);
    for (;;) {
      const uploads = await this.meta.registry.listUploadsUpdatedBefore(idleBefore, batchSize);
      for (const u of uploads) if (await this.meta.registry.deleteUpload(u.uploadId)) report.expiredRegistryUploads++;
      if (uploads.length < batchSize) break;
    }
    if (this.options.untaggedManifestsMs > 0) {
      const createdBefore = new Date(now.getTime() - this.options.untaggedManifestsMs);
      // Deleting an index can leave its children untagged and unreferenced: the next batch sees them,
      // so this goes on until a batch finds nothing.
      for (let n = 1; n > 0; ) {
        n = await this.meta.registry.deleteUntaggedManifests(createdBefore, batchSize);
        report.deletedManifests += n;
      }
    }

    // Links first: a layer no manifest references is kept for the grace period (its manifest may be
    // on the way), then unlinked; the blob itself then waits for its own grace period below.
    const touchedBefore = new Date(now.getTime() - this.options.graceMs);
    for (let n = batchSize; n === batchSize; ) {
      n = await this.meta.registry.expireLinks(touchedBefore, batchSize);
      report.expiredLinks += n;
    }
    for (;;) {
      const candidates = await this.meta.blobs.listGarbage(touchedBefore, batchSize);
      let progressed = false;
      for (const blob of candidates) {
        const deleted = await this.meta.blobs.deleteIfGarbage(blob.digest, touchedBefore, () => this.blobs.delete(blobKey(blob.digest)));
        if (deleted) {
          progressed = true;
          report.deletedBlobs++;
          report.deletedBytes += blob.size;
        }
      }
      if (candidates.length < batchSize || !progressed) break;
    }

    for await (const entry of this.blobs.list(stagingPrefix)) {
      if (entry.modifiedAt && entry.modifiedAt < touchedBefore) {
        await this.blobs.delete(entry.key);
        report.deletedStaging++;
      }
    }
    if (Object.values(report).some((n) => n > 0)) this.log.info(report, 'garbage collected');
    return report;
  }
}
