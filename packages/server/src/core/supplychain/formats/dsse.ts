import { z } from 'zod';
import { type AttestationFacts, FormatError, type ParsedAttestation, type SignedMessage } from '../types.ts';
import { checkShape, decodeBase64, parseJson } from './encoding.ts';

/**
 * DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1) carrying in-toto
 * Statements (v0.1 and v1), as `cosign attest` / `attest-blob` and Sigstore bundles hold them, and
 * the facts of the predicates the policies ask about (SLSA provenance).
 */

export const inTotoPayloadType = 'application/vnd.in-toto+json';
export const statementTypes = ['https://in-toto.io/Statement/v0.1', 'https://in-toto.io/Statement/v1'] as const;
export const slsaProvenance = {
  v1: 'https://slsa.dev/provenance/v1',
  v02: 'https://slsa.dev/provenance/v0.2',
  v01: 'https://slsa.dev/provenance/v0.1',
} as const;

export interface DsseEnvelope {
  payloadType: string;
  payload: Buffer;
  /** Empty when the envelope is unsigned; `keyid` only when non-empty (cosign writes ""). */
  signatures: { keyid?: string; sig: Buffer }[];
}

export interface InTotoStatement {
  statementType: string;
  /** Subject digests as "sha256:<hex>" (also sha384 / sha512); other algorithms are not listed. */
  subjectDigests: string[];
  predicateType: string;
  predicate: unknown;
}

const envelopeShape = z.looseObject({
  payloadType: z.string(),
  payload: z.string(),
  // Protobuf JSON (Sigstore bundles) omits an empty repeated field: no signatures is unsigned.
  signatures: z.array(z.looseObject({ keyid: z.string().optional(), sig: z.string() })).optional(),
});

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
export function paeEncode(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** Reads a DSSE envelope (parsed JSON); the payload and signatures are decoded, not yet checked. */
export function parseDsseEnvelope(value: unknown, what = 'the DSSE envelope'): DsseEnvelope {
  const envelope = checkShape(envelopeShape, value, what);
  const signatures = (envelope.signatures ?? []).map((s, i) => {
    const sig = decodeBase64(s.sig, `${what} signature ${i}`);
    if (sig.length === 0) throw new FormatError(`${what} signature ${i} is empty`);
    return { ...(s.keyid ? { keyid: s.keyid } : {}), sig };
  });
  return { payloadType: envelope.payloadType, payload: decodeBase64(envelope.payload, `${what} payload`), signatures };
}

const digestSet = z.record(z.string(), z.string());
const statementShape = z.looseObject({
  _type: z.string(),
  subject: z.array(z.looseObject({ name: z.string().optional(), digest: digestSet })).min(1, 'a statement names at least one subject'),
  predicateType: z.string().min(1, 'predicateType is required'),
  predicate: z.unknown().optional(),
});

const subjectHexLength: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Reads an in-toto Statement (v0.1 or v1) from a DSSE payload. */
export function parseInTotoStatement(payload: Buffer): InTotoStatement {
  const statement = checkShape(statementShape, parseJson(payload, 'the in-toto statement'), 'the in-toto statement');
  if (!(statementTypes as readonly string[]).includes(statement._type)) {
    throw new FormatError(`the in-toto statement type ${JSON.stringify(statement._type)} is not supported (expected ${statementTypes.join(' or ')})`);
  }
  const subjectDigests: string[] = [];
  for (const [i, subject] of statement.subject.entries()) {
    for (const [algorithm, value] of Object.entries(subject.digest)) {
      const length = subjectHexLength[algorithm];
      if (length === undefined) continue;
      if (value.length !== length || !/^[0-9a-fA-F]+$/.test(value)) throw new FormatError(`the in-toto statement's subject[${i}].digest.${algorithm} is not a ${algorithm} hex digest`);
      subjectDigests.push(`${algorithm}:${value.toLowerCase()}`);
    }
  }
  if (subjectDigests.length === 0) throw new FormatError('the in-toto statement names no subject by a sha256, sha384 or sha512 digest');
  return { statementType: statement._type, subjectDigests, predicateType: statement.predicateType, predicate: statement.predicate };
}

const material = z.looseObject({ uri: z.string().optional(), digest: digestSet.optional() });
const slsaV1 = z.looseObject({
  buildDefinition: z.looseObject({ buildType: z.string(), resolvedDependencies: z.array(material).optional() }),
  runDetails: z.looseObject({ builder: z.looseObject({ id: z.string() }) }),
});
const slsaV02 = z.looseObject({ builder: z.looseObject({ id: z.string() }), buildType: z.string(), materials: z.array(material).optional() });
const slsaV01 = z.looseObject({ builder: z.looseObject({ id: z.string() }), recipe: z.looseObject({ type: z.string() }).optional(), materials: z.array(material).optional() });

/**
 * What policies ask of a predicate. SLSA provenance v1 / v0.2 / v0.1 yield the builder, build type
 * and materials (a SLSA predicate without them is refused); any other predicate type (test results,
 * vulnerability scans, SPDX / CycloneDX) has only its type and no materials.
 */
export function attestationFacts(predicateType: string, predicate: unknown): AttestationFacts {
  const materials = (list: z.infer<typeof material>[] | undefined) => (list ?? []).map((m) => ({ ...(m.uri !== undefined && { uri: m.uri }), ...(m.digest !== undefined && { digest: m.digest }) }));
  switch (predicateType) {
    case slsaProvenance.v1: {
      const p = checkShape(slsaV1, predicate, 'the SLSA provenance v1 predicate');
      return { predicateType, builderId: p.runDetails.builder.id, buildType: p.buildDefinition.buildType, materials: materials(p.buildDefinition.resolvedDependencies) };
    }
    case slsaProvenance.v02: {
      const p = checkShape(slsaV02, predicate, 'the SLSA provenance v0.2 predicate');
      return { predicateType, builderId: p.builder.id, buildType: p.buildType, materials: materials(p.materials) };
    }
    case slsaProvenance.v01: {
      const p = checkShape(slsaV01, predicate, 'the SLSA provenance v0.1 predicate');
      return { predicateType, builderId: p.builder.id, ...(p.recipe && { buildType: p.recipe.type }), materials: materials(p.materials) };
    }
    default:
      return { predicateType, materials: [] };
  }
}

export interface EnvelopeContext {
  format: ParsedAttestation['format'];
  /** Certificate chain (leaf first) the surrounding bundle carries for the signer. */
  certificates?: Buffer[];
  /** Key hint of the surrounding bundle, used when a signature has no keyid. */
  keyHint?: string;
}

/** The statement of an envelope, refused unless its payload type is in-toto JSON. */
export function statementOf(envelope: DsseEnvelope): InTotoStatement {
  if (envelope.payloadType !== inTotoPayloadType) {
    throw new FormatError(`the DSSE payload type is ${JSON.stringify(envelope.payloadType)}; only ${inTotoPayloadType} (an in-toto statement) is accepted`);
  }
  return parseInTotoStatement(envelope.payload);
}

/** Each signature of the envelope as a SignedMessage over PAE(payloadType, payload). */
export function envelopeMessages(envelope: DsseEnvelope, context: Omit<EnvelopeContext, 'format'> = {}): SignedMessage[] {
  const pae = paeEncode(envelope.payloadType, envelope.payload);
  return envelope.signatures.map(({ keyid, sig }) => {
    const keyHint = keyid ?? context.keyHint;
    return {
      signed: { kind: 'message', message: pae },
      signature: sig,
      ...(keyHint !== undefined && { keyHint }),
      ...(context.certificates !== undefined && context.certificates.length > 0 && { certificates: context.certificates }),
    };
  });
}

export function attestationFromEnvelope(envelope: DsseEnvelope, context: EnvelopeContext): ParsedAttestation {
  const statement = statementOf(envelope);
  return {
    format: context.format,
    statementType: statement.statementType,
    subjectDigests: statement.subjectDigests,
    facts: attestationFacts(statement.predicateType, statement.predicate),
    signatures: envelopeMessages(envelope, context),
    predicate: statement.predicate,
  };
}

/** A DSSE envelope document (cosign `.att` layer, `attest-blob --output-attestation`, REST upload). */
export function parseDsseAttestation(value: unknown): ParsedAttestation {
  return attestationFromEnvelope(parseDsseEnvelope(value), { format: 'dsse' });
}
