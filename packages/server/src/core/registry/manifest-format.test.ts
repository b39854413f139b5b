import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { isAstoreError } from '../errors.ts';
import { mediaTypes, parseManifest } from './manifest-format.ts';

const digest = (label: string): string => `sha256:${createHash('sha256').update(label).digest('hex')}`;
const sha512 = (label: string): string => `sha512:${createHash('sha512').update(label).digest('hex')}`;
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value, null, 2));

const ociConfig = 'application/vnd.oci.image.config.v1+json';
const ociLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
const descriptor = (mediaType: string, label: string, extra: object = {}) => ({ mediaType, digest: digest(label), size: 42, ...extra });

function ociManifest(extra: object = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    config: descriptor(ociConfig, 'config'),
    layers: [descriptor(ociLayer, 'layer-1'), descriptor(ociLayer, 'layer-2')],
    ...extra,
  };
}

function ociIndex(extra: object = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: mediaTypes.ociIndex,
    manifests: [
      descriptor(mediaTypes.ociManifest, 'amd64', { platform: { architecture: 'amd64', os: 'linux' } }),
      descriptor(mediaTypes.ociManifest, 'arm64', { platform: { architecture: 'arm64', os: 'linux' } }),
    ],
    ...extra,
  };
}

/** Asserts parseManifest throws ManifestInvalid with a message matching `message`. */
function invalid(body: Buffer, contentType: string | undefined, message: RegExp): void {
  assert.throws(
    () => parseManifest(body, contentType),
    (err: unknown) => {
      assert.ok(isAstoreError(err, 'ManifestInvalid'), `expected ManifestInvalid, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('parseManifest: accepted formats', () => {
  test('OCI image manifest: config then layers are its blobs; artifactType falls back to the config media type', () => {
    assert.deepEqual(parseManifest(json(ociManifest()), mediaTypes.ociManifest), {
      mediaType: mediaTypes.ociManifest,
      artifactType: ociConfig,
      subject: undefined,
      annotations: undefined,
      blobs: [digest('config'), digest('layer-1'), digest('layer-2')],
      manifests: [],
    });
  });

  test("OCI image manifest with an artifactType, subject and annotations reports them; the config's type is not used", () => {
    const subject = descriptor(mediaTypes.ociManifest, 'subject');
    const body = ociManifest({
      artifactType: 'application/vnd.example.sbom',
      config: descriptor('application/vnd.oci.empty.v1+json', 'empty'),
      layers: [descriptor('application/spdx+json', 'sbom')],
      subject,
      annotations: { 'org.opencontainers.image.created': '2024-02-29T12:00:00Z' },
    });
    const parsed = parseManifest(json(body), mediaTypes.ociManifest);
    assert.equal(parsed.artifactType, 'application/vnd.example.sbom');
    assert.equal(parsed.subject, subject.digest);
    assert.deepEqual(parsed.annotations, { 'org.opencontainers.image.created': '2024-02-29T12:00:00Z' });
    assert.deepEqual(parsed.blobs, [digest('empty'), digest('sbom')]);
  });

  test('OCI image manifest with sha512 descriptors and no layers', () => {
    const body = ociManifest({ config: { mediaType: ociConfig, digest: sha512('config'), size: 2 }, layers: [] });
    assert.deepEqual(parseManifest(json(body), mediaTypes.ociManifest).blobs, [sha512('config')]);
  });

  test('OCI image index: its entries are manifests, it has no blobs and no implied artifactType', () => {
    assert.deepEqual(parseManifest(json(ociIndex()), mediaTypes.ociIndex), {
      mediaType: mediaTypes.ociIndex,
      artifactType: undefined,
      subject: undefined,
      annotations: undefined,
      blobs: [],
      manifests: [digest('amd64'), digest('arm64')],
    });
  });

  test('OCI image index with artifactType and subject', () => {
    const subject = descriptor(mediaTypes.ociManifest, 'subject');
    const parsed = parseManifest(json(ociIndex({ artifactType: 'application/vnd.example.bundle', subject })), mediaTypes.ociIndex);
    assert.equal(parsed.artifactType, 'application/vnd.example.bundle');
    assert.equal(parsed.subject, subject.digest);
  });

  test('Docker schema 2 manifest', () => {
    const body = {
      schemaVersion: 2,
      mediaType: mediaTypes.dockerManifest,
      config: descriptor('application/vnd.docker.container.image.v1+json', 'config'),
      layers: [descriptor('application/vnd.docker.image.rootfs.diff.tar.gzip', 'layer')],
    };
    assert.deepEqual(parseManifest(json(body), mediaTypes.dockerManifest), {
      mediaType: mediaTypes.dockerManifest,
      artifactType: 'application/vnd.docker.container.image.v1+json',
      subject: undefined,
      annotations: undefined,
      blobs: [digest('config'), digest('layer')],
      manifests: [],
    });
  });

  test('Docker manifest list', () => {
    const body = {
      schemaVersion: 2,
      mediaType: mediaTypes.dockerList,
      manifests: [descriptor(mediaTypes.dockerManifest, 'amd64', { platform: { architecture: 'amd64', os: 'linux' } })],
    };
    const parsed = parseManifest(json(body), mediaTypes.dockerList);
    assert.equal(parsed.mediaType, mediaTypes.dockerList);
    assert.deepEqual(parsed.manifests, [digest('amd64')]);
    assert.deepEqual(parsed.blobs, []);
  });

  test('non-distributable and foreign layers are not blobs the repository must hold', () => {
    const body = ociManifest({
      layers: [
        descriptor('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'windows-base', { urls: ['https://example.com/base'] }),
        descriptor(ociLayer, 'app'),
        descriptor('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'foreign'),
      ],
    });
    assert.deepEqual(parseManifest(json(body), mediaTypes.ociManifest).blobs, [digest('config'), digest('app')]);
  });

  test('the media type comes from Content-Type when the body has none, parameters and case ignored', () => {
    const { mediaType: _omitted, ...body } = ociManifest();
    assert.equal(parseManifest(json(body), 'Application/VND.oci.image.manifest.v1+json; charset=utf-8').mediaType, mediaTypes.ociManifest);
  });

  test("the body's media type is used without a Content-Type", () => {
    assert.equal(parseManifest(json(ociIndex()), undefined).mediaType, mediaTypes.ociIndex);
    assert.equal(parseManifest(json(ociIndex()), '').mediaType, mediaTypes.ociIndex);
  });

  test('with neither, an OCI index or manifest is recognised by its fields', () => {
    const { mediaType: _m, ...manifest } = ociManifest();
    const { mediaType: _i, ...index } = ociIndex();
    assert.equal(parseManifest(json(manifest), undefined).mediaType, mediaTypes.ociManifest);
    assert.equal(parseManifest(json(index), undefined).mediaType, mediaTypes.ociIndex);
  });

  test('unknown fields are allowed', () => {
    const body = ociManifest({ 'x-vendor': { anything: [1, 2] }, config: descriptor(ociConfig, 'config', { data: 'e30=' }) });
    assert.equal(parseManifest(json(body), mediaTypes.ociManifest).blobs.length, 3);
  });
});

describe('parseManifest: refused manifests are ManifestInvalid naming the problem', () => {
  test('Content-Type differing from the body mediaType', () => {
    invalid(json(ociManifest()), mediaTypes.ociIndex, /mediaType application\/vnd\.oci\.image\.manifest\.v1\+json differs from its Content-Type application\/vnd\.oci\.image\.index\.v1\+json/);
    invalid(json(ociManifest()), 'application/json', /differs from its Content-Type application\/json/);
  });

  test('not JSON, or not a JSON object', () => {
    invalid(Buffer.from('{"schemaVersion": 2,'), mediaTypes.ociManifest, /not JSON/);
    invalid(Buffer.from([0xff, 0xfe, 0x00]), mediaTypes.ociManifest, /not JSON/);
    invalid(Buffer.from(''), mediaTypes.ociManifest, /not JSON/);
    invalid(Buffer.from('[]'), mediaTypes.ociManifest, /not a JSON object/);
    invalid(Buffer.from('null'), mediaTypes.ociManifest, /not a JSON object/);
    invalid(Buffer.from('"manifest"'), mediaTypes.ociManifest, /not a JSON object/);
  });

  test('a mediaType that is not a string', () => {
    invalid(json(ociManifest({ mediaType: 2 })), undefined, /mediaType must be a string/);
  });

  test('a missing config', () => {
    const { config: _config, ...body } = ociManifest();
    invalid(json(body), mediaTypes.ociManifest, /config/);
  });

  test('missing layers, or an index without manifests', () => {
    const { layers: _layers, ...manifest } = ociManifest();
    invalid(json(manifest), mediaTypes.ociManifest, /layers/);
    const { manifests: _manifests, ...index } = ociIndex();
    invalid(json(index), mediaTypes.ociIndex, /manifests/);
  });

  test('a bad digest names the descriptor', () => {
    invalid(json(ociManifest({ layers: [descriptor(ociLayer, 'ok'), { mediaType: ociLayer, digest: 'sha256:abc', size: 1 }] })), mediaTypes.ociManifest, /layers\.1\.digest/);
    invalid(json(ociManifest({ config: { mediaType: ociConfig, digest: `md5:${'a'.repeat(32)}`, size: 1 } })), mediaTypes.ociManifest, /config\.digest/);
    invalid(json(ociIndex({ manifests: [{ mediaType: mediaTypes.ociManifest, digest: digest('x').toUpperCase(), size: 1 }] })), mediaTypes.ociIndex, /manifests\.0\.digest/);
    invalid(json(ociManifest({ subject: { mediaType: mediaTypes.ociManifest, digest: 'nope', size: 1 } })), mediaTypes.ociManifest, /subject\.digest/);
  });

  test('a bad size or a missing descriptor media type names the field', () => {
    invalid(json(ociManifest({ layers: [descriptor(ociLayer, 'x', { size: -1 })] })), mediaTypes.ociManifest, /layers\.0\.size/);
    invalid(json(ociManifest({ layers: [descriptor(ociLayer, 'x', { size: 1.5 })] })), mediaTypes.ociManifest, /layers\.0\.size/);
    invalid(json(ociManifest({ config: { digest: digest('c'), size: 1 } })), mediaTypes.ociManifest, /config\.mediaType/);
  });

  test('schemaVersion other than 2', () => {
    invalid(json(ociManifest({ schemaVersion: 1 })), mediaTypes.ociManifest, /schemaVersion/);
    const { schemaVersion: _v, ...body } = ociManifest();
    invalid(json(body), mediaTypes.ociManifest, /schemaVersion/);
  });

  test('an unsupported media type, listing the supported ones', () => {
    const schema1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
    invalid(json({ schemaVersion: 1, mediaType: schema1 }), schema1, /unsupported manifest media type "application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws" \(supported: .*application\/vnd\.oci\.image\.manifest\.v1\+json/);
    const { mediaType: _m, ...body } = ociManifest();
    invalid(json(body), 'application/octet-stream', /unsupported manifest media type "application\/octet-stream"/);
  });
});
