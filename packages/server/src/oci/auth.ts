import type { FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import { anonymousPrincipal } from '../core/identity/service.ts';
import type { Decision, PolicyPrincipal } from '../core/policy/types.ts';

/** Who made a request authenticated with HTTP basic (or nobody), as the policy engine sees it. */
export interface Caller {
  principal: PolicyPrincipal;
  /** Set when the credentials were an access key (rather than a user's password). */
  accessKeyId?: string;
  /**
   * With a registry token: the repositories (or `catalog`) and actions it grants, an upper bound on
   * what the policy engine may allow.
   */
  grants?: Record<string, string[]>;
}

export type OciAction = 'pull' | 'push' | 'delete' | 'catalog';

export interface BasicAuthOptions {
  /** Checks an access key id + secret or a user name + password; null when they do not check out. */
  verifyBasic: (username: string, password: string) => Promise<Caller | null>;
  /** Checks a bearer token from the identity provider; throws Unauthorized / ExpiredToken. */
  verifyBearer: (token: string) => Promise<Caller>;
  /** The policy engine's decision, recorded in the audit log. */
  authorize: (caller: Caller, action: string, resource: string, req: FastifyRequest) => Promise<Decision>;
  realm: string;
}

export interface OciAuthOptions extends BasicAuthOptions {
  /** Whether anonymous pulls are configured anywhere: then the base endpoint answers anonymous clients. */
  anonymousPulls: boolean;
}

/** The challenge a 401 carries: clients answer it with HTTP basic credentials. */
export function challenge(options: BasicAuthOptions): string {
  return `Basic realm="${options.realm}", charset="UTF-8"`;
}

/**
 * HTTP basic authentication: an access key id and its secret (the S3 credentials) or a user name and
 * password. No header: anonymous. A header that does not check out is refused (never downgraded to
 * anonymous).
 */
export async function authenticate(req: FastifyRequest, options: BasicAuthOptions): Promise<Caller> {
  const header = req.headers.authorization;
  if (header === undefined) return { principal: anonymousPrincipal };
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return options.verifyBearer(bearer[1]!).catch(asUnauthorized);
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) throw new AstoreError('Unauthorized', 'use HTTP basic (access key, user name and password, or an identity token as the password) or a bearer token');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new AstoreError('Unauthorized', 'malformed basic credentials');
  const caller = await options.verifyBasic(decoded.slice(0, colon), decoded.slice(colon + 1)).catch(asUnauthorized);
  if (!caller) throw new AstoreError('Unauthorized', 'invalid username or password');
  return caller;
}

/** An expired or invalid token is a 401 with a challenge, like wrong credentials (the message says which). */
function asUnauthorized(err: unknown): never {
  if (err instanceof AstoreError && err.code === 'ExpiredToken') throw new AstoreError('Unauthorized', err.message);
  throw err;
}

/**
 * Asks the policy engine; a refusal is 401 (with a challenge) for an anonymous caller, who may yet
 * authenticate, and 403 DENIED for an authenticated one.
 */
export async function authorizeCall(caller: Caller, action: string, resource: string, req: FastifyRequest, options: BasicAuthOptions): Promise<void> {
  const decision = await options.authorize(caller, action, resource, req);
  if (decision.allowed && caller.grants && !tokenGrants(caller.grants, action, resource)) {
    // Allowed, but not by this token: the client asks the token endpoint again, for the scope the
    // challenge names. (Not allowed at all is DENIED below: no token would help.)
    throw new AstoreError('Unauthorized', `the registry token does not grant ${action} on ${resource}`);
  }
  if (decision.allowed) return;
  if (caller.principal.kind === 'anonymous') throw new AstoreError('Unauthorized');
  throw new AstoreError('AccessDenied', `${action} on ${resource} is not allowed`);
}

export const repositoryResource = (repository: string) => `oci:${repository}`;

function tokenGrants(grants: Record<string, string[]>, action: string, resource: string): boolean {
  if (action === 'oci:catalog') return (grants.catalog ?? []).length > 0;
  if (!action.startsWith('oci:') || !resource.startsWith('oci:')) return false;
  const actions = grants[resource.slice('oci:'.length)] ?? [];
  return actions.includes('*') || actions.includes(action.slice('oci:'.length));
}
