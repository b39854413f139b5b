import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { FsBlobStore } from '../storage/blob/fs.ts';
import { openSqliteMetaStore } from '../storage/meta/sqlite.ts';
import type { MetaStore, RegistryMeta } from '../storage/meta/types.ts';
import { ContentStore, blobKey } from './content.ts';
import { isAstoreError } from './errors.ts';
import { type GcOptions, GarbageCollector } from './gc.ts';
import { RegistryBlobService } from './registry/blobs.ts';
import { mediaTypes } from './registry/manifest-format.ts';
import { ManifestService } from './registry/manifests.ts';

const HOUR = 3_600_000;
const gcOptions: GcOptions = { graceMs: HOUR, multipartExpiryMs: 24 * HOUR, registryUploadExpiryMs: 2 * HOUR, untaggedManifestsMs: 0, intervalMs: 0 };
const sha256 = (bytes: string | Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const later = (ms: number): Date => new Date(Date.now() + ms);

async function setup(options: Partial<GcOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'astore-gc-registry-'));
  const blobs = await FsBlobStore.open({ path: join(dir, 'blobs') });
  const meta = await openSqliteMetaStore({ path: ':memory:' });
  const content = new ContentStore(blobs, meta);
  const registryBlobs = new RegistryBlobService(meta, content, { maxBlobBytes: 1024 ** 2, linkRefreshMs: HOUR / 2 });
  const manifests = new ManifestService(meta, { maxManifestBytes: 1024 ** 2 });
  const gc = new GarbageCollector(meta, blobs, { ...gcOptions, ...options }, pino({ level: 'silent' }));
  const pushBlob = async (repository: string, text: string): Promise<string> => {
    await registryBlobs.putBlob(repository, sha256(text), Readable.from([Buffer.from(text)]));
    return sha256(text);
  };
  /** Pushes a config and one layer, then the manifest naming them; returns their digests. */
  const pushImage = async (repository: string, name: string, tag?: string) => {
    const config = await pushBlob(repository, `{"config":"${name}"}`);
    const layer = await pushBlob(repository, `layer of ${name}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: `{"config":"${name}"}`.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: `layer of ${name}`.length }],
      }),
    );
    const { digest } = await manifests.put(repository, tag ?? sha256(manifest), mediaTypes.ociManifest, manifest);
    return { config, layer, manifest: digest };
  };
  const hasBytes = async (digest: string): Promise<boolean> => (await blobs.stat(blobKey(digest))) !== null;
  const cleanup = async () => {
    await gc.stop();
    await meta.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { meta, content, registryBlobs, manifests, gc, pushBlob, pushImage, hasBytes, cleanup };
}

test('a layer no manifest references is kept for the grace period, then unlinked and its blob reclaimed', async () => {
  const s = await setup();
  try {
    const layer = await s.pushBlob('lib/app', 'orphan layer');
    const within = await s.gc.runOnce(later(HOUR / 2));
    assert.equal(within.expiredLinks, 0);
    assert.equal(within.deletedBlobs, 0);
    assert.equal((await s.registryBlobs.statBlob('lib/app', layer)).blob, layer);

    const after = await s.gc.runOnce(later(HOUR + 60_000));
    assert.equal(after.expiredLinks, 1);
    assert.equal(after.deletedBlobs, 1);
    assert.equal(after.deletedBytes, 'orphan layer'.length);
    assert.equal(await s.meta.registry.getLayer('lib/app', layer), null);
    assert.equal(await s.hasBytes(layer), false);
    assert.equal(await s.meta.blobs.get(layer), null);
  } finally {
    await s.cleanup();
  }
});

test('layers a tagged manifest references survive any number of passes', async () => {
  const s = await setup({ untaggedManifestsMs: HOUR });
  try {
    const image = await s.pushImage('lib/app', 'kept', 'v1');
    const orphan = await s.pushBlob('lib/app', 'orphan');
    const report = await s.gc.runOnce(later(100 * HOUR));
    assert.equal(report.expiredLinks, 1);
    assert.equal(report.deletedBlobs, 1);
    assert.equal(report.deletedManifests, 0);
    await s.gc.runOnce(later(200 * HOUR));
    for (const digest of [image.config, image.layer]) {
      assert.equal((await s.registryBlobs.statBlob('lib/app', digest)).blob, digest);
      assert.equal(await s.hasBytes(digest), true);
    }
    assert.equal(await s.hasBytes(orphan), false);
    assert.equal((await s.manifests.get('lib/app', 'v1')).digest, image.manifest);
  } finally {
    await s.cleanup();
  }
});

test('a blob linked in two repositories is reclaimed only when neither links it', async () => {
  const s = await setup();
  try {
    const image = await s.pushImage('team/app', 'shared', 'v1');
    await s.pushBlob('team/scratch', 'layer of shared');
    assert.equal((await s.gc.runOnce(later(2 * HOUR))).expiredLinks, 1, "scratch's link");
    assert.equal(await s.hasBytes(image.layer), true, "still linked by team/app's manifest");
    await s.manifests.delete('team/app', image.manifest);
    const report = await s.gc.runOnce(later(2 * HOUR));
    assert.equal(report.expiredLinks, 2);
    assert.equal(report.deletedBlobs, 2);
    assert.equal(await s.hasBytes(image.layer), false);
    assert.equal(await s.hasBytes(image.config), false);
  } finally {
    await s.cleanup();
  }
});

test('an untagged manifest is deleted when untaggedManifestsMs is set, and its layers reclaimed in the same pass', async () => {
  const s = await setup({ untaggedManifestsMs: 3 * HOUR });
  try {
    const image = await s.pushImage('lib/app', 'untagged');
    assert.equal((await s.gc.runOnce(later(2 * HOUR))).deletedManifests, 0, 'younger than untaggedManifestsMs');
    const report = await s.gc.runOnce(later(4 * HOUR));
    assert.equal(report.deletedManifests, 1);
    assert.equal(report.expiredLinks, 2);
    assert.equal(report.deletedBlobs, 2);
    await assert.rejects(s.manifests.get('lib/app', image.manifest), (err: unknown) => isAstoreError(err, 'ManifestUnknown'));
    assert.equal(await s.hasBytes(image.layer), false);
  } finally {
    await s.cleanup();
  }
});

test('untagged manifests are kept when untaggedManifestsMs is 0; their layers too', async () => {
  const s = await setup({ untaggedManifestsMs: 0 });
  try {
    const image = await s.pushImage('lib/app', 'untagged');
    const report = await s.gc.runOnce(later(1_000 * HOUR));
    assert.equal(report.deletedManifests, 0);
    assert.equal(report.deletedBlobs, 0);
    assert.equal((await s.manifests.get('lib/app', image.manifest)).digest, image.manifest);
    assert.equal(await s.hasBytes(image.layer), true);
  } finally {
    await s.cleanup();
  }
});

test('an untagged index, the untagged images in it and their layers all go in one pass', async () => {
  const s = await setup({ untaggedManifestsMs: HOUR });
  try {
    const image = await s.pushImage('lib/app', 'child');
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [{ mediaType: mediaTypes.ociManifest, digest: image.manifest, size: 1 }] }));
    await s.manifests.put('lib/app', sha256(index), mediaTypes.ociIndex, index);
    const report = await s.gc.runOnce(later(2 * HOUR));
    assert.equal(report.deletedManifests, 2);
    assert.equal(report.expiredLinks, 2);
    assert.equal(report.deletedBlobs, 2);
    assert.equal(await s.hasBytes(image.layer), false);
    assert.deepEqual((await s.manifests.tags('lib/app', 10)).items, []);
    await assert.rejects(s.manifests.get('lib/app', image.manifest), (err: unknown) => isAstoreError(err, 'ManifestUnknown'));
  } finally {
    await s.cleanup();
  }
});

test('a signature stays while its image does, and goes with it', async () => {
  const s = await setup({ untaggedManifestsMs: HOUR });
  try {
    const image = await s.pushImage('lib/app', 'signed', 'v1');
    const config = await s.pushBlob('lib/app', '{}');
    const signature = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociManifest,
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 },
        layers: [],
        subject: { mediaType: mediaTypes.ociManifest, digest: image.manifest, size: 1 },
      }),
    );
    await s.manifests.put('lib/app', sha256(signature), mediaTypes.ociManifest, signature);
    assert.equal((await s.gc.runOnce(later(2 * HOUR))).deletedManifests, 0, 'an untagged referrer of a live image');

    await s.manifests.delete('lib/app', 'v1');
    const report = await s.gc.runOnce(later(2 * HOUR));
    assert.equal(report.deletedManifests, 2);
    assert.equal(report.deletedBlobs, 3);
    await assert.rejects(s.manifests.get('lib/app', sha256(signature)), (err: unknown) => isAstoreError(err, 'ManifestUnknown'));
  } finally {
    await s.cleanup();
  }
});

test('an idle registry upload expires and its chunks are reclaimed; an active one stays', async () => {
  const s = await setup();
  try {
    const idle = await s.registryBlobs.startUpload('lib/app');
    await s.registryBlobs.appendChunk('lib/app', idle.uploadId, Readable.from([Buffer.from('idle chunk')]));
    const within = await s.gc.runOnce(later(HOUR + 60_000));
    assert.equal(within.expiredRegistryUploads, 0, 'idle for less than registryUploadExpiryMs');
    assert.equal(within.deletedBlobs, 0, 'a chunk of a live session is not garbage past the grace period');
    assert.equal(await s.hasBytes(sha256('idle chunk')), true);

    const report = await s.gc.runOnce(later(2 * HOUR + 60_000));
    assert.equal(report.expiredRegistryUploads, 1);
    assert.equal(report.deletedBlobs, 1);
    await assert.rejects(s.registryBlobs.getUpload('lib/app', idle.uploadId), (err: unknown) => isAstoreError(err, 'BlobUploadUnknown'));
    assert.equal(await s.hasBytes(sha256('idle chunk')), false);
  } finally {
    await s.cleanup();
  }
});

test('a mount racing the collection of its source link links nothing, never a blob whose bytes are gone', async () => {
  const s = await setup();
  try {
    const layer = await s.pushBlob('team/old', 'layer whose manifest never came');
    // A GC pass runs between mount's lookup of the source link and the link it adds.
    const registry: RegistryMeta = Object.create(s.meta.registry, {
      getLayer: {
        value: async (repository: string, digest: string) => {
          const found = await s.meta.registry.getLayer(repository, digest);
          if (repository === 'team/old') await s.gc.runOnce(later(2 * HOUR));
          return found;
        },
      },
    });
    const racing: MetaStore = Object.create(s.meta, { registry: { value: registry } });
    const service = new RegistryBlobService(racing, s.content, { maxBlobBytes: 1024 ** 2, linkRefreshMs: HOUR / 2 });

    const mounted = await service.mount('team/new', layer, 'team/old', async () => true);
    assert.equal(await s.hasBytes(layer), false, 'the GC pass reclaimed the bytes');
    assert.equal(mounted, null, `mounted ${layer} although its bytes are gone`);
    assert.equal(await s.meta.registry.getLayer('team/new', layer), null);
  } finally {
    await s.cleanup();
  }
});
