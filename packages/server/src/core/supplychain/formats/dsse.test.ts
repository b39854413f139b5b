import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { FormatError } from '../types.ts';
import { attestationFacts, inTotoPayloadType, paeEncode, parseDsseAttestation, parseDsseEnvelope } from './dsse.ts';
import { verifySignedMessage } from './verify.ts';
import { fixture, fixtureJson, imageDigest } from './testdata/fixtures.ts';

const subjectHex = 'a'.repeat(64);
const provenanceV1 = {
  buildDefinition: {
    buildType: 'https://actions.github.io/buildtypes/workflow/v1',
    externalParameters: {},
    resolvedDependencies: [{ uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: 'c0ffee' } }],
  },
  runDetails: { builder: { id: 'https://github.com/actions/runner/github-hosted' } },
};
const statement = (overrides: Record<string, unknown> = {}) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'app.tar', digest: { sha256: subjectHex } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: provenanceV1,
  ...overrides,
});
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
function envelope(body: unknown, payloadType = inTotoPayloadType, signed = true) {
  const payload = Buffer.from(JSON.stringify(body));
  const signatures = signed ? [{ keyid: 'k1', sig: sign('sha256', paeEncode(payloadType, payload), privateKey).toString('base64') }] : [];
  return { payloadType, payload: payload.toString('base64'), signatures };
}

test('PAE is "DSSEv1 <len> <type> <len> <body>" with byte lengths', () => {
  assert.equal(paeEncode('application/vnd.in-toto+json', Buffer.from('{}')).toString(), 'DSSEv1 28 application/vnd.in-toto+json 2 {}');
  assert.equal(paeEncode('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é');
});

test('a signed SLSA v1 envelope parses to subjects, facts and a signature that verifies over PAE', () => {
  const attestation = parseDsseAttestation(envelope(statement()));
  assert.equal(attestation.format, 'dsse');
  assert.equal(attestation.statementType, 'https://in-toto.io/Statement/v1');
  assert.deepEqual(attestation.subjectDigests, [`sha256:${subjectHex}`]);
  assert.deepEqual(attestation.facts, {
    predicateType: 'https://slsa.dev/provenance/v1',
    builderId: 'https://github.com/actions/runner/github-hosted',
    buildType: 'https://actions.github.io/buildtypes/workflow/v1',
    materials: [{ uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: 'c0ffee' } }],
  });
  assert.equal(attestation.signatures.length, 1);
  assert.equal(attestation.signatures[0]!.keyHint, 'k1');
  assert.equal(verifySignedMessage(attestation.signatures[0]!, publicKey), true);
  assert.deepEqual(attestation.predicate, provenanceV1);
});

test('a changed payload byte no longer verifies; another key does not verify', () => {
  const signed = envelope(statement());
  const payload = Buffer.from(signed.payload, 'base64');
  payload[payload.indexOf('aaaa')] = 'b'.charCodeAt(0);
  const tampered = parseDsseAttestation({ ...signed, payload: payload.toString('base64') });
  assert.deepEqual(tampered.subjectDigests, [`sha256:b${'a'.repeat(63)}`]);
  assert.equal(verifySignedMessage(tampered.signatures[0]!, publicKey), false);
  assert.equal(verifySignedMessage(parseDsseAttestation(signed).signatures[0]!, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey), false);
});

test('the cosign attest layer captured from the registry verifies with cosign.pub', () => {
  const attestation = parseDsseAttestation(fixtureJson('attest-image.dsse.json'));
  assert.equal(attestation.statementType, 'https://in-toto.io/Statement/v0.1');
  assert.deepEqual(attestation.subjectDigests, [imageDigest]);
  assert.equal(attestation.facts.builderId, 'https://github.com/actions/runner');
  assert.equal(attestation.facts.buildType, 'https://example.com/bt');
  assert.equal(attestation.signatures[0]!.keyHint, undefined, 'cosign writes keyid ""');
  assert.equal(verifySignedMessage(attestation.signatures[0]!, createPublicKey(fixture('cosign.pub'))), true);
});

test('SLSA v0.2 facts come from builder.id, buildType and materials', () => {
  const facts = attestationFacts('https://slsa.dev/provenance/v0.2', {
    builder: { id: 'https://cloudbuild.googleapis.com/GoogleHostedWorker' },
    buildType: 'https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1',
    materials: [{ uri: 'git+https://github.com/acme/app', digest: { sha1: 'abc' } }, {}],
  });
  assert.deepEqual(facts, {
    predicateType: 'https://slsa.dev/provenance/v0.2',
    builderId: 'https://cloudbuild.googleapis.com/GoogleHostedWorker',
    buildType: 'https://cloudbuild.googleapis.com/CloudBuildYaml@v0.1',
    materials: [{ uri: 'git+https://github.com/acme/app', digest: { sha1: 'abc' } }, {}],
  });
});

test('other predicate types keep only their type; a SLSA predicate without its builder is refused', () => {
  for (const predicateType of ['https://in-toto.io/attestation/test-result/v0.1', 'https://cosign.sigstore.dev/attestation/vuln/v1', 'https://spdx.dev/Document', 'https://cyclonedx.org/bom']) {
    assert.deepEqual(attestationFacts(predicateType, { anything: 1 }), { predicateType, materials: [] });
  }
  assert.throws(() => attestationFacts('https://slsa.dev/provenance/v1', { buildDefinition: { buildType: 'x' }, runDetails: {} }), /SLSA provenance v1 predicate is malformed at runDetails\.builder/);
  assert.throws(() => attestationFacts('https://slsa.dev/provenance/v0.2', { buildType: 'x' }), /SLSA provenance v0.2 predicate is malformed at builder/);
});

test('an unsigned envelope parses with no signatures (missing or empty list)', () => {
  assert.deepEqual(parseDsseAttestation(envelope(statement(), inTotoPayloadType, false)).signatures, []);
  const { signatures: _, ...withoutList } = envelope(statement());
  assert.deepEqual(parseDsseAttestation(withoutList).signatures, []);
});

test('malformed envelopes and statements are refused, naming what is wrong', () => {
  const refuses = (value: unknown, pattern: RegExp) => assert.throws(() => parseDsseAttestation(value), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses(envelope(statement(), 'application/json'), /payload type is "application\/json"; only application\/vnd.in-toto\+json/);
  refuses({ ...envelope(statement()), payload: 'not base64!' }, /DSSE envelope payload is not valid base64/);
  refuses({ ...envelope(statement()), signatures: [{ sig: '***' }] }, /signature 0 is not valid base64/);
  refuses({ ...envelope(statement()), signatures: [{ sig: '' }] }, /signature 0 is empty/);
  refuses({ payload: 'e30=' }, /DSSE envelope is malformed at payloadType/);
  refuses({ ...envelope(statement()), payload: Buffer.from('not json').toString('base64') }, /in-toto statement is not JSON/);
  refuses(envelope(statement({ subject: [] })), /at least one subject/);
  refuses(envelope(statement({ predicateType: undefined })), /in-toto statement is malformed at predicateType/);
  refuses(envelope(statement({ _type: 'https://in-toto.io/Statement/v2' })), /statement type "https:\/\/in-toto.io\/Statement\/v2" is not supported/);
  refuses(envelope(statement({ subject: [{ digest: { sha256: 'abc' } }] })), /subject\[0\]\.digest\.sha256 is not a sha256 hex digest/);
  refuses(envelope(statement({ subject: [{ digest: { gitCommit: 'abc' } }] })), /names no subject by a sha256/);
});

test('statements without a predicate (cosign sign/v1) and subjects with several digests are read', () => {
  const attestation = parseDsseAttestation(envelope(statement({ predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: undefined, subject: [{ digest: { sha256: subjectHex.toUpperCase(), sha512: 'b'.repeat(128) } }] })));
  assert.deepEqual(attestation.subjectDigests, [`sha256:${subjectHex}`, `sha512:${'b'.repeat(128)}`]);
  assert.equal(attestation.predicate, undefined);
});

test('parseDsseEnvelope accepts URL-safe base64 and keeps keyids', () => {
  const parsed = parseDsseEnvelope({ payloadType: 't', payload: Buffer.from([0xfb, 0xff]).toString('base64url'), signatures: [{ keyid: 'x', sig: 'AQ' }] });
  assert.deepEqual(parsed.payload, Buffer.from([0xfb, 0xff]));
  assert.deepEqual(parsed.signatures, [{ keyid: 'x', sig: Buffer.from([1]) }]);
});
