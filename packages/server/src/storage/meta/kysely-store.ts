import type { Kysely } from 'kysely';
import { KyselyBlobMeta } from './blobs.ts';
import { KyselyBucketMeta } from './buckets.ts';
import { KyselyAuditMeta } from './audit.ts';
import type { Database, DialectHooks } from './db.ts';
import { KyselyIdentityMeta } from './identity.ts';
import { KyselyLeaseMeta } from './leases.ts';
import { migrate } from './migrations.ts';
import { KyselyObjectMeta } from './objects.ts';
import { KyselyRegistryMeta } from './registry.ts';
import { KyselySupplyChainMeta } from './supplychain.ts';
import { KyselyUploadMeta } from './uploads.ts';
import type { AuditMeta, BlobMeta, BucketMeta, IdentityMeta, LeaseMeta, MetaStore, ObjectMeta, RegistryMeta, SupplyChainMeta, UploadMeta } from './types.ts';

/**
 * The MetaStore over any Kysely dialect. A dialect brings its Kysely instance (driver, pool,
 * transaction semantics) and its DialectHooks (schema differences); the queries are shared.
 * Every method that changes more than one row runs in one write transaction.
 */
export class KyselyMetaStore implements MetaStore {
  readonly dialect: string;
  readonly buckets: BucketMeta;
  readonly objects: ObjectMeta;
  readonly uploads: UploadMeta;
  readonly blobs: BlobMeta;
  readonly registry: RegistryMeta;
  readonly identity: IdentityMeta;
  readonly audit: AuditMeta;
  readonly supplychain: SupplyChainMeta;
  readonly leases: LeaseMeta;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly hooks: DialectHooks,
    /** Releases what the dialect holds besides the connection (e.g. SQLite's WAL sync handle). */
    private readonly release: () => Promise<void> = async () => {},
  ) {
    this.dialect = hooks.name;
    this.buckets = new KyselyBucketMeta(db);
    this.objects = new KyselyObjectMeta(db);
    this.uploads = new KyselyUploadMeta(db);
    this.blobs = new KyselyBlobMeta(db);
    this.registry = new KyselyRegistryMeta(db);
    this.identity = new KyselyIdentityMeta(db);
    this.audit = new KyselyAuditMeta(db);
    this.supplychain = new KyselySupplyChainMeta(db);
    this.leases = new KyselyLeaseMeta(db);
  }

  migrate(): Promise<void> {
    return migrate(this.db as Kysely<unknown>, this.hooks);
  }

  /** Closes the connection (or pool); the store is unusable afterwards. */
  async close(): Promise<void> {
    await this.db.destroy();
    await this.release();
  }
}
