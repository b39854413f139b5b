/**
 * The supply-chain format parsers: what the service calls. Everything here is pure (no clock, no
 * I/O beyond the readBlob the caller passes) and throws FormatError for a malformed document.
 *
 * - parseDocument: a document uploaded through the REST API for a subject.
 * - documentsInManifest: the documents an OCI manifest carries (cosign, notation, Sigstore bundle,
 *   SBOM referrers and cosign's legacy tags).
 * - verify.ts: signature and certificate-chain verification of what these return.
 */
export { type ParsedDocument, parseDocument, supplyChainMediaTypes } from './documents.ts';
export { documentsInManifest, type ManifestDocument, type ManifestLike } from './oci-manifest.ts';
export { keyIdOf, verifyCertificateChain, verifySignedMessage } from './verify.ts';
export type { NotationSignature } from './notation.ts';
export { parseSbomValue } from './sbom.ts';
