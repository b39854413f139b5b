import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { FormatError } from '../types.ts';
import { documentsInManifest, type ManifestLike } from './index.ts';
import { verifySignedMessage } from './verify.ts';
import { fixture, fixtureJson, imageDigest } from './testdata/fixtures.ts';

const cosignKey = createPublicKey(fixture('cosign.pub'));
const legacyTag = `${imageDigest.replace(':', '-')}`;
const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const emptyConfig = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };
const subject = { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: imageDigest, size: 423 };

/** A blob store holding the captured layers (and extra blobs); it records what was read. */
function blobs(...extra: Buffer[]) {
  const byDigest = new Map<string, Buffer>();
  for (const name of ['sign-image.simplesigning.json', 'sign-image-annotated.simplesigning.json', 'attest-image.dsse.json', 'notation.jws', 'notation.cose', 'sign-image.sigstore.json', 'attest-blob.sigstore.json']) {
    byDigest.set(digestOf(fixture(name)), fixture(name));
  }
  for (const blob of extra) byDigest.set(digestOf(blob), blob);
  const read: string[] = [];
  return {
    read,
    readBlob: async (digest: string) => {
      read.push(digest);
      const blob = byDigest.get(digest);
      if (!blob) throw new Error(`no blob ${digest}`);
      return blob;
    },
  };
}
const layer = (mediaType: string, content: Buffer, annotations?: Record<string, string>) => ({ mediaType, digest: digestOf(content), size: content.length, ...(annotations && { annotations }) });

test('cosign sign: the sha256-<hex>.sig manifest holds one signature about the digest in the tag', async () => {
  const manifest = fixtureJson('sign-image.sig-manifest.json') as ManifestLike;
  const { readBlob } = blobs();
  const found = await documentsInManifest(manifest, { tag: `${legacyTag}.sig` }, readBlob);
  assert.equal(found.length, 1);
  assert.equal(found[0]!.layerIndex, 0);
  assert.equal(found[0]!.subject, imageDigest);
  const { document } = found[0]!;
  assert.deepEqual([document.kind, document.format, document.mediaType], ['signature', 'cosign', 'application/vnd.dev.cosign.simplesigning.v1+json']);
  assert.equal(document.kind === 'signature' && verifySignedMessage(document.signature.message, cosignKey), true);
  assert.deepEqual(await documentsInManifest(manifest, {}, readBlob), [], 'without its tag the manifest is attached to nothing');
});

test('cosign sign --registry-referrers-mode=oci-1-1: the referrer manifest holds one signature per layer', async () => {
  const manifest = fixtureJson('sign-image.referrer-manifest.json') as ManifestLike;
  assert.equal(manifest.artifactType, 'application/vnd.dev.cosign.artifact.sig.v1+json');
  const found = await documentsInManifest(manifest, {}, blobs().readBlob);
  assert.deepEqual(found.map((f) => [f.layerIndex, f.subject, f.document.kind]), [[0, imageDigest, 'signature'], [1, imageDigest, 'signature']]);
  for (const { document } of found) assert.equal(document.kind === 'signature' && verifySignedMessage(document.signature.message, cosignKey), true);
});

test('a stored cosign layer re-read with only its layer and tag (as records.ts does) is the same signature', async () => {
  const payload = fixture('sign-image.simplesigning.json');
  const { annotations } = (fixtureJson('sign-image.sig-manifest.json') as { layers: { annotations: Record<string, string> }[] }).layers[0]!;
  const found = await documentsInManifest({ layers: [layer('application/vnd.dev.cosign.simplesigning.v1+json', payload, annotations)] }, { tag: `${legacyTag}.sig` }, async () => payload);
  assert.equal(found[0]!.document.kind === 'signature' && found[0]!.document.signature.subjectDigest, imageDigest);
});

test('cosign attest: the .att manifest holds DSSE attestations', async () => {
  const envelope = fixture('attest-image.dsse.json');
  const manifest: ManifestLike = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:2a3ad91d0b91842f32fa2bcb55836ffb71d40449c8bc813a897ae3b955d266cf', size: 233 },
    layers: [layer('application/vnd.dsse.envelope.v1+json', envelope, { 'dev.cosignproject.cosign/signature': '', predicateType: 'https://slsa.dev/provenance/v1' })],
  };
  const found = await documentsInManifest(manifest, { tag: `${legacyTag}.att` }, blobs().readBlob);
  assert.equal(found.length, 1);
  const { document } = found[0]!;
  assert.equal(document.kind, 'attestation');
  if (document.kind !== 'attestation') return;
  assert.equal(document.format, 'dsse');
  assert.deepEqual(document.attestation.subjectDigests, [imageDigest]);
  assert.equal(verifySignedMessage(document.attestation.signatures[0]!, cosignKey), true);
});

test('notation: a referrer whose config media type is the notary signature, JWS or COSE layer', async () => {
  for (const [mediaType, name] of [['application/jose+json', 'notation.jws'], ['application/cose', 'notation.cose']] as const) {
    const manifest: ManifestLike = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.notary.signature', digest: emptyConfig.digest, size: 2 },
      layers: [layer(mediaType, fixture(name))],
      subject,
      annotations: { 'io.cncf.notary.x509chain.thumbprint#S256': '["c910375b5144bebb6037173473e93cef42e5429a4d4103e0c7a6452d34bd14e1"]' },
    };
    const found = await documentsInManifest(manifest, {}, blobs().readBlob);
    assert.equal(found.length, 1, name);
    const { document } = found[0]!;
    assert.deepEqual([document.kind, document.format, document.mediaType], ['signature', 'notation', mediaType]);
    if (document.kind !== 'signature') return;
    assert.equal(document.signature.subjectDigest, imageDigest);
    assert.equal(verifySignedMessage(document.signature.message, new X509Certificate(document.signature.message.certificates![0]!).publicKey), true);
  }
});

test('cosign --new-bundle-format: Sigstore bundle referrers (sign → signature, attest → attestation)', async () => {
  for (const [name, kind] of [['sign-image.sigstore.json', 'signature'], ['attest-blob.sigstore.json', 'attestation']] as const) {
    const manifest: ManifestLike = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: emptyConfig,
      layers: [layer('application/vnd.dev.sigstore.bundle.v0.3+json', fixture(name))],
      subject,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope' },
    };
    const found = await documentsInManifest(manifest, {}, blobs().readBlob);
    assert.deepEqual(found.map((f) => [f.subject, f.document.kind, f.document.format, f.document.mediaType]), [[imageDigest, kind, 'sigstore-bundle', 'application/vnd.dev.sigstore.bundle.v0.3+json']]);
  }
});

test('oras attach: the SBOM is a layer typed as the artifact, or an untyped tar-typed file', async () => {
  const spdx = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', SPDXID: 'SPDXRef-DOCUMENT', name: 'app', packages: [{ name: 'zlib' }] }));
  const bom = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ type: 'library', name: 'zlib' }] }));
  const { readBlob } = blobs(spdx, bom);
  const orasSpdx: ManifestLike = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/spdx+json',
    config: emptyConfig,
    layers: [layer('application/vnd.oci.image.layer.v1.tar', spdx, { 'org.opencontainers.image.title': 'sbom.spdx.json' })],
    subject,
  };
  const orasCycloneDx: ManifestLike = { ...orasSpdx, artifactType: 'application/vnd.cyclonedx+json', layers: [layer('application/vnd.cyclonedx+json', bom, { 'org.opencontainers.image.title': 'bom.json' })] };
  for (const [manifest, format, mediaType] of [[orasSpdx, 'spdx', 'application/spdx+json'], [orasCycloneDx, 'cyclonedx', 'application/vnd.cyclonedx+json']] as const) {
    const found = await documentsInManifest(manifest, {}, readBlob);
    assert.deepEqual(found.map((f) => [f.layerIndex, f.subject, f.document.kind, f.document.format, f.document.mediaType]), [[0, imageDigest, 'sbom', format, mediaType]]);
    assert.equal(found[0]!.document.kind === 'sbom' && found[0]!.document.sbom.components[0]!.name, 'zlib');
  }
  assert.deepEqual(await documentsInManifest({ ...orasSpdx, subject: undefined }, {}, readBlob), [], 'an SBOM pushed on its own is attached to nothing');
});

test('cosign attach sbom: the .sbom tag with a text/spdx+json or CycloneDX layer; tag-value layers are skipped', async () => {
  const spdx = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.2', packages: [] }));
  const tagValue = Buffer.from('SPDXVersion: SPDX-2.3\n');
  const { readBlob } = blobs(spdx, tagValue);
  const manifest: ManifestLike = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:935b3b748716ba2d5c1e7446c99f87faf87534fb7eada86b9d9f43945bcc52f8', size: 233 },
    layers: [layer('text/spdx', tagValue), layer('text/spdx+json', spdx)],
  };
  const found = await documentsInManifest(manifest, { tag: `${legacyTag}.sbom` }, readBlob);
  assert.deepEqual(found.map((f) => [f.layerIndex, f.document.kind, f.document.format]), [[1, 'sbom', 'spdx']]);
});

test('ordinary images are not documents, and their layers are never read', async () => {
  const { readBlob, read } = blobs();
  const image: ManifestLike = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'1'.repeat(64)}`, size: 10 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'2'.repeat(64)}`, size: 100 }],
  };
  assert.deepEqual(await documentsInManifest(image, { tag: 'latest' }, readBlob), []);
  assert.deepEqual(await documentsInManifest({ ...image, subject }, {}, readBlob), [], 'a referrer of another kind');
  assert.deepEqual(await documentsInManifest({ mediaType: 'application/vnd.oci.image.index.v1+json' }, {}, readBlob), []);
  assert.deepEqual(read, []);
});

test('a manifest that claims to carry a document but holds a malformed one is refused', async () => {
  const garbage = Buffer.from('not json');
  const { readBlob } = blobs(garbage);
  const refuses = (manifest: ManifestLike, tag: string | undefined, pattern: RegExp) =>
    assert.rejects(documentsInManifest(manifest, tag === undefined ? {} : { tag }, readBlob), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  await refuses({ layers: [layer('application/vnd.dev.cosign.simplesigning.v1+json', garbage, { 'dev.cosignproject.cosign/signature': 'AAAA' })] }, `${legacyTag}.sig`, /simple-signing payload is not JSON/);
  await refuses({ layers: [layer('application/vnd.dsse.envelope.v1+json', garbage)] }, `${legacyTag}.att`, /DSSE envelope \(layer 0\) is not JSON/);
  await refuses({ config: { mediaType: 'application/vnd.cncf.notary.signature', digest: emptyConfig.digest, size: 2 }, layers: [layer('application/jose+json', garbage)], subject }, undefined, /notation JWS envelope is not JSON/);
  await refuses({ artifactType: 'application/spdx+json', layers: [layer('application/vnd.oci.image.layer.v1.tar', garbage)], subject }, undefined, /SPDX SBOM \(layer 0\) is not JSON/);
  await refuses({ artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json', layers: [layer('application/vnd.dev.sigstore.bundle.v0.3+json', garbage)], subject }, undefined, /Sigstore bundle \(layer 0\) is not JSON/);
  await refuses({ artifactType: 'application/spdx+json', layers: [layer('application/spdx+json', garbage)], subject: { digest: 'sha256:nope' } }, undefined, /manifest subject digest must be a digest/);
});
