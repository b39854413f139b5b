/**
 * Query-string (presigned URL) SigV4: parsing the X-Amz-* parameters and the validity window.
 * The payload is UNSIGNED-PAYLOAD unless the URL carries X-Amz-Content-Sha256.
 */
import { AstoreError } from '../../core/errors.ts';
import type { QueryParam } from './canonical.ts';
import {
  ALGORITHM,
  ALGORITHM_V4A,
  type PayloadMode,
  type SignatureClaim,
  parseAmzDate,
  parseCredential,
  parseSignedHeaders,
} from './signing.ts';

/** A week, the longest validity S3 accepts. */
export const PRESIGN_MAX_EXPIRES_SECONDS = 604800;

export const SIGNATURE_PARAM = 'X-Amz-Signature';

/** Names whose presence makes a request a query-auth attempt (the router must not treat it as anonymous). */
export function isPresigned(params: readonly QueryParam[]): boolean {
  return params.some((p) => p.name === 'X-Amz-Algorithm' || p.name === 'X-Amz-Credential' || p.name === SIGNATURE_PARAM);
}

export interface PresignedClaim extends SignatureClaim {
  expiresSeconds: number;
}

function queryError(message: string, detail: Record<string, string> = {}): AstoreError {
  return new AstoreError('AuthorizationQueryParametersError', message, detail);
}

const REQUIRED = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires'] as const;

export function parsePresignedQuery(params: readonly QueryParam[]): PresignedClaim {
  const single = (name: string, caseInsensitive = false): string | undefined => {
    const matches = params.filter((p) => (caseInsensitive ? p.name.toLowerCase() === name.toLowerCase() : p.name === name));
    if (matches.length > 1) throw queryError(`The ${name} query parameter must be given once.`);
    return matches[0]?.value;
  };
  const algorithm = single('X-Amz-Algorithm');
  if (algorithm === ALGORITHM_V4A) throw new AstoreError('NotImplemented', 'Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.');
  const values = REQUIRED.map((name) => single(name));
  const [, credential, signature, amzDate, signedHeaders, expires] = values;
  if (algorithm === undefined || credential === undefined || signature === undefined || amzDate === undefined || signedHeaders === undefined || expires === undefined) {
    throw queryError(
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  if (algorithm !== ALGORITHM) throw queryError(`X-Amz-Algorithm only supports "${ALGORITHM}"`);

  const scope = parseCredential(credential, (message, detail) => queryError(`Error parsing the X-Amz-Credential parameter; ${message}`, detail));
  const requestTime = parseAmzDate(amzDate);
  if (!requestTime) throw queryError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  if (!/^\d{1,7}$/.test(expires)) throw queryError('X-Amz-Expires should be a number');
  const expiresSeconds = Number(expires);
  if (expiresSeconds < 1) throw queryError('X-Amz-Expires must be non-negative');
  if (expiresSeconds > PRESIGN_MAX_EXPIRES_SECONDS) {
    throw queryError(`X-Amz-Expires must be less than a week (in seconds) that is ${PRESIGN_MAX_EXPIRES_SECONDS}`);
  }

  const contentSha256 = single('X-Amz-Content-Sha256', true);
  let payload: PayloadMode = { kind: 'unsigned' };
  if (contentSha256 !== undefined && contentSha256 !== 'UNSIGNED-PAYLOAD') {
    if (!/^[0-9a-f]{64}$/i.test(contentSha256)) {
      throw new AstoreError('InvalidArgument', 'X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.');
    }
    payload = { kind: 'signed', sha256: contentSha256.toLowerCase() };
  }

  return {
    scope,
    signedHeaders: parseSignedHeaders(signedHeaders, (message) => queryError(`Error parsing the X-Amz-SignedHeaders parameter; ${message}`)),
    signature,
    amzDate,
    requestTime,
    payloadHash: contentSha256 ?? 'UNSIGNED-PAYLOAD',
    payload,
    expiresSeconds,
  };
}

/** A presigned URL is valid from X-Amz-Date (less the allowed skew) until X-Amz-Date + X-Amz-Expires. */
export function checkPresignedWindow(claim: PresignedClaim, now: Date, maxSkewSeconds: number): void {
  const expiresAt = claim.requestTime.getTime() + claim.expiresSeconds * 1000;
  if (now.getTime() > expiresAt) {
    throw new AstoreError('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': String(claim.expiresSeconds),
      Expires: new Date(expiresAt).toISOString(),
      ServerTime: now.toISOString(),
    });
  }
  if (claim.requestTime.getTime() - now.getTime() > maxSkewSeconds * 1000) {
    throw new AstoreError('AccessDenied', 'Request is not valid yet', {
      'X-Amz-Date': claim.amzDate,
      ServerTime: now.toISOString(),
    });
  }
}
