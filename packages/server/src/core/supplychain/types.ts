/**
 * The supply-chain vocabulary shared by the format parsers (./formats), the signing keys, the
 * MetaStore (storage/meta: SupplyChainMeta) and the service that verifies and enforces.
 *
 * A record (signature, SBOM, attestation) is attached to a subject digest: an S3 object's sha256 or
 * an OCI manifest's digest. Formats are parsed and checked when a record arrives; what a verifier
 * needs later is kept as a SignedMessage (the exact bytes or digest that were signed, the signature,
 * and the certificate chain if the signature carries one).
 */

export type RecordKind = 'signature' | 'sbom' | 'attestation';

/**
 * cosign: a simple-signing payload and its signature (OCI `.sig` tag layer or referrer).
 * sigstore-bundle: a Sigstore bundle (cosign sign-blob/attest --bundle, old or v0.x protobuf JSON).
 * notation: a Notary Project JWS envelope.
 * dsse: an in-toto Statement in a DSSE envelope (cosign attest, any attestation).
 * spdx / cyclonedx: SBOM documents.
 */
export type RecordFormat = 'cosign' | 'sigstore-bundle' | 'notation' | 'dsse' | 'spdx' | 'cyclonedx';

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa';

/**
 * What was signed: the message itself, or (for signatures made over a blob the server does not keep
 * in memory) only its digest. Ed25519 needs the message; ECDSA and RSA PKCS#1 v1.5 verify a digest.
 */
export type Signed = { kind: 'message'; message: Buffer } | { kind: 'digest'; algorithm: 'sha256' | 'sha384' | 'sha512'; digest: Buffer };

export interface SignedMessage {
  signed: Signed;
  signature: Buffer;
  /**
   * The signature algorithm when the envelope names it (JWS `alg`: ES256, PS256, RS256, EdDSA...);
   * otherwise it follows from the key (ECDSA with SHA-256 for P-256, PKCS#1 v1.5 SHA-256 for RSA).
   */
  algorithm?: string;
  /** Key id or public-key hint the envelope carries, if any. */
  keyHint?: string;
  /** Certificate chain, leaf first, DER; present for notation and certificate-bearing bundles. */
  certificates?: Buffer[];
}

/** A signature, whatever its format, as the verifier sees it. */
export interface ParsedSignature {
  format: 'cosign' | 'sigstore-bundle' | 'notation';
  /** The digest the signature says it covers, "sha256:<hex>" (or sha512). */
  subjectDigest: string;
  message: SignedMessage;
  /** When the envelope states a signing time (notation). */
  signedAt?: Date;
}

export interface AttestationFacts {
  predicateType: string;
  /** SLSA provenance: runDetails.builder.id (v1) or builder.id (v0.2). */
  builderId?: string;
  buildType?: string;
  /** SLSA resolvedDependencies / materials. */
  materials: { uri?: string; digest?: Record<string, string> }[];
}

/** An in-toto Statement in a DSSE envelope, with its signatures. */
export interface ParsedAttestation {
  format: 'dsse' | 'sigstore-bundle';
  statementType: string;
  /** Subject digests the statement names, "sha256:<hex>". */
  subjectDigests: string[];
  facts: AttestationFacts;
  /** Each DSSE signature over PAE(payloadType, payload). Empty when the envelope is unsigned. */
  signatures: SignedMessage[];
  /** The predicate, for SBOM predicates (SPDX / CycloneDX) whose components are indexed too. */
  predicate: unknown;
}

export interface SbomComponent {
  name: string;
  version?: string;
  /** Package URL, e.g. pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 */
  purl?: string;
  licenses: string[];
  hashes: { algorithm: string; value: string }[];
}

export interface ParsedSbom {
  format: 'spdx' | 'cyclonedx';
  specVersion: string;
  /** Document name (SPDX name, CycloneDX metadata.component.name). */
  name?: string;
  components: SbomComponent[];
}

/** A malformed or unverifiable document: the message names what is wrong. */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}
