import type { FastifyReply, FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import type { BucketService } from '../core/buckets.ts';
import type { BucketPolicyService } from '../core/identity/bucket-policies.ts';
import type { MultipartService } from '../core/multipart.ts';
import type { ObjectService } from '../core/objects.ts';
import type { AuthResult } from './auth/sigv4.ts';
import type { S3Permission } from './actions.ts';
import type { S3Target } from './target.ts';
import type { ObjectRecord, ObjectSummary } from '../storage/meta/types.ts';

export interface S3Services {
  buckets: BucketService;
  objects: ObjectService;
  multipart: MultipartService;
  bucketPolicies: BucketPolicyService;
  region: string;
  /**
   * Consulted before an object's bytes or headers are served (supply-chain trust policies): throws to
   * refuse; the verification outcome, when one was decided, goes into a response header.
   */
  readGate?: (call: ObjectCall, object: ObjectRecord) => Promise<{ verified: boolean; digest: string } | undefined>;
  /** Leaves out of a listing page what the caller may not see (quarantined objects). */
  listFilter?: (call: BucketCall, objects: ObjectSummary[]) => Promise<ObjectSummary[]>;
  /** Owner reported in listings: the root principal. */
  owner: { id: string; displayName: string };
}

/** One S3 request, authenticated, with what it addresses. */
export interface S3Call {
  req: FastifyRequest;
  reply: FastifyReply;
  target: S3Target;
  auth: AuthResult;
  services: S3Services;
  signal: AbortSignal;
  /** Whether this request's principal may do one more thing (for per-key checks, e.g. DeleteObjects). */
  allowed: (permission: S3Permission) => Promise<boolean>;
}

export interface BucketCall extends S3Call {
  bucket: string;
}

export interface ObjectCall extends BucketCall {
  key: string;
}

export function intParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new AstoreError('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: raw });
  return Math.min(Number(raw), max);
}

/** The `partNumber` query parameter: undefined when absent, else an integer 1..10000 (InvalidArgument otherwise). */
export function partNumberParam(query: URLSearchParams): number | undefined {
  const raw = query.get('partNumber');
  if (raw === null) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 10000)) {
    throw new AstoreError('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: raw });
  }
  return n;
}
