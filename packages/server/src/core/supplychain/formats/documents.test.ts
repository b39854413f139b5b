import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import { FormatError } from '../types.ts';
import { parseDocument, supplyChainMediaTypes as types } from './index.ts';
import { verifySignedMessage } from './verify.ts';
import { fixture, imageDigest, signedBlob } from './testdata/fixtures.ts';

const blobDigest = `sha256:${createHash('sha256').update(signedBlob).digest('hex')}`;
const cosignKey = createPublicKey(fixture('cosign.pub'));
const spdx = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'doc', packages: [{ name: 'zlib', versionInfo: '1.3', externalRefs: [{ referenceType: 'purl', referenceLocator: 'pkg:generic/zlib@1.3' }] }] }));
const cyclonedx = Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', components: [{ type: 'library', name: 'zlib', version: '1.3' }] }));
const blobSignatureFile = Buffer.from(`${(JSON.parse(fixture('sign-blob.cosign-bundle.json').toString()) as { base64Signature: string }).base64Signature}\n`);

/** Each sample: its bytes, its subject, and what it must parse to. */
const samples = [
  { name: 'Sigstore bundle v0.3 (sign-blob)', body: fixture('sign-blob.sigstore.json'), subject: blobDigest, kind: 'signature', format: 'sigstore-bundle', mediaType: types.sigstoreBundleV03 },
  { name: 'old cosign bundle (sign-blob)', body: fixture('sign-blob.cosign-bundle.json'), subject: blobDigest, kind: 'signature', format: 'sigstore-bundle', mediaType: types.cosignBundle },
  { name: 'old cosign bundle (attest-blob)', body: fixture('attest-blob.cosign-bundle.json'), subject: blobDigest, kind: 'attestation', format: 'sigstore-bundle', mediaType: types.cosignBundle },
  { name: 'Sigstore bundle v0.3 (attest-blob)', body: fixture('attest-blob.sigstore.json'), subject: blobDigest, kind: 'attestation', format: 'sigstore-bundle', mediaType: types.sigstoreBundleV03 },
  { name: 'DSSE envelope', body: fixture('attest-image.dsse.json'), subject: imageDigest, kind: 'attestation', format: 'dsse', mediaType: types.dsseEnvelope },
  { name: 'notation JWS', body: fixture('notation.jws'), subject: imageDigest, kind: 'signature', format: 'notation', mediaType: types.jose },
  { name: 'notation COSE', body: fixture('notation.cose'), subject: imageDigest, kind: 'signature', format: 'notation', mediaType: types.cose },
  { name: 'SPDX', body: spdx, subject: blobDigest, kind: 'sbom', format: 'spdx', mediaType: types.spdxJson },
  { name: 'CycloneDX', body: cyclonedx, subject: blobDigest, kind: 'sbom', format: 'cyclonedx', mediaType: types.cyclonedxJson },
  { name: 'cosign blob signature', body: blobSignatureFile, subject: blobDigest, kind: 'signature', format: 'cosign', mediaType: types.cosignBlobSignature },
] as const;

test('each document is recognised by its shape when no (or a generic) media type is given', () => {
  for (const sample of samples) {
    for (const mediaType of [undefined, 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8']) {
      const document = parseDocument(sample.body, { subjectDigest: sample.subject, ...(mediaType !== undefined && { mediaType }) });
      assert.deepEqual([document.kind, document.format, document.mediaType], [sample.kind, sample.format, sample.mediaType], `${sample.name} as ${mediaType}`);
    }
  }
});

test('the returned media type parses the same bytes back to the same document (how stored records are re-read)', () => {
  for (const sample of samples) {
    const sniffed = parseDocument(sample.body, { subjectDigest: sample.subject });
    assert.deepEqual(parseDocument(sample.body, { subjectDigest: sample.subject, mediaType: sniffed.mediaType }), sniffed, sample.name);
  }
});

test('the documents verify: blob signature and bundles with cosign.pub', () => {
  for (const sample of samples.filter((s) => s.name.includes('sign-blob') || s.name === 'cosign blob signature')) {
    const document = parseDocument(sample.body, { subjectDigest: sample.subject });
    assert.equal(document.kind === 'signature' && document.signature.subjectDigest, blobDigest);
    assert.equal(document.kind === 'signature' && verifySignedMessage(document.signature.message, cosignKey), true, sample.name);
  }
});

test('a specific media type decides, even against the shape', () => {
  assert.equal(parseDocument(spdx, { subjectDigest: blobDigest, mediaType: 'text/spdx+json' }).mediaType, types.spdxJson);
  assert.equal(parseDocument(spdx, { subjectDigest: blobDigest, mediaType: 'Application/SPDX+JSON; charset=utf-8' }).kind, 'sbom');
  assert.throws(() => parseDocument(cyclonedx, { subjectDigest: blobDigest, mediaType: types.spdxJson }), /SPDX document has no spdxVersion/);
  assert.throws(() => parseDocument(spdx, { subjectDigest: blobDigest, mediaType: types.jose }), /notation JWS envelope is malformed/);
  assert.throws(() => parseDocument(fixture('sign-blob.sigstore.json'), { subjectDigest: blobDigest, mediaType: types.cosignBundle }), /cosign bundle has a base64Signature/);
  assert.equal(parseDocument(fixture('sign-blob.sigstore.json'), { subjectDigest: blobDigest, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2' }).kind, 'signature');
});

test('unsupported and unrecognisable documents are refused with a reason', () => {
  const refuses = (body: Buffer, mediaType: string | undefined, pattern: RegExp) =>
    assert.throws(() => parseDocument(body, { subjectDigest: blobDigest, ...(mediaType !== undefined && { mediaType }) }), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses(Buffer.alloc(0), undefined, /document is empty/);
  refuses(Buffer.from('SPDXVersion: SPDX-2.3'), 'text/spdx', /SPDX tag-value is not supported/);
  refuses(Buffer.from('<bom/>'), 'application/vnd.cyclonedx+xml', /only CycloneDX JSON is supported/);
  refuses(fixture('sign-image.simplesigning.json'), types.cosignSimpleSigning, /simple-signing payload is signed in its registry manifest/);
  refuses(Buffer.from('{}'), 'application/x-whatever', /application\/x-whatever is not a supported supply-chain document type/);
  refuses(Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', predicateType: 'x', subject: [] })), undefined, /bare in-toto statement/);
  refuses(Buffer.from('{"hello":1}'), undefined, /not a Sigstore or cosign bundle, DSSE envelope/);
  refuses(Buffer.from('[1,2]'), undefined, /not a recognised supply-chain document/);
  refuses(Buffer.from('{"broken'), undefined, /document is not JSON/);
  refuses(Buffer.from([0x89, 0x50, 0x4e, 0x47]), undefined, /not a recognised supply-chain document/);
});
