/**
 * The one entry the S3 router calls to authenticate a request: Signature V4 (header or presigned
 * URL, sigv4.ts) or the legacy Signature V2 (header or presigned URL, sigv2.ts).
 *
 * Contract: resolves to `anonymous` only when the request carries no Authorization header and none
 * of X-Amz-Algorithm / X-Amz-Credential / X-Amz-Signature / AWSAccessKeyId / Signature in the
 * query; otherwise to a verified `signed` result, or rejects with an AstoreError. More than one
 * mechanism in one request is InvalidArgument, as in S3.
 */
import { headerValues, parseQuery, splitUrl } from './canonical.ts';
import { isPresigned } from './presign.ts';
import { hasSigV2QueryParams, isSigV2Authorization, verifySigV2 } from './sigv2.ts';
import { onlyOneAuthMechanism, verifySigV4, type AuthResult, type SignedRequest, type VerifyOptions } from './sigv4.ts';

export type { AuthResult, Credential, CredentialLookup, PayloadMode, SignedRequest, VerifyOptions } from './sigv4.ts';

export async function verifyRequestSignature(req: SignedRequest, options: VerifyOptions): Promise<AuthResult> {
  const authorization = headerValues(req.rawHeaders).get('authorization');
  const params = parseQuery(splitUrl(req.url).rawQuery);
  const v2Query = hasSigV2QueryParams(params);
  if (v2Query && (authorization !== undefined || isPresigned(params))) throw onlyOneAuthMechanism();
  const v2 = authorization !== undefined ? isSigV2Authorization(authorization) : v2Query;
  return v2 ? verifySigV2(req, options) : verifySigV4(req, options);
}
