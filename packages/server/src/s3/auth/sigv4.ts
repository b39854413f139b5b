/**
 * AWS Signature Version 4 verification for the S3 API, header auth and query (presigned) auth,
 * computed the way S3 computes it. No HTTP framework: the caller passes method, raw URL and
 * node's rawHeaders, and gets back who signed and how the body is protected.
 *
 * Contract: `verifySigV4` resolves to `anonymous` only when the request carries no Authorization
 * header and no X-Amz-Algorithm / X-Amz-Credential / X-Amz-Signature parameter; otherwise it
 * resolves to a verified `signed` result or rejects with an AstoreError. The body is not read:
 * the caller enforces the PayloadMode (hash check for `signed`, the aws-chunked decoder for the
 * streaming modes, with `chunkSigning`). Signature V2 is refused here (InvalidRequest): the router
 * enters through `verifyRequestSignature` (index.ts), which sends V2 requests to sigv2.ts instead.
 */
import type { PolicyPrincipal } from '../../core/policy/types.ts';
import { AstoreError } from '../../core/errors.ts';
import { canonicalRequest, headerValues, parseQuery, splitUrl, type HeaderValues, type QueryParam } from './canonical.ts';
import { SIGNATURE_PARAM, checkPresignedWindow, isPresigned, parsePresignedQuery } from './presign.ts';
import {
  ALGORITHM,
  ALGORITHM_V4A,
  type ChunkSigningContext,
  type MalformedError,
  type PayloadMode,
  type SignatureClaim,
  checkScope,
  formatAmzDate,
  hmacHex,
  parseAmzDate,
  parseCredential,
  parseSignedHeaders,
  scopeString,
  sha256Hex,
  signaturesEqual,
  signingKey,
} from './signing.ts';

export type { ChunkSigningContext, PayloadMode } from './signing.ts';

export interface SignedRequest {
  method: string;
  /** Raw path and query exactly as received (node's IncomingMessage.url). */
  url: string;
  /** node's IncomingMessage.rawHeaders: [name, value, name, value, ...]. */
  rawHeaders: string[];
}

export interface Credential {
  accessKeyId: string;
  secretKey: string;
  principal: string;
  /** Who the key speaks for, as the policy engine sees it. */
  subject?: PolicyPrincipal;
}

/**
 * Resolves an access key id to its credential; null when the key is unknown (or disabled). Temporary
 * credentials (STS) come with the session token the request carries (`X-Amz-Security-Token`).
 */
export type CredentialLookup = (accessKeyId: string, sessionToken?: string) => Promise<Credential | null>;

/** The session token of a request: the `X-Amz-Security-Token` header, or the query parameter when presigned. */
export function sessionTokenOf(headers: HeaderValues, params: readonly { name: string; value?: string }[]): string | undefined {
  return headers.get('x-amz-security-token')?.[0] ?? params.find((p) => p.name === 'X-Amz-Security-Token')?.value;
}

/** A SigV4 request: any payload mode, and what the aws-chunked decoder needs to verify chunk signatures. */
export interface SigV4Auth {
  kind: 'signed';
  credential: Credential;
  payload: PayloadMode;
  chunkSigning: ChunkSigningContext;
}

/** A Signature V2 request (sigv2.ts): V2 signs no body and has no aws-chunked modes, so no chunk signing. */
export interface SigV2Auth {
  kind: 'signed';
  credential: Credential;
  payload: { kind: 'unsigned' };
  chunkSigning?: undefined;
}

export type AuthResult = { kind: 'anonymous' } | SigV4Auth | SigV2Auth;

export interface VerifyOptions {
  lookup: CredentialLookup;
  /** The region this server answers for; the credential scope must name it. */
  region: string;
  now: Date;
  /** Header auth: largest accepted |request time - now|; query auth: how far in the future X-Amz-Date may be. */
  maxSkewSeconds: number;
  service?: 's3' | 'sts';
  /**
   * The body's sha256 (hex), for services whose clients sign the payload without sending
   * x-amz-content-sha256 (STS): the caller has read the (small) body already.
   */
  bodySha256?: string;
  /** `s3.domain`: a Host of <bucket>.<domain> is virtual-host style. Only Signature V2 needs it (its resource names the bucket). */
  domain?: string;
}

export async function verifySigV4(req: SignedRequest, options: VerifyOptions): Promise<{ kind: 'anonymous' } | SigV4Auth> {
  const headers = headerValues(req.rawHeaders);
  const { rawPath, rawQuery } = splitUrl(req.url);
  const params = parseQuery(rawQuery);
  const authorization = headers.get('authorization');
  const presigned = isPresigned(params);

  if (authorization === undefined && !presigned) {
    if (params.some((p) => p.name === 'AWSAccessKeyId') && params.some((p) => p.name === 'Signature')) throw unsupportedV2();
    return { kind: 'anonymous' };
  }
  if (authorization !== undefined && presigned) throw onlyOneAuthMechanism();

  const service = options.service ?? 's3';
  let claim: SignatureClaim;
  if (authorization !== undefined) {
    const malformed: MalformedError = (message, detail) =>
      new AstoreError('AuthorizationHeaderMalformed', `The authorization header is malformed; ${message}`, detail);
    claim = parseHeaderAuth(authorization, headers, malformed, options.bodySha256);
    checkScope(claim.scope, { region: options.region, service, amzDate: claim.amzDate }, malformed);
    checkSkew(claim, options.now, options.maxSkewSeconds);
  } else {
    const presignedClaim = parsePresignedQuery(params);
    checkScope(presignedClaim.scope, { region: options.region, service, amzDate: presignedClaim.amzDate }, (message, detail) =>
      new AstoreError('AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; ${message}`, detail),
    );
    checkPresignedWindow(presignedClaim, options.now, options.maxSkewSeconds);
    claim = presignedClaim;
  }
  requireSignedAmzHeaders(headers, claim.signedHeaders, authorization !== undefined);

  const credential = await options.lookup(claim.scope.accessKeyId, sessionTokenOf(headers, params));
  if (!credential) {
    throw new AstoreError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: claim.scope.accessKeyId,
    });
  }
  return verifyClaim(req.method, rawPath, params, headers, claim, credential, authorization === undefined);
}

function verifyClaim(
  method: string,
  rawPath: string,
  params: readonly QueryParam[],
  headers: HeaderValues,
  claim: SignatureClaim,
  credential: Credential,
  presigned: boolean,
): SigV4Auth {
  const request = canonicalRequest({
    method,
    rawPath,
    params,
    excludeParam: presigned ? SIGNATURE_PARAM : undefined,
    headers,
    signedHeaders: claim.signedHeaders,
    payloadHash: claim.payloadHash,
  });
  const scope = scopeString(claim.scope);
  const stringToSign = `${ALGORITHM}\n${claim.amzDate}\n${scope}\n${sha256Hex(request)}`;
  const key = signingKey(credential.secretKey, claim.scope.date, claim.scope.region, claim.scope.service);
  const expected = hmacHex(key, stringToSign);
  if (!signaturesEqual(expected, claim.signature)) {
    throw new AstoreError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: claim.scope.accessKeyId, StringToSign: stringToSign, SignatureProvided: claim.signature, CanonicalRequest: request },
    );
  }
  return {
    kind: 'signed',
    credential,
    payload: claim.payload,
    chunkSigning: { signingKey: key, seedSignature: expected, amzDate: claim.amzDate, scope },
  };
}

export function onlyOneAuthMechanism(): AstoreError {
  return new AstoreError(
    'InvalidArgument',
    'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
    { ArgumentName: 'Authorization' },
  );
}

function unsupportedV2(): AstoreError {
  return new AstoreError('InvalidRequest', `The authorization mechanism you have provided is not supported. Please use ${ALGORITHM}.`);
}

/** `AWS4-HMAC-SHA256 Credential=<akid>/<scope>, SignedHeaders=a;b, Signature=<hex>` plus the date and payload headers. */
function parseHeaderAuth(values: string[], headers: HeaderValues, malformed: MalformedError, bodySha256?: string): SignatureClaim {
  if (values.length !== 1) throw malformed('only one Authorization header is allowed.');
  const authorization = (values[0] as string).trim();
  const space = authorization.search(/\s/);
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm === ALGORITHM_V4A) throw new AstoreError('NotImplemented', 'Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported.');
  if (algorithm === 'AWS') throw unsupportedV2();
  if (algorithm !== ALGORITHM) {
    throw new AstoreError('InvalidArgument', 'Unsupported Authorization Type', { ArgumentName: 'Authorization', ArgumentValue: authorization });
  }

  const fields = new Map<string, string>();
  for (const part of authorization.slice(space < 0 ? authorization.length : space).split(',')) {
    const field = part.trim();
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    if (eq < 0 || fields.has(name)) throw malformed(`the authorization component '${field}' is malformed.`);
    fields.set(name, field.slice(eq + 1));
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined) throw malformed('missing Credential.');
  if (signedHeaders === undefined) throw malformed('missing SignedHeaders.');
  if (signature === undefined) throw malformed('missing Signature.');
  const scope = parseCredential(credential, malformed);

  const contentSha256 = headers.get('x-amz-content-sha256') ?? (bodySha256 !== undefined ? [bodySha256] : undefined);
  if (contentSha256 === undefined) {
    throw new AstoreError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  const payloadHash = contentSha256.join(',');
  const { amzDate, requestTime } = requestDate(headers);
  return {
    scope,
    signedHeaders: parseSignedHeaders(signedHeaders, malformed),
    signature,
    amzDate,
    requestTime,
    payloadHash,
    payload: payloadMode(payloadHash),
  };
}

/** X-Amz-Date wins over Date; the string to sign always uses the ISO 8601 basic form. */
function requestDate(headers: HeaderValues): { amzDate: string; requestTime: Date } {
  const xAmzDate = headers.get('x-amz-date');
  const date = headers.get('date');
  let requestTime: Date | null = null;
  if (xAmzDate !== undefined) {
    requestTime = parseAmzDate(xAmzDate.join(','));
  } else if (date !== undefined && date.length === 1) {
    const millis = Date.parse(date[0] as string);
    requestTime = Number.isNaN(millis) ? null : new Date(Math.floor(millis / 1000) * 1000);
  }
  if (!requestTime) throw new AstoreError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  return { amzDate: formatAmzDate(requestTime), requestTime };
}

function payloadMode(value: string): PayloadMode {
  switch (value) {
    case 'UNSIGNED-PAYLOAD':
      return { kind: 'unsigned' };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { kind: 'streaming-unsigned-trailer' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { kind: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { kind: 'streaming-signed', trailer: true };
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD':
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER':
      throw new AstoreError('NotImplemented', `x-amz-content-sha256 ${value} (Signature Version 4A) is not supported.`);
  }
  if (/^[0-9a-f]{64}$/i.test(value)) return { kind: 'signed', sha256: value.toLowerCase() };
  throw new AstoreError(
    'InvalidArgument',
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.',
    { ArgumentName: 'x-amz-content-sha256', ArgumentValue: value },
  );
}

function checkSkew(claim: SignatureClaim, now: Date, maxSkewSeconds: number): void {
  if (Math.abs(claim.requestTime.getTime() - now.getTime()) > maxSkewSeconds * 1000) {
    throw new AstoreError('RequestTimeTooSkewed', "The difference between the request time and the current time is too large.", {
      RequestTime: claim.amzDate,
      ServerTime: now.toISOString(),
      MaxAllowedSkewMilliseconds: maxSkewSeconds * 1000,
    });
  }
}

/**
 * Every x-amz-* header present must be signed, as S3 requires: otherwise anyone holding a presigned
 * PUT could add e.g. x-amz-copy-source or x-amz-meta-* to it. x-amz-content-sha256 is exempt in
 * header auth because its value is the last line of the canonical request anyway.
 */
function requireSignedAmzHeaders(headers: HeaderValues, signedHeaders: readonly string[], headerAuth: boolean): void {
  const notSigned = [...headers.keys()].filter(
    (name) => name.startsWith('x-amz-') && !signedHeaders.includes(name) && !(headerAuth && name === 'x-amz-content-sha256'),
  );
  if (notSigned.length > 0) {
    throw new AstoreError('AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: notSigned.join(', '),
    });
  }
}
