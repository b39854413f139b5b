import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type KeyObject, sign, X509Certificate } from 'node:crypto';
import { FormatError } from '../types.ts';
import { decodeCbor, encodeCborArray } from './cbor.ts';
import { parseNotationCose, parseNotationJws, parseNotationSignature } from './notation.ts';
import { verifyCertificateChain, verifySignedMessage } from './verify.ts';
import { fixture, fixtureJson, imageDigest, testPki } from './testdata/fixtures.ts';

const target = { targetArtifact: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: imageDigest, size: 423 } };
const baseHeader = {
  alg: 'ES256',
  crit: ['io.cncf.notary.signingScheme'],
  cty: 'application/vnd.cncf.notary.payload.v1+json',
  'io.cncf.notary.signingScheme': 'notary.x509',
  'io.cncf.notary.signingTime': '2026-01-02T03:04:05Z',
};
const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A JWS envelope as notation writes it, signed with `key` (ES256: raw r||s, as JWS requires). */
function jws(header: Record<string, unknown>, payload: unknown, key: KeyObject, x5c: X509Certificate[]) {
  const protectedPart = b64url(header);
  const payloadPart = b64url(payload);
  const signature = sign('sha256', Buffer.from(`${protectedPart}.${payloadPart}`), { key, dsaEncoding: 'ieee-p1363' });
  return { payload: payloadPart, protected: protectedPart, header: { x5c: x5c.map((c) => c.raw.toString('base64')), 'io.cncf.notary.signingAgent': 'test' }, signature: signature.toString('base64url') };
}

test('the notation JWS envelope captured from the registry verifies with its certificate (PS256)', () => {
  const signature = parseNotationSignature(fixture('notation.jws'), 'application/jose+json');
  assert.equal(signature.format, 'notation');
  assert.equal(signature.subjectDigest, imageDigest);
  assert.equal(signature.signingScheme, 'notary.x509');
  assert.equal(signature.signingAgent, 'notation-go/1.3.2');
  assert.deepEqual(signature.signedAt, new Date('2026-11-23T23:42:47Z'));
  assert.equal(signature.message.algorithm, 'PS256');
  const leaf = new X509Certificate(signature.message.certificates![0]!);
  assert.equal(verifySignedMessage(signature.message, leaf.publicKey), true);
  assert.equal(verifyCertificateChain(signature.message.certificates!, [leaf], signature.signedAt!).ok, true, 'the test certificate is its own trust anchor');
});

test('the notation COSE envelope captured from the registry verifies over its Sig_structure', () => {
  const signature = parseNotationSignature(fixture('notation.cose'), 'application/cose');
  assert.equal(signature.subjectDigest, imageDigest);
  assert.deepEqual(signature.signedAt, new Date('2026-11-23T23:42:47Z'));
  assert.equal(signature.message.algorithm, 'PS256');
  const leaf = new X509Certificate(signature.message.certificates![0]!);
  assert.equal(verifySignedMessage(signature.message, leaf.publicKey), true);
});

test('a changed payload does not verify, in either envelope', () => {
  const envelope = fixtureJson('notation.jws') as { payload: string };
  const payload = JSON.parse(Buffer.from(envelope.payload, 'base64url').toString()) as typeof target;
  payload.targetArtifact.digest = `sha256:${'0'.repeat(64)}`;
  const tampered = parseNotationJws({ ...envelope, payload: b64url(payload) });
  assert.equal(tampered.subjectDigest, `sha256:${'0'.repeat(64)}`);
  assert.equal(verifySignedMessage(tampered.message, new X509Certificate(tampered.message.certificates![0]!).publicKey), false);

  const cose = Buffer.from(fixture('notation.cose'));
  const at = cose.indexOf('4bf66745');
  cose[at] = '5'.charCodeAt(0);
  const tamperedCose = parseNotationCose(cose);
  assert.equal(verifySignedMessage(tamperedCose.message, new X509Certificate(tamperedCose.message.certificates![0]!).publicKey), false);
});

test('an ES256 JWS signed by a leaf under a CA verifies, and its chain leads to the root', () => {
  const pki = testPki();
  const signature = parseNotationJws(jws(baseHeader, target, pki.leafKey, [pki.leaf, pki.intermediate]));
  assert.equal(signature.message.certificates!.length, 2);
  assert.equal(verifySignedMessage(signature.message, pki.leaf.publicKey), true);
  assert.equal(verifySignedMessage(signature.message, pki.rogueLeaf.publicKey), false);
  const at = new Date(new Date(pki.leaf.validFrom).getTime() + 1000);
  assert.equal(verifyCertificateChain(signature.message.certificates!, [pki.root], at).ok, true);
});

test('io.cncf.notary.expiry becomes expiresAt; the signingAuthority scheme uses authenticSigningTime', () => {
  const pki = testPki();
  const withExpiry = { ...baseHeader, crit: [...baseHeader.crit, 'io.cncf.notary.expiry'], 'io.cncf.notary.expiry': '2027-01-01T00:00:00Z' };
  assert.deepEqual(parseNotationJws(jws(withExpiry, target, pki.leafKey, [pki.leaf])).expiresAt, new Date('2027-01-01T00:00:00Z'));
  const { 'io.cncf.notary.signingTime': _, ...rest } = baseHeader;
  const authority = { ...rest, 'io.cncf.notary.signingScheme': 'notary.x509.signingAuthority', crit: [...baseHeader.crit, 'io.cncf.notary.authenticSigningTime'], 'io.cncf.notary.authenticSigningTime': '2026-05-05T00:00:00Z' };
  const signature = parseNotationJws(jws(authority, target, pki.leafKey, [pki.leaf]));
  assert.equal(signature.signingScheme, 'notary.x509.signingAuthority');
  assert.deepEqual(signature.signedAt, new Date('2026-05-05T00:00:00Z'));
});

test('malformed or unsupported JWS envelopes are refused, naming what is wrong', () => {
  const pki = testPki();
  const refuses = (header: Record<string, unknown>, pattern: RegExp, payload: unknown = target, x5c = [pki.leaf]) =>
    assert.throws(() => parseNotationJws(jws(header, payload, pki.leafKey, x5c)), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses({ ...baseHeader, alg: 'RS256' }, /algorithm "RS256" is not one of PS256/);
  refuses({ ...baseHeader, alg: 'none' }, /algorithm "none"/);
  refuses({ ...baseHeader, cty: 'application/json' }, /content type is "application\/json"/);
  refuses({ ...baseHeader, crit: [] }, /crit must list io.cncf.notary.signingScheme/);
  refuses({ ...baseHeader, crit: [...baseHeader.crit, 'x-custom'], 'x-custom': 1 }, /marks "x-custom" critical, which astore does not understand/);
  refuses({ ...baseHeader, crit: [...baseHeader.crit, 'io.cncf.notary.expiry'] }, /marks io.cncf.notary.expiry critical but does not set it/);
  refuses({ ...baseHeader, crit: [...baseHeader.crit, 'io.cncf.notary.verificationPlugin'], 'io.cncf.notary.verificationPlugin': 'com.example.hsm' }, /requires the verification plugin "com.example.hsm"/);
  refuses({ ...baseHeader, 'io.cncf.notary.signingScheme': 'notary.default' }, /signing scheme "notary.default"/);
  refuses({ ...baseHeader, 'io.cncf.notary.signingTime': 'yesterday' }, /signingTime is not an RFC 3339 time/);
  refuses({ ...baseHeader, 'io.cncf.notary.signingTime': undefined }, /has no io.cncf.notary.signingTime/);
  refuses(baseHeader, /notation payload is malformed at targetArtifact/, { subject: imageDigest });
  refuses(baseHeader, /targetArtifact digest must be a digest/, { targetArtifact: { ...target.targetArtifact, digest: 'sha256:xyz' } });
  refuses(baseHeader, /x5c must hold the signing certificate chain/, target, []);

  const good = jws(baseHeader, target, pki.leafKey, [pki.leaf]);
  const refusesEnvelope = (value: unknown, pattern: RegExp) => assert.throws(() => parseNotationJws(value), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refusesEnvelope({ ...good, header: { x5c: ['AAAA'] } }, /certificate 0 of the notation signature chain is not a valid X.509 certificate/);
  refusesEnvelope({ ...good, protected: 'e30=' }, /protected header is not valid base64url/);
  refusesEnvelope({ ...good, signature: '' }, /notation signature is empty/);
  refusesEnvelope({ payload: good.payload, signatures: [{ protected: good.protected, signature: good.signature }] }, /flattened JSON serialization/);
  assert.throws(() => parseNotationJws(Buffer.from('{nope')), /notation JWS envelope is not JSON/);
});

test('COSE envelopes: tag 18 required shape, attached payload, x5chain', () => {
  const [protectedBytes, , payload, signature] = (decodeCbor(fixture('notation.cose'), 'fixture') as unknown as { value: [Buffer, Map<number, unknown>, Buffer, Buffer] }).value;
  const build = (items: Buffer) => Buffer.concat([Buffer.from([0xd2]), items]);
  const arrayOf = (parts: Buffer[]) => Buffer.concat([Buffer.from([0x84]), ...parts]);
  const bstr = (b: Buffer) => encodeCborArray([b]).subarray(1);
  const emptyMap = Buffer.from([0xa0]);
  assert.throws(() => parseNotationCose(build(arrayOf([bstr(protectedBytes), emptyMap, bstr(payload), bstr(signature)]))), /no x5chain/);
  assert.throws(() => parseNotationCose(build(arrayOf([bstr(protectedBytes), emptyMap, Buffer.from([0xf6]), bstr(signature)]))), /detached payload/);
  assert.throws(() => parseNotationCose(Buffer.from([0xd2, 0x83, 0x40, 0xa0, 0x40])), /not a COSE_Sign1 structure/);
  assert.throws(() => parseNotationCose(Buffer.from([0xd2, 0x84])), /declares a CBOR array longer than the envelope/);
  assert.throws(() => parseNotationCose(Buffer.from([0xd2, 0x58])), /ends inside a CBOR item/);
  assert.throws(() => parseNotationCose(Buffer.from([0xd2, 0x9f])), /indefinite-length/);
  assert.throws(() => parseNotationSignature(fixture('notation.cose'), 'application/json'), /is application\/jose\+json or application\/cose/);
});
