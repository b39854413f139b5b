import type { Kysely, Selectable, Transaction } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { versionKey } from '../../core/supplychain/versions.ts';
import { touchBlobs } from './blobs.ts';
import { auditChange } from './change-audit.ts';
import { type Database, type ScRecordsTable, batches } from './db.ts';
import type { AttestationFactsRow, ComponentRow, Page, RecordQuery, SupplyChainRecord } from './types.ts';

/** sc_records.source_layer of a record that names no layer (see ScRecordsTable). */
const NO_LAYER = -1;

/**
 * Inserts a record with its components and facts, in the caller's write transaction; 'exists' (and
 * nothing written) when the id is taken or, for a record read from a registry manifest, when one with
 * the same (repository, sourceManifest, sourceLayer) is stored. The content blob's row is upserted
 * first (the record references it), refreshing touched_at as ObjectMeta.put does for segments.
 */
export async function insertRecord(
  trx: Transaction<Database>,
  record: SupplyChainRecord,
  extra: { components?: readonly ComponentRow[]; facts?: AttestationFactsRow },
  nowMs: number,
): Promise<'created' | 'exists'> {
  if (record.sourceLayer !== undefined && !(Number.isSafeInteger(record.sourceLayer) && record.sourceLayer >= 0)) {
    throw new AstoreError('InvalidArgument', `sourceLayer must be a layer index, not ${record.sourceLayer}`);
  }
  const sourceLayer = record.sourceLayer ?? NO_LAYER;
  // Checked before touching the blob, so a repeated put changes nothing. The unique index behind the
  // conflict clause below settles two concurrent puts on a dialect that does not serialise writers.
  if (await trx.selectFrom('sc_records').select('id').where('id', '=', record.id).executeTakeFirst()) return 'exists';
  if (record.repository !== undefined && record.sourceManifest !== undefined) {
    const same = await trx
      .selectFrom('sc_records')
      .select('id')
      .where('repository', '=', record.repository)
      .where('source_manifest', '=', record.sourceManifest)
      .where('source_layer', '=', sourceLayer)
      .executeTakeFirst();
    if (same) return 'exists';
  }

  await touchBlobs(trx, [{ digest: record.contentDigest, size: record.size }], nowMs);
  const inserted = await trx
    .insertInto('sc_records')
    .values({
      id: record.id,
      subject: record.subject,
      kind: record.kind,
      format: record.format,
      media_type: record.mediaType,
      content_digest: record.contentDigest,
      size: record.size,
      bucket: record.bucket ?? null,
      object_key: record.key ?? null,
      repository: record.repository ?? null,
      source_manifest: record.sourceManifest ?? null,
      source_layer: sourceLayer,
      predicate_type: record.predicateType ?? null,
      key_hint: record.keyHint ?? null,
      created_by: record.createdBy,
      created_at: record.createdAt.getTime(),
    })
    .onConflict((conflict) => conflict.doNothing())
    .executeTakeFirst();
  if (inserted.numInsertedOrUpdatedRows !== 1n) return 'exists';

  const components = (extra.components ?? []).map((component) => {
    const purl = component.purl ? splitPurl(component.purl) : undefined;
    const version = component.version || purl?.version;
    return {
      record_id: record.id,
      subject: record.subject,
      name: component.name,
      version: component.version ?? null,
      version_key: version ? versionKey(version) : '',
      purl: component.purl ?? null,
      purl_base: purl?.base ?? null,
      licenses: JSON.stringify(component.licenses),
      hashes: JSON.stringify(component.hashes),
      bucket: record.bucket ?? null,
      object_key: record.key ?? null,
      repository: record.repository ?? null,
    };
  });
  for (const batch of batches(components)) await trx.insertInto('sc_components').values(batch).execute();
  if (extra.facts) {
    await trx
      .insertInto('sc_facts')
      .values({
        record_id: record.id,
        subject: record.subject,
        predicate_type: extra.facts.predicateType,
        builder_id: extra.facts.builderId ?? null,
        build_type: extra.facts.buildType ?? null,
        materials: JSON.stringify(extra.facts.materials),
      })
      .execute();
  }
  await auditChange(trx, 'supplychain:AttachRecord', `supplychain:records/${record.id}`, {
    subject: record.subject,
    kind: record.kind,
    format: record.format,
    contentDigest: record.contentDigest,
    ...(record.bucket !== undefined && { bucket: record.bucket, key: record.key }),
    ...(record.repository !== undefined && { repository: record.repository }),
    ...(extra.components !== undefined && { components: extra.components.length }),
  });
  return 'created';
}

/** Deletes records with their components and facts, auditing each; returns how many went. */
export async function deleteRecords(trx: Transaction<Database>, ids: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const batch of batches(ids)) {
    await trx.deleteFrom('sc_components').where('record_id', 'in', batch).execute();
    await trx.deleteFrom('sc_facts').where('record_id', 'in', batch).execute();
    const gone = await trx.deleteFrom('sc_records').where('id', 'in', batch).returning(['id', 'subject']).execute();
    for (const row of gone) await auditChange(trx, 'supplychain:DeleteRecord', `supplychain:records/${row.id}`, { subject: row.subject });
    deleted += gone.length;
  }
  return deleted;
}

export async function readRecord(db: Kysely<Database>, id: string): Promise<SupplyChainRecord | null> {
  const row = await db.selectFrom('sc_records').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toRecord(row) : null;
}

/** Records in (createdAt, id) order; `next` is an opaque cursor naming the last one's position. */
export async function listRecords(db: Kysely<Database>, query: RecordQuery): Promise<Page<SupplyChainRecord>> {
  if (query.limit <= 0) return { items: [] };
  let select = db.selectFrom('sc_records').selectAll();
  if (query.subject !== undefined) select = select.where('subject', '=', query.subject);
  if (query.bucket !== undefined) select = select.where('bucket', '=', query.bucket);
  if (query.key !== undefined) select = select.where('object_key', '=', query.key);
  if (query.repository !== undefined) select = select.where('repository', '=', query.repository);
  if (query.kind !== undefined) select = select.where('kind', '=', query.kind);
  if (query.after !== undefined) {
    const [createdAt, id] = decodeCursor(query.after, ['number', 'string']);
    select = select.where((eb) => eb(eb.refTuple('created_at', 'id'), '>', eb.tuple(createdAt, id)));
  }
  const rows = await select.orderBy('created_at').orderBy('id').limit(query.limit + 1).execute();
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return rows.length > query.limit && last ? { items: page.map(toRecord), next: encodeCursor([last.created_at, last.id]) } : { items: page.map(toRecord) };
}

function toRecord(row: Selectable<ScRecordsTable>): SupplyChainRecord {
  return {
    id: row.id,
    subject: row.subject,
    kind: row.kind,
    format: row.format,
    mediaType: row.media_type,
    contentDigest: row.content_digest,
    size: row.size,
    ...(row.bucket !== null && { bucket: row.bucket }),
    ...(row.object_key !== null && { key: row.object_key }),
    ...(row.repository !== null && { repository: row.repository }),
    ...(row.source_manifest !== null && { sourceManifest: row.source_manifest }),
    ...(row.source_layer !== NO_LAYER && { sourceLayer: row.source_layer }),
    ...(row.predicate_type !== null && { predicateType: row.predicate_type }),
    ...(row.key_hint !== null && { keyHint: row.key_hint }),
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
  };
}

// ---------------------------------------------------------------- package URLs

/**
 * A purl's package (`base`: scheme, type, namespace and name) and version, for indexing and queries.
 * Qualifiers (`?...`) and subpath (`#...`) are dropped; the version is what follows the `@` after the
 * last `/`. Scheme and type are lower-cased (the purl spec makes them case-insensitive) and namespace
 * and name percent-decoded, so `pkg:npm/%40angular/core` and `pkg:npm/@angular/core` are one package;
 * other per-type rules (PyPI's `_` = `-`, lower-case npm names) are not applied.
 */
export function splitPurl(purl: string): { base: string; version?: string } {
  let rest = purl.trim();
  for (const mark of ['#', '?']) {
    const at = rest.indexOf(mark);
    if (at >= 0) rest = rest.slice(0, at);
  }
  let version: string | undefined;
  const versionAt = rest.indexOf('@', rest.lastIndexOf('/') + 1);
  if (versionAt >= 0) {
    version = decode(rest.slice(versionAt + 1)) || undefined;
    rest = rest.slice(0, versionAt);
  }
  const colon = rest.indexOf(':');
  const path = rest.slice(colon + 1).replace(/^\/+/u, '');
  const typeEnd = path.indexOf('/');
  if (colon < 0 || typeEnd < 0) return { base: rest, ...(version !== undefined && { version }) };
  const segments = path.slice(typeEnd + 1).split('/').filter((segment) => segment !== '').map(decode);
  const base = `${rest.slice(0, colon).toLowerCase()}:${path.slice(0, typeEnd).toLowerCase()}/${segments.join('/')}`;
  return { base, ...(version !== undefined && { version }) };
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component; // a stray `%`: kept as written
  }
}

// ---------------------------------------------------------------- cursors

type CursorField = 'string' | 'number';
type CursorValues<T extends readonly CursorField[]> = { [I in keyof T]: T[I] extends 'number' ? number : string };

/**
 * Paging cursors are opaque to callers: base64url of a JSON array of the sort-key values of the last
 * item returned, so a page continues after that position even when the item itself is gone.
 */
export function encodeCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The cursor's values; AstoreError('InvalidArgument') when it is not one this store made. */
export function decodeCursor<const T extends readonly CursorField[]>(cursor: string, shape: T): CursorValues<T> {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    values = undefined;
  }
  const valid = Array.isArray(values) && values.length === shape.length && shape.every((type, i) => typeof values[i] === type);
  if (!valid) throw new AstoreError('InvalidArgument', `malformed paging cursor ${JSON.stringify(cursor)}`);
  return values as CursorValues<T>;
}
