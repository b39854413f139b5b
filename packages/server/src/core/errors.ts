/**
 * One error table for every protocol. The domain throws `AstoreError(code)`; each protocol renders it
 * in its own wire format in one place (S3: XML <Error>, OCI: {"errors":[...]}, REST: RFC 9457).
 * `s3Code` is the code the AWS S3 API reference names; `ociCode` the distribution-spec code, where one fits.
 */
export interface ErrorSpec {
  status: number;
  s3Code: string;
  ociCode?: string;
  title: string;
}

export const errorTable = {
  AccessDenied: { status: 403, s3Code: 'AccessDenied', ociCode: 'DENIED', title: 'Access Denied' },
  ArtifactNotVerified: { status: 403, s3Code: 'AccessDenied', ociCode: 'DENIED', title: 'The artifact is not verified by the supply-chain policy that covers it' },
  AuthorizationHeaderMalformed: { status: 400, s3Code: 'AuthorizationHeaderMalformed', ociCode: 'UNAUTHORIZED', title: 'The authorization header is malformed' },
  AuthorizationQueryParametersError: { status: 400, s3Code: 'AuthorizationQueryParametersError', ociCode: 'UNAUTHORIZED', title: 'The query-string authentication parameters are malformed' },
  BadDigest: { status: 400, s3Code: 'BadDigest', ociCode: 'DIGEST_INVALID', title: 'The Content-MD5 or checksum you specified did not match what we received' },
  BucketAlreadyExists: { status: 409, s3Code: 'BucketAlreadyExists', title: 'The requested bucket name is not available' },
  BucketAlreadyOwnedByYou: { status: 409, s3Code: 'BucketAlreadyOwnedByYou', title: 'Your previous request to create the named bucket succeeded and you already own it' },
  BucketNotEmpty: { status: 409, s3Code: 'BucketNotEmpty', title: 'The bucket you tried to delete is not empty' },
  EntityTooLarge: { status: 400, s3Code: 'EntityTooLarge', ociCode: 'SIZE_INVALID', title: 'Your proposed upload exceeds the maximum allowed size' },
  EntityTooSmall: { status: 400, s3Code: 'EntityTooSmall', ociCode: 'SIZE_INVALID', title: 'Your proposed upload is smaller than the minimum allowed object size' },
  ExpiredToken: { status: 400, s3Code: 'ExpiredToken', ociCode: 'UNAUTHORIZED', title: 'The provided token has expired' },
  IncompleteBody: { status: 400, s3Code: 'IncompleteBody', ociCode: 'SIZE_INVALID', title: 'You did not provide the number of bytes specified by the Content-Length HTTP header' },
  InternalError: { status: 500, s3Code: 'InternalError', ociCode: 'UNKNOWN', title: 'We encountered an internal error. Please try again.' },
  InvalidAccessKeyId: { status: 403, s3Code: 'InvalidAccessKeyId', ociCode: 'UNAUTHORIZED', title: 'The AWS access key ID you provided does not exist in our records' },
  InvalidArgument: { status: 400, s3Code: 'InvalidArgument', ociCode: 'UNSUPPORTED', title: 'Invalid Argument' },
  InvalidDocument: { status: 400, s3Code: 'InvalidArgument', ociCode: 'MANIFEST_INVALID', title: 'The signature, SBOM or attestation is malformed or does not verify' },
  InvalidBucketName: { status: 400, s3Code: 'InvalidBucketName', ociCode: 'NAME_INVALID', title: 'The specified bucket is not valid' },
  InvalidDigest: { status: 400, s3Code: 'InvalidDigest', ociCode: 'DIGEST_INVALID', title: 'The Content-MD5 or checksum you specified is not valid' },
  InvalidLocationConstraint: { status: 400, s3Code: 'InvalidLocationConstraint', title: 'The specified location constraint is not valid' },
  InvalidPart: { status: 400, s3Code: 'InvalidPart', title: 'One or more of the specified parts could not be found or its entity tag did not match' },
  InvalidPartOrder: { status: 400, s3Code: 'InvalidPartOrder', title: 'The list of parts was not in ascending order' },
  InvalidPartNumber: { status: 416, s3Code: 'InvalidPartNumber', title: 'The requested partnumber is not satisfiable' },
  InvalidRange: { status: 416, s3Code: 'InvalidRange', ociCode: 'RANGE_INVALID', title: 'The requested range is not satisfiable' },
  InvalidRequest: { status: 400, s3Code: 'InvalidRequest', title: 'Invalid Request' },
  KeyTooLongError: { status: 400, s3Code: 'KeyTooLongError', ociCode: 'NAME_INVALID', title: 'Your key is too long' },
  MalformedPolicy: { status: 400, s3Code: 'MalformedPolicy', title: 'Policies must be valid JSON and the first byte must be {' },
  MalformedXML: { status: 400, s3Code: 'MalformedXML', title: 'The XML you provided was not well-formed or did not validate against our published schema' },
  MetadataTooLarge: { status: 400, s3Code: 'MetadataTooLarge', title: 'Your metadata headers exceed the maximum allowed metadata size' },
  MethodNotAllowed: { status: 405, s3Code: 'MethodNotAllowed', ociCode: 'UNSUPPORTED', title: 'The specified method is not allowed against this resource' },
  MissingContentLength: { status: 411, s3Code: 'MissingContentLength', ociCode: 'SIZE_INVALID', title: 'You must provide the Content-Length HTTP header' },
  NoSuchBucket: { status: 404, s3Code: 'NoSuchBucket', ociCode: 'NAME_UNKNOWN', title: 'The specified bucket does not exist' },
  NoSuchKey: { status: 404, s3Code: 'NoSuchKey', ociCode: 'BLOB_UNKNOWN', title: 'The specified key does not exist.' },
  NoSuchBucketPolicy: { status: 404, s3Code: 'NoSuchBucketPolicy', title: 'The bucket policy does not exist' },
  NoSuchEntity: { status: 404, s3Code: 'NoSuchKey', title: 'The specified user, group, key or policy does not exist' },
  EntityAlreadyExists: { status: 409, s3Code: 'BucketAlreadyExists', title: 'An entity with that name already exists' },
  NoSuchUpload: { status: 404, s3Code: 'NoSuchUpload', ociCode: 'BLOB_UPLOAD_UNKNOWN', title: 'The specified multipart upload does not exist' },
  NotImplemented: { status: 501, s3Code: 'NotImplemented', ociCode: 'UNSUPPORTED', title: 'A header or query you provided implies functionality that is not implemented' },
  NotModified: { status: 304, s3Code: 'NotModified', title: 'Not Modified' },
  PreconditionFailed: { status: 412, s3Code: 'PreconditionFailed', title: 'At least one of the preconditions you specified did not hold' },
  RequestHeaderSectionTooLarge: { status: 400, s3Code: 'RequestHeaderSectionTooLarge', title: 'Your request header section exceeds the maximum allowed size' },
  RequestTimeTooSkewed: { status: 403, s3Code: 'RequestTimeTooSkewed', ociCode: 'UNAUTHORIZED', title: "The difference between the request time and the server's time is too large" },
  ServiceUnavailable: { status: 503, s3Code: 'ServiceUnavailable', ociCode: 'UNAVAILABLE', title: 'Service is unable to handle request' },
  SignatureDoesNotMatch: { status: 403, s3Code: 'SignatureDoesNotMatch', ociCode: 'UNAUTHORIZED', title: 'The request signature we calculated does not match the signature you provided' },
  SlowDown: { status: 503, s3Code: 'SlowDown', ociCode: 'TOOMANYREQUESTS', title: 'Please reduce your request rate' },
  // The registry's own (distribution-spec) errors; s3Code is the nearest S3 code, for completeness.
  BlobUnknown: { status: 404, s3Code: 'NoSuchKey', ociCode: 'BLOB_UNKNOWN', title: 'blob unknown to registry' },
  BlobUploadInvalid: { status: 400, s3Code: 'InvalidRequest', ociCode: 'BLOB_UPLOAD_INVALID', title: 'blob upload invalid' },
  BlobUploadUnknown: { status: 404, s3Code: 'NoSuchUpload', ociCode: 'BLOB_UPLOAD_UNKNOWN', title: 'blob upload unknown to registry' },
  DigestInvalid: { status: 400, s3Code: 'InvalidDigest', ociCode: 'DIGEST_INVALID', title: 'provided digest did not match uploaded content' },
  ManifestBlobUnknown: { status: 400, s3Code: 'InvalidRequest', ociCode: 'MANIFEST_BLOB_UNKNOWN', title: 'manifest references a manifest or blob unknown to registry' },
  ManifestInvalid: { status: 400, s3Code: 'InvalidRequest', ociCode: 'MANIFEST_INVALID', title: 'manifest invalid' },
  ManifestTooLarge: { status: 413, s3Code: 'EntityTooLarge', ociCode: 'SIZE_INVALID', title: 'manifest exceeds the size limit' },
  ManifestUnknown: { status: 404, s3Code: 'NoSuchKey', ociCode: 'MANIFEST_UNKNOWN', title: 'manifest unknown to registry' },
  NameInvalid: { status: 400, s3Code: 'InvalidArgument', ociCode: 'NAME_INVALID', title: 'invalid repository name' },
  NameUnknown: { status: 404, s3Code: 'NoSuchBucket', ociCode: 'NAME_UNKNOWN', title: 'repository name not known to registry' },
  RangeNotSatisfiable: { status: 416, s3Code: 'InvalidRange', ociCode: 'BLOB_UPLOAD_INVALID', title: 'chunk does not start at the end of the upload' },
  SizeInvalid: { status: 400, s3Code: 'InvalidArgument', ociCode: 'SIZE_INVALID', title: 'provided length did not match content length' },
  TagInvalid: { status: 400, s3Code: 'InvalidArgument', ociCode: 'MANIFEST_INVALID', title: 'invalid tag' },
  TooManyRequests: { status: 429, s3Code: 'SlowDown', ociCode: 'TOOMANYREQUESTS', title: 'too many requests' },
  Unauthorized: { status: 401, s3Code: 'AccessDenied', ociCode: 'UNAUTHORIZED', title: 'authentication required' },
  Unsupported: { status: 405, s3Code: 'MethodNotAllowed', ociCode: 'UNSUPPORTED', title: 'the operation is unsupported' },
  XAmzContentSHA256Mismatch: { status: 400, s3Code: 'XAmzContentSHA256Mismatch', ociCode: 'DIGEST_INVALID', title: "The provided 'x-amz-content-sha256' header does not match what was computed" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorTable;

/** A domain error: knows its code and a human message, never HTTP. */
export class AstoreError extends Error {
  readonly code: ErrorCode;
  /** Extra fields some wire formats carry (e.g. S3 <BucketName>, OCI "detail"). */
  readonly detail: Record<string, string | number | undefined>;

  constructor(code: ErrorCode, message?: string, detail: Record<string, string | number | undefined> = {}) {
    super(message ?? errorTable[code].title);
    this.name = 'AstoreError';
    this.code = code;
    this.detail = detail;
  }

  get spec(): ErrorSpec {
    return errorTable[this.code];
  }
}

export function isAstoreError(err: unknown, code?: ErrorCode): err is AstoreError {
  return err instanceof AstoreError && (code === undefined || err.code === code);
}
