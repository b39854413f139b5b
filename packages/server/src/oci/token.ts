import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SignJWT, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { AstoreError } from '../core/errors.ts';
import type { PolicyPrincipal } from '../core/policy/types.ts';
import { type BasicAuthOptions, type Caller, authenticate, repositoryResource } from './auth.ts';

/**
 * The Docker/OCI registry token flow. A 401 names a realm (this endpoint), a service and the scope the
 * request needs; the client asks the realm for a token with its credentials (an access key, a user and
 * password, or an identity token as the password), gets a short-lived JWT that grants those of the
 * asked actions the policy engine allows, and retries with it as a bearer token. The token is an upper
 * bound: every request is still decided (and audited) by the policy engine.
 */
export const registryService = 'astore';
const issuer = 'astore';
const audience = 'astore-registry';

/** `repository:<name>:<actions>` and `registry:catalog:*`, as clients ask for them. */
export interface Scope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/** What a token grants: per repository (or `catalog`), the actions. */
export type Grants = Record<string, string[]>;

interface TokenClaims {
  sub: string;
  /** The principal the token speaks for. */
  p: PolicyPrincipal;
  access: { type: string; name: string; actions: string[] }[];
}

export class RegistryTokens {
  private readonly key: Uint8Array;

  constructor(
    serverKey: Buffer,
    private readonly ttlSeconds: number,
  ) {
    // A key of its own, derived from the server key: tokens signed with it mean nothing elsewhere.
    this.key = createHmac('sha256', serverKey).update('astore registry token v1').digest();
  }

  async issue(principal: PolicyPrincipal, access: Scope[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const issuedAt = new Date();
    const token = await new SignJWT({ p: principal, access } satisfies Omit<TokenClaims, 'sub'>)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(principal.name)
      .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
      .setExpirationTime(Math.floor(issuedAt.getTime() / 1000) + this.ttlSeconds)
      .sign(this.key);
    return { token, expiresIn: this.ttlSeconds, issuedAt };
  }

  /** Whether `token` is one of ours (HS256): other bearer tokens are the identity provider's. */
  static isRegistryToken(token: string): boolean {
    try {
      return decodeProtectedHeader(token).alg === 'HS256';
    } catch {
      return false;
    }
  }

  async verify(token: string): Promise<Caller> {
    let claims: TokenClaims;
    try {
      claims = (await jwtVerify(token, this.key, { issuer, audience, algorithms: ['HS256'] })).payload as unknown as TokenClaims;
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AstoreError('Unauthorized', 'the registry token has expired');
      throw new AstoreError('Unauthorized', 'the registry token is not valid');
    }
    const grants: Grants = {};
    for (const entry of claims.access ?? []) {
      const key = entry.type === 'registry' ? 'catalog' : entry.name;
      grants[key] = [...(grants[key] ?? []), ...entry.actions];
    }
    return { principal: claims.p, grants };
  }
}

/** Parses `scope` parameters (several, each possibly space-separated); malformed ones are ignored, as registries do. */
export function parseScopes(values: readonly string[]): Scope[] {
  const scopes: Scope[] = [];
  for (const value of values.flatMap((v) => v.split(' '))) {
    const m = /^(repository|registry)(?:\([^)]*\))?:(.+):([a-z*,]+)$/.exec(value);
    if (m) scopes.push({ type: m[1] as Scope['type'], name: m[2]!, actions: m[3]!.split(',').filter(Boolean) });
  }
  return scopes;
}

/** The challenge of token mode: where to get a token, for what service, with the scope this request needs. */
export function bearerChallenge(req: FastifyRequest, realmOverride: string | undefined, scope: string | undefined): string {
  const realm = realmOverride ?? `${req.protocol}://${req.headers.host ?? 'localhost'}/v2/token`;
  return `Bearer realm="${realm}",service="${registryService}"${scope ? `,scope="${scope}"` : ''}`;
}

/**
 * GET /v2/token: authenticates the caller (basic credentials, or none for anonymous) and grants, of the
 * actions asked for, those the policy engine allows. Wrong credentials are 401; an empty grant is not an
 * error (the registry then refuses the request itself).
 */
export async function tokenEndpoint(req: FastifyRequest, reply: FastifyReply, tokens: RegistryTokens, auth: BasicAuthOptions): Promise<unknown> {
  const caller = await authenticate(req, auth);
  const query = new URLSearchParams(req.url.split('?', 2)[1] ?? '');
  const service = query.get('service');
  if (service !== null && service !== registryService) throw new AstoreError('Unauthorized', `unknown service ${service}`);
  const granted: Scope[] = [];
  const allowed = async (action: string, resource: string) => (await auth.authorize(caller, action, resource, req)).allowed;
  for (const scope of parseScopes(query.getAll('scope'))) {
    if (scope.type === 'registry') {
      // The only registry-wide scope is the catalog: one decision, granted as `*`.
      if (scope.name === 'catalog' && (await allowed('oci:catalog', 'oci:'))) granted.push({ ...scope, actions: ['*'] });
      continue;
    }
    const actions: string[] = [];
    for (const action of new Set(scope.actions.includes('*') ? ['pull', 'push', 'delete'] : scope.actions)) {
      if (await allowed(`oci:${action}`, repositoryResource(scope.name))) actions.push(action);
    }
    if (actions.length > 0) granted.push({ ...scope, actions });
  }
  const { token, expiresIn, issuedAt } = await tokens.issue(caller.principal, granted);
  return reply
    .header('content-type', 'application/json')
    .header('cache-control', 'no-store')
    .send(Buffer.from(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: issuedAt.toISOString() })));
}
