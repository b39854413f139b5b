import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SecretBox } from '../../packages/server/src/core/identity/secrets.ts';
import { dsseEnvelope, dssePae, legacySignatureTag, signatureImage, simpleSigningPayload } from '../../packages/server/src/core/supplychain/cosign-image.ts';
import { FileKeyProvider, generateKeyPair, type SigningAlgorithm } from '../../packages/server/src/core/supplychain/keys.ts';
import type { Signed } from '../../packages/server/src/core/supplychain/types.ts';
import { closeOciFixture, openCli, openOciFixture, type Cli, type OciFixture } from '../helpers/oci.ts';
import { RegistryHttp } from '../helpers/registry-http.ts';

/**
 * What astore signs with its own keys verifies with the real cosign (v2.6.5, offline: key pairs, no
 * Rekor): blob signatures with `cosign verify-blob --key`, in-toto attestations in a DSSE envelope
 * with `cosign verify-blob-attestation --key`, and image signatures pushed under the legacy
 * `sha256-<hex>.sig` tag with `cosign verify --key`. The registry is astore itself.
 *
 * ECDSA P-256 and RSA sign a precomputed SHA-256 digest (the server need not hold the blob);
 * Ed25519 signs the message, since pure Ed25519 cannot sign a digest, and cosign verifies pure Ed25519.
 */
const algorithms: SigningAlgorithm[] = ['ecdsa-p256', 'rsa-3072', 'ed25519'];

let f: OciFixture;
let cosign: Cli;
let provider: FileKeyProvider;
const keys = new Map<SigningAlgorithm, { ref: string; publicPemFile: string }>();

before(async () => {
  f = await openOciFixture('cosign-compat');
  cosign = openCli('ASTORE_TEST_COSIGN', f); // fails, naming the variable, when cosign is not installed
  f.env.TUF_ROOT = join(f.work, 'tuf');
  provider = new FileKeyProvider(join(f.work, 'keys'), new SecretBox(randomBytes(32)));
  for (const algorithm of algorithms) {
    const pair = generateKeyPair(algorithm);
    const publicPemFile = join(f.work, `${algorithm}.pub`);
    await writeFile(publicPemFile, pair.publicPem);
    keys.set(algorithm, { ref: await provider.store(`e2e/${algorithm}`, pair.privatePem), publicPemFile });
  }
});

after(async () => {
  await closeOciFixture(f ?? {});
});

const key = (algorithm: SigningAlgorithm) => keys.get(algorithm)!;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();

/** What the server signs for `message`: its SHA-256 digest, or the message itself for Ed25519. */
function toSign(algorithm: SigningAlgorithm, message: Buffer): Signed {
  return algorithm === 'ed25519' ? { kind: 'message', message } : { kind: 'digest', algorithm: 'sha256', digest: sha256(message) };
}

describe('cosign verify-blob --key accepts blob signatures made by the server', () => {
  for (const algorithm of algorithms) {
    test(`${algorithm}: verifies, and a blob changed by one byte does not`, async () => {
      const dir = join(f.work, 'blob', algorithm);
      await mkdir(dir, { recursive: true });
      const blob = Buffer.concat([Buffer.from('release artifact\n'), randomBytes(4096)]);
      const signature = await provider.sign(key(algorithm).ref, toSign(algorithm, blob));
      await writeFile(join(dir, 'blob'), blob);
      await writeFile(join(dir, 'blob.sig'), signature.toString('base64'));
      const args = ['verify-blob', '--key', key(algorithm).publicPemFile, '--signature', 'blob.sig', '--insecure-ignore-tlog=true', 'blob'];

      const verified = await cosign.run(args, { cwd: dir });
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stderr, /Verified OK/);

      blob[blob.length - 1]! ^= 0x01;
      await writeFile(join(dir, 'blob'), blob);
      const refused = await cosign.fails(args, { cwd: dir });
      // ECDSA: "invalid signature when validating ASN.1 encoded signature"; RSA: "crypto/rsa: verification error"; Ed25519: "failed to verify signature".
      assert.match(refused.stderr, /invalid signature|verification error|failed to verify signature/);
    });
  }

  test('ed25519: the provider refuses to sign a digest, since cosign verifies pure Ed25519 over the blob', async () => {
    await assert.rejects(provider.sign(key('ed25519').ref, { kind: 'digest', algorithm: 'sha256', digest: sha256(Buffer.from('x')) }), /signs the message itself, not a digest/);
  });
});

describe('cosign verify-blob-attestation --key accepts DSSE envelopes made by the server', () => {
  for (const algorithm of algorithms) {
    test(`${algorithm}: an in-toto statement about the blob verifies; not for another blob, nor once altered`, async () => {
      const dir = join(f.work, 'attestation', algorithm);
      await mkdir(dir, { recursive: true });
      const blob = randomBytes(1024);
      const predicateType = 'https://astore.dev/attestation/test/v1';
      const statement = Buffer.from(
        JSON.stringify({
          _type: 'https://in-toto.io/Statement/v1',
          subject: [{ name: 'blob', digest: { sha256: sha256(blob).toString('hex') } }],
          predicateType,
          predicate: { signedBy: 'astore' },
        }),
      );
      const payloadType = 'application/vnd.in-toto+json';
      const sig = await provider.sign(key(algorithm).ref, toSign(algorithm, dssePae(payloadType, statement)));
      await writeFile(join(dir, 'blob'), blob);
      await writeFile(join(dir, 'envelope.json'), dsseEnvelope(payloadType, statement, [{ sig }]));
      const args = ['verify-blob-attestation', '--key', key(algorithm).publicPemFile, '--signature', 'envelope.json', '--type', predicateType, '--insecure-ignore-tlog=true', 'blob'];

      const verified = await cosign.run(args, { cwd: dir });
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(verified.stderr, /Verified OK/);

      // The signature verified, so only the claim fails for another blob...
      await writeFile(join(dir, 'other-blob'), randomBytes(1024));
      const otherBlob = await cosign.fails([...args.slice(0, -1), 'other-blob'], { cwd: dir });
      assert.match(otherBlob.stderr, /no matching subject digest found/);
      // ...and a statement changed after signing fails on the signature.
      const altered = Buffer.from(statement.toString().replace('"signedBy":"astore"', '"signedBy":"mallory"'));
      await writeFile(join(dir, 'envelope.json'), dsseEnvelope(payloadType, altered, [{ sig }]));
      const tampered = await cosign.fails(args, { cwd: dir });
      assert.match(tampered.stderr, /accepted signatures do not match threshold, Found: 0/);
    });
  }
});

describe('cosign verify --key accepts image signatures the server pushes under the .sig tag', () => {
  const repository = 'supplychain/compat';
  let registry: RegistryHttp;
  let imageDigest: string;

  before(async () => {
    registry = new RegistryHttp(f.server.endpoint);
    imageDigest = (await registry.pushImage(repository, 'v1', [Buffer.from('a layer the server signs')])).digest;
  });

  /** Appends one signature to the `.sig` image as cosign would (GET the existing one, push blobs, PUT the manifest). */
  async function pushSignature(algorithm: SigningAlgorithm): Promise<void> {
    const tag = legacySignatureTag(imageDigest);
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    const current = await registry.request('GET', `/v2/${repository}/manifests/${tag}`, { headers: accept });
    let existing: { manifest: Buffer } | undefined;
    let existingConfig: { digest: string; content: Buffer } | undefined;
    if (current.status === 200) {
      existing = { manifest: Buffer.from(await current.arrayBuffer()) };
      const configDigest = (JSON.parse(existing.manifest.toString()) as { config: { digest: string } }).config.digest;
      const config = await registry.request('GET', `/v2/${repository}/blobs/${configDigest}`);
      assert.equal(config.status, 200);
      existingConfig = { digest: configDigest, content: Buffer.from(await config.arrayBuffer()) };
    } else {
      assert.equal(current.status, 404, await current.text());
    }

    const payload = simpleSigningPayload(`${f.registry}/${repository}`, imageDigest);
    const signature = await provider.sign(key(algorithm).ref, toSign(algorithm, payload));
    const image = signatureImage(existing, { payload, signatureBase64: signature.toString('base64') }, (digest) =>
      digest === existingConfig?.digest ? existingConfig.content : undefined,
    );
    assert.equal(image.appended, true);
    for (const blob of image.blobs) assert.equal(await registry.pushBlob(repository, blob.content), blob.digest);
    const put = await registry.request('PUT', `/v2/${repository}/manifests/${tag}`, { body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.equal(put.status, 201, await put.text());
  }

  const verifyArgs = (algorithm: SigningAlgorithm) => [
    'verify',
    '--key',
    key(algorithm).publicPemFile,
    '--insecure-ignore-tlog=true',
    '--allow-http-registry',
    '--allow-insecure-registry',
    `${f.registry}/${repository}@${imageDigest}`,
  ];

  test('one signature per algorithm, appended under one tag: each key verifies, its payload names the image', async () => {
    for (const [i, algorithm] of algorithms.entries()) {
      await pushSignature(algorithm);
      const sigManifest = await registry.request('GET', `/v2/${repository}/manifests/${legacySignatureTag(imageDigest)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const { layers } = (await sigManifest.json()) as { layers: unknown[] };
      assert.equal(layers.length, i + 1, 'signatures are appended, not replaced');
      for (const signer of algorithms.slice(0, i + 1)) {
        const out = await cosign.ok(verifyArgs(signer));
        const [verified] = JSON.parse(out) as Array<{ critical: { image: { 'docker-manifest-digest': string }; identity: { 'docker-reference': string } } }>;
        assert.equal(verified!.critical.image['docker-manifest-digest'], imageDigest);
        assert.equal(verified!.critical.identity['docker-reference'], `${f.registry}/${repository}`);
      }
    }
  });

  test('a key that signed nothing does not verify', async () => {
    const stranger = join(f.work, 'stranger.pub');
    await writeFile(stranger, generateKeyPair('ecdsa-p256').publicPem);
    const refused = await cosign.fails(['verify', '--key', stranger, ...verifyArgs('ecdsa-p256').slice(3)]);
    assert.match(refused.stderr, /no matching signatures/);
  });
});
