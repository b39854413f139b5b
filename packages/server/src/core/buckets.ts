import type { BucketRecord, MetaStore } from '../storage/meta/types.ts';
import { AstoreError } from './errors.ts';
import { validateBucketName } from './names.ts';

export class BucketService {
  constructor(
    private readonly meta: MetaStore,
    private readonly defaultRegion: string,
  ) {}

  list(): Promise<BucketRecord[]> {
    return this.meta.buckets.list();
  }

  /** Throws NoSuchBucket when absent. */
  async get(name: string): Promise<BucketRecord> {
    const bucket = await this.meta.buckets.get(name);
    if (!bucket) throw new AstoreError('NoSuchBucket', undefined, { BucketName: name });
    return bucket;
  }

  /**
   * Single-owner store: creating a bucket that exists is BucketAlreadyOwnedByYou (as S3 answers the
   * owner outside us-east-1; us-east-1 answers 200 for legacy reasons, which S3 clients accept either way).
   */
  async create(name: string, region = this.defaultRegion): Promise<BucketRecord> {
    validateBucketName(name);
    if (region !== this.defaultRegion) {
      throw new AstoreError('InvalidLocationConstraint', `This server serves region ${this.defaultRegion}, not ${region}`, { LocationConstraint: region });
    }
    const bucket: BucketRecord = { name, region, createdAt: new Date() };
    if (!(await this.meta.buckets.create(bucket))) {
      throw new AstoreError('BucketAlreadyOwnedByYou', undefined, { BucketName: name });
    }
    return bucket;
  }

  async delete(name: string): Promise<void> {
    const outcome = await this.meta.buckets.delete(name);
    if (outcome === 'missing') throw new AstoreError('NoSuchBucket', undefined, { BucketName: name });
    if (outcome === 'not-empty') throw new AstoreError('BucketNotEmpty', undefined, { BucketName: name });
  }
}
