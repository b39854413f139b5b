import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { AstoreError } from '../errors.ts';
import type { PolicyDocument } from './types.ts';

/**
 * The policy document as clients send it to the REST API and as it is stored: validated here once, so
 * the engine can compile it without second-guessing. Unknown keys are refused (a misspelt `conditon`
 * silently widening a statement is the failure this prevents).
 */

export const policyNamePattern = /^[A-Za-z0-9._-]{1,128}$/;
export const actionPattern = /^(\*|[a-z][a-z0-9]*:[A-Za-z0-9*?]+)$/;
export const resourcePattern = /^(\*|(s3|oci|api|sts):.+)$/;
export const principalPattern = /^(\*|anonymous|authenticated|(user|group|role):[^\s]+)$/;

export interface ParsedCidr {
  address: string;
  /** undefined for a single address. */
  prefix?: number;
  family: 'ipv4' | 'ipv6';
}

/** An IPv4/IPv6 address or CIDR range (`10.0.0.0/8`, `2001:db8::/32`); undefined when it is neither. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  if (address.includes('%')) return undefined; // zone ids name an interface, not a range of clients
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (slash < 0) return { address, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}

/** The compiled form of a `sourceIp` condition. Throws on an entry parseCidr refuses. */
export function buildBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (cidr === undefined) throw new AstoreError('MalformedPolicy', `${JSON.stringify(entry)} is not an IP address or CIDR range`);
    if (cidr.prefix === undefined) list.addAddress(cidr.address, cidr.family);
    else list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return list;
}

const instant = z.iso.datetime({ offset: true, error: 'expected an ISO 8601 instant with a zone, e.g. 2026-01-01T00:00:00Z' });

const pattern = (re: RegExp, what: string, expected: string) =>
  z.string().regex(re, { error: (issue) => `invalid ${what} ${JSON.stringify(issue.input)} (expected ${expected})` });

export const conditionsSchema = z
  .strictObject({
    sourceIp: z
      .array(z.string().refine((s) => parseCidr(s) !== undefined, { error: (issue) => `${JSON.stringify(issue.input)} is not an IPv4/IPv6 address or CIDR range` }))
      .min(1, 'must list at least one address or range'),
    notBefore: instant,
    notAfter: instant,
  })
  .partial()
  .refine((c) => c.notBefore === undefined || c.notAfter === undefined || Date.parse(c.notBefore) <= Date.parse(c.notAfter), {
    error: 'notBefore is after notAfter: the statement could never apply',
    path: ['notBefore'],
  });

export const statementSchema = z.strictObject({
  sid: z.string().min(1).max(256).optional(),
  effect: z.enum(['allow', 'deny']),
  principals: z.array(pattern(principalPattern, 'principal', '*, anonymous, authenticated, user:<name>, group:<name> or role:<name>')).min(1, 'must list at least one principal'),
  actions: z.array(pattern(actionPattern, 'action', '* or <service>:<Operation>, e.g. s3:GetObject, s3:Get*')).min(1, 'must list at least one action'),
  resources: z.array(pattern(resourcePattern, 'resource', '* or s3:..., oci:..., api:...')).min(1, 'must list at least one resource'),
  conditions: conditionsSchema.optional(),
});

export const policyDocumentSchema = z.strictObject({
  name: pattern(policyNamePattern, 'policy name', '1-128 of A-Z a-z 0-9 . _ -'),
  description: z.string().max(1024).optional(),
  statements: z.array(statementSchema).min(1, 'must hold at least one statement'),
});

/** `statements[0].actions[1]` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  return out === '' ? '(document)' : out;
}

/** One message for all of a parse's problems, each naming where it is. */
export function describeIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const at = formatPath([...prefix, ...issue.path]);
      if (issue.code === 'unrecognized_keys') return `${at}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      return `${at}: ${issue.message}`;
    })
    .join('; ')
    .concat(error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '');
}

/**
 * Validates a policy document: the parsed JSON value, or the JSON text itself. Throws
 * `AstoreError('MalformedPolicy')` whose message names each problem's path.
 */
export function parsePolicyDocument(json: unknown): PolicyDocument {
  return parseDocumentWith(policyDocumentSchema, json, 'the policy');
}

/**
 * Validates a JSON document (the parsed value or its text) with `schema`; AstoreError('MalformedPolicy')
 * naming each problem's path, or that `what` is not JSON.
 */
export function parseDocumentWith<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new AstoreError('MalformedPolicy', `${what} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const result = schema.safeParse(value);
  if (!result.success) throw new AstoreError('MalformedPolicy', describeIssues(result.error));
  return result.data;
}
