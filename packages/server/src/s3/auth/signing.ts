/**
 * SigV4 primitives shared by header auth, query auth and the aws-chunked decoder: the credential
 * scope, the X-Amz-Date format, signing-key derivation (cached) and constant-time comparison.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AstoreError } from '../../core/errors.ts';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const ALGORITHM_V4A = 'AWS4-ECDSA-P256-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** What the aws-chunked decoder needs to verify chunk and trailer signatures of one request. */
export interface ChunkSigningContext {
  signingKey: Buffer;
  /** The request's own signature; the first chunk chains from it. */
  seedSignature: string;
  /** ISO 8601 basic timestamp used in the request's string to sign, e.g. 20130524T000000Z. */
  amzDate: string;
  /** `<yyyymmdd>/<region>/<service>/aws4_request` */
  scope: string;
}

/** How the request body is protected; chosen by x-amz-content-sha256 (or X-Amz-Content-Sha256 in a presigned URL). */
export type PayloadMode =
  | { kind: 'signed'; sha256: string } // lower-case hex; the caller checks the body against it while streaming
  | { kind: 'unsigned' } // UNSIGNED-PAYLOAD, and presigned URLs without X-Amz-Content-Sha256
  | { kind: 'streaming-signed'; trailer: boolean } // STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]
  | { kind: 'streaming-unsigned-trailer' }; // STREAMING-UNSIGNED-PAYLOAD-TRAILER

/** What a request claims about its signature, parsed from the Authorization header or the query. */
export interface SignatureClaim {
  scope: CredentialScope;
  /** Lower-cased, in the order the client listed them. */
  signedHeaders: string[];
  signature: string;
  /** ISO 8601 basic timestamp of the string to sign. */
  amzDate: string;
  requestTime: Date;
  /** Last line of the canonical request, exactly as the client declared it. */
  payloadHash: string;
  payload: PayloadMode;
}

/** The parts of `Credential=<akid>/<date>/<region>/<service>/aws4_request`. */
export interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

/** Builds the error of the auth mode at hand (header: AuthorizationHeaderMalformed, query: ...ParametersError). */
export type MalformedError = (message: string, detail?: Record<string, string>) => AstoreError;

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmacHex(key: Uint8Array, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export function scopeString(scope: Omit<CredentialScope, 'accessKeyId'>): string {
  return `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
}

export function parseCredential(value: string, malformed: MalformedError): CredentialScope {
  const parts = value.split('/');
  const [accessKeyId, date, region, service, terminal] = parts;
  if (parts.length !== 5 || !accessKeyId || !date || !region || !service || !terminal) {
    throw malformed('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
  }
  if (terminal !== 'aws4_request') {
    throw malformed(`incorrect terminal '${terminal}'. This endpoint uses 'aws4_request'.`);
  }
  return { accessKeyId, date, region, service };
}

/** Region, service and date of the scope must match this server and the request's timestamp. */
export function checkScope(
  scope: CredentialScope,
  expected: { region: string; service: string; amzDate: string },
  malformed: MalformedError,
): void {
  if (scope.region !== expected.region) {
    throw malformed(`the region '${scope.region}' is wrong; expecting '${expected.region}'`, { Region: expected.region });
  }
  if (scope.service !== expected.service) {
    throw malformed(`incorrect service '${scope.service}'. This endpoint belongs to '${expected.service}'.`);
  }
  if (scope.date !== expected.amzDate.slice(0, 8)) {
    throw malformed(`Invalid credential date '${scope.date}'. Date is not the same as X-Amz-Date: '${expected.amzDate.slice(0, 8)}'.`);
  }
}

/** `host;x-amz-date;...` → names; host must be among them, as S3 requires. */
export function parseSignedHeaders(value: string, malformed: MalformedError): string[] {
  const names = value.split(';').map((name) => name.toLowerCase());
  if (names.some((name) => !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name))) {
    throw malformed(`the SignedHeaders list '${value}' is mal-formed.`);
  }
  if (!names.includes('host')) throw malformed("the host header must be signed (missing from SignedHeaders).");
  return names;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses `yyyyMMdd'T'HHmmss'Z'`; null when the text is not exactly that or not a real instant. */
export function parseAmzDate(value: string): Date | null {
  const m = AMZ_DATE.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return formatAmzDate(date) === value ? date : null;
}

export function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

const KEY_CACHE_LIMIT = 128;
const keyCache = new Map<string, Buffer>();

/**
 * kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request"), cached per
 * (secret, date, region, service). The cache is keyed by a hash of the secret, bounded, least recently
 * used first out; a rotated secret simply misses.
 */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${sha256Hex(secret)}/${date}/${region}/${service}`;
  const cached = keyCache.get(id);
  if (cached) {
    keyCache.delete(id);
    keyCache.set(id, cached);
    return cached;
  }
  let key = createHmac('sha256', 'AWS4' + secret).update(date).digest();
  for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  keyCache.set(id, key);
  if (keyCache.size > KEY_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value as string);
  return key;
}

/** Constant-time comparison of a computed hex signature with the one the client sent. */
export function signaturesEqual(computedHex: string, providedHex: string): boolean {
  if (!/^[0-9a-f]{64}$/i.test(providedHex)) return false;
  return timingSafeEqual(Buffer.from(computedHex, 'hex'), Buffer.from(providedHex, 'hex'));
}
