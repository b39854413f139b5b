import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
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
  /**
   * How long a pass holds the `gc` lease before renewing it (default 2 minutes). It is renewed as the
   * pass goes, at a quarter of this, so it must outlast the longest single step (one blob deletion,
   * one batch of the registry's row collection); a replica that dies mid-pass blocks the others' passes
   * for at most this long.
   */
  leaseTtlMs?: number;
}

export interface GcReport {
  /**
   * 'ran': this replica held the `gc` lease throughout. 'skipped': another replica held it, nothing
   * was done (`heldBy` says who, when it was still held a moment later). 'interrupted': this replica
   * lost the lease mid-pass (a step outlasted its TTL, and another replica may have taken it), so the
   * pass stopped; the counts say what it had done.
   */
  outcome: 'ran' | 'skipped' | 'interrupted';
  heldBy?: { holder: string; expiresAt: string };
  expiredUploads: number;
  expiredRegistryUploads: number;
  deletedManifests: number;
  expiredLinks: number;
  deletedBlobs: number;
  deletedBytes: number;
  deletedStaging: number;
}

const batchSize = 500;
/** The lease that lets one replica at a time collect (LeaseMeta). */
export const gcLeaseName = 'gc';
const defaultLeaseTtlMs = 2 * 60_000;

/** Thrown out of a pass whose lease another replica has taken meanwhile. */
class LeaseLost extends Error {}

/**
 * Online garbage collector. Blobs are reference-counted from the MetaStore (no object segment, upload
 * part, repository link or registry upload chunk names them); each candidate is re-checked and deleted under the row lock that excludes
 * a concurrent ingest of the same bytes (BlobMeta.deleteIfGarbage / touch), so uploads go on meanwhile.
 * Staging keys (bytes of uploads in flight, or left by a crash) are removed once older than the grace.
 *
 * Replicas sharing the stores take turns: a pass first takes the `gc` lease and skips when another
 * replica holds it. The lease only saves duplicated work. Safety against pushes, on this replica or
 * another, rests on the grace periods and the re-checks under lock above, which hold for two passes
 * at once as well (a lease that expires under a stalled pass lets a second one start).
 */
export class GarbageCollector {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<GcReport> | undefined;
  /** This collector's lease holder id: the host and process, for operators, and a random part. */
  readonly holder = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  private readonly leaseTtlMs: number;

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly options: GcOptions,
    private readonly log: Logger,
  ) {
    this.leaseTtlMs = options.leaseTtlMs ?? defaultLeaseTtlMs;
  }

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
      outcome: 'ran',
      expiredUploads: 0,
      expiredRegistryUploads: 0,
      deletedManifests: 0,
      expiredLinks: 0,
      deletedBlobs: 0,
      deletedBytes: 0,
      deletedStaging: 0,
    };
    // Taken before the acquire: the expiry counts from no later than this.
    let renewedAt = Date.now();
    if (!(await this.meta.leases.acquire(gcLeaseName, this.holder, this.leaseTtlMs))) {
      const lease = await this.meta.leases.get(gcLeaseName);
      this.log.debug({ heldBy: lease?.holder }, 'garbage collection skipped: another replica holds the lease');
      return { ...report, outcome: 'skipped', ...(lease && { heldBy: { holder: lease.holder, expiresAt: lease.expiresAt.toISOString() } }) };
    }
    /** Renews the lease once a quarter of its TTL has passed; LeaseLost when another replica has it now. */
    const keepLease = async (): Promise<void> => {
      const at = Date.now();
      if (at - renewedAt < this.leaseTtlMs / 4) return;
      if (!(await this.meta.leases.acquire(gcLeaseName, this.holder, this.leaseTtlMs))) throw new LeaseLost();
      renewedAt = at;
    };
    try {
      await this.collect(now, report, keepLease);
    } catch (err) {
      if (!(err instanceof LeaseLost)) throw err;
      this.log.warn({ report }, 'garbage collection stopped: the lease expired mid-pass and another replica took it');
      report.outcome = 'interrupted';
    } finally {
      await this.meta.leases.release(gcLeaseName, this.holder).catch((err: unknown) => this.log.warn({ err }, 'gc lease not released; it expires by itself'));
    }
    const { outcome: _outcome, heldBy: _heldBy, ...counts } = report;
    if (Object.values(counts).some((n) => n > 0)) this.log.info(report, 'garbage collected');
    return report;
  }

  /** The pass proper, adding to `report` as it goes; `keepLease` runs between steps. */
  private async collect(now: Date, report: GcReport, keepLease: () => Promise<void>): Promise<void> {
    const expiredBefore = new Date(now.getTime() - this.options.multipartExpiryMs);
    for (;;) {
      const uploads = await this.meta.uploads.listInitiatedBefore(expiredBefore, batchSize);
      for (const u of uploads) {
        await keepLease();
        if (await this.meta.uploads.abort(u.uploadId)) report.expiredUploads++;
      }
      if (uploads.length < batchSize) break;
    }

    const idleBefore = new Date(now.getTime() - this.options.registryUploadExpiryMs);
    for (;;) {
      const uploads = await this.meta.registry.listUploadsUpdatedBefore(idleBefore, batchSize);
      for (const u of uploads) {
        await keepLease();
        if (await this.meta.registry.deleteUpload(u.uploadId)) report.expiredRegistryUploads++;
      }
      if (uploads.length < batchSize) break;
    }
    if (this.options.untaggedManifestsMs > 0) {
      const createdBefore = new Date(now.getTime() - this.options.untaggedManifestsMs);
      // Deleting an index can leave its children untagged and unreferenced: the next batch sees them,
      // so this goes on until a batch finds nothing.
      for (let n = 1; n > 0; ) {
        await keepLease();
        n = await this.meta.registry.deleteUntaggedManifests(createdBefore, batchSize);
        report.deletedManifests += n;
      }
    }

    // Links first: a layer no manifest references is kept for the grace period (its manifest may be
    // on the way), then unlinked; the blob itself then waits for its own grace period below.
    const touchedBefore = new Date(now.getTime() - this.options.graceMs);
    for (let n = batchSize; n === batchSize; ) {
      await keepLease();
      n = await this.meta.registry.expireLinks(touchedBefore, batchSize);
      report.expiredLinks += n;
    }
    for (;;) {
      const candidates = await this.meta.blobs.listGarbage(touchedBefore, batchSize);
      let progressed = false;
      for (const blob of candidates) {
        await keepLease();
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
      await keepLease();
      if (entry.modifiedAt && entry.modifiedAt < touchedBefore) {
        await this.blobs.delete(entry.key);
        report.deletedStaging++;
      }
    }
  }
}
