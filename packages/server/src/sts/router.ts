import type { FastifyReply, FastifyRequest } from 'fastify';
import { XMLBuilder } from 'fast-xml-parser';
import { AstoreError } from '../core/errors.ts';
import { readSmallBody } from '../core/small-body.ts';
import { type IdentityService, principalName } from '../core/identity/service.ts';
import type { MetaStore } from '../storage/meta/types.ts';

export interface StsOptions {
  identity: IdentityService;
  meta: MetaStore;
  defaultDurationSeconds: number;
  maxDurationSeconds: number;
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
      if (action !== 'AssumeRoleWithWebIdentity') throw new AstoreError('NotImplemented', `STS action ${action ?? '(none)'} is not supported; AssumeRoleWithWebIdentity is`);
      return await assumeRoleWithWebIdentity(req, reply, form, options);
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

async function assumeRoleWithWebIdentity(req: FastifyRequest, reply: FastifyReply, form: URLSearchParams, options: StsOptions): Promise<unknown> {
  const token = form.get('WebIdentityToken');
  const roleArn = form.get('RoleArn');
  const sessionName = form.get('RoleSessionName') ?? 'session';
  if (!token) throw new AstoreError('InvalidArgument', 'WebIdentityToken is required');
  if (!roleArn) throw new AstoreError('InvalidArgument', 'RoleArn is required');
  if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) throw new AstoreError('InvalidArgument', 'RoleSessionName must be 2-64 characters of [\\w+=,.@-]');
  const durationText = form.get('DurationSeconds');
  const duration = durationText === null ? options.defaultDurationSeconds : Number(durationText);
  if (!Number.isInteger(duration) || duration < 900 || duration > options.maxDurationSeconds) {
    throw new AstoreError('InvalidArgument', `DurationSeconds must be an integer from 900 to ${options.maxDurationSeconds}`);
  }
  const role = /^arn:[^:]*:iam::[^:]*:role\/(?:.*\/)?([^/]+)$/.exec(roleArn)?.[1];
  if (!role) throw new AstoreError('InvalidArgument', `RoleArn ${roleArn} is not a role ARN (arn:aws:iam::<account>:role/<name>)`);

  const identity = await options.identity.verifyBearer(token);
  if (!identity.principal.roles.includes(role)) {
    throw new AstoreError('AccessDenied', `the identity token does not grant the role ${role}`);
  }
  const credentials = options.identity.sessions.issue(identity.principal, duration);
  await options.meta.audit.append([
    {
      at: new Date(),
      principal: principalName(identity.principal),
      accessKeyId: credentials.accessKeyId,
      action: 'sts:AssumeRoleWithWebIdentity',
      resource: `role:${role}`,
      outcome: 'success',
      sourceIp: req.ip,
      requestId: String(req.id),
      detail: { sessionName, expiration: credentials.expiration.toISOString() },
    },
  ]);
  const body = builder.build({
    AssumeRoleWithWebIdentityResponse: {
      '@xmlns': namespace,
      AssumeRoleWithWebIdentityResult: {
        Credentials: {
          AccessKeyId: credentials.accessKeyId,
          SecretAccessKey: credentials.secretAccessKey,
          SessionToken: credentials.sessionToken,
          Expiration: credentials.expiration.toISOString(),
        },
        SubjectFromWebIdentityToken: identity.principal.name,
        AssumedRoleUser: { Arn: `arn:aws:sts::000000000000:assumed-role/${role}/${sessionName}`, AssumedRoleId: `${role}:${sessionName}` },
      },
      ResponseMetadata: { RequestId: String(req.id) },
    },
  }) as string;
  return reply.code(200).header('content-type', 'text/xml').send(Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`));
}
