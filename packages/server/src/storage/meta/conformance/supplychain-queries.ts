import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { versionKey } from '../../../core/supplychain/versions.ts';
import type { ArtifactRef, ComponentMatch, ComponentQuery, ComponentRow, LackingQuery, Page } from '../types.ts';
import { type StoreRef, bucketRecord, digestOf, manifestRecord, objectRecord, rejectsWith } from './fixtures.ts';
import { registryRecord, scRecord } from './supplychain.ts';

const LOG4J = 'pkg:maven/org.apache.logging.log4j/log4j-core';
const PROVENANCE = 'https://slsa.dev/provenance/v1';

/** The package catalogue the generated SBOMs draw from: purl base (or none) and versions. */
const CATALOGUE: readonly { name: string; purl?: string; versions: (string | undefined)[] }[] = [
  { name: 'log4j-core', purl: LOG4J, versions: ['2.0-beta9', '2.0', '2.9.1', '2.14.1', '2.15.0-rc1', '2.15.0', '2.17.1', undefined] },
  { name: 'log4j-api', purl: 'pkg:maven/org.apache.logging.log4j/log4j-api', versions: ['2.14.1', '2.17.1'] },
  { name: 'lodash', purl: 'pkg:npm/lodash', versions: ['4.17.15', '4.17.19', '4.17.21'] },
  { name: '@angular/core', purl: 'pkg:npm/%40angular/core', versions: ['15.2.0', '16.0.0-next.3', '16.0.0', 'v16.1.2'] },
  { name: 'requests', purl: 'pkg:pypi/requests', versions: ['2.25.1', '2.31.0', '2.32.0rc1'] },
  { name: 'openssl', versions: ['1.1.1n', '1.1.1w', '3.0.2'] },
];

interface Generated {
  id: number; // insertion order, = the store's order among equal versions
  match: ComponentMatch;
  purlBase?: string;
  effectiveVersion?: string;
}

/** mulberry32: the same SBOMs on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const compareKeys = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** Every page of a query, with `limit` per page. */
async function allPages<T>(fetch: (after: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let after: string | undefined;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'paging ends');
    const page = await fetch(after);
    items.push(...page.items);
    if (page.next === undefined) return items;
    assert.ok(page.items.length > 0, 'a page with a next is not empty');
    after = page.next;
  }
}

/** SupplyChainMeta.findComponents and findLacking against exact answers computed here. */
export function supplyChainQueryTests(store: StoreRef): void {
  const sc = () => store().supplychain;
  beforeEach(async () => {
    await store().buckets.create(bucketRecord('b'));
  });

  // ------------------------------------------------------------ components

  /**
   * 60 artifacts, half S3 objects in two buckets, half OCI manifests in three repositories, each with
   * an SBOM of 4 to 9 components drawn from CATALOGUE (some with qualifiers, some without version, one
   * in three without purl): a few hundred rows.
   */
  async function generate(): Promise<Generated[]> {
    const rnd = random(7);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
    const rows: Generated[] = [];
    for (let a = 0; a < 60; a++) {
      const subject = digestOf(`artifact ${a}`);
      const place = a % 2 === 0 ? { bucket: a % 4 === 0 ? 'releases' : 'nightly', key: `app-${a}.tar.gz` } : { repository: ['team-a/app', 'team-a/lib', 'team-b/app'][a % 3]! };
      const components: ComponentRow[] = [];
      const count = 4 + Math.floor(rnd() * 6);
      for (let c = 0; c < count; c++) {
        const entry = pick(CATALOGUE);
        const version = pick(entry.versions);
        const withPurl = entry.purl !== undefined && rnd() < 0.67;
        const qualifiers = withPurl && entry.purl!.startsWith('pkg:maven') && rnd() < 0.5 ? '?type=jar' : '';
        // Some components name their version only in the purl.
        const versionInPurlOnly = withPurl && version !== undefined && rnd() < 0.2;
        const purl = withPurl ? `${entry.purl}${version !== undefined ? `@${version}` : ''}${qualifiers}` : undefined;
        const component: ComponentRow = {
          name: entry.name,
          ...(version !== undefined && !versionInPurlOnly && { version }),
          ...(purl !== undefined && { purl }),
          licenses: rnd() < 0.5 ? ['Apache-2.0'] : [],
          hashes: [{ algorithm: 'SHA-256', value: digestOf(`${entry.name}@${version}`).slice(7) }],
        };
        components.push(component);
        rows.push({
          id: rows.length,
          match: {
            subject,
            recordId: `sbom-${a}`,
            name: component.name,
            ...(component.version !== undefined && { version: component.version }),
            ...(purl !== undefined && { purl }),
            licenses: component.licenses,
            ...place,
          },
          ...(withPurl && { purlBase: entry.purl!.replace('%40', '@') }),
          ...(version !== undefined && { effectiveVersion: version }),
        });
      }
      await sc().putRecord(scRecord(`sbom-${a}`, { subject, ...place }), { components });
    }
    return rows;
  }

  /** The answer to `query`, in the store's order: by versionKey, then insertion. */
  function expected(rows: readonly Generated[], query: Omit<ComponentQuery, 'limit'>, keep: (row: Generated) => boolean): ComponentMatch[] {
    const keyOf = (row: Generated) => (row.effectiveVersion === undefined ? '' : versionKey(row.effectiveVersion));
    return rows
      .filter(keep)
      .filter((row) => {
        const key = keyOf(row);
        if (query.versionMin || query.versionMax) {
          if (key === '') return false;
          const { versionMin: min, versionMax: max } = query;
          if (min && (min.inclusive ? compareKeys(key, versionKey(min.version)) < 0 : compareKeys(key, versionKey(min.version)) <= 0)) return false;
          if (max && (max.inclusive ? compareKeys(key, versionKey(max.version)) > 0 : compareKeys(key, versionKey(max.version)) >= 0)) return false;
        }
        if (query.bucket !== undefined && row.match.bucket !== query.bucket) return false;
        if (query.repository !== undefined && !row.match.repository?.startsWith(query.repository)) return false;
        return true;
      })
      .sort((a, b) => compareKeys(keyOf(a), keyOf(b)) || a.id - b.id)
      .map((row) => row.match);
  }

  async function check(rows: readonly Generated[], query: Omit<ComponentQuery, 'limit'>, keep: (row: Generated) => boolean, label: string): Promise<number> {
    const want = expected(rows, query, keep);
    const whole = await sc().findComponents({ ...query, limit: 10_000 });
    assert.deepEqual(whole, { items: want }, label);
    const paged = await allPages((after) => sc().findComponents({ ...query, limit: 7, ...(after !== undefined && { after }) }));
    assert.deepEqual(paged, want, `${label}, paged by 7`);
    return want.length;
  }

  test('components by exact purl: the version matches by versionKey, qualifiers only when asked', async () => {
    const rows = await generate();
    assert.ok(rows.length > 300, `${rows.length} rows`);
    const log4j = (version: string) => (row: Generated) => row.purlBase === LOG4J && row.effectiveVersion !== undefined && versionKey(row.effectiveVersion) === versionKey(version);
    assert.ok((await check(rows, { purl: `${LOG4J}@2.14.1` }, log4j('2.14.1'), 'log4j 2.14.1')) > 0);
    await check(rows, { purl: `${LOG4J}@v2.14.1.0` }, log4j('2.14.1'), 'log4j v2.14.1.0');
    await check(rows, { purl: `${LOG4J}@2.14.1?type=jar` }, (row) => row.match.purl === `${LOG4J}@2.14.1?type=jar`, 'log4j 2.14.1 jar');
    await check(rows, { purl: 'pkg:npm/@angular/core@16.1.2' }, (row) => row.purlBase === 'pkg:npm/@angular/core' && row.effectiveVersion === 'v16.1.2', 'angular, @ for %40');
    assert.deepEqual(await sc().findComponents({ purl: `${LOG4J}@9.9`, limit: 10 }), { items: [] });
  });

  test('components by purl base: every version, or those within the bounds', async () => {
    const rows = await generate();
    const isLog4j = (row: Generated) => row.purlBase === LOG4J;
    const all = await check(rows, { purl: LOG4J }, isLog4j, 'every log4j, unknown versions too');
    assert.ok(rows.some((row) => isLog4j(row) && row.effectiveVersion === undefined), 'some log4j without version');
    const vulnerable = await check(rows, { purl: LOG4J, versionMin: { version: '2.0-beta9', inclusive: true }, versionMax: { version: '2.15.0', inclusive: false } }, isLog4j, 'log4shell range');
    assert.ok(vulnerable > 0 && vulnerable < all);
    await check(rows, { purl: `${LOG4J}@2.17.1`, versionMax: { version: '2.14.1', inclusive: true } }, isLog4j, 'the purl version is ignored with bounds');
    await check(rows, { purl: LOG4J, versionMin: { version: '2.15.0-rc1', inclusive: false } }, isLog4j, 'after rc1');
    await check(rows, { purl: LOG4J, versionMax: { version: '2.9', inclusive: false } }, isLog4j, 'below 2.9, unknown versions excluded');
    await check(rows, { purl: 'pkg:npm/lodash', versionMin: { version: '4.17.19', inclusive: true }, versionMax: { version: '4.17.19', inclusive: true } }, (row) => row.purlBase === 'pkg:npm/lodash', 'one version as a range');
    await check(rows, { purl: 'PKG:NPM/%40angular/core', versionMin: { version: '16.0.0-alpha', inclusive: true } }, (row) => row.purlBase === 'pkg:npm/@angular/core', 'scheme and type case-insensitive');
  });

  test('components by name, with bounds, and with purl and name together', async () => {
    const rows = await generate();
    await check(rows, { name: 'openssl' }, (row) => row.match.name === 'openssl', 'openssl by name');
    await check(rows, { name: 'openssl', versionMin: { version: '1.1.1n', inclusive: false }, versionMax: { version: '3', inclusive: false } }, (row) => row.match.name === 'openssl', 'openssl 1.1.1 after n');
    await check(rows, { name: 'requests', versionMax: { version: '2.32.0', inclusive: false } }, (row) => row.match.name === 'requests', 'requests below 2.32.0, rc1 included');
    await check(rows, { name: 'log4j-core', purl: LOG4J }, (row) => row.match.name === 'log4j-core' && row.purlBase === LOG4J, 'purl and name');
    await check(rows, { name: 'Log4j-core' }, () => false, 'names match exactly');
  });

  test('components filtered by bucket or repository prefix', async () => {
    const rows = await generate();
    const isLog4j = (row: Generated) => row.purlBase === LOG4J;
    assert.ok((await check(rows, { purl: LOG4J, bucket: 'releases' }, isLog4j, 'in releases')) > 0);
    await check(rows, { purl: LOG4J, bucket: 'release' }, isLog4j, 'bucket is exact');
    assert.ok((await check(rows, { purl: LOG4J, repository: 'team-a/' }, isLog4j, 'under team-a/')) > 0);
    await check(rows, { name: 'lodash', repository: 'team-b/app', versionMin: { version: '4.17.19', inclusive: true } }, (row) => row.match.name === 'lodash', 'one repository');
    await check(rows, { name: 'lodash', repository: '' }, (row) => row.match.name === 'lodash' && row.match.repository !== undefined, 'every repository');
  });

  test('a cursor from another query of the package continues after its position, within the new bounds', async () => {
    const rows = await generate();
    const isLog4j = (row: Generated) => row.purlBase === LOG4J;
    const every = expected(rows, { purl: LOG4J }, isLog4j);
    // Before, inside and after the run of 2.14.1 (the exact query's version), and near the end.
    const first2141 = every.findIndex((match) => match.version === '2.14.1' || match.purl?.includes('@2.14.1'));
    assert.ok(first2141 > 0);
    for (const position of [3, first2141 + 1, first2141 + 2, every.length - 2]) {
      const first = await sc().findComponents({ purl: LOG4J, limit: position });
      assert.ok(first.next !== undefined);
      const after = new Set(every.slice(position));
      const version = (v: string) => (row: Generated) => isLog4j(row) && row.effectiveVersion !== undefined && versionKey(row.effectiveVersion) === versionKey(v);
      const queries: [Omit<ComponentQuery, 'limit'>, (row: Generated) => boolean][] = [
        [{ purl: LOG4J, versionMin: { version: '2.11.1', inclusive: true }, versionMax: { version: '2.17.1', inclusive: true } }, isLog4j],
        [{ purl: LOG4J, versionMin: { version: '2.11.1', inclusive: false } }, isLog4j],
        [{ purl: LOG4J, versionMax: { version: '2.15.0', inclusive: false } }, isLog4j],
        [{ purl: `${LOG4J}@2.14.1` }, version('2.14.1')],
        [{ purl: `${LOG4J}@2.0-beta9` }, version('2.0-beta9')],
      ];
      for (const [query, keep] of queries) {
        const want = expected(rows, query, keep).filter((match) => after.has(match));
        const got = await allPages((next) => sc().findComponents({ ...query, limit: 4, after: next ?? first.next }));
        assert.deepEqual(got, want, `${JSON.stringify(query)} after position ${position}`);
      }
    }
  });

  test('findComponents refuses a query without purl or name, and a cursor it did not make', async () => {
    await rejectsWith(sc().findComponents({ bucket: 'b', limit: 10 }), 'InvalidArgument');
    await rejectsWith(sc().findComponents({ name: 'x', limit: 10, after: '42' }), 'InvalidArgument');
    assert.deepEqual(await sc().findComponents({ name: 'x', limit: 0 }), { items: [] });
  });

  // ------------------------------------------------------------ facts and lacking attestations

  const attest = (id: string, subject: string, builderId?: string, predicateType = PROVENANCE) =>
    sc().putRecord(scRecord(id, { subject, kind: 'attestation', format: 'dsse', predicateType }), {
      facts: { predicateType, ...(builderId !== undefined && { builderId, buildType: 'https://actions.github.io/buildtypes/workflow/v1' }), materials: [{ uri: 'git+https://example.com/app', digest: { sha1: 'abc' } }] },
    });

  test('listFacts returns the facts of a subject with their record ids', async () => {
    const subject = digestOf('artifact');
    await attest('p1', subject, 'https://github.com/actions/runner');
    await attest('p2', subject, undefined, 'https://spdx.dev/Document');
    await attest('p3', digestOf('other'));
    assert.deepEqual(await sc().listFacts(subject), [
      { recordId: 'p1', predicateType: PROVENANCE, builderId: 'https://github.com/actions/runner', buildType: 'https://actions.github.io/buildtypes/workflow/v1', materials: [{ uri: 'git+https://example.com/app', digest: { sha1: 'abc' } }] },
      { recordId: 'p2', predicateType: 'https://spdx.dev/Document', materials: [{ uri: 'git+https://example.com/app', digest: { sha1: 'abc' } }] },
    ]);
    assert.deepEqual(await sc().listFacts(digestOf('none')), []);
  });

  test('findLacking over a bucket: objects with no matching attestation, in key order, by prefix, paged', async () => {
    const keys = ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'b/1', 'a/multipart'];
    for (const key of keys) {
      const digest = key === 'a/multipart' ? undefined : digestOf(`object ${key}`);
      await store().objects.put(objectRecord('b', key, { ...(digest !== undefined && { digest }) }));
    }
    await attest('x1', digestOf('object a/1'), 'builder-1');
    await attest('x3', digestOf('object a/3'), 'builder-2');
    await attest('x4', digestOf('object a/4'), undefined, 'https://spdx.dev/Document');
    await attest('sbom', digestOf('object a/5'), undefined, 'https://cyclonedx.org/bom');

    const lacking = async (query: Omit<LackingQuery, 'limit' | 'after' | 'predicateType'>, limit = 2) =>
      allPages<ArtifactRef>((after) => sc().findLacking({ predicateType: PROVENANCE, ...query, limit, ...(after !== undefined && { after }) }));
    const ref = (key: string): ArtifactRef => ({ subject: digestOf(`object ${key}`), bucket: 'b', key });
    assert.deepEqual(await lacking({ bucket: 'b' }), [ref('a/2'), ref('a/4'), ref('a/5'), ref('b/1')], 'the multipart object without a digest is skipped');
    assert.deepEqual(await lacking({ bucket: 'b', keyPrefix: 'a/' }, 1), [ref('a/2'), ref('a/4'), ref('a/5')]);
    assert.deepEqual(await lacking({ bucket: 'b', builderId: 'builder-1' }), [ref('a/2'), ref('a/3'), ref('a/4'), ref('a/5'), ref('b/1')]);
    assert.deepEqual(await lacking({ bucket: 'b', keyPrefix: 'c' }), []);
    assert.deepEqual(await lacking({ bucket: 'nobucket' }), []);

    // The same content attested where it was pushed to the registry counts here too.
    await sc().putRecord(scRecord('via registry', { subject: digestOf('object b/1'), repository: 'team/app', kind: 'attestation' }), { facts: { predicateType: PROVENANCE, materials: [] } });
    assert.deepEqual(await lacking({ bucket: 'b' }, 10), [ref('a/2'), ref('a/4'), ref('a/5')]);
  });

  test('findLacking over repositories: manifests that are artifacts, by repository prefix, paged', async () => {
    const registry = store().registry;
    const app1 = manifestRecord('team-a/app', 'app 1');
    const app2 = manifestRecord('team-a/app', 'app 2');
    const lib = manifestRecord('team-a/lib', 'lib');
    const other = manifestRecord('team-b/app', 'other');
    const signature = manifestRecord('team-a/app', 'signature', { subject: app1.digest, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' });
    const cosignTag = manifestRecord('team-a/app', 'sha256-app1.sig');
    for (const m of [app1, app2, lib, other, signature, cosignTag]) await registry.putManifest(m);
    await sc().putRecord(registryRecord('cosign', 'team-a/app', cosignTag.digest, 0, { subject: app1.digest }));
    await attest('prov', app1.digest, 'builder');
    await attest('prov lib', lib.digest, 'other builder');

    const lacking = async (query: Omit<LackingQuery, 'limit' | 'after' | 'predicateType'>, limit = 1) =>
      allPages<ArtifactRef>((after) => sc().findLacking({ predicateType: PROVENANCE, ...query, limit, ...(after !== undefined && { after }) }));
    const ref = (m: typeof app1): ArtifactRef => ({ subject: m.digest, repository: m.repository });
    const byPosition = (a: ArtifactRef, b: ArtifactRef) => (a.repository! < b.repository! ? -1 : a.repository! > b.repository! ? 1 : a.subject < b.subject ? -1 : 1);
    assert.deepEqual(await lacking({ repositoryPrefix: 'team-a/' }), [ref(app2)], 'not the referrer, nor the manifest records were read from');
    assert.deepEqual(await lacking({ repositoryPrefix: '' }), [ref(app2), ref(other)]);
    assert.deepEqual(await lacking({ repositoryPrefix: 'team-a/', builderId: 'builder' }), [ref(app2), ref(lib)].sort(byPosition));
    assert.deepEqual(await lacking({ repositoryPrefix: 'team-c' }), []);

    // Paging continues across repositories with a cursor naming (repository, digest).
    const many = Array.from({ length: 5 }, (_, i) => manifestRecord(`team-c/r${i % 2}`, `m${i}`));
    for (const m of many) await registry.putManifest(m);
    assert.deepEqual(await lacking({ repositoryPrefix: 'team-c/' }, 2), many.map(ref).sort(byPosition));
  });

  test('findLacking refuses a query that names both or neither of bucket and repository prefix', async () => {
    await rejectsWith(sc().findLacking({ predicateType: PROVENANCE, limit: 10 }), 'InvalidArgument');
    await rejectsWith(sc().findLacking({ predicateType: PROVENANCE, bucket: 'b', repositoryPrefix: 'x', limit: 10 }), 'InvalidArgument');
    await rejectsWith(sc().findLacking({ predicateType: PROVENANCE, repositoryPrefix: 'x', keyPrefix: 'k', limit: 10 }), 'InvalidArgument');
    await rejectsWith(sc().findLacking({ predicateType: PROVENANCE, bucket: 'b', limit: 10, after: 'bad' }), 'InvalidArgument');
  });
}
