import assert from 'node:assert/strict';
import { createHash, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { dsseEnvelope, dssePae, legacySignatureTag, signatureImage, simpleSigningPayload } from './cosign-image.ts';
import { FormatError } from './types.ts';

/*
 * Captured from cosign v2.6.5 against the CNCF registry v3.1.2: an image pushed with crane as
 * 127.0.0.1:15099/app/img, `cosign sign --key cosign.key --tlog-upload=false` (one signature), then
 * the same with a second key (two). Bytes as the registry served them.
 */
const imageDigest = 'sha256:2e5aa6c0f5c2b1226a229db552d6a1e5ea666d05c6a79c8a517502047b90e3d3';
const cosignPayload =
  '{"critical":{"identity":{"docker-reference":"127.0.0.1:15099/app/img"},"image":{"docker-manifest-digest":"sha256:2e5aa6c0f5c2b1226a229db552d6a1e5ea666d05c6a79c8a517502047b90e3d3"},"type":"cosign container image signature"},"optional":null}';
const firstSignature = 'MEYCIQDdlP51KkDljvb8+ollZMu2KSF7KjAuzZWk0Ous4Q7yFgIhAIkLo+HxaTlx5VH7IIk3GYkh9gE7t9iqtleBzAqg8pBO';
const secondSignature = 'MEUCIGNYAQGXM4jmDoFk2I+3oWKgD7qw5lc71KPA30+9+NSkAiEAoUWSS5NTqKgNd712sR3X4qTX326H4Oob/7SD9gJDJmc=';
const payloadDigest = 'sha256:c5df52ddd903392d3fc051bff94e37c7fc1e07dcd688f8a435518701c005707c';
const layerJson = (signature: string) =>
  `{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":239,"digest":"${payloadDigest}","annotations":{"dev.cosignproject.cosign/signature":"${signature}"}}`;
const cosignConfig1 = `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${payloadDigest}"]},"config":{}}`;
const cosignManifest1 = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:8241f74c3f6418dabe5908e378b5cd4b47a09b292b40f57f33e68b8bd2228b49"},"layers":[${layerJson(firstSignature)}]}`;
const cosignConfig2 = `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${payloadDigest}","${payloadDigest}"]},"config":{}}`;
const cosignManifest2 = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":342,"digest":"sha256:d9c46e854c97960de3bdab8551dfa0e61ac7f7d447930c312d2116d6b5f053de"},"layers":[${layerJson(firstSignature)},${layerJson(secondSignature)}]}`;

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('simple signing payload and tag', () => {
  test('the payload is byte for byte what cosign signs', () => {
    assert.equal(simpleSigningPayload('127.0.0.1:15099/app/img', imageDigest).toString(), cosignPayload);
    assert.equal(sha256(simpleSigningPayload('127.0.0.1:15099/app/img', imageDigest)), payloadDigest);
  });

  test('a reference with a tag or digest, or a malformed digest, is refused', () => {
    for (const reference of ['127.0.0.1:15099/app/img:v1', 'registry.example/app@sha256:abc', 'app:v1', 'registry.example/', '', 'registry.example/a b']) {
      assert.throws(() => simpleSigningPayload(reference, imageDigest), FormatError, reference);
    }
    for (const digest of ['sha256:ABC', 'sha256-2e5a', imageDigest.slice(0, -1), `md5:${'0'.repeat(32)}`]) {
      assert.throws(() => simpleSigningPayload('registry.example/app', digest), /not a manifest digest/, digest);
      assert.throws(() => legacySignatureTag(digest), /not a manifest digest/, digest);
    }
  });

  test('the legacy tag is <algorithm>-<hex>.sig', () => {
    assert.equal(legacySignatureTag(imageDigest), 'sha256-2e5aa6c0f5c2b1226a229db552d6a1e5ea666d05c6a79c8a517502047b90e3d3.sig');
  });
});

describe('signatureImage', () => {
  const payload = Buffer.from(cosignPayload);

  test('a first signature gives the manifest and config cosign writes, byte for byte', () => {
    const image = signatureImage(undefined, { payload, signatureBase64: firstSignature });
    assert.equal(image.manifest.toString(), cosignManifest1);
    assert.equal(image.config.toString(), cosignConfig1);
    assert.equal(image.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(image.appended, true);
    assert.deepEqual(image.blobs, [
      { digest: sha256(cosignConfig1), content: Buffer.from(cosignConfig1) },
      { digest: payloadDigest, content: payload },
    ]);
  });

  test('a second signature is appended as cosign appends it, with or without the existing config', () => {
    const existing = { manifest: Buffer.from(cosignManifest1) };
    for (const readBlob of [undefined, (digest: string) => (digest === sha256(cosignConfig1) ? Buffer.from(cosignConfig1) : undefined)]) {
      const image = signatureImage(existing, { payload, signatureBase64: secondSignature }, readBlob);
      assert.equal(image.manifest.toString(), cosignManifest2);
      assert.equal(image.config.toString(), cosignConfig2);
      assert.equal(image.appended, true);
    }
  });

  test('an identical layer is not added twice: the existing manifest comes back unchanged, nothing to push', () => {
    const existing = { manifest: Buffer.from(cosignManifest2) };
    const image = signatureImage(existing, { payload, signatureBase64: secondSignature });
    assert.equal(image.manifest, existing.manifest);
    assert.equal(image.config.toString(), cosignConfig2);
    assert.deepEqual(image.blobs, []);
    assert.equal(image.appended, false);
  });

  test('fields of an existing manifest and config that cosign did not write are kept', () => {
    const foreignConfig = JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [payloadDigest] }, author: 'another tool' });
    const foreign = JSON.parse(cosignManifest1);
    foreign.config.digest = sha256(foreignConfig);
    foreign.config.size = foreignConfig.length;
    foreign.annotations = { 'org.example/kept': 'yes' };
    const image = signatureImage({ manifest: Buffer.from(JSON.stringify(foreign)) }, { payload, signatureBase64: secondSignature, annotations: { 'dev.sigstore.cosign/bundle': '{}' } }, () =>
      Buffer.from(foreignConfig),
    );
    const manifest = JSON.parse(image.manifest.toString());
    assert.deepEqual(manifest.annotations, { 'org.example/kept': 'yes' });
    assert.equal(manifest.layers.length, 2);
    assert.deepEqual(Object.keys(manifest.layers[1].annotations), ['dev.cosignproject.cosign/signature', 'dev.sigstore.cosign/bundle'], 'sorted like a Go map');
    const config = JSON.parse(image.config.toString());
    assert.equal(config.author, 'another tool');
    assert.deepEqual(config.rootfs.diff_ids, [payloadDigest, payloadDigest]);
    assert.equal(manifest.config.digest, sha256(image.config));
    assert.equal(manifest.config.size, image.config.length);
  });

  test('something other than an image manifest under the tag is refused', () => {
    for (const bad of ['not json', '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}', '{"schemaVersion":2,"config":{},"layers":[]}']) {
      assert.throws(() => signatureImage({ manifest: Buffer.from(bad) }, { payload, signatureBase64: firstSignature }), FormatError, bad);
    }
  });
});

describe('DSSE', () => {
  // `cosign attest-blob --key cosign.key --type https://example.com/t --predicate {"a":1} b.txt` (v2.6.5), and its key.
  const cosignEnvelope =
    '{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjAuMSIsInByZWRpY2F0ZVR5cGUiOiJodHRwczovL2V4YW1wbGUuY29tL3QiLCJzdWJqZWN0IjpbeyJuYW1lIjoiYi50eHQiLCJkaWdlc3QiOnsic2hhMjU2IjoiYmMxMDNiNGE4NDk3MWVmNjQ1OWIyOTRhMmI5ODU2OGEyYmZiNzJjZGVkMDlkNGFjZDFlMTYzNjZhNDAxZjk1YiJ9fV0sInByZWRpY2F0ZSI6eyJhIjoxfX0=","signatures":[{"keyid":"","sig":"MEUCIHNIxWNFxfLBlL94JAIUJNQBaZPoc+63ZVZ8ZubFVbPjAiEA5YOjhd+R6U5Hcjnkum/NxPYnqsUHt9gjvskAR71Dnys="}]}';
  const cosignPub = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECSKxCwhm3qhdlLYzE5LdK7jOFjZQ\ng7rqYu+iaoX3aQb0uhdrtcD9x9pJat/uC/o8fpCm3UYAw7+XZsS3+iWdAg==\n-----END PUBLIC KEY-----\n';
  const parsed = JSON.parse(cosignEnvelope) as { payloadType: string; payload: string; signatures: { sig: string }[] };
  const statement = Buffer.from(parsed.payload, 'base64');
  const signature = Buffer.from(parsed.signatures[0]!.sig, 'base64');

  test('PAE is what cosign signed: its signature verifies over dssePae', () => {
    assert.ok(verify('sha256', dssePae(parsed.payloadType, statement), cosignPub, signature));
    assert.ok(!verify('sha256', dssePae('application/json', statement), cosignPub, signature));
  });

  test('PAE counts bytes, not characters', () => {
    assert.equal(dssePae('t/é', Buffer.from('ü')).toString(), 'DSSEv1 4 t/é 2 ü');
    assert.equal(dssePae('', Buffer.alloc(0)).toString(), 'DSSEv1 0  0 ');
  });

  test('the envelope is byte for byte what cosign writes, keyid "" included', () => {
    assert.equal(dsseEnvelope(parsed.payloadType, statement, [{ sig: signature }]).toString(), cosignEnvelope);
    const withKeyId = JSON.parse(dsseEnvelope('x', Buffer.from('y'), [{ keyid: 'abc', sig: Buffer.from([1]) }]).toString());
    assert.deepEqual(withKeyId.signatures, [{ keyid: 'abc', sig: 'AQ==' }]);
  });
});
