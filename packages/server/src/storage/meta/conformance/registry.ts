import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { ManifestRecord } from '../types.ts';
import {
  OCI_INDEX,
  type StoreRef,
  T0,
  byteOrder,
  digestOf,
  layerLink,
  manifestRecord,
  manifestSummaryOf,
  rejectsWith,
  sha512Of,
  sortedRefs,
} from './fixtures.ts';

/** RegistryMeta: repositories, links, manifests, tags and referrers. */
export function registryTests(store: StoreRef): void {
  const registry = () => store().registry;

  /** Links every blob `manifest` references, in its repository. */
  const linkAll = async (manifest: ManifestRecord): Promise<void> => {
    for (const digest of manifest.blobs) await registry().linkBlob({ repository: manifest.repository, digest, blob: digest, size: 3 });
  };

  // ------------------------------------------------------------ repositories

  test('listRepositories lists every way of creating one, in byte order, paged by after and limit', async () => {
    await registry().linkBlob(layerLink('b', 'x'));
    await registry().createUpload({ uploadId: 'u1', repository: 'a/b', createdAt: new Date(T0) });
    await registry().putManifest(manifestRecord('a-b', 'm'));
    for (const name of ['ab', 'a_b', 'a', 'a.b']) await registry().linkBlob(layerLink(name, 'x'));
    const all = ['a', 'a-b', 'a.b', 'a/b', 'a_b', 'ab', 'b'];
    assert.deepEqual([...all].sort(byteOrder), all);

    assert.deepEqual(await registry().listRepositories(undefined, 100), all);
    assert.deepEqual(await registry().listRepositories(undefined, 2), ['a', 'a-b']);
    assert.deepEqual(await registry().listRepositories('a.b', 2), ['a/b', 'a_b']);
    assert.deepEqual(await registry().listRepositories('a/', 100), ['a/b', 'a_b', 'ab', 'b'], 'after a name that does not exist');
    assert.deepEqual(await registry().listRepositories('b', 100), []);
    assert.deepEqual(await registry().listRepositories(undefined, 0), []);

    const paged: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = await registry().listRepositories(after, 1);
      if (page.length === 0) break;
      paged.push(...page);
      after = page[0];
    }
    assert.deepEqual(paged, all);

    for (const name of all) assert.equal(await registry().repositoryExists(name), true, name);
    assert.equal(await registry().repositoryExists('c'), false);
    assert.equal(await registry().repositoryExists('a/'), false);
  });

  // ------------------------------------------------------------ links

  test('linkBlob creates the repository and the link and touches the blob row', async () => {
    const link = { repository: 'lib/app', digest: sha512Of('layer'), blob: digestOf('layer'), size: 5 };
    const before = Date.now();
    await registry().linkBlob(link);
    const after = Date.now();

    assert.equal(await registry().repositoryExists('lib/app'), true);
    const layer = await registry().getLayer('lib/app', link.digest);
    assert.ok(layer);
    const { touchedAt, ...rest } = layer;
    assert.deepEqual(rest, link);
    assert.ok(touchedAt.getTime() >= before && touchedAt.getTime() <= after);
    const blob = await store().blobs.get(link.blob);
    assert.ok(blob);
    assert.equal(blob.size, 5);
    assert.ok(blob.touchedAt.getTime() >= before && blob.touchedAt.getTime() <= after);

    assert.equal(await registry().getLayer('lib/app', link.blob), null, 'a link is found by the client-facing digest only');
    assert.equal(await registry().getLayer('lib', link.digest), null);
    assert.equal(await registry().getLayer('other', link.digest), null);
  });

  test('linkBlob again refreshes the link and the blob, and replaces what it points at', async () => {
    const link = layerLink('r', 'layer', 7);
    await registry().linkBlob(link);
    const first = await registry().getLayer('r', link.digest);
    const firstBlob = await store().blobs.get(link.blob);
    await delay(5);
    await registry().linkBlob(link);
    const second = await registry().getLayer('r', link.digest);
    const secondBlob = await store().blobs.get(link.blob);
    assert.ok(first && second && firstBlob && secondBlob);
    assert.ok(second.touchedAt > first.touchedAt);
    assert.ok(secondBlob.touchedAt > firstBlob.touchedAt);

    const relinked = { ...link, blob: digestOf('other bytes'), size: 9 };
    await registry().linkBlob(relinked);
    const third = await registry().getLayer('r', link.digest);
    assert.ok(third);
    assert.equal(third.blob, relinked.blob);
    assert.equal(third.size, 9);
  });

  test('findLayer finds a link of the digest in any repository, or only among `repositories`', async () => {
    const digest = digestOf('shared');
    await registry().linkBlob(layerLink('a', 'shared'));
    await registry().linkBlob(layerLink('b', 'shared'));
    await registry().linkBlob(layerLink('c', 'other'));

    const any = await registry().findLayer(digest);
    assert.ok(any);
    assert.ok(['a', 'b'].includes(any.repository));
    assert.equal(any.digest, digest);
    assert.equal(any.blob, digest);

    assert.equal((await registry().findLayer(digest, ['a']))?.repository, 'a');
    assert.equal((await registry().findLayer(digest, ['c', 'b', 'zzz']))?.repository, 'b');
    assert.equal(await registry().findLayer(digest, ['c']), null);
    assert.equal(await registry().findLayer(digest, []), null, 'an empty list allows no repository');
    assert.equal(await registry().findLayer(digestOf('nowhere')), null);
  });

  test('touchLayer refreshes the link only; false, creating nothing, for an unknown or removed link', async () => {
    const link = layerLink('r', 'layer');
    await registry().linkBlob(link);
    const before = await registry().getLayer('r', link.digest);
    await delay(5);
    assert.equal(await registry().touchLayer('r', link.digest), true);
    const after = await registry().getLayer('r', link.digest);
    assert.ok(before && after);
    assert.ok(after.touchedAt > before.touchedAt);
    assert.deepEqual({ ...after, touchedAt: before.touchedAt }, before);

    assert.equal(await registry().touchLayer('r', digestOf('unknown')), false);
    assert.equal(await registry().touchLayer('nope', link.digest), false);
    assert.equal(await registry().getLayer('r', digestOf('unknown')), null);
    assert.equal(await registry().getLayer('nope', link.digest), null);
    await registry().unlinkBlob('r', link.digest);
    assert.equal(await registry().touchLayer('r', link.digest), false);
    assert.equal(await registry().getLayer('r', link.digest), null);
  });

  test("mountLayer links the source link's blob in another repository, creating it, and touches both rows", async () => {
    const source = { repository: 'team/base', digest: sha512Of('layer'), blob: digestOf('layer'), size: 5 };
    await registry().linkBlob(source);
    const sourceBefore = await registry().getLayer(source.repository, source.digest);
    const blobBefore = await store().blobs.get(source.blob);
    await delay(5);
    const mounted = await registry().mountLayer({ repository: source.repository, digest: source.digest }, 'team/app');

    assert.ok(mounted && sourceBefore && blobBefore);
    assert.deepEqual(await registry().getLayer('team/app', source.digest), mounted);
    assert.deepEqual({ ...mounted, touchedAt: undefined }, { ...source, repository: 'team/app', touchedAt: undefined });
    assert.ok(mounted.touchedAt > sourceBefore.touchedAt, 'a fresh link, not a copy of the source time');
    assert.equal(await registry().repositoryExists('team/app'), true);
    const blobAfter = await store().blobs.get(source.blob);
    assert.ok(blobAfter && blobAfter.touchedAt > blobBefore.touchedAt);
    assert.deepEqual(await registry().getLayer(source.repository, source.digest), sourceBefore, 'the source is unchanged');
  });

  test('mountLayer of a source link that is gone is null and links nothing', async () => {
    await registry().linkBlob(layerLink('a', 'layer'));
    await registry().unlinkBlob('a', digestOf('layer'));
    assert.equal(await registry().mountLayer({ repository: 'a', digest: digestOf('layer') }, 'b'), null);
    assert.equal(await registry().mountLayer({ repository: 'nope', digest: digestOf('layer') }, 'b'), null);
    assert.equal(await registry().getLayer('b', digestOf('layer')), null);
    assert.equal(await registry().repositoryExists('b'), false);
  });

  test("unlinkBlob removes that repository's link only, then reports false", async () => {
    await registry().linkBlob(layerLink('a', 'shared'));
    await registry().linkBlob(layerLink('b', 'shared'));
    const digest = digestOf('shared');
    assert.equal(await registry().unlinkBlob('a', digest), true);
    assert.equal(await registry().getLayer('a', digest), null);
    assert.notEqual(await registry().getLayer('b', digest), null);
    assert.equal(await registry().unlinkBlob('a', digest), false);
    assert.equal(await registry().unlinkBlob('nope', digest), false);
    assert.notEqual(await store().blobs.get(digest), null, 'the blob row stays for the garbage collector');
  });

  // ------------------------------------------------------------ manifests

  test('putManifest stores the manifest and its tags; getManifest by tag or digest returns its exact bytes and references', async () => {
    const child = manifestRecord('lib/app', 'child', { blobs: [digestOf('config'), digestOf('layer-1'), digestOf('layer-2')] });
    await linkAll(child);
    await registry().putManifest(child);

    // Bytes a JSON round trip would change: BOM, whitespace, escapes, a NUL, invalid UTF-8.
    const content = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{ "é":\t"\\u00e9" ,\r\n"z":0 }\n\u0000'), Buffer.from([0xff, 0xfe])]);
    const index: ManifestRecord = {
      ...manifestRecord('lib/app', 'index'),
      digest: `sha256:${'ab'.repeat(32)}`,
      content,
      size: content.length,
      mediaType: OCI_INDEX,
      artifactType: 'application/vnd.example.bundle',
      subject: `sha256:${'cd'.repeat(32)}`,
      annotations: { 'org.opencontainers.image.title': 'Zoë ✓', empty: '' },
      createdAt: new Date(T0 + 17),
      manifests: [child.digest],
    };
    await registry().putManifest(index, ['v1', 'latest']);

    assert.deepEqual(sortedRefs(await registry().getManifest('lib/app', { digest: child.digest })), sortedRefs(child));
    assert.deepEqual(sortedRefs(await registry().getManifest('lib/app', { digest: index.digest })), index);
    assert.deepEqual(sortedRefs(await registry().getManifest('lib/app', { tag: 'v1' })), index);
    assert.deepEqual((await registry().getManifest('lib/app', { tag: 'latest' }))?.content, content);

    assert.equal(await registry().getManifest('lib/app', { tag: 'v2' }), null);
    assert.equal(await registry().getManifest('lib/app', { digest: digestOf('nothing') }), null);
    assert.equal(await registry().getManifest('lib', { digest: index.digest }), null);
    assert.equal(await registry().getManifest('other', { tag: 'v1' }), null);
  });

  test('putManifest creates the repository', async () => {
    await registry().putManifest(manifestRecord('fresh', 'm'), ['t']);
    assert.equal(await registry().repositoryExists('fresh'), true);
    assert.deepEqual(await registry().listTags('fresh', undefined, 10), ['t']);
  });

  test('putManifest refuses a blob not linked in that repository with ManifestBlobUnknown naming it, storing nothing', async () => {
    const config = layerLink('r', 'config');
    const layer = layerLink('elsewhere', 'layer');
    await registry().linkBlob(config);
    await registry().linkBlob(layer);
    const manifest = manifestRecord('r', 'm', { blobs: [config.digest, layer.digest] });

    await rejectsWith(registry().putManifest(manifest, ['t']), 'ManifestBlobUnknown', { digest: layer.digest });
    assert.equal(await registry().getManifest('r', { digest: manifest.digest }), null);
    assert.deepEqual(await registry().listTags('r', undefined, 10), []);

    const elsewhere = { ...manifest, repository: 'new/repo' };
    await rejectsWith(registry().putManifest(elsewhere, ['t']), 'ManifestBlobUnknown', { digest: config.digest });
    assert.equal(await registry().repositoryExists('new/repo'), false, 'a refused push creates no repository');
    assert.equal(await registry().listTags('new/repo', undefined, 10), null);
  });

  test('putManifest refuses an index whose manifest is not in that repository, storing nothing', async () => {
    const present = manifestRecord('r', 'present');
    const absent = manifestRecord('elsewhere', 'absent');
    await registry().putManifest(present);
    await registry().putManifest(absent);
    const index = manifestRecord('r', 'index', { mediaType: OCI_INDEX, manifests: [present.digest, absent.digest] });

    await rejectsWith(registry().putManifest(index, ['t']), 'ManifestBlobUnknown', { digest: absent.digest });
    assert.equal(await registry().getManifest('r', { digest: index.digest }), null);
    assert.deepEqual(await registry().listTags('r', undefined, 10), []);

    await registry().putManifest({ ...absent, repository: 'r' });
    await registry().putManifest(index, ['t']);
    assert.deepEqual(sortedRefs(await registry().getManifest('r', { tag: 't' })), sortedRefs(index));
  });

  test('the same manifest pushed twice is one manifest, with the tags of both pushes', async () => {
    const subject = digestOf('subject');
    const manifest = manifestRecord('r', 'm', { subject, blobs: [digestOf('config')] });
    await linkAll(manifest);
    await registry().putManifest(manifest, ['a']);
    await registry().putManifest({ ...manifest, createdAt: new Date(T0 + 1) }, ['b']);

    assert.equal((await registry().listReferrers('r', subject)).length, 1);
    assert.deepEqual(await registry().listTags('r', undefined, 10), ['a', 'b']);
    const stored = await registry().getManifest('r', { digest: manifest.digest });
    assert.ok(stored);
    assert.deepEqual(stored.content, manifest.content);
    assert.deepEqual(stored.blobs, manifest.blobs);
    assert.equal(await registry().deleteManifest('r', manifest.digest), true);
    assert.equal(await registry().getManifest('r', { digest: manifest.digest }), null);
  });

  test('a tag moves to the manifest pushed with it last', async () => {
    const first = manifestRecord('r', 'first');
    const second = manifestRecord('r', 'second');
    await registry().putManifest(first, ['latest', 'v1']);
    await registry().putManifest(second, ['latest']);
    assert.equal((await registry().getManifest('r', { tag: 'latest' }))?.digest, second.digest);
    assert.equal((await registry().getManifest('r', { tag: 'v1' }))?.digest, first.digest);
    assert.notEqual(await registry().getManifest('r', { digest: first.digest }), null, 'the untagged manifest stays');
    assert.deepEqual(await registry().listTags('r', undefined, 10), ['latest', 'v1']);
  });

  test('deleteManifest removes the manifest, its tags and its references, then reports false', async () => {
    const doomed = manifestRecord('r', 'doomed', { blobs: [digestOf('layer')] });
    const kept = manifestRecord('r', 'kept');
    await linkAll(doomed);
    await registry().putManifest(doomed, ['a', 'b']);
    await registry().putManifest(kept, ['c']);
    await registry().linkBlob(layerLink('other', 'layer'));
    await registry().putManifest({ ...doomed, repository: 'other' }, ['a']);

    assert.equal(await registry().deleteManifest('r', doomed.digest), true);
    assert.equal(await registry().getManifest('r', { digest: doomed.digest }), null);
    assert.equal(await registry().getManifest('r', { tag: 'a' }), null);
    assert.deepEqual(await registry().listTags('r', undefined, 10), ['c']);
    assert.equal(await registry().deleteManifest('r', doomed.digest), false);
    assert.notEqual(await registry().getManifest('other', { tag: 'a' }), null, 'the same manifest elsewhere stays');
    // Its reference no longer keeps the layer's link: expiry removes that link in 'r' only.
    assert.equal(await registry().expireLinks(new Date(Date.now() + 60_000), 10), 1);
    assert.equal(await registry().getLayer('r', digestOf('layer')), null);
    assert.notEqual(await registry().getLayer('other', digestOf('layer')), null);
  });

  test('deleteTag removes the tag only, then reports false', async () => {
    const manifest = manifestRecord('r', 'm');
    await registry().putManifest(manifest, ['a', 'b']);
    assert.equal(await registry().deleteTag('r', 'a'), true);
    assert.equal(await registry().getManifest('r', { tag: 'a' }), null);
    assert.equal((await registry().getManifest('r', { tag: 'b' }))?.digest, manifest.digest);
    assert.notEqual(await registry().getManifest('r', { digest: manifest.digest }), null);
    assert.equal(await registry().deleteTag('r', 'a'), false);
    assert.equal(await registry().deleteTag('nope', 'b'), false);
  });

  test('listTags: null for an unknown repository, else tags in byte order paged by after and limit', async () => {
    assert.equal(await registry().listTags('r', undefined, 10), null);
    await registry().linkBlob(layerLink('r', 'x'));
    assert.deepEqual(await registry().listTags('r', undefined, 10), [], 'a repository without tags');

    const tags = ['latest', 'V2', 'v10', 'v2', '_x', '1.0', 'A-b', 'a.b', 'a-b', 'a_b', 'Z'];
    await registry().putManifest(manifestRecord('r', 'one'), tags.slice(0, 5));
    await registry().putManifest(manifestRecord('r', 'two'), tags.slice(5));
    await registry().putManifest(manifestRecord('other', 'three'), ['0', 'zz']);
    const sorted = [...tags].sort(byteOrder);
    assert.deepEqual(sorted, ['1.0', 'A-b', 'V2', 'Z', '_x', 'a-b', 'a.b', 'a_b', 'latest', 'v10', 'v2']);

    assert.deepEqual(await registry().listTags('r', undefined, 100), sorted);
    assert.deepEqual(await registry().listTags('r', undefined, 3), sorted.slice(0, 3));
    assert.deepEqual(await registry().listTags('r', 'V2', 3), ['Z', '_x', 'a-b']);
    assert.deepEqual(await registry().listTags('r', 'b', 100), ['latest', 'v10', 'v2'], 'after a tag that does not exist');
    assert.deepEqual(await registry().listTags('r', 'v2', 100), []);
    assert.deepEqual(await registry().listTags('r', undefined, 0), []);
  });

  test('listReferrers lists the manifests with that subject, oldest first, optionally of one artifactType', async () => {
    const subject = manifestRecord('r', 'subject');
    await registry().putManifest(subject);
    const sbom = 'application/vnd.example.sbom';
    const signature = 'application/vnd.example.signature';
    const r1 = manifestRecord('r', 'r1', { subject: subject.digest, artifactType: sbom, createdAt: new Date(T0 + 2), annotations: { a: '1' } });
    const r2 = manifestRecord('r', 'r2', { subject: subject.digest, artifactType: signature, createdAt: new Date(T0 + 1) });
    const r3 = manifestRecord('r', 'r3', { subject: subject.digest, artifactType: sbom, createdAt: new Date(T0 + 3), mediaType: OCI_INDEX });
    const untyped = manifestRecord('r', 'untyped', { subject: subject.digest, createdAt: new Date(T0 + 4) });
    for (const m of [r3, untyped, r1, r2]) await registry().putManifest(m);
    await registry().putManifest(manifestRecord('r', 'unrelated', { subject: digestOf('another subject'), artifactType: sbom }));
    await registry().putManifest(manifestRecord('other', 'elsewhere', { subject: subject.digest, artifactType: sbom }));

    assert.deepEqual(await registry().listReferrers('r', subject.digest), [r2, r1, r3, untyped].map(manifestSummaryOf));
    assert.deepEqual(await registry().listReferrers('r', subject.digest, sbom), [r1, r3].map(manifestSummaryOf));
    assert.deepEqual(await registry().listReferrers('r', subject.digest, signature), [manifestSummaryOf(r2)]);
    assert.deepEqual(await registry().listReferrers('r', subject.digest, 'application/vnd.example.none'), []);
    assert.deepEqual(await registry().listReferrers('r', digestOf('no referrers')), []);
    assert.deepEqual(await registry().listReferrers('nope', subject.digest), []);
  });
}
