import { FormatError, type ParsedAttestation, type ParsedSbom, type ParsedSignature, type RecordFormat } from '../types.ts';
import { blobSignature, cosignMediaTypes } from './cosign.ts';
import { inTotoPayloadType, parseDsseAttestation } from './dsse.ts';
import { looksLikeBase64, parseJson } from './encoding.ts';
import { notationMediaTypes, parseNotationCose, parseNotationJws } from './notation.ts';
import { type SbomFormat, parseSbomValue, sbomFormatOf, sbomMediaTypes } from './sbom.ts';
import { cosignBundleMediaType, isSigstoreBundleMediaType, parseSigstoreBundle, sigstoreBundleMediaTypes } from './sigstore-bundle.ts';

export type ParsedDocument =
  | { kind: 'signature'; format: RecordFormat; mediaType: string; signature: ParsedSignature }
  | { kind: 'attestation'; format: RecordFormat; mediaType: string; attestation: ParsedAttestation }
  | { kind: 'sbom'; format: RecordFormat; mediaType: string; sbom: ParsedSbom };

/**
 * The media types of supply-chain documents and of the manifests that carry them. The two
 * `application/vnd.astore.*` names are astore's own, for cosign files that have no registered type;
 * a ParsedDocument's mediaType always parses back to the same document through parseDocument.
 */
export const supplyChainMediaTypes = {
  cosignSimpleSigning: cosignMediaTypes.simpleSigning,
  cosignSignatureArtifact: cosignMediaTypes.signatureArtifact,
  cosignSbomArtifact: cosignMediaTypes.sbomArtifact,
  cosignBlobSignature: cosignMediaTypes.blobSignature,
  cosignBundle: cosignBundleMediaType,
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  inToto: inTotoPayloadType,
  notarySignature: notationMediaTypes.signature,
  jose: notationMediaTypes.jws,
  cose: notationMediaTypes.cose,
  sigstoreBundleV01: sigstoreBundleMediaTypes.v01,
  sigstoreBundleV02: sigstoreBundleMediaTypes.v02,
  sigstoreBundleV03: sigstoreBundleMediaTypes.v03,
  spdxJson: sbomMediaTypes.spdxJson,
  spdxJsonText: sbomMediaTypes.spdxJsonText,
  cyclonedxJson: sbomMediaTypes.cyclonedxJson,
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Media types that say nothing about the document: it is then recognised by its shape. */
const genericMediaTypes = new Set(['', 'application/json', 'text/json', 'text/plain', 'application/octet-stream', 'binary/octet-stream', 'application/vnd.oci.image.layer.v1.tar']);

/** Lower case, parameters dropped, except the `version` a v0.1/v0.2 Sigstore bundle type needs. */
export function normalizeMediaType(mediaType: string): string {
  const normalized = mediaType.trim().toLowerCase();
  if (isSigstoreBundleMediaType(normalized)) return normalized.replace(/\s+/g, '');
  return normalized.split(';')[0]!.trim();
}

export function isGenericMediaType(mediaType: string): boolean {
  return genericMediaTypes.has(normalizeMediaType(mediaType));
}

/**
 * A document uploaded through the REST API for a subject (an S3 object or image digest). The media
 * type, when given and specific, decides; a generic one (application/json, text/plain,
 * application/octet-stream) or none means the document is recognised by its JSON shape, a bare
 * base64 line being a cosign blob signature. Claims in the document (the digest a signature covers,
 * an attestation's subjects) are returned, not compared with `subjectDigest`: the caller does that.
 * Throws FormatError.
 */
export function parseDocument(body: Buffer, hint: { mediaType?: string; subjectDigest: string }): ParsedDocument {
  if (body.length === 0) throw new FormatError('the document is empty');
  const mediaType = hint.mediaType === undefined ? '' : normalizeMediaType(hint.mediaType);
  if (genericMediaTypes.has(mediaType)) return sniff(body, hint.subjectDigest);
  if (isSigstoreBundleMediaType(mediaType) || mediaType === cosignBundleMediaType) {
    const value = parseJson(body, 'the bundle');
    if (mediaType === cosignBundleMediaType && !(typeof value === 'object' && value !== null && 'base64Signature' in value)) throw new FormatError('a cosign bundle has a base64Signature');
    return bundleDocument(value, hint.subjectDigest);
  }
  switch (mediaType) {
    case supplyChainMediaTypes.dsseEnvelope:
    case supplyChainMediaTypes.inToto:
      return attestationDocument(parseJson(body, 'the DSSE envelope'));
    case supplyChainMediaTypes.jose:
      return { kind: 'signature', format: 'notation', mediaType, signature: parseNotationJws(body) };
    case supplyChainMediaTypes.cose:
      return { kind: 'signature', format: 'notation', mediaType, signature: parseNotationCose(body) };
    case supplyChainMediaTypes.spdxJson:
    case supplyChainMediaTypes.spdxJsonText:
      return sbomDocument(parseJson(body, 'the SPDX SBOM'), 'spdx');
    case supplyChainMediaTypes.cyclonedxJson:
      return sbomDocument(parseJson(body, 'the CycloneDX SBOM'), 'cyclonedx');
    case supplyChainMediaTypes.cosignBlobSignature:
      return { kind: 'signature', format: 'cosign', mediaType, signature: blobSignature(body, hint.subjectDigest) };
    case supplyChainMediaTypes.cosignSimpleSigning:
      throw new FormatError('a cosign simple-signing payload is signed in its registry manifest; upload a Sigstore bundle (cosign sign-blob --bundle) instead');
    default:
      throw new FormatError(`${mediaType} is not a supported supply-chain document type (${unsupportedHint(mediaType)})`);
  }
}

function unsupportedHint(mediaType: string): string {
  if (mediaType === 'text/spdx') return 'SPDX tag-value is not supported; use SPDX JSON';
  if (mediaType.startsWith('application/vnd.cyclonedx')) return 'only CycloneDX JSON is supported';
  return 'supported: Sigstore bundles, DSSE envelopes, notation JWS/COSE, cosign signatures, SPDX and CycloneDX JSON';
}

/** Recognises a document by its shape. */
function sniff(body: Buffer, subjectDigest: string): ParsedDocument {
  const start = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0; // UTF-8 byte-order mark
  const first = body.subarray(start).find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (first === 0x7b /* { */) return sniffJson(parseJson(body, 'the document'), subjectDigest);
  if (first === 0xd2 /* CBOR tag 18: COSE_Sign1 */) {
    return { kind: 'signature', format: 'notation', mediaType: supplyChainMediaTypes.cose, signature: parseNotationCose(body) };
  }
  if (looksLikeBase64(body.toString('latin1')) || first === 0x30 /* a DER signature */) {
    return { kind: 'signature', format: 'cosign', mediaType: supplyChainMediaTypes.cosignBlobSignature, signature: blobSignature(body, subjectDigest) };
  }
  throw new FormatError('the document is not a recognised supply-chain document (a JSON bundle, envelope or SBOM, or a base64 cosign signature)');
}

function sniffJson(value: unknown, subjectDigest: string): ParsedDocument {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormatError('the document is JSON but not an object');
  const has = (key: string) => key in value;
  if (has('mediaType') && typeof (value as { mediaType: unknown }).mediaType === 'string' && isSigstoreBundleMediaType((value as { mediaType: string }).mediaType)) return bundleDocument(value, subjectDigest);
  if (has('base64Signature')) return bundleDocument(value, subjectDigest);
  if (has('payloadType')) return attestationDocument(value);
  if (has('protected') && has('signature')) return { kind: 'signature', format: 'notation', mediaType: supplyChainMediaTypes.jose, signature: parseNotationJws(value) };
  const sbomFormat = sbomFormatOf(value);
  if (sbomFormat) return sbomDocument(value, sbomFormat);
  if (has('_type') && has('predicateType')) throw new FormatError('the document is a bare in-toto statement; attestations are accepted in a signed DSSE envelope or Sigstore bundle');
  throw new FormatError('the JSON document is not a Sigstore or cosign bundle, DSSE envelope, notation JWS envelope, SPDX or CycloneDX document');
}

export function bundleDocument(value: unknown, subjectDigest: string | undefined): ParsedDocument {
  const bundle = parseSigstoreBundle(value, subjectDigest);
  return bundle.kind === 'signature'
    ? { kind: 'signature', format: 'sigstore-bundle', mediaType: bundle.mediaType, signature: bundle.signature }
    : { kind: 'attestation', format: 'sigstore-bundle', mediaType: bundle.mediaType, attestation: bundle.attestation };
}

export function attestationDocument(value: unknown, certificates?: Buffer[]): ParsedDocument {
  const attestation = parseDsseAttestation(value);
  if (certificates?.length) for (const message of attestation.signatures) message.certificates = certificates;
  return { kind: 'attestation', format: 'dsse', mediaType: supplyChainMediaTypes.dsseEnvelope, attestation };
}

export function sbomDocument(value: unknown, format: SbomFormat): ParsedDocument {
  const sbom = parseSbomValue(value, format);
  return { kind: 'sbom', format: sbom.format, mediaType: format === 'spdx' ? supplyChainMediaTypes.spdxJson : supplyChainMediaTypes.cyclonedxJson, sbom };
}
