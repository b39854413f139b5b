import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditEntry, MetaStore } from '../../storage/meta/types.ts';
import { bucketPolicyToDocument } from '../policy/bucket-policy.ts';
import { parsePolicyDocument } from '../policy/document.ts';
import { PolicyEngine } from '../policy/engine.ts';
import type { AuthorizationRequest, Decision, PolicyDocument, PolicyPrincipal } from '../policy/types.ts';
import { AstoreError } from '../errors.ts';
import { type OidcVerifier, looksLikeJwt } from './oidc.ts';
import { verifyPassword } from './passwords.ts';
import { SessionIssuer } from './sessions.ts';
import type { SecretBox } from './secrets.ts';

/** Names of the stored policies that hold a bucket's S3 bucket policy (IAM JSON, as PutBucketPolicy took it). */
export const bucketPolicyName = (bucket: string) => `bucket:${bucket}`;

export const rootPrincipal: PolicyPrincipal = { kind: 'root', name: 'root', groups: [], roles: [] };
export const anonymousPrincipal: PolicyPrincipal = { kind: 'anonymous', name: 'anonymous', groups: [], roles: [] };

/** A credential that checks out: the secret (SigV4 needs it) and who it speaks for. */
export interface ResolvedKey {
  accessKeyId: string;
  secret: string;
  principal: PolicyPrincipal;
}

export interface IdentityOptions {
  root: { accessKeyId: string; secretKey: string };
  /** Policies generated from configuration (anonymous buckets and repositories), always in force. */
  configuredPolicies: readonly PolicyDocument[];
  /** Share of allowed read decisions written to the audit log (denials and writes: always). */
  auditAllowedReadSampling: number;
  /** How long a compiled policy set and a resolved key are trusted before the generation is re-read. */
  refreshMs: number;
}

/** Actions that only read: their allowed decisions are sampled in the audit log. */
const readAction = /^(s3:(Get|List|Head)|oci:pull|oci:catalog|admin:(Get|List)|supplychain:read)/;

/** The short name a principal has in audit entries: `root`, `anonymous`, `user:<name>`, `role:<name>`. */
export function principalName(principal: PolicyPrincipal): string {
  return principal.kind === 'root' || principal.kind === 'anonymous' ? principal.kind : `${principal.kind}:${principal.name}`;
}

/**
 * Who is who and who may do what, for every protocol: resolves access keys (the root key from
 * configuration, the others from the MetaStore, secrets decrypted with the server key) and user
 * passwords to principals, and decides requests with one PolicyEngine compiled from the stored
 * policies, the bucket policies and the configured ones. The compiled state is cached and rebuilt when
 * the MetaStore's identity generation moves (a change on this or another replica).
 */
export class IdentityService {
  readonly sessions: SessionIssuer;
  private cache:
    | { generation: number; checkedAt: number; engine: PolicyEngine; keys: Map<string, CachedKey>; passwords: Map<string, PolicyPrincipal> }
    | undefined;
  private rebuilding: Promise<void> | undefined;

  constructor(
    private readonly meta: MetaStore,
    private readonly box: SecretBox,
    private readonly options: IdentityOptions,
    private readonly log: Logger,
    /** Verifies identity-provider tokens; absent when no OIDC provider is configured. */
    readonly oidc?: OidcVerifier,
  ) {
    this.sessions = new SessionIssuer(box);
  }

  /**
   * The principal an access key speaks for, with its secret; null when unknown, revoked, expired or
   * its user disabled. Temporary (STS) keys are resolved from the session token they come with.
   */
  async resolveKey(accessKeyId: string, sessionToken?: string): Promise<ResolvedKey | null> {
    if (SessionIssuer.isSessionKey(accessKeyId)) {
      const session = sessionToken === undefined ? null : this.sessions.resolve(accessKeyId, sessionToken);
      return session ? { accessKeyId, secret: session.secret, principal: session.principal } : null;
    }
    if (accessKeyId === this.options.root.accessKeyId) {
      return { accessKeyId, secret: this.options.root.secretKey, principal: rootPrincipal };
    }
    const state = await this.current();
    let cached = state.keys.get(accessKeyId);
    if (!cached) {
      cached = await this.loadKey(accessKeyId);
      if (state.keys.size > 10_000) state.keys.clear();
      state.keys.set(accessKeyId, cached);
    }
    // Expiry is a moment, not a change: checked on every use, cached or not.
    if (cached.expiresAt !== undefined && cached.expiresAt <= Date.now()) return null;
    return cached.resolved;
  }

  /**
   * HTTP basic credentials: an access key id and its secret, or a user name and password. Null when
   * they do not check out.
   */
  async verifyBasic(username: string, password: string): Promise<{ principal: PolicyPrincipal; accessKeyId?: string } | null> {
    // Registry clients log in with an identity token as the password (any user name).
    if (this.oidc && looksLikeJwt(password)) return { principal: (await this.oidc.verify(password)).principal };
    const key = await this.resolveKey(username);
    if (key) return sameSecret(key.secret, password) ? { principal: key.principal, accessKeyId: key.accessKeyId } : null;
    // A memory-hard hash costs tens of milliseconds, and clients sending basic credentials send them
    // with every request: a password that checked out is remembered (by a digest of the pair) until
    // the identity generation moves, i.e. until any user, group, key or policy changes.
    const state = await this.current();
    const remembered = createHash('sha256').update(username).update('\0').update(password).digest('base64');
    const cached = state.passwords.get(remembered);
    if (cached) return { principal: cached };
    const user = await this.meta.identity.getUser(username);
    // Verified even for an unknown user (against no hash, at the same cost): timing does not tell who exists.
    const verified = await verifyPassword(user?.passwordHash, password);
    if (!user || user.disabled || !verified) return null;
    const principal: PolicyPrincipal = { kind: 'user', name: user.name, groups: user.groups, roles: [] };
    if (state.passwords.size > 10_000) state.passwords.clear();
    state.passwords.set(remembered, principal);
    return { principal };
  }

  /**
   * Decides a request and writes the decision to the audit log (denials always, allowed writes always,
   * allowed reads sampled).
   */
  async authorize(request: AuthorizationRequest, audit: { requestId?: string; accessKeyId?: string } = {}): Promise<Decision> {
    const decision = (await this.current()).engine.authorize(request);
    const sampled = !decision.allowed || !readAction.test(request.action) || Math.random() < this.options.auditAllowedReadSampling;
    if (sampled && request.principal.kind !== 'root') {
      const entry: AuditEntry = {
        at: request.context.time,
        principal: principalName(request.principal),
        ...(audit.accessKeyId !== undefined && { accessKeyId: audit.accessKeyId }),
        action: request.action,
        resource: request.resource,
        outcome: decision.allowed ? 'allowed' : 'denied',
        ...(request.context.sourceIp !== undefined && { sourceIp: request.context.sourceIp }),
        ...(audit.requestId !== undefined && { requestId: audit.requestId }),
        detail: { reason: decision.reason, ...(decision.matched && { matched: decision.matched }) },
      };
      // The decision stands whether or not its record could be written; a failure is logged loudly.
      this.meta.audit.append([entry]).catch((err: unknown) => this.log.error({ err }, 'audit append failed'));
    }
    return decision;
  }

  /** A bearer token from the identity provider; Unauthorized when none is configured. */
  async verifyBearer(token: string): Promise<{ principal: PolicyPrincipal }> {
    if (!this.oidc) throw new AstoreError('Unauthorized', 'bearer tokens need an OIDC provider (auth.oidc)');
    return { principal: (await this.oidc.verify(token)).principal };
  }

  /** Decides without recording: the REST `authorize` endpoint's explanation. */
  async explain(request: AuthorizationRequest): Promise<Decision> {
    return (await this.current()).engine.authorize(request);
  }

  /** Forgets the compiled state: the next request rebuilds it (after a change made in this process). */
  invalidate(): void {
    this.cache = undefined;
  }

  private async current(): Promise<NonNullable<IdentityService['cache']>> {
    const now = Date.now();
    const cached = this.cache;
    if (cached && now - cached.checkedAt < this.options.refreshMs) return cached;
    const generation = await this.meta.identity.generation();
    if (cached && cached.generation === generation) {
      cached.checkedAt = now;
      return cached;
    }
    this.rebuilding ??= this.rebuild(generation).finally(() => (this.rebuilding = undefined));
    await this.rebuilding;
    return this.cache!;
  }

  private async rebuild(generation: number): Promise<void> {
    const documents: PolicyDocument[] = [...this.options.configuredPolicies];
    for (const record of await this.meta.identity.listPolicies()) {
      try {
        documents.push(
          record.name.startsWith('bucket:')
            ? bucketPolicyToDocument(record.name.slice('bucket:'.length), record.document)
            : parsePolicyDocument(JSON.parse(record.document)),
        );
      } catch (err) {
        // Stored policies were validated on the way in; one that no longer parses is skipped, loudly.
        this.log.error({ err, policy: record.name }, 'stored policy skipped: it does not parse');
      }
    }
    this.cache = { generation, checkedAt: Date.now(), engine: new PolicyEngine(documents), keys: new Map(), passwords: new Map() };
  }

  private async loadKey(accessKeyId: string): Promise<CachedKey> {
    const none = { resolved: null };
    const key = await this.meta.identity.getAccessKey(accessKeyId);
    if (!key || key.revokedAt) return none;
    const user = await this.meta.identity.getUser(key.user);
    if (!user || user.disabled) return none;
    let secret: string;
    try {
      secret = this.box.open(key.secretCiphertext);
    } catch (err) {
      this.log.error({ err, accessKeyId }, 'access key secret cannot be decrypted with the server key');
      return none;
    }
    return {
      resolved: { accessKeyId, secret, principal: { kind: 'user', name: user.name, groups: user.groups, roles: [] } },
      expiresAt: key.expiresAt?.getTime(),
    };
  }
}

interface CachedKey {
  resolved: ResolvedKey | null;
  expiresAt?: number;
}

/** Compares secrets in constant time (digests first, so lengths do not leak either). */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
