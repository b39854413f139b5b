/**
 * The policy model: one engine decides for S3, OCI and the REST API.
 *
 * A request is (principal, action, resource, context). Policies are lists of statements; a statement
 * applies when its principals, actions and resources match (wildcards `*` and `?`) and its conditions
 * hold. An explicit deny beats any allow; nothing applying means deny (default deny). The root
 * principal is allowed everything and never consults policies.
 *
 * Names:
 * - principals: `user:<name>`, `group:<name>`, `role:<name>`, `anonymous`, `authenticated` (any
 *   principal that is not anonymous), `*` (anyone, anonymous included);
 * - actions: `<service>:<Operation>`: `s3:GetObject`, `s3:PutObject`, `s3:ListBucket`, ...,
 *   `oci:pull`, `oci:push`, `oci:delete`, `oci:catalog`, `admin:<...>`, `supplychain:<...>`;
 *   patterns such as `s3:*`, `s3:Get*`, `*`;
 * - resources: `s3:<bucket>` (bucket-level actions), `s3:<bucket>/<key>` (object actions),
 *   `oci:<repository>`, `api:<collection>/<id>`; patterns such as `s3:releases/*`, `oci:team/*`.
 */

export type Effect = 'allow' | 'deny';

export interface PolicyConditions {
  /** The client's address must be in one of these (IPv4/IPv6 addresses or CIDR ranges). */
  sourceIp?: string[];
  /** The request's time must not be before / after these instants (ISO 8601). */
  notBefore?: string;
  notAfter?: string;
}

export interface PolicyStatement {
  sid?: string;
  effect: Effect;
  principals: string[];
  actions: string[];
  resources: string[];
  conditions?: PolicyConditions;
}

export interface PolicyDocument {
  name: string;
  description?: string;
  statements: PolicyStatement[];
}

/** Who is asking, as the engine sees it. */
export interface PolicyPrincipal {
  kind: 'root' | 'user' | 'role' | 'anonymous';
  /** User or role name; 'root' / 'anonymous' for those. */
  name: string;
  groups: readonly string[];
  /** Roles mapped from an identity provider's claims. */
  roles: readonly string[];
}

export interface AuthorizationRequest {
  principal: PolicyPrincipal;
  action: string;
  resource: string;
  context: { sourceIp?: string; time: Date };
}

export interface Decision {
  allowed: boolean;
  reason: 'root' | 'allow' | 'explicit-deny' | 'default-deny';
  /** The statement that decided (for allow and explicit-deny). */
  matched?: { policy: string; sid?: string; statement: number };
}
