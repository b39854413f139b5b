import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { ManifestRecord } from '../types.ts';
import { OCI_INDEX, type StoreRef, T0, bucketRecord, digestOf, layerLink, manifestRecord, objectRecord, partRecord, sha512Of, uploadRecord } from './fixtures.ts';

/** RegistryMeta's garbage collection of its own rows, and how links and sessions keep blobs alive. */
export function registryGcTests(store: StoreRef): void {
  const registry = () => store().registry;
  const FUTURE = (): Date => new Date(Date.now() + 60_000);
  const garbage = async (): Promise<string[]> => (await store().blobs.listGarbage(FUTURE(), 100)).map((blob) => blob.digest).sort();
  const put = async (manifest: ManifestRecord, tags?: string[]): Promise<ManifestRecord> => {
    for (const digest of manifest.blobs) await registry().linkBlob({ repository: manifest.repository, digest, blob: digest, size: 3 });
    await registry().putManifest(manifest, tags);
    return manifest;
  };
  const exists = async (m: ManifestRecord): Promise<boolean> => (await registry().getManifest(m.repository, { digest: m.digest })) !== null;

  // ------------------------------------------------------------ expireLinks

  test('expireLinks removes links older than the cutoff that no manifest of their repository references', async () => {
    await put(manifestRecord('r', 'm', { blobs: [digestOf('referenced')] }));
    await registry().linkBlob(layerLink('other', 'referenced'));
    await registry().linkBlob(layerLink('r', 'orphan'));
    await registry().linkBlob({ repository: 'r', digest: sha512Of('orphan512'), blob: digestOf('orphan512'), size: 3 });
    await delay(2);
    const cutoff = new Date();
    await delay(2);
    await registry().linkBlob(layerLink('r', 'young'));

    assert.equal(await registry().expireLinks(cutoff, 100), 3);
    assert.notEqual(await registry().getLayer('r', digestOf('referenced')), null, 'named by a manifest of r');
    assert.equal(await registry().getLayer('other', digestOf('referenced')), null, "r's manifest does not keep other's link");
    assert.equal(await registry().getLayer('r', digestOf('orphan')), null);
    assert.equal(await registry().getLayer('r', sha512Of('orphan512')), null);
    assert.notEqual(await registry().getLayer('r', digestOf('young')), null, 'touched after the cutoff');
    assert.equal(await registry().expireLinks(cutoff, 100), 0);
  });

  test('expireLinks removes at most `limit` links per call', async () => {
    for (const label of ['a', 'b', 'c']) await registry().linkBlob(layerLink('r', label));
    assert.equal(await registry().expireLinks(FUTURE(), 2), 2);
    assert.equal(await registry().expireLinks(FUTURE(), 2), 1);
    assert.equal(await registry().expireLinks(FUTURE(), 2), 0);
  });

  test('a link a manifest of its repository names by its sha512 digest is kept', async () => {
    const link = { repository: 'r', digest: sha512Of('layer'), blob: digestOf('layer'), size: 3 };
    await registry().linkBlob(link);
    await registry().putManifest(manifestRecord('r', 'm', { blobs: [link.digest] }));
    assert.equal(await registry().expireLinks(FUTURE(), 100), 0);
    assert.notEqual(await registry().getLayer('r', link.digest), null);
  });

  // ------------------------------------------------------------ deleteUntaggedManifests

  test('deleteUntaggedManifests deletes old untagged manifests nothing keeps, and only those', async () => {
    const cutoff = new Date(T0 + 1_000);
    const tagged = await put(manifestRecord('r', 'tagged', { blobs: [digestOf('l1')] }), ['v1']);
    const untagged = await put(manifestRecord('r', 'untagged', { blobs: [digestOf('l2')] }));
    const young = await put(manifestRecord('r', 'young', { createdAt: new Date(T0 + 5_000) }));
    const child = await put(manifestRecord('r', 'child'));
    const index = await put(manifestRecord('r', 'index', { mediaType: OCI_INDEX, manifests: [child.digest] }), ['multi']);
    const signature = await put(manifestRecord('r', 'signature', { subject: tagged.digest, artifactType: 'application/vnd.example.sig' }));
    const orphanSignature = await put(manifestRecord('r', 'orphan signature', { subject: digestOf('gone') }));
    // The same digests in another repository do not keep r's manifests, nor r's keep theirs.
    const childElsewhere = await put(manifestRecord('r', 'child elsewhere'));
    await put({ ...childElsewhere, repository: 'o' });
    await put(manifestRecord('o', 'index elsewhere', { mediaType: OCI_INDEX, manifests: [childElsewhere.digest] }), ['x']);
    const subjectElsewhere = await put(manifestRecord('o', 'subject elsewhere'), ['y']);
    const signatureOfElsewhere = await put(manifestRecord('r', 'signature of elsewhere', { subject: subjectElsewhere.digest }));

    assert.equal(await registry().deleteUntaggedManifests(cutoff, 100), 4);
    for (const m of [tagged, young, child, index, signature]) assert.ok(await exists(m), `keeps ${m.content.toString()}`);
    for (const m of [untagged, orphanSignature, childElsewhere, signatureOfElsewhere]) assert.equal(await exists(m), false, `deletes ${m.content.toString()}`);
    assert.ok(await exists({ ...childElsewhere, repository: 'o' }));
    assert.equal(await registry().deleteUntaggedManifests(cutoff, 100), 0);
    // A deleted manifest no longer keeps its layers' links.
    await registry().expireLinks(FUTURE(), 100);
    assert.equal(await registry().getLayer('r', digestOf('l2')), null);
    assert.notEqual(await registry().getLayer('r', digestOf('l1')), null);
  });

  test('deleteUntaggedManifests: children of a deleted index, and referrers of a deleted subject, go in a later call', async () => {
    const cutoff = new Date(T0 + 1_000);
    const child = await put(manifestRecord('r', 'child'));
    const index = await put(manifestRecord('r', 'index', { mediaType: OCI_INDEX, manifests: [child.digest] }), ['t']);
    const signature = await put(manifestRecord('r', 'signature', { subject: index.digest }));
    assert.equal(await registry().deleteUntaggedManifests(cutoff, 100), 0);

    await registry().deleteTag('r', 't');
    assert.equal(await registry().deleteUntaggedManifests(cutoff, 100), 1);
    assert.equal(await exists(index), false);
    assert.equal(await registry().deleteUntaggedManifests(cutoff, 100), 2);
    assert.equal(await exists(child), false);
    assert.equal(await exists(signature), false);
  });

  test('deleteUntaggedManifests deletes at most `limit` per call', async () => {
    for (const label of ['a', 'b', 'c']) await put(manifestRecord('r', label));
    assert.equal(await registry().deleteUntaggedManifests(FUTURE(), 2), 2);
    assert.equal(await registry().deleteUntaggedManifests(FUTURE(), 2), 1);
    assert.equal(await registry().deleteUntaggedManifests(FUTURE(), 2), 0);
  });

  // ------------------------------------------------------------ the blob GC (BlobMeta)

  test('a blob only a repository link names is not garbage until the link goes', async () => {
    const link = { repository: 'r', digest: sha512Of('layer'), blob: digestOf('layer'), size: 3 };
    await registry().linkBlob(link);
    await registry().linkBlob({ ...link, repository: 'r2' });
    assert.deepEqual(await garbage(), []);
    assert.equal(await store().blobs.deleteIfGarbage(link.blob, FUTURE(), async () => assert.fail('removeBytes')), false);

    await registry().unlinkBlob('r', link.digest);
    assert.deepEqual(await garbage(), [], 'still linked in r2');
    await registry().unlinkBlob('r2', link.digest);
    assert.deepEqual(await garbage(), [link.blob]);
    assert.deepEqual(await store().blobs.listGarbage(new Date(Date.now() - 60_000), 100), [], 'not before the cutoff');
    let removed = 0;
    assert.equal(await store().blobs.deleteIfGarbage(link.blob, FUTURE(), async () => void removed++), true);
    assert.equal(removed, 1);
  });

  test('a blob only a registry upload chunk names is not garbage until the session completes or is deleted', async () => {
    await registry().createUpload({ uploadId: 'u1', repository: 'r', createdAt: new Date(T0) });
    await registry().createUpload({ uploadId: 'u2', repository: 'r', createdAt: new Date(T0) });
    const c1 = { digest: digestOf('c1'), size: 3 };
    const c2 = { digest: digestOf('c2'), size: 4 };
    await registry().appendChunk('u1', 0, c1);
    await registry().appendChunk('u1', 3, c2);
    await registry().appendChunk('u2', 0, { digest: digestOf('c3'), size: 1 });
    assert.deepEqual(await garbage(), []);
    assert.equal(await store().blobs.deleteIfGarbage(c1.digest, FUTURE(), async () => assert.fail('removeBytes')), false);

    const assembled = { repository: 'r', digest: digestOf('assembled'), blob: digestOf('assembled'), size: 7 };
    await registry().completeUpload('u1', assembled);
    assert.deepEqual(await garbage(), [c1.digest, c2.digest].sort(), 'the chunks, not the linked result');
    await registry().deleteUpload('u2');
    assert.deepEqual(await garbage(), [c1.digest, c2.digest, digestOf('c3')].sort());
    assert.equal(await store().blobs.deleteIfGarbage(c1.digest, FUTURE(), async () => {}), true);
  });

  test('references lists the objects, multipart parts, repository links and registry uploads naming a blob', async () => {
    const digest = digestOf('shared bytes');
    await store().buckets.create(bucketRecord('b'));
    await store().objects.put(objectRecord('b', 'k', { segments: [{ digest, size: 3 }] }));
    await store().uploads.create(uploadRecord('mp', 'b', 'big'));
    await store().uploads.putPart({ ...partRecord('mp', 2), digest, size: 3 });
    await registry().linkBlob({ repository: 'lib/app', digest: sha512Of('shared bytes'), blob: digest, size: 3 });
    await registry().linkBlob({ repository: 'lib/base', digest, blob: digest, size: 3 });
    await registry().createUpload({ uploadId: 'ru', repository: 'lib/app', createdAt: new Date(T0) });
    await registry().appendChunk('ru', 0, { digest, size: 3 });
    await registry().appendChunk('ru', 3, { digest, size: 3 });

    assert.deepEqual(await store().blobs.references(digest, 10), {
      objects: [{ bucket: 'b', key: 'k' }],
      multipartParts: [{ bucket: 'b', key: 'big', uploadId: 'mp', partNumber: 2 }],
      layers: [
        { repository: 'lib/app', digest: sha512Of('shared bytes') },
        { repository: 'lib/base', digest },
      ],
      registryUploads: [{ repository: 'lib/app', uploadId: 'ru' }],
      records: [],
    });
    const limited = await store().blobs.references(digest, 1);
    assert.equal(limited.layers.length, 1);
    assert.deepEqual(await store().blobs.references(digestOf('unknown'), 10), { objects: [], multipartParts: [], layers: [], registryUploads: [], records: [] });
  });
}
