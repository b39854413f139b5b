import { constants, createHash, createPublicKey, type KeyObject, publicDecrypt, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import type { KeyAlgorithm, SignedMessage } from '../types.ts';

/**
 * Signature and certificate-chain verification over what the format parsers produce. Pure: no
 * clock (the caller passes the time), no I/O. Verification never throws on hostile input: a
 * malformed signature, a key of the wrong type or an algorithm that does not fit the key is `false`.
 */

type Hash = 'sha256' | 'sha384' | 'sha512';

const hashLength: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** JWS (RFC 7518) algorithm names, which the envelope parsers also use for COSE and DSSE. */
const jwsAlgorithms: Record<string, { family: 'ecdsa' | 'rsa-pkcs1' | 'rsa-pss' | 'eddsa'; hash?: Hash }> = {
  ES256: { family: 'ecdsa', hash: 'sha256' },
  ES384: { family: 'ecdsa', hash: 'sha384' },
  ES512: { family: 'ecdsa', hash: 'sha512' },
  RS256: { family: 'rsa-pkcs1', hash: 'sha256' },
  RS384: { family: 'rsa-pkcs1', hash: 'sha384' },
  RS512: { family: 'rsa-pkcs1', hash: 'sha512' },
  PS256: { family: 'rsa-pss', hash: 'sha256' },
  PS384: { family: 'rsa-pss', hash: 'sha384' },
  PS512: { family: 'rsa-pss', hash: 'sha512' },
  EdDSA: { family: 'eddsa' },
  Ed25519: { family: 'eddsa' },
};

/** The key's algorithm as the vocabulary names it; undefined for keys astore does not verify with. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') return 'rsa';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ecdsa-p256';
    if (curve === 'secp384r1' || curve === 'P-384') return 'ecdsa-p384';
  }
  return undefined;
}

/** Hex SHA-256 of the key's SPKI DER: what cosign's bundle `publicKey.hint` holds (there in base64). */
export function keyIdOf(key: KeyObject): string {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/**
 * True when `message.signature` is a valid signature by `key` over `message.signed`.
 * - ECDSA P-256 / P-384: DER or raw r||s; the hash is the JWS alg's, else SHA-256 / SHA-384 by curve.
 *   A digest is verified as it is (noble, no pre-hash); high-S signatures are accepted, as Go and
 *   OpenSSL produce them.
 * - RSA: PKCS#1 v1.5 (no alg, or RS*) or PSS with salt = hash length (PS*), SHA-256/384/512.
 * - Ed25519: the message only; a digest cannot be verified (pure Ed25519 hashes the whole message).
 */
export function verifySignedMessage(message: SignedMessage, verificationKey: KeyObject): boolean {
  try {
    if (verificationKey.type === 'secret') return false;
    const key = verificationKey.type === 'private' ? createPublicKey(verificationKey) : verificationKey;
    const algorithm = keyAlgorithmOf(key);
    if (algorithm === undefined) return false;
    const named = message.algorithm === undefined ? undefined : jwsAlgorithms[message.algorithm];
    if (message.algorithm !== undefined && named === undefined) return false;
    const { signed, signature } = message;
    if (signed.kind === 'digest' && signed.digest.length !== hashLength[signed.algorithm]) return false;
    switch (algorithm) {
      case 'ed25519':
        if (named !== undefined && named.family !== 'eddsa') return false;
        return signed.kind === 'message' && cryptoVerify(null, signed.message, key, signature);
      case 'ecdsa-p256':
      case 'ecdsa-p384': {
        if (named !== undefined && named.family !== 'ecdsa') return false;
        const hash = named?.hash ?? (signed.kind === 'digest' ? signed.algorithm : algorithm === 'ecdsa-p256' ? 'sha256' : 'sha384');
        if (signed.kind === 'digest' && signed.algorithm !== hash) return false;
        return verifyEcdsa(algorithm, key, hash, signed.kind === 'message' ? { message: signed.message } : { digest: signed.digest }, signature);
      }
      case 'rsa': {
        if (named !== undefined && named.family !== 'rsa-pkcs1' && named.family !== 'rsa-pss') return false;
        const hash = named?.hash ?? (signed.kind === 'digest' ? signed.algorithm : 'sha256');
        if (signed.kind === 'digest' && signed.algorithm !== hash) return false;
        const pss = named?.family === 'rsa-pss';
        if (signed.kind === 'message') {
          const padding = pss ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hashLength[hash] } : { padding: constants.RSA_PKCS1_PADDING };
          return cryptoVerify(hash, signed.message, { key, ...padding }, signature);
        }
        return pss ? verifyPssDigest(key, hash, signed.digest, signature) : verifyPkcs1Digest(key, hash, signed.digest, signature);
      }
    }
  } catch {
    return false;
  }
}

function verifyEcdsa(curve: 'ecdsa-p256' | 'ecdsa-p384', key: KeyObject, hash: Hash, signed: { message: Buffer } | { digest: Buffer }, signature: Buffer): boolean {
  const fieldBytes = curve === 'ecdsa-p256' ? 32 : 48;
  // JWS and COSE carry r||s, cosign and DSSE carry DER; a DER signature is never exactly 2n bytes
  // long in practice, but both are tried so that a short-DER coincidence cannot refuse a good one.
  const encodings: ('ieee-p1363' | 'der')[] = signature.length === 2 * fieldBytes ? ['ieee-p1363', 'der'] : ['der'];
  if ('message' in signed) {
    return encodings.some((dsaEncoding) => falseOnError(() => cryptoVerify(hash, signed.message, { key, dsaEncoding }, signature)));
  }
  const jwk = key.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const ecdsa = curve === 'ecdsa-p256' ? p256 : p384;
  return encodings.some((encoding) => falseOnError(() => ecdsa.verify(signature, signed.digest, point, { prehash: false, lowS: false, format: encoding === 'der' ? 'der' : 'compact' })));
}

function falseOnError(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/** DER of DigestInfo { AlgorithmIdentifier hash NULL, OCTET STRING } up to the digest (RFC 8017 §9.2 note 1). */
const digestInfoPrefix: Record<Hash, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/**
 * PKCS#1 v1.5 over a digest: the public-key operation with block-type-1 unpadding yields
 * DigestInfo, which must be exactly the expected encoding (no other parameters, no trailing bytes).
 */
function verifyPkcs1Digest(key: KeyObject, hash: Hash, digest: Buffer, signature: Buffer): boolean {
  if (signature.length !== modulusBytes(key)) return false;
  const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
  return recovered.equals(Buffer.concat([digestInfoPrefix[hash], digest]));
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 over the same hash and salt length = hash length. */
function verifyPssDigest(key: KeyObject, hash: Hash, digest: Buffer, signature: Buffer): boolean {
  const k = modulusBytes(key);
  if (signature.length !== k) return false;
  const modBits = key.asymmetricKeyDetails?.modulusLength ?? k * 8;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = hashLength[hash];
  const sLen = hLen;
  const raw = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
  if (raw.length - emLen < 0 || raw.subarray(0, raw.length - emLen).some((b) => b !== 0)) return false;
  const em = raw.subarray(raw.length - emLen);
  if (emLen < hLen + sLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topBits = 8 * emLen - emBits;
  const topMask = (0xff << (8 - topBits)) & 0xff;
  if ((maskedDb[0]! & topMask) !== 0) return false;
  const db = mgf1(hash, h, maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= maskedDb[i]!;
  db[0]! &= ~topMask & 0xff;
  const psLen = emLen - hLen - sLen - 2;
  for (let i = 0; i < psLen; i++) if (db[i] !== 0) return false;
  if (db[psLen] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  const expected = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return expected.equals(h);
}

function mgf1(hash: Hash, seed: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let offset = 0, i = 0; offset < length; i++, offset += hashLength[hash]) {
    counter.writeUInt32BE(i);
    createHash(hash).update(seed).update(counter).digest().copy(out, offset);
  }
  return out;
}

function modulusBytes(key: KeyObject): number {
  return Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
}

export type ChainResult = { ok: true; leaf: X509Certificate } | { ok: false; reason: string };

/**
 * Checks a certificate chain (DER, leaf first) against trusted roots at time `at`: each certificate
 * is valid at `at` and issued and signed by the next, which must be a CA; the walk ends at the first
 * certificate that is itself a trusted root (roots may appear in the chain, and a trusted self-signed
 * leaf is its own root) or at the last one, which a trusted CA root must have issued.
 * Not checked: name or path-length constraints, key usage beyond what OpenSSL's issuer check does,
 * revocation.
 */
export function verifyCertificateChain(chainDer: Buffer[], roots: X509Certificate[], at: Date): ChainResult {
  if (chainDer.length === 0) return { ok: false, reason: 'the signature carries no certificate' };
  if (Number.isNaN(at.getTime())) return { ok: false, reason: 'no valid time to check the certificates at' };
  const chain: X509Certificate[] = [];
  for (const [i, der] of chainDer.entries()) {
    try {
      chain.push(new X509Certificate(der));
    } catch {
      return { ok: false, reason: `certificate ${i} of the chain is not a valid X.509 certificate` };
    }
  }
  const isRoot = (cert: X509Certificate) => roots.some((root) => root.raw.equals(cert.raw));
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const invalid = validityProblem(cert, at);
    if (invalid) return { ok: false, reason: `certificate ${i} (${nameOf(cert)}) ${invalid}` };
    if (isRoot(cert)) return { ok: true, leaf: chain[0]! };
    const next = chain[i + 1];
    if (next !== undefined) {
      if (!issuedBy(cert, next)) return { ok: false, reason: `certificate ${i} (${nameOf(cert)}) is not issued and signed by certificate ${i + 1} (${nameOf(next)})` };
      if (!next.ca) return { ok: false, reason: `certificate ${i + 1} (${nameOf(next)}) issues certificate ${i} but is not a CA` };
      continue;
    }
    const root = roots.find((r) => issuedBy(cert, r));
    if (root === undefined) return { ok: false, reason: `the chain does not lead to a trusted root (its last certificate is issued by ${cert.issuer.replace(/\n/g, ', ')})` };
    if (!root.ca) return { ok: false, reason: `the trusted certificate ${nameOf(root)} issued the chain but is not a CA` };
    const rootInvalid = validityProblem(root, at);
    if (rootInvalid) return { ok: false, reason: `the trusted root (${nameOf(root)}) ${rootInvalid}` };
    return { ok: true, leaf: chain[0]! };
  }
  return { ok: false, reason: 'the chain does not lead to a trusted root' };
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validityProblem(cert: X509Certificate, at: Date): string | undefined {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return 'has an unreadable validity period';
  if (at < from) return `is not valid before ${from.toISOString()}`;
  if (at > to) return `expired at ${to.toISOString()}`;
  return undefined;
}

function nameOf(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ');
}
