import assert from 'node:assert/strict';
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAstoreError } from '../errors.ts';
import { SecretBox } from '../identity/secrets.ts';
import { FileKeyProvider, fingerprint, generateKeyPair, importPrivateKey, importPublicKey, signWithKey, type SigningAlgorithm } from './keys.ts';
import type { Signed } from './types.ts';

const message = Buffer.from('the artifact bytes, or a simple-signing payload');
const digestOf = (bytes: Buffer): Signed => ({ kind: 'digest', algorithm: 'sha256', digest: createHash('sha256').update(bytes).digest() });

/** How cosign verifies a signature made with a key of this kind (sigstore/sigstore LoadVerifier). */
function cosignVerifies(publicPem: string, signature: Buffer, signedMessage: Buffer): boolean {
  const key = createPublicKey(publicPem);
  if (key.asymmetricKeyType === 'ed25519') return verify(null, signedMessage, key, signature);
  if (key.asymmetricKeyType === 'rsa') return verify('sha256', signedMessage, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  return verify('sha256', signedMessage, { key, dsaEncoding: 'der' }, signature);
}

describe('generateKeyPair', () => {
  const expected: Record<SigningAlgorithm, { algorithm: string; type: string; detail?: Record<string, unknown> }> = {
    'ecdsa-p256': { algorithm: 'ecdsa-p256', type: 'ec', detail: { namedCurve: 'prime256v1' } },
    ed25519: { algorithm: 'ed25519', type: 'ed25519' },
    'rsa-3072': { algorithm: 'rsa', type: 'rsa', detail: { modulusLength: 3072, publicExponent: 65537n } },
    'rsa-4096': { algorithm: 'rsa', type: 'rsa', detail: { modulusLength: 4096 } },
  };
  for (const [requested, want] of Object.entries(expected)) {
    test(`${requested}: a PKCS#8 private and SPKI public PEM of that kind, the public half of the private`, () => {
      const pair = generateKeyPair(requested as SigningAlgorithm);
      assert.equal(pair.algorithm, want.algorithm);
      assert.match(pair.privatePem, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.match(pair.publicPem, /^-----BEGIN PUBLIC KEY-----\n/);
      const privateKey = createPrivateKey(pair.privatePem);
      assert.equal(privateKey.asymmetricKeyType, want.type);
      for (const [name, value] of Object.entries(want.detail ?? {})) assert.equal((privateKey.asymmetricKeyDetails as Record<string, unknown>)[name], value);
      assert.equal(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }), pair.publicPem);
    });
  }

  test('an unknown algorithm is refused by name', () => {
    assert.throws(() => generateKeyPair('ecdsa-p384' as SigningAlgorithm), /unknown signing algorithm "ecdsa-p384"/);
  });
});

describe('importPrivateKey', () => {
  test('PKCS#8, SEC1 and PKCS#1 keys come back as the same key in PKCS#8', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    const ed = generateKeyPairSync('ed25519').privateKey;
    const cases = [
      { pem: ec.export({ type: 'pkcs8', format: 'pem' }).toString(), key: ec, algorithm: 'ecdsa-p256' },
      { pem: ec.export({ type: 'sec1', format: 'pem' }).toString(), key: ec, algorithm: 'ecdsa-p256' },
      { pem: rsa.export({ type: 'pkcs1', format: 'pem' }).toString(), key: rsa, algorithm: 'rsa' },
      { pem: ed.export({ type: 'pkcs8', format: 'pem' }).toString(), key: ed, algorithm: 'ed25519' },
    ];
    for (const { pem, key, algorithm } of cases) {
      const imported = importPrivateKey(pem);
      assert.equal(imported.algorithm, algorithm);
      assert.equal(imported.privatePem, key.export({ type: 'pkcs8', format: 'pem' }));
      assert.equal(imported.publicPem, createPublicKey(key).export({ type: 'spki', format: 'pem' }));
    }
  });

  test('openssl ecparam output (EC PARAMETERS, then the key) is accepted', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const pem = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${ec.export({ type: 'sec1', format: 'pem' })}`;
    assert.equal(importPrivateKey(pem).algorithm, 'ecdsa-p256');
  });

  test('an encrypted PKCS#8 or legacy-encrypted PKCS#1 key needs its passphrase, and the right one', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    const pkcs8 = rsa.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'open sesame' }).toString();
    const pkcs1 = rsa.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'open sesame' }).toString();
    assert.match(pkcs1, /Proc-Type: 4,ENCRYPTED/);
    for (const pem of [pkcs8, pkcs1]) {
      assert.throws(() => importPrivateKey(pem), /is encrypted: give its passphrase/);
      assert.throws(() => importPrivateKey(pem, 'wrong'), /the passphrase does not decrypt the private key/);
      const imported = importPrivateKey(pem, 'open sesame');
      assert.equal(imported.privatePem, rsa.export({ type: 'pkcs8', format: 'pem' }));
      assert.doesNotMatch(imported.privatePem, /ENCRYPTED/);
    }
  });

  test('keys astore does not sign with are refused, saying why', () => {
    const pem = (key: ReturnType<typeof generateKeyPairSync>['privateKey']) => key.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cases: Array<[string, RegExp]> = [
      [pem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey), /RSA keys must have at least 3072 bits; this one has 2048/],
      [pem(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey), /must be on P-256 .*this key is on P-384/],
      [pem(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey), /must be on P-256; this key is on secp256k1/],
      [pem(generateKeyPairSync('rsa-pss', { modulusLength: 3072 }).privateKey), /RSA-PSS keys are not supported/],
      [pem(generateKeyPairSync('ed448').privateKey), /ed448 keys are not supported/],
      [pem(generateKeyPairSync('x25519').privateKey), /x25519 keys are not supported/],
    ];
    for (const [input, expected] of cases) {
      assert.throws(() => importPrivateKey(input), (err) => isAstoreError(err, 'InvalidArgument') && expected.test(err.message), String(expected));
    }
  });

  test('a public key, a certificate, a cosign or OpenSSH key, or no PEM at all is refused by what it is', () => {
    const { publicPem } = generateKeyPair('ecdsa-p256');
    const block = (label: string) => `-----BEGIN ${label}-----\nAAAA\n-----END ${label}-----\n`;
    const cases: Array<[string, RegExp]> = [
      [publicPem, /a public key; signing needs the private key/],
      [block('CERTIFICATE'), /a certificate/],
      [block('ENCRYPTED SIGSTORE PRIVATE KEY'), /a cosign-encrypted key/],
      [block('OPENSSH PRIVATE KEY'), /ssh-keygen -p -m PKCS8/],
      ['not a key', /not a private key PEM \(no -----BEGIN/],
      [generateKeyPair('ed25519').privatePem + generateKeyPair('ed25519').privatePem, /expected one PEM block, found 2/],
      [block('PRIVATE KEY'), /the private key \(PRIVATE KEY\) cannot be read/],
    ];
    for (const [input, expected] of cases) assert.throws(() => importPrivateKey(input), expected);
  });
});

describe('importPublicKey and fingerprint', () => {
  test('SPKI and PKCS#1 public keys of every supported kind, P-384 included, re-encoded as SPKI', () => {
    const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    assert.deepEqual(importPublicKey(ec384.export({ type: 'spki', format: 'pem' }).toString()), {
      algorithm: 'ecdsa-p384',
      publicPem: ec384.export({ type: 'spki', format: 'pem' }),
    });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey;
    assert.deepEqual(importPublicKey(rsa.export({ type: 'pkcs1', format: 'pem' }).toString()), { algorithm: 'rsa', publicPem: rsa.export({ type: 'spki', format: 'pem' }) });
    for (const algorithm of ['ecdsa-p256', 'ed25519'] as const) assert.equal(importPublicKey(generateKeyPair(algorithm).publicPem).algorithm, algorithm);
  });

  test('a private key, a small RSA key or another curve is refused', () => {
    assert.throws(() => importPublicKey(generateKeyPair('ecdsa-p256').privatePem), /this is a private key \(PRIVATE KEY\); a verification key is only the public part/);
    const small = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => importPublicKey(small), /at least 3072 bits; this one has 2048/);
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => importPublicKey(k1), /P-256 or P-384; this key is on secp256k1/);
  });

  test('the fingerprint is the hex sha256 of the SPKI DER, the same from either PEM encoding', () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey;
    const expected = createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
    assert.equal(fingerprint(key.export({ type: 'spki', format: 'pem' }).toString()), expected);
    assert.equal(fingerprint(key.export({ type: 'pkcs1', format: 'pem' }).toString()), expected);
    assert.match(expected, /^[0-9a-f]{64}$/);
  });
});

describe('signWithKey', () => {
  for (const algorithm of ['ecdsa-p256', 'rsa-3072'] as const) {
    test(`${algorithm}: a signature over the digest verifies as a signature over the message, and not over another`, () => {
      const pair = generateKeyPair(algorithm);
      const key = createPrivateKey(pair.privatePem);
      const overDigest = signWithKey(key, digestOf(message));
      const overMessage = signWithKey(key, { kind: 'message', message });
      assert.ok(cosignVerifies(pair.publicPem, overDigest, message), 'digest signature verifies over the message');
      assert.ok(cosignVerifies(pair.publicPem, overMessage, message), 'message signature verifies');
      assert.ok(!cosignVerifies(pair.publicPem, overDigest, Buffer.concat([message, Buffer.from('!')])), 'not over another message');
      if (algorithm === 'rsa-3072') assert.deepEqual(overDigest, overMessage, 'PKCS#1 v1.5 is deterministic: the same bytes either way');
    });
  }

  test('ECDSA signatures are ASN.1 DER SEQUENCE { r, s }', () => {
    const key = createPrivateKey(generateKeyPair('ecdsa-p256').privatePem);
    for (let i = 0; i < 20; i++) {
      const signature = signWithKey(key, digestOf(randomBytes(10)));
      assert.equal(signature[0], 0x30);
      assert.equal(signature[1], signature.length - 2);
    }
  });

  test('Ed25519 signs the message itself (pure Ed25519) and refuses a digest with a clear error', () => {
    const pair = generateKeyPair('ed25519');
    const key = createPrivateKey(pair.privatePem);
    assert.ok(cosignVerifies(pair.publicPem, signWithKey(key, { kind: 'message', message }), message));
    assert.throws(() => signWithKey(key, digestOf(message)), /an Ed25519 key signs the message itself, not a digest/);
  });

  test('digests other than a 32-byte sha256 are refused', () => {
    const key = createPrivateKey(generateKeyPair('ecdsa-p256').privatePem);
    assert.throws(() => signWithKey(key, { kind: 'digest', algorithm: 'sha384', digest: randomBytes(48) }), /signs SHA-256 digests .* not sha384/);
    assert.throws(() => signWithKey(key, { kind: 'digest', algorithm: 'sha256', digest: randomBytes(31) }), /a sha256 digest is 32 bytes, not 31/);
  });
});

describe('FileKeyProvider', () => {
  let dir: string;
  let provider: FileKeyProvider;
  const secrets = new SecretBox(randomBytes(32));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'astore-keys-'));
    provider = new FileKeyProvider(join(dir, 'keys'), secrets);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a stored key signs what its public key verifies, for each algorithm, digest or message', async () => {
    for (const algorithm of ['ecdsa-p256', 'ed25519', 'rsa-3072'] as const) {
      const pair = generateKeyPair(algorithm);
      const ref = await provider.store(`tenant-a/${algorithm}`, pair.privatePem);
      assert.equal(ref, `file:tenant-a/${algorithm}`);
      const signed: Signed = algorithm === 'ed25519' ? { kind: 'message', message } : digestOf(message);
      assert.ok(cosignVerifies(pair.publicPem, await provider.sign(ref, signed), message), algorithm);
    }
    await assert.rejects(provider.sign('file:tenant-a/ed25519', digestOf(message)), /an Ed25519 key signs the message itself/);
  });

  test('the key file is sealed, mode 0600, named after the id, with no temp file left', async () => {
    const pair = generateKeyPair('ecdsa-p256');
    await provider.store('sealed.check', pair.privatePem);
    const file = join(dir, 'keys', 'sealed.check.key');
    const content = await readFile(file, 'utf8');
    assert.match(content, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.ok(!content.includes('PRIVATE KEY'));
    assert.equal(JSON.parse(secrets.open(content)).privatePem, pair.privatePem);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(join(dir, 'keys'))).filter((name) => name.endsWith('.tmp')), []);
    assert.ok((await readdir(join(dir, 'keys'))).includes('tenant-a~ecdsa-p256.key'), 'a / in the id is ~ in the file name');
  });

  test('storing the same key again is a no-op; another key under the same id is refused and the first kept', async () => {
    const first = generateKeyPair('ed25519');
    const ref = await provider.store('rotate-me', first.privatePem);
    assert.equal(await provider.store('rotate-me', first.privatePem), ref);
    await assert.rejects(provider.store('rotate-me', generateKeyPair('ed25519').privatePem), (err) => isAstoreError(err, 'EntityAlreadyExists'));
    assert.ok(cosignVerifies(first.publicPem, await provider.sign(ref, { kind: 'message', message }), message));
  });

  test('key ids that could leave the directory or collide with temp files are refused', async () => {
    const { privatePem } = generateKeyPair('ed25519');
    for (const keyId of ['', '..', '../x', 'a/../../x', 'a/./b', '/abs', 'a//b', 'a/', '.hidden', 'a\\b', 'a b', 'é', 'x'.repeat(201)]) {
      await assert.rejects(provider.store(keyId, privatePem), (err) => isAstoreError(err, 'InvalidArgument') && /invalid key id/.test(err.message), JSON.stringify(keyId));
    }
    await assert.rejects(provider.sign('file:../x', { kind: 'message', message }), /invalid key id/);
    await assert.rejects(provider.sign('kms:abc', { kind: 'message', message }), /not a file key reference/);
  });

  test('an unusable key is refused before anything is written', async () => {
    await assert.rejects(provider.store('small-rsa', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), /at least 3072 bits/);
    await assert.rejects(provider.sign('file:small-rsa', { kind: 'message', message }), (err) => isAstoreError(err, 'NoSuchEntity'));
  });

  test('destroy forgets the key, twice without complaint', async () => {
    const ref = await provider.store('short-lived', generateKeyPair('ecdsa-p256').privatePem);
    await provider.destroy(ref);
    await provider.destroy(ref);
    await assert.rejects(provider.sign(ref, digestOf(message)), (err) => isAstoreError(err, 'NoSuchEntity') && /no private key is stored as short-lived/.test(err.message));
  });

  test('a key file moved under another id, or sealed with another server key, does not sign', async () => {
    await provider.store('original', generateKeyPair('ecdsa-p256').privatePem);
    const keys = join(dir, 'keys');
    await writeFile(join(keys, 'impostor.key'), await readFile(join(keys, 'original.key')));
    await assert.rejects(provider.sign('file:impostor', digestOf(message)), /holds another key \(original\)/);
    const other = new FileKeyProvider(keys, new SecretBox(randomBytes(32)));
    await assert.rejects(other.sign('file:original', digestOf(message)), /sealed with another server key/);
  });
});
