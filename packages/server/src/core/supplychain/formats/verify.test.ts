import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPublicKey, generateKeyPairSync, type KeyObject, privateEncrypt, sign } from 'node:crypto';
import type { SignedMessage } from '../types.ts';
import { keyIdOf, verifyCertificateChain, verifySignedMessage } from './verify.ts';
import { testPki } from './testdata/fixtures.ts';

const message = Buffer.from('{"critical":{"type":"cosign container image signature"}}');
const digestOf = (algorithm: 'sha256' | 'sha384' | 'sha512', bytes: Buffer) => createHash(algorithm).update(bytes).digest();
const asMessage = (signature: Buffer, algorithm?: string): SignedMessage => ({ signed: { kind: 'message', message }, signature, ...(algorithm !== undefined && { algorithm }) });
const asDigest = (signature: Buffer, algorithm: 'sha256' | 'sha384' | 'sha512' = 'sha256', alg?: string): SignedMessage => ({
  signed: { kind: 'digest', algorithm, digest: digestOf(algorithm, message) },
  signature,
  ...(alg !== undefined && { algorithm: alg }),
});
const tampered = (bytes: Buffer) => {
  const copy = Buffer.from(bytes);
  copy[copy.length - 1]! ^= 1;
  return copy;
};

const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed25519 = generateKeyPairSync('ed25519');

test('ECDSA P-256: DER and raw r||s signatures verify over the message and over its SHA-256 digest', () => {
  const der = sign('sha256', message, { key: p256.privateKey, dsaEncoding: 'der' });
  const raw = sign('sha256', message, { key: p256.privateKey, dsaEncoding: 'ieee-p1363' });
  assert.equal(raw.length, 64);
  for (const signature of [der, raw]) {
    assert.equal(verifySignedMessage(asMessage(signature), p256.publicKey), true);
    assert.equal(verifySignedMessage(asMessage(signature, 'ES256'), p256.publicKey), true);
    assert.equal(verifySignedMessage(asDigest(signature), p256.publicKey), true);
  }
});

test('ECDSA P-256: a tampered message, a tampered signature or another key fails', () => {
  const der = sign('sha256', message, { key: p256.privateKey, dsaEncoding: 'der' });
  assert.equal(verifySignedMessage({ signed: { kind: 'message', message: tampered(message) }, signature: der }, p256.publicKey), false);
  assert.equal(verifySignedMessage({ signed: { kind: 'digest', algorithm: 'sha256', digest: tampered(digestOf('sha256', message)) }, signature: der }, p256.publicKey), false);
  assert.equal(verifySignedMessage(asMessage(tampered(der)), p256.publicKey), false);
  assert.equal(verifySignedMessage(asDigest(tampered(der)), p256.publicKey), false);
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.equal(verifySignedMessage(asMessage(der), other.publicKey), false);
  assert.equal(verifySignedMessage(asDigest(der), other.publicKey), false);
});

test('ECDSA: a high-S signature (as Go and OpenSSL make half the time) verifies over a digest', () => {
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const raw = sign('sha256', message, { key: p256.privateKey, dsaEncoding: 'ieee-p1363' });
  const s = BigInt('0x' + raw.subarray(32).toString('hex'));
  const flipped = Buffer.concat([raw.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]);
  assert.equal(verifySignedMessage(asDigest(raw), p256.publicKey), true);
  assert.equal(verifySignedMessage(asDigest(flipped), p256.publicKey), true);
});

test('ECDSA P-384: SHA-384 by default, and a digest must match the JWS alg', () => {
  const der = sign('sha384', message, { key: p384.privateKey, dsaEncoding: 'der' });
  assert.equal(verifySignedMessage(asMessage(der), p384.publicKey), true);
  assert.equal(verifySignedMessage(asDigest(der, 'sha384'), p384.publicKey), true);
  assert.equal(verifySignedMessage(asDigest(der, 'sha384', 'ES384'), p384.publicKey), true);
  assert.equal(verifySignedMessage(asDigest(der, 'sha384', 'ES256'), p384.publicKey), false);
  const raw = sign('sha384', message, { key: p384.privateKey, dsaEncoding: 'ieee-p1363' });
  assert.equal(verifySignedMessage(asMessage(raw, 'ES384'), p384.publicKey), true);
  const sha256Signed = sign('sha256', message, { key: p384.privateKey, dsaEncoding: 'der' });
  assert.equal(verifySignedMessage(asMessage(sha256Signed), p384.publicKey), false, 'P-384 defaults to SHA-384');
  assert.equal(verifySignedMessage(asMessage(sha256Signed, 'ES256'), p384.publicKey), true, 'the alg decides the hash');
});

test('RSA PKCS#1 v1.5: message and digests (SHA-256/384/512), as node and privateEncrypt sign them', () => {
  const sig256 = sign('sha256', message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING });
  assert.equal(verifySignedMessage(asMessage(sig256), rsa.publicKey), true);
  assert.equal(verifySignedMessage(asMessage(sig256, 'RS256'), rsa.publicKey), true);
  assert.equal(verifySignedMessage(asDigest(sig256), rsa.publicKey), true);
  for (const hash of ['sha384', 'sha512'] as const) {
    const sig = sign(hash, message, rsa.privateKey);
    assert.equal(verifySignedMessage(asDigest(sig, hash), rsa.publicKey), true, hash);
    assert.equal(verifySignedMessage(asMessage(sig, hash === 'sha384' ? 'RS384' : 'RS512'), rsa.publicKey), true, hash);
    assert.equal(verifySignedMessage(asDigest(sig, 'sha256'), rsa.publicKey), false, `${hash} signature is not a sha256 one`);
  }
  assert.equal(verifySignedMessage(asDigest(tampered(sig256)), rsa.publicKey), false);
  assert.equal(verifySignedMessage(asMessage(tampered(sig256)), rsa.publicKey), false);
  // DigestInfo with a wrong algorithm identifier (sha512's prefix over a sha256 digest) is refused.
  const wrongInfo = privateEncrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from('3051300d060960864801650304020305000440', 'hex'), digestOf('sha256', message)]));
  assert.equal(verifySignedMessage(asDigest(wrongInfo), rsa.publicKey), false);
});

test('RSA-PSS (JWS PS256/PS384/PS512): salt = hash length, over the message or its digest', () => {
  for (const [alg, hash] of [['PS256', 'sha256'], ['PS384', 'sha384'], ['PS512', 'sha512']] as const) {
    const sig = sign(hash, message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
    assert.equal(verifySignedMessage(asMessage(sig, alg), rsa.publicKey), true, alg);
    assert.equal(verifySignedMessage(asDigest(sig, hash, alg), rsa.publicKey), true, `${alg} digest`);
    assert.equal(verifySignedMessage(asMessage(tampered(sig), alg), rsa.publicKey), false);
    assert.equal(verifySignedMessage(asDigest(tampered(sig), hash, alg), rsa.publicKey), false);
    assert.equal(verifySignedMessage(asMessage(sig), rsa.publicKey), false, 'a PSS signature is not PKCS#1 v1.5');
  }
  const shortSalt = sign('sha256', message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
  assert.equal(verifySignedMessage(asMessage(shortSalt, 'PS256'), rsa.publicKey), false);
  assert.equal(verifySignedMessage(asDigest(shortSalt, 'sha256', 'PS256'), rsa.publicKey), false);
});

test('Ed25519 verifies the message only; a digest, or an alg for another key type, is false', () => {
  const sig = sign(null, message, ed25519.privateKey);
  assert.equal(verifySignedMessage(asMessage(sig), ed25519.publicKey), true);
  assert.equal(verifySignedMessage(asMessage(sig, 'EdDSA'), ed25519.publicKey), true);
  assert.equal(verifySignedMessage(asMessage(tampered(sig)), ed25519.publicKey), false);
  assert.equal(verifySignedMessage(asDigest(sig), ed25519.publicKey), false);
  assert.equal(verifySignedMessage(asMessage(sig, 'ES256'), ed25519.publicKey), false);
});

test('malformed input is false, never an exception', () => {
  const garbage = [Buffer.alloc(0), Buffer.from([0x30, 0x02, 0x01]), Buffer.alloc(64, 0xff), Buffer.alloc(256, 0xff), Buffer.alloc(3000, 1)];
  const keys: KeyObject[] = [p256.publicKey, p384.publicKey, rsa.publicKey, ed25519.publicKey];
  for (const key of keys) {
    for (const signature of garbage) {
      for (const alg of [undefined, 'ES256', 'PS256', 'RS512', 'EdDSA', 'none', 'HS256']) {
        assert.equal(verifySignedMessage(asMessage(signature, alg), key), false);
        assert.equal(verifySignedMessage(asDigest(signature, 'sha256', alg), key), false);
      }
    }
  }
  const good = sign('sha256', message, p256.privateKey);
  assert.equal(verifySignedMessage({ signed: { kind: 'digest', algorithm: 'sha256', digest: Buffer.alloc(31) }, signature: good }, p256.publicKey), false, 'digest of the wrong length');
  assert.equal(verifySignedMessage(asMessage(good, 'HS256'), p256.publicKey), false, 'an alg astore does not know');
  assert.equal(verifySignedMessage(asMessage(good), generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey), false, 'P-521 is not a supported key');
  assert.equal(verifySignedMessage(asMessage(good), p256.privateKey), true, 'a private key verifies as its public half');
});

test('keyIdOf is the hex SHA-256 of the SPKI DER, the same for a private key and its public key', () => {
  const spki = p256.publicKey.export({ type: 'spki', format: 'der' });
  assert.equal(keyIdOf(p256.publicKey), createHash('sha256').update(spki).digest('hex'));
  assert.equal(keyIdOf(p256.privateKey), keyIdOf(createPublicKey(p256.privateKey)));
  assert.match(keyIdOf(rsa.publicKey), /^[0-9a-f]{64}$/);
});

test('a certificate chain verifies leaf → intermediate → trusted root, with the root in the chain or not', () => {
  const pki = testPki();
  const at = new Date(new Date(pki.leaf.validFrom).getTime() + 86_400_000);
  const withoutRoot = verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw], [pki.root], at);
  assert.equal(withoutRoot.ok, true);
  assert.equal(withoutRoot.ok && withoutRoot.leaf.subject, 'CN=signer@example.com');
  assert.equal(verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw, pki.root.raw], [pki.root], at).ok, true);
  assert.equal(verifyCertificateChain([pki.leaf.raw], [pki.intermediate], at).ok, true, 'a trusted intermediate is a root');
  assert.equal(verifyCertificateChain([pki.leaf.raw], [pki.leaf], at).ok, true, 'a trusted self-contained leaf is its own root');
});

test('a certificate chain fails with a reason: untrusted, missing link, not a CA, outside validity, garbage', () => {
  const pki = testPki();
  const at = new Date(new Date(pki.leaf.validFrom).getTime() + 86_400_000);
  const reason = (r: ReturnType<typeof verifyCertificateChain>) => (r.ok ? 'ok' : r.reason);
  const otherRoot = pki.notCa; // a certificate that is not in, and did not issue, the chain
  assert.match(reason(verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw], [otherRoot], at)), /does not lead to a trusted root/);
  assert.match(reason(verifyCertificateChain([pki.leaf.raw], [pki.root], at)), /does not lead to a trusted root/);
  assert.match(reason(verifyCertificateChain([pki.leaf.raw, pki.root.raw], [pki.root], at)), /certificate 0 .* is not issued and signed by certificate 1/);
  assert.match(reason(verifyCertificateChain([pki.rogueLeaf.raw, pki.notCa.raw, pki.intermediate.raw], [pki.root], at)), /certificate 1 \(CN=not a ca\) issues certificate 0 but is not a CA/);
  assert.match(reason(verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw], [pki.root], new Date(new Date(pki.leaf.validFrom).getTime() - 86_400_000))), /certificate 0 .* is not valid before/);
  assert.match(reason(verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw], [pki.root], new Date(new Date(pki.leaf.validTo).getTime() + 86_400_000))), /expired at/);
  assert.match(reason(verifyCertificateChain([Buffer.from('not a certificate')], [pki.root], at)), /certificate 0 of the chain is not a valid X.509 certificate/);
  assert.match(reason(verifyCertificateChain([], [pki.root], at)), /no certificate/);
  assert.match(reason(verifyCertificateChain([pki.leaf.raw, pki.intermediate.raw], [pki.root], new Date(Number.NaN))), /no valid time/);
});
