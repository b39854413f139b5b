import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { FormatError } from '../types.ts';
import { blobSignature, cosignAnnotations, cosignSignatureFromLayer, parseSimpleSigningPayload } from './cosign.ts';
import { verifySignedMessage } from './verify.ts';
import { fixture, fixtureJson, imageDigest, signedBlob, testPki } from './testdata/fixtures.ts';

const cosignKey = createPublicKey(fixture('cosign.pub'));
const layers = (name: string) => (fixtureJson(name) as { layers: { annotations: Record<string, string> }[] }).layers;

test('a cosign image signature layer (captured from the registry) verifies over the payload bytes', () => {
  const payload = fixture('sign-image.simplesigning.json');
  const signature = cosignSignatureFromLayer(payload, layers('sign-image.sig-manifest.json')[0]!.annotations);
  assert.equal(signature.format, 'cosign');
  assert.equal(signature.subjectDigest, imageDigest);
  assert.deepEqual(signature.message.signed, { kind: 'message', message: payload });
  assert.equal(signature.message.certificates, undefined);
  assert.equal(verifySignedMessage(signature.message, cosignKey), true);
});

test('the annotated signature of the referrer manifest verifies and keeps its optional claims', () => {
  const payload = fixture('sign-image-annotated.simplesigning.json');
  assert.deepEqual(parseSimpleSigningPayload(payload), { dockerReference: '127.0.0.1:5077/app', manifestDigest: imageDigest, optional: { team: 'x' } });
  const signature = cosignSignatureFromLayer(payload, layers('sign-image.referrer-manifest.json')[1]!.annotations);
  assert.equal(verifySignedMessage(signature.message, cosignKey), true);
});

test('a changed payload byte or another key does not verify', () => {
  const payload = Buffer.from(fixture('sign-image.simplesigning.json'));
  const annotations = layers('sign-image.sig-manifest.json')[0]!.annotations;
  payload[payload.indexOf('127.0.0.1')] = '2'.charCodeAt(0);
  assert.equal(verifySignedMessage(cosignSignatureFromLayer(payload, annotations).message, cosignKey), false);
  const original = cosignSignatureFromLayer(fixture('sign-image.simplesigning.json'), annotations);
  assert.equal(verifySignedMessage(original.message, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), false);
});

test('certificate annotations (keyless signing) become the chain, leaf first', () => {
  const pki = testPki();
  const annotations = { [cosignAnnotations.signature]: 'AAAA', [cosignAnnotations.certificate]: pki.leaf.toString(), [cosignAnnotations.chain]: pki.intermediate.toString() + pki.root.toString() };
  const signature = cosignSignatureFromLayer(fixture('sign-image.simplesigning.json'), annotations);
  assert.deepEqual(signature.message.certificates, [pki.leaf.raw, pki.intermediate.raw, pki.root.raw]);
});

test('malformed layers are refused, naming what is wrong', () => {
  const payload = fixture('sign-image.simplesigning.json');
  const good = { [cosignAnnotations.signature]: 'AAAA' };
  const refuses = (p: Buffer, a: Record<string, string>, pattern: RegExp) => assert.throws(() => cosignSignatureFromLayer(p, a), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses(payload, {}, /no dev.cosignproject.cosign\/signature annotation/);
  refuses(payload, { [cosignAnnotations.signature]: '' }, /no dev.cosignproject.cosign\/signature annotation/);
  refuses(payload, { [cosignAnnotations.signature]: 'not base64!' }, /annotation is not valid base64/);
  refuses(Buffer.from('nope'), good, /simple-signing payload is not JSON/);
  const json = JSON.parse(payload.toString()) as { critical: { type: string; image: Record<string, string> } };
  refuses(Buffer.from(JSON.stringify({ ...json, critical: { ...json.critical, type: 'atomic container signature' } })), good, /has type "atomic container signature"/);
  refuses(Buffer.from(JSON.stringify({ ...json, critical: { ...json.critical, image: { 'docker-manifest-digest': 'sha256:abc' } } })), good, /docker-manifest-digest must be a digest/);
  refuses(Buffer.from(JSON.stringify({ critical: { type: 'cosign container image signature' } })), good, /payload is malformed at critical\.identity/);
  refuses(payload, { ...good, [cosignAnnotations.certificate]: 'not a pem' }, /certificate annotation holds no PEM CERTIFICATE/);
});

test('a sign-blob --output-signature file (base64, with or without newline, or raw DER) covers the blob digest', () => {
  const digest = `sha256:${createHash('sha256').update(signedBlob).digest('hex')}`;
  // cosign's base64Signature in the old bundle is the same text --output-signature writes.
  const captured = (fixtureJson('sign-blob.cosign-bundle.json') as { base64Signature: string }).base64Signature;
  for (const file of [Buffer.from(captured), Buffer.from(`${captured}\n`), Buffer.from(captured, 'base64')]) {
    const signature = blobSignature(file, digest);
    assert.equal(signature.format, 'cosign');
    assert.equal(signature.subjectDigest, digest);
    assert.equal(verifySignedMessage(signature.message, cosignKey), true);
  }
  assert.equal(verifySignedMessage(blobSignature(Buffer.from(captured), `sha256:${'1'.repeat(64)}`).message, cosignKey), false);
});

test('an RSA blob signature (PKCS#1 v1.5 over SHA-256, as cosign makes with an imported RSA key) verifies', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const file = Buffer.from(sign('sha256', signedBlob, rsa.privateKey).toString('base64'));
  const digest = `sha256:${createHash('sha256').update(signedBlob).digest('hex')}`;
  assert.equal(verifySignedMessage(blobSignature(file, digest).message, rsa.publicKey), true);
});

test('a blob signature needs a signature and a valid subject digest', () => {
  assert.throws(() => blobSignature(Buffer.from('  \n'), `sha256:${'1'.repeat(64)}`), /signature is empty|not valid/);
  assert.throws(() => blobSignature(Buffer.from('AAAA'), 'md5:abc'), /subject digest must be a digest/);
});
