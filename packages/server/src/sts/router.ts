import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { XMLBuilder } from 'fast-xml-parser';
import { AstoreError } from '../core/errors.ts';
import { readSmallBody } from '../core/small-body.ts';
import { type IdentityService, principalName } from '../core/identity/service.ts';
import type { SessionCredentials } from '../core/identity/sessions.ts';
import type { PolicyPrincipal } from '../core/policy/types.ts';
import type { AuthResult } from '../s3/auth/index.ts';
import type { MetaStore } from '../storage/meta/types.ts';

export interface StsOptions {
  identity: IdentityService;
  meta: MetaStore;
  defaultDurationSeconds: number;
  maxDurationSeconds: number;
  /** Verifies a SigV4 request signed for the `sts` service, given the body's sha256 (AssumeRole). */
  verifySigned: (req: FastifyRequest, bodySha256: string) => Promise<AuthResult>;
  /** The policy engine's decision (recorded in the audit log). */
  authorize: (principal: PolicyPrincipal, action: string, resource: string, req: FastifyRequest, accessKeyId?: string) => Promise<boolean>;
}

const namespace = 'https://sts.amazonaws.com/doc/2011-06-15/';
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', processEntities: true });

/**
 * An STS request: `POST /` with a form body naming an Action (what boto3's and aws-cli's `sts`
 * clients send to the endpoint they are given).
 */
export function isStsRequest(req: FastifyRequest): boolean {
  if (req.method !== 'POST' || (req.url.split('?')[0] ?? '') !== '/') return false;
  return (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

/** STS errors: the query protocol's `<ErrorResponse>`, with the codes AWS STS uses. */
const stsCodes: Partial<Record<string, { code: string; status: number }>> = {
  ExpiredToken: { code: 'ExpiredTokenException', status: 400 },
  Unauthorized: { code: 'InvalidIdentityToken', status: 400 },
  AccessDenied: { code: 'AccessDenied', status: 403 },
  InvalidArgument: { code: 'InvalidParameterValue', status: 400 },
  NotImplemented: { code: 'InvalidAction', status: 400 },
  ServiceUnavailable: { code: 'IDPCommunicationError', status: 400 },
};

/**
 * The STS subset astore serves: AssumeRoleWithWebIdentity exchanges an identity-provider token for
 * temporary S3 credentials (access key, secret, session token) that speak for the token's user, with
 * its groups and roles; requests signed with them carry the session token. The role asked for must be
 * one of the token's roles. Each issue is audited.
 */
export function stsHandler(options: StsOptions): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  return async (req, reply) => {
    try {
      const body = await readSmallBody(req.raw, 64 * 1024, () => new AstoreError('InvalidArgument', 'the request body exceeds 64 KiB'));
      const form = new URLSearchParams(body.toString('utf8'));
      const action = form.get('Action');
      if (action === 'AssumeRoleWithWebIdentity') return await assumeRoleWithWebIdentity(req, reply, form, options);
      if (action === 'AssumeRole') return await assumeRole(req, reply, form, createHash('sha256').update(body).digest('hex'), options);
      throw new AstoreError('NotImplemented', `STS action ${action ?? '(none)'} is not supported; AssumeRole and AssumeRoleWithWebIdentity are`);
    } catch (err) {
      const known = err instanceof AstoreError ? err : undefined;
      if (!known) reply.log.error({ err }, 'internal error');
      const mapped = known ? stsCodes[known.code] : undefined;
      const status = mapped?.status ?? (known ? known.spec.status : 500);
      const body = builder.build({
        ErrorResponse: {
          '@xmlns': namespace,
          Error: { Type: status >= 500 ? 'Receiver' : 'Sender', Code: mapped?.code ?? (known ? known.spec.s3Code : 'InternalFailure'), Message: known?.message ?? 'internal error' },
          RequestId: String(req.id),
        },
      }) as string;
      return reply.code(status).header('content-type', 'text/xml').send(Buffer.from(body));
    }
  };
}

/** The parameters both actions share: the role, the session's name and its duration. */
function sessionRequest(form: URLSearchParams, options: StsOptions): { role: string; sessionName: string; duration: number } {
  const roleArn = form.get('RoleArn');
  const sessionName = form.get('RoleSessionName') ?? 'session';
  if (!roleArn) throw new AstoreError('InvalidArgument', 'RoleArn is required');
  if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) throw new AstoreError('InvalidArgument', 'RoleSessionName must be 2-64 characters of [\\w+=,.@-]');
  const durationText = form.get('DurationSeconds');
  const duration = durationText === null ? options.defaultDurationSeconds : Number(durationText);
  if (!Number.isInteger(duration) || duration < 900 || duration > options.maxDurationSeconds) {
    throw new AstoreError('InvalidArgument', `DurationSeconds must be an integer from 900 to ${options.maxDurationSeconds}`);
  }
  const role = /^arn:[^:]*:iam::[^:]*:role\/(?:.*\/)?([^/]+)$/.exec(roleArn)?.[1];
  if (!role) throw new AstoreError('InvalidArgument', `RoleArn ${roleArn} is not a role ARN (arn:aws:iam::<account>:role/<name>)`);
  return { role, sessionName, duration };
}

/**
 * AssumeRole: a request signed (SigV4, service `sts`) with an access key whose principal policies allow
 * `sts:AssumeRole` on `sts:role/<name>` gets temporary credentials that act as `role:<name>`.
 */
async function assumeRole(req: FastifyRequest, reply: FastifyReply, form: URLSearchParams, bodySha256: string, options: StsOptions): Promise<unknown> {
  const { role, sessionName, duration } = sessionRequest(form, options);
  const auth = await options.verifySigned(req, bodySha256);
  if (auth.kind !== 'signed' || !auth.credential.subject) throw new AstoreError('AccessDenied', 'AssumeRole needs a signed request');
  const caller = auth.credential.subject;
  if (!(await options.authorize(caller, 'sts:AssumeRole', `sts:role/${role}`, req, auth.credential.accessKeyId))) {
    throw new AstoreError('AccessDenied', `${principalName(caller)} may not assume the role ${role}`);
  }
  const principal: PolicyPrincipal = { kind: 'role', name: role, groups: [], roles: [role] };
  const credentials = options.identity.sessions.issue(principal, duration);
  await auditIssue(req, options, caller, auth.credential.accessKeyId, 'sts:AssumeRole', role, sessionName, credentials);
  return sendCredentials(reply, req, 'AssumeRole', credentials, role, sessionName);
}

async function assumeRoleWithWebIdentity(req: FastifyRequest, reply: FastifyReply, form: URLSearchParams, options: StsOptions): Promise<unknown> {
  const token = form.get('WebIdentityToken');
  if (!token) throw new AstoreError('InvalidArgument', 'WebIdentityToken is required');
  const { role, sessionName, duration } = sessionRequest(form, options);

  const identity = await options.identity.verifyBearer(token);
  if (!identity.principal.roles.includes(role)) {
    throw new AstoreError('AccessDenied', `the identity token does not grant the role ${role}`);
  }
  const credentials = options.identity.sessions.issue(identity.principal, duration);
  await auditIssue(req, options, identity.principal, credentials.accessKeyId, 'sts:AssumeRoleWithWebIdentity', role, sessionName, credentials);
  return sendCredentials(reply, req, 'AssumeRoleWithWebIdentity', credentials, role, sessionName, identity.principal.name);
}

async function auditIssue(
  req: FastifyRequest,
  options: StsOptions,
  principal: PolicyPrincipal,
  accessKeyId: string,
  action: string,
  role: string,
  sessionName: string,
  credentials: SessionCredentials,
): Promise<void> {
  await options.meta.audit.append([
    {
      at: new Date(),
      principal: principalName(principal),
      accessKeyId,
      action,
      resource: `sts:role/${role}`,
      outcome: 'success',
      sourceIp: req.ip,
      requestId: String(req.id),
      detail: { sessionName, sessionAccessKeyId: credentials.accessKeyId, expiration: credentials.expiration.toISOString() },
    },
  ]);
}

function sendCredentials(
  reply: FastifyReply,
  req: FastifyRequest,
  action: 'AssumeRole' | 'AssumeRoleWithWebIdentity',
  credentials: SessionCredentials,
  role: string,
  sessionName: string,
  subject?: string,
): unknown {
  const body = builder.build({
    [`${action}Response`]: {
      '@xmlns': namespace,
      [`${action}Result`]: {
        Credentials: {
          AccessKeyId: credentials.accessKeyId,
          SecretAccessKey: credentials.secretAccessKey,
          SessionToken: credentials.sessionToken,
          Expiration: credentials.expiration.toISOString(),
        },
        ...(subject !== undefined && { SubjectFromWebIdentityToken: subject }),
        AssumedRoleUser: { Arn: `arn:aws:sts::000000000000:assumed-role/${role}/${sessionName}`, AssumedRoleId: `${role}:${sessionName}` },
      },
      ResponseMetadata: { RequestId: String(req.id) },
    },
  }) as string;
  return reply.code(200).header('content-type', 'text/xml').send(Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`));
}
