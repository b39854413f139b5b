import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { FormatError, type ParsedSignature } from '../types.ts';
import { type CborValue, decodeCbor, encodeCborArray, isCborTag } from './cbor.ts';
import { checkShape, decodeBase64, decodeBase64Url, parseDigest, parseJson } from './encoding.ts';

/**
 * Notary Project signatures (notation v1.3), in either envelope notation writes:
 * - JWS JSON serialization (application/jose+json): the signed message is the JWS signing input,
 *   the ASCII bytes of `<protected>.<payload>`;
 * - COSE_Sign1 (application/cose): the signed message is the CBOR Sig_structure
 *   ["Signature1", protected, h'', payload].
 * Both carry the signing certificate chain (x5c / x5chain, leaf first) and a payload naming the
 * signed manifest: {targetArtifact: {mediaType, digest, size}}.
 * Timestamp countersignatures (io.cncf.notary.timestampSignature) are not read.
 */

export const notationMediaTypes = {
  /** Artifact type (or config media type) of a notation signature manifest. */
  signature: 'application/vnd.cncf.notary.signature',
  jws: 'application/jose+json',
  cose: 'application/cose',
  payload: 'application/vnd.cncf.notary.payload.v1+json',
} as const;

/** A notation signature; the envelope's expiry and signing scheme beyond what ParsedSignature holds. */
export interface NotationSignature extends ParsedSignature {
  format: 'notation';
  signingScheme: 'notary.x509' | 'notary.x509.signingAuthority';
  /** io.cncf.notary.expiry: the signature must not be trusted after this time. */
  expiresAt?: Date;
  signingAgent?: string;
}

const jwsAlgorithms = ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
/** COSE algorithm identifiers (RFC 9053, RFC 8230) notation uses, by their JWS names. */
const coseAlgorithms = new Map<number, string>([[-37, 'PS256'], [-38, 'PS384'], [-39, 'PS512'], [-7, 'ES256'], [-35, 'ES384'], [-36, 'ES512']]);

const headers = {
  signingScheme: 'io.cncf.notary.signingScheme',
  signingTime: 'io.cncf.notary.signingTime',
  authenticSigningTime: 'io.cncf.notary.authenticSigningTime',
  expiry: 'io.cncf.notary.expiry',
  verificationPlugin: 'io.cncf.notary.verificationPlugin',
  verificationPluginMinVersion: 'io.cncf.notary.verificationPluginMinVersion',
  signingAgent: 'io.cncf.notary.signingAgent',
} as const;
const understoodCritical: string[] = [headers.signingScheme, headers.authenticSigningTime, headers.expiry, headers.verificationPlugin, headers.verificationPluginMinVersion];

/** The protected header of either envelope, read into one shape. */
interface ProtectedHeader {
  alg: unknown;
  cty: unknown;
  crit: unknown;
  /** Whether a header is present, by its (string) name. */
  has(name: string): boolean;
  get(name: string): unknown;
  /** A time header as a Date (RFC 3339 in JWS, a tag-1 epoch in COSE). */
  time(name: string): Date | undefined;
}

export function parseNotationSignature(body: Buffer, mediaType: string): NotationSignature {
  if (mediaType === notationMediaTypes.cose) return parseNotationCose(body);
  if (mediaType === notationMediaTypes.jws) return parseNotationJws(body);
  throw new FormatError(`a notation signature envelope is ${notationMediaTypes.jws} or ${notationMediaTypes.cose}, not ${mediaType}`);
}

const jwsShape = z.looseObject({
  protected: z.string(),
  payload: z.string(),
  signature: z.string(),
  header: z.looseObject({ x5c: z.array(z.string()).min(1, 'x5c must hold the signing certificate chain'), [headers.signingAgent]: z.string().optional() }),
});

/** A notation JWS envelope (flattened JSON serialization). */
export function parseNotationJws(body: Buffer | unknown): NotationSignature {
  const value = Buffer.isBuffer(body) ? parseJson(body, 'the notation JWS envelope') : body;
  if (typeof value === 'object' && value !== null && 'signatures' in value) throw new FormatError('the notation JWS envelope must use the flattened JSON serialization, not the general one');
  const jws = checkShape(jwsShape, value, 'the notation JWS envelope');
  const protectedJson = parseJson(decodeBase64Url(jws.protected, 'the JWS protected header'), 'the JWS protected header');
  if (typeof protectedJson !== 'object' || protectedJson === null || Array.isArray(protectedJson)) throw new FormatError('the JWS protected header is not a JSON object');
  const fields = protectedJson as Record<string, unknown>;
  const header: ProtectedHeader = {
    alg: fields.alg,
    cty: fields.cty,
    crit: fields.crit,
    has: (name) => Object.hasOwn(fields, name),
    get: (name) => fields[name],
    time: (name) => {
      const text = fields[name];
      if (text === undefined) return undefined;
      const date = typeof text === 'string' && /^\d{4}-\d\d-\d\dT/.test(text) ? new Date(text) : undefined;
      if (!date || Number.isNaN(date.getTime())) throw new FormatError(`the JWS header ${name} is not an RFC 3339 time`);
      return date;
    },
  };
  const certificates = jws.header.x5c.map((c, i) => decodeBase64(c, `x5c certificate ${i}`));
  const payload = decodeBase64Url(jws.payload, 'the JWS payload');
  return notationSignature({
    header,
    payload,
    signed: Buffer.from(`${jws.protected}.${jws.payload}`, 'ascii'),
    signature: decodeBase64Url(jws.signature, 'the JWS signature'),
    certificates,
    signingAgent: jws.header[headers.signingAgent],
  });
}

/** A notation COSE_Sign1 envelope (CBOR tag 18, attached payload). */
export function parseNotationCose(body: Buffer): NotationSignature {
  const decoded = decodeCbor(body, 'the COSE envelope');
  const sign1 = isCborTag(decoded) ? (decoded.tag === 18 ? decoded.value : undefined) : decoded;
  if (!Array.isArray(sign1) || sign1.length !== 4) throw new FormatError('the COSE envelope is not a COSE_Sign1 structure');
  const [protectedBytes, unprotected, payload, signature] = sign1;
  if (!Buffer.isBuffer(protectedBytes) || !(unprotected instanceof Map) || !Buffer.isBuffer(signature)) throw new FormatError('the COSE_Sign1 structure is malformed');
  if (!Buffer.isBuffer(payload)) throw new FormatError('the COSE envelope has a detached payload; notation attaches it');
  const fields = protectedBytes.length === 0 ? new Map<number | string, CborValue>() : decodeCbor(protectedBytes, 'the COSE protected header');
  if (!(fields instanceof Map)) throw new FormatError('the COSE protected header is not a map');
  const algorithm = fields.get(1);
  const crit = fields.get(2);
  const header: ProtectedHeader = {
    alg: typeof algorithm === 'number' ? (coseAlgorithms.get(algorithm) ?? `COSE algorithm ${algorithm}`) : algorithm,
    cty: fields.get(3),
    crit,
    has: (name) => fields.has(name),
    get: (name) => fields.get(name),
    time: (name) => {
      const value = fields.get(name);
      if (value === undefined) return undefined;
      if (!isCborTag(value) || value.tag !== 1 || typeof value.value !== 'number') throw new FormatError(`the COSE header ${name} is not a tag-1 epoch time`);
      return new Date(value.value * 1000);
    },
  };
  const chain = unprotected.get(33) ?? fields.get(33);
  const certificates = Buffer.isBuffer(chain) ? [chain] : Array.isArray(chain) && chain.every((c) => Buffer.isBuffer(c)) ? (chain as Buffer[]) : undefined;
  if (!certificates || certificates.length === 0) throw new FormatError('the COSE envelope has no x5chain (label 33) certificate chain');
  const agent = unprotected.get(headers.signingAgent);
  return notationSignature({
    header,
    payload,
    signed: encodeCborArray(['Signature1', protectedBytes, Buffer.alloc(0), payload]),
    signature,
    certificates,
    signingAgent: typeof agent === 'string' ? agent : undefined,
  });
}

const payloadShape = z.looseObject({
  targetArtifact: z.looseObject({ mediaType: z.string(), digest: z.string(), size: z.number().int().nonnegative() }),
});

function notationSignature(envelope: { header: ProtectedHeader; payload: Buffer; signed: Buffer; signature: Buffer; certificates: Buffer[]; signingAgent: string | undefined }): NotationSignature {
  const { header } = envelope;
  if (typeof header.alg !== 'string' || !jwsAlgorithms.includes(header.alg)) {
    throw new FormatError(`the notation signature algorithm ${JSON.stringify(header.alg)} is not one of ${jwsAlgorithms.join(', ')}`);
  }
  if (header.cty !== notationMediaTypes.payload) throw new FormatError(`the notation content type is ${JSON.stringify(header.cty)}, not ${notationMediaTypes.payload}`);
  if (!Array.isArray(header.crit) || !header.crit.includes(headers.signingScheme)) throw new FormatError(`the notation header crit must list ${headers.signingScheme}`);
  for (const name of header.crit) {
    if (typeof name !== 'string' || !understoodCritical.includes(name)) throw new FormatError(`the notation header marks ${JSON.stringify(name)} critical, which astore does not understand`);
    if (!header.has(name)) throw new FormatError(`the notation header marks ${name} critical but does not set it`);
  }
  if (header.has(headers.verificationPlugin)) throw new FormatError(`the notation signature requires the verification plugin ${JSON.stringify(header.get(headers.verificationPlugin))}, which astore does not run`);
  const signingScheme = header.get(headers.signingScheme);
  if (signingScheme !== 'notary.x509' && signingScheme !== 'notary.x509.signingAuthority') throw new FormatError(`the notation signing scheme ${JSON.stringify(signingScheme)} is not notary.x509 or notary.x509.signingAuthority`);
  const signedAt = signingScheme === 'notary.x509' ? header.time(headers.signingTime) : header.time(headers.authenticSigningTime);
  if (!signedAt) throw new FormatError(`the notation header has no ${signingScheme === 'notary.x509' ? headers.signingTime : headers.authenticSigningTime}`);
  if (signingScheme === 'notary.x509.signingAuthority' && !header.crit.includes(headers.authenticSigningTime)) throw new FormatError(`the notation header must mark ${headers.authenticSigningTime} critical`);
  const expiresAt = header.time(headers.expiry);
  if (expiresAt && !header.crit.includes(headers.expiry)) throw new FormatError(`the notation header must mark ${headers.expiry} critical`);

  const { targetArtifact } = checkShape(payloadShape, parseJson(envelope.payload, 'the notation payload'), 'the notation payload');
  parseDigest(targetArtifact.digest, 'the notation targetArtifact digest');
  for (const [i, der] of envelope.certificates.entries()) {
    try {
      new X509Certificate(der);
    } catch {
      throw new FormatError(`certificate ${i} of the notation signature chain is not a valid X.509 certificate`);
    }
  }
  if (envelope.signature.length === 0) throw new FormatError('the notation signature is empty');
  return {
    format: 'notation',
    subjectDigest: targetArtifact.digest,
    signedAt,
    signingScheme,
    ...(expiresAt && { expiresAt }),
    ...(envelope.signingAgent !== undefined && { signingAgent: envelope.signingAgent }),
    message: { signed: { kind: 'message', message: envelope.signed }, signature: envelope.signature, algorithm: header.alg, certificates: envelope.certificates },
  };
}
