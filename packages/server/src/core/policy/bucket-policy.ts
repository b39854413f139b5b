import { AstoreError } from '../errors.ts';
import { describeIssues, parseCidr, statementSchema } from './document.ts';
import { compileGlob, hasWildcard } from './match.ts';
import type { PolicyConditions, PolicyDocument, PolicyStatement } from './types.ts';

/**
 * S3 bucket policies (the IAM JSON `PutBucketPolicy` receives), converted onto the policy engine as the
 * document `bucket:<bucket>`. The caller keeps the client's JSON for GetBucketPolicy; this only
 * validates and converts.
 *
 * What the engine cannot express exactly is refused with MalformedPolicy rather than approximated: a
 * deny that silently applies to less than its author meant is a hole. So: NotAction / NotResource /
 * NotPrincipal, condition operators other than IpAddress and the Date comparisons on aws:CurrentTime
 * (NotIpAddress inverts a range, which the engine's allow-list conditions cannot say), principals other
 * than `*`, IAM users and roles, resources outside the bucket, policy variables, and action names
 * written in another case than S3's (IAM compares actions case-insensitively, the engine does not).
 */

/** AWS caps bucket policies at 20 KB. */
export const maxBucketPolicyBytes = 20 * 1024;

/** The S3 actions whose spelling is checked: a bucket policy's `s3:getobject` becomes `s3:GetObject`. */
export const knownS3Actions: readonly string[] = [
  'AbortMultipartUpload', 'CreateBucket', 'DeleteBucket', 'DeleteBucketPolicy', 'DeleteObject', 'DeleteObjectTagging',
  'DeleteObjectVersion', 'GetBucketAcl', 'GetBucketLocation', 'GetBucketPolicy', 'GetBucketTagging', 'GetBucketVersioning',
  'GetObject', 'GetObjectAcl', 'GetObjectAttributes', 'GetObjectTagging', 'GetObjectVersion', 'ListAllMyBuckets',
  'ListBucket', 'ListBucketMultipartUploads', 'ListBucketVersions', 'ListMultipartUploadParts', 'PutBucketAcl',
  'PutBucketPolicy', 'PutBucketTagging', 'PutBucketVersioning', 'PutObject', 'PutObjectAcl', 'PutObjectTagging',
].map((operation) => `s3:${operation}`);

const canonicalAction = new Map(knownS3Actions.map((action) => [action.toLowerCase(), action]));

const statementKeys = new Set(['Sid', 'Effect', 'Principal', 'Action', 'Resource', 'Condition']);
const unsupportedKeys = new Set(['NotAction', 'NotResource', 'NotPrincipal']);
const iamArn = /^arn:aws[a-z-]*:iam::[^:]*:(user|role|group|root|assumed-role|federated-user)(?:\/(.*))?$/;

type Json = unknown;

class Refusal extends Error {}

/** Validates an S3 bucket policy and converts it to the engine's document `bucket:<bucket>`. */
export function bucketPolicyToDocument(bucket: string, json: string): PolicyDocument {
  try {
    return convert(bucket, json);
  } catch (err) {
    if (err instanceof Refusal) throw new AstoreError('MalformedPolicy', err.message, { BucketName: bucket });
    throw err;
  }
}

function refuse(at: string, message: string): never {
  throw new Refusal(`${at}: ${message}`);
}

function convert(bucket: string, json: string): PolicyDocument {
  if (Buffer.byteLength(json) > maxBucketPolicyBytes) refuse('Policy', `exceeds the ${maxBucketPolicyBytes}-byte limit for bucket policies`);
  let policy: Json;
  try {
    policy = JSON.parse(json);
  } catch (err) {
    refuse('Policy', `not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(policy)) refuse('Policy', 'must be a JSON object');
  for (const key of Object.keys(policy)) if (key !== 'Version' && key !== 'Id' && key !== 'Statement') refuse('Policy', `unknown field ${key}`);
  if (policy.Version !== undefined && policy.Version !== '2012-10-17' && policy.Version !== '2008-10-17') {
    refuse('Version', `must be "2012-10-17" (or "2008-10-17"), not ${JSON.stringify(policy.Version)}`);
  }
  if (policy.Id !== undefined && typeof policy.Id !== 'string') refuse('Id', 'must be a string');
  const raw = policy.Statement;
  const statements = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (statements.length === 0) refuse('Statement', 'missing: a policy needs at least one statement');
  return {
    name: `bucket:${bucket}`,
    description: `S3 bucket policy of ${bucket}`,
    statements: statements.map((statement, i) => convertStatement(bucket, statement, `Statement[${i}]`)),
  };
}

function convertStatement(bucket: string, statement: Json, at: string): PolicyStatement {
  if (!isObject(statement)) refuse(at, 'must be an object');
  for (const key of Object.keys(statement)) {
    if (unsupportedKeys.has(key)) refuse(`${at}.${key}`, `${key} is not supported; list what the statement applies to instead`);
    if (!statementKeys.has(key)) refuse(at, `unknown field ${key}`);
  }
  const { Sid, Effect, Principal, Action, Resource, Condition } = statement;
  if (Sid !== undefined && typeof Sid !== 'string') refuse(`${at}.Sid`, 'must be a string');
  if (Effect !== 'Allow' && Effect !== 'Deny') refuse(`${at}.Effect`, `must be "Allow" or "Deny", not ${JSON.stringify(Effect)}`);
  const converted: PolicyStatement = {
    ...(Sid === undefined || Sid === '' ? {} : { sid: Sid }),
    effect: Effect === 'Allow' ? 'allow' : 'deny',
    principals: convertPrincipal(Principal, `${at}.Principal`),
    actions: strings(Action, `${at}.Action`).map((action, i) => convertAction(action, `${at}.Action[${i}]`)),
    resources: strings(Resource, `${at}.Resource`).map((resource, i) => convertResource(bucket, resource, `${at}.Resource[${i}]`)),
  };
  if (Condition !== undefined) {
    const conditions = convertConditions(Condition, `${at}.Condition`);
    if (Object.keys(conditions).length > 0) converted.conditions = conditions;
  }
  // The engine's own schema, as a last line: whatever passes here is what the engine compiles.
  const checked = statementSchema.safeParse(converted);
  if (!checked.success) refuse(at, describeIssues(checked.error));
  return converted;
}

function convertPrincipal(principal: Json, at: string): string[] {
  if (principal === undefined) refuse(at, 'missing: a bucket policy statement must name its Principal');
  if (principal === '*') return ['*'];
  if (!isObject(principal)) refuse(at, 'must be "*" or {"AWS": [...]}');
  for (const key of Object.keys(principal)) {
    if (key !== 'AWS') refuse(at, `${key} principals are not supported; use {"AWS": ...} with IAM user or role ARNs, or "*"`);
  }
  const values = strings(principal.AWS, `${at}.AWS`);
  if (values.includes('*')) return ['*'];
  return values.map((value, i) => convertAwsPrincipal(value, `${at}.AWS[${i}]`));
}

function convertAwsPrincipal(value: string, at: string): string {
  const arn = iamArn.exec(value);
  if (arn === null) {
    if (value.startsWith('arn:')) refuse(at, `${JSON.stringify(value)} is not an IAM user or role ARN`);
    return principalName('user', value, value, at); // a bare user name
  }
  const [, kind, name] = arn;
  if (kind === 'user' || kind === 'role') return principalName(kind, name ?? '', value, at);
  if (kind === 'group') refuse(at, `${JSON.stringify(value)}: IAM groups cannot be principals of a policy; name the users or use a role`);
  refuse(at, `${JSON.stringify(value)}: ${kind} principals are not supported; name IAM users or roles`);
}

function principalName(kind: 'user' | 'role', name: string, value: string, at: string): string {
  if (name === '' || /\s/.test(name)) refuse(at, `${JSON.stringify(value)} does not name a ${kind}`);
  if (name.includes('/')) refuse(at, `${JSON.stringify(value)}: IAM paths are not supported; name the ${kind} without one`);
  if (hasWildcard(name)) refuse(at, `${JSON.stringify(value)}: wildcards are only allowed as the whole principal "*"`);
  return `${kind}:${name}`;
}

function convertAction(action: string, at: string): string {
  if (action === '*') return action;
  const colon = action.indexOf(':');
  const service = action.slice(0, colon).toLowerCase();
  if (colon < 0 || service !== 's3') refuse(at, `${JSON.stringify(action)}: a bucket policy governs S3 actions only (s3:<Action> or *)`);
  const normalized = `s3:${action.slice(colon + 1)}`;
  const canonical = canonicalAction.get(normalized.toLowerCase());
  if (canonical !== undefined) return canonical;
  if (hasWildcard(normalized)) {
    // `s3:get*` would match nothing here while IAM reads it as s3:Get*: refuse rather than mislead.
    const sensitive = compileGlob(normalized);
    const insensitive = compileGlob(normalized.toLowerCase());
    const misspelt = knownS3Actions.find((known) => !sensitive(known) && insensitive(known.toLowerCase()));
    if (misspelt !== undefined) refuse(at, `${JSON.stringify(action)}: action names are case-sensitive here (it would not match ${misspelt}); write the operation as S3 spells it, e.g. s3:Get*`);
  }
  return normalized;
}

function convertResource(bucket: string, resource: string, at: string): string {
  const arn = `arn:aws:s3:::${bucket}`;
  if (resource.includes('${')) refuse(at, `${JSON.stringify(resource)}: policy variables are not supported`);
  if (resource === arn) return `s3:${bucket}`;
  if (resource.startsWith(`${arn}/`)) return `s3:${resource.slice('arn:aws:s3:::'.length)}`;
  return refuse(at, `${JSON.stringify(resource)} is outside bucket ${bucket}: use ${arn} or ${arn}/<key pattern>`);
}

function convertConditions(condition: Json, at: string): PolicyConditions {
  if (!isObject(condition)) refuse(at, 'must be an object of operators');
  const conditions: PolicyConditions = {};
  let notBefore = Number.NEGATIVE_INFINITY;
  let notAfter = Number.POSITIVE_INFINITY;
  for (const [operator, clause] of Object.entries(condition)) {
    const where = `${at}.${operator}`;
    if (!isObject(clause) || Object.keys(clause).length === 0) refuse(where, 'must be an object of one or more condition keys');
    for (const [key, value] of Object.entries(clause)) {
      const lowerKey = key.toLowerCase(); // condition keys are case-insensitive in IAM
      if (operator === 'IpAddress') {
        if (lowerKey !== 'aws:sourceip') refuse(`${where}.${key}`, 'IpAddress supports the key aws:SourceIp only');
        const ranges = strings(value, `${where}.${key}`);
        ranges.forEach((range, i) => {
          if (parseCidr(range) === undefined) refuse(`${where}.${key}[${i}]`, `${JSON.stringify(range)} is not an IP address or CIDR range`);
        });
        // Values are ORed, as in the engine; keys are ANDed, which one sourceIp list cannot express.
        if (conditions.sourceIp !== undefined) refuse(`${where}.${key}`, 'aws:SourceIp is given twice (keys are case-insensitive)');
        conditions.sourceIp = ranges;
      } else if (operator === 'DateGreaterThan' || operator === 'DateGreaterThanEquals' || operator === 'DateLessThan' || operator === 'DateLessThanEquals') {
        if (lowerKey !== 'aws:currenttime') refuse(`${where}.${key}`, `${operator} supports the key aws:CurrentTime only`);
        const instants = strings(value, `${where}.${key}`).map((text, i) => instant(text, `${where}.${key}[${i}]`));
        // Values of one key are ORed (after any of them = after the earliest; before any = before the
        // latest); operators are ANDed. The engine's window is inclusive and counts milliseconds, so a
        // strict comparison moves the bound by one millisecond: t > a is t >= a + 1.
        const strict = !operator.endsWith('Equals');
        if (operator.startsWith('DateGreaterThan')) notBefore = Math.max(notBefore, Math.min(...instants) + (strict ? 1 : 0));
        else notAfter = Math.min(notAfter, Math.max(...instants) - (strict ? 1 : 0));
      } else if (operator === 'NotIpAddress') {
        refuse(where, 'NotIpAddress is not supported: conditions can only require an address in listed ranges (use IpAddress, or a Deny whose IpAddress lists the ranges to refuse)');
      } else {
        refuse(where, `condition operator ${operator} is not supported (supported: IpAddress on aws:SourceIp; DateGreaterThan[Equals] and DateLessThan[Equals] on aws:CurrentTime)`);
      }
    }
  }
  if (notBefore !== Number.NEGATIVE_INFINITY) conditions.notBefore = new Date(notBefore).toISOString();
  if (notAfter !== Number.POSITIVE_INFINITY) conditions.notAfter = new Date(notAfter).toISOString();
  if (notBefore > notAfter) refuse(at, 'the time window is empty: the statement could never apply');
  return conditions;
}

const isoDate = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

function instant(text: string, at: string): number {
  const ms = isoDate.test(text) && realDate(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) refuse(at, `${JSON.stringify(text)} is not an ISO 8601 date or instant with a zone (e.g. 2026-01-01T00:00:00Z)`);
  return ms;
}

/** Date.parse reads 2026-02-30 as March 2nd; the date part must name a real day. */
function realDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A string or a non-empty array of strings, as IAM allows for Action, Resource, AWS and condition values. */
function strings(value: Json, at: string): string[] {
  if (value === undefined) refuse(at, 'missing');
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) refuse(at, 'must not be empty');
  return list.map((item, i) => (typeof item === 'string' && item !== '' ? item : refuse(Array.isArray(value) ? `${at}[${i}]` : at, 'must be a non-empty string')));
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
