import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import { anonymousPrincipal, principalName } from '../core/identity/service.ts';
import { asActor } from '../core/identity/actor.ts';
import type { PolicyPrincipal } from '../core/policy/types.ts';
import { type S3Permission, s3Permissions } from './actions.ts';
import { validateBucketName } from '../core/names.ts';
import { verifyRequestSignature, type AuthResult, type CredentialLookup } from './auth/index.ts';
import * as buckets from './buckets.ts';
import type { BucketCall, ObjectCall, S3Call, S3Services } from './context.ts';
import { sendS3Error } from './errors.ts';
import * as list from './list.ts';
import * as multipart from './multipart.ts';
import * as objects from './objects.ts';
import { parseTarget } from './target.ts';

/** Decides whether a principal may do one thing (the policy engine), recording the decision. */
export type S3Authorizer = (
  request: { principal: PolicyPrincipal; permission: S3Permission; sourceIp: string },
  audit: { requestId: string; accessKeyId?: string },
) => Promise<boolean>;

export interface S3Options {
  services: S3Services;
  lookup: CredentialLookup;
  authorize: S3Authorizer;
  region: string;
  domain?: string;
  maxClockSkewSeconds: number;
  maxHeaderBytes: number;
  /** STS requests (form POSTs to `/`) and the handler that answers them. */
  sts?: { when: (req: FastifyRequest) => boolean; handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> };
}

type Handler<C> = (call: C) => Promise<unknown>;

/** Bucket sub-resources S3 has and astore does not (yet): answered NotImplemented, never misrouted. */
const unsupportedBucketSubresources = [
  'acl', 'analytics', 'cors', 'encryption', 'intelligent-tiering', 'inventory', 'lifecycle', 'logging', 'metrics',
  'notification', 'object-lock', 'ownershipControls', 'policyStatus', 'publicAccessBlock', 'replication',
  'requestPayment', 'tagging', 'website', 'accelerate', 'versions',
];
const unsupportedObjectSubresources = ['acl', 'tagging', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'attributes', 'versionId'];

function routeService(method: string): Handler<S3Call> | undefined {
  return method === 'GET' ? buckets.listBuckets : undefined;
}

const bucketPolicyHandlers: Partial<Record<string, Handler<BucketCall>>> = {
  GET: buckets.getBucketPolicy,
  PUT: buckets.putBucketPolicy,
  DELETE: buckets.deleteBucketPolicy,
};

function routeBucket(method: string, q: URLSearchParams): Handler<BucketCall> | undefined {
  if (method === 'GET' && q.has('acl')) return buckets.getAcl;
  if (q.has('policy')) return bucketPolicyHandlers[method];
  const sub = unsupportedBucketSubresources.find((s) => q.has(s));
  if (sub) return () => buckets.notImplemented(`The bucket sub-resource "${sub}"`);
  switch (method) {
    case 'GET':
      if (q.has('location')) return buckets.getBucketLocation;
      if (q.has('versioning')) return buckets.getBucketVersioning;
      if (q.has('uploads')) return list.listMultipartUploads;
      return q.get('list-type') === '2' ? list.listObjectsV2 : list.listObjectsV1;
    case 'HEAD':
      return buckets.headBucket;
    case 'PUT':
      return q.has('versioning') ? () => buckets.notImplemented('Bucket versioning') : buckets.createBucket;
    case 'DELETE':
      return buckets.deleteBucket;
    case 'POST':
      return q.has('delete') ? objects.deleteObjects : undefined;
  }
  return undefined;
}

function routeObject(method: string, q: URLSearchParams, headers: FastifyRequest['headers']): Handler<ObjectCall> | undefined {
  if (method === 'GET' && q.has('acl')) return objects.getObjectAcl;
  const sub = unsupportedObjectSubresources.find((s) => q.has(s));
  if (sub && !(sub === 'versionId' && q.get('versionId') === 'null')) return () => buckets.notImplemented(`The object sub-resource "${sub}"`);
  const copy = headers['x-amz-copy-source'] !== undefined;
  switch (method) {
    case 'GET':
      return q.has('uploadId') ? multipart.listParts : objects.getObject;
    case 'HEAD':
      return objects.headObject;
    case 'PUT':
      if (q.has('uploadId') || q.has('partNumber')) return copy ? multipart.uploadPartCopy : multipart.uploadPart;
      return copy ? objects.copyObject : objects.putObject;
    case 'DELETE':
      return q.has('uploadId') ? multipart.abortMultipartUpload : objects.deleteObject;
    case 'POST':
      if (q.has('uploads')) return multipart.createMultipartUpload;
      if (q.has('uploadId')) return multipart.completeMultipartUpload;
      return undefined;
  }
  return undefined;
}

function headerBytes(req: FastifyRequest): number {
  let n = 0;
  for (const h of req.raw.rawHeaders) n += h.length + 2;
  return n;
}

/**
 * The S3 API at the root path. Every request: parse the target, check header size, verify the
 * signature (or allow configured anonymous reads), route by method + sub-resource, and render any
 * error as S3 XML.
 */
export async function s3Routes(app: FastifyInstance, options: S3Options): Promise<void> {
  const handle = s3Handler(options);
  const sts = options.sts;
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
    url: '/',
    handler: sts ? (req, reply) => (sts.when(req) ? sts.handler(req, reply) : handle(req, reply)) : handle,
  });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'], url: '/*', handler: handle });
}

/**
 * True for a request signed the S3 way (SigV4 or V2, in the header or presigned): it is meant for the
 * S3 API even on a path another protocol owns, e.g. `PUT /v2/` creating (and refused as) bucket "v2".
 */
export function isS3Request(req: FastifyRequest): boolean {
  const authorization = req.headers.authorization ?? '';
  if (authorization.startsWith('AWS4-HMAC-SHA256 ') || authorization.startsWith('AWS ')) return true;
  const query = req.url.split('?', 2)[1] ?? '';
  return /(?:^|&)(?:X-Amz-Algorithm|AWSAccessKeyId)=/.test(query);
}

/** The S3 request handler (see s3Routes). */
export function s3Handler(options: S3Options): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    let resource = req.url.split('?')[0] ?? '/';
    try {
      if (headerBytes(req) > options.maxHeaderBytes) throw new AstoreError('RequestHeaderSectionTooLarge', undefined, { MaxSizeAllowed: options.maxHeaderBytes });
      const target = parseTarget(req.url, req.headers.host, options.domain);
      resource = target.resource;
      const auth: AuthResult = await verifyRequestSignature(
        { method: req.method, url: req.url, rawHeaders: req.raw.rawHeaders },
        { lookup: options.lookup, region: options.region, now: new Date(), maxSkewSeconds: options.maxClockSkewSeconds, domain: options.domain },
      );
      // Who is asking, and may they: every permission the operation needs (a copy needs two).
      const principal = auth.kind === 'anonymous' ? anonymousPrincipal : (auth.credential.subject ?? anonymousPrincipal);
      const audit = { requestId: String(req.id), ...(auth.kind === 'signed' && { accessKeyId: auth.credential.accessKeyId }) };
      const allowed = (permission: S3Permission) => options.authorize({ principal, permission, sourceIp: req.ip }, audit);
      for (const permission of s3Permissions(req.method, target, req.headers)) {
        if (!(await allowed(permission))) throw new AstoreError('AccessDenied');
      }
      const controller = new AbortController();
      req.raw.once('close', () => {
        if (!req.raw.complete) controller.abort(new AstoreError('IncompleteBody'));
      });
      const base: S3Call = { req, reply, target, auth, services: options.services, signal: controller.signal, allowed };
      const actor = { principal: principalName(principal), ...(audit.accessKeyId !== undefined && { accessKeyId: audit.accessKeyId }), sourceIp: req.ip, requestId: audit.requestId };
      return await asActor(actor, () => route(base));
    } catch (err) {
      if (!req.raw.complete) reply.header('connection', 'close'); // do not wait for an unread body
      return sendS3Error(reply, err, resource);
    }
  };
}

/** Dispatches by target and method. */
async function route(base: S3Call): Promise<unknown> {
  const { req, target } = base;
  if (target.bucket === undefined) {
    const handler = routeService(req.method);
    if (!handler) throw new AstoreError('MethodNotAllowed');
    return handler(base);
  }
  if (target.key === undefined) {
    const handler = routeBucket(req.method, target.query);
    if (!handler) throw new AstoreError('MethodNotAllowed');
    if (req.method === 'PUT') validateBucketName(target.bucket);
    return handler({ ...base, bucket: target.bucket });
  }
  const handler = routeObject(req.method, target.query, req.headers);
  if (!handler) throw new AstoreError('MethodNotAllowed');
  return handler({ ...base, bucket: target.bucket, key: target.key });
}
