import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool, Transaction } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { touchBlobs } from './blobs.ts';
import { auditChange } from './change-audit.ts';
import { type Database, type ManifestsTable, type RepositoryBlobsTable, batches, fromJson, inReadTransaction, inWriteTransaction } from './db.ts';
import type { LayerRecord, ManifestRecord, ManifestSummary, RegistryMeta, RegistryUploadRecord } from './types.ts';

type Link = Omit<LayerRecord, 'touchedAt'>;

export class KyselyRegistryMeta implements RegistryMeta {
  constructor(private readonly db: Kysely<Database>) {}

  // ------------------------------------------------------------ repositories

  async listRepositories(after: string | undefined, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    let select = this.db.selectFrom('repositories').select('name').orderBy('name').limit(limit);
    if (after !== undefined) select = select.where('name', '>', after);
    return (await select.execute()).map((row) => row.name);
  }

  async repositoryExists(name: string): Promise<boolean> {
    return (await this.db.selectFrom('repositories').select('name').where('name', '=', name).executeTakeFirst()) !== undefined;
  }

  // ------------------------------------------------------------ blobs (links)

  linkBlob(link: Link): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      await upsertLink(trx, link, Date.now());
      await auditChange(trx, 'oci:PushBlob', `oci:${link.repository}`, { digest: link.digest, size: link.size });
    });
  }

  mountLayer(source: { repository: string; digest: string }, repository: string): Promise<LayerRecord | null> {
    return inWriteTransaction(this.db, async (trx) => {
      // The source link, read (and key-share locked, so expireLinks or unlinkBlob cannot delete it
      // meanwhile) in the transaction that adds the new one, keeps the blob from the garbage collector
      // until the new link does.
      const row = await trx
        .selectFrom('repository_blobs')
        .selectAll()
        .where('repository', '=', source.repository)
        .where('digest', '=', source.digest)
        .forKeyShare()
        .executeTakeFirst();
      if (!row) return null;
      const now = Date.now();
      await upsertLink(trx, { repository, digest: row.digest, blob: row.blob, size: row.size }, now);
      await auditChange(trx, 'oci:MountBlob', `oci:${repository}`, { digest: row.digest, from: source.repository });
      return { repository, digest: row.digest, blob: row.blob, size: row.size, touchedAt: new Date(now) };
    });
  }

  async getLayer(repository: string, digest: string): Promise<LayerRecord | null> {
    const row = await this.db.selectFrom('repository_blobs').selectAll().where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
    return row ? toLayer(row) : null;
  }

  async findLayer(digest: string, repositories?: readonly string[]): Promise<LayerRecord | null> {
    if (repositories !== undefined && repositories.length === 0) return null;
    let select = this.db.selectFrom('repository_blobs').selectAll().where('digest', '=', digest);
    if (repositories !== undefined) select = select.where('repository', 'in', repositories);
    const row = await select.orderBy('touched_at', 'desc').limit(1).executeTakeFirst();
    return row ? toLayer(row) : null;
  }

  touchLayer(repository: string, digest: string): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const result = await trx
        .updateTable('repository_blobs')
        .set({ touched_at: Date.now() })
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  unlinkBlob(repository: string, digest: string): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const result = await trx.deleteFrom('repository_blobs').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
      if (result.numDeletedRows === 0n) return false;
      await auditChange(trx, 'oci:DeleteBlob', `oci:${repository}`, { digest });
      return true;
    });
  }

  // ------------------------------------------------------------ manifests and tags

  /**
   * The links and manifests it references are key-share locked when checked, so expireLinks and
   * deleteUntaggedManifests (which lock before they re-check) wait for this manifest's references; an
   * existing manifest of the same digest is locked before it is refreshed, so the collector cannot
   * delete it under the new tags.
   */
  putManifest(manifest: ManifestRecord, tags: readonly string[] = []): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      const { repository } = manifest;
      await ensureRepository(trx, repository, manifest.createdAt.getTime());
      const blobs = [...new Set(manifest.blobs)];
      const manifests = [...new Set(manifest.manifests)];
      for (const batch of batches(blobs)) {
        const found = await trx.selectFrom('repository_blobs').select('digest').where('repository', '=', repository).where('digest', 'in', batch).forKeyShare().execute();
        const missing = firstMissing(batch, found.map((row) => row.digest));
        if (missing) throw new AstoreError('ManifestBlobUnknown', `blob ${missing} is not in repository ${repository}`, { digest: missing });
      }
      for (const batch of batches(manifests)) {
        const found = await trx.selectFrom('manifests').select('digest').where('repository', '=', repository).where('digest', 'in', batch).forKeyShare().execute();
        const missing = firstMissing(batch, found.map((row) => row.digest));
        if (missing) throw new AstoreError('ManifestBlobUnknown', `manifest ${missing} is not in repository ${repository}`, { digest: missing });
      }
      const existing = await trx.selectFrom('manifests').select('digest').where('repository', '=', repository).where('digest', '=', manifest.digest).forUpdate().executeTakeFirst();
      if (!existing) {
        await trx
          .insertInto('manifests')
          .values({
            repository,
            digest: manifest.digest,
            media_type: manifest.mediaType,
            artifact_type: manifest.artifactType ?? null,
            subject: manifest.subject ?? null,
            annotations: manifest.annotations ? JSON.stringify(manifest.annotations) : null,
            size: manifest.size,
            content: manifest.content,
            created_at: manifest.createdAt.getTime(),
          })
          .execute();
        const refs = [
          ...blobs.map((ref) => ({ repository, manifest: manifest.digest, ref, kind: 'blob' as const })),
          ...manifests.map((ref) => ({ repository, manifest: manifest.digest, ref, kind: 'manifest' as const })),
        ];
        for (const batch of batches(refs)) await trx.insertInto('manifest_refs').values(batch).execute();
      } else {
        // Pushed again: keep it from being collected as an untagged leftover meanwhile.
        await trx.updateTable('manifests').set({ created_at: manifest.createdAt.getTime() }).where('repository', '=', repository).where('digest', '=', manifest.digest).execute();
      }
      for (const tag of new Set(tags)) {
        await trx
          .insertInto('tags')
          .values({ repository, name: tag, digest: manifest.digest, updated_at: manifest.createdAt.getTime() })
          .onConflict((conflict) => conflict.columns(['repository', 'name']).doUpdateSet({ digest: manifest.digest, updated_at: manifest.createdAt.getTime() }))
          .execute();
      }
      await auditChange(trx, 'oci:PutManifest', `oci:${repository}`, { digest: manifest.digest, mediaType: manifest.mediaType, ...(tags.length > 0 && { tags: [...new Set(tags)] }) });
    });
  }

  getManifest(repository: string, reference: { digest: string } | { tag: string }): Promise<ManifestRecord | null> {
    return inReadTransaction(this.db, async (trx) => {
      let digest: string;
      if ('tag' in reference) {
        const tag = await trx.selectFrom('tags').select('digest').where('repository', '=', repository).where('name', '=', reference.tag).executeTakeFirst();
        if (!tag) return null;
        digest = tag.digest;
      } else {
        digest = reference.digest;
      }
      const row = await trx.selectFrom('manifests').selectAll().where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
      if (!row) return null;
      const refs = await trx.selectFrom('manifest_refs').select(['ref', 'kind']).where('repository', '=', repository).where('manifest', '=', digest).execute();
      return {
        ...toSummary(row),
        content: Buffer.from(row.content),
        blobs: refs.filter((r) => r.kind === 'blob').map((r) => r.ref),
        manifests: refs.filter((r) => r.kind === 'manifest').map((r) => r.ref),
      };
    });
  }

  deleteManifest(repository: string, digest: string): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      if (!(await removeManifest(trx, repository, digest))) return false;
      await auditChange(trx, 'oci:DeleteManifest', `oci:${repository}`, { digest });
      return true;
    });
  }

  deleteTag(repository: string, tag: string): Promise<boolean> {
    return inWriteTransaction(this.db, async (trx) => {
      const result = await trx.deleteFrom('tags').where('repository', '=', repository).where('name', '=', tag).executeTakeFirst();
      if (result.numDeletedRows === 0n) return false;
      await auditChange(trx, 'oci:DeleteTag', `oci:${repository}`, { tag });
      return true;
    });
  }

  listTags(repository: string, after: string | undefined, limit: number): Promise<string[] | null> {
    return inReadTransaction(this.db, async (trx) => {
      const repo = await trx.selectFrom('repositories').select('name').where('name', '=', repository).executeTakeFirst();
      if (!repo) return null;
      if (limit <= 0) return [];
      let select = trx.selectFrom('tags').select('name').where('repository', '=', repository).orderBy('name').limit(limit);
      if (after !== undefined) select = select.where('name', '>', after);
      return (await select.execute()).map((row) => row.name);
    });
  }

  async listParents(repository: string, digest: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('manifest_refs')
      .select('manifest')
      .where('repository', '=', repository)
      .where('ref', '=', digest)
      .where('kind', '=', 'manifest')
      .orderBy('manifest')
      .limit(limit)
      .execute();
    return rows.map((r) => r.manifest);
  }

  async listReferrers(repository: string, subject: string, artifactType?: string): Promise<ManifestSummary[]> {
    let select = this.db
      .selectFrom('manifests')
      .select(['repository', 'digest', 'media_type', 'artifact_type', 'subject', 'annotations', 'size', 'created_at'])
      .where('repository', '=', repository)
      .where('subject', '=', subject);
    if (artifactType !== undefined) select = select.where('artifact_type', '=', artifactType);
    const rows = await select.orderBy('created_at').orderBy('digest').execute();
    return rows.map(toSummary);
  }

  // ------------------------------------------------------------ upload sessions

  createUpload(upload: { uploadId: string; repository: string; createdAt: Date }): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      const at = upload.createdAt.getTime();
      await ensureRepository(trx, upload.repository, at);
      await trx.insertInto('registry_uploads').values({ upload_id: upload.uploadId, repository: upload.repository, created_at: at, updated_at: at, size: 0 }).execute();
    });
  }

  getUpload(uploadId: string): Promise<RegistryUploadRecord | null> {
    return inReadTransaction(this.db, (trx) => readUpload(trx, uploadId));
  }

  /** The upload row is locked while its size is checked: of two appends at one offset, the second sees the first's. */
  appendChunk(uploadId: string, offset: number, chunk: { digest: string; size: number }): Promise<RegistryUploadRecord> {
    return inWriteTransaction(this.db, async (trx) => {
      const upload = await readUpload(trx, uploadId, { lock: true });
      if (!upload) throw new AstoreError('BlobUploadUnknown', undefined, { uploadId });
      if (upload.size !== offset) {
        throw new AstoreError('RangeNotSatisfiable', `the upload has ${upload.size} bytes; a chunk starting at ${offset} does not follow them`, { size: upload.size });
      }
      const now = Date.now();
      await touchBlobs(trx, [chunk], now);
      await trx.insertInto('registry_upload_chunks').values({ upload_id: uploadId, seq: upload.chunks.length, digest: chunk.digest, size: chunk.size }).execute();
      await trx.updateTable('registry_uploads').set({ size: upload.size + chunk.size, updated_at: now }).where('upload_id', '=', uploadId).execute();
      return { ...upload, size: upload.size + chunk.size, updatedAt: new Date(now), chunks: [...upload.chunks, chunk] };
    });
  }

  completeUpload(uploadId: string, link: Link, expectedSize?: number): Promise<void> {
    return inWriteTransaction(this.db, async (trx) => {
      if (expectedSize !== undefined) {
        const row = await trx.selectFrom('registry_uploads').select('size').where('upload_id', '=', uploadId).forUpdate().executeTakeFirst();
        if (row && row.size !== expectedSize) {
          throw new AstoreError('RangeNotSatisfiable', `the upload has ${row.size} bytes, not the ${expectedSize} this completion continues`, { size: row.size });
        }
      }
      if (!(await removeUpload(trx, uploadId))) throw new AstoreError('BlobUploadUnknown', undefined, { uploadId });
      await upsertLink(trx, link, Date.now());
      await auditChange(trx, 'oci:PushBlob', `oci:${link.repository}`, { digest: link.digest, size: link.size, uploadId });
    });
  }

  deleteUpload(uploadId: string): Promise<boolean> {
    return inWriteTransaction(this.db, (trx) => removeUpload(trx, uploadId));
  }

  async listUploadsUpdatedBefore(before: Date, limit: number): Promise<{ uploadId: string }[]> {
    const rows = await this.db
      .selectFrom('registry_uploads')
      .select('upload_id')
      .where('updated_at', '<', before.getTime())
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ uploadId: row.upload_id }));
  }

  // ------------------------------------------------------------ garbage collection

  /**
   * Candidates are row-locked as they are selected, and each DELETE re-checks the conditions in a
   * later statement: a putManifest that held a candidate (key share) has committed its references by
   * then, and they keep the link; one that comes later waits for the lock, then finds the link gone
   * (ManifestBlobUnknown). A link touched meanwhile is kept as well.
   */
  expireLinks(before: Date, limit: number): Promise<number> {
    return inWriteTransaction(this.db, async (trx) => {
      const stale = await trx
        .selectFrom('repository_blobs')
        .select(['repository', 'digest'])
        .where((eb) => isExpiredLink(eb, before))
        .limit(limit)
        .forUpdate()
        .execute();
      let expired = 0;
      for (const link of stale) {
        const result = await trx
          .deleteFrom('repository_blobs')
          .where('repository', '=', link.repository)
          .where('digest', '=', link.digest)
          .where((eb) => isExpiredLink(eb, before))
          .executeTakeFirst();
        expired += Number(result.numDeletedRows);
      }
      return expired;
    });
  }

  /** Locks, then re-checks as it deletes, as expireLinks does; putManifest locks a manifest it re-pushes or references. */
  deleteUntaggedManifests(before: Date, limit: number): Promise<number> {
    return inWriteTransaction(this.db, async (trx) => {
      const victims = await trx
        .selectFrom('manifests as m')
        .select(['m.repository', 'm.digest'])
        .where((eb) => isUntaggedLeftover(eb, before))
        .limit(limit)
        .forUpdate()
        .execute();
      let deleted = 0;
      for (const m of victims) {
        const result = await trx
          .deleteFrom('manifests as m')
          .where('m.repository', '=', m.repository)
          .where('m.digest', '=', m.digest)
          .where((eb) => isUntaggedLeftover(eb, before))
          .executeTakeFirst();
        if (result.numDeletedRows === 0n) continue;
        await removeManifestDependents(trx, m.repository, m.digest);
        deleted++;
      }
      return deleted;
    });
  }
}

/** A link older than `before` that no manifest of its repository references. */
function isExpiredLink(eb: ExpressionBuilder<Database, 'repository_blobs'>, before: Date): Expression<SqlBool> {
  return eb.and([
    eb('repository_blobs.touched_at', '<', before.getTime()),
    eb.not(
      eb.exists(
        eb
          .selectFrom('manifest_refs')
          .select('manifest_refs.kind')
          .whereRef('manifest_refs.repository', '=', 'repository_blobs.repository')
          .whereRef('manifest_refs.ref', '=', 'repository_blobs.digest')
          .where('manifest_refs.kind', '=', 'blob'),
      ),
    ),
  ]);
}

/**
 * A manifest (aliased `m`) created before `before` that no tag points at, no other manifest of the
 * repository references, and whose subject, if any, is gone from the repository.
 */
function isUntaggedLeftover(eb: ExpressionBuilder<Database & { m: ManifestsTable }, 'm'>, before: Date): Expression<SqlBool> {
  return eb.and([
    eb('m.created_at', '<', before.getTime()),
    eb.not(eb.exists(eb.selectFrom('tags as t').select('t.name').whereRef('t.repository', '=', 'm.repository').whereRef('t.digest', '=', 'm.digest'))),
    eb.not(
      eb.exists(
        eb
          .selectFrom('manifest_refs as r')
          .select('r.kind')
          .whereRef('r.repository', '=', 'm.repository')
          .whereRef('r.ref', '=', 'm.digest')
          .where('r.kind', '=', 'manifest'),
      ),
    ),
    eb.or([
      eb('m.subject', 'is', null),
      eb.not(eb.exists(eb.selectFrom('manifests as s').select('s.digest').whereRef('s.repository', '=', 'm.repository').whereRef('s.digest', '=', 'm.subject'))),
    ]),
  ]);
}

async function ensureRepository(trx: Transaction<Database>, name: string, at: number): Promise<void> {
  await trx
    .insertInto('repositories')
    .values({ name, created_at: at })
    .onConflict((conflict) => conflict.column('name').doNothing())
    .execute();
}

async function upsertLink(trx: Transaction<Database>, link: Link, now: number): Promise<void> {
  await ensureRepository(trx, link.repository, now);
  await touchBlobs(trx, [{ digest: link.blob, size: link.size }], now);
  await trx
    .insertInto('repository_blobs')
    .values({ repository: link.repository, digest: link.digest, blob: link.blob, size: link.size, touched_at: now })
    .onConflict((conflict) => conflict.columns(['repository', 'digest']).doUpdateSet({ blob: link.blob, size: link.size, touched_at: now }))
    .execute();
}

async function removeManifest(trx: Transaction<Database>, repository: string, digest: string): Promise<boolean> {
  const result = await trx.deleteFrom('manifests').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
  if (result.numDeletedRows === 0n) return false;
  await removeManifestDependents(trx, repository, digest);
  return true;
}

/** The tags pointing at a manifest just deleted, and its references. */
async function removeManifestDependents(trx: Transaction<Database>, repository: string, digest: string): Promise<void> {
  await trx.deleteFrom('tags').where('repository', '=', repository).where('digest', '=', digest).execute();
  await trx.deleteFrom('manifest_refs').where('repository', '=', repository).where('manifest', '=', digest).execute();
}

/** `lock`: row-lock the upload (in a write transaction that will change it). */
async function readUpload(trx: Transaction<Database>, uploadId: string, options: { lock?: boolean } = {}): Promise<RegistryUploadRecord | null> {
  const select = trx.selectFrom('registry_uploads').selectAll().where('upload_id', '=', uploadId);
  const row = await (options.lock ? select.forUpdate() : select).executeTakeFirst();
  if (!row) return null;
  const chunks = await trx.selectFrom('registry_upload_chunks').select(['digest', 'size']).where('upload_id', '=', uploadId).orderBy('seq').execute();
  return {
    uploadId: row.upload_id,
    repository: row.repository,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    size: row.size,
    chunks,
  };
}

async function removeUpload(trx: Transaction<Database>, uploadId: string): Promise<boolean> {
  await trx.deleteFrom('registry_upload_chunks').where('upload_id', '=', uploadId).execute();
  const result = await trx.deleteFrom('registry_uploads').where('upload_id', '=', uploadId).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

function firstMissing(wanted: readonly string[], found: readonly string[]): string | undefined {
  const present = new Set(found);
  return wanted.find((digest) => !present.has(digest));
}

function toLayer(row: Selectable<RepositoryBlobsTable>): LayerRecord {
  return { repository: row.repository, digest: row.digest, blob: row.blob, size: row.size, touchedAt: new Date(row.touched_at) };
}

function toSummary(row: Omit<Selectable<ManifestsTable>, 'content'>): ManifestSummary {
  return {
    repository: row.repository,
    digest: row.digest,
    mediaType: row.media_type,
    ...(row.artifact_type !== null && { artifactType: row.artifact_type }),
    ...(row.subject !== null && { subject: row.subject }),
    ...(row.annotations !== null && { annotations: fromJson<Record<string, string>>(row.annotations) }),
    size: row.size,
    createdAt: new Date(row.created_at),
  };
}
