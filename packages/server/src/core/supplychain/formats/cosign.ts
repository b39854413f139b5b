import { z } from 'zod';
import { FormatError, type ParsedSignature } from '../types.ts';
import { checkShape, decodeBase64, looksLikeBase64, parseDigest, parseJson, pemBlocks } from './encoding.ts';

/**
 * cosign's own signature formats (cosign v2.6.5, key-based):
 * - an image signature: a simple-signing payload layer (`sha256-<hex>.sig` tag, or an OCI referrer
 *   with artifactType application/vnd.dev.cosign.artifact.sig.v1+json), its base64 signature in the
 *   layer annotation dev.cosignproject.cosign/signature, over the payload bytes;
 * - a blob signature (`sign-blob --output-signature`): base64 of the signature over the blob's digest.
 */

export const cosignMediaTypes = {
  simpleSigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  signatureArtifact: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  sbomArtifact: 'application/vnd.dev.cosign.artifact.sbom.v1+json',
  /** astore's name for a bare `sign-blob --output-signature` file, which has no registered media type. */
  blobSignature: 'application/vnd.astore.cosign.signature.v1+base64',
} as const;

export const cosignAnnotations = {
  signature: 'dev.cosignproject.cosign/signature',
  /** PEM leaf certificate (keyless or --certificate signing). */
  certificate: 'dev.sigstore.cosign/certificate',
  /** PEM chain above the leaf. */
  chain: 'dev.sigstore.cosign/chain',
  /** Rekor bundle (transparency log), not read by astore. */
  bundle: 'dev.sigstore.cosign/bundle',
} as const;

export const simpleSigningType = 'cosign container image signature';

export interface SimpleSigningPayload {
  dockerReference: string;
  /** The signed manifest digest, "sha256:<hex>". */
  manifestDigest: string;
  /** cosign `-a key=value` annotations; null when none were given. */
  optional: Record<string, unknown> | null;
}

const payloadShape = z.looseObject({
  critical: z.looseObject({
    identity: z.looseObject({ 'docker-reference': z.string() }),
    image: z.looseObject({ 'docker-manifest-digest': z.string() }),
    type: z.string(),
  }),
  optional: z.record(z.string(), z.unknown()).nullable().optional(),
});

export function parseSimpleSigningPayload(payload: Buffer): SimpleSigningPayload {
  const parsed = checkShape(payloadShape, parseJson(payload, 'the cosign simple-signing payload'), 'the cosign simple-signing payload');
  const { critical } = parsed;
  if (critical.type !== simpleSigningType) throw new FormatError(`the cosign simple-signing payload has type ${JSON.stringify(critical.type)}, not "${simpleSigningType}"`);
  const manifestDigest = critical.image['docker-manifest-digest'];
  parseDigest(manifestDigest, 'the payload\'s docker-manifest-digest');
  return { dockerReference: critical.identity['docker-reference'], manifestDigest, optional: parsed.optional ?? null };
}

/**
 * A signature layer of a cosign signature manifest: the payload blob and the layer's annotations.
 * The signature covers the payload bytes exactly as stored; subjectDigest is the digest the payload
 * names (the caller compares it with the manifest the signature is attached to).
 */
export function cosignSignatureFromLayer(payload: Buffer, annotations: Record<string, string>): ParsedSignature {
  const { manifestDigest } = parseSimpleSigningPayload(payload);
  const encoded = annotations[cosignAnnotations.signature];
  if (encoded === undefined || encoded === '') throw new FormatError(`the cosign signature layer has no ${cosignAnnotations.signature} annotation`);
  const signature = decodeBase64(encoded, `the ${cosignAnnotations.signature} annotation`);
  if (signature.length === 0) throw new FormatError(`the ${cosignAnnotations.signature} annotation is empty`);
  const leaf = annotations[cosignAnnotations.certificate];
  const chain = annotations[cosignAnnotations.chain];
  const certificates = leaf
    ? [...pemBlocks(leaf, 'CERTIFICATE', `the ${cosignAnnotations.certificate} annotation`), ...(chain ? pemBlocks(chain, 'CERTIFICATE', `the ${cosignAnnotations.chain} annotation`) : [])]
    : undefined;
  return { format: 'cosign', subjectDigest: manifestDigest, message: { signed: { kind: 'message', message: payload }, signature, ...(certificates && { certificates }) } };
}

/**
 * A `cosign sign-blob --output-signature` file (base64, with or without a trailing newline; raw
 * signature bytes are accepted too) for the blob whose digest is `subjectDigest`: cosign signs the
 * blob's digest (SHA-256 for P-256 and RSA keys; a P-384 key signs SHA-384, which only verifies
 * against a sha384 subject digest).
 */
export function blobSignature(signatureBase64OrRaw: Buffer, subjectDigest: string): ParsedSignature {
  const text = signatureBase64OrRaw.toString('latin1');
  if (text.trim() === '') throw new FormatError('the cosign signature is empty');
  const signature = looksLikeBase64(text) ? decodeBase64(text.trim(), 'the cosign signature') : signatureBase64OrRaw;
  if (signature.length === 0) throw new FormatError('the cosign signature is empty');
  const { algorithm, digest } = parseDigest(subjectDigest, 'the subject digest');
  return { format: 'cosign', subjectDigest, message: { signed: { kind: 'digest', algorithm, digest }, signature } };
}
