import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import type { GarbageCollector } from '../core/gc.ts';
import type { IdentityService } from '../core/identity/service.ts';
import type { SecretBox } from '../core/identity/secrets.ts';
import { parseDigest } from '../core/registry/references.ts';
import type { MetaStore } from '../storage/meta/types.ts';
import { type BasicAuthOptions, authenticate, authorizeCall, challenge } from '../oci/auth.ts';
import { sendProblem } from './errors.ts';
import { type ApiCall, sendJson } from './http.ts';
import { identityRoutes } from './identity.ts';
import { policyRoutes } from './policies.ts';
import { supplyChainRoutes } from './supplychain.ts';
import type { SupplyChainService } from '../core/supplychain/service.ts';
import { asActor } from '../core/identity/actor.ts';
import { principalName } from '../core/identity/service.ts';

export interface ApiOptions {
  meta: MetaStore;
  gc: GarbageCollector;
  identity: IdentityService;
  box: SecretBox;
  /** HTTP basic (access key or user password); bearer tokens come with OIDC. */
  auth: BasicAuthOptions;
  supplyChain: SupplyChainService;
}

/** One endpoint: the admin action it needs on which resource, and what it does once allowed. */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  action: string;
  resource: (call: ApiCall) => string | Promise<string>;
  handler: (call: ApiCall) => Promise<unknown>;
}

/** Each list in a references answer holds at most this many entries. */
const referenceLimit = 1000;

/**
 * astore's own REST API under /api/v1/ (documented in docs/openapi.yaml). Every request is
 * authenticated, then authorized by the policy engine for the endpoint's `admin:*` action; errors are
 * RFC 9457 problem details.
 */
export async function apiRoutes(app: FastifyInstance, options: ApiOptions): Promise<void> {
  const allowed = async (call: ApiCall, action: string, resource: string) => (await options.auth.authorize(call.caller, action, resource, call.req)).allowed;
  const routes = [
    ...identityRoutes(options.meta, options.box),
    ...policyRoutes(options.meta, options.identity),
    ...storageRoutes(options),
    ...supplyChainRoutes(options.meta, options.supplyChain, allowed),
  ];
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        try {
          const caller = await authenticate(req, options.auth);
          const call: ApiCall = { req, reply, caller, params: req.params as Record<string, string>, query: new URLSearchParams(req.url.split('?', 2)[1] ?? '') };
          await authorizeCall(caller, route.action, await route.resource(call), req, options.auth);
          const actor = {
            principal: principalName(caller.principal),
            ...(caller.accessKeyId !== undefined && { accessKeyId: caller.accessKeyId }),
            sourceIp: req.ip,
            requestId: String(req.id),
          };
          const result = await asActor(actor, () => route.handler(call));
          // A change to users, keys or policies holds from the next request on, in this process at once
          // (other replicas see the identity generation move within a second).
          if (route.method !== 'GET') {
            options.identity.invalidate();
            options.supplyChain.invalidate();
          }
          return result;
        } catch (err) {
          if (err instanceof AstoreError && err.code === 'Unauthorized') reply.header('www-authenticate', challenge(options.auth));
          return sendProblem(reply, err);
        }
      },
    });
  }
  app.all('/api/v1/*', async (req, reply) => sendProblem(reply, new AstoreError('NoSuchKey', `no API endpoint ${req.method} ${req.url.split('?')[0]}`)));
}

export function storageRoutes(options: ApiOptions): ApiRoute[] {
  return [
    {
      // Where a blob is referenced, by its sha256 (the stored blob) or by a registry digest of any
      // algorithm that names it: S3 objects, multipart parts, repository layers and upload sessions.
      method: 'GET',
      url: '/api/v1/blobs/:digest',
      action: 'admin:GetBlob',
      resource: (c) => `api:blobs/${c.params.digest}`,
      handler: async ({ reply, params }) => {
        const { digest } = parseDigest(params.digest!);
        let stored = digest;
        if (!digest.startsWith('sha256:')) {
          const layer = await options.meta.registry.findLayer(digest);
          if (!layer) throw new AstoreError('BlobUnknown', `no blob is known by ${digest}`);
          stored = layer.blob;
        }
        const blob = await options.meta.blobs.get(stored);
        if (!blob) throw new AstoreError('BlobUnknown', `no blob ${digest} is stored`);
        const references = await options.meta.blobs.references(stored, referenceLimit);
        return sendJson(reply, 200, { digest, storedAs: stored, size: blob.size, touchedAt: blob.touchedAt.toISOString(), references });
      },
    },
    {
      // Runs one garbage collection pass now (or joins the one in progress) and reports what it removed.
      method: 'POST',
      url: '/api/v1/gc/runs',
      action: 'admin:RunGc',
      resource: () => 'api:gc',
      handler: async ({ reply }) => sendJson(reply, 200, await options.gc.runOnce()),
    },
  ];
}
