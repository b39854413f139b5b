import { readFileSync } from 'node:fs';
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';

/**
 * Samples captured from the real tools (cosign v2.6.5 with a P-256 key pair, cosign.pub; notation
 * v1.3.2 with its generate-test RSA certificate; pushed to and read back from the CNCF registry
 * v3.1.2), and a test PKI made with openssl:
 * - sign-blob.sigstore.json: `cosign sign-blob --key --tlog-upload=false --new-bundle-format --bundle` of signedBlob
 * - sign-blob.cosign-bundle.json: the same without --new-bundle-format
 * - attest-blob.sigstore.json / attest-blob.cosign-bundle.json: `cosign attest-blob --type slsaprovenance1` likewise
 * - sign-image.sig-manifest.json, sign-image.simplesigning.json: `cosign sign` (tag sha256-<hex>.sig) manifest and layer
 * - sign-image.referrer-manifest.json, sign-image-annotated.simplesigning.json: `cosign sign
 *   --registry-referrers-mode=oci-1-1 -a team=x` (the referrer holds both signatures)
 * - sign-image.sigstore.json: `cosign sign --new-bundle-format` bundle layer (DSSE, predicate cosign/sign/v1)
 * - attest-image.dsse.json: `cosign attest --type slsaprovenance1` layer of the .att manifest
 * - notation.jws / notation.cose: `notation sign [--signature-format cose]` envelope layers
 * All image samples are about the manifest sha256:4bf66745…7016 (imageDigest).
 */

export function fixture(name: string): Buffer {
  return readFileSync(new URL(`./${name}`, import.meta.url));
}

export function fixtureJson(name: string): Record<string, unknown> {
  return JSON.parse(fixture(name).toString('utf8')) as Record<string, unknown>;
}

export const imageDigest = 'sha256:4bf667459c7b3960755a4f29897fce81ab1ab25557ae60bcedd953f849f07016';

/** The content cosign signed in the blob samples: `echo hello`. */
export const signedBlob = Buffer.from('hello\n');

export interface TestPki {
  root: X509Certificate;
  intermediate: X509Certificate;
  /** CA:FALSE leaf with code-signing usage, issued by the intermediate. */
  leaf: X509Certificate;
  leafKey: KeyObject;
  /** CA:FALSE (no key usage) certificate issued by the intermediate, which issued `rogueLeaf`. */
  notCa: X509Certificate;
  rogueLeaf: X509Certificate;
}

export function testPki(): TestPki {
  const text = fixture('pki.pem').toString('utf8');
  const certs = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/.exec(text)![0];
  const [root, intermediate, leaf, notCa, rogueLeaf] = certs as [X509Certificate, X509Certificate, X509Certificate, X509Certificate, X509Certificate];
  return { root, intermediate, leaf, leafKey: createPrivateKey(key), notCa, rogueLeaf };
}
