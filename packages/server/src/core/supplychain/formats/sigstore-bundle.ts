import { z } from 'zod';
import { FormatError, type ParsedAttestation, type ParsedSignature } from '../types.ts';
import { envelopeMessages, parseDsseEnvelope, attestationFromEnvelope, statementOf } from './dsse.ts';
import { checkShape, decodeBase64, type DigestAlgorithm, formatDigest, parseDigest, pemBlocks } from './encoding.ts';

/**
 * Sigstore bundles, as `cosign sign-blob` / `attest-blob --bundle` write them and as cosign attaches
 * them to images (`--new-bundle-format`):
 * - the Sigstore protobuf-JSON bundle v0.1–v0.3 (`mediaType` application/vnd.dev.sigstore.bundle…),
 *   holding a messageSignature (a signature over the blob's digest) or a dsseEnvelope;
 * - cosign's older bundle `{base64Signature, cert?, rekorBundle?}` (no media type), whose
 *   base64Signature is the signature over the blob, or for `attest-blob` the whole DSSE envelope.
 * With --tlog-upload=false cosign writes no tlogEntries / rekorBundle; transparency-log material is
 * not read by astore either way (verification is by key or certificate chain only).
 */

export const sigstoreBundleMediaTypes = {
  v01: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
  v02: 'application/vnd.dev.sigstore.bundle+json;version=0.2',
  v03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

/** astore's name for cosign's pre-Sigstore bundle JSON, which has no registered media type. */
export const cosignBundleMediaType = 'application/vnd.astore.cosign.bundle.v1+json';

/** The predicate `cosign sign --new-bundle-format` signs an image with: a signature, not an attestation. */
export const cosignSignPredicateType = 'https://sigstore.dev/cosign/sign/v1';

export type ParsedBundle = { kind: 'signature'; mediaType: string; signature: ParsedSignature } | { kind: 'attestation'; mediaType: string; attestation: ParsedAttestation };

/** True for a Sigstore bundle media type (parameters and case aside). */
export function isSigstoreBundleMediaType(mediaType: string): boolean {
  const normalized = mediaType.toLowerCase().replace(/\s+/g, '');
  return Object.values(sigstoreBundleMediaTypes).some((known) => normalized === known) || /^application\/vnd\.dev\.sigstore\.bundle\.v0\.\d+\+json$/.test(normalized);
}

const rawBytes = z.looseObject({ rawBytes: z.string() });
const bundleShape = z.looseObject({
  mediaType: z.string(),
  verificationMaterial: z.looseObject({
    publicKey: z.looseObject({ hint: z.string().optional() }).optional(),
    x509CertificateChain: z.looseObject({ certificates: z.array(rawBytes).min(1) }).optional(),
    certificate: rawBytes.optional(),
  }),
  messageSignature: z
    .looseObject({
      messageDigest: z.looseObject({ algorithm: z.union([z.string(), z.number()]), digest: z.string() }).optional(),
      signature: z.string(),
    })
    .optional(),
  dsseEnvelope: z.unknown().optional(),
});

const legacyShape = z.looseObject({ base64Signature: z.string().min(1), cert: z.string().optional(), rekorBundle: z.unknown().optional() });

/** HashAlgorithm of the Sigstore protobuf, by name or (protobuf JSON allows it) by number. */
const hashAlgorithms: Record<string, DigestAlgorithm> = { SHA2_256: 'sha256', SHA2_384: 'sha384', SHA2_512: 'sha512', '1': 'sha256', '2': 'sha384', '3': 'sha512' };

/**
 * Reads a bundle (parsed JSON). A message signature covers `messageDigest` when the bundle states
 * it (its subjectDigest is then that digest, which the caller must compare with its subject);
 * otherwise, and for the old cosign bundle, it covers `subjectDigest`, which is then required.
 */
export function parseSigstoreBundle(value: unknown, subjectDigest?: string): ParsedBundle {
  if (typeof value === 'object' && value !== null && 'base64Signature' in value) return parseLegacyBundle(value, subjectDigest);
  const bundle = checkShape(bundleShape, value, 'the Sigstore bundle');
  if (!isSigstoreBundleMediaType(bundle.mediaType)) throw new FormatError(`the Sigstore bundle media type ${JSON.stringify(bundle.mediaType)} is not a known bundle version (0.1 to 0.3)`);
  const material = bundle.verificationMaterial;
  const certificates = material.certificate
    ? [decodeBase64(material.certificate.rawBytes, 'the bundle certificate')]
    : material.x509CertificateChain?.certificates.map((c, i) => decodeBase64(c.rawBytes, `the bundle certificate ${i}`));
  if (!certificates && !material.publicKey) throw new FormatError('the Sigstore bundle has no verification material (publicKey, certificate or x509CertificateChain)');
  const keyHint = material.publicKey?.hint ? normalizeHint(material.publicKey.hint) : undefined;
  const context = { ...(certificates && { certificates }), ...(keyHint !== undefined && { keyHint }) };

  if ((bundle.messageSignature === undefined) === (bundle.dsseEnvelope === undefined)) {
    throw new FormatError('the Sigstore bundle must hold exactly one of messageSignature and dsseEnvelope');
  }
  if (bundle.messageSignature) {
    const { messageDigest, signature } = bundle.messageSignature;
    let covered: { algorithm: DigestAlgorithm; digest: Buffer };
    if (messageDigest) {
      const algorithm = hashAlgorithms[String(messageDigest.algorithm)];
      if (!algorithm) throw new FormatError(`the bundle's message digest algorithm ${JSON.stringify(messageDigest.algorithm)} is not supported (SHA2_256, SHA2_384, SHA2_512)`);
      const digest = decodeBase64(messageDigest.digest, 'the bundle message digest');
      if (digest.length !== { sha256: 32, sha384: 48, sha512: 64 }[algorithm]) throw new FormatError(`the bundle's ${algorithm} message digest has ${digest.length} bytes`);
      covered = { algorithm, digest };
    } else {
      covered = requiredSubject(subjectDigest, 'a Sigstore bundle without messageDigest');
    }
    return {
      kind: 'signature',
      mediaType: bundle.mediaType,
      signature: {
        format: 'sigstore-bundle',
        subjectDigest: formatDigest(covered.algorithm, covered.digest),
        message: { signed: { kind: 'digest', ...covered }, signature: nonEmpty(decodeBase64(signature, 'the bundle signature'), 'the bundle signature'), ...context },
      },
    };
  }
  const envelope = parseDsseEnvelope(bundle.dsseEnvelope, "the bundle's DSSE envelope");
  const statement = statementOf(envelope);
  if (statement.predicateType === cosignSignPredicateType) {
    // `cosign sign --new-bundle-format` signs an image as a DSSE statement about its digest.
    const [message, ...more] = envelopeMessages(envelope, context);
    if (!message) throw new FormatError('the signature bundle\'s DSSE envelope is unsigned');
    if (more.length > 0 || statement.subjectDigests.length !== 1) throw new FormatError('a cosign signature bundle must hold one signature over one subject');
    return { kind: 'signature', mediaType: bundle.mediaType, signature: { format: 'sigstore-bundle', subjectDigest: statement.subjectDigests[0]!, message } };
  }
  return { kind: 'attestation', mediaType: bundle.mediaType, attestation: attestationFromEnvelope(envelope, { format: 'sigstore-bundle', ...context }) };
}

function parseLegacyBundle(value: object, subjectDigest: string | undefined): ParsedBundle {
  const bundle = checkShape(legacyShape, value, 'the cosign bundle');
  const signature = decodeBase64(bundle.base64Signature, 'the cosign bundle base64Signature');
  const certificates = bundle.cert ? legacyCertificates(bundle.cert) : undefined;
  const context = certificates ? { certificates } : {};
  // attest-blob puts the whole DSSE envelope (JSON) where sign-blob puts the signature (which may,
  // for RSA, happen to start with "{" too: only JSON counts as an envelope).
  const envelopeJson = signature[0] === 0x7b ? jsonOrUndefined(signature) : undefined;
  if (envelopeJson !== undefined) {
    const envelope = parseDsseEnvelope(envelopeJson, "the cosign bundle's DSSE envelope");
    return { kind: 'attestation', mediaType: cosignBundleMediaType, attestation: attestationFromEnvelope(envelope, { format: 'sigstore-bundle', ...context }) };
  }
  const covered = requiredSubject(subjectDigest, 'a cosign bundle');
  return {
    kind: 'signature',
    mediaType: cosignBundleMediaType,
    signature: { format: 'sigstore-bundle', subjectDigest: formatDigest(covered.algorithm, covered.digest), message: { signed: { kind: 'digest', ...covered }, signature: nonEmpty(signature, 'the cosign bundle signature'), ...context } },
  };
}

/** cosign writes `cert` as base64 of the PEM; a bare PEM or base64 DER is read too. */
function legacyCertificates(cert: string): Buffer[] {
  if (cert.includes('-----BEGIN')) return pemBlocks(cert, 'CERTIFICATE', 'the cosign bundle cert');
  const decoded = decodeBase64(cert, 'the cosign bundle cert');
  const text = decoded.toString('latin1');
  return text.includes('-----BEGIN') ? pemBlocks(text, 'CERTIFICATE', 'the cosign bundle cert') : [decoded];
}

function jsonOrUndefined(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function requiredSubject(subjectDigest: string | undefined, what: string): { algorithm: DigestAlgorithm; digest: Buffer } {
  if (subjectDigest === undefined) throw new FormatError(`${what} does not name what it signs: the subject digest is needed`);
  return parseDigest(subjectDigest, 'the subject digest');
}

function nonEmpty(signature: Buffer, what: string): Buffer {
  if (signature.length === 0) throw new FormatError(`${what} is empty`);
  return signature;
}

/**
 * cosign's public-key hint is base64(sha256(SPKI DER)); it is rendered as hex so that it equals
 * keyIdOf(key). Any other hint is kept as it is.
 */
export function normalizeHint(hint: string): string {
  if (/^[A-Za-z0-9+/]{43}=$/.test(hint)) return Buffer.from(hint, 'base64').toString('hex');
  return hint;
}
