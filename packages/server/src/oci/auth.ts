import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';

/** Who made a registry request. Token auth and RBAC (a later change) extend this, not the routes. */
export type OciPrincipal = { kind: 'user'; accessKeyId: string } | { kind: 'anonymous' };

export type OciAction = 'pull' | 'push' | 'delete' | 'catalog';

export interface OciAuthOptions {
  /** The secret of an access key, or null when there is no such key. */
  lookup: (accessKeyId: string) => Promise<string | null>;
  /** Repositories anyone may pull from: exact names, or `prefix/*` for everything below a prefix. */
  anonymousPullRepositories: readonly string[];
  realm: string;
}

/** The challenge a 401 carries: clients answer it with HTTP basic credentials. */
export function challenge(options: OciAuthOptions): string {
  return `Basic realm="${options.realm}", charset="UTF-8"`;
}

/**
 * HTTP basic authentication with an access key id and its secret (the S3 credentials). No header:
 * anonymous. A header that does not check out is refused (never downgraded to anonymous).
 */
export async function authenticate(req: FastifyRequest, options: OciAuthOptions): Promise<OciPrincipal> {
  const header = req.headers.authorization;
  if (header === undefined) return { kind: 'anonymous' };
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) throw new AstoreError('Unauthorized', 'only HTTP basic authentication (access key id and secret) is supported');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new AstoreError('Unauthorized', 'malformed basic credentials');
  const accessKeyId = decoded.slice(0, colon);
  const secret = await options.lookup(accessKeyId);
  if (secret === null || !sameSecret(secret, decoded.slice(colon + 1))) throw new AstoreError('Unauthorized', 'invalid username or password');
  return { kind: 'user', accessKeyId };
}

/**
 * Default deny for anonymous requests except pulls of configured repositories. Every authenticated
 * principal is the root key today; the policy engine will decide here.
 */
export function authorize(principal: OciPrincipal, action: OciAction, repository: string | undefined, options: OciAuthOptions): void {
  if (principal.kind === 'user') return;
  if (action === 'pull' && repository !== undefined && isAnonymousPull(repository, options.anonymousPullRepositories)) return;
  throw new AstoreError('Unauthorized');
}

export function isAnonymousPull(repository: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('/*') ? repository.startsWith(p.slice(0, -1)) : p === '*' || p === repository));
}

function sameSecret(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
