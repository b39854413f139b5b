import { z } from 'zod';
import { AstoreError } from '../errors.ts';
import { parseDocumentWith, policyNamePattern } from '../policy/document.ts';
import { compileGlob, type Glob } from '../policy/match.ts';

/**
 * A trust policy says, for the artifacts under some buckets / repository prefixes, which keys and
 * certificates are trusted, which attestations must be present, and what happens to an artifact
 * that does not verify:
 *
 * - `off`: nothing is checked;
 * - `audit`: reads are checked and the outcome logged, never refused;
 * - `enforce-read`: S3 GET/HEAD and OCI manifest pulls of an unverified artifact answer 403
 *   (AccessDenied / DENIED) with the reason;
 * - `enforce-write`: an unverified artifact stays quarantined: readers get 404 (NoSuchKey /
 *   MANIFEST_UNKNOWN) until a trusted signature is attached.
 *
 * Under both enforcing modes, principals allowed to attach records to the artifact
 * (`supplychain:attach`: signers) still read it, so cosign or notation can fetch what they sign.
 *
 * Resources use the policy engine's names and globs: `s3:<bucket>/<key>` for objects,
 * `oci:<repository>` for images (`s3:releases/*`, `oci:team/*`). Where several policies cover an
 * artifact, each must verify it; the strictest mode decides.
 */

export const trustModes = ['off', 'audit', 'enforce-read', 'enforce-write'] as const;
export type TrustMode = (typeof trustModes)[number];

const resource = z.string().regex(/^(s3:[^/]+\/.*|s3:\*|oci:.+)$/, { error: (issue) => `invalid resource ${JSON.stringify(issue.input)} (expected s3:<bucket>/<key pattern> or oci:<repository pattern>)` });
const keyName = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, { error: 'expected a key name: letters, digits, ".", "_", "-"' });

export const trustPolicySchema = z.strictObject({
  name: z.string().regex(policyNamePattern, { error: 'expected 1-128 letters, digits, ".", "_" or "-"' }),
  description: z.string().max(1024).optional(),
  mode: z.enum(trustModes),
  resources: z.array(resource).min(1),
  /** Signatures: by one of these keys (names from /api/v1/supplychain/keys: signing or public keys). */
  keys: z.array(keyName).default([]),
  /** Notation: chains ending at one of these CA certificates (certificate key names). */
  certificates: z.array(keyName).default([]),
  /**
   * Notation: the leaf certificate's subject must hold every attribute of one of these, whole
   * (`CN=release.example.com`, or `x509.subject: O=Corp, CN=release.example.com`); empty means any
   * subject the trusted CAs issued.
   */
  identities: z.array(z.string().min(1)).default([]),
  /** When false only the attestations are required. */
  requireSignature: z.boolean().default(true),
  /** Each must be present and signed by a trusted key (or certificate). */
  attestations: z
    .array(z.strictObject({ predicateType: z.string().min(1), builderId: z.string().min(1).optional() }))
    .default([]),
});

export type TrustPolicy = z.infer<typeof trustPolicySchema>;

/** Validates a trust policy; throws AstoreError('MalformedPolicy') naming each problem. */
export function parseTrustPolicy(json: unknown): TrustPolicy {
  const policy = parseDocumentWith(trustPolicySchema, json, 'the trust policy');
  const needsTrust = policy.requireSignature || policy.attestations.length > 0;
  if (policy.mode !== 'off' && needsTrust && policy.keys.length === 0 && policy.certificates.length === 0) {
    throw new AstoreError('MalformedPolicy', 'keys or certificates: a policy that requires signatures or attestations must trust at least one key or certificate');
  }
  return policy;
}

/** Artifacts as trust policies name them. */
export type ArtifactLocation = { kind: 's3'; bucket: string; key: string } | { kind: 'oci'; repository: string };

export function locationResource(location: ArtifactLocation): string {
  return location.kind === 's3' ? `s3:${location.bucket}/${location.key}` : `oci:${location.repository}`;
}

const strictness: Record<TrustMode, number> = { off: 0, audit: 1, 'enforce-read': 2, 'enforce-write': 3 };

export function stricter(a: TrustMode, b: TrustMode): TrustMode {
  return strictness[a] >= strictness[b] ? a : b;
}

/** The trust policies compiled for matching: which apply to an artifact. */
export class TrustPolicySet {
  private readonly compiled: { policy: TrustPolicy; matches: Glob[] }[];

  constructor(policies: readonly TrustPolicy[]) {
    this.compiled = policies.filter((p) => p.mode !== 'off').map((policy) => ({ policy, matches: policy.resources.map(compileGlob) }));
  }

  /** Policies (not `off`) covering the artifact, in name order. */
  covering(location: ArtifactLocation): TrustPolicy[] {
    const resource = locationResource(location);
    return this.compiled.filter((c) => c.matches.some((m) => m(resource))).map((c) => c.policy);
  }

  get empty(): boolean {
    return this.compiled.length === 0;
  }
}
