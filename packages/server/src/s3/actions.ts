import type { IncomingHttpHeaders } from 'node:http';
import { parseCopySource } from './headers.ts';
import type { S3Target } from './target.ts';

/** One permission a request needs: the IAM action name and the policy resource it acts on. */
export interface S3Permission {
  action: string;
  resource: string;
}

export const bucketResource = (bucket: string) => `s3:${bucket}`;
export const objectResource = (bucket: string, key: string) => `s3:${bucket}/${key}`;

/**
 * The permissions an S3 request needs, with the action names AWS IAM uses for the same operation
 * (HeadBucket is s3:ListBucket, HeadObject s3:GetObject, multipart steps s3:PutObject, a copy also
 * needs s3:GetObject on its source). Multi-object delete is checked per key by its handler.
 */
export function s3Permissions(method: string, target: S3Target, headers: IncomingHttpHeaders): S3Permission[] {
  const q = target.query;
  if (target.bucket === undefined) return [{ action: 's3:ListAllMyBuckets', resource: 's3:' }];
  const bucket = bucketResource(target.bucket);
  if (target.key === undefined) {
    const action = bucketAction(method, q);
    return action ? [{ action, resource: bucket }] : [];
  }
  const object = objectResource(target.bucket, target.key);
  const copy = headers['x-amz-copy-source'];
  const needs: S3Permission[] = [];
  switch (method) {
    case 'GET':
      if (q.has('uploadId')) needs.push({ action: 's3:ListMultipartUploadParts', resource: object });
      else if (q.has('acl')) needs.push({ action: 's3:GetObjectAcl', resource: object });
      else needs.push({ action: 's3:GetObject', resource: object });
      break;
    case 'HEAD':
      needs.push({ action: 's3:GetObject', resource: object });
      break;
    case 'PUT':
      needs.push({ action: 's3:PutObject', resource: object });
      if (copy !== undefined) {
        // A malformed source is the handler's error to report; the permission check skips it.
        const source = safeCopySource(String(copy));
        if (source) needs.push({ action: 's3:GetObject', resource: objectResource(source.bucket, source.key) });
      }
      break;
    case 'POST':
      needs.push({ action: 's3:PutObject', resource: object });
      break;
    case 'DELETE':
      needs.push({ action: q.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject', resource: object });
      break;
  }
  return needs;
}

function bucketAction(method: string, q: URLSearchParams): string | undefined {
  switch (method) {
    case 'GET':
      if (q.has('policy')) return 's3:GetBucketPolicy';
      if (q.has('acl')) return 's3:GetBucketAcl';
      if (q.has('location')) return 's3:GetBucketLocation';
      if (q.has('versioning')) return 's3:GetBucketVersioning';
      if (q.has('uploads')) return 's3:ListBucketMultipartUploads';
      return 's3:ListBucket';
    case 'HEAD':
      return 's3:ListBucket';
    case 'PUT':
      return q.has('policy') ? 's3:PutBucketPolicy' : 's3:CreateBucket';
    case 'DELETE':
      return q.has('policy') ? 's3:DeleteBucketPolicy' : 's3:DeleteBucket';
    case 'POST':
      // DeleteObjects: each key is checked as s3:DeleteObject by the handler.
      return undefined;
  }
  return undefined;
}

function safeCopySource(value: string): { bucket: string; key: string } | undefined {
  try {
    return parseCopySource(value);
  } catch {
    return undefined;
  }
}
