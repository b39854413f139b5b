/**
 * AWS Signature Version 2 (HMAC-SHA1) for the S3 API, kept for legacy clients: aws-cli v1's default
 * `aws s3 presign`, boto3/botocore with signature_version 's3', s3cmd. Both forms:
 *   query auth:  ?AWSAccessKeyId=<akid>&Expires=<epoch seconds>&Signature=<base64>
 *   header auth: Authorization: AWS <akid>:<base64>, with Date or x-amz-date
 *
 *   StringToSign = Verb \n Content-MD5 \n Content-Type \n (Expires | Date | '' if x-amz-date) \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 *   Signature    = base64(HMAC-SHA1(secret, UTF-8 StringToSign))
 *
 * CanonicalizedResource is the path exactly as sent (not decoded or re-encoded, as botocore signs
 * it), prefixed by /<bucket> for virtual-host style, then the sub-resources of SUBRESOURCES in the
 * query, sorted by name, with their percent-decoded values.
 *
 * What V2 does not protect, as in S3: the body (the payload is `unsigned`; a Content-MD5 header is
 * signed and payload.ts checks the body against it) and query parameters other than sub-resources
 * (prefix, marker, max-keys...). Content-MD5, Content-Type and x-amz-* are read from headers only:
 * botocore copies them into a presigned URL's query, and the client must still send them as headers.
 *
 * Contract: `verifySigV2` is called for a request with a V2 Authorization header or V2 query
 * parameters and no other auth mechanism (index.ts checks); it resolves to a verified `signed`
 * result or rejects with an AstoreError, never to `anonymous`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AstoreError } from '../../core/errors.ts';
import { virtualHostBucket } from '../target.ts';
import { headerValues, percentDecode, splitUrl, type HeaderValues, type QueryParam } from './canonical.ts';
import { parseAmzDate } from './signing.ts';
import { type Credential, type SigV2Auth, type SignedRequest, type VerifyOptions, sessionTokenOf } from './sigv4.ts';

/** Query parameters that sign a V2 request: botocore's HmacV1Auth list, a superset of the one the S3 docs give. */
const SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'cors', 'defaultObjectAcl', 'delete', 'inventory', 'lifecycle', 'location',
  'logging', 'metrics', 'notification', 'object-lock', 'partNumber', 'policy', 'replication', 'requestPayment',
  'restore', 'select', 'select-type', 'storageClass', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId',
  'versioning', 'versions', 'website', 'response-cache-control', 'response-content-disposition',
  'response-content-encoding', 'response-content-language', 'response-content-type', 'response-expires',
]);

/** base64 of a 20-byte HMAC-SHA1. */
const SIGNATURE_FORM = /^[A-Za-z0-9+/]{27}=$/;

/** `Authorization: AWS <akid>:<signature>` (the scheme alone is enough: a malformed rest is V2's error to give). */
export function isSigV2Authorization(authorization: readonly string[]): boolean {
  return /^AWS(\s|$)/.test((authorization[0] ?? '').trim());
}

/** Either V2 query parameter makes the request a query-auth attempt, never an anonymous one. */
export function hasSigV2QueryParams(params: readonly QueryParam[]): boolean {
  return params.some((p) => p.name === 'AWSAccessKeyId' || p.name === 'Signature');
}

/** A V2 claim: who signed, what they sent, and what the date line of the string to sign is. */
interface V2Claim {
  accessKeyId: string;
  signature: string;
  /** Expires (query auth), the Date header, or '' when x-amz-date is present. */
  dateLine: string;
}

export async function verifySigV2(req: SignedRequest, options: VerifyOptions): Promise<SigV2Auth> {
  const headers = headerValues(req.rawHeaders);
  const { rawPath, rawQuery } = splitUrl(req.url);
  const query = rawQueryParams(rawQuery);
  const authorization = headers.get('authorization');
  const claim = authorization !== undefined ? headerClaim(authorization, headers, options) : queryClaim(query, options.now);

  const credential = await options.lookup(claim.accessKeyId, sessionTokenOf(headers, query));
  if (!credential) {
    throw new AstoreError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: claim.accessKeyId,
    });
  }

  const bucket = virtualHostBucket(headers.get('host')?.[0], options.domain);
  const path = bucket === undefined ? rawPath : `/${bucket}${rawPath}`;
  // botocore signs a path-style bucket request (GET /b?...) as /b/, other clients as /b: both name the same resource.
  const paths = bucket === undefined && /^\/[^/]+$/.test(rawPath) ? [path, `${path}/`] : [path];
  const prefix = `${req.method}\n${joined(headers, 'content-md5')}\n${joined(headers, 'content-type')}\n${claim.dateLine}\n${amzHeaders(headers)}`;
  const subresources = canonicalSubresources(query);
  const candidates = paths.map((p) => prefix + p + subresources);
  if (candidates.some((stringToSign) => signatureMatches(credential, stringToSign, claim.signature))) {
    return { kind: 'signed', credential, payload: { kind: 'unsigned' } };
  }
  const stringToSign = candidates[0] as string;
  throw new AstoreError(
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    {
      AWSAccessKeyId: claim.accessKeyId,
      StringToSign: stringToSign,
      SignatureProvided: claim.signature,
      StringToSignBytes: [...Buffer.from(stringToSign, 'utf8')].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    },
  );
}

function signatureMatches(credential: Credential, stringToSign: string, provided: string): boolean {
  if (!SIGNATURE_FORM.test(provided)) return false;
  const expected = createHmac('sha1', credential.secretKey).update(stringToSign, 'utf8').digest();
  return timingSafeEqual(expected, Buffer.from(provided, 'base64'));
}

/** `Authorization: AWS <akid>:<signature>`; the request time comes from x-amz-date, else Date. */
function headerClaim(authorization: string[], headers: HeaderValues, options: VerifyOptions): V2Claim {
  const value = (authorization[0] as string).trim();
  const match = /^AWS\s+([^\s:]+):(\S+)$/.exec(value);
  if (authorization.length !== 1 || !match) {
    throw new AstoreError('InvalidArgument', 'AWS authorization header is invalid.  Expected AwsAccessKeyId:signature', {
      ArgumentName: 'Authorization',
      ArgumentValue: value,
    });
  }
  const xAmzDate = headers.get('x-amz-date');
  const date = headers.get('date');
  const sent = xAmzDate?.join(',') ?? (date?.length === 1 ? date[0] : undefined);
  const requestTime = sent === undefined ? null : parseRequestTime(sent);
  if (!requestTime) throw new AstoreError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  if (Math.abs(requestTime.getTime() - options.now.getTime()) > options.maxSkewSeconds * 1000) {
    throw new AstoreError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      RequestTime: sent as string,
      ServerTime: options.now.toISOString(),
      MaxAllowedSkewMilliseconds: options.maxSkewSeconds * 1000,
    });
  }
  // With x-amz-date the date line is empty: x-amz-date is signed among the x-amz-* headers instead.
  return { accessKeyId: match[1] as string, signature: match[2] as string, dateLine: xAmzDate !== undefined ? '' : (date?.[0] as string) };
}

/** RFC 1123 (`Tue, 27 Mar 2007 19:36:42 +0000`, what V2 clients send) or ISO 8601 basic; whole seconds. */
function parseRequestTime(value: string): Date | null {
  const amz = parseAmzDate(value);
  if (amz) return amz;
  const millis = Date.parse(value);
  return Number.isNaN(millis) ? null : new Date(Math.floor(millis / 1000) * 1000);
}

function queryClaim(query: readonly RawParam[], now: Date): V2Claim {
  const single = (name: string): string | undefined => {
    const matches = query.filter((p) => p.name === name);
    if (matches.length > 1) throw new AstoreError('InvalidArgument', `The ${name} query parameter must be given once.`, { ArgumentName: name });
    return matches[0]?.value;
  };
  const accessKeyId = single('AWSAccessKeyId');
  const signature = single('Signature');
  const expires = single('Expires');
  if (!accessKeyId || !signature || !expires) {
    throw new AstoreError('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
  }
  if (!/^\d{1,12}$/.test(expires)) throw new AstoreError('AccessDenied', `Invalid date (should be seconds since epoch): ${expires}`);
  const expiresAt = Number(expires) * 1000;
  if (now.getTime() > expiresAt) {
    throw new AstoreError('AccessDenied', 'Request has expired', { Expires: new Date(expiresAt).toISOString(), ServerTime: now.toISOString() });
  }
  return { accessKeyId, signature, dateLine: expires };
}

/** One query component as botocore reads it for V2: value undefined when there is no '='; '+' stays '+'. */
interface RawParam {
  name: string;
  value: string | undefined;
}

function rawQueryParams(rawQuery: string): RawParam[] {
  return rawQuery
    .split('&')
    .filter((component) => component !== '')
    .map((component) => {
      const eq = component.indexOf('=');
      const name = percentDecode(eq < 0 ? component : component.slice(0, eq), false).toString('utf8');
      return { name, value: eq < 0 ? undefined : percentDecode(component.slice(eq + 1), false).toString('utf8') };
    });
}

/** `?name[=value]&...` for the sub-resources present, sorted by name (stable, as botocore sorts); '' when none. */
function canonicalSubresources(query: readonly RawParam[]): string {
  const signed = query
    .filter((p) => SUBRESOURCES.has(p.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`));
  return signed.length === 0 ? '' : `?${signed.join('&')}`;
}

/** Every x-amz-* header, `name:value\n`, sorted by name; repeated headers joined with ','. */
function amzHeaders(headers: HeaderValues): string {
  return [...headers.keys()]
    .filter((name) => name.startsWith('x-amz-'))
    .sort()
    .map((name) => `${name}:${joined(headers, name)}\n`)
    .join('');
}

function joined(headers: HeaderValues, name: string): string {
  return (headers.get(name) ?? []).map((v) => v.trim()).join(',');
}
