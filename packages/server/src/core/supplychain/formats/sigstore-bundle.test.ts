import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, sign } from 'node:crypto';
import { FormatError } from '../types.ts';
import { normalizeHint, parseSigstoreBundle, sigstoreBundleMediaTypes } from './sigstore-bundle.ts';
import { keyIdOf, verifyCertificateChain, verifySignedMessage } from './verify.ts';
import { fixture, fixtureJson, imageDigest, signedBlob, testPki } from './testdata/fixtures.ts';

const cosignKey = createPublicKey(fixture('cosign.pub'));
const blobDigest = `sha256:${createHash('sha256').update(signedBlob).digest('hex')}`;

test('cosign sign-blob --new-bundle-format (tlog off): a v0.3 message signature over the blob digest, with the key hint', () => {
  const bundle = parseSigstoreBundle(fixtureJson('sign-blob.sigstore.json'));
  assert.equal(bundle.kind, 'signature');
  if (bundle.kind !== 'signature') return;
  assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
  assert.equal(bundle.signature.format, 'sigstore-bundle');
  assert.equal(bundle.signature.subjectDigest, blobDigest);
  assert.equal(bundle.signature.message.keyHint, keyIdOf(cosignKey));
  assert.equal(bundle.signature.message.signed.kind, 'digest');
  assert.equal(verifySignedMessage(bundle.signature.message, cosignKey), true);
});

test('cosign sign-blob --bundle (old format): base64Signature over the caller-given subject', () => {
  const bundle = parseSigstoreBundle(fixtureJson('sign-blob.cosign-bundle.json'), blobDigest);
  assert.equal(bundle.kind, 'signature');
  if (bundle.kind !== 'signature') return;
  assert.equal(bundle.mediaType, 'application/vnd.astore.cosign.bundle.v1+json');
  assert.equal(bundle.signature.subjectDigest, blobDigest);
  assert.equal(verifySignedMessage(bundle.signature.message, cosignKey), true);
  const other = parseSigstoreBundle(fixtureJson('sign-blob.cosign-bundle.json'), `sha256:${'0'.repeat(64)}`);
  assert.equal(other.kind === 'signature' && verifySignedMessage(other.signature.message, cosignKey), false, 'another blob');
  assert.throws(() => parseSigstoreBundle(fixtureJson('sign-blob.cosign-bundle.json')), /subject digest is needed/);
});

test('cosign attest-blob --bundle, old and new format: a DSSE attestation that verifies', () => {
  for (const name of ['attest-blob.sigstore.json', 'attest-blob.cosign-bundle.json']) {
    const bundle = parseSigstoreBundle(fixtureJson(name));
    assert.equal(bundle.kind, 'attestation', name);
    if (bundle.kind !== 'attestation') return;
    assert.equal(bundle.attestation.format, 'sigstore-bundle');
    assert.deepEqual(bundle.attestation.subjectDigests, [blobDigest]);
    assert.equal(bundle.attestation.facts.predicateType, 'https://slsa.dev/provenance/v1');
    assert.equal(bundle.attestation.facts.builderId, 'https://github.com/actions/runner');
    assert.equal(verifySignedMessage(bundle.attestation.signatures[0]!, cosignKey), true, name);
  }
});

test('cosign sign --new-bundle-format: the cosign/sign/v1 DSSE statement is an image signature', () => {
  const bundle = parseSigstoreBundle(fixtureJson('sign-image.sigstore.json'));
  assert.equal(bundle.kind, 'signature');
  if (bundle.kind !== 'signature') return;
  assert.equal(bundle.signature.subjectDigest, imageDigest);
  assert.equal(bundle.signature.message.signed.kind, 'message');
  assert.equal(verifySignedMessage(bundle.signature.message, cosignKey), true);
});

test('a tampered bundle does not verify: changed digest, changed DSSE payload', () => {
  const json = fixtureJson('sign-blob.sigstore.json') as { messageSignature: { messageDigest: { digest: string } } };
  const digest = Buffer.from(json.messageSignature.messageDigest.digest, 'base64');
  digest[0]! ^= 1;
  json.messageSignature.messageDigest.digest = digest.toString('base64');
  const bundle = parseSigstoreBundle(json);
  assert.equal(bundle.kind === 'signature' && verifySignedMessage(bundle.signature.message, cosignKey), false);

  const att = fixtureJson('attest-blob.sigstore.json') as { dsseEnvelope: { payload: string } };
  const statement = JSON.parse(Buffer.from(att.dsseEnvelope.payload, 'base64').toString()) as { predicate: { runDetails: { builder: { id: string } } } };
  statement.predicate.runDetails.builder.id = 'https://evil.example';
  att.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
  const tampered = parseSigstoreBundle(att);
  assert.equal(tampered.kind === 'attestation' && verifySignedMessage(tampered.attestation.signatures[0]!, cosignKey), false);
});

test('v0.1 (x509CertificateChain) and v0.3 (certificate) bundles carry the chain, which verifies to the root', () => {
  const pki = testPki();
  const digest = createHash('sha256').update(signedBlob).digest();
  const signature = sign('sha256', signedBlob, pki.leafKey).toString('base64');
  const messageSignature = { messageDigest: { algorithm: 'SHA2_256', digest: digest.toString('base64') }, signature };
  const v01 = { mediaType: sigstoreBundleMediaTypes.v01, verificationMaterial: { x509CertificateChain: { certificates: [{ rawBytes: pki.leaf.raw.toString('base64') }, { rawBytes: pki.intermediate.raw.toString('base64') }] } }, messageSignature };
  const v03 = { mediaType: sigstoreBundleMediaTypes.v03, verificationMaterial: { certificate: { rawBytes: pki.leaf.raw.toString('base64') } }, messageSignature };
  const at = new Date(new Date(pki.leaf.validFrom).getTime() + 1000);
  for (const [bundle, chainLength] of [[v01, 2], [v03, 1]] as const) {
    const parsed = parseSigstoreBundle(bundle);
    assert.equal(parsed.kind, 'signature');
    if (parsed.kind !== 'signature') return;
    assert.equal(parsed.signature.message.certificates?.length, chainLength);
    assert.equal(verifySignedMessage(parsed.signature.message, pki.leaf.publicKey), true);
    assert.equal(verifyCertificateChain(parsed.signature.message.certificates!, [chainLength === 2 ? pki.root : pki.intermediate], at).ok, true);
  }
});

test('a message signature without messageDigest covers the caller subject; SHA2_384 digests are named sha384', () => {
  const noDigest = { mediaType: sigstoreBundleMediaTypes.v02, verificationMaterial: { publicKey: { hint: 'my-key' } }, messageSignature: { signature: 'AAAA' } };
  const parsed = parseSigstoreBundle(noDigest, blobDigest);
  assert.equal(parsed.kind === 'signature' && parsed.signature.subjectDigest, blobDigest);
  assert.equal(parsed.kind === 'signature' && parsed.signature.message.keyHint, 'my-key');
  const sha384 = { ...noDigest, messageSignature: { messageDigest: { algorithm: 'SHA2_384', digest: Buffer.alloc(48, 1).toString('base64') }, signature: 'AAAA' } };
  const parsed384 = parseSigstoreBundle(sha384);
  assert.equal(parsed384.kind === 'signature' && parsed384.signature.subjectDigest, `sha384:${'01'.repeat(48)}`);
});

test('the old bundle cert (base64 of PEM, as cosign writes it) becomes the certificate chain', () => {
  const pki = testPki();
  const legacy = { base64Signature: 'AAAA', cert: Buffer.from(pki.leaf.toString()).toString('base64') };
  const parsed = parseSigstoreBundle(legacy, blobDigest);
  assert.deepEqual(parsed.kind === 'signature' && parsed.signature.message.certificates, [pki.leaf.raw]);
});

test('malformed bundles are refused, naming what is wrong', () => {
  const base = fixtureJson('sign-blob.sigstore.json');
  const refuses = (value: unknown, pattern: RegExp) => assert.throws(() => parseSigstoreBundle(value, blobDigest), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses({ ...base, mediaType: 'application/vnd.dev.sigstore.bundle.v9+json' }, /not a known bundle version/);
  refuses({ ...base, messageSignature: { ...(base.messageSignature as object), signature: 'no/t~base64' } }, /bundle signature is not valid base64/);
  refuses({ ...base, messageSignature: { ...(base.messageSignature as object), signature: '' } }, /bundle signature is empty/);
  refuses({ ...base, messageSignature: { messageDigest: { algorithm: 'MD5', digest: 'AAAA' }, signature: 'AAAA' } }, /algorithm "MD5" is not supported/);
  refuses({ ...base, messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: 'AAAA' }, signature: 'AAAA' } }, /sha256 message digest has 3 bytes/);
  refuses({ ...base, dsseEnvelope: fixtureJson('attest-blob.sigstore.json').dsseEnvelope }, /exactly one of messageSignature and dsseEnvelope/);
  refuses({ ...base, verificationMaterial: {} }, /no verification material/);
  refuses({ base64Signature: '%%%' }, /base64Signature is not valid base64/);
  const unsigned = fixtureJson('sign-image.sigstore.json') as { dsseEnvelope: { signatures?: unknown } };
  delete unsigned.dsseEnvelope.signatures;
  refuses(unsigned, /envelope is unsigned/);
});

test('the cosign key hint is rendered as hex (= keyIdOf); other hints are kept', () => {
  assert.equal(normalizeHint('VKLh0Y/hy5Optrm8zyox9NgtMijM02dj9NJzXZ+wjk0='), keyIdOf(cosignKey));
  assert.equal(normalizeHint('my-kms-key'), 'my-kms-key');
});
