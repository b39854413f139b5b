import type { Expression, Kysely } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { versionKey } from '../../core/supplychain/versions.ts';
import { type Database, fromJson, prefixUpperBound } from './db.ts';
import { decodeCursor, encodeCursor, splitPurl } from './supplychain-records.ts';
import type { ArtifactRef, AttestationFactsRow, ComponentMatch, ComponentQuery, LackingQuery, Page } from './types.ts';

/**
 * Which artifacts contain a package. The package is named by purl or by name (at least one; both
 * must then match):
 * - a purl with a version and no bounds matches that version: the component's purl has the same
 *   package and its version has the same versionKey (so `@2.14.1` finds `@2.14.1?type=jar` and
 *   `@v2.14.1`); when the query's purl has qualifiers or a subpath, the component's purl must also
 *   equal it exactly;
 * - a purl without a version, or any purl with bounds, matches every version of the package within
 *   the bounds (the query purl's own version is then ignored);
 * - a name matches the component name exactly, within the bounds if given.
 * A component's version is its `version`, or its purl's when it has none; components of unknown
 * version match only queries without bounds.
 *
 * Order: by version (versionKey), then by insertion; `next` is an opaque cursor of that position.
 * Each page is one index range scan of sc_components_purl or sc_components_name
 * (package = ? AND version_key in bounds AND (version_key, id) > cursor), with bucket and repository
 * applied as filters on the rows it reads.
 */
export async function findComponents(db: Kysely<Database>, query: ComponentQuery): Promise<Page<ComponentMatch>> {
  if (query.purl === undefined && query.name === undefined) throw new AstoreError('InvalidArgument', 'a component query names a purl or a name');
  if (query.limit <= 0) return { items: [] };
  const bounded = query.versionMin !== undefined || query.versionMax !== undefined;
  const cursor = query.after !== undefined ? decodeCursor(query.after, ['string', 'number']) : undefined;
  let select = db
    .selectFrom('sc_components')
    .select(['id', 'record_id', 'subject', 'name', 'version', 'version_key', 'purl', 'licenses', 'bucket', 'object_key', 'repository']);
  let exactKey: string | undefined;
  if (query.purl !== undefined) {
    const { base, version } = splitPurl(query.purl);
    select = select.where('purl_base', '=', base);
    if (!bounded && version !== undefined) {
      exactKey = versionKey(version);
      if (/[?#]/u.test(query.purl)) select = select.where('purl', '=', query.purl);
    }
  }
  if (query.name !== undefined) select = select.where('name', '=', query.name);
  if (query.bucket !== undefined) select = select.where('bucket', '=', query.bucket);
  if (query.repository !== undefined) {
    select = select.where('repository', '>=', query.repository);
    const bound = prefixUpperBound(query.repository);
    if (bound !== null) select = select.where('repository', '<', bound);
  }

  // The version range and the cursor. Each page must be one index seek, so the SQL gets a single
  // lower bound on version_key: the cursor's (version_key, id) when it lies within the range,
  // otherwise the range's own lower bound (then every row in the range is after the cursor anyway).
  if (exactKey !== undefined) {
    select = select.where('version_key', '=', exactKey);
    if (cursor) {
      const order = compareBytes(cursor[0], exactKey);
      if (order > 0) return { items: [] };
      if (order === 0) select = select.where('id', '>', cursor[1]);
    }
  } else {
    // '' is the key of an unknown version, below every real key: any bound excludes it.
    let lower: { key: string; inclusive: boolean } | undefined = bounded ? { key: '', inclusive: false } : undefined;
    if (query.versionMin) {
      const min = { key: versionKey(query.versionMin.version), inclusive: query.versionMin.inclusive };
      if (!lower || compareBytes(min.key, lower.key) > 0 || (min.key === lower.key && !min.inclusive)) lower = min;
    }
    const cursorCovers = cursor !== undefined && (!lower || compareBytes(cursor[0], lower.key) > 0 || (cursor[0] === lower.key && lower.inclusive));
    if (cursor && cursorCovers) select = select.where((eb) => eb(eb.refTuple('version_key', 'id'), '>', eb.tuple(cursor[0], cursor[1])));
    else if (lower) select = select.where('version_key', lower.inclusive ? '>=' : '>', lower.key);
    if (query.versionMax) select = select.where('version_key', query.versionMax.inclusive ? '<=' : '<', versionKey(query.versionMax.version));
  }
  const rows = await select.orderBy('version_key').orderBy('id').limit(query.limit + 1).execute();
  const page = rows.slice(0, query.limit);
  const items = page.map(
    (row): ComponentMatch => ({
      subject: row.subject,
      recordId: row.record_id,
      name: row.name,
      ...(row.version !== null && { version: row.version }),
      ...(row.purl !== null && { purl: row.purl }),
      licenses: fromJson<string[]>(row.licenses),
      ...(row.bucket !== null && { bucket: row.bucket }),
      ...(row.object_key !== null && { key: row.object_key }),
      ...(row.repository !== null && { repository: row.repository }),
    }),
  );
  const last = page.at(-1);
  return rows.length > query.limit && last ? { items, next: encodeCursor([last.version_key, last.id]) } : { items };
}

/** UTF-8 byte order, the order of byte-order text columns. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A subject's attestation facts, in record order. */
export async function listFacts(db: Kysely<Database>, subject: string): Promise<(AttestationFactsRow & { recordId: string })[]> {
  const rows = await db.selectFrom('sc_facts').selectAll().where('subject', '=', subject).orderBy('record_id').execute();
  return rows.map((row) => ({
    recordId: row.record_id,
    predicateType: row.predicate_type,
    ...(row.builder_id !== null && { builderId: row.builder_id }),
    ...(row.build_type !== null && { buildType: row.build_type }),
    materials: fromJson<AttestationFactsRow['materials']>(row.materials),
  }));
}

/**
 * Artifacts with no attestation of `predicateType` (and `builderId`, when given). An attestation
 * counts wherever it was attached: facts are matched by subject digest alone, since the same digest
 * is the same content in every bucket and repository.
 *
 * - Objects of `bucket` (under `keyPrefix`), in key order; the cursor is the last key. An object
 *   without a whole-object digest (completed from several multipart parts) is skipped: an attestation
 *   names its subject by digest, so nothing can attest such an object, and this report lists the
 *   artifacts that could be attested but are not.
 * - Manifests of the repositories starting with `repositoryPrefix` ('' for all), in (repository,
 *   digest) order; the cursor names the last pair. Only artifacts count: a manifest with an OCI
 *   `subject` (a referrer: signature, SBOM, attestation) is not one, nor a manifest supply-chain
 *   records were read from (cosign's `sha256-<hex>.sig/.att` tags, which have no subject). The
 *   platform manifests of an index are listed as well as the index.
 *
 * Each page reads the artifacts in index order and probes sc_facts_subject for each, until `limit`
 * lacking ones are found: the cost grows with the attested artifacts skipped on the way.
 */
export async function findLacking(db: Kysely<Database>, query: LackingQuery): Promise<Page<ArtifactRef>> {
  if ((query.bucket === undefined) === (query.repositoryPrefix === undefined) || (query.keyPrefix !== undefined && query.bucket === undefined)) {
    throw new AstoreError('InvalidArgument', 'a lacking-attestation query names either a bucket (and key prefix) or a repository prefix');
  }
  if (query.limit <= 0) return { items: [] };
  /** A correlated probe: some attestation with the facts asked for names `subject`. */
  const attested = (subject: Expression<string | null>) => {
    let probe = db.selectFrom('sc_facts').select('sc_facts.record_id').where('sc_facts.subject', '=', subject).where('sc_facts.predicate_type', '=', query.predicateType);
    if (query.builderId !== undefined) probe = probe.where('sc_facts.builder_id', '=', query.builderId);
    return probe;
  };

  if (query.bucket !== undefined) {
    let select = db
      .selectFrom('objects')
      .select(['objects.key', 'objects.digest'])
      .where('objects.bucket', '=', query.bucket)
      .where('objects.digest', 'is not', null)
      .where((eb) => eb.not(eb.exists(attested(eb.ref('objects.digest')))));
    if (query.keyPrefix) {
      select = select.where('objects.key', '>=', query.keyPrefix);
      const bound = prefixUpperBound(query.keyPrefix);
      if (bound !== null) select = select.where('objects.key', '<', bound);
    }
    if (query.after !== undefined) select = select.where('objects.key', '>', decodeCursor(query.after, ['string'])[0]);
    const rows = await select.orderBy('objects.key').limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const items = page.map((row): ArtifactRef => ({ subject: row.digest!, bucket: query.bucket, key: row.key }));
    const last = page.at(-1);
    return rows.length > query.limit && last ? { items, next: encodeCursor([last.key]) } : { items };
  }

  const prefix = query.repositoryPrefix!;
  let select = db
    .selectFrom('manifests')
    .select(['manifests.repository', 'manifests.digest'])
    .where('manifests.subject', 'is', null)
    .where('manifests.repository', '>=', prefix)
    .where((eb) => eb.not(eb.exists(attested(eb.ref('manifests.digest')))))
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('sc_records')
            .select('sc_records.id')
            .whereRef('sc_records.repository', '=', 'manifests.repository')
            .whereRef('sc_records.source_manifest', '=', 'manifests.digest'),
        ),
      ),
    );
  const bound = prefixUpperBound(prefix);
  if (bound !== null) select = select.where('manifests.repository', '<', bound);
  if (query.after !== undefined) {
    const [repository, digest] = decodeCursor(query.after, ['string', 'string']);
    select = select.where((eb) => eb(eb.refTuple('manifests.repository', 'manifests.digest'), '>', eb.tuple(repository, digest)));
  }
  const rows = await select.orderBy('manifests.repository').orderBy('manifests.digest').limit(query.limit + 1).execute();
  const page = rows.slice(0, query.limit);
  const items = page.map((row): ArtifactRef => ({ subject: row.digest, repository: row.repository }));
  const last = page.at(-1);
  return rows.length > query.limit && last ? { items, next: encodeCursor([last.repository, last.digest]) } : { items };
}
