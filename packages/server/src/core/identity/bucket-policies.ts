import type { AuditEntry, MetaStore } from '../../storage/meta/types.ts';
import { AstoreError } from '../errors.ts';
import { bucketPolicyToDocument } from '../policy/bucket-policy.ts';
import { currentActor } from './actor.ts';
import { type IdentityService, bucketPolicyName } from './service.ts';

/**
 * S3 bucket policies (IAM JSON), kept as the client sent them and enforced by the one policy engine:
 * stored as the policy `bucket:<name>` and converted when the engine is compiled. A document the engine
 * cannot express is refused on the way in (MalformedPolicy), never half-applied.
 */
export class BucketPolicyService {
  constructor(
    private readonly meta: MetaStore,
    private readonly identity: IdentityService,
  ) {}

  async get(bucket: string): Promise<string> {
    await this.requireBucket(bucket);
    const record = await this.meta.identity.getPolicy(bucketPolicyName(bucket));
    if (!record) throw new AstoreError('NoSuchBucketPolicy', undefined, { BucketName: bucket });
    return record.document;
  }

  async put(bucket: string, json: string): Promise<void> {
    await this.requireBucket(bucket);
    bucketPolicyToDocument(bucket, json);
    const name = bucketPolicyName(bucket);
    const now = new Date();
    const existing = await this.meta.identity.getPolicy(name);
    await this.meta.identity.putPolicy({ name, document: json, createdAt: existing?.createdAt ?? now, updatedAt: now }, changeByActor('s3:PutBucketPolicy', bucket));
    this.identity.invalidate();
  }

  async delete(bucket: string): Promise<void> {
    await this.requireBucket(bucket);
    await this.meta.identity.deletePolicy(bucketPolicyName(bucket), changeByActor('s3:DeleteBucketPolicy', bucket));
    this.identity.invalidate();
  }

  private async requireBucket(bucket: string): Promise<void> {
    if (!(await this.meta.buckets.get(bucket))) throw new AstoreError('NoSuchBucket', undefined, { BucketName: bucket });
  }
}

/** The audit entry of a bucket-policy change by the request's actor (none outside a request). */
function changeByActor(action: string, bucket: string): AuditEntry | undefined {
  const actor = currentActor();
  return actor && { at: new Date(), ...actor, action, resource: `s3:${bucket}`, outcome: 'success' };
}
