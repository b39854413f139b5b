import { type JWTPayload, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { AstoreError } from '../errors.ts';
import type { PolicyPrincipal } from '../policy/types.ts';

export interface OidcOptions {
  issuer: string;
  /** Accepted `aud` values: a token must name one of them. */
  audience: readonly string[];
  /** Default: the `jwks_uri` of the issuer's discovery document. */
  jwksUri?: string;
  /** Claim naming the user (default `preferred_username`, falling back to `sub`). */
  usernameClaim: string;
  /** Prepended to the user name, so identity-provider users cannot take built-in users' names. */
  usernamePrefix: string;
  /** Claims (dot paths) holding group and role names; absent claims mean none. */
  groupsClaim: string;
  rolesClaim: string;
  clockToleranceSeconds: number;
}

export interface OidcIdentity {
  principal: PolicyPrincipal;
  subject: string;
  expiresAt: Date;
}

/** Whether `text` has the shape of a JWT (three base64url segments): then it is worth verifying. */
export function looksLikeJwt(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text);
}

/**
 * Verifies bearer JWTs from an OIDC provider (Keycloak first, any provider by configuration): the
 * signature against the provider's JWKS (fetched on demand, refetched when a token names a key it does
 * not know: key rotation), the issuer, the audience, expiry and not-before. Maps the configured claims
 * to a principal: user name, groups and roles.
 */
export class OidcVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  constructor(private readonly options: OidcOptions) {}

  async verify(token: string): Promise<OidcIdentity> {
    const jwks = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: this.options.issuer,
        audience: [...this.options.audience],
        clockTolerance: this.options.clockToleranceSeconds,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AstoreError('ExpiredToken', 'the identity token has expired');
      if (err instanceof errors.JOSEError) throw new AstoreError('Unauthorized', `the identity token is not valid: ${err.code}`);
      throw new AstoreError('ServiceUnavailable', 'the identity provider cannot be reached to check the token');
    }
    const username = stringClaim(payload, this.options.usernameClaim) ?? payload.sub;
    if (!username) throw new AstoreError('Unauthorized', `the identity token has no ${this.options.usernameClaim} or sub claim`);
    return {
      principal: {
        kind: 'user',
        name: `${this.options.usernamePrefix}${username}`,
        groups: listClaim(payload, this.options.groupsClaim).map((g) => g.replace(/^\//, '')),
        roles: listClaim(payload, this.options.rolesClaim),
      },
      subject: payload.sub ?? username,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
    };
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    this.discovering ??= this.discover().finally(() => (this.discovering = undefined));
    this.jwks = await this.discovering;
    return this.jwks;
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    let uri = this.options.jwksUri;
    if (uri === undefined) {
      const url = `${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      } catch {
        throw new AstoreError('ServiceUnavailable', 'the identity provider cannot be reached');
      }
      if (!res.ok) throw new AstoreError('ServiceUnavailable', `the identity provider's discovery document answered ${res.status}`);
      uri = ((await res.json()) as { jwks_uri?: string }).jwks_uri;
      if (!uri) throw new AstoreError('ServiceUnavailable', "the identity provider's discovery document names no jwks_uri");
    }
    // jose caches the keys and refetches (at most every 5 s) when a token names an unknown key id.
    return createRemoteJWKSet(new URL(uri), { cooldownDuration: 5_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 10_000 });
  }
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function stringClaim(payload: JWTPayload, path: string): string | undefined {
  const value = claimAt(payload, path);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function listClaim(payload: JWTPayload, path: string): string[] {
  const value = claimAt(payload, path);
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
