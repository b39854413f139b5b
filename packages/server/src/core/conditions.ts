import { AstoreError } from './errors.ts';

/** HTTP preconditions as S3 evaluates them (RFC 9110 §13.2.2 order). */
export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: Date;
  ifUnmodifiedSince?: Date;
}

interface Validators {
  etag: string; // quoted
  lastModified: Date;
}

function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^"|"$/g, '');
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, '').replace(/^"|"$/g, ''))
    .some((t) => t === '*' || t === bare);
}

/** HTTP dates have one-second resolution. */
function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/**
 * For GET/HEAD: If-Match / If-Unmodified-Since failures are PreconditionFailed (412); If-None-Match /
 * If-Modified-Since hits are NotModified (304). A true If-Match overrides If-Unmodified-Since and a
 * present If-None-Match overrides If-Modified-Since, as S3 documents.
 */
export function checkReadPreconditions(target: Validators, p: Preconditions): void {
  if (p.ifMatch !== undefined) {
    if (!etagMatches(p.ifMatch, target.etag)) throw new AstoreError('PreconditionFailed', undefined, { Condition: 'If-Match' });
  } else if (p.ifUnmodifiedSince && seconds(target.lastModified) > seconds(p.ifUnmodifiedSince)) {
    throw new AstoreError('PreconditionFailed', undefined, { Condition: 'If-Unmodified-Since' });
  }
  if (p.ifNoneMatch !== undefined) {
    if (etagMatches(p.ifNoneMatch, target.etag)) throw new AstoreError('NotModified');
  } else if (p.ifModifiedSince && seconds(target.lastModified) <= seconds(p.ifModifiedSince)) {
    throw new AstoreError('NotModified');
  }
}

/** For a copy source every failed condition is PreconditionFailed (S3 never answers 304 to a copy). */
export function checkCopySourcePreconditions(target: Validators, p: Preconditions): void {
  try {
    checkReadPreconditions(target, p);
  } catch (err) {
    if (err instanceof AstoreError && err.code === 'NotModified') {
      throw new AstoreError('PreconditionFailed', undefined, { Condition: 'x-amz-copy-source-if-none-match/if-modified-since' });
    }
    throw err;
  }
}

/**
 * Conditional writes: `If-None-Match: *` fails when the key exists; `If-Match: <etag>` fails unless
 * the current object has that ETag (and when there is none).
 */
export function checkWritePreconditions(current: Validators | null, p: Pick<Preconditions, 'ifMatch' | 'ifNoneMatch'>): void {
  if (p.ifNoneMatch !== undefined && current && etagMatches(p.ifNoneMatch, current.etag)) {
    throw new AstoreError('PreconditionFailed', undefined, { Condition: 'If-None-Match' });
  }
  if (p.ifMatch !== undefined && (!current || !etagMatches(p.ifMatch, current.etag))) {
    if (!current) throw new AstoreError('NoSuchKey');
    throw new AstoreError('PreconditionFailed', undefined, { Condition: 'If-Match' });
  }
}
