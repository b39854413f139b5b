import { type Kysely, sql } from 'kysely';
import { type Migration, Migrator } from 'kysely/migration';
import type { DialectHooks } from './db.ts';

/**
 * Schema migrations, in code so they ship inside the package. Names sort in the order they apply;
 * a released migration is never edited, only followed by a new one.
 *
 * Foreign keys state the invariants the store keeps anyway: an object or upload names an existing
 * bucket, a segment or part names an existing blob row (so the garbage collector cannot delete a
 * referenced blob even by mistake), a part belongs to an existing upload, a group membership or an
 * access key names an existing user (and group), a supply-chain record names an existing blob row
 * (its document) and its components and facts an existing record. Deletes are explicit in the store,
 * never cascaded, so every removed row is visible in the code that removes it.
 */
export function migrations(hooks: DialectHooks): Record<string, Migration> {
  const byteOrderText = hooks.byteOrderText;
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('buckets')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('region', 'text', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('blobs')
          .addColumn('digest', 'text', (col) => col.primaryKey())
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('touched_at', 'bigint', (col) => col.notNull())
          .execute();
        await db.schema.createIndex('blobs_touched_at').on('blobs').columns(['touched_at', 'digest']).execute();

        await hooks
          .addIdColumn(db.schema.createTable('objects'))
          .addColumn('bucket', byteOrderText, (col) => col.notNull().references('buckets.name'))
          .addColumn('key', byteOrderText, (col) => col.notNull())
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('etag', 'text', (col) => col.notNull())
          .addColumn('last_modified', 'bigint', (col) => col.notNull())
          .addColumn('headers', 'text', (col) => col.notNull())
          .addColumn('user_metadata', 'text', (col) => col.notNull())
          .addColumn('checksum_algorithm', 'text')
          .addColumn('checksum_value', 'text')
          .addColumn('checksum_type', 'text')
          .addColumn('digest', 'text')
          // Also the index behind listing: bucket = ? AND key >= prefix AND key < bound ORDER BY key.
          .addUniqueConstraint('objects_bucket_key', ['bucket', 'key'])
          .execute();

        await db.schema
          .createTable('object_segments')
          .addColumn('object_id', 'bigint', (col) => col.notNull().references('objects.id'))
          .addColumn('seq', 'integer', (col) => col.notNull())
          .addColumn('digest', 'text', (col) => col.notNull().references('blobs.digest'))
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('part_number', 'integer')
          .addColumn('etag', 'text')
          .addColumn('checksum', 'text')
          .addPrimaryKeyConstraint('object_segments_pk', ['object_id', 'seq'])
          .execute();
        // Backs the garbage collector's NOT EXISTS and the foreign-key check on blob deletion.
        await db.schema.createIndex('object_segments_digest').on('object_segments').column('digest').execute();

        await db.schema
          .createTable('multipart_uploads')
          .addColumn('upload_id', byteOrderText, (col) => col.primaryKey())
          .addColumn('bucket', byteOrderText, (col) => col.notNull().references('buckets.name'))
          .addColumn('key', byteOrderText, (col) => col.notNull())
          .addColumn('initiated', 'bigint', (col) => col.notNull())
          .addColumn('headers', 'text', (col) => col.notNull())
          .addColumn('user_metadata', 'text', (col) => col.notNull())
          .addColumn('checksum_algorithm', 'text')
          .addColumn('checksum_type', 'text')
          .execute();
        await db.schema
          .createIndex('multipart_uploads_listing')
          .on('multipart_uploads')
          .columns(['bucket', 'key', 'initiated', 'upload_id'])
          .execute();
        await db.schema
          .createIndex('multipart_uploads_initiated')
          .on('multipart_uploads')
          .columns(['initiated', 'upload_id'])
          .execute();

        await db.schema
          .createTable('upload_parts')
          .addColumn('upload_id', byteOrderText, (col) => col.notNull().references('multipart_uploads.upload_id'))
          .addColumn('part_number', 'integer', (col) => col.notNull())
          .addColumn('digest', 'text', (col) => col.notNull().references('blobs.digest'))
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('etag', 'text', (col) => col.notNull())
          .addColumn('checksum', 'text')
          .addColumn('last_modified', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('upload_parts_pk', ['upload_id', 'part_number'])
          .execute();
        await db.schema.createIndex('upload_parts_digest').on('upload_parts').column('digest').execute();
      },
    },

    '0002_registry': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('repositories')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('repository_blobs')
          .addColumn('repository', byteOrderText, (col) => col.notNull().references('repositories.name'))
          .addColumn('digest', 'text', (col) => col.notNull())
          .addColumn('blob', 'text', (col) => col.notNull().references('blobs.digest'))
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('touched_at', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_blob').on('repository_blobs').column('blob').execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
        await db.schema.createIndex('repository_blobs_touched_at').on('repository_blobs').column('touched_at').execute();

        await db.schema
          .createTable('manifests')
          .addColumn('repository', byteOrderText, (col) => col.notNull().references('repositories.name'))
          .addColumn('digest', 'text', (col) => col.notNull())
          .addColumn('media_type', 'text', (col) => col.notNull())
          .addColumn('artifact_type', 'text')
          .addColumn('subject', 'text')
          .addColumn('annotations', 'text')
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('content', hooks.bytes, (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('manifests_pk', ['repository', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository', 'subject', 'created_at']).execute();
        await db.schema.createIndex('manifests_created_at').on('manifests').column('created_at').execute();

        await db.schema
          .createTable('manifest_refs')
          .addColumn('repository', byteOrderText, (col) => col.notNull())
          .addColumn('manifest', 'text', (col) => col.notNull())
          .addColumn('ref', 'text', (col) => col.notNull())
          .addColumn('kind', 'text', (col) => col.notNull())
          .addPrimaryKeyConstraint('manifest_refs_pk', ['repository', 'manifest', 'kind', 'ref'])
          .execute();
        await db.schema.createIndex('manifest_refs_ref').on('manifest_refs').columns(['repository', 'ref']).execute();

        await db.schema
          .createTable('tags')
          .addColumn('repository', byteOrderText, (col) => col.notNull().references('repositories.name'))
          .addColumn('name', byteOrderText, (col) => col.notNull())
          .addColumn('digest', 'text', (col) => col.notNull())
          .addColumn('updated_at', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository', 'name'])
          .execute();
        await db.schema.createIndex('tags_digest').on('tags').columns(['repository', 'digest']).execute();

        await db.schema
          .createTable('registry_uploads')
          .addColumn('upload_id', byteOrderText, (col) => col.primaryKey())
          .addColumn('repository', byteOrderText, (col) => col.notNull().references('repositories.name'))
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('updated_at', 'bigint', (col) => col.notNull())
          .addColumn('size', 'bigint', (col) => col.notNull())
          .execute();
        await db.schema.createIndex('registry_uploads_updated_at').on('registry_uploads').column('updated_at').execute();

        await db.schema
          .createTable('registry_upload_chunks')
          .addColumn('upload_id', byteOrderText, (col) => col.notNull().references('registry_uploads.upload_id'))
          .addColumn('seq', 'integer', (col) => col.notNull())
          .addColumn('digest', 'text', (col) => col.notNull().references('blobs.digest'))
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('registry_upload_chunks_pk', ['upload_id', 'seq'])
          .execute();
        await db.schema.createIndex('registry_upload_chunks_digest').on('registry_upload_chunks').column('digest').execute();
      },
    },

    '0003_identity': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('users')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('password_hash', 'text')
          .addColumn('display_name', 'text')
          .addColumn('email', 'text')
          // 0 or 1: both dialects store it the same way, and the store maps it to a boolean.
          .addColumn('disabled', 'integer', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('groups')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('description', 'text')
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('group_members')
          .addColumn('group_name', byteOrderText, (col) => col.notNull().references('groups.name'))
          .addColumn('user_name', byteOrderText, (col) => col.notNull().references('users.name'))
          .addPrimaryKeyConstraint('group_members_pk', ['group_name', 'user_name'])
          .execute();
        // A user's groups, in order; also the foreign-key check on user deletion.
        await db.schema.createIndex('group_members_user_name').on('group_members').columns(['user_name', 'group_name']).execute();

        await db.schema
          .createTable('access_keys')
          .addColumn('access_key_id', byteOrderText, (col) => col.primaryKey())
          .addColumn('user_name', byteOrderText, (col) => col.notNull().references('users.name'))
          .addColumn('secret_ciphertext', 'text', (col) => col.notNull())
          .addColumn('description', 'text')
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('access_keys_user_name').on('access_keys').columns(['user_name', 'created_at']).execute();

        await db.schema
          .createTable('policies')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('document', 'text', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('updated_at', 'bigint', (col) => col.notNull())
          .execute();

        // One row (id 1): the generation every identity change bumps in its own transaction.
        await db.schema
          .createTable('identity_state')
          .addColumn('id', 'integer', (col) => col.primaryKey())
          .addColumn('generation', 'bigint', (col) => col.notNull())
          .execute();
        await sql`insert into identity_state (id, generation) values (1, 0)`.execute(db);

        // action and resource are filtered by prefix (>= prefix and < bound), so they compare as bytes.
        await hooks
          .addIdColumn(db.schema.createTable('audit_log'))
          .addColumn('at', 'bigint', (col) => col.notNull())
          .addColumn('principal', byteOrderText, (col) => col.notNull())
          .addColumn('access_key_id', 'text')
          .addColumn('action', byteOrderText, (col) => col.notNull())
          .addColumn('resource', byteOrderText, (col) => col.notNull())
          .addColumn('outcome', 'text', (col) => col.notNull())
          .addColumn('source_ip', 'text')
          .addColumn('request_id', 'text')
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
        await db.schema.createIndex('audit_log_principal').on('audit_log').columns(['principal', 'id']).execute();
        await db.schema.createIndex('audit_log_action').on('audit_log').columns(['action', 'id']).execute();
        await db.schema.createIndex('audit_log_resource').on('audit_log').columns(['resource', 'id']).execute();
      },
    },

    '0004_supplychain': {
      async up(db: Kysely<unknown>): Promise<void> {
        await db.schema
          .createTable('sc_records')
          .addColumn('id', byteOrderText, (col) => col.primaryKey())
          .addColumn('subject', 'text', (col) => col.notNull())
          .addColumn('kind', 'text', (col) => col.notNull())
          .addColumn('format', 'text', (col) => col.notNull())
          .addColumn('media_type', 'text', (col) => col.notNull())
          // Keeps the document's blob from the garbage collector, as a segment keeps an object's.
          .addColumn('content_digest', 'text', (col) => col.notNull().references('blobs.digest'))
          .addColumn('size', 'bigint', (col) => col.notNull())
          .addColumn('bucket', byteOrderText)
          .addColumn('object_key', byteOrderText)
          .addColumn('repository', byteOrderText)
          .addColumn('source_manifest', 'text')
          .addColumn('source_layer', 'integer', (col) => col.notNull())
          .addColumn('predicate_type', 'text')
          .addColumn('key_hint', 'text')
          .addColumn('created_by', 'text', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .execute();
        // A record read from a registry manifest is stored once (putRecord's 'exists'); NULLs are
        // distinct, so records not read from a manifest never collide. Also serves
        // deleteRecordsFromManifest and findLacking's "is this manifest a supply-chain artifact".
        await db.schema
          .createIndex('sc_records_source')
          .on('sc_records')
          .columns(['repository', 'source_manifest', 'source_layer'])
          .unique()
          .execute();
        // listRecords, each filter with the (created_at, id) order and cursor behind it.
        await db.schema.createIndex('sc_records_subject').on('sc_records').columns(['subject', 'created_at', 'id']).execute();
        await db.schema.createIndex('sc_records_object').on('sc_records').columns(['bucket', 'object_key', 'created_at', 'id']).execute();
        await db.schema.createIndex('sc_records_repository').on('sc_records').columns(['repository', 'created_at', 'id']).execute();
        await db.schema.createIndex('sc_records_created_at').on('sc_records').columns(['created_at', 'id']).execute();
        // The garbage collector's NOT EXISTS and the foreign-key check on blob deletion.
        await db.schema.createIndex('sc_records_content_digest').on('sc_records').column('content_digest').execute();

        await hooks
          .addIdColumn(db.schema.createTable('sc_components'))
          .addColumn('record_id', byteOrderText, (col) => col.notNull().references('sc_records.id'))
          .addColumn('subject', 'text', (col) => col.notNull())
          .addColumn('name', byteOrderText, (col) => col.notNull())
          .addColumn('version', 'text')
          // Compared by range (version bounds, paging), so it must compare as bytes.
          .addColumn('version_key', byteOrderText, (col) => col.notNull())
          .addColumn('purl', 'text')
          .addColumn('purl_base', byteOrderText)
          .addColumn('licenses', 'text', (col) => col.notNull())
          .addColumn('hashes', 'text', (col) => col.notNull())
          .addColumn('bucket', byteOrderText)
          .addColumn('object_key', byteOrderText)
          .addColumn('repository', byteOrderText)
          .execute();
        // findComponents: equality on the package, a range on the version, then (version_key, id) order.
        await db.schema.createIndex('sc_components_purl').on('sc_components').columns(['purl_base', 'version_key', 'id']).execute();
        await db.schema.createIndex('sc_components_name').on('sc_components').columns(['name', 'version_key', 'id']).execute();
        await db.schema.createIndex('sc_components_record').on('sc_components').column('record_id').execute();

        await db.schema
          .createTable('sc_facts')
          .addColumn('record_id', byteOrderText, (col) => col.primaryKey().references('sc_records.id'))
          .addColumn('subject', 'text', (col) => col.notNull())
          .addColumn('predicate_type', 'text', (col) => col.notNull())
          .addColumn('builder_id', 'text')
          .addColumn('build_type', 'text')
          .addColumn('materials', 'text', (col) => col.notNull())
          .execute();
        // listFacts, and findLacking's NOT EXISTS probe per artifact.
        await db.schema.createIndex('sc_facts_subject').on('sc_facts').columns(['subject', 'predicate_type', 'builder_id']).execute();

        await db.schema
          .createTable('sc_keys')
          .addColumn('id', byteOrderText, (col) => col.primaryKey())
          .addColumn('name', byteOrderText, (col) => col.notNull())
          .addColumn('version', 'integer', (col) => col.notNull())
          .addColumn('kind', 'text', (col) => col.notNull())
          .addColumn('algorithm', 'text', (col) => col.notNull())
          .addColumn('public_pem', 'text', (col) => col.notNull())
          .addColumn('fingerprint', 'text', (col) => col.notNull())
          .addColumn('provider_ref', 'text')
          .addColumn('created_by', 'text', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('retired_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .addUniqueConstraint('sc_keys_name_version', ['name', 'version'])
          .execute();

        await db.schema
          .createTable('sc_trust_policies')
          .addColumn('name', byteOrderText, (col) => col.primaryKey())
          .addColumn('document', 'text', (col) => col.notNull())
          .addColumn('created_at', 'bigint', (col) => col.notNull())
          .addColumn('updated_at', 'bigint', (col) => col.notNull())
          .execute();

        await db.schema
          .createTable('sc_verifications')
          .addColumn('subject', byteOrderText, (col) => col.notNull())
          .addColumn('policy', byteOrderText, (col) => col.notNull())
          .addColumn('status', 'text', (col) => col.notNull())
          .addColumn('reason', 'text', (col) => col.notNull())
          .addColumn('verified_by', 'text')
          .addColumn('evaluated_at', 'bigint', (col) => col.notNull())
          .addColumn('generation', 'bigint', (col) => col.notNull())
          .addPrimaryKeyConstraint('sc_verifications_pk', ['subject', 'policy'])
          .execute();

        // One row (id 1): the generation every change to records, keys or trust policies bumps.
        await db.schema
          .createTable('sc_state')
          .addColumn('id', 'integer', (col) => col.primaryKey())
          .addColumn('generation', 'bigint', (col) => col.notNull())
          .execute();
        await sql`insert into sc_state (id, generation) values (1, 0)`.execute(db);
      },
    },

    '0005_leases': {
      async up(db: Kysely<unknown>): Promise<void> {
        // Named leases (LeaseMeta): one row per lease ever taken, freed by deleting it or by expiry.
        await db.schema
          .createTable('leases')
          .addColumn('name', 'text', (col) => col.primaryKey())
          .addColumn('holder', 'text', (col) => col.notNull())
          .addColumn('expires_at', 'bigint', (col) => col.notNull())
          .execute();
      },
    },
  };
}

/**
 * Applies every pending migration; a no-op when the schema is current. Kysely's Migrator records
 * applied names in `astore_migration` and holds `astore_migration_lock` meanwhile, so replicas
 * starting together apply each migration once.
 */
export async function migrate(db: Kysely<unknown>, hooks: DialectHooks): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(hooks) },
    migrationTableName: 'astore_migration',
    migrationLockTableName: 'astore_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`MetaStore migration ${failed ?? '(before any migration ran)'} failed: ${String(error)}`, { cause: error });
  }
}
