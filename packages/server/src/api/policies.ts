import { z } from 'zod';
import { AstoreError } from '../core/errors.ts';
import { type IdentityService, anonymousPrincipal, rootPrincipal } from '../core/identity/service.ts';
import { parsePolicyDocument } from '../core/policy/document.ts';
import type { PolicyPrincipal } from '../core/policy/types.ts';
import type { AuditQuery, MetaStore, PolicyRecord } from '../storage/meta/types.ts';
import { changeEntry, intQuery, readJson, sendJson } from './http.ts';
import type { ApiRoute } from './router.ts';

const policyView = (p: PolicyRecord) => ({
  ...(JSON.parse(p.document) as object),
  createdAt: p.createdAt.toISOString(),
  updatedAt: p.updatedAt.toISOString(),
});

const authorizeBody = z.strictObject({
  principal: z.union([
    z.strictObject({ user: z.string() }),
    z.strictObject({ role: z.string(), groups: z.array(z.string()).optional() }),
    z.strictObject({ anonymous: z.literal(true) }),
    z.strictObject({ root: z.literal(true) }),
  ]),
  action: z.string().min(1),
  resource: z.string().min(1),
  sourceIp: z.string().optional(),
  time: z.iso.datetime({ offset: true }).optional(),
});

/** Policies, the authorization explainer and the audit log under /api/v1/. */
export function policyRoutes(meta: MetaStore, identity: IdentityService): ApiRoute[] {
  return [
    {
      method: 'PUT',
      url: '/api/v1/policies/:name',
      action: 'admin:PutPolicy',
      resource: (c) => `api:policies/${c.params.name}`,
      handler: async (call) => {
        const policyName = call.params.name!;
        if (policyName.startsWith('bucket:')) throw new AstoreError('InvalidArgument', 'bucket policies are set through the S3 API (PutBucketPolicy)');
        // What GET answers can be PUT back: the timestamps it adds are the store's, not the document's.
        const { createdAt: _created, updatedAt: _updated, ...raw } = await readJson(call.req, z.record(z.string(), z.unknown()));
        const document = parsePolicyDocument({ ...raw, name: raw.name ?? policyName });
        if (document.name !== policyName) throw new AstoreError('InvalidArgument', `the document's name ${document.name} differs from the URL's ${policyName}`);
        const now = new Date();
        const existing = await meta.identity.getPolicy(policyName);
        const outcome = await meta.identity.putPolicy(
          { name: policyName, document: JSON.stringify(document), createdAt: existing?.createdAt ?? now, updatedAt: now },
          changeEntry(call, 'admin:PutPolicy', `api:policies/${policyName}`),
        );
        return sendJson(call.reply, outcome === 'created' ? 201 : 200, policyView((await meta.identity.getPolicy(policyName))!));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/policies',
      action: 'admin:ListPolicies',
      resource: () => 'api:policies',
      handler: async (call) => {
        const policies = (await meta.identity.listPolicies()).filter((p) => !p.name.startsWith('bucket:'));
        return sendJson(call.reply, 200, { policies: policies.map(policyView) });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/policies/:name',
      action: 'admin:GetPolicy',
      resource: (c) => `api:policies/${c.params.name}`,
      handler: async (call) => {
        const found = await meta.identity.getPolicy(call.params.name!);
        if (!found || found.name.startsWith('bucket:')) throw new AstoreError('NoSuchEntity', `policy ${call.params.name} does not exist`);
        return sendJson(call.reply, 200, policyView(found));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/policies/:name',
      action: 'admin:DeletePolicy',
      resource: (c) => `api:policies/${c.params.name}`,
      handler: async (call) => {
        const policyName = call.params.name!;
        if (policyName.startsWith('bucket:') || !(await meta.identity.deletePolicy(policyName, changeEntry(call, 'admin:DeletePolicy', `api:policies/${policyName}`)))) {
          throw new AstoreError('NoSuchEntity', `policy ${policyName} does not exist`);
        }
        return call.reply.code(204).send();
      },
    },
    {
      method: 'POST',
      url: '/api/v1/authorize',
      action: 'admin:Authorize',
      resource: () => 'api:authorize',
      handler: async (call) => {
        const body = await readJson(call.req, authorizeBody);
        const principal = await principalOf(meta, body.principal);
        const decision = await identity.explain({
          principal,
          action: body.action,
          resource: body.resource,
          context: { ...(body.sourceIp !== undefined && { sourceIp: body.sourceIp }), time: body.time ? new Date(body.time) : new Date() },
        });
        return sendJson(call.reply, 200, { principal: { kind: principal.kind, name: principal.name, groups: principal.groups, roles: principal.roles }, ...decision });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/audit',
      action: 'admin:ReadAudit',
      resource: () => 'api:audit',
      handler: async (call) => {
        const q = call.query;
        const date = (key: string) => {
          const value = q.get(key);
          if (value === null) return undefined;
          const parsed = new Date(value);
          if (Number.isNaN(parsed.getTime())) throw new AstoreError('InvalidArgument', `${key} must be an ISO 8601 instant`);
          return parsed;
        };
        const outcome = q.get('outcome');
        if (outcome !== null && !['allowed', 'denied', 'success', 'failure'].includes(outcome)) {
          throw new AstoreError('InvalidArgument', 'outcome must be allowed, denied, success or failure');
        }
        const jsonl = q.get('format') === 'jsonl';
        const query: AuditQuery = {
          ...(q.get('principal') !== null && { principal: q.get('principal')! }),
          ...(q.get('action') !== null && { action: q.get('action')! }),
          ...(q.get('resource') !== null && { resource: q.get('resource')! }),
          ...(outcome !== null && { outcome: outcome as AuditQuery['outcome'] }),
          ...(date('from') && { from: date('from') }),
          ...(date('to') && { to: date('to') }),
          ...(q.get('after') !== null && { afterId: intQuery(q, 'after', 0, Number.MAX_SAFE_INTEGER) }),
          limit: intQuery(q, 'limit', jsonl ? 10_000 : 100, jsonl ? 100_000 : 1000),
        };
        const entries = (await meta.audit.query(query)).map((e) => ({ ...e, at: e.at.toISOString() }));
        if (jsonl) {
          const body = entries.map((e) => JSON.stringify(e)).join('\n');
          return call.reply.code(200).header('content-type', 'application/x-ndjson').send(Buffer.from(body ? `${body}\n` : ''));
        }
        const last = entries.at(-1);
        return sendJson(call.reply, 200, { entries, ...(last !== undefined && entries.length === query.limit && { next: last.id }) });
      },
    },
  ];
}

async function principalOf(meta: MetaStore, spec: z.infer<typeof authorizeBody>['principal']): Promise<PolicyPrincipal> {
  if ('root' in spec) return rootPrincipal;
  if ('anonymous' in spec) return anonymousPrincipal;
  if ('role' in spec) return { kind: 'role', name: spec.role, groups: spec.groups ?? [], roles: [spec.role] };
  const user = await meta.identity.getUser(spec.user);
  if (!user) throw new AstoreError('NoSuchEntity', `user ${spec.user} does not exist`);
  return { kind: 'user', name: user.name, groups: user.groups, roles: [] };
}
